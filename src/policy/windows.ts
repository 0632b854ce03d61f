/**
 * Allowed scan windows: `Mon-Fri 08:00-18:00`, `Sat,Sun 00:00-24:00`, `* 22:00-06:00` (wraps
 * midnight: the window belongs to the day it starts on). Read in the region's time zone.
 */
import { zoneOffsetMs } from '../util/time.js';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export interface ScanWindow {
  days: boolean[]; // index 0 = Sunday
  startMin: number;
  endMin: number;
}

export function parseWindow(text: string): ScanWindow | undefined {
  const sp = text.trim().split(' ');
  if (sp.length !== 2) return undefined;
  const days = new Array<boolean>(7).fill(false);
  if (sp[0] === '*') days.fill(true);
  else {
    for (const part of sp[0].split(',')) {
      const [a, b] = part.toLowerCase().split('-');
      const ia = DAYS.indexOf(a);
      const ib = b === undefined ? ia : DAYS.indexOf(b);
      if (ia < 0 || ib < 0) return undefined;
      for (let d = ia; ; d = (d + 1) % 7) {
        days[d] = true;
        if (d === ib) break;
      }
    }
  }
  const t = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(sp[1]);
  if (!t) return undefined;
  // HH 00-23 and MM 00-59; 24:00 is the end of the day
  const mins = (h: string, m: string) => (Number(h) < 24 && Number(m) < 60) || (h === '24' && m === '00') ? Number(h) * 60 + Number(m) : NaN;
  const startMin = mins(t[1], t[2]), endMin = mins(t[3], t[4]);
  // (start = end would never open: 00:00-00:00 read as "all day" left a region unscanned)
  if (Number.isNaN(startMin) || Number.isNaN(endMin) || startMin === endMin) return undefined;
  return { days, startMin, endMin };
}

/** Is `now` inside any of the windows (none configured: always)? */
export function insideWindows(windows: ScanWindow[] | undefined, now: number, zone: string): boolean {
  if (!windows || windows.length === 0) return true;
  const local = new Date(now + zoneOffsetMs(zone, now));
  const day = local.getUTCDay();
  const min = local.getUTCHours() * 60 + local.getUTCMinutes();
  for (const w of windows) {
    if (w.startMin <= w.endMin) {
      if (w.days[day] && min >= w.startMin && min < w.endMin) return true;
    } else {
      // wraps midnight: evening part on the start day, morning part on the next day
      if (w.days[day] && min >= w.startMin) return true;
      if (w.days[(day + 6) % 7] && min < w.endMin) return true;
    }
  }
  return false;
}

/**
 * A blackout: dates (or a span) when a region is not scanned whatever its weekly windows say —
 * `2026-12-24` (that day), `2026-12-24..2026-12-26` (those days, inclusive),
 * `2026-12-31T18:00..2027-01-01T06:00` (from, until). Read in the region's time zone; kept as
 * local wall-clock milliseconds, compared like the weekly windows.
 */
export interface Blackout {
  startLocal: number;
  endLocal: number;
}

const DAY_MS = 86_400_000;

function localMs(text: string, endOfDay: boolean): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d))?$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const date = new Date(ms);
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined; // 2026-02-30
  if (m[4] === undefined) return endOfDay ? ms + DAY_MS : ms;
  const h = Number(m[4]), min = Number(m[5]);
  if (h > 23 || min > 59) return undefined;
  return ms + (h * 60 + min) * 60_000;
}

export function parseBlackout(text: string): Blackout | undefined {
  const parts = text.trim().split('..');
  if (parts.length > 2) return undefined;
  const startLocal = localMs(parts[0], false);
  const endLocal = localMs(parts[parts.length - 1], true);
  if (startLocal === undefined || endLocal === undefined || endLocal <= startLocal) return undefined;
  // both ends of a span are dates or both are times: "2026-12-24..2026-12-26T06:00" is a typo
  if (parts.length === 2 && parts[0].includes('T') !== parts[1].includes('T')) return undefined;
  return { startLocal, endLocal };
}

/** Is `now` inside one of the blackouts? */
export function inBlackout(blackouts: Blackout[] | undefined, now: number, zone: string): boolean {
  if (!blackouts || blackouts.length === 0) return false;
  const local = now + zoneOffsetMs(zone, now);
  return blackouts.some((b) => local >= b.startLocal && local < b.endLocal);
}
