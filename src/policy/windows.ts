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
  if (Number.isNaN(startMin) || Number.isNaN(endMin)) return undefined;
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
