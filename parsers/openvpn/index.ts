/**
 * OpenVPN community server: syslog / file log lines and status files (version 2 and 3).
 * See README.md for which lines make which sighting.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { BoundedMap, mayClaimByContent, unknownProgramWithPid } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';
import { isoOrUndefined, parseIsoTime } from '../../src/util/time.js';

/** The inner address used when a session end names no address and no earlier line told us one. */
export const UNKNOWN_IP = '0.0.0.0';

const POOL = ' MULTI_sva: pool returned ';
const LEARN = ' MULTI: Learn: ';
const PRIMARY = ' MULTI: primary virtual IP for ';
/** Phrases only an OpenVPN server writes that make no sighting, right after the peer (`cn/ip:port `, `ip:port [cn] `) */
const SESSION_MARKERS = [' Peer Connection Initiated with ', ' Inactivity timeout (--'];
/** ... and at the start of the text */
const LEADING_MARKERS = ['MULTI: multi_close_instance', 'Inactivity timeout (--'];
/** What the prefilter looks for (claims.anchors): every phrase detect() needs. */
const MARKERS = [POOL, LEARN, PRIMARY, ...SESSION_MARKERS, ...LEADING_MARKERS, '] received, client-instance '];
const STATUS_PREFIXES = ['CLIENT_LIST', 'ROUTING_TABLE', 'HEADER', 'GLOBAL_STATS'];

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

interface Body {
  text: string;
  /** ISO time read off a file-log stamp (`2025-07-18 12:12:02 us=277382`) */
  at?: string;
}

/**
 * The message without a file-log stamp: `YYYY-MM-DD HH:MM:SS [us=NNNNNN] ` (the syslog header
 * parser does not take a date and time split by a space).
 */
function body(msg: string, zone: string, near: number): Body {
  let text = accessServerLine(msg.trimStart());
  let at: string | undefined;
  // classic log file stamp (C ctime) inside an Access Server wrapper: the header parser did not see it
  const c = ctimeEnd(text);
  if (c > 0) text = text.slice(c);
  if (text.length > 20 && text[4] === '-' && text[7] === '-' && text[10] === ' ' && text[13] === ':' && text[16] === ':' &&
    isDigit(text.charCodeAt(0)) && isDigit(text.charCodeAt(18))) {
    const ms = parseIsoTime(text.slice(0, 19), zone, near);
    if (ms !== undefined) {
      let i = 19;
      while (text.charCodeAt(i) === 32) i++;
      let micros = 0;
      if (text.startsWith('us=', i)) {
        let j = i + 3;
        while (j < text.length && j < i + 9 && isDigit(text.charCodeAt(j))) micros = micros * 10 + text.charCodeAt(j++) - 48;
        i = j;
        while (text.charCodeAt(i) === 32) i++;
      }
      at = new Date(ms + Math.floor(micros / 1000)).toISOString();
      text = text.slice(i);
    }
  }
  // `us=NNNNNN ` after a ctime stamp (the header parser read the stamp itself)
  if (text.startsWith('us=')) {
    let j = 3;
    while (j < text.length && j < 12 && isDigit(text.charCodeAt(j))) j++;
    if (j > 3 && text.charCodeAt(j) === 32) text = text.slice(j + 1).trimStart();
  }
  return { text, at };
}

/**
 * OpenVPN Access Server logs each daemon line wrapped: `[-] OVPN <n> OUT: '<line>'` (openvpnas.log,
 * or syslog under the `openvpnas` tag). The daemon line is inside the quotes.
 */
function accessServerLine(text: string): string {
  let i = text.startsWith('[-] ') ? 4 : 0;
  if (!text.startsWith('OVPN ', i)) return text;
  i += 5;
  const s = i;
  while (i < text.length && i - s < 6 && isDigit(text.charCodeAt(i))) i++;
  if (i === s || !text.startsWith(" OUT: '", i)) return text;
  const inner = text.slice(i + 7);
  return inner.endsWith("'") ? inner.slice(0, -1) : inner;
}

/** End of a leading `Www Mmm DD HH:MM:SS YYYY ` stamp (and a `us=` after it), or 0. */
function ctimeEnd(text: string): number {
  // "Mon Nov 23 13:42:00 2026 " (day space-padded: "Nov  6")
  if (text.length < 25 || text[3] !== ' ' || text[7] !== ' ') return 0;
  let k = 8;
  if (text[k] === ' ') k++;
  while (k < 11 && isDigit(text.charCodeAt(k))) k++;
  if (text[k] !== ' ' || text[k + 3] !== ':' || text[k + 6] !== ':' || text[k + 9] !== ' ') return 0;
  for (const p of [k + 1, k + 2, k + 4, k + 5, k + 7, k + 8, k + 10, k + 11, k + 12, k + 13]) if (!isDigit(text.charCodeAt(p))) return 0;
  if (text[k + 14] !== ' ') return 0;
  return k + 15;
}

interface Peer {
  /** common name (absent before authentication) */
  cn?: string;
  host: string;
  port: string;
  /** state key */
  key: string;
}

/**
 * `cn/real` where real is `ip:port`, `udp4:ip:port` (2.7), `[AF_INET]ip:port`, `2001:db8::1:port`
 * or a host name; the common name may contain spaces, so the real address is after the LAST `/`.
 */
export function parsePeer(text: string): Peer | undefined {
  let t = text.trim();
  const pid = t.lastIndexOf(' peer-id=');
  if (pid > 0) t = t.slice(0, pid);
  if (!t || t.length > 512) return undefined;
  const slash = t.lastIndexOf('/');
  const cn = slash > 0 ? t.slice(0, slash) : undefined;
  let real = slash >= 0 ? t.slice(slash + 1) : t;
  if (real.startsWith('[AF_INET6]')) real = real.slice(10);
  else if (real.startsWith('[AF_INET]')) real = real.slice(9);
  const colon = real.indexOf(':');
  if (colon > 0) {
    const proto = real.slice(0, colon);
    if ((proto.startsWith('udp') || proto.startsWith('tcp')) && proto.length <= 12 && !proto.includes('.')) real = real.slice(colon + 1);
  }
  const last = real.lastIndexOf(':');
  let host = last < 0 ? real : real.slice(0, last);
  const port = last < 0 ? '' : real.slice(last + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host || host.includes(' ')) return undefined;
  return { cn, host, port, key: `${cn ?? ''}\u0000${canonicalIp(host) ?? host}\u0000${port}` };
}

/**
 * The peer that opens an OpenVPN server line: all of `text`, a real address with a port
 * (`cn/1.2.3.4:5678`, `1.2.3.4:5678`, `cn/udp4:1.2.3.4:5678 peer-id=1`). A marker after anything
 * else is text the line quotes.
 */
function leadingPeer(text: string): Peer | undefined {
  if (text.length === 0 || text.charCodeAt(0) === 32) return undefined;
  const p = parsePeer(text);
  return p && p.port !== '' && !p.port.includes(' ') && !p.port.includes('\t') ? p : undefined;
}

/** `<peer> SIGTERM[soft,<reason>] received, client-instance exiting|restarting`: the peer */
function endPeer(text: string): Peer | undefined {
  const i = text.indexOf('] received, client-instance ');
  if (i <= 0) return undefined;
  const what = text.slice(i + 28, i + 38);
  if (!what.startsWith('exiting') && !what.startsWith('restarting')) return undefined;
  const sig = text.lastIndexOf(' SIG', i);
  if (sig <= 0) return undefined;
  let j = sig + 4;
  while (j < i && ((text.charCodeAt(j) >= 65 && text.charCodeAt(j) <= 90) || isDigit(text.charCodeAt(j)))) j++;
  if (text[j] !== '[') return undefined;
  return leadingPeer(text.slice(0, sig));
}

type ServerEvent = { type: 'pool'; peer: Peer; inner: Inner } | { type: 'learn'; peer: Peer; vaddr: string } | { type: 'end'; peer: Peer };

/**
 * The pool / Learn / primary IP / instance-end line `text` is (stamps taken off), each marker right
 * after the peer that opens the text; a marker further in is text the line quotes (a user name
 * logged before authentication: `… deferred for username 'a MULTI: Learn: …'`).
 */
function serverEvent(text: string): ServerEvent | undefined {
  let i = text.indexOf(POOL);
  if (i > 0) {
    const peer = leadingPeer(text.slice(0, i));
    const inner = poolAddresses(text.slice(i + POOL.length));
    return peer && inner ? { type: 'pool', peer, inner } : undefined;
  }
  i = text.indexOf(LEARN);
  if (i > 0) {
    const rest = text.slice(i + LEARN.length);
    const arrow = rest.indexOf(' -> ');
    return arrow < 0 ? undefined : learned(text.slice(0, i), rest.slice(arrow + 4), rest.slice(0, arrow));
  }
  i = text.indexOf(PRIMARY);
  if (i > 0) {
    const rest = text.slice(i + PRIMARY.length);
    const c = rest.lastIndexOf(': ');
    return c < 0 ? undefined : learned(text.slice(0, i), rest.slice(0, c), rest.slice(c + 2));
  }
  const peer = endPeer(text);
  return peer ? { type: 'end', peer } : undefined;
}

/** `<peer> MULTI: Learn: <vaddr> -> <peer>`: multi.c prints the same instance string both times */
function learned(before: string, named: string, vaddr: string): ServerEvent | undefined {
  if (named.trim() !== before) return undefined;
  const peer = leadingPeer(before);
  return peer ? { type: 'learn', peer, vaddr: vaddr.trim() } : undefined;
}

/** Is `text` (the message, stamps taken off) a line of an OpenVPN server's own? */
function serverLine(text: string): boolean {
  for (const m of LEADING_MARKERS) if (text.startsWith(m)) return true;
  if (serverEvent(text)) return true;
  for (const m of SESSION_MARKERS) {
    const i = text.indexOf(m);
    if (i <= 0) continue;
    let peer = text.slice(0, i);
    // `1.2.3.4:5678 [cn] Peer Connection Initiated with …`
    if (peer.endsWith(']')) {
      const b = peer.lastIndexOf(' [');
      if (b > 0) peer = peer.slice(0, b);
    }
    if (leadingPeer(peer)) return true;
  }
  return false;
}

const NOT_ENABLED = '(Not enabled)';

/** `IPv4=a, IPv6=b` and nothing more, either `(Not enabled)` (multi.c, multi_select_virtual_addr) */
function poolAddresses(rest: string): Inner | undefined {
  const r = rest.trimEnd();
  if (!r.startsWith('IPv4=')) return undefined;
  const c = r.indexOf(', IPv6=', 5);
  if (c < 0) return undefined;
  const v4 = r.slice(5, c);
  const v6 = r.slice(c + 7);
  const ok = (v: string) => v === NOT_ENABLED || (v.length > 0 && v.length <= 64 && !/[\s,]/.test(v));
  if (!ok(v4) || !ok(v6)) return undefined;
  return { ip: addr(v4), ip6: addr(v6) };
}

interface Inner {
  ip?: string;
  ip6?: string;
}

function addr(text: string | undefined): string | undefined {
  const ip = canonicalIp(text);
  return ip && ip !== '0.0.0.0' && ip !== '::' ? ip : undefined;
}

function withPeer(d: SightingDraft, peer: Peer): SightingDraft {
  if (peer.cn) d.user = peer.cn;
  const ip = canonicalIp(peer.host);
  if (ip) d.remoteIp = ip;
  else if (/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(peer.host)) d.remoteHost = peer.host;
  return d;
}

/** Column positions of a status file's CLIENT_LIST, from its HEADER line (defaults: 2.4+ layout). */
interface ClientColumns {
  cn: number;
  real: number;
  vaddr: number;
  vaddr6: number;
  since: number;
}
const DEFAULT_COLUMNS: ClientColumns = { cn: 1, real: 2, vaddr: 3, vaddr6: 4, since: 8 };

class OpenVpnParser implements LineParser {
  /** peer (cn + real address) → tunnel addresses it was given */
  private readonly peers = new BoundedMap<string, Inner>(10_000);
  private columns: ClientColumns = DEFAULT_COLUMNS;

  parse(input: LineInput): SightingDraft[] {
    const b = body(input.syslog.msg, input.zone, input.receivedAt.getTime());
    const drafts = this.lines(b.text);
    if (b.at) for (const d of drafts) d.at ??= b.at;
    return drafts;
  }

  private lines(text: string): SightingDraft[] {
    if (text.startsWith('CLIENT_LIST') || text.startsWith('HEADER')) return this.status(text);
    const e = serverEvent(text);
    if (!e) return [];
    if (e.type === 'pool') return this.pool(e.peer, e.inner);
    return e.type === 'learn' ? this.learn(e.vaddr, e.peer) : this.end(e.peer);
  }

  /** `<peer> MULTI_sva: pool returned IPv4=a, IPv6=b` (either may be `(Not enabled)`) */
  private pool(peer: Peer, inner: Inner): SightingDraft[] {
    if (!inner.ip && !inner.ip6) return [];
    this.peers.set(peer.key, inner);
    return [this.up(inner, peer)];
  }

  /** `<peer> MULTI: Learn: <vaddr> -> <peer>` and `<peer> MULTI: primary virtual IP for <peer>: <vaddr>` */
  private learn(vaddr: string, peer: Peer): SightingDraft[] {
    const ip = addr(vaddr); // MACs (TAP mode, `52:54:..@0`) and subnets (`/24`) are not hosts
    if (!ip) return [];
    const known = this.peers.get(peer.key) ?? {};
    const v6 = ip.includes(':');
    if ((v6 ? known.ip6 : known.ip) === ip) return [];
    const inner: Inner = v6 ? { ip: known.ip, ip6: ip } : { ip, ip6: known.ip6 };
    this.peers.set(peer.key, inner);
    return [this.up(inner, peer)];
  }

  private up(inner: Inner, peer: Peer): SightingDraft {
    const d: SightingDraft = { kind: 'tunnel-up', ip: (inner.ip ?? inner.ip6) as string };
    if (inner.ip && inner.ip6) d.ip6 = inner.ip6;
    return withPeer(d, peer);
  }

  /** `<peer> SIGTERM[soft,<reason>] received, client-instance exiting` (or SIGUSR1 .. restarting) */
  private end(peer: Peer): SightingDraft[] {
    if (!peer.cn) return []; // server-side instance lines always carry `cn/real`
    const inner = this.peers.get(peer.key);
    this.peers.delete(peer.key);
    const d: SightingDraft = { kind: 'tunnel-down', ip: inner?.ip ?? inner?.ip6 ?? UNKNOWN_IP };
    if (inner?.ip && inner.ip6) d.ip6 = inner.ip6;
    return [withPeer(d, peer)];
  }

  /** status file version 2 (commas) or 3 (tabs): `HEADER,CLIENT_LIST,...` and `CLIENT_LIST,...` */
  private status(text: string): SightingDraft[] {
    const sep = text[text.indexOf('CLIENT_LIST') + 11] === '\t' ? '\t' : ',';
    const f = text.split(sep, 40);
    if (f[0] === 'HEADER') {
      if (f[1] === 'CLIENT_LIST') {
        const col = (name: string, dflt: number) => {
          const k = f.indexOf(name);
          return k > 0 ? k - 1 : dflt;
        };
        this.columns = {
          cn: col('Common Name', 1), real: col('Real Address', 2), vaddr: col('Virtual Address', 3),
          vaddr6: col('Virtual IPv6 Address', -1), since: col('Connected Since (time_t)', -1),
        };
      }
      return [];
    }
    if (f[0] !== 'CLIENT_LIST') return [];
    const c = this.columns;
    const inner: Inner = { ip: addr(f[c.vaddr]), ip6: c.vaddr6 > 0 ? addr(f[c.vaddr6]) : undefined };
    if (inner.ip?.includes(':')) inner.ip = undefined;
    if (!inner.ip && !inner.ip6) return [];
    const peer = parsePeer(`${f[c.cn] ?? ''}/${f[c.real] ?? ''}`);
    if (!peer) return [];
    this.peers.set(peer.key, inner);
    const d = this.up(inner, peer);
    const since = c.since > 0 ? Number(f[c.since]) : NaN;
    const at = Number.isInteger(since) && since > 0 ? isoOrUndefined(since * 1000) : undefined;
    if (at) d.at = at;
    return [d];
  }
}

/**
 * `openvpn`, and the names a config gives it: `openvpn-server`, OPNsense's `openvpn_server1`
 * (`daemon openvpn_{role}{vpnid}`), `openvpn --daemon openvpn_udp`, Access Server's `openvpnas`.
 */
function isOpenVpnTag(app: string | undefined): boolean {
  return app !== undefined && (app.startsWith('openvpn') || app.startsWith('ovpn-'));
}

/**
 * Tags the Access Server wrapper (`[-] OVPN <n> OUT: '…'`) comes under besides `openvpn*`: its
 * service's name as relayed (`vpnserver`, the peer lines). An allow list: any other program's
 * message may start with that text (a web app logging what a client sent).
 */
const ACCESS_SERVER_TAGS = new Set(['vpnserver']);

const plugin: ParserPlugin = {
  id: 'openvpn',
  description: 'OpenVPN server log (syslog or file) and status files v2/v3: MULTI_sva / MULTI: Learn → tunnel-up, client-instance exiting → tunnel-down',
  claims: { tags: ['openvpn'], tagPrefixes: ['openvpn', 'ovpn-'], anchors: [...STATUS_PREFIXES, ...MARKERS] },
  detect(input: LineInput): boolean {
    const syslog = input.syslog;
    if (isOpenVpnTag(syslog.appName)) return true;
    const text = syslog.msg;
    const head = text.length > 2048 ? text.slice(0, 2048) : text;
    // another program's line is never claimed by what it says; Access Server's wrapper comes under its service's name
    const wrapped = accessServerLine(text.trimStart()) !== text.trimStart();
    if (!mayClaimByContent(syslog, (app) => wrapped && ACCESS_SERVER_TAGS.has(app))) {
      // a tag with a pid that is no known program (a container id): only an exact sighting line
      // (`<peer> MULTI_sva: pool returned …`, Learn, primary IP, instance end) opening the message,
      // its common name without blanks (else `login failed for user a/1.2.3.4:1 MULTI_sva: …`, a
      // message that merely ends with a client's text, would read as one), never the wrapper
      if (wrapped || !unknownProgramWithPid(syslog)) return false;
      const e = serverEvent(body(head, 'UTC', 0).text);
      return e !== undefined && !/[\s]/.test(e.peer.cn ?? '');
    }
    for (const p of STATUS_PREFIXES) {
      if (text.startsWith(p) && (text[p.length] === ',' || text[p.length] === '\t')) {
        return p !== 'HEADER' || text.startsWith('CLIENT_LIST', p.length + 1) || text.startsWith('ROUTING_TABLE', p.length + 1);
      }
    }
    return serverLine(body(head, 'UTC', 0).text);
  },
  create: () => new OpenVpnParser(),
};

export default plugin;
