/**
 * Sighting JSON (the DESIGN.md contract) from outside: scripts, runZero webhooks, a NAC. Each
 * object is checked field by field and canonicalised (ip, mac), never trusted as it comes.
 * The body of /api/v1/sightings is one object, an array of them, or JSON Lines.
 */
import { CLOCK_SET_FROM_MS, MAX_AHEAD_MS, MAX_DURATION_S, SIGHTING_KINDS, type Sighting, type SightingKind } from '../../sighting.js';
import { canonicalIp } from '../../util/ip.js';
import { normalizeMac } from '../../util/mac.js';
import { storableText } from '../../util/text.js';

const STRING_FIELDS = ['duid', 'clientId', 'hostname', 'user', 'remoteHost'] as const;
const KNOWN = new Set(['kind', 'ip', 'ip6', 'mac', 'duid', 'clientId', 'hostname', 'user', 'remoteIp', 'remoteHost', 'at', 'expiresAt', 'durationS', 'format', 'source', 'line']);
/** longest name or id we store (a hostile sender must not fill the database through one field) */
const MAX_FIELD = 255;
/** `expiresAt` at most this long after `at` (the longest `durationS`; later is cut to it) */
const MAX_LEASE_MS = MAX_DURATION_S * 1000;

export type SightingCheck = { ok: true; sighting: Sighting } | { ok: false; error: string };

function isoTime(v: unknown, field: string): string | { error: string } | undefined {
  if (v === undefined) return undefined;
  const m = typeof v === 'string' ? /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(:(\d\d)(\.\d+)?)?(Z|[+-](\d\d):?(\d\d))$/.exec(v) : null;
  if (!m) return { error: `${field}: expected an ISO 8601 time with a zone, e.g. 2026-11-22T19:54:11Z` };
  // (Date.parse rolls 2026-02-30 over to 2026-03-02 and takes offsets past ±23:59: each field is checked first)
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[7] ?? '0'].map(Number);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59 || (m[10] !== undefined && (Number(m[10]) > 23 || Number(m[11]) > 59))) {
    return { error: `${field}: not a valid time (${v})` };
  }
  const ms = Date.parse(m[0]);
  if (!Number.isFinite(ms)) return { error: `${field}: not a valid time (${v})` };
  return new Date(ms).toISOString();
}

/**
 * Check one Sighting JSON object. `format` defaults to `json`; `source` is always ours (where it
 * came in), whatever the sender wrote; `at` defaults to `defaultAt` (the receive time, or the
 * event's time in a HEC envelope) and may be at most a day past `receivedAt`.
 */
export function checkSighting(o: unknown, source: string, defaultAt: Date, receivedAt: Date = defaultAt): SightingCheck {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { ok: false, error: 'expected a JSON object' };
  const r = o as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !KNOWN.has(k));
  if (unknown.length) return { ok: false, error: `unknown field(s): ${unknown.slice(0, 5).join(', ')}` };
  if (typeof r.kind !== 'string' || !SIGHTING_KINDS.includes(r.kind as SightingKind)) return { ok: false, error: `kind: one of ${SIGHTING_KINDS.join(', ')}` };
  const ip = typeof r.ip === 'string' ? canonicalIp(r.ip) : undefined;
  if (!ip) return { ok: false, error: 'ip: not an IPv4 or IPv6 address' };
  const at = isoTime(r.at, 'at');
  if (typeof at === 'object') return { ok: false, error: at.error };
  if (at !== undefined && Date.parse(at) > receivedAt.getTime() + MAX_AHEAD_MS) return { ok: false, error: `at: more than a day after it was received (${receivedAt.toISOString()})` };
  if (at !== undefined && Date.parse(at) < CLOCK_SET_FROM_MS) return { ok: false, error: 'at: before 2000 (a clock never set?): send the time of the event, or no at for the time of receipt' };
  const s: Sighting = { kind: r.kind as SightingKind, ip, at: at ?? defaultAt.toISOString(), format: 'json', source };
  if (r.format !== undefined) {
    if (typeof r.format !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(r.format)) return { ok: false, error: 'format: lower-case letters, digits and ._- (at most 64)' };
    s.format = r.format;
  }
  if (r.ip6 !== undefined) {
    const v = typeof r.ip6 === 'string' ? canonicalIp(r.ip6) : undefined;
    if (!v || !v.includes(':')) return { ok: false, error: 'ip6: not an IPv6 address' };
    s.ip6 = v;
  }
  if (r.remoteIp !== undefined) {
    const v = typeof r.remoteIp === 'string' ? canonicalIp(r.remoteIp) : undefined;
    if (!v) return { ok: false, error: 'remoteIp: not an IP address' };
    s.remoteIp = v;
  }
  if (r.mac !== undefined) {
    const v = typeof r.mac === 'string' ? normalizeMac(r.mac) : undefined;
    if (!v) return { ok: false, error: 'mac: not a MAC address' };
    s.mac = v;
  }
  for (const f of STRING_FIELDS) {
    const v = r[f];
    if (v === undefined) continue;
    // (a lone surrogate, \ud800 in the JSON, is no text either: PostgreSQL refuses it like a NUL)
    if (typeof v !== 'string' || v.length > MAX_FIELD || /[\u0000-\u001f\u007f]/.test(v) || storableText(v) !== v) return { ok: false, error: `${f}: a string of at most ${MAX_FIELD} characters without control characters` };
    if (v !== '') s[f] = v;
  }
  const exp = isoTime(r.expiresAt, 'expiresAt');
  if (typeof exp === 'object') return { ok: false, error: exp.error };
  // (an expiry over ten years after `at` is an infinite lease, as an exporter may write 9999-12-31: held that long, not refused)
  if (exp) s.expiresAt = Date.parse(exp) > Date.parse(s.at) + MAX_LEASE_MS ? new Date(Date.parse(s.at) + MAX_LEASE_MS).toISOString() : exp;
  if (r.durationS !== undefined) {
    if (typeof r.durationS !== 'number' || !Number.isInteger(r.durationS) || r.durationS < 0 || r.durationS > MAX_DURATION_S) return { ok: false, error: `durationS: a whole number of seconds, at most ${MAX_DURATION_S} (ten years)` };
    s.durationS = r.durationS;
  }
  return { ok: true, sighting: s };
}

/** The body of /api/v1/sightings: an object, an array, or JSON Lines. */
export function parseSightingBody(body: string): { ok: true; items: unknown[] } | { ok: false; error: string; index?: number } {
  const t = body.trim();
  if (t === '') return { ok: false, error: 'empty body' };
  if (t.startsWith('[')) {
    try {
      const a = JSON.parse(t) as unknown;
      return Array.isArray(a) ? { ok: true, items: a } : { ok: false, error: 'malformed JSON' };
    } catch (err) {
      return { ok: false, error: `malformed JSON: ${(err as Error).message}` };
    }
  }
  const items: unknown[] = [];
  const lines = t.split(/\r?\n/);
  // one (possibly pretty-printed) object, or one object per line
  try {
    return { ok: true, items: [JSON.parse(t)] };
  } catch {
    /* JSON Lines below */
  }
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    try {
      items.push(JSON.parse(lines[i]));
    } catch (err) {
      return { ok: false, error: `malformed JSON on line ${i + 1}: ${(err as Error).message}`, index: items.length };
    }
  }
  return { ok: true, items };
}
