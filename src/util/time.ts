/** Time helpers for log lines: year-less syslog stamps, zones, offsets. Nothing here throws. */

export const MONTHS: Record<string, number> = {
  jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12,
};

/**
 * Month abbreviations of other locales, as `journalctl -o short` and syslog daemons print `%b` under
 * a non-English LC_TIME (glibc locale data): de, fr (with its trailing dot), es, it, nl, pt.
 * None collides with another month.
 */
const LOCALE_MONTHS: Record<string, number> = {
  'mär': 3, mai: 5, okt: 10, dez: 12, // de (also nl okt, pt mai/dez)
  janv: 1, 'févr': 2, mars: 3, avr: 4, juin: 6, juil: 7, 'août': 8, sept: 9, 'déc': 12, // fr
  ene: 1, abr: 4, ago: 8, dic: 12, // es (also it ago/dic, pt abr/ago)
  gen: 1, mag: 5, giu: 6, lug: 7, set: 9, ott: 10, // it (also pt set)
  mrt: 3, mei: 5, // nl
  fev: 2, out: 10, // pt
};

/** A month abbreviation (`Jan`, `AUG`, `Mär`, `févr`) → 1-12; exact token, a trailing `.` removed. */
export function monthNumber(name: string): number | undefined {
  const t = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  // (own keys only: `constructor` is no month)
  return Object.hasOwn(MONTHS, t) ? MONTHS[t] : Object.hasOwn(LOCALE_MONTHS, t) ? LOCALE_MONTHS[t] : undefined;
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/**
 * Offsets by (zone, 15-minute slice of UTC time). Intl formatting costs microseconds per call and a
 * log stream's stamps fall in a handful of slices, so the cache takes a named zone from ~10x slower
 * than UTC to about UTC's speed. A slice is cached only when the offset is the same at both of its
 * ends: tzdb transitions fall on quarter hours, and a slice holding one that does not (old LMT
 * offsets) is recomputed on every call rather than cached wrong.
 */
const SLICE_MS = 15 * 60_000;
const OFFSET_CACHE_MAX = 8192;
const offsetCache = new Map<string, number>();
const NOT_CONSTANT = Number.NaN;

/** Offset (ms) of `zone` from UTC at the instant `utcMs`. `zone` is an IANA name, `UTC` or `local`. */
export function zoneOffsetMs(zone: string, utcMs: number): number {
  if (zone === 'UTC' || zone === 'Etc/UTC' || zone === 'Z') return 0;
  if (zone === 'local') return -new Date(utcMs).getTimezoneOffset() * 60_000;
  if (!Number.isFinite(utcMs)) return intlOffsetMs(zone, utcMs);
  const slice = Math.floor(utcMs / SLICE_MS);
  const key = `${zone}\u0000${slice}`;
  const hit = offsetCache.get(key);
  if (hit !== undefined && !Number.isNaN(hit)) return hit;
  if (hit !== undefined) return intlOffsetMs(zone, utcMs);
  const start = intlOffsetMs(zone, slice * SLICE_MS);
  const end = intlOffsetMs(zone, (slice + 1) * SLICE_MS - 1000);
  if (offsetCache.size >= OFFSET_CACHE_MAX) offsetCache.clear();
  offsetCache.set(key, start === end ? start : NOT_CONSTANT);
  return start === end ? start : intlOffsetMs(zone, utcMs);
}

function intlOffsetMs(zone: string, utcMs: number): number {
  let f = offsetFormatters.get(zone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
        hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch {
      return 0;
    }
    offsetFormatters.set(zone, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(utcMs))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

export function isValidZone(zone: string): boolean {
  if (zone === 'UTC' || zone === 'local') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Wall-clock time in `zone` → UTC epoch ms (two passes settle DST edges). A wall time the
 * fall-back hour makes twice comes out as the two passes give it (the first reading west of
 * Greenwich, the second east of it) unless `near` (when the line arrived) is within LIVE_MS after
 * the second reading: then the latest reading not after `near` (SKEW_MS allowed), else the first.
 * A live line of the repeated hour read the other way would look an hour older than the lines just
 * before it, and the inventory drops a line older than what it knows of the address; a line is
 * never dated after it came. A backlog read later is read as before: when it came says nothing.
 */
export function wallToUtc(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, zone: string, near?: number): number {
  const wall = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  let t = wall - zoneOffsetMs(zone, wall);
  t = wall - zoneOffsetMs(zone, t);
  if (near === undefined || !Number.isFinite(near)) return t;
  // the readings under the offsets in force a few hours before and after (the same offset, nearly
  // always: one reading), each kept if the wall time maps back to itself under it
  const before = zoneOffsetMs(zone, t - 3 * 3_600_000), after = zoneOffsetMs(zone, t + 3 * 3_600_000);
  if (before === after) return t;
  const readings = [wall - before, wall - after].filter((c) => wall - zoneOffsetMs(zone, c) === c);
  if (readings.length < 2) return t;
  const first = Math.min(...readings), second = Math.max(...readings);
  if (near > second + LIVE_MS) return t;
  return second <= near + SKEW_MS ? second : first;
}

/** How long after the second reading of a repeated wall time a line may arrive and still be read by when it arrived (wallToUtc). */
const LIVE_MS = 2 * 3_600_000;
/** how far a sender's clock may run ahead of ours for a reading to count as not after the line came (and a live line's time, ingest.ts) */
export const SKEW_MS = 5 * 60_000;

const DAY = 86_400_000;

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Does day `d` exist in month `mo` (1-12) of year `y`? (`Date.UTC` would roll 2003-09-31 into October.) */
export function isRealDate(y: number, mo: number, d: number): boolean {
  if (mo < 1 || mo > 12 || d < 1) return false;
  return d <= (mo === 2 && isLeapYear(y) ? 29 : MONTH_DAYS[mo - 1]);
}

/**
 * A year-less stamp (classic BSD syslog): take the receive year, and step back a year if that
 * would put the event more than a day in the future (December lines read in January).
 * Feb 29 belongs to the latest leap year not in the future; a day no year has (`Apr 31`) gives
 * undefined rather than a date rolled into the next month.
 */
export function resolveYearless(mo: number, d: number, h: number, mi: number, s: number, ms: number, receivedAt: Date, zone: string): number | undefined {
  const y = yearlessYear(mo, d, h, mi, s, ms, receivedAt, zone);
  return y === undefined ? undefined : wallToUtc(y, mo, d, h, mi, s, ms, zone);
}

/** The year `resolveYearless` gives a year-less stamp (undefined for a day no year has). */
export function yearlessYear(mo: number, d: number, h: number, mi: number, s: number, ms: number, receivedAt: Date, zone: string): number | undefined {
  if (!isRealDate(2000, mo, d)) return undefined;
  const received = receivedAt.getTime();
  if (!Number.isFinite(received)) return undefined;
  const latestWith = (y: number) => {
    while (!isRealDate(y, mo, d)) y--; // only Feb 29 loops, at most 8 years (1900, 2100)
    return y;
  };
  const year = latestWith(receivedAt.getUTCFullYear());
  if (wallToUtc(year, mo, d, h, mi, s, ms, zone) > received + DAY) return latestWith(year - 1);
  return year;
}

function digits(text: string, start: number, n: number): number {
  let v = 0;
  for (let i = start; i < start + n; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9 || Number.isNaN(c)) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * ISO 8601 / RFC 3339 date-time with optional fraction and offset, e.g. `2022-08-12T12:01:17-05:00`,
 * `2024-01-13T06:24:01`, `2024-01-13 06:24:01.123`. Without an offset the wall time is read in `zone`.
 * Returns epoch ms or undefined. Linear, no regex.
 */
export function parseIsoTime(text: string, zone: string, near?: number): number | undefined {
  if (text.length < 19 || text.length > 40) return undefined;
  const y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
  const h = digits(text, 11, 2), mi = digits(text, 14, 2), s = digits(text, 17, 2);
  if (text[4] !== '-' || text[7] !== '-' || (text[10] !== 'T' && text[10] !== 't' && text[10] !== ' ')) return undefined;
  if (text[13] !== ':' || text[16] !== ':') return undefined;
  if (y < 0 || !isRealDate(y, mo, d) || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return undefined;
  let i = 19;
  let ms = 0;
  if (text[i] === '.' || text[i] === ',') {
    i++;
    let scale = 100;
    while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) {
      ms += (text.charCodeAt(i) - 48) * scale;
      scale /= 10;
      i++;
    }
    ms = Math.floor(ms);
  }
  // (no offset: local time in `zone`, the fall-back hour's read by `near`, when the line came)
  if (i === text.length) return wallToUtc(y, mo, d, h, mi, s, ms, zone, near);
  const base = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  if ((text[i] === 'Z' || text[i] === 'z') && i + 1 === text.length) return base;
  if ((text[i] === '+' || text[i] === '-') && (text.length === i + 6 || text.length === i + 5 || text.length === i + 3)) {
    const oh = digits(text, i + 1, 2);
    const om = text.length === i + 3 ? 0 : digits(text, text[i + 3] === ':' ? i + 4 : i + 3, 2);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return undefined;
    const off = (oh * 60 + om) * 60_000 * (text[i] === '+' ? 1 : -1);
    return base - off;
  }
  return undefined;
}

/** The largest |ms| a Date holds (ECMA-262): beyond it `new Date(ms).toISOString()` throws. */
const MAX_DATE_MS = 8.64e15;

/** Is `ms` a time a Date can hold (finite and within ±8.64e15)? */
export function isDateMs(ms: number): boolean {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS;
}

/** ISO 8601 text of a time, or undefined where no Date can hold it (it would throw). */
export function isoOrUndefined(ms: number): string | undefined {
  return isDateMs(ms) ? new Date(ms).toISOString() : undefined;
}

/** A vendor's date text as given when a Date can read it, else undefined (no number, no string, or out of range). */
export function dateTextOrUndefined(v: unknown): string | undefined {
  return typeof v === 'string' && isDateMs(Date.parse(v)) ? v : undefined;
}

export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Parse durations like `30d`, `12h`, `15m`, `90s`, `1w`, or a plain number of seconds → seconds. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text : undefined;
  const t = text.trim();
  if (t === '') return undefined;
  let total = 0;
  let num = '';
  let any = false;
  for (const c of t) {
    if (c >= '0' && c <= '9') num += c;
    else {
      const mult = ({ s: 1, m: 60, h: 3600, d: 86400, w: 604800 } as Record<string, number>)[c];
      if (!mult || num === '') return undefined;
      total += Number(num) * mult;
      num = '';
      any = true;
    }
  }
  if (num !== '') {
    if (any) return undefined;
    return Number(num);
  }
  return total;
}
