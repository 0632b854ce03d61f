/**
 * The Splunk HTTP Event Collector protocol, as far as a receiver needs it: the answers (HTTP status,
 * `{"text","code"}` body) and the event body of /services/collector/event.
 *
 * Answers and codes follow Splunk's documentation ("Troubleshoot HTTP Event Collector", status code
 * table, help.splunk.com) and Fluent Bit's in_splunk, which aligned its answers to it (fluent-bit
 * PR #12043: 401 code 2 for a missing header, 401 code 3 for one without the Splunk scheme, 403 code
 * 4 for an unknown token). Event format: "Format events for HTTP Event Collector": concatenated
 * JSON objects (no array), each with `event` (string or object) and optional `time` (epoch seconds,
 * fractions allowed, number or string), `host`, `source`, `sourcetype`, `index`, `fields`.
 */

import { isDateMs } from '../../util/time.js';
import { isLogText } from '../syslog/text.js';

export interface HecAnswer {
  status: number;
  body: { text: string; code: number; 'invalid-event-number'?: number };
}

const answer = (status: number, code: number, text: string): HecAnswer => ({ status, body: { text, code } });

export const HEC = {
  success: () => answer(200, 0, 'Success'),
  tokenRequired: () => answer(401, 2, 'Token is required'),
  invalidAuthorization: () => answer(401, 3, 'Invalid authorization'),
  invalidToken: () => answer(403, 4, 'Invalid token'),
  noData: () => answer(400, 5, 'No data'),
  invalidDataFormat: (n?: number) => {
    const a = answer(400, 6, 'Invalid data format');
    if (n !== undefined) a.body['invalid-event-number'] = n;
    return a;
  },
  internalError: () => answer(500, 8, 'Internal server error'),
  serverBusy: () => answer(503, 9, 'Server is busy'),
  eventRequired: (n: number) => ({ ...answer(400, 12, 'Event field is required'), body: { text: 'Event field is required', code: 12, 'invalid-event-number': n } }),
  eventBlank: (n: number) => ({ ...answer(400, 13, 'Event field cannot be blank'), body: { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': n } }),
  /** we answer 200 only after the commit, so indexer acknowledgement has nothing to add */
  ackDisabled: () => answer(400, 14, 'ACK is disabled'),
  queryStringAuth: () => answer(400, 16, 'Query string authorization is not enabled'),
  healthy: () => answer(200, 17, 'HEC is healthy'),
  unhealthy: () => answer(503, 18, 'HEC is unhealthy, queues are full'),
  /** not Splunk's (it answers 413 without a code for max_content_length): ours, with a clear text */
  tooLarge: (max: number) => answer(413, 6, `Content too large (maximum is ${max} bytes after decompression)`),
  notAllowed: () => answer(403, 4, 'Token may not send to this endpoint'),
};

/** One HEC event, reduced to what onsight reads. */
export interface HecEvent {
  /** the log line (event string, or message/log/msg/_raw of an event object) */
  line?: string;
  /** an event object that is itself a Sighting JSON (has kind and ip) */
  sighting?: Record<string, unknown>;
  /** epoch ms from `time` */
  timeMs?: number;
  host?: string;
}

export type HecParse = { ok: true; events: HecEvent[] } | { ok: false; answer: HecAnswer };

const LINE_FIELDS = ['message', 'log', 'msg', '_raw', 'line'];

/** `time`: epoch seconds (number or numeric string, fractions allowed) → ms; anything else ignored. */
function timeMs(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : NaN;
  // (a time no Date can hold is no time: the receive time stands)
  if (!Number.isFinite(n) || n <= 0 || !isDateMs(n * 1000)) return undefined;
  return Math.round(n * 1000);
}

/**
 * Split a body of concatenated JSON objects (`{..}{..}` or one per line) in one linear pass: depth
 * counting outside strings. Returns the object texts, or the index of the first malformed one.
 */
export function splitConcatenatedJson(body: string): { parts: string[] } | { badIndex: number } {
  const parts: string[] = [];
  let depth = 0;
  let inStr = false;
  let esc = false;
  let start = -1;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (inStr) {
      if (esc) esc = false;
      else if (c === 0x5c) esc = true;
      else if (c === 0x22) inStr = false;
      continue;
    }
    if (depth === 0) {
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      if (c !== 0x7b) return { badIndex: parts.length };
      start = i;
    }
    if (c === 0x22) inStr = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth < 0) return { badIndex: parts.length };
      if (depth === 0) parts.push(body.slice(start, i + 1));
    }
  }
  if (depth !== 0 || inStr) return { badIndex: parts.length };
  return { parts };
}

/** Parse a /services/collector/event body. Never throws; linear in the body. */
export function parseHecEvents(body: string): HecParse {
  if (body.trim() === '') return { ok: false, answer: HEC.noData() };
  const split = splitConcatenatedJson(body);
  if ('badIndex' in split) return { ok: false, answer: HEC.invalidDataFormat(split.badIndex) };
  const events: HecEvent[] = [];
  for (let n = 0; n < split.parts.length; n++) {
    let o: unknown;
    try {
      o = JSON.parse(split.parts[n]);
    } catch {
      return { ok: false, answer: HEC.invalidDataFormat(n) };
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return { ok: false, answer: HEC.invalidDataFormat(n) };
    const rec = o as Record<string, unknown>;
    if (!('event' in rec) || rec.event === null || rec.event === undefined) return { ok: false, answer: HEC.eventRequired(n) };
    const ev = rec.event;
    if (ev === '' || (typeof ev === 'object' && !Array.isArray(ev) && Object.keys(ev as object).length === 0)) return { ok: false, answer: HEC.eventBlank(n) };
    const out: HecEvent = { timeMs: timeMs(rec.time), host: typeof rec.host === 'string' ? rec.host : undefined };
    if (typeof ev === 'string') out.line = ev;
    else if (typeof ev === 'object' && !Array.isArray(ev)) {
      const eo = ev as Record<string, unknown>;
      if (typeof eo.kind === 'string' && typeof eo.ip === 'string') out.sighting = eo;
      else {
        const f = LINE_FIELDS.find((k) => typeof eo[k] === 'string');
        if (f) out.line = eo[f] as string;
      }
    } else if (typeof ev === 'number' || typeof ev === 'boolean') out.line = String(ev);
    events.push(out);
  }
  return { ok: true, events };
}

/** A /services/collector/raw body: one event per line (CR LF or LF), blank lines skipped. */
export function splitRawLines(body: string): string[] {
  return body.split(/\r?\n/).filter((l) => l.trim() !== '');
}

/** a character other than white space and U+FFFD (what bytes that were not UTF-8 are read as) */
const SOME_TEXT = /[^\s\ufffd]/;

/**
 * Is a raw line readable as a log line: no control character but TAB (syslog's frameText rule; a
 * NUL would reach the store) and some text, not only bytes that were not UTF-8? A body with none
 * is answered Invalid data format (code 6, 400), as nothing was taken.
 */
export function isReadableRawLine(line: string): boolean {
  return isLogText(line) && SOME_TEXT.test(line);
}

/**
 * Is an /event string readable: as a raw line, but one of white space only is still taken (it is
 * not binary, and Splunk refuses only ""). A body whose every event is unreadable is answered
 * Invalid data format as /raw's is.
 */
export function isReadableEventLine(line: string): boolean {
  return isLogText(line) && (SOME_TEXT.test(line) || !line.includes('\ufffd'));
}
