/**
 * Syslog header parsing: RFC 5424 and the many real shapes of RFC 3164 ("BSD") headers.
 *
 * Our own code because no npm syslog parser handles RFC 5424 structured data and real-world
 * RFC 3164 (no hostname, Cisco year stamps, OpenWrt logread, ISO stamps) correctly.
 * Everything here is a linear scan over the line, never a backtracking regex, and never throws:
 * a line whose header cannot be read is returned whole as the message.
 */
import { isRealDate, monthNumber, parseIsoTime, wallToUtc, yearlessYear } from '../util/time.js';

export interface StructuredData {
  id: string;
  params: Record<string, string>;
}

export interface SyslogMessage {
  /** which header shape was recognised */
  format: 'rfc5424' | 'rfc3164' | 'none';
  pri?: number;
  facility?: number;
  severity?: number;
  /** event time from the header (epoch ms), if the header had one */
  time?: number;
  /** true when the header stated a year (or a full date) */
  hasYear?: boolean;
  hostname?: string;
  appName?: string;
  procId?: string;
  msgId?: string;
  structuredData?: StructuredData[];
  /** the message text after the header (the whole line when no header was recognised) */
  msg: string;
}

export interface HeaderOptions {
  receivedAt: Date;
  /** zone for stamps without an offset: IANA name, `UTC` or `local` */
  zone: string;
}

const MAX_TAG = 64;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Skip spaces (and tabs) from i; returns the next index. */
function skipSpaces(s: string, i: number): number {
  while (i < s.length && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
  return i;
}

/**
 * RFC 5424 §6: header fields are PRINTUSASCII (33-126). A field with a newline or another control
 * inside (`host\nname`) is not a header; peers disagree (syslog-loose keeps it), we follow the RFC.
 */
function isPrintUsAscii(s: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) {
    const c = s.charCodeAt(k);
    if (c < 33 || c > 126) return false;
  }
  return true;
}

function tokenEnd(s: string, i: number): number {
  while (i < s.length && s.charCodeAt(i) !== 32 && s.charCodeAt(i) !== 9) i++;
  return i;
}

export function parseSyslog(line: string, opts: HeaderOptions): SyslogMessage {
  try {
    return parseUnsafe(line, opts);
  } catch {
    return { format: 'none', msg: line };
  }
}

/**
 * An RFC 5424 line whose TIMESTAMP is no valid time (`2026-02-30T25:61:00Z`, a sender's bug) read
 * as if it were NILVALUE: the rest of its header and its message, without a time (the decoder then
 * takes the receipt time). parseSyslog itself refuses such a header, as the RFC and peers do; this
 * is for the decoder, so that one bad field does not lose a lease line. undefined when the line is
 * not such a line.
 */
export function parseSyslogIgnoringTime(line: string, opts: HeaderOptions): SyslogMessage | undefined {
  const m = /^<\d{1,3}>1 (?!- )\S{1,64} /.exec(line);
  if (!m) return undefined;
  const at = line.indexOf('>') + 3; // past '<PRI>1 '
  const r = parseSyslog(`${line.slice(0, at)}-${line.slice(m[0].length - 1)}`, opts);
  return r.format === 'rfc5424' ? r : undefined;
}

function parseUnsafe(line: string, opts: HeaderOptions): SyslogMessage {
  let i = 0;
  let pri: number | undefined;
  if (line.charCodeAt(0) === 60 /* < */) {
    let j = 1;
    let v = 0;
    while (j < line.length && j <= 4 && isDigit(line.charCodeAt(j))) v = v * 10 + line.charCodeAt(j++) - 48;
    if (j > 1 && line.charCodeAt(j) === 62 /* > */ && v <= 191) {
      pri = v;
      i = j + 1;
    }
  }
  // one result object per line, PRI fields set on it (no spreads: this runs for every line received)
  const withPri = (m: SyslogMessage): SyslogMessage => {
    if (pri !== undefined) {
      m.pri = pri;
      m.facility = pri >> 3;
      m.severity = pri & 7;
    }
    return m;
  };

  // RFC 5424: "1 " right after PRI
  if (pri !== undefined && line.charCodeAt(i) === 49 && line.charCodeAt(i + 1) === 32) {
    const r = parse5424(line, i + 2, opts);
    if (r) return withPri(r);
  }
  // Cisco sometimes puts a colon right after PRI: "<166>:Jul 10 ..." or "<166>%ASA-..."
  if (pri !== undefined && line.charCodeAt(i) === 58 /* : */) i = skipSpaces(line, i + 1);
  const r = parse3164(line, i, opts);
  if (r) return withPri(r);
  return withPri({ format: 'none', msg: line.slice(i) });
}

function nilOrToken(tok: string): string | undefined {
  return tok === '-' || tok === '' ? undefined : tok;
}

function parse5424(line: string, start: number, opts: HeaderOptions): SyslogMessage | undefined {
  // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID (lenient about repeated spaces between fields)
  const fields: string[] = [];
  let i = start;
  for (let f = 0; f < 5; f++) {
    i = skipSpaces(line, i);
    const e = tokenEnd(line, i);
    if (e === i || !isPrintUsAscii(line, i, e)) return undefined;
    fields.push(line.slice(i, e));
    i = e;
  }
  const [ts, host, app, proc, msgid] = fields;
  let time: number | undefined;
  if (ts !== '-') {
    time = parseIsoTime(ts, opts.zone, opts.receivedAt.getTime());
    if (time === undefined) return undefined;
  }
  i = skipSpaces(line, i);
  let sdStart = -1;
  if (line.charCodeAt(i) === 45 /* - */) {
    i++;
  } else if (line.charCodeAt(i) === 91 /* [ */) {
    // checked here, read only if asked for (Rfc5424Message.structuredData)
    const end = skipStructuredData(line, i);
    if (end < 0) return undefined;
    sdStart = i;
    i = end;
  } else if (i < line.length) {
    return undefined;
  }
  if (line.charCodeAt(i) === 32) i++;
  let msg = line.slice(i);
  if (msg.charCodeAt(0) === 0xfeff) msg = msg.slice(1); // BOM announces UTF-8
  // A BOM read as Latin-1: the sender announced UTF-8 and sent bytes that are not (the listener
  // decodes such messages as Latin-1). RFC 5424 §6.4 makes that MSG invalid: no header, text kept.
  else if (msg.startsWith('\u00ef\u00bb\u00bf')) return undefined;
  return new Rfc5424Message(time, nilOrToken(host), nilOrToken(app), nilOrToken(proc), nilOrToken(msgid), msg, line, sdStart);
}

/**
 * An RFC 5424 header. Its structured data is read into objects only when `structuredData` is
 * asked for: no onsight code reads it (plug-ins and the conformance suite may), and reading every
 * value into an object per line cost 250 ms for a 1 MiB line and 3 s for 16 MiB. Not carried by
 * a spread or a postMessage (a getter): unwrapInnerTag keeps it through `retag`.
 */
class Rfc5424Message implements SyslogMessage {
  readonly format = 'rfc5424' as const;
  declare pri?: number;
  declare facility?: number;
  declare severity?: number;
  readonly hasYear: boolean;
  #line: string;
  /** where the SD-ELEMENTs start in #line (-1: NILVALUE) */
  #sdStart: number;
  #sd: StructuredData[] | undefined;

  constructor(
    public time: number | undefined, public hostname: string | undefined, public appName: string | undefined,
    public procId: string | undefined, public msgId: string | undefined, public msg: string,
    line: string, sdStart: number,
  ) {
    this.hasYear = time !== undefined;
    this.#line = line;
    this.#sdStart = sdStart;
  }

  get structuredData(): StructuredData[] | undefined {
    if (this.#sd === undefined && this.#sdStart >= 0) this.#sd = readStructuredData(this.#line, this.#sdStart);
    return this.#sd;
  }

  set structuredData(sd: StructuredData[] | undefined) {
    this.#sd = sd;
    this.#sdStart = -1;
  }

  /** the same header with the tag found inside the message (unwrapInnerTag) */
  retag(appName: string, procId: string, msg: string): Rfc5424Message {
    const m = new Rfc5424Message(this.time, this.hostname, appName, procId, this.msgId, msg, this.#line, this.#sdStart);
    m.#sd = this.#sd;
    if (this.pri !== undefined) {
      m.pri = this.pri;
      m.facility = this.facility;
      m.severity = this.severity;
    }
    return m;
  }
}

/** SD-ELEMENTs and SD-PARAMs a line's `structuredData` holds at most; the rest are left out (the header is still read) */
export const MAX_SD_ELEMENTS = 128;
export const MAX_SD_PARAMS = 1024;

/**
 * Where a value scan found the next `"` and `\\` (n: none left). Kept across the values of a line,
 * so each is searched for once: searching anew from every value would be quadratic.
 */
interface Marks {
  quote: number;
  slash: number;
}

/**
 * The closing `"` of the SD-PARAM value that starts at `j` (-1: none). A backslash escapes `"`, `\\`
 * or `]` and otherwise stands for itself. `out.v`, when given, gets the value unescaped.
 */
function valueEnd(line: string, j: number, m: Marks, out?: { v: string }): number {
  let from = j;
  for (;;) {
    if (m.quote < j) m.quote = line.indexOf('"', j);
    if (m.quote < 0) return -1;
    if (m.slash < j) {
      m.slash = line.indexOf('\\', j);
      if (m.slash < 0) m.slash = line.length;
    }
    if (m.slash > m.quote) {
      if (out) out.v += line.slice(from, m.quote);
      return m.quote;
    }
    const c = line.charCodeAt(m.slash + 1);
    if (c === 34 || c === 92 || c === 93) {
      if (out) out.v += line.slice(from, m.slash);
      from = m.slash + 1; // the escaped character starts the next piece
      j = m.slash + 2;
    } else {
      j = m.slash + 1;
    }
  }
}

/** The end of an SD-NAME (or SD-ID) from `i`: the first `=`, `]` or space, or the line's end. */
function nameEnd(line: string, i: number, stopAtEq: boolean): number {
  const n = line.length;
  for (; i < n; i++) {
    const c = line.charCodeAt(i);
    if (c === 32 || c === 93 || (stopAtEq && c === 61)) break;
  }
  return i;
}

/**
 * Past `[id k="v" k2="v\\"2"][id2 ...]` (RFC 5424 escapes \\" \\\\ \\]) from `start`: the index after the
 * last `]`, or -1 when the syntax is broken. An index scan (values by indexOf), nothing allocated.
 */
function skipStructuredData(line: string, start: number): number {
  const n = line.length;
  const marks: Marks = { quote: -1, slash: -1 };
  let i = start;
  while (line.charCodeAt(i) === 91 /* [ */) {
    const idStart = ++i;
    i = nameEnd(line, i, false);
    if (i === idStart) return -1;
    while (i < n && line.charCodeAt(i) !== 93 /* ] */) {
      if (line.charCodeAt(i) === 32) {
        i++;
        continue;
      }
      const eq = nameEnd(line, i, true);
      if (line.charCodeAt(eq) !== 61 /* = */ || line.charCodeAt(eq + 1) !== 34 /* " */) return -1;
      const q = valueEnd(line, eq + 2, marks);
      if (q < 0) return -1;
      i = q + 1;
    }
    if (i >= n) return -1;
    i++;
  }
  return i;
}

/**
 * The SD-ELEMENTs from `start`, a span skipStructuredData accepted; values unescaped (a name given
 * twice keeps its last value). Reading stops at MAX_SD_ELEMENTS elements or MAX_SD_PARAMS parameters.
 */
function readStructuredData(line: string, start: number): StructuredData[] {
  const sd: StructuredData[] = [];
  const marks: Marks = { quote: -1, slash: -1 };
  let params = 0;
  let i = start;
  while (line.charCodeAt(i) === 91 && sd.length < MAX_SD_ELEMENTS) {
    const e = nameEnd(line, ++i, false);
    const el: StructuredData = { id: line.slice(i, e), params: {} };
    sd.push(el);
    i = e;
    while (line.charCodeAt(i) !== 93) {
      if (line.charCodeAt(i) === 32) {
        i++;
        continue;
      }
      if (params++ === MAX_SD_PARAMS) return sd;
      const eq = nameEnd(line, i, true);
      const out = { v: '' };
      const q = valueEnd(line, eq + 2, marks, out);
      if (q < 0) return sd; // (not a span skipStructuredData accepted)
      el.params[line.slice(i, eq)] = out.v;
      i = q + 1;
    }
    i++;
  }
  return sd;
}

interface StampResult {
  /** a year-less stamp given a year before the receive year: not reused for later lines */
  steppedBack?: boolean;
  /** `Www Mmm DD HH:MM:SS YYYY` (C ctime): written by file logs (OpenVPN, OpenWrt logread), never with a hostname */
  ctime?: boolean;
  /** undefined for a day no year has (`Apr 31`): the header is read, the time is not invented */
  time: number | undefined;
  hasYear: boolean;
  end: number;
}

/**
 * Timestamps seen in front of BSD-style messages:
 *  `Jul  4 09:39:40`, `Jul 06 16:14:49`, `Oct 10 2018 12:34:56` (Cisco), `Mon Apr 11 15:02:46 2022`
 *  (OpenWrt logread), `2024-01-13T06:24:01.123+00:00` (rsyslog RFC 3339), fractional seconds on any.
 */
/**
 * The last BSD stamp read, with what its time depends on (issue 18, header fast path). Lines arrive
 * in bursts that share a second; a stamp equal to the last one (same text, zone and receive year,
 * still not more than a day ahead) reuses its time instead of parsing and converting it again. A
 * stamp put in an earlier year (read around New Year) is never reused.
 */
interface StampMemo {
  /** the line the stamp was read from (kept rather than sliced: a miss then costs no allocation) */
  src: string;
  start: number;
  len: number;
  zone: string;
  year: number;
  /** when the line it was read for came (ms) */
  received: number;
  result: StampResult;
}
let lastStamp: StampMemo | undefined;

function sameStamp(m: StampMemo, line: string, i: number): boolean {
  if (i + m.len > line.length) return false;
  for (let k = 0; k < m.len; k++) if (line.charCodeAt(i + k) !== m.src.charCodeAt(m.start + k)) return false;
  return true;
}

function parseStamp(line: string, i: number, opts: HeaderOptions): StampResult | undefined {
  const memo = lastStamp;
  if (memo !== undefined && memo.zone === opts.zone && sameStamp(memo, line, i)) {
    const r = memo.result;
    const e = i + memo.len;
    // the same text must end the stamp here too: no fraction, no year after it that the memo lacks
    if ((e === line.length || line.charCodeAt(e) === 32 || line.charCodeAt(e) === 58) && !(r.hasYear === false && yearAfter(line, e)) &&
      memo.year === opts.receivedAt.getUTCFullYear() && (r.time === undefined || r.time <= opts.receivedAt.getTime() + DAY_MS) &&
      // (read when it came: the fall-back hour's repeated stamp an hour on is the other reading, util/time.ts wallToUtc)
      Math.abs(opts.receivedAt.getTime() - memo.received) < MEMO_MS) {
      return { time: r.time, hasYear: r.hasYear, end: e, ctime: r.ctime };
    }
  }
  const r = parseStampSlow(line, i, opts);
  if (r && !r.steppedBack && !isDigit(line.charCodeAt(i))) lastStamp = { src: line, start: i, len: r.end - i, zone: opts.zone, year: opts.receivedAt.getUTCFullYear(), received: opts.receivedAt.getTime(), result: r };
  return r;
}

const DAY_MS = 86_400_000;
/** a memoized stamp serves lines received within this long of the one it was read for */
const MEMO_MS = 60_000;

/** ` YYYY` then a space or the end at `k` (the year-after-time form). */
function yearAfter(line: string, k: number): boolean {
  return line.charCodeAt(k) === 32 && isDigit(line.charCodeAt(k + 1)) && isDigit(line.charCodeAt(k + 2)) &&
    isDigit(line.charCodeAt(k + 3)) && isDigit(line.charCodeAt(k + 4)) && (k + 5 === line.length || line.charCodeAt(k + 5) === 32);
}

function parseStampSlow(line: string, i: number, opts: HeaderOptions): StampResult | undefined {
  if (isDigit(line.charCodeAt(i))) {
    const e = tokenEnd(line, i);
    const t = parseIsoTime(line.slice(i, e), opts.zone, opts.receivedAt.getTime());
    return t === undefined ? undefined : { time: t, hasYear: true, end: e };
  }
  let k = i;
  // optional weekday: "Mon "
  let weekday = false;
  if (line.charCodeAt(k + 3) === 32 && monthNumber(line.slice(k, k + 3)) === undefined && isWeekday(line.slice(k, k + 3))) {
    k += 4;
    weekday = true;
  }
  // the month: 3 letters (`Jan`), or up to 5 and a dot in other locales (`févr.`)
  let me = k;
  while (me < line.length && me - k < 6 && line.charCodeAt(me) !== 32 && !isDigit(line.charCodeAt(me))) me++;
  if (me - k < 3 || line.charCodeAt(me) !== 32) return undefined;
  const mo = monthNumber(line.slice(k, me));
  if (mo === undefined) return undefined;
  k = skipSpaces(line, me + 1);
  let day = 0;
  let n = 0;
  while (isDigit(line.charCodeAt(k)) && n < 2) {
    day = day * 10 + line.charCodeAt(k++) - 48;
    n++;
  }
  if (n === 0 || day < 1 || day > 31 || line.charCodeAt(k) !== 32) return undefined;
  k++;
  let year: number | undefined;
  // "Oct 10 2018 12:34:56": a year before the time
  if (isDigit(line.charCodeAt(k)) && isDigit(line.charCodeAt(k + 1)) && isDigit(line.charCodeAt(k + 2)) && isDigit(line.charCodeAt(k + 3)) &&
    line.charCodeAt(k + 4) === 32) {
    year = Number(line.slice(k, k + 4));
    k += 5;
  }
  const hms = readHms(line, k);
  if (!hms) return undefined;
  k = hms.end;
  // "Mon Apr 11 15:02:46 2022": a year after the time
  let ctime = false;
  if (year === undefined && yearAfter(line, k)) {
    year = Number(line.slice(k + 1, k + 5));
    k += 5;
    ctime = weekday;
  }
  const hasYear = year !== undefined;
  // a year-less stamp takes the receive year, or an earlier one (December lines read in January)
  const y = hasYear ? year : yearlessYear(mo, day, hms.h, hms.m, hms.s, hms.ms, opts.receivedAt, opts.zone);
  const time = y !== undefined && isRealDate(y, mo, day) ? wallToUtc(y, mo, day, hms.h, hms.m, hms.s, hms.ms, opts.zone, opts.receivedAt.getTime()) : undefined;
  return { time, hasYear, end: k, ctime, steppedBack: !hasYear && y !== undefined && y !== opts.receivedAt.getUTCFullYear() };
}

const WEEKDAYS = new Set(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);

function isWeekday(w: string): boolean {
  return WEEKDAYS.has(w);
}

function readHms(line: string, k: number): { h: number; m: number; s: number; ms: number; end: number } | undefined {
  const two = (p: number) => (isDigit(line.charCodeAt(p)) && isDigit(line.charCodeAt(p + 1)) ? (line.charCodeAt(p) - 48) * 10 + line.charCodeAt(p + 1) - 48 : -1);
  const h = two(k), m = two(k + 3), s = two(k + 6);
  if (h < 0 || m < 0 || s < 0 || line[k + 2] !== ':' || line[k + 5] !== ':' || h > 23 || m > 59 || s > 60) return undefined;
  let e = k + 8;
  let ms = 0;
  if (line[e] === '.') {
    e++;
    let scale = 100;
    while (isDigit(line.charCodeAt(e))) {
      ms += (line.charCodeAt(e++) - 48) * scale;
      scale /= 10;
    }
    ms = Math.floor(ms);
  }
  return { h, m, s, ms, end: e };
}

/**
 * Is `tok` a syslog tag such as `dhcpd[123]:`, `dhcpd:`, `CiscoASA[999]:` ?
 * Returns the app name and pid, or undefined.
 */
function readTag(tok: string): { app: string; pid?: string } | undefined {
  if (tok.length < 2 || tok.length > MAX_TAG || !tok.endsWith(':')) return undefined;
  const body = tok.slice(0, -1);
  const lb = body.indexOf('[');
  if (lb < 0) return body.includes(':') ? undefined : { app: body };
  if (!body.endsWith(']') || lb === 0) return undefined;
  return { app: body.slice(0, lb), pid: body.slice(lb + 1, -1) };
}

/** Characters of a program name in a tag run into text: letters, digits, `-_./%@` (`postfix/smtpd`, `%ASA-6-1`). */
function isTagChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 45 || c === 95 || c === 46 || c === 47 || c === 37 || c === 64;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/**
 * A tag that is not a whole `name:` token: `name[pid]:text`, `name:text` (no space after the colon,
 * RFC 3164 §4.1.3: any non-alphanumeric ends the TAG) or `name[pid]` and a space (no colon).
 * `name:text` is taken only when the name is not all hex digits, so an address (`fe80:…`, a MAC)
 * is never cut into a tag. Returns the tag and where the message starts, or undefined.
 */
function readTagPrefix(line: string, s: number, allowBare: boolean): { app: string; pid?: string; msgStart: number } | undefined {
  let k = s;
  let hexOnly = true;
  while (k < line.length && k - s <= MAX_TAG && isTagChar(line.charCodeAt(k))) {
    if (!isHexDigit(line.charCodeAt(k))) hexOnly = false;
    k++;
  }
  if (k === s || k - s > MAX_TAG) return undefined;
  const app = line.slice(s, k);
  let pid: string | undefined;
  if (line.charCodeAt(k) === 91 /* [ */) {
    const ps = k + 1;
    k = ps;
    while (k < line.length && k - ps <= 20 && isDigit(line.charCodeAt(k))) k++;
    if (k === ps || line.charCodeAt(k) !== 93 /* ] */) return undefined;
    pid = line.slice(ps, k);
    k++;
    const c = line.charCodeAt(k);
    if (c !== 58 && (c === 32 || c === 9 || k === line.length)) return { app, pid, msgStart: skipSpaces(line, k) };
  }
  if (line.charCodeAt(k) !== 58 /* : */) return undefined;
  if (pid === undefined && (hexOnly || !allowBare)) return undefined;
  return { app, pid, msgStart: skipSpaces(line, k + 1) };
}

/** `daemon.info`, `kern.warn`: a word, a dot, a word (letters only) */
function isFacilityLevel(line: string, from: number, to: number): boolean {
  const dot = line.indexOf('.', from);
  if (dot <= from || dot >= to - 1 || to - from > 24) return false;
  for (let k = from; k < to; k++) {
    const c = line.charCodeAt(k) | 0x20;
    if (k !== dot && !(c >= 97 && c <= 122)) return false;
  }
  return true;
}

/** Not a hostname: a word with characters no name or address has (`, [ ] = " ( ) { } ; < >`); `/` is allowed (syslog-ng relay chains, rsyslog permit.slashesInHostname). */
function couldBeHostname(line: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) {
    switch (line.charCodeAt(k)) {
      case 44: case 91: case 93: case 61: case 34: case 40: case 41: case 123: case 125: case 59: case 60: case 62:
        return false;
    }
  }
  return true;
}

/**
 * After the stamp: HOSTNAME, then TAG (RFC 3164 §4.1.2-4.1.3). A first token that is itself a
 * tag (`dhcpd[1]:`) means the sender left the hostname out (pfSense, ASA, logger to a local
 * socket). Otherwise the first token is the hostname, whatever follows it, and only the very next
 * token can be the tag: looking further ahead would drop words (RFC 3164 example 3,
 * `CST 1987 mymachine myproc[10]:` keeps `1987 mymachine` in the message). A word without a colon
 * is not taken as a tag (`host Use the BFG!` keeps `Use`): rsyslog would, most peers would not,
 * and DHCP/VPN messages start with such words (`DHCPACK on ...`).
 */
function parse3164(line: string, start: number, opts: HeaderOptions): Omit<SyslogMessage, 'pri' | 'facility' | 'severity'> | undefined {
  const stamp = parseStamp(line, start, opts);
  if (!stamp) return undefined;
  const result = (hostname: string | undefined, tag: { app: string; pid?: string } | undefined, msgStart: number) => ({
    format: 'rfc3164' as const,
    time: stamp.time,
    hasYear: stamp.hasYear,
    hostname,
    appName: tag?.app || undefined,
    procId: tag?.pid,
    msg: line.slice(msgStart),
  });
  let i = skipSpaces(line, stamp.end);
  if (i >= line.length) return result(undefined, undefined, i);
  let e0 = tokenEnd(line, i);
  if (stamp.ctime) {
    // a file log: no hostname; OpenWrt logread puts facility.level before the tag
    if (isFacilityLevel(line, i, e0)) {
      i = skipSpaces(line, e0);
      e0 = tokenEnd(line, i);
    }
    if (line.charCodeAt(e0 - 1) === 58) {
      const tag = readTag(line.slice(i, e0));
      if (tag) return result(undefined, tag, skipSpaces(line, e0));
    }
    return result(undefined, undefined, i);
  }
  // ": %ASA-..." (Cisco with an empty tag) or a hostless `tag:` / `tag[pid]:`
  if (line.charCodeAt(e0 - 1) === 58) {
    const tok = line.slice(i, e0);
    const tag = tok === ':' ? { app: '' } : readTag(tok);
    if (tag) return result(undefined, tag, skipSpaces(line, e0));
  }
  // a hostless `name[pid]:text` or `name[pid] text` (a hostname has no brackets)
  const t0 = readTagPrefix(line, i, false);
  if (t0) return result(undefined, t0, t0.msgStart);
  // a first word no host name could be (`15[IKE]`, `1,2021/03/24` of a PAN-OS CSV): no hostname
  if (!couldBeHostname(line, i, e0)) return result(undefined, undefined, i);
  const hostname = line.slice(i, e0);
  const j = skipSpaces(line, e0);
  if (j >= line.length) return result(hostname, undefined, j);
  const e1 = tokenEnd(line, j);
  if (line.charCodeAt(e1 - 1) === 58) {
    const tok = line.slice(j, e1);
    const tag = tok === ':' ? { app: '' } : readTag(tok);
    if (tag) return result(hostname, tag, skipSpaces(line, e1));
  }
  // `name:text` only a single SP after the hostname (§4.1.2); `host  msgnum:1` is all message (as rsyslog)
  const t1 = readTagPrefix(line, j, j === e0 + 1);
  if (t1) return result(hostname, t1, t1.msgStart);
  return result(hostname, undefined, j);
}

/**
 * `logger 'dhcpd[1]: DHCPACK ...'` and some relays send the original program's tag inside the
 * message, under their own tag (`root`, `logger`). A message that starts with `name[digits]: `
 * carries its real tag there: use it. Only the strict `name[pid]:` form counts, so ordinary
 * messages (`MULTI: Learn ...`) are left alone. The inner tag is trusted as the line's own, which
 * a plug-in claims in full, so only under a tag that cannot be a program writing text a client
 * chose (relayTag). Any other program's message keeps its own tag, with or without a pid:
 * `nginx[5]: dhcpd[1]: DHCPACK …`, and `web1 web-access: dhcpd[1]: …` (rsyslog imfile `Tag=`,
 * nginx `access_log syslog:…,tag=`, a shipper's app name without PROCID: an access log whose first
 * field, X-Forwarded-For, the client writes). `pinned`: the input's format is fixed, not `auto`:
 * the operator's word that its lines are that format's, which also reads the inner tag under a BSD
 * tag with no pid and no host name before it (`gw1: dhcpd[1]: …`, the host name read as a tag).
 * Not under any other tag: a router's whole syslog goes to a dnsmasq input, and there
 * `nginx[5]: dnsmasq-dhcp[1]: DHCPACK …` is still nginx's line, its text a client's (review 47).
 */
export function unwrapInnerTag(m: SyslogMessage, pinned = false): SyslogMessage {
  const msg = m.msg;
  // the name: 1 to 48 characters, no blank or colon, then `[` (only those are read: any tag may come here now)
  let lb = 0;
  for (; lb < msg.length && lb <= 48; lb++) {
    const c = msg.charCodeAt(lb);
    if (c === 91) break;
    if (c === 32 || c === 9 || c === 58) return m;
  }
  if (lb === 0 || lb > 48 || msg.charCodeAt(lb) !== 91) return m;
  let j = lb + 1;
  while (j < msg.length && j - lb <= 12 && msg.charCodeAt(j) >= 48 && msg.charCodeAt(j) <= 57) j++;
  if (j === lb + 1 || msg[j] !== ']' || msg[j + 1] !== ':' || msg[j + 2] !== ' ') return m;
  const app = msg.slice(0, lb), pid = msg.slice(lb + 1, j), rest = msg.slice(j + 3);
  if (!relayTag(m, app) && !(pinned && hostNameAsTag(m))) return m;
  // (a spread would lose a lazy structuredData)
  return m instanceof Rfc5424Message ? m.retag(app, pid, rest) : { ...m, appName: app, procId: pid, msg: rest };
}

/** A BSD header's tag that may be the device's host name: no host name before it, no pid (`gw1: …`). */
function hostNameAsTag(m: SyslogMessage): boolean {
  return m.format === 'rfc3164' && m.hostname === undefined && m.procId === undefined && !!m.appName;
}

/**
 * The tags the built-in formats' own programs log under (their parsers claim lines by them): the
 * inner tags a container shipped under its program's name may carry.
 */
const DEVICE_PROGRAM_TAGS = new Set(['dhcpd', 'dhcpd6', 'dnsmasq', 'dnsmasq-dhcp', 'kea-dhcp4', 'kea-dhcp6', 'openvpn', 'charon', 'charon-systemd']);

/**
 * May the tag `m` came under hand over to the `inner` tag its message opens with? When there is
 * none; when it is `logger`'s own (`logger`, or `root`: logger tags with the user's name; `-i` adds
 * a pid); or when it names the same program and the inner tag is a device program's own
 * (`dnsmasq` over `dnsmasq-dhcp[1]:`, `kea` over `kea-dhcp4[1]:`: a container's output shipped
 * under the container's name). Not under a BSD tag with no host name before it, which may be the
 * device's host name read as a tag (`gw1: dhcpd[1]: …`), since nginx's `syslog:…,nohostname,tag=`
 * sends an access log, whose first field a client chooses, in the same shape (fifth review).
 */
function relayTag(m: SyslogMessage, inner: string): boolean {
  const outer = m.appName;
  if (outer === undefined || outer === 'logger' || outer === 'root') return true;
  // (only a device program's own tag: under any name, `web-access[1]:` or `httpd-x[1]:` at the start of
  // a client's text gave the line a pid, and with it a content claim: fourth review)
  return DEVICE_PROGRAM_TAGS.has(inner) && (inner === outer || (inner.startsWith(outer) && inner.charCodeAt(outer.length) === 45 /* - */));
}
