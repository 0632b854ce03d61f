// The budget's pace (src/scheduler/budget.ts) over a quiet night: what the full bucket cannot hold
// is saved, for a week after the window was last within a bucket of running out, and flows back at
// the allowance's own rate once calls are spent, so a scarce allowance that binds has more for the
// morning's arrivals without a burst at the night's end.
import { describe, expect, it } from 'vitest';
import { Budget } from '../src/scheduler/budget.js';

const T0 = Date.parse('2026-11-23T22:00:00Z');
const HOUR = 3_600_000;

function budget(limitPerDay: number) {
  const clock = { t: T0, now() { return this.t; } };
  // what the scanner's headers say is left in the window (a day's calls that used it: a few)
  const win = { remaining: 4 };
  const core = {
    clock,
    scanner: { allowance: () => ({ limit: limitPerDay, windowSec: 86_400, waitSec: 0, remaining: win.remaining }) },
    counters: { launches: 0, apiCalls: 0 },
    opts: { reserveCalls: 0 },
  };
  return { b: new Budget(core as never), clock, core, win };
}

/**
 * Whole calls the pace holds now (at most the bucket's 12 at 50 a day): what an essential job of n
 * calls may take, with the window's remaining count out of the way (yesterday's morning has left it).
 */
function level(b: Budget, win: { remaining: number }): number {
  b.canSpend(true); // the pace refills (and saves) as the window stands
  const before = win.remaining;
  win.remaining = 40;
  let n = 0;
  while (n < 12 && b.canSpendCalls(n + 1, true)) n++;
  win.remaining = before;
  return n;
}

describe('budget: the pace saves what a quiet night cannot hold', () => {
  it('after a quiet night the bucket refills at twice the rate until the saved calls are spent; without a quiet night, at the rate alone', () => {
    // 50 a day: 2.08 an hour, 12.5 at most in the bucket
    const night = budget(50), noNight = budget(50);
    expect(level(night.b, night.win)).toBe(12); // starts full
    expect(level(noNight.b, noNight.win)).toBe(12);
    night.clock.t += 9 * HOUR; // nothing spent, 4 left in the window: 18.75 more than the bucket holds, 12.5 of it saved
    expect(level(night.b, night.win)).toBe(12); // (the scheduler reads the pace before each call, as here)
    night.b.spentExtra(12); // 0.5 left in both
    noNight.b.spentExtra(12); // (no quiet hours before it)
    night.clock.t += HOUR;
    noNight.clock.t += HOUR;
    expect(level(noNight.b, noNight.win)).toBe(2); // 0.5 + 2.08
    expect(level(night.b, night.win)).toBe(4); // 0.5 + 2.08 + 2.08 of the saved
    expect(noNight.b.canLaunch()).toBe(false); // a scan costs 3 until learned
    expect(night.b.canLaunch()).toBe(true);
    // spent as it comes, the saved 12.5 last six hours in all (2.08 an hour on top of the rate)
    night.b.spentExtra(4);
    for (let h = 2; h <= 6; h++) {
      night.clock.t += HOUR;
      expect(level(night.b, night.win)).toBeGreaterThanOrEqual(4);
      night.b.spentExtra(4);
    }
    night.clock.t += HOUR;
    expect(level(night.b, night.win)).toBe(3); // 1.5 left + 2.08: nothing saved any more
  });

  it('a week of quiet saves one bucket, not a week\'s calls; what the bucket cannot take stays saved', () => {
    const { b, clock, win } = budget(50);
    expect(level(b, win)).toBe(12);
    clock.t += 7 * 24 * HOUR; // 12.5 in the bucket, 12.5 saved (the rest of the 350 is not)
    expect(level(b, win)).toBe(12);
    b.spentExtra(12);
    clock.t += 3 * HOUR; // 0.5 + 6.25 + 6.25 saved: 12.5 held, 0.5 back to the saved 6.25
    expect(level(b, win)).toBe(12);
    b.spentExtra(12);
    clock.t += 3 * HOUR; // 0.5 + 6.25 + 6.25 saved: 12.5 held, 1 saved
    expect(level(b, win)).toBe(12);
    b.spentExtra(12);
    clock.t += 3 * HOUR; // 0.5 + 6.25 + the last 1 saved
    expect(level(b, win)).toBe(7);
  });

  it('the saved calls and when the allowance last bound are kept across a restart (memory.ts); values out of range are refused', () => {
    const { b, clock, core, win } = budget(50);
    expect(level(b, win)).toBe(12);
    clock.t += 9 * HOUR;
    expect(level(b, win)).toBe(12);
    b.spentExtra(12); // 0.5 left, 12.5 saved
    const snap = JSON.parse(JSON.stringify(b.paceMemory.snapshot(clock.t)));
    expect(snap).toMatchObject({ tokens: 0.5, saved: 12.5, boundAt: clock.t, limit: '50/86400' });
    const again = new Budget(core as never);
    expect(again.paceMemory.merge(snap, clock.t)).toBe('the pace at 0.5 call(s), 12.5 saved (limit 50/86400 s)');
    clock.t += HOUR;
    expect(level(again, win)).toBe(4); // 0.5 + 2.08 + 2.08 saved
    for (const saved of [-1, 13, 'x', Infinity, null]) {
      expect(new Budget(core as never).paceMemory.merge({ ...snap, saved }, clock.t)).toBeUndefined();
    }
    for (const boundAt of [-1, clock.t + 2 * 86_400_000, 'x', null]) {
      expect(new Budget(core as never).paceMemory.merge({ ...snap, boundAt }, clock.t)).toBeUndefined();
    }
    // the last bind is read back too: with the window far from running out after the restart, a
    // quiet night is still saved (the bind before it is under a week old), and not without it
    const kept = new Budget(core as never), lost = new Budget(core as never);
    expect(kept.paceMemory.merge({ ...snap, saved: 0 }, clock.t)).toBe('the pace at 0.5 call(s) (limit 50/86400 s)');
    expect(lost.paceMemory.merge({ ...snap, saved: 0, boundAt: undefined }, clock.t)).toBe('the pace at 0.5 call(s) (limit 50/86400 s)');
    win.remaining = 30;
    for (const x of [kept, lost]) x.canSpend(true); // read at the restart
    clock.t += 9 * HOUR;
    for (const x of [kept, lost]) {
      x.canSpend(true); // the quiet night: over the bucket
      x.spentExtra(12);
    }
    clock.t += HOUR;
    expect(level(kept, win)).toBe(4); // 0.5 + 2.08 + 2.08 of the night's 6.75 saved
    expect(level(lost, win)).toBe(2); // 0.5 + 2.08: the night was not saved
    // what a version before the saved count wrote is taken, with nothing saved
    const old = new Budget(core as never);
    expect(old.paceMemory.merge({ tokens: 0.5, at: clock.t, limit: '50/86400' }, clock.t)).toBe('the pace at 0.5 call(s) (limit 50/86400 s)');
    clock.t += HOUR;
    expect(level(old, win)).toBe(2);
  });

  it('a window never near running out saves nothing: the allowance does not bind, and the bucket alone paces the launches', () => {
    const { b, clock, win } = budget(50);
    win.remaining = 30; // the days use 20 of their 50
    expect(level(b, win)).toBe(12);
    clock.t += 9 * HOUR;
    expect(level(b, win)).toBe(12);
    b.spentExtra(12);
    clock.t += HOUR;
    expect(level(b, win)).toBe(2); // 0.5 + 2.08: nothing was saved
  });

  it('two quiet days after a day that bound are saved for the next morning; a week after the allowance last bound, nothing is', () => {
    const { b, clock, win } = budget(50);
    expect(level(b, win)).toBe(12); // an evening with 4 left in the window: the allowance binds
    win.remaining = 30; // two quiet days (a weekend) use little: the window fills up again
    clock.t += 2 * 24 * HOUR;
    expect(level(b, win)).toBe(12);
    b.spentExtra(12);
    clock.t += HOUR;
    expect(level(b, win)).toBe(4); // the next morning: 0.5 + 2.08 + 2.08 saved
    clock.t += 7 * 24 * HOUR; // a week more without binding
    expect(level(b, win)).toBe(12);
    b.spentExtra(12); // (what was left saved flowed into the full bucket and over it: not kept)
    clock.t += HOUR;
    expect(level(b, win)).toBe(2); // 0.5 + 2.08: nothing saved
  });

  it('a clock stepped back refills nothing and takes nothing (and saves nothing)', () => {
    const { b, clock, win } = budget(50);
    win.remaining = 30;
    expect(level(b, win)).toBe(12);
    b.spentExtra(12); // 0.5 left
    clock.t -= 6 * HOUR; // an NTP step back
    expect(level(b, win)).toBe(0);
    expect(b.paceMemory.snapshot(clock.t)).toMatchObject({ tokens: 0.5, saved: 0 });
    clock.t += HOUR;
    expect(level(b, win)).toBe(2); // 0.5 + 2.08
  });
});
