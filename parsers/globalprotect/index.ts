/**
 * Palo Alto Networks GlobalProtect: the PAN-OS GLOBALPROTECT log type (9.1+) as CSV over syslog,
 * and custom key=value formats using PAN-OS field names. See README.md.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft } from '../../src/sighting.js';
import { BoundedMap, MONTH_ABBREVIATIONS as MONTHS, csvFields, isDigits, keyValues, mayClaimByContent } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';
import { parseIsoTime } from '../../src/util/time.js';

/** The inner address used when a session end names no address and no earlier line told us one. */
export const UNKNOWN_IP = '0.0.0.0';

const MARK = ',GLOBALPROTECT,';
/** How far into the message the type column may sit (header + 3 short columns). */
const MARK_WINDOW = 400;

const UP = new Set(['gateway-connected', 'gateway-getconfig', 'gateway-setup-ipsec', 'gateway-setup-ssl']);
const DOWN = new Set(['gateway-logout', 'gateway-config-release']);

/** The fields this parser reads, whichever form the line came in. */
interface GpEvent {
  eventId: string;
  generated?: string;
  user?: string;
  machine?: string;
  publicIp?: string;
  publicIp6?: string;
  privateIp?: string;
  privateIp6?: string;
  status?: string;
  loginDuration?: string;
  /** High Res Timestamp (PAN-OS 10.0+): milliseconds and the device's offset */
  highRes?: string;
  /** PAN-OS before 9.1 (SYSTEM log): a session is known by its user only */
  legacy?: boolean;
}

/**
 * End of the device's own BSD header inside the message (`Feb 24 22:06:07 BD-Panorama `, a relay
 * having put its header before it), or 0.
 */
function innerHeaderEnd(msg: string): number {
  if (!MONTHS.has(msg.slice(0, 3)) || msg[3] !== ' ') return 0;
  let i = 4;
  if (msg[i] === ' ') i++;
  const d = i;
  while (i < d + 2 && isDigits(msg[i] ?? '')) i++;
  if (i === d || msg[i] !== ' ') return 0;
  const t = msg.slice(i + 1, i + 9);
  if (t[2] !== ':' || t[5] !== ':' || !isDigits(t.slice(0, 2) + t.slice(3, 5) + t.slice(6, 8)) || msg[i + 9] !== ' ') return 0;
  const h = i + 10;
  const sp = msg.indexOf(' ', h);
  if (sp <= h || sp - h > 64 || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(msg.slice(h, sp))) return 0;
  return sp + 1;
}

/**
 * Where the CSV record whose type column is at `p` starts: at the start of the message or after
 * the device's own header, its first column a number. Elsewhere it is text another message quotes.
 */
function recordStart(msg: string, p: number): number {
  const c2 = msg.lastIndexOf(',', p - 1); // after receive time
  if (c2 < 0) return -1;
  const c1 = msg.lastIndexOf(',', c2 - 1); // after future-use
  if (c1 < 0) return -1;
  const start = msg.lastIndexOf(' ', c1 - 1) + 1;
  if (!isDigits(msg.slice(start, c1))) return -1;
  return start === 0 || start === innerHeaderEnd(msg) ? start : -1;
}

/** CSV: the record starts at the column before `receive time,serial,GLOBALPROTECT`. */
function fromCsv(msg: string): GpEvent | undefined {
  const p = msg.indexOf(MARK);
  if (p < 0 || p > MARK_WINDOW) return undefined;
  const start = recordStart(msg, p);
  if (start < 0) return undefined;
  const f = csvFields(msg.slice(start), 64);
  if (f[3] !== 'GLOBALPROTECT' || f.length < 19) return undefined;
  return {
    eventId: f[8], generated: f[6], user: f[12], machine: f[14], publicIp: f[15], publicIp6: f[16],
    privateIp: f[17], privateIp6: f[18], status: f[28], loginDuration: f[30], highRes: f[36],
  };
}

/** a key=value record's first pair: a PAN-OS field name and `=` */
const FIRST_KEY = /^[a-z][a-z0-9_]{0,31}=/;

/** key=value with PAN-OS field names (`eventid=gateway-connected srcuser=… private_ip=…`). */
function fromKv(msg: string): GpEvent | undefined {
  // the record opens the message (`Invalid user eventid=…` is another program's text)
  if (!FIRST_KEY.test(msg.slice(0, 33)) || !msg.includes('eventid=')) return undefined;
  const kv = keyValues(msg, 128);
  const eventId = kv.get('eventid');
  if (!eventId || !(eventId.startsWith('gateway-') || eventId.startsWith('portal-'))) return undefined;
  const type = kv.get('type');
  if (type !== undefined && type.toUpperCase() !== 'GLOBALPROTECT') return undefined;
  if (type === undefined && !kv.has('private_ip') && !kv.has('public_ip')) return undefined;
  return {
    eventId,
    generated: kv.get('time_generated') ?? kv.get('generated_time'),
    user: kv.get('srcuser') ?? kv.get('user'),
    machine: kv.get('machinename'),
    publicIp: kv.get('public_ip'),
    publicIp6: kv.get('public_ipv6'),
    privateIp: kv.get('private_ip'),
    privateIp6: kv.get('private_ipv6'),
    status: kv.get('status'),
    loginDuration: kv.get('login_duration'),
    highRes: kv.get('high_res_timestamp'),
  };
}

const SYSTEM_MARK = ',SYSTEM,globalprotect,';

/** Event ids of the SYSTEM log before PAN-OS 9.1 → the 9.1+ event they correspond to. */
const LEGACY_EVENTS: Record<string, string> = {
  'globalprotectgateway-config-succ': 'gateway-getconfig',
  'globalprotectgateway-config-release': 'gateway-config-release',
  'globalprotectgateway-logout-succ': 'gateway-logout',
};

/** `Key: value` in a SYSTEM description (`User name: dan, Private IP: 10.0.0.1, ...`): up to the next `, ` or the end. */
function descValue(desc: string, key: string): string | undefined {
  const k = desc.indexOf(key + ': ');
  if (k < 0) return undefined;
  const s = k + key.length + 2;
  const e = desc.indexOf(', ', s);
  let v = desc.slice(s, e < 0 ? desc.length : e).trim();
  if (e < 0 && v.endsWith('.')) v = v.slice(0, -1);
  return v || undefined;
}

/**
 * PAN-OS before 9.1: GlobalProtect events are SYSTEM log entries, subtype `globalprotect`
 * (PAN-OS syslog field list, System log: receive time, serial, type, subtype, -, generated time,
 * vsys, event id, object, -, -, module, severity, description, ...), the details in the free-text
 * description.
 */
function fromSystem(msg: string): GpEvent | undefined {
  const p = msg.indexOf(SYSTEM_MARK);
  if (p < 0 || p > MARK_WINDOW) return undefined;
  const start = recordStart(msg, p);
  if (start < 0) return undefined;
  const f = csvFields(msg.slice(start), 24);
  if (f[3] !== 'SYSTEM' || f[4] !== 'globalprotect' || f.length < 15 || !f[8].startsWith('globalprotect')) return undefined;
  const desc = f[14];
  return {
    eventId: (Object.hasOwn(LEGACY_EVENTS, f[8]) ? LEGACY_EVENTS[f[8]] : undefined) ?? f[8], generated: f[6], user: descValue(desc, 'User name'),
    machine: descValue(desc, 'Device name'), privateIp: descValue(desc, 'Private IP'), legacy: true,
  };
}

function event(msg: string): GpEvent | undefined {
  return fromCsv(msg) ?? fromSystem(msg) ?? fromKv(msg);
}

/** `0.0.0.0`, `::` and empty mean "not set". */
function addr(text: string | undefined): string | undefined {
  const ip = canonicalIp(text);
  return ip && ip !== '0.0.0.0' && ip !== '::' ? ip : undefined;
}

/**
 * The High Res Timestamp when it carries its offset (`2026-11-01T01:10:00.123-05:00`): exact, the
 * fall-back hour included. Without one it is no better than the generated time.
 */
function exactTime(text: string | undefined): string | undefined {
  if (!text || text.length < 20 || text.length > 40) return undefined;
  const z = text.endsWith('Z') || text.endsWith('z');
  const off = text.length >= 6 && (text[text.length - 6] === '+' || text[text.length - 6] === '-') && text[text.length - 3] === ':';
  if (!z && !off) return undefined;
  const ms = parseIsoTime(text, 'UTC');
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** offsets span −12 to +14 h: a High Res Timestamp further from the generated time is not this event's */
const HIGH_RES_NEAR_MS = 15 * 3_600_000;

/**
 * The High Res Timestamp where it is plausible, else the generated time: devices send
 * `1970-01-01T00:00:00.000+00:00` there too (the public corpus has one).
 */
function datedBy(highRes: string | undefined, generated: string | undefined): string | undefined {
  if (highRes === undefined) return generated;
  const h = Date.parse(highRes);
  if (generated !== undefined) return Math.abs(h - Date.parse(generated)) <= HIGH_RES_NEAR_MS ? highRes : generated;
  return h >= Date.UTC(2000, 0, 1) ? highRes : undefined;
}

/** `2021/03/24 11:29:49` (device time, configured zone; the fall-back hour's read by `near`, when the line came) or `2021-10-22T16:10:05.000000Z`. */
function panTime(text: string | undefined, zone: string, near: number): string | undefined {
  if (!text || text.length < 19 || text.length > 40) return undefined;
  const t = text[4] === '/' && text[7] === '/' ? `${text.slice(0, 4)}-${text.slice(5, 7)}-${text.slice(8)}` : text;
  const ms = parseIsoTime(t, zone, near);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

class GlobalProtectParser implements LineParser {
  /** user + machine + public address → private address(es), for logout lines without them */
  private readonly sessions = new BoundedMap<string, { ip: string; ip6?: string; machine?: string }>(10_000);

  parse(input: LineInput): SightingDraft[] {
    const e = event(input.syslog.msg);
    if (!e) return [];
    const up = UP.has(e.eventId);
    if (!up && !DOWN.has(e.eventId)) return [];
    if (e.status && e.status !== 'success') return [];
    const v4 = addr(e.privateIp);
    const v6 = addr(e.privateIp6);
    const pub = addr(e.publicIp) ?? addr(e.publicIp6);
    const key = e.legacy ? `legacy\u0000${e.user ?? ''}` : `${e.user ?? ''}\u0000${e.machine ?? ''}\u0000${pub ?? ''}`;
    let ip = v4 ?? v6;
    let ip6 = v4 && v6 ? v6 : undefined;
    if (up) {
      if (!ip) return [];
      this.sessions.set(key, { ip, ip6, machine: e.machine });
    } else if (!ip) {
      const known = this.sessions.get(key);
      ip = known?.ip ?? UNKNOWN_IP;
      ip6 = known?.ip6;
      e.machine ??= known?.machine;
    }
    if (!up) this.sessions.delete(key);
    const d: SightingDraft = { kind: up ? 'tunnel-up' : 'tunnel-down', ip };
    if (ip6) d.ip6 = ip6;
    if (e.machine) d.hostname = e.machine;
    if (e.user) d.user = e.user;
    if (pub) d.remoteIp = pub;
    const at = datedBy(exactTime(e.highRes), panTime(e.generated, input.zone, input.receivedAt.getTime()));
    if (at) d.at = at;
    if (!up && e.loginDuration) {
      const s = Number(e.loginDuration);
      if (Number.isInteger(s) && s > 0) d.durationS = s;
    }
    return [d];
  }
}

const plugin: ParserPlugin = {
  id: 'globalprotect',
  description: 'Palo Alto GlobalProtect (PAN-OS GLOBALPROTECT log, CSV or key=value; SYSTEM log before 9.1): gateway-connected/getconfig → tunnel-up, gateway-logout/config-release → tunnel-down',
  claims: { anchors: [MARK, SYSTEM_MARK, 'eventid='] },
  detect(input: LineInput): boolean {
    return mayClaimByContent(input.syslog) && event(input.syslog.msg) !== undefined;
  },
  create: () => new GlobalProtectParser(),
};

export default plugin;
