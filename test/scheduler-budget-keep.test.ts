// The budget's pace (src/scheduler/budget.ts) with calls kept for an essential job due soon (a range
// run's skip): launches and other calls leave them, essential calls may use them.
import { describe, expect, it } from 'vitest';
import { Budget } from '../src/scheduler/budget.js';

function budget(limitPerDay: number) {
  const clock = { t: Date.parse('2026-11-23T08:00:00Z'), now() { return this.t; } };
  const core = {
    clock,
    scanner: { allowance: () => ({ limit: limitPerDay, windowSec: 86_400, waitSec: 0 }) },
    counters: { launches: 0, apiCalls: 0 },
    opts: { reserveCalls: 0 },
  };
  return { b: new Budget(core as never), clock };
}

describe('budget: calls kept for a skip', () => {
  it('with a scarce allowance, launches and other calls leave the kept calls; essential ones may take them; released at 0', () => {
    const { b } = budget(50); // 12.5 tokens at most, a scan costs 3 until learned
    expect(b.canLaunch()).toBe(true);
    b.spentExtra(7); // 5.5 left
    expect(b.canLaunch()).toBe(true);
    expect(b.canSpend(false)).toBe(true);
    b.keep(4); // a skip of two regions soon: the look, the list, two updates
    expect(b.canLaunch()).toBe(false); // 5.5 < 3 + 4
    expect(b.canSpend(false)).toBe(false);
    expect(b.canSpend(true)).toBe(true);
    expect(b.canSpendCalls(4, true)).toBe(true);
    b.keep(0);
    expect(b.canLaunch()).toBe(true);
  });

  it('the kept calls come back as the pace refills', () => {
    const { b, clock } = budget(50);
    expect(b.canLaunch()).toBe(true); // the pace starts full
    b.spentExtra(9); // 3.5 left
    b.keep(3);
    expect(b.canLaunch()).toBe(false);
    clock.t += 90 * 60_000; // +3.1 tokens at 50 a day
    expect(b.canLaunch()).toBe(true);
  });

  it('the window\'s remaining count keeps them too (a plentiful allowance is not paced)', () => {
    const clock = { t: Date.parse('2026-11-23T08:00:00Z'), now() { return this.t; } };
    const allowance = { limit: 7200, windowSec: 86_400, waitSec: 0, remaining: 6 };
    const b = new Budget({ clock, scanner: { allowance: () => allowance }, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 } } as never);
    expect(b.canLaunch()).toBe(true); // 6 > 2 kept for a correction
    b.keep(4);
    expect(b.canLaunch()).toBe(false);
    expect(b.canSpend(false)).toBe(true); // 6 > 4
    b.keep(6);
    expect(b.canSpend(false)).toBe(false);
    expect(b.canSpendCalls(5, true)).toBe(true);
  });

  it('a plentiful allowance is not paced: keeping changes nothing while calls remain', () => {
    const { b } = budget(7200);
    expect(b.canLaunch()).toBe(true);
    b.spentExtra(100);
    b.keep(10);
    expect(b.canLaunch()).toBe(true);
    expect(b.canSpend(false)).toBe(true);
  });
});
