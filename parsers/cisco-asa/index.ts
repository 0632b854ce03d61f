/**
 * Cisco ASA and Firepower Threat Defense remote-access VPN (AnyConnect / Secure Client, IKEv2,
 * clientless WebVPN, IPAA, PPTP/L2TP). See README.md for which messages make which sighting.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { BoundedMap, MONTH_ABBREVIATIONS as MONTHS, mayClaimByContent, words } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';
import { parseIsoTime } from '../../src/util/time.js';

/** The inner address used when a session end names no address and no earlier line told us one. */
export const UNKNOWN_IP = '0.0.0.0';

/** How far into a line the `%ASA-` marker may sit (headers are short). */
const MARKER_WINDOW = 400;

interface Marker {
  /** the 6-digit message id */
  id: string;
  /** where the marker starts in the text */
  start: number;
  /** where the message body starts (after `id: `) */
  body: number;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** `%ASA-6-722051:`, `%FTD-5-751025:`, `%ASA-auth-4-113005:` (also `%PIX-`). Linear, no regex. */
export function findMarker(text: string): Marker | undefined {
  const limit = Math.min(text.length, MARKER_WINDOW);
  let from = 0;
  while (from < limit) {
    const p = text.indexOf('%', from);
    if (p < 0 || p >= limit) return undefined;
    from = p + 1;
    const tag = text.slice(p + 1, p + 5);
    if (tag !== 'ASA-' && tag !== 'FTD-' && tag !== 'PIX-') continue;
    let i = p + 5;
    // optional lower-case class: "auth-"
    let k = i;
    while (k < text.length && k - i < 12 && text.charCodeAt(k) >= 97 && text.charCodeAt(k) <= 122) k++;
    if (k > i && text[k] === '-') i = k + 1;
    if (!isDigit(text.charCodeAt(i)) || text[i + 1] !== '-') continue;
    i += 2;
    const s = i;
    while (i < text.length && i - s < 6 && isDigit(text.charCodeAt(i))) i++;
    if (i - s !== 6 || text[i] !== ':') continue;
    let b = i + 1;
    while (b < text.length && text.charCodeAt(b) === 32) b++;
    return { id: text.slice(s, i), start: p, body: b };
  }
  return undefined;
}

/** How long the text before the marker may be: `<166>: 2024 Aug 07 10:29:42 UTC <uuid> : ` is 70. */
const PREFIX_MAX = 120;

/** A piece of a stamp: `2022`, `13:29:11`, `2024-06-26T01:35:42Z`, `Aug`, a zone `UTC` / `EDT`. */
function stampWord(w: string): boolean {
  if (MONTHS.has(w)) return true;
  if (w.length >= 2 && w.length <= 5 && /^[A-Z]+$/.test(w)) return true;
  if (w.length === 0 || w.length > 40 || !isDigit(w.charCodeAt(0))) return false;
  for (let i = 0; i < w.length; i++) {
    const c = w[i];
    if (!isDigit(w.charCodeAt(i)) && c !== ':' && c !== '.' && c !== '-' && c !== '+' && c !== '/' && c !== 'T' && c !== 'Z') return false;
  }
  return true;
}

/** the device id: a host name, an address (`logging device-id ipaddress`), a context name */
const HOST = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/;

/**
 * What ASA and FTD put before the marker: a PRI, a stamp (`Jun 22 2022 13:29:11`,
 * `2024-06-26T01:35:42Z:`, `Sep 25 12:42:21 EDT:`) and the device's name with a colon (`single :`,
 * `dev01:`). Anything else (`Invalid user `) makes the marker text another message quotes.
 */
function devicePrefix(prefix: string): boolean {
  const ws = words(prefix, 12);
  if (ws.length > 10) return false;
  let host = false;
  let colon = false;
  for (let k = 0; k < ws.length; k++) {
    let w = ws[k];
    if (k === 0 && w.startsWith('<')) {
      const gt = w.indexOf('>');
      if (gt < 2 || gt > 4) return false;
      w = w.slice(gt + 1);
      if (w === '') continue;
    }
    if (w === ':') {
      colon = true;
      continue;
    }
    if (host) return false; // after the device's name only its colon
    const t = w.endsWith(':') ? w.slice(0, -1) : w;
    if (stampWord(t)) continue;
    if (!HOST.test(t)) return false;
    host = true;
    colon = t !== w;
  }
  return !host || colon;
}

/** The marker that opens `text` (after what devicePrefix allows); a marker further in is not ASA's. */
export function leadingMarker(text: string): Marker | undefined {
  const m = findMarker(text);
  return m && m.start <= PREFIX_MAX && devicePrefix(text.slice(0, m.start)) ? m : undefined;
}

/**
 * The message with its marker: where the header took the marker for the tag (`Nov 23 11:59:59
 * 10.1.1.1 %ASA-4-722051: …`, a relay's or file's form of ASA's output without a stamp;
 * `<166>May 01 2026 09:24:32Z  %FTD-6-…`), the tag put back in front of the message.
 */
function markedText(syslog: LineInput['syslog']): string {
  const app = syslog.appName;
  if (app === undefined || syslog.procId !== undefined || app.length > 40 || app.charCodeAt(0) !== 37 /* % */) return syslog.msg;
  const m = findMarker(`${app}:`);
  return m && m.start === 0 && m.body === app.length + 1 ? `${app}: ${syslog.msg}` : syslog.msg;
}

/** Tags ASA lines come with: the marker read as a tag, a name such as `CiscoASA` (else the host name read as a tag). */
function asaTag(app: string): boolean {
  return app.startsWith('%ASA-') || app.startsWith('%FTD-') || app.startsWith('%PIX-') || /^(cisco|asa|ftd|pix|firepower)/i.test(app);
}

/** A value written bare (`VPN_USERS`) or in angle brackets (`<GROUP 1>`), ended by `next` (` User `). */
function readUntil(body: string, i: number, next: string): { value: string; end: number } | undefined {
  if (body[i] === '<') {
    const e = body.indexOf('>' + next, i + 1);
    if (e < 0) return undefined;
    return { value: body.slice(i + 1, e), end: e + 1 + next.length };
  }
  const e = body.indexOf(next, i);
  if (e < 0) return undefined;
  return { value: body.slice(i, e), end: e + next.length };
}

/** A single value, bare (to the next space) or bracketed. */
function readOne(body: string, i: number): { value: string; end: number } {
  if (body[i] === '<') {
    const e = body.indexOf('>', i + 1);
    if (e >= 0) return { value: body.slice(i + 1, e), end: e + 1 };
  }
  let e = i;
  while (e < body.length && body.charCodeAt(e) !== 32) e++;
  return { value: body.slice(i, e), end: e };
}

interface Gui {
  group: string;
  user: string;
  ip: string;
  /** the text after the IP value */
  rest: string;
}

/** `Group <g> User <u> IP <ip> rest` (brackets optional, values may contain spaces when bracketed) */
function groupUserIp(body: string): Gui | undefined {
  if (!body.startsWith('Group ')) return undefined;
  const g = readUntil(body, 6, ' User ');
  if (!g) return undefined;
  const u = readUntil(body, g.end, ' IP ');
  if (!u) return undefined;
  const ip = readOne(body, u.end);
  return { group: g.value, user: u.value, ip: ip.value, rest: body.slice(ip.end).trimStart() };
}

interface IkeHeader {
  group: string;
  user: string;
  ip: string;
  rest: string;
}

/** `Group = g, Username = u, IP = ip, rest` (the ISAKMP/session prefix) */
function groupEqUserIp(body: string): IkeHeader | undefined {
  if (!body.startsWith('Group = ')) return undefined;
  const u = body.indexOf(', Username = ', 8);
  if (u < 0) return undefined;
  const ip = body.indexOf(', IP = ', u + 13);
  if (ip < 0) return undefined;
  const e = body.indexOf(',', ip + 7);
  const end = e < 0 ? body.length : e;
  return {
    group: body.slice(8, u),
    user: body.slice(u + 13, ip),
    ip: body.slice(ip + 7, end).trim(),
    rest: body.slice(Math.min(body.length, end + 1)).trimStart(),
  };
}

/** `0h:32m:16s`, `1d 19h:41m:14s`, `1:02:03` → seconds */
export function durationSeconds(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || t.length > 40) return undefined;
  let total = 0;
  let num = -1;
  const bare: number[] = [];
  let sawUnit = false;
  for (let i = 0; i <= t.length; i++) {
    const c = i < t.length ? t[i] : ' ';
    if (c >= '0' && c <= '9') {
      num = (num < 0 ? 0 : num * 10) + (c.charCodeAt(0) - 48);
      continue;
    }
    const mult = c === 'd' ? 86400 : c === 'h' ? 3600 : c === 'm' ? 60 : c === 's' ? 1 : 0;
    if (mult) {
      if (num < 0) return undefined;
      total += num * mult;
      num = -1;
      sawUnit = true;
    } else if (c === ':' || c === ' ') {
      if (num >= 0) bare.push(num);
      num = -1;
    } else {
      return undefined;
    }
  }
  if (sawUnit) return bare.length === 0 ? total : undefined;
  if (bare.length === 0 || bare.length > 3) return undefined;
  let s = 0;
  for (const v of bare) s = s * 60 + v;
  return s;
}

/** An address worth reporting: valid and not the unspecified `0.0.0.0` / `::`. */
function addr(text: string | undefined): string | undefined {
  const ip = canonicalIp(text);
  return ip && ip !== '0.0.0.0' && ip !== '::' ? ip : undefined;
}

/** `host:port` split on the last colon (IPv6 hosts keep their colons). */
function hostOfHostPort(text: string): string {
  const i = text.lastIndexOf(':');
  return i < 0 ? text : text.slice(0, i);
}

/** The value after `key` up to the next `,` (or the end), trimmed. */
function commaValue(body: string, key: string): string | undefined {
  const k = body.indexOf(key);
  if (k < 0) return undefined;
  const s = k + key.length;
  const e = body.indexOf(',', s);
  return body.slice(s, e < 0 ? body.length : e).trim();
}

interface Inner {
  ip: string;
  ip6?: string;
}

class CiscoAsaParser implements LineParser {
  /** user + public address → the inner address(es) of that session, for session-end lines */
  private readonly sessions = new BoundedMap<string, Inner>(10_000);
  /** PPTP/L2TP tunnel id → inner address */
  private readonly tunnels = new BoundedMap<string, Inner>(2_000);

  parse(input: LineInput): SightingDraft[] {
    const text = markedText(input.syslog);
    const m = leadingMarker(text);
    if (!m) return [];
    const body = text.slice(m.body);
    const drafts = this.message(m.id, body);
    if (drafts.length && input.syslog.time === undefined) {
      const at = stampBefore(text, m.start, input.zone, input.receivedAt.getTime());
      if (at) for (const d of drafts) d.at ??= at;
    }
    return drafts;
  }

  private message(id: string, body: string): SightingDraft[] {
    switch (id) {
      case '722051':
        return this.svcAddress(body);
      case '751025':
        return this.ikev2Address(body);
      case '113019':
        return this.sessionDisconnected(body);
      case '716002':
      case '722038':
        return this.sessionEnd(body, ['WebVPN session terminated', 'SVC terminating session']);
      case '737010':
        return this.ipaa(body, 'AAA assigned address ', 'tunnel-up', true);
      case '737026':
        return this.ipaa(body, 'Client assigned', 'tunnel-up');
      case '713228':
        return this.ikev1Assigned(body);
      case '737014':
        return this.ipaa(body, 'Freeing AAA address ', 'tunnel-down');
      case '737015':
        return this.ipaa(body, 'Freeing DHCP address ', 'tunnel-down');
      case '737016':
        return this.ipaa(body, 'Freeing local pool', 'tunnel-down');
      case '603104':
      case '603106':
      case '603108':
        return this.pppUp(body);
      case '603105':
      case '603107':
      case '603109':
        return this.pppDown(body);
      case '746012':
      case '746013':
        return this.identity(id, body);
      default:
        // 113039 / 716001 / 722022 / 722033: session or connection start without the inner
        // address; 722023 / 722028 / 722032 / 722037 / 716058 / 716059: sub-connections of a
        // session that carries on; 721016 / 721018: failover replication; everything else.
        return [];
    }
  }

  /** 722051: Group <g> User <u> IP <public> IPv4 Address <a> IPv6 address <b> assigned to session */
  private svcAddress(body: string): SightingDraft[] {
    const g = groupUserIp(body);
    if (!g || !g.rest.includes('assigned to session')) return [];
    let ip4: string | undefined;
    let ip6: string | undefined;
    const a4 = g.rest.indexOf('IPv4 Address ');
    if (a4 >= 0) ip4 = addr(readOne(g.rest, a4 + 13).value);
    const a6 = g.rest.indexOf('IPv6 address ');
    if (a6 >= 0) ip6 = addr(readOne(g.rest, a6 + 13).value);
    return this.up(ip4, ip6, g.user, g.ip);
  }

  /**
   * 751025: Local:<a>:<port> Remote:<b>:<port> Username:<u> [IKEv2] Group:<g> IPv4 Address=<a>
   * IPv6 address=<b> assigned to session
   */
  private ikev2Address(body: string): SightingDraft[] {
    if (!body.includes('assigned to session')) return [];
    const r = body.indexOf('Remote:');
    const u = body.indexOf('Username:');
    const g = body.indexOf(' Group:', u);
    if (r < 0 || u < 0 || g < 0) return [];
    const remoteTok = words(body.slice(r + 7, u), 2)[0] ?? '';
    const remote = hostOfHostPort(remoteTok);
    let user = body.slice(u + 9, g).trim();
    for (const proto of [' IKEv2', ' IKEv1']) if (user.endsWith(proto)) user = user.slice(0, -proto.length).trim();
    const a4 = body.indexOf('IPv4 Address=', g);
    const a6 = body.indexOf('IPv6 address=', g);
    const ip4 = a4 >= 0 ? addr(readOne(body, a4 + 13).value) : undefined;
    const ip6 = a6 >= 0 ? addr(readOne(body, a6 + 13).value) : undefined;
    return this.up(ip4, ip6, user, remote);
  }

  private up(ip4: string | undefined, ip6: string | undefined, user: string, remote: string): SightingDraft[] {
    const ip = ip4 ?? ip6;
    if (!ip) return [];
    const d: SightingDraft = { kind: 'tunnel-up', ip };
    if (ip4 && ip6) d.ip6 = ip6;
    if (user) d.user = user;
    setRemote(d, remote);
    this.sessions.set(sessionKey(user, remote), { ip, ip6: d.ip6 });
    return [d];
  }

  /**
   * 713228 (IKEv1 remote access, severity 4): Group = g, Username = u, IP = public, Assigned private
   * IP address <a> [to remote user]. A device logging at "warnings" sends this and not 737026.
   */
  private ikev1Assigned(body: string): SightingDraft[] {
    const h = groupEqUserIp(body);
    const key = 'Assigned private IP address ';
    if (!h || !h.rest.startsWith(key)) return [];
    return this.up(addr(readOne(h.rest, key.length).value), undefined, h.user, h.ip);
  }

  /** 113019: Group = g, Username = u, IP = public, Session disconnected. Session Type: T, Duration: D, ... */
  private sessionDisconnected(body: string): SightingDraft[] {
    const h = groupEqUserIp(body);
    if (!h || !h.rest.startsWith('Session disconnected')) return [];
    const type = commaValue(h.rest, 'Session Type:');
    if (type !== undefined && type.toLowerCase().startsWith('lan-to-lan')) return [];
    const d = this.down(h.user, h.ip);
    const dur = commaValue(h.rest, 'Duration:');
    const s = dur === undefined ? undefined : durationSeconds(dur);
    if (s !== undefined) d.durationS = s;
    return [d];
  }

  /** 716002 / 722038: Group <g> User <u> IP <public> WebVPN session terminated: reason */
  private sessionEnd(body: string, phrases: string[]): SightingDraft[] {
    const g = groupUserIp(body);
    if (!g || !phrases.some((p) => g.rest.startsWith(p))) return [];
    return [this.down(g.user, g.ip)];
  }

  private down(user: string, remote: string): SightingDraft {
    const inner = this.sessions.get(sessionKey(user, remote));
    const d: SightingDraft = { kind: 'tunnel-down', ip: inner?.ip ?? UNKNOWN_IP };
    if (inner?.ip6) d.ip6 = inner.ip6;
    if (user) d.user = user;
    setRemote(d, remote);
    return d;
  }

  /**
   * IPAA: `Session=0x.., Client assigned <ip> from local pool [<pool>]`, `.. Client assigned from
   * local pool <ip>`, `.. Freeing local pool [<pool>] address <ip>`, `.. AAA assigned address <ip>,
   * succeeded`, `.. Freeing AAA|DHCP address <ip>`. The first address on the line after the phrase.
   */
  private ipaa(body: string, phrase: string, kind: 'tunnel-up' | 'tunnel-down', mustSucceed = false): SightingDraft[] {
    if (!body.startsWith('IPAA:')) return [];
    const p = body.indexOf(phrase);
    if (p < 0) return [];
    if (mustSucceed && !body.includes(', succeeded')) return [];
    for (const w of words(body.slice(p + phrase.length), 16)) {
      const ip = addr(w.endsWith(',') ? w.slice(0, -1) : w);
      if (ip) return [{ kind, ip }];
    }
    return [];
  }

  /**
   * 603104 `PPTP Tunnel created, tunnel_id is N, remote_peer_ip is R, ..., client_dynamic_ip is A, username is U, ...`,
   * 603106 the same for L2TP, and the older 603108 form `Built PPTP Tunnel at IF, tunnel-id = N,
   * remote-peer = R, ..., client-dynamic-ip = A, username = U`. PPPoE (the ASA as a PPPoE client) is not a host.
   */
  private pppUp(body: string): SightingDraft[] {
    if (isPppoe(body)) return [];
    const ip = addr(pppField(body, ['client_dynamic_ip', 'client-dynamic-ip']));
    if (!ip) return [];
    const d: SightingDraft = { kind: 'tunnel-up', ip };
    const user = pppField(body, ['username']);
    if (user) d.user = user;
    const peer = pppField(body, ['remote_peer_ip', 'remote-peer']);
    if (peer) setRemote(d, peer);
    const id = pppField(body, ['tunnel_id', 'tunnel-id']);
    if (id) this.tunnels.set(id, { ip });
    return [d];
  }

  /** 603105 / 603107 `PPTP|L2TP Tunnel deleted, tunnel_id = N, remote_peer_ip = R`; 603109 only when not PPPoE */
  private pppDown(body: string): SightingDraft[] {
    if (isPppoe(body) || !(body.includes('PPTP') || body.includes('L2TP'))) return [];
    const id = pppField(body, ['tunnel_id', 'tunnel-id']);
    const inner = id ? this.tunnels.get(id) : undefined;
    if (id) this.tunnels.delete(id);
    const d: SightingDraft = { kind: 'tunnel-down', ip: inner?.ip ?? UNKNOWN_IP };
    const peer = pppField(body, ['remote_peer_ip', 'remote-peer']);
    if (peer) setRemote(d, peer);
    return [d];
  }

  /** 746012/746013 `user-identity: Add|Delete IP-User mapping <ip> - <DOMAIN\user> Succeeded - VPN user` */
  private identity(id: string, body: string): SightingDraft[] {
    const verb = id === '746012' ? 'Add IP-User mapping ' : 'Delete IP-User mapping ';
    const p = body.indexOf(verb);
    if (p < 0 || !body.trimEnd().endsWith('VPN user')) return [];
    const w = words(body.slice(p + verb.length), 8);
    const ip = addr(w[0]);
    if (!ip || w[1] !== '-' || w[3] !== 'Succeeded') return [];
    const d: SightingDraft = { kind: id === '746012' ? 'tunnel-up' : 'tunnel-down', ip };
    if (w[2]) d.user = w[2];
    return [d];
  }
}

function isPppoe(body: string): boolean {
  return body.includes('PPPOE') || body.includes('PPOE') || body.includes('PPPoE');
}

/** `key is value` or `key = value`, up to the next comma. */
function pppField(body: string, keys: string[]): string | undefined {
  for (const k of keys) {
    for (const sep of [' = ', ' is ']) {
      const v = commaValue(body, k + sep);
      if (v) return v;
    }
  }
  return undefined;
}

function sessionKey(user: string, remote: string): string {
  return `${user}\u0000${canonicalIp(remote) ?? remote}`;
}

function setRemote(d: SightingDraft, remote: string): void {
  if (!remote) return;
  const ip = canonicalIp(remote);
  if (ip) d.remoteIp = ip;
  else if (/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(remote)) d.remoteHost = remote;
}

/**
 * When the header parser found no time (`<166>2024-06-26T01:35:42Z: %ASA-...`: an ISO stamp
 * followed by a colon), read an ISO stamp from the token right before the marker.
 */
function stampBefore(text: string, markerAt: number, zone: string, near: number): string | undefined {
  const head = words(text.slice(0, markerAt), 8);
  for (let i = head.length - 1; i >= 0; i--) {
    let t = head[i];
    while (t.endsWith(':')) t = t.slice(0, -1);
    const gt = t.indexOf('>');
    if (t.startsWith('<') && gt > 0) t = t.slice(gt + 1);
    // (an offset-less stamp's fall-back hour is read by when the line came: util/time.ts wallToUtc)
    const ms = parseIsoTime(t, zone, near);
    if (ms !== undefined) return new Date(ms).toISOString();
  }
  return undefined;
}

const plugin: ParserPlugin = {
  id: 'cisco-asa',
  description: 'Cisco ASA / FTD remote-access VPN syslog (%ASA-/%FTD-): 722051, 751025, 713228, 737026/737016, 113019, 716002, PPTP/L2TP',
  claims: { anchors: ['%ASA-', '%FTD-', '%PIX-'], rawAnchors: ['%ASA-', '%FTD-', '%PIX-'] },
  detect(input: LineInput): boolean {
    // (the raw line: where the header took the marker for a tag, `<166>May 01 2026 09:24:32Z  %FTD-6-113005: …`)
    if (!mayClaimByContent(input.syslog, asaTag)) return false;
    return leadingMarker(markedText(input.syslog)) !== undefined || leadingMarker(input.raw) !== undefined;
  },
  create: () => new CiscoAsaParser(),
};

export default plugin;
