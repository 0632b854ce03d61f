/**
 * The emulator's scan clock: scans progress on it, dates in answers come from it. Either an
 * injected function, or real time sped up by `speed` (60 = one emulated minute per real second).
 * Rate and concurrency limits always use real time: they are about how fast the client really calls.
 */
export type Clock = () => number;

export function scanClock(o: { now?: Clock; speed?: number; startAt?: string | number }): Clock {
  if (o.now) return o.now;
  const speed = o.speed ?? 1;
  const realStart = Date.now();
  const start = o.startAt === undefined ? realStart : typeof o.startAt === 'number' ? o.startAt : Date.parse(o.startAt);
  if (!Number.isFinite(start)) throw new TypeError('emulator startAt is not a date');
  return () => start + (Date.now() - realStart) * speed;
}

/** ISO 8601 UTC without milliseconds, as Qualys writes dates. */
export function isoSec(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** HH:MM:SS for a duration in ms. */
export function hms(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(Math.floor(s / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
}
