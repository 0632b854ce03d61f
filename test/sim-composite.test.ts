import { describe, expect, it } from 'vitest';
import { runOnce } from '../src/sim/sim.js';
import type { SimScanner } from '../src/sim/scanner.js';
import { generateWorkload } from '../src/sim/workload.js';
import { expandPolicies, isPolicyName } from '../src/sim/policies.js';
import { parseScenarioText } from '../src/sim/scenario.js';
import { ConfigError } from '../src/errors.js';
import { smallFleet } from './helpers/sim.js';

describe('onsight+scheduled (experiment, issue 13)', () => {
  it('runs onsight and the scheduled range scans on one scanner: the scheduled ones cost no call, both count for coverage', async () => {
    expect(isPolicyName('onsight+scheduled')).toBe(true);
    // a scarce allowance, as in the 50/day cell the experiment is about
    const sc = { ...smallFleet(2), api: { ...smallFleet(2).api, limit: 50, windowS: 86400, concurrency: 1 } };
    // an experiment: run when named, not in the default comparison
    expect(expandPolicies(sc)).not.toContain('onsight+scheduled');
    expect(expandPolicies(sc)).toContain('onsight');
    expect(expandPolicies(sc, 'onsight,onsight+scheduled')).toEqual(['onsight', 'onsight+scheduled']);
    const w = generateWorkload(sc, 2);
    let scanner: SimScanner | undefined;
    const both = await runOnce(sc, 'onsight+scheduled', 2, { workload: w, afterRun: (s) => (scanner = s) });
    const ours = scanner!.scans.filter((s) => !s.other);
    const range = ours.filter((s) => s.title.startsWith('twice-daily-scheduled '));
    const onsight = ours.filter((s) => s.title.startsWith('onsight'));
    expect(range.length + onsight.length).toBe(ours.length);
    // one range scan per region at each of 10:30 and 14:30 on each of the 2 days
    expect(range.length).toBe(3 * 2 * 2);
    expect(onsight.length).toBeGreaterThan(0);
    // every accepted launch call is onsight's: the platform launches the scheduled scans
    expect(both.apiByKind.launch).toBe(onsight.length);
    expect(both.apiCallsPerDay).toBeLessThanOrEqual(50);
    // valid targets of both kinds of scans are credited
    const validIn = (scans: typeof ours) => {
      const ids = new Set(scans.map((s) => s.id));
      return scanner!.targets.filter((t) => t.outcome === 'valid' && ids.has(t.scan)).length;
    };
    expect(validIn(range)).toBeGreaterThan(0);
    expect(validIn(onsight)).toBeGreaterThan(0);
    expect(both.validTargets).toBe(validIn(range) + validIn(onsight));
    // the range scans alone, on the same workload, launch the same scans at the same times
    let alone: SimScanner | undefined;
    await runOnce(sc, 'twice-daily-scheduled', 2, { workload: w, afterRun: (s) => (alone = s) });
    const aloneTimes = alone!.scans.filter((s) => !s.other).map((s) => s.launchedAt);
    expect(range.map((s) => s.launchedAt)).toEqual(aloneTimes);
  }, 600_000);

  it('policy.lastScannedFromScanner reaches onsight: on the same workload, it reads the host list before launches', async () => {
    const on = parseScenarioText('extends: mobile-fleet\npolicy: { lastScannedFromScanner: true }\n', 'on.yaml');
    expect(on.policy.lastScannedFromScanner).toBe(true);
    expect(() => parseScenarioText('extends: mobile-fleet\npolicy: { lastScannedFromScanner: 1 }\n', 'bad.yaml')).toThrow(ConfigError);
    const off = smallFleet(2);
    const w = generateWorkload(off, 4);
    const withDates = { ...off, policy: { ...off.policy, lastScannedFromScanner: true } };
    const a = await runOnce(off, 'onsight+scheduled', 4, { workload: w });
    const b = await runOnce(withDates, 'onsight+scheduled', 4, { workload: w });
    // the same scheduled scans, more host-list calls (the dates read before launches)
    expect(b.apiByKind['host list'] ?? 0).toBeGreaterThan(a.apiByKind['host list'] ?? 0);
  }, 600_000);
});

describe('onsight+ranges, runs aimed at held addresses (scheduler.rangeScans.aim)', () => {
  it('with calls to spare, the runs scan the addresses devices hold instead of whole pools: far fewer idle addresses, one schedule update per region and time', async () => {
    const sc = smallFleet(2);
    const whole = { ...sc, policy: { ...sc.policy, rangeScansAim: 'ranges' as const } };
    const w = generateWorkload(sc, 3);
    const rangeTargets = (s: SimScanner) => {
      const ids = new Set(s.scans.filter((x) => !x.other && x.title.includes('-range ')).map((x) => x.id));
      return s.targets.filter((t) => ids.has(t.scan));
    };
    let aimedScanner: SimScanner | undefined, wholeScanner: SimScanner | undefined;
    const aimed = await runOnce(sc, 'onsight+ranges', 3, { workload: w, afterRun: (s) => (aimedScanner = s) });
    const all = await runOnce(whole, 'onsight+ranges', 3, { workload: w, afterRun: (s) => (wholeScanner = s) });
    const a = rangeTargets(aimedScanner!), b = rangeTargets(wholeScanner!);
    expect(a.length).toBeGreaterThan(0);
    // whole pools: most targets are idle addresses; aimed: a held address whose device left (its lease not yet run out)
    const dead = (ts: typeof a) => ts.filter((t) => t.outcome === 'dead').length / ts.length;
    expect(dead(b)).toBeGreaterThan(0.5);
    expect(dead(a)).toBeLessThan(dead(b) / 2);
    expect(aimed.wastedHostHPerDay).toBeLessThan(all.wastedHostHPerDay / 2);
    // rewritten before each time: 3 regions × 2 times × 2 days at most (a region where nobody is
    // present is made inactive instead, which is an update too)
    expect(aimed.apiByKind['update schedule']).toBeGreaterThan(0);
    expect(aimed.apiByKind['update schedule']).toBeLessThanOrEqual(3 * 2 * 2 + 3);
    expect(all.apiByKind['update schedule'] ?? 0).toBe(0);
    expect(aimed.violations).toEqual({ 'region-exclusivity': 0, 'region-scans': 0, scope: 0, 'api-limit': 0 });
  }, 600_000);
});
