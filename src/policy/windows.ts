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
  const [from, to] = sp[1].split('-');
  const mins = (t: string) => {
    const [h, m] = t.split(':').map(Number);
    return h * 60 + m;
  };
  const startMin = mins(from), endMin = mins(to);
  if (!(startMin >= 0 && startMin <= 1440 && endMin >= 0 && endMin <= 1440)) return undefined;
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
