import { ProcessingLag } from '../src/scheduler/lag.js';
import { describe, expect, it } from 'vitest';
import { ScanDurations } from '../src/scheduler/durations.js';

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
