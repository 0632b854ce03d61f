import { ProcessingLag } from '../src/scheduler/lag.js';
import { describe, expect, it } from 'vitest';
import { ScanDurations } from '../src/scheduler/durations.js';
import { HostParallelism } from '../src/scheduler/parallelism.js';
import { Rng } from '../src/sim/rng.js';

describe('ScanDurations', () => {
  it('answers from scans of a similar size once there are enough of them, else from all', () => {
    const d = new ScanDurations();
    expect(d.typical(10)).toBe(0);
    for (let k = 0; k < 5; k++) d.add(10 * 60_000, 2); // small scans: 10 minutes
    expect(d.typical(50)).toBe(10 * 60_000); // no scans of about 50 targets yet: all of them
    for (let k = 0; k < 5; k++) d.add(60 * 60_000, 50); // big scans: an hour
    expect(d.typical(50)).toBe(60 * 60_000);
    expect(d.typical(40)).toBe(60 * 60_000);
    expect(d.typical(2)).toBe(10 * 60_000);
    expect(d.cdf(30 * 60_000, 50)).toBe(0);
    expect(d.cdf(30 * 60_000, 2)).toBe(1);
    expect(d.cdf(60 * 60_000, 50)).toBe(1);
  });

  it('keeps only the recent scans', () => {
    const d = new ScanDurations();
    for (let k = 0; k < 200; k++) d.add(k < 100 ? 1000 : 5000, 1);
    expect(d.count).toBe(128);
    expect(d.typical(1)).toBe(5000);
  });
});

describe('ProcessingLag', () => {
  it('waits for processing at least processingWaitS, and three times the 90th percentile of the lags seen once there are five', () => {
    const lag = new ProcessingLag();
    expect(lag.waitMs(21600)).toBe(21_600_000);
    for (const min of [100, 120, 140, 160, 400]) lag.add(min * 60_000);
    expect(lag.waitMs(21600)).toBe(3 * 400 * 60_000); // a slow scanner: 20 h, not 6 h
    expect(lag.waitMs(86400 * 2)).toBe(86400 * 2 * 1000); // never below what is configured
  });
});

describe('HostParallelism', () => {
  /** scans of n targets on p places, host times lognormal (median 12 min, σ 0.5) from a fixed generator, plus 8 min of setup and processing */
  const scans = (p: number, sizes: number[], seed = 7) => {
    const rng = new Rng(seed);
    return sizes.map((n) => {
      const places = new Array(Math.min(n, p)).fill(0);
      for (let i = 0; i < n; i++) {
        const j = places.indexOf(Math.min(...places));
        places[j] += rng.logNormal(12, 0.5);
      }
      return { n, ms: (8 + Math.max(...places)) * 60_000 };
    });
  };
  // as a busy fleet launches them: scans of one wave of the configured 10 or fewer, and larger ones (settled targets)
  const sizes = Array.from({ length: 400 }, (_, k) => (k % 3 === 2 ? 11 + (k % 29) : 1 + (k % 10)));
  const learnt = (p: number, sz = sizes) => {
    const h = new HostParallelism();
    for (const s of scans(p, sz)) h.add(s.n, s.ms, 10);
    return h.describe(10);
  };

  it('learns that an appliance scans more hosts at once than configured from how long larger scans take', () => {
    const d = learnt(30);
    expect(d.value).toBeGreaterThanOrEqual(20);
    expect(d.value).toBeLessThanOrEqual(40); // a few past the truth barely lengthen a scan (they start as the first hosts end)
    expect(d.how).toMatch(/^learned/);
  });

  it('stays near the configured value when it is the truth (larger scans run in waves), and at it while the scans are too few', () => {
    const d = learnt(10);
    // scans of 11-15 on 10 places last barely longer than one wave (the 11th host starts when the
    // first one ends): the resolution is coarse upward, but scans of twice the truth show their waves
    expect(d.value).toBeLessThanOrEqual(15);
    expect(d.steps!.at(-1)!.meanLogRatio).toBeGreaterThan(0.12);
    const few = learnt(30, sizes.slice(0, 25));
    expect(few.value).toBe(10);
    expect(few.how).toMatch(/too few/);
  });

  it('cannot tell beyond the largest scans it saw', () => {
    expect(learnt(50, sizes.map((n) => Math.min(n, 20))).value).toBe(20);
  });
});
