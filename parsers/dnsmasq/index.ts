/**
 * dnsmasq's DHCP server (`dnsmasq-dhcp` syslog tag), with and without `--log-dhcp`. See README.md.
 *
 * v4 lines read `[<xid> ]DHCP<VERB>(<iface>) [<ip>] <mac> [<hostname>|<message>]`; v6 lines read
 * `[<xid> ]DHCP<VERB>(<iface>) [<ip6>] <duid> [<hostname>]`. With --log-dhcp every line of a
 * transaction starts with its xid, and the options sent follow the DHCPACK (`sent size: 4 option: 51
 * lease-time 2m`). Everything is a bounded word split: linear in the line, never throws.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft, SightingKind } from '../../src/sighting.js';
import { BoundedMap, isDigits, leadingTag, words } from '../../src/parsers/text.js';
import { canonicalIp, isIpv6 } from '../../src/util/ip.js';
import { normalizeMac } from '../../src/util/mac.js';

const TAGS = new Set(['dnsmasq-dhcp', 'dnsmasq']);
const LIMIT = 10_000;
const DEFAULT_HOLD_S = 86_400;

/** The program tag and the message after it, also for lines that reached us without a syslog header. */
function tagged(input: LineInput): { app: string; msg: string } | undefined {
  const s = input.syslog;
  if (s.appName !== undefined) return TAGS.has(s.appName) ? { app: s.appName, msg: s.msg } : undefined;
  const t = leadingTag(s.msg);
  if (t && TAGS.has(t.app)) return { app: t.app, msg: t.rest };
  return undefined;
}

/** dnsmasq's printed durations: `2m`, `12h`, `1h30m`, `45s`, `3d`, `infinite` → seconds. */
export function dnsmasqDuration(text: string | undefined): number | undefined {
  if (!text || text.length > 24) return undefined;
  if (text === 'infinite') return undefined;
  let total = 0;
  let num = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) num = (num < 0 ? 0 : num * 10) + c - 48;
    else {
      const mult = c === 115 ? 1 : c === 109 ? 60 : c === 104 ? 3600 : c === 100 ? 86_400 : c === 119 ? 604_800 : 0; // s m h d w
      if (!mult || num < 0) return undefined;
      total += num * mult;
      num = -1;
    }
  }
  if (num >= 0) total += num; // a bare number is seconds
  return total;
}

interface Held {
  ip: string;
  until: number;
}

class DnsmasqParser implements LineParser {
  /** per MAC/DUID: the address its last ACK/REPLY granted, to tell renewals from new leases */
  private readonly held = new BoundedMap<string, Held>(LIMIT);
  /** per MAC: the address of a DHCPINFORM awaiting its DHCPACK (that ACK grants nothing) */
  private readonly informs = new BoundedMap<string, string>(LIMIT);
  /** per xid (--log-dhcp): lease time seen in the options of this transaction */
  private readonly xidLease = new BoundedMap<string, number>(LIMIT);
  /** per xid: the MAC its DHCPACK went to, so options logged after the ACK still teach its lease time */
  private readonly xidMac = new BoundedMap<string, string>(LIMIT);
  /** per MAC: the lease time it was last sent */
  private readonly macLease = new BoundedMap<string, number>(LIMIT);
  /** per DUID: the last v6 client message (REQUEST, RENEW, ...) */
  private readonly v6last = new BoundedMap<string, string>(LIMIT);
  /** the server's configured default lease time ("DHCP, IP range a -- b, lease time 2m") */
  private defaultLease: number | undefined;

  parse(input: LineInput): SightingDraft[] {
    const t = tagged(input);
    if (!t) return [];
    let w = words(t.msg, 16);
    let xid: string | undefined;
    if (w.length > 1 && isDigits(w[0], 10)) {
      xid = w[0];
      w = w.slice(1);
    }
    const head = w[0] ?? '';
    if (head === 'DHCP,' && w[w.length - 3] === 'lease' && w[w.length - 2] === 'time') {
      this.defaultLease = dnsmasqDuration(w[w.length - 1]) ?? this.defaultLease;
      return [];
    }
    if (head === 'sent' && xid !== undefined) {
      this.sentOption(xid, w);
      return [];
    }
    const paren = head.indexOf('(');
    if (paren <= 0 || !head.endsWith(')')) return [];
    const verb = head.slice(0, paren);
    const now = this.eventMs(input);
    switch (verb) {
      case 'DHCPACK':
      case 'BOOTP':
        return this.ack(w, xid, now, verb === 'BOOTP');
      case 'DHCPREPLY':
        return this.reply6(w, now);
      case 'DHCPINFORM': {
        const mac = normalizeMac(w[2]);
        const ip = canonicalIp(w[1]);
        if (mac && ip) this.informs.set(mac, ip);
        return [];
      }
      case 'DHCPDISCOVER':
      case 'DHCPREQUEST': {
        // v4: a client starting over or asking for a lease is no longer in an INFORM exchange
        const mac = normalizeMac(w[2]) ?? normalizeMac(w[1]);
        if (mac) this.informs.delete(mac);
        if (verb === 'DHCPREQUEST' && !mac && w[1]) this.v6last.set(w[1], verb);
        return [];
      }
      case 'DHCPRELEASE': {
        const ip = canonicalIp(w[1]);
        if (ip && !isIpv6(ip)) {
          const d: SightingDraft = { kind: 'release', ip };
          const mac = normalizeMac(w[2]);
          if (mac) {
            d.mac = mac;
            this.held.delete(mac);
          }
          return [d];
        }
        if (w[1]) this.v6last.set(w[1], verb); // v6: "DHCPRELEASE(eth0) <duid>"
        return [];
      }
      case 'DHCPNAK':
      case 'DHCPDECLINE': {
        const mac = normalizeMac(w[2]);
        if (mac) this.held.delete(mac);
        else if (w[1]) this.v6last.set(w[1], verb);
        return [];
      }
      case 'DHCPSOLICIT':
      case 'DHCPRENEW':
      case 'DHCPREBIND':
      case 'DHCPCONFIRM':
      case 'DHCPINFORMATION-REQUEST':
        if (w[1]) this.v6last.set(w[1], verb);
        return [];
      case 'SLAAC-CONFIRM': {
        // "SLAAC-CONFIRM(<iface>) <ip6> [<name>]": the corpus counts the confirmed address as a binding
        const ip = canonicalIp(w[1]);
        if (!ip) return [];
        const d: SightingDraft = { kind: 'lease', ip };
        if (w[2]) d.hostname = w[2];
        return [d];
      }
      default:
        return [];
    }
  }

  private eventMs(input: LineInput): number {
    const t = input.syslog.time;
    return t !== undefined && Number.isFinite(t) ? t : input.receivedAt.getTime();
  }

  private sentOption(xid: string, w: string[]): void {
    // "sent size:  4 option: 51 lease-time  2m"
    const i = w.indexOf('lease-time');
    if (i < 0) return;
    const s = dnsmasqDuration(w[i + 1]);
    if (s === undefined) return;
    this.xidLease.set(xid, s);
    const mac = this.xidMac.get(xid);
    if (mac) this.macLease.set(mac, s);
  }

  private ack(w: string[], xid: string | undefined, now: number, bootp: boolean): SightingDraft[] {
    const ip = canonicalIp(w[1]);
    if (!ip || isIpv6(ip)) return [];
    const mac = normalizeMac(w[2]);
    if (mac && this.informs.get(mac) === ip) {
      // the answer to a DHCPINFORM: the client configured this address itself, nothing is leased
      this.informs.delete(mac);
      return [];
    }
    const d: SightingDraft = { kind: 'lease', ip };
    if (mac) d.mac = mac;
    if (w[3]) d.hostname = w[3];
    // BOOTP addresses are permanent: no lease time
    const lease = bootp ? undefined : (xid !== undefined ? this.xidLease.get(xid) : undefined) ?? (mac ? this.macLease.get(mac) : undefined) ?? this.defaultLease;
    if (lease !== undefined) d.durationS = lease;
    if (xid !== undefined && mac) this.xidMac.set(xid, mac);
    if (mac) d.kind = this.bind(mac, ip, now, lease);
    return [d];
  }

  /** "DHCPREPLY(<iface>) <ip6> <duid> [<name>]" — what it means depends on the client's message */
  private reply6(w: string[], now: number): SightingDraft[] {
    const ip = canonicalIp(w[1]);
    if (!ip || !isIpv6(ip) || !w[2]) return [];
    const duid = w[2];
    const last = this.v6last.get(duid);
    let kind: SightingKind;
    if (last === 'DHCPRELEASE') kind = 'release';
    else if (last === 'DHCPDECLINE' || last === 'DHCPINFORMATION-REQUEST') return [];
    else if (last === 'DHCPRENEW' || last === 'DHCPREBIND' || last === 'DHCPCONFIRM') kind = 'renew';
    else kind = this.bind(duid, ip, now, this.defaultLease);
    if (kind === 'release') this.held.delete(duid);
    else this.held.set(duid, { ip, until: now + (this.defaultLease ?? DEFAULT_HOLD_S) * 1000 });
    const d: SightingDraft = { kind, ip, duid };
    if (w[3]) d.hostname = w[3];
    return [d];
  }

  /** lease, or renew when this client already holds this address and its lease has not run out */
  private bind(key: string, ip: string, now: number, lease: number | undefined): SightingKind {
    const prev = this.held.get(key);
    const kind: SightingKind = prev && prev.ip === ip && now <= prev.until ? 'renew' : 'lease';
    this.held.set(key, { ip, until: now + (lease ?? DEFAULT_HOLD_S) * 1000 });
    return kind;
  }
}

const plugin: ParserPlugin = {
  id: 'dnsmasq',
  description: 'dnsmasq DHCP (dnsmasq-dhcp syslog tag, with or without --log-dhcp): DHCPACK, DHCPRELEASE, DHCPv6 REPLY',
  claims: { tags: [...TAGS], anchors: ['dnsmasq'] },
  detect(input: LineInput): boolean {
    return tagged(input) !== undefined;
  },
  create: () => new DnsmasqParser(),
};

export default plugin;
