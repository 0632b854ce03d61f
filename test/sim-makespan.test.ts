import { describe, expect, it } from 'vitest';
import { BUILTIN } from '../src/sim/scenario.js';
import { makespanBound, runOnce } from '../src/sim/sim.js';
import type { SimScanner } from '../src/sim/scanner.js';
import { generateWorkload } from '../src/sim/workload.js';
import { listMakespan, listOrderMonteCarlo, nightBreakdown } from '../src/sim/makespan.js';

describe('makespan diagnosis', () => {
  it('greedy list scheduling: a long host last holds the night, first it does not', () => {
    expect(listMakespan([1, 1, 1, 1, 4], 2)).toBe(6);
    expect(listMakespan([4, 1, 1, 1, 1], 2)).toBe(4);
    expect(listMakespan([2, 3, 5], 1)).toBe(10);
  });

  it('a patch night: the excess over the bound is the sum of its parts, and longest-first lists end sooner', async () => {
    const sc = structuredClone(BUILTIN['patch-night']);
    sc.servers = { perRegion: [150, 150, 150, 150, 150, 150] };
    sc.days = 0.5;
    const w = generateWorkload(sc, 1);
    let scanner: SimScanner | undefined;
    const m = await runOnce(sc, 'onsight', 1, { workload: w, afterRun: (s) => { scanner = s; } });
    const bound = makespanBound(sc, w, scanner!);
    expect(bound.lowerBoundH).toBeCloseTo(m.lowerBoundH!, 9);
    const b = nightBreakdown(sc, bound, scanner!)!;
    expect(b.regions.map((r) => r.region)).toEqual(['R1', 'R2', 'R3', 'R4', 'R5', 'R6']);
    expect(b.makespanMin).toBeCloseTo(m.makespanH! * 60, 6);
    expect(b.makespanMin - b.boundMin).toBeCloseTo(b.startDelay + b.workNoise + b.tail - b.boundGap, 6);
    for (const r of b.regions) {
      expect(r.firstStart).toBeGreaterThanOrEqual(r.startMin - 1e-9);
      expect(r.hostsEnd).toBeGreaterThan(r.firstStart + r.realizedWork - 1e-9);
    }
    const mc = listOrderMonteCarlo(sc, w, bound, 40, 1);
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
    expect(mc.unrelated).toHaveLength(40);
    expect(mean(mc.clairvoyant)).toBeLessThan(mean(mc['by-host-factor']));
    expect(mean(mc['by-host-factor'])).toBeLessThan(mean(mc.unrelated));
  }, 60_000);
});
