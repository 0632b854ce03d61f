import { describe, expect, it } from 'vitest';
import { RecheckPlan } from '../src/scheduler/recheck.js';

describe('RecheckPlan', () => {
  it('hands out bindings in time order, once, with the latest plan for each winning', () => {
    const p = new RecheckPlan();
    p.at(1, 300);
    p.at(2, 100);
    p.at(3, 200);
    p.at(1, 50); // replaces 300
    expect(p.takeDue(99)).toEqual([1]);
    expect(p.takeDue(250)).toEqual([2, 3]);
    expect(p.takeDue(1000)).toEqual([]);
    expect(p.size).toBe(0);
  });

  it('keeps window waiters per region; forgetting removes a binding from either kind of plan', () => {
    const p = new RecheckPlan();
    p.afterWindow(1, 'emea');
    p.afterWindow(2, 'emea');
    p.afterWindow(3, 'amer');
    p.at(2, 10); // moved from the window to a time
    p.forget(3);
    expect(p.regionsWaiting()).toEqual(['emea']);
    expect(p.takeWaiting('emea')).toEqual([1]);
    expect(p.takeDue(10)).toEqual([2]);
    expect(p.size).toBe(0);
  });

  it('stays a correct heap under many random re-plans (compaction included)', () => {
    const p = new RecheckPlan();
    const want = new Map<number, number>();
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const id = Math.floor(rnd() * 500);
      const at = Math.floor(rnd() * 10_000);
      p.at(id, at);
      want.set(id, at);
    }
    const got: number[] = [];
    for (let t = 0; t < 10_000 + 97; t += 97) {
      for (const id of p.takeDue(t)) {
        expect(want.get(id)).toBeLessThanOrEqual(t);
        expect(want.get(id)).toBeGreaterThan(t - 97);
        got.push(id);
      }
    }
    expect(got.sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
  });
});
