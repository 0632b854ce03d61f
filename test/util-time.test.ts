/**
 * src/util/time.ts: the zone offset cache must give what Intl gives, at every minute around DST
 * transitions, in zones with half- and quarter-hour offsets, and for old LMT offsets (seconds).
 */
import { describe, expect, it } from 'vitest';
import { isRealDate, resolveYearless, wallToUtc, zoneOffsetMs } from '../src/util/time.js';

/** The offset as Intl states it, with no cache (the reference). */
function intlOffset(zone: string, utcMs: number): number {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(new Date(utcMs))) if (x.type !== 'literal') p[x.type] = Number(x.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(utcMs / 1000) * 1000;
}

describe('zoneOffsetMs with its cache', () => {
  const windows: [string, string][] = [
    ['Europe/Berlin', '2026-03-29T00:00:00Z'], ['Europe/Berlin', '2026-10-25T00:00:00Z'],
    ['America/New_York', '2026-03-08T06:00:00Z'], ['Australia/Lord_Howe', '2026-04-04T14:00:00Z'],
    ['Asia/Kathmandu', '2026-06-01T00:00:00Z'], ['America/St_Johns', '2026-11-01T03:00:00Z'],
    ['Africa/Monrovia', '1972-01-07T00:00:00Z'], // -0:44:30 until 00:44:30 UTC on 1972-01-07: a transition off the quarter hour
  ];
  for (const [zone, from] of windows) {
    it(`${zone} around ${from}: every 20 s for 3 hours, twice (cold, then cached)`, () => {
      const t0 = Date.parse(from);
      for (let pass = 0; pass < 2; pass++) {
        for (let k = 0; k <= 540; k++) {
          const t = t0 + k * 20_000 + 7_000;
          expect(zoneOffsetMs(zone, t), `${zone} ${new Date(t).toISOString()}`).toBe(intlOffset(zone, t));
        }
      }
    });
  }

  it('wall time -> UTC across the spring-forward and fall-back hours (Berlin)', () => {
    expect(new Date(wallToUtc(2026, 3, 29, 1, 59, 0, 0, 'Europe/Berlin')).toISOString()).toBe('2026-03-29T00:59:00.000Z');
    expect(new Date(wallToUtc(2026, 3, 29, 3, 0, 0, 0, 'Europe/Berlin')).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(new Date(wallToUtc(2026, 10, 25, 3, 30, 0, 0, 'Europe/Berlin')).toISOString()).toBe('2026-10-25T02:30:00.000Z');
  });
});

describe('the fall-back hour, read by when the line came', () => {
  // New York falls back on 2026-11-01: 01:00–01:59 comes twice, first EDT (05:00Z…), then EST (06:00Z…)
  const ny = (near?: string) => new Date(wallToUtc(2026, 11, 1, 1, 30, 0, 0, 'America/New_York', near === undefined ? undefined : Date.parse(near))).toISOString();
  it('a live line takes the latest reading not after it came; without one, or read long after, as before', () => {
    expect(ny()).toBe('2026-11-01T05:30:00.000Z');
    expect(ny('2026-11-01T05:30:02Z')).toBe('2026-11-01T05:30:00.000Z'); // sent in the first 01:30
    expect(ny('2026-11-01T06:10:02Z')).toBe('2026-11-01T05:30:00.000Z'); // late (40 min): never dated after it came
    expect(ny('2026-11-01T06:30:02Z')).toBe('2026-11-01T06:30:00.000Z'); // sent in the second
    expect(ny('2026-11-01T06:27:00Z')).toBe('2026-11-01T06:30:00.000Z'); // a sender 3 min fast
    expect(ny('2026-11-01T08:29:00Z')).toBe('2026-11-01T06:30:00.000Z'); // late, still within 2 h of the second
    expect(ny('2026-11-02T09:00:00Z')).toBe('2026-11-01T05:30:00.000Z'); // a backlog read next day: as before
    // east of Greenwich the two passes give the second reading: a live line of the first hour takes the first, a backlog stays as before
    const berlin = (near?: string) => new Date(wallToUtc(2026, 10, 25, 2, 30, 0, 0, 'Europe/Berlin', near === undefined ? undefined : Date.parse(near))).toISOString();
    expect(berlin()).toBe('2026-10-25T01:30:00.000Z');
    expect(berlin('2026-10-25T00:31:00Z')).toBe('2026-10-25T00:30:00.000Z');
    expect(berlin('2026-10-25T01:31:00Z')).toBe('2026-10-25T01:30:00.000Z');
    expect(berlin('2026-10-27T00:00:00Z')).toBe('2026-10-25T01:30:00.000Z');
    // a wall time spring-forward skips (02:30 on 2026-03-29 in Berlin) comes out as without `near`, whatever `near` says
    const gap = wallToUtc(2026, 3, 29, 2, 30, 0, 0, 'Europe/Berlin');
    for (const near of ['2026-03-29T00:30:00Z', '2026-03-29T01:30:00Z', '2026-03-29T02:30:00Z']) expect(wallToUtc(2026, 3, 29, 2, 30, 0, 0, 'Europe/Berlin', Date.parse(near))).toBe(gap);
  });
});

describe('dates that exist', () => {
  it('month lengths and leap years', () => {
    expect(isRealDate(2024, 2, 29)).toBe(true);
    expect(isRealDate(2025, 2, 29)).toBe(false);
    expect(isRealDate(1900, 2, 29)).toBe(false);
    expect(isRealDate(2000, 2, 29)).toBe(true);
    expect(isRealDate(2025, 9, 31)).toBe(false);
    expect(isRealDate(2025, 12, 31)).toBe(true);
    expect(resolveYearless(4, 31, 0, 0, 0, 0, new Date('2026-06-01T00:00:00Z'), 'UTC')).toBeUndefined();
  });
});
