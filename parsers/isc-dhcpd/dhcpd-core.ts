/**
 * The message grammar shared by ISC dhcpd and Infoblox NIOS (whose DHCP server is an ISC dhcpd
 * with extra suffixes: `TransID <hex>`, `uid <client-id>`, `relay <if|ip>`, `lease-duration N`,
 * `offered-duration N`, `(RENEW)`). Both plug-ins use this one parser, so a line that either
 * could have written gives the same sighting whichever of them claims it.
 *
 * Everything here is a bounded word split of the message (text.ts `words`) and index checks:
 * linear in the line length, no regex, never throws.
 */
import type { LineInput, LineParser } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { BoundedMap, toCount, unparen, words } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';
import { normalizeMac } from '../../src/util/mac.js';

/** The Infoblox-only suffix words. Stock ISC dhcpd never prints these. */
const NIOS_WORDS = new Set(['TransID', 'lease-duration', 'offered-duration', 'uid', '(RENEW)']);

/** Does the message carry one of the NIOS-only suffixes (after `via <if>`)? Linear (bounded word split). */
export function hasNiosSuffix(msg: string): boolean {
  for (const w of suffixWords(msg, dhcpdVia(msg))) if (NIOS_WORDS.has(w)) return true;
  return false;
}

/**
 * The words after dhcpd's `via <if>`: the suffixes. The host name before it is the client's own
 * (DHCP option 12), printed by dhcpd as it came, spaces and all: a name `(x lease-duration 0 y)`
 * made a lease that ended as it began, `(x (RENEW) y)` a renewal, `(x uid y)` a client id, when the
 * suffixes were looked for among every word. The suffixes hold no ` via `, so the last one in the
 * message is dhcpd's: found in the text itself, not among the first 48 words (a name of 48 words
 * with a ` via ` of its own pushed dhcpd's beyond them). A line without one has no suffixes.
 */
function suffixWords(msg: string, via: number): string[] {
  return via < 0 ? [] : words(msg.slice(via + 5), 48).slice(1);
}

/** Where dhcpd's ` via ` stands in the message (the last one), or -1. */
const dhcpdVia = (msg: string): number => msg.lastIndexOf(' via ');

export class DhcpdCore implements LineParser {
  /** per MAC: was its last DHCPREQUEST a renewal (no server identifier)? */
  private readonly renewing = new BoundedMap<string, boolean>(10_000);

  parse(input: LineInput): SightingDraft[] {
    const msg = input.syslog.msg;
    const w = words(msg, 48);
    switch (w[0]) {
      case 'DHCPACK':
        return this.ack(w, msg);
      case 'DHCPREQUEST':
        this.request(w);
        return [];
      case 'DHCPDISCOVER':
        // a client starting over holds nothing to renew
        if (w[1] === 'from') this.renewing.delete(w[2]);
        return [];
      case 'DHCPNAK':
        if (w[1] === 'on' && w[3] === 'to') this.renewing.delete(w[4]);
        return [];
      case 'DHCPRELEASE':
        // DHCPRELEASE of <ip> from <mac> [(<host>)] via <if> (found|not found) [TransID ..] [uid ..]
        if (w[1] !== 'of' || w[3] !== 'from' || !canonicalIp(w[2])) return [];
        this.renewing.delete(w[4]);
        return [withHost({ kind: 'release', ip: w[2], mac: w[4] }, hostText(msg, w[4], dhcpdVia(msg)))];
      case 'DHCPEXPIRE':
        // DHCPEXPIRE on <ip> to <mac>  (NIOS, failover lease-expiry logging)
        if (w[1] !== 'on' || w[3] !== 'to' || !canonicalIp(w[2])) return [];
        this.renewing.delete(w[4]);
        return [{ kind: 'expire', ip: w[2], mac: w[4] }];
      case 'BOOTREPLY':
        return bootReply(w);
      case 'Reply':
        return replyNa(w);
      default:
        return [];
    }
  }

  private ack(w: string[], msg: string): SightingDraft[] {
    // "DHCPACK on <ip> to <mac> [(<host>)] via <if> [relay ..] [lease-duration N] [(RENEW)] [uid ..]" binds;
    // "DHCPACK to <ip> (<mac>) via <if>" answers a DHCPINFORM and grants nothing
    if (w[1] !== 'on' || w[3] !== 'to' || !canonicalIp(w[2]) || !normalizeMac(w[4])) return [];
    const fromState = this.renewing.get(w[4]) === true;
    this.renewing.delete(w[4]);
    const via = dhcpdVia(msg);
    const sfx = suffixWords(msg, via);
    let renew: boolean;
    if (sfx.includes('(RENEW)')) renew = true;
    else if (sfx.includes('lease-duration') || sfx.includes('uid') || sfx.includes('TransID')) renew = false; // NIOS says so explicitly
    else renew = fromState;
    const d = withHost({ kind: renew ? 'renew' : 'lease', ip: w[2], mac: w[4] }, hostText(msg, w[4], via));
    const ld = sfx.indexOf('lease-duration');
    if (ld >= 0) {
      const s = toCount(sfx[ld + 1]);
      if (s !== undefined) d.durationS = s;
    }
    addUid(d, sfx);
    return [d];
  }

  private request(w: string[]): void {
    // "DHCPREQUEST for <ip> [(<server-id>)] from <mac> ..." — no server id means the client renews a lease it holds
    if (w[1] !== 'for') return;
    const from = w.indexOf('from');
    if (from < 0 || !w[from + 1]) return;
    // a request the server refused or ignored ("via br0: wrong network.", "...: ignored (not authoritative).")
    // renews nothing: such lines carry a word ending in ':' after the addresses
    for (let i = from + 2; i < w.length; i++) {
      if (w[i].endsWith(':')) {
        this.renewing.delete(w[from + 1]);
        return;
      }
    }
    this.renewing.set(w[from + 1], from === 3);
  }
}

function withHost(d: SightingDraft, tok: string | undefined): SightingDraft {
  if (!tok || !tok.startsWith('(') || tok === '(RENEW)' || tok === '(found)') return d;
  const host = unparen(tok);
  if (host) d.hostname = host;
  return d;
}

/**
 * The host name: the text between the MAC and dhcpd's ` via ` (the last), when it is one `(…)`
 * (a name with spaces spans several words); undefined when there is none.
 */
function hostText(msg: string, mac: string, via: number): string | undefined {
  const m = msg.indexOf(` ${mac} `);
  if (via < 0 || m < 0 || m + mac.length + 2 > via) return undefined;
  const t = msg.slice(m + mac.length + 2, via).trim();
  return t.startsWith('(') && t.endsWith(')') ? t : undefined;
}

/** The client id from the suffixes (`uid <id>`). */
function addUid(d: SightingDraft, sfx: string[]): void {
  const u = sfx.indexOf('uid');
  if (u >= 0 && sfx[u + 1]) {
    const id = unparen(sfx[u + 1]);
    if (id && id.length <= 128) d.clientId = id;
  }
}

/** "BOOTREPLY for <ip> to <host> (<mac>) via <if>": a BOOTP client got its (permanent) address. */
function bootReply(w: string[]): SightingDraft[] {
  if (w[1] !== 'for' || w[3] !== 'to' || !canonicalIp(w[2])) return [];
  // the host name may be empty, so the MAC is the first parenthesised word after "to"
  for (let i = 4; i < Math.min(w.length, 7); i++) {
    if (w[i].startsWith('(')) {
      const mac = unparen(w[i]);
      if (!normalizeMac(mac)) return [];
      const d: SightingDraft = { kind: 'lease', ip: w[2], mac };
      if (i === 5) d.hostname = w[4];
      return [d];
    }
  }
  return [];
}

/** "Reply NA: address <ip6> to client with duid <duid> iaid = N valid for S seconds" */
function replyNa(w: string[]): SightingDraft[] {
  if (w[1] !== 'NA:' || w[2] !== 'address' || w[4] !== 'to' || w[7] !== 'duid') return [];
  const d: SightingDraft = { kind: 'lease', ip: w[3], duid: w[8] };
  const valid = w.indexOf('valid');
  if (valid > 0 && w[valid + 1] === 'for') {
    const s = toCount(w[valid + 2]);
    if (s !== undefined) d.durationS = s;
  }
  return [d];
}

/** The opening words of dhcpd's own messages (`DHCPACK on 10.0.0.5 to ...`): verb and preposition. */
export const VERB_PHRASES = ['DHCPACK on ', 'DHCPOFFER on ', 'DHCPNAK on ', 'DHCPREQUEST for ', 'DHCPDISCOVER from ', 'DHCPRELEASE of ',
  'DHCPDECLINE of ', 'DHCPINFORM from ', 'DHCPEXPIRE on ', 'BOOTREQUEST from ', 'BOOTREPLY for ', 'BOOTREPLY on '];

/**
 * A dhcpd message without its tag: no syslog header at all (`dhcpd -d` to a file, `journalctl -o cat`)
 * or a header without a tag. The verb phrase is dhcpd's alone (dnsmasq writes `DHCPACK(eth0)`,
 * Kea `DHCP4_...`), so `--format auto` can claim it.
 */
export function startsWithDhcpdVerb(msg: string): boolean {
  if (msg.charCodeAt(0) !== 68 /* D */ && msg.charCodeAt(0) !== 66 /* B */) return false;
  for (const p of VERB_PHRASES) if (msg.startsWith(p)) return true;
  return false;
}

/**
 * Is this dhcpd line from an Infoblox NIOS appliance rather than a stock ISC dhcpd? Yes when the
 * program is `dhcpdv6` (NIOS's DHCPv6 daemon; ISC's is `dhcpd`), when the message carries a NIOS-only
 * suffix, or when the syslog hostname is an IP literal or names the appliance (`infoblox...`): NIOS
 * sends its LAN/MGMT address as the hostname, while rsyslog on a host running ISC dhcpd sends its name.
 * Anything else (no hostname, a plain host name, no suffix) is left to isc-dhcpd: the two parse alike.
 */
export function looksInfoblox(input: LineInput): boolean {
  const app = input.syslog.appName;
  if (app === 'dhcpdv6') return true;
  if (app === undefined) return startsWithDhcpdVerb(input.syslog.msg) && hasNiosSuffix(input.syslog.msg);
  if (app !== 'dhcpd') return false;
  if (hasNiosSuffix(input.syslog.msg)) return true;
  const host = input.syslog.hostname;
  if (!host || host.length > 255) return false;
  if (host.toLowerCase().includes('infoblox')) return true;
  return canonicalIp(host) !== undefined;
}
