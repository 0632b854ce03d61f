/**
 * ISC Kea DHCPv4 (and the simple DHCPv6 lease messages), via syslog or Kea's own log file.
 * See README.md for which message IDs make which sighting.
 *
 * A Kea message reads `<SEVERITY> [<logger>.<thread>] <MESSAGE_ID> <client label>: <text>`; the client
 * label is `[hwtype=1 <mac>], cid=[<client-id>|no info], tid=0x..` (v4) or `duid=[..], [hwtype=..], tid=0x..` (v6).
 * Everything is index scans and a bounded word split: linear in the line, never throws.
 */
import type { LineInput, LineParser, ParserPlugin } from '../../src/parsers/plugin.js';
import type { SightingDraft, SightingKind } from '../../src/sighting.js';
import { BoundedMap, mayClaimByContent, toCount, unknownProgramWithPid, words } from '../../src/parsers/text.js';
import { canonicalIp } from '../../src/util/ip.js';
import { normalizeMac } from '../../src/util/mac.js';
import { parseIsoTime } from '../../src/util/time.js';

/** How far into the message the `[kea-dhcp4.` logger mark may sit (severity, tab-export columns). */
const LOGGER_WINDOW = 200;

type Action = 'bind' | 'renew' | 'release' | 'expire' | 'forget';

/** message ID → what it means for the client's binding */
const MESSAGES: Record<string, Action> = {
  DHCP4_LEASE_ALLOC: 'bind', // also logged for renewals: state tells them apart
  DHCP4_LEASE_REUSE: 'renew', // lease caching: an unchanged lease handed out again
  DHCP4_RELEASE: 'release',
  DHCP4_RELEASE_EXPIRED: 'release', // released, kept as expired-reclaimed (lease affinity)
  DHCP4_RELEASE_DELETED: 'release',
  DHCP4_LEASE_EXPIRED: 'expire',
  ALLOC_ENGINE_V4_LEASE_RECLAIM: 'expire', // "reclaiming expired lease for address <ip>" (debug level)
  DHCP4_DECLINE_LEASE: 'forget', // the client refuses the address: no sighting, but it no longer holds it
  DHCP6_LEASE_ALLOC: 'bind',
  DHCP6_LEASE_REUSE: 'renew',
  DHCP6_LEASE_RENEW: 'renew',
  DHCP6_RELEASE_NA: 'release',
  DHCP6_LEASE_EXPIRED: 'expire',
  ALLOC_ENGINE_V6_LEASE_RECLAIM: 'expire',
  DHCP6_DECLINE_LEASE: 'forget',
};

/** Kea's severities (`%-5p`): the word right before the logger bracket */
const SEVERITIES = new Set(['FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG']);
/** the level column of a syslog export (`2024-01-13T06:24:01<TAB>Informational<TAB>kea-dhcp4<TAB>INFO [kea-dhcp4.…`) */
const LEVELS = new Set(['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'informational', 'info', 'debug']);

/** A word that may come before Kea's severity: a stamp piece, a level, the program's name. */
function leadWord(w: string): boolean {
  if (w === 'kea-dhcp4' || w === 'kea-dhcp6' || LEVELS.has(w.toLowerCase())) return true;
  const c = w.charCodeAt(0);
  if (c < 48 || c > 57 || w.length > 40) return false;
  for (let i = 0; i < w.length; i++) {
    const ch = w[i];
    if ((ch < '0' || ch > '9') && ch !== '-' && ch !== ':' && ch !== '.' && ch !== ',' && ch !== 'T' && ch !== 'Z' && ch !== '+') return false;
  }
  return true;
}

/**
 * Where `[kea-dhcp4.`/`[kea-dhcp6.` starts in `msg`, or -1: only where Kea puts it, right after its
 * severity, which opens the message or follows Kea's stamp (its log file) or a level and program
 * column (an export). A mark further into a message is text the message quotes. Linear, bounded.
 */
function loggerMark(msg: string): number {
  const n = Math.min(msg.length, LOGGER_WINDOW);
  let i = 0;
  let prev = '';
  for (let k = 0; k < 7; k++) {
    while (i < n && (msg.charCodeAt(i) === 32 || msg.charCodeAt(i) === 9)) i++;
    if (i >= n) return -1;
    if (msg.charCodeAt(i) === 91 /* [ */) {
      const c = msg.charCodeAt(i + 9);
      const ok = SEVERITIES.has(prev) && msg.startsWith('[kea-dhcp', i) && (c === 52 || c === 54) && msg.charCodeAt(i + 10) === 46;
      return ok ? i : -1; // '4' or '6', then '.'
    }
    const s = i;
    while (i < n && msg.charCodeAt(i) !== 32 && msg.charCodeAt(i) !== 9) i++;
    prev = msg.slice(s, i);
    if (!SEVERITIES.has(prev) && !leadWord(prev)) return -1;
  }
  return -1;
}

/** The text inside `[...]` starting right after `prefix` at or after `from`, bounded to 200 chars. */
function bracketAfter(text: string, prefix: string, from: number, limit: number): string | undefined {
  const i = text.indexOf(prefix, from);
  if (i < 0 || i > limit) return undefined;
  const s = i + prefix.length;
  const e = text.indexOf(']', s);
  if (e < 0 || e - s > 200) return undefined;
  return text.slice(s, e);
}

interface Held {
  ip: string;
  /** epoch ms until which the lease is valid */
  until: number;
}

class KeaParser implements LineParser {
  /** per client key (MAC, else client-id / DUID): the lease it holds, to tell renewals from new leases */
  private readonly held = new BoundedMap<string, Held>(10_000);

  parse(input: LineInput): SightingDraft[] {
    const msg = input.syslog.msg;
    const mark = loggerMark(msg);
    if (mark < 0) return [];
    const close = msg.indexOf(']', mark);
    if (close < 0) return [];
    // the message ID is the first word after the logger bracket; the client label and text follow
    const w = words(msg.slice(close + 1, close + 1 + 160), 2);
    const id = w[0];
    // (own keys only: an id such as `constructor` is no message)
    const action = id && Object.hasOwn(MESSAGES, id) ? MESSAGES[id] : undefined;
    if (!action) return [];
    const idAt = msg.indexOf(id, close);
    const bodyFrom = idAt + id.length;

    // client label: everything up to the first ": " after the ID (bounded)
    const labelEnd = msg.indexOf(': ', bodyFrom);
    const limit = labelEnd < 0 ? Math.min(msg.length, bodyFrom + 600) : labelEnd;
    const hw = bracketAfter(msg, '[hwtype=', bodyFrom, limit);
    let mac: string | undefined;
    if (hw !== undefined) {
      const sp = hw.indexOf(' ');
      if (sp > 0) mac = normalizeMac(hw.slice(sp + 1));
    }
    const cid = bracketAfter(msg, 'cid=[', bodyFrom, limit);
    const duidRaw = bracketAfter(msg, 'duid=[', bodyFrom, limit);
    const clientId = cid && cid !== 'no info' ? cid : undefined;
    const duid = duidRaw && duidRaw !== 'no info' ? duidRaw : undefined;

    const text = labelEnd < 0 ? msg.slice(bodyFrom, bodyFrom + 400) : msg.slice(labelEnd + 2, labelEnd + 2 + 400);
    const tw = words(text, 24);
    const ip = addressIn(tw);
    if (!ip) return [];
    const key = mac ?? clientId ?? duid;
    const at = eventTime(input);

    if (action === 'forget') {
      if (key) this.held.delete(key);
      return [];
    }
    const d: SightingDraft = { kind: 'lease', ip };
    if (mac) d.mac = mac;
    if (clientId) d.clientId = clientId;
    if (duid) d.duid = duid;
    if (at !== undefined) d.at = new Date(at).toISOString();

    if (action === 'release' || action === 'expire') {
      if (key) this.held.delete(key);
      d.kind = action as SightingKind;
      return [d];
    }
    const secs = durationIn(tw);
    if (secs !== undefined) d.durationS = secs;
    let kind: SightingKind = action === 'renew' ? 'renew' : 'lease';
    const header = input.syslog.time !== undefined && Number.isFinite(input.syslog.time) ? input.syslog.time : undefined;
    const now = at ?? header ?? input.receivedAt.getTime();
    if (kind === 'lease' && key) {
      const prev = this.held.get(key);
      if (prev && prev.ip === canonicalIp(ip) && now <= prev.until) kind = 'renew';
    }
    d.kind = kind;
    if (key) {
      const c = canonicalIp(ip);
      if (c) this.held.set(key, { ip: c, until: now + (secs ?? 86_400) * 1000 });
    }
    return [d];
  }
}

/** The address in the message text: after `lease`, `address`, or `lease for address` (v6). */
function addressIn(tw: string[]): string | undefined {
  for (let i = 0; i + 1 < tw.length; i++) {
    if (tw[i] === 'lease' || tw[i] === 'address' || tw[i] === 'addr') {
      let t = tw[i + 1];
      if (t === 'for' && tw[i + 2] === 'address') t = tw[i + 3] ?? '';
      while (t.endsWith('.') || t.endsWith(',')) t = t.slice(0, -1);
      const ip = canonicalIp(t);
      if (ip) return ip;
    }
  }
  return undefined;
}

/** "... for <N> seconds" */
function durationIn(tw: string[]): number | undefined {
  for (let i = 0; i + 2 < tw.length; i++) {
    if (tw[i] === 'for' && tw[i + 2].startsWith('seconds')) {
      const n = toCount(tw[i + 1]);
      if (n !== undefined) return n;
    }
  }
  return undefined;
}

/**
 * Kea's own stamp, `YYYY-MM-DD HH:MM:SS.mmm` in the server's local time (the default pattern of
 * Kea's file and stdout output, `%D{%Y-%m-%d %H:%M:%S.%q} %-5p [%c/%i.%t] %m`; Kea ARM, "Logging").
 * It opens a Kea log file line, and the message of a Kea file relayed by syslog (rsyslog imfile):
 * there it is the event time, to the millisecond, where the relay's header is year-less and later.
 * Read in the configured zone; undefined when the text does not start with one.
 */
function keaStamp(text: string, zone: string, near: number): number | undefined {
  if (text.length < 19 || text.charCodeAt(4) !== 45 || text.charCodeAt(10) !== 32) return undefined;
  let e = 19;
  if (text[e] === '.' || text[e] === ',') {
    e++;
    while (e < text.length && e < 30 && text.charCodeAt(e) >= 48 && text.charCodeAt(e) <= 57) e++;
  }
  return parseIsoTime(text.slice(0, e), zone, near);
}

function eventTime(input: LineInput): number | undefined {
  const near = input.receivedAt.getTime();
  return keaStamp(input.syslog.msg, input.zone, near) ?? (input.syslog.format === 'none' ? keaStamp(input.raw, input.zone, near) : undefined);
}

/**
 * Kea's sentence after the client label for each message ID that makes a sighting, word by word, as
 * its message catalogue prints it (dhcp4_messages.mes, dhcp6_messages.mes, alloc_engine_messages.mes;
 * Kea 1.x printed no `for N seconds`): `A4`/`A6` an IPv4/IPv6 address, `N` a number, `iaid=N`, `P6` an
 * IPv6 prefix `<addr>/<len>`; any other word is itself.
 */
const KEA_SENTENCE_TEXTS: Record<string, string[]> = {
  DHCP4_LEASE_ALLOC: ['lease A4 has been allocated for N seconds', 'lease A4 has been allocated'],
  DHCP4_LEASE_REUSE: ['lease A4 has been reused for N seconds'],
  DHCP4_RELEASE: ['address A4 was released properly'],
  DHCP4_RELEASE_EXPIRED: ['address A4 expired on release'],
  DHCP4_RELEASE_DELETED: ['address A4 was deleted on release'],
  DHCP4_LEASE_EXPIRED: ['reclaiming expired lease for address A4'],
  ALLOC_ENGINE_V4_LEASE_RECLAIM: ['reclaiming expired lease for address A4'],
  DHCP6_LEASE_ALLOC: ['lease for address A6 and iaid=N has been allocated for N seconds', 'lease for address A6 and iaid=N has been allocated'],
  DHCP6_LEASE_RENEW: ['lease for address A6 and iaid=N has been allocated for N seconds', 'lease for address A6 and iaid=N has been allocated'],
  DHCP6_LEASE_REUSE: ['lease for address A6 and iaid=N has been reused for N seconds'],
  DHCP6_RELEASE_NA: ['binding for address A6 and iaid=N was released properly'],
  DHCP6_LEASE_EXPIRED: ['reclaiming expired lease for address A6'],
  ALLOC_ENGINE_V6_LEASE_RECLAIM: ['reclaiming expired lease for prefix P6', 'reclaiming expired lease for address A6'],
};

/** KEA_SENTENCE_TEXTS split into words once (not at every line) */
const KEA_SENTENCES: Record<string, string[][]> = Object.fromEntries(Object.entries(KEA_SENTENCE_TEXTS).map(([id, texts]) => [id, texts.map((t) => t.split(' '))]));

/** Does the word `w` fill the template's word `t`? */
function fills(t: string, w: string): boolean {
  switch (t) {
    case 'A4':
      return !w.includes(':') && canonicalIp(w) !== undefined;
    case 'A6':
      return w.includes(':') && canonicalIp(w) !== undefined;
    case 'N':
      return /^\d{1,10}$/.test(w);
    case 'iaid=N':
      return /^iaid=\d{1,10}$/.test(w);
    case 'P6': {
      const slash = w.indexOf('/');
      return slash > 0 && /^\d{1,3}$/.test(w.slice(slash + 1)) && fills('A6', w.slice(0, slash));
    }
    default:
      return w === t;
  }
}

/**
 * Is the text after the message's client label (its first `: `) exactly Kea's sentence for the
 * message ID (KEA_SENTENCE_TEXTS), with or without a closing full stop? Under an unknown program's tag
 * and pid the line must be that whole: a client's text at the start of another program's line is
 * followed by that program's own words, and any word set let some through (`…: lease 10.0.0.1
 * 203.0.113.5 200 512`, an access log's fields; `…: address … was deleted`: review 47).
 */
function keaSentenceAlone(msg: string): boolean {
  const mark = loggerMark(msg);
  const close = mark < 0 ? -1 : msg.indexOf(']', mark);
  if (close < 0) return false;
  const id = words(msg.slice(close + 1, close + 1 + 160), 1)[0];
  // (own keys only: an id such as `constructor` is no message)
  const sentences = id && Object.hasOwn(KEA_SENTENCES, id) ? KEA_SENTENCES[id] : undefined;
  const label = msg.indexOf(': ', close);
  if (!sentences || label < 0) return false;
  const rest = msg.slice(label + 2);
  if (rest.length > 200) return false;
  const w = words(rest, 17);
  if (w.length === 0) return false;
  const last = w[w.length - 1];
  if (last.endsWith('.')) w[w.length - 1] = last.slice(0, -1);
  return sentences.some((t) => t.length === w.length && t.every((x, i) => fills(x, w[i])));
}

/** Kea's name without its daemon's (a container's, a Kubernetes app's): its lines are claimed by content */
const isKeaName = (app: string): boolean => app === 'kea';

const plugin: ParserPlugin = {
  id: 'kea-dhcp4',
  description: 'ISC Kea DHCPv4/v6 (syslog or Kea log file): DHCP4_LEASE_ALLOC/REUSE, DHCP4_RELEASE, lease reclamation',
  claims: { tags: ['kea-dhcp4', 'kea-dhcp6'], anchors: ['[kea-dhcp'] },
  detect(input: LineInput): boolean {
    const app = input.syslog.appName;
    if (app === 'kea-dhcp4' || app === 'kea-dhcp6') return true;
    // `kea`: a container's output shipped under its name, no pid (fluent-bit, vector); a tag with a
    // pid that is no known program: Docker's syslog driver, the container id
    if (loggerMark(input.syslog.msg) < 0) return false;
    if (mayClaimByContent(input.syslog, isKeaName)) return true;
    // (under an unknown program's tag and pid, the line must be Kea's sentence alone: a client's text
    // at the start of another program's line (an access log's X-Forwarded-For) is followed by that
    // program's own words; fifth and sixth reviews)
    return unknownProgramWithPid(input.syslog) && keaSentenceAlone(input.syslog.msg);
  },
  create: () => new KeaParser(),
};

export default plugin;
