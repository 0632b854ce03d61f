// Figures that cost a pass over the fleet (http/costly.ts): reused while fresh, served while a fresh
// one runs, recomputed when cheap, and a failure never served as a value.
import { describe, expect, it } from 'vitest';
import { CostlyFigures } from '../src/http/costly.js';

const V = 'v1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a computation that takes at least `ms` and returns the next number each time */
function counter(ms: number) {
  let n = 0;
  let running = 0;
  let most = 0;
  const compute = async () => {
    running++;
    most = Math.max(most, running);
    await sleep(ms);
    running--;
    return ++n;
  };
  return { compute, calls: () => n, most: () => most };
}

describe('costly figures', () => {
  it('computes a cheap figure afresh at every read', async () => {
    const f = new CostlyFigures();
    const c = counter(1);
    expect((await f.get('x', Date.now(), V, c.compute)).value).toBe(1);
    expect((await f.get('x', Date.now(), V, c.compute)).value).toBe(2);
    expect((await f.get('x', Date.now() + 3600_000, V, c.compute)).value).toBe(3);
  });

  it('reuses a costly figure for 50 times its cost, then serves it while a fresh one runs', async () => {
    const f = new CostlyFigures();
    const c = counter(150);
    const first = await f.get('x', Date.now(), V, c.compute);
    expect(first.value).toBe(1);
    expect(first.costMs).toBeGreaterThanOrEqual(140);
    // fresh: no computation
    expect((await f.get('x', first.at + 49 * first.costMs, V, c.compute)).value).toBe(1);
    expect(c.calls()).toBe(1);
    // expired: the last value at once (well before the 150 ms a computation takes), a fresh one behind it
    const t0 = performance.now();
    const stale = await f.get('x', first.at + 51 * first.costMs, V, c.compute);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(stale.value).toBe(1);
    // a second reader meanwhile joins the computation under way instead of starting another
    expect((await f.get('x', first.at + 52 * first.costMs, V, c.compute)).value).toBe(1);
    await sleep(250);
    expect(c.most()).toBe(1);
    expect(c.calls()).toBe(2);
    const next = await f.get('x', Date.now(), V, c.compute);
    expect(next.value).toBe(2);
    expect(next.at).toBeGreaterThan(first.at);
  });

  it('shares one computation among concurrent first readers, and keeps keys apart', async () => {
    const f = new CostlyFigures();
    const c = counter(20);
    const [a, b] = await Promise.all([f.get('x', Date.now(), V, c.compute), f.get('x', Date.now(), V, c.compute)]);
    expect([a.value, b.value]).toEqual([1, 1]);
    expect(c.most()).toBe(1);
    const other = counter(1);
    expect((await f.get('y', Date.now(), V, other.compute)).value).toBe(1);
  });

  it('never serves a failure as a value: after a background failure the next reader computes and sees the error', async () => {
    const f = new CostlyFigures();
    const first = await f.get('x', Date.now(), V, async () => {
      await sleep(150);
      return 'ok';
    });
    let fail = true;
    const flaky = async () => {
      await sleep(5);
      if (fail) throw new Error('database is locked');
      return 'again';
    };
    // expired: the last value while the background computation fails
    expect((await f.get('x', first.at + 60 * first.costMs, V, flaky)).value).toBe('ok');
    await sleep(50);
    await expect(f.get('x', Date.now(), V, flaky)).rejects.toThrow('database is locked');
    fail = false;
    expect((await f.get('x', Date.now(), V, flaky)).value).toBe('again');
  });

  it('waits for a fresh figure when the last is too old (nobody read for a while) or was counted before a change', async () => {
    const f = new CostlyFigures();
    const c = counter(150);
    const first = await f.get('x', Date.now(), V, c.compute);
    // past twice the fresh window: not served
    expect((await f.get('x', first.at + 101 * first.costMs, V, c.compute)).value).toBe(2);
    // what it depends on changed (an operator's mark, a reload): not served, though fresh by time
    const changed = await f.get('x', Date.now(), 'v2', c.compute);
    expect(changed.value).toBe(3);
    expect(changed.version).toBe('v2');
    expect((await f.get('x', Date.now(), 'v2', c.compute)).value).toBe(3);
  });

  it('does not keep a figure counted under an older version that ends after a newer count began', async () => {
    const f = new CostlyFigures();
    let n = 0;
    const slow = async () => {
      await sleep(200);
      return `old ${++n}`;
    };
    const fast = async () => {
      await sleep(120);
      return 'new';
    };
    const old = f.get('x', Date.now(), 'v1', slow);
    const cur = await f.get('x', Date.now(), 'v2', fast);
    expect(cur.value).toBe('new');
    expect((await old).value).toBe('old 1'); // its own reader gets it
    expect((await f.get('x', Date.now(), 'v2', slow)).value).toBe('new');
  });
});
