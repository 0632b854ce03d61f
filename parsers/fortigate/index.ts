/**
 * Fortinet FortiGate (FortiOS) key=value event log: SSL VPN and IPsec dial-up tunnels, and
 * FortiClient endpoint connections. See README.md.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { BoundedMap, keyValues, mayClaimByContent } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';
import { parseIsoTime } from '../../src/util/time.js';

/** The inner address used when a session end names no address and no earlier line told us one. */
export const UNKNOWN_IP = '0.0.0.0';

/** How far into the line `logid=` may start (the device's header fields before it). */
const LOGID_WINDOW = 512;

/**
 * The fields a FortiOS (or FortiAnalyzer) record opens with: `date=` (FortiOS), `logver=` (a
 * FortiAnalyzer forward), `time=` / `type=` (devices set to omit the date), and the other header fields.
 */
const FIRST_KEYS = new Set(['date', 'time', 'logver', 'itime', 'timestamp', 'eventtime', 'devname', 'devid', 'tz', 'type', 'logid']);

/** `logid="0101039947"` / `logid=0101039947`: ten digits. */
function logidOf(kv: Map<string, string>): string | undefined {
  const v = kv.get('logid');
  if (!v || v.length !== 10) return undefined;
  for (let i = 0; i < 10; i++) if (v.charCodeAt(i) < 48 || v.charCodeAt(i) > 57) return undefined;
  return v;
}

/** The key=value text: the message when it opens with a record's first key and has `logid=` near the start. */
function kvText(input: LineInput): string | undefined {
  const msg = input.syslog.msg;
  const eq = msg.indexOf('=');
  // (a key=value pair further into a message is text the message quotes: `Invalid user logid=…`)
  if (eq < 1 || eq > 16 || !FIRST_KEYS.has(msg.slice(0, eq))) return undefined;
  const l = msg.indexOf('logid=');
  if (l < 0 || l > LOGID_WINDOW) return undefined;
  return msg;
}

/** A set value: not empty, not `N/A`. */
function val(kv: Map<string, string>, key: string): string | undefined {
  const v = kv.get(key);
  return v === undefined || v === '' || v === 'N/A' || v === 'n/a' ? undefined : v;
}

function addr(text: string | undefined): string | undefined {
  const ip = canonicalIp(text);
  return ip && ip !== '0.0.0.0' && ip !== '::' ? ip : undefined;
}

/**
 * `date=2020-04-23 time=12:32:48 tz="-0500"` → ISO; without tz the wall time is read in `zone`, the
 * fall-back hour's by `near`, when the line came (util/time.ts wallToUtc).
 */
function eventTime(kv: Map<string, string>, zone: string, near: number): string | undefined {
  const date = kv.get('date');
  const time = kv.get('time');
  if (!date || !time || date.length !== 10 || time.length < 8) return undefined;
  let tz = kv.get('tz') ?? '';
  if (tz && !((tz[0] === '+' || tz[0] === '-') && (tz.length === 5 || tz.length === 6 || tz.length === 3))) tz = '';
  const ms = parseIsoTime(`${date}T${time.slice(0, 8)}${tz}`, zone, near);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/**
 * `eventtime=` (FortiOS 6.2+): epoch in nanoseconds (19 digits), microseconds (16, 6.0) or
 * seconds (10); the time only when the line has no `date=`/`time=`, else what tells the fall-back
 * hour's two readings of a `date=`/`time=` without `tz=` apart.
 */
function epochTime(v: string | undefined): string | undefined {
  if (!v || v.length > 19) return undefined;
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) < 48 || v.charCodeAt(i) > 57) return undefined;
  const scale: Record<number, number> = { 19: 1e6, 16: 1e3, 13: 1, 10: 1e-3 };
  const div = scale[v.length];
  if (div === undefined) return undefined;
  const ms = Math.floor(Number(v) / div);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/**
 * FortiGate as a DHCP server (FortiOS Log Message Reference): 26001 LOG_ID_DHCP_ACK "DHCP Ack log"
 * → lease, 26002 LOG_ID_DHCP_RELEASE "DHCP Release log" → release; fields mac, ip, lease, hostname.
 * Known by the log id, or by `logdesc` where a collector rewrote the id.
 */
function dhcpServer(kv: Map<string, string>, logid: string): SightingDraft | undefined {
  const desc = kv.get('logdesc');
  const ack = logid === '0100026001' || desc === 'DHCP Ack log';
  const release = logid === '0100026002' || desc === 'DHCP Release log';
  if (!ack && !release) return undefined;
  const ip = addr(val(kv, 'ip'));
  if (!ip) return undefined;
  const d: SightingDraft = { kind: ack ? 'lease' : 'release', ip };
  const mac = val(kv, 'mac');
  if (mac) d.mac = mac;
  const host = val(kv, 'hostname');
  if (host) d.hostname = host;
  const lease = Number(kv.get('lease'));
  if (ack && kv.has('lease') && Number.isInteger(lease) && lease > 0) d.durationS = lease;
  return d;
}

interface Tunnel {
  ip: string;
}

class FortiGateParser implements LineParser {
  /** tunnel id (+ user + remote) → inner address, for tunnel-down lines without one */
  private readonly tunnels = new BoundedMap<string, Tunnel>(10_000);

  parse(input: LineInput): SightingDraft[] {
    const text = kvText(input);
    if (!text) return [];
    const kv = keyValues(text, 128);
    const logid = logidOf(kv);
    if (!logid || kv.get('type') !== 'event') return [];
    const subtype = kv.get('subtype');
    let d: SightingDraft | undefined;
    if (subtype === 'vpn') d = this.vpn(kv);
    else if (subtype === 'endpoint') d = this.endpoint(kv, logid);
    else if (subtype === 'system') d = dhcpServer(kv, logid);
    if (!d) return [];
    // (date= and time= without tz= in the fall-back hour: the reading nearest eventtime=, when the
    // line has one, else by when it came; eventtime alone only where date= and time= are missing)
    const epoch = epochTime(kv.get('eventtime'));
    const at = eventTime(kv, input.zone, epoch !== undefined ? Date.parse(epoch) : input.receivedAt.getTime()) ?? epoch;
    if (at) d.at = at;
    return [d];
  }

  /**
   * SSL VPN 0101039947 `action="tunnel-up" tunnelip= remip= user=` and 0101039948
   * `action="tunnel-down" … duration=`; IPsec 0101037138 `action="tunnel-up|tunnel-down"` with
   * `assignip=` (dial-up with mode-config; `N/A` for site-to-site, which is not a host).
   */
  private vpn(kv: Map<string, string>): SightingDraft | undefined {
    const action = kv.get('action');
    if (action !== 'tunnel-up' && action !== 'tunnel-down') return undefined;
    const tunneltype = (kv.get('tunneltype') ?? '').toLowerCase();
    const ipsec = !tunneltype.startsWith('ssl') && (tunneltype.startsWith('ipsec') || kv.has('assignip') || kv.has('vpntunnel'));
    // SSL VPN: tunnelip is the address given to the client. IPsec: assignip is (mode-config).
    const inner = ipsec ? addr(val(kv, 'assignip')) : addr(val(kv, 'tunnelip'));
    const user = (ipsec ? val(kv, 'xauthuser') : undefined) ?? val(kv, 'user');
    const remip = addr(val(kv, 'remip'));
    const key = `${kv.get('tunnelid') ?? ''}\u0000${user ?? ''}\u0000${remip ?? ''}`;
    if (action === 'tunnel-up') {
      if (!inner) return undefined; // SSL web mode, site-to-site IPsec: no inner address
      this.tunnels.set(key, { ip: inner });
      return withFields({ kind: 'tunnel-up', ip: inner }, user, remip);
    }
    const known = this.tunnels.get(key);
    this.tunnels.delete(key);
    if (!inner && !known && ipsec) return undefined; // site-to-site IPsec (or an unknown dial-up) going down
    const d = withFields({ kind: 'tunnel-down', ip: inner ?? known?.ip ?? UNKNOWN_IP }, user, remip);
    const dur = Number(kv.get('duration'));
    if (kv.has('duration') && Number.isInteger(dur) && dur >= 0) d.durationS = dur;
    return d;
  }

  /** FortiClient 0107045057 "connection added" / 0107045058 "connection closed" over a VPN */
  private endpoint(kv: Map<string, string>, logid: string): SightingDraft | undefined {
    if (logid !== '0107045057' && logid !== '0107045058') return undefined;
    const ct = (kv.get('connection_type') ?? '').toLowerCase();
    if (ct !== 'sslvpn' && ct !== 'ipsec' && ct !== 'ipsecvpn') return undefined;
    const ip = addr(val(kv, 'ip'));
    if (!ip) return undefined;
    const d = withFields({ kind: logid === '0107045057' ? 'tunnel-up' : 'tunnel-down', ip }, val(kv, 'user'), undefined);
    const name = val(kv, 'name');
    if (name) d.hostname = name;
    return d;
  }
}

function withFields(d: SightingDraft, user: string | undefined, remip: string | undefined): SightingDraft {
  if (user) d.user = user;
  if (remip) d.remoteIp = remip;
  return d;
}

const plugin: ParserPlugin = {
  id: 'fortigate',
  description: 'Fortinet FortiGate key=value event log (logid=): SSL VPN / IPsec dial-up tunnel-up/down, FortiClient VPN connections, DHCP server Ack/Release',
  claims: { anchors: ['logid='] },
  detect(input: LineInput): boolean {
    if (!mayClaimByContent(input.syslog)) return false;
    const text = kvText(input);
    if (!text) return false;
    const kv = keyValues(text, 48);
    return logidOf(kv) !== undefined && kv.has('type') && (kv.has('date') || kv.has('eventtime') || kv.has('devid'));
  },
  create: () => new FortiGateParser(),
};

export default plugin;
