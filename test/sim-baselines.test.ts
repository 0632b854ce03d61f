/**
 * The baselines given what an operator and a script would have (session 33): the range schedules
 * placed knowing where the organisation's nightly scans run, and the batch scripts reading the
 * appliance list before they place a job.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN, parseScenarioText } from '../src/sim/scenario.js';
import { runOnce } from '../src/sim/sim.js';
import type { SimScanner } from '../src/sim/scanner.js';
import { generateWorkload } from '../src/sim/workload.js';
import { expandPolicies, informedRunApplianceOf, othersNightlyLoad } from '../src/sim/policies.js';
import { runApplianceOf } from '../src/scheduler/run-placement.js';
import { isBaseline, MATRIX_POLICIES } from '../src/sim/matrix.js';

const reachOf = (sc: { regions: { name: string }[]; appliances: { name: string; regions: string[] }[] }) =>
  new Map(sc.regions.map((r) => [r.name, sc.appliances.filter((a) => a.regions.includes(r.name)).map((a) => a.name)]));

describe('twice-daily-informed: range schedules placed off the appliances the nightly scans load', () => {
  it('in the default ring, no region runs on an appliance carrying more nightly scans than another it reaches; with none it is the daemon\'s spread', () => {
    const sc = BUILTIN['mobile-fleet'];
    const reach = reachOf(sc);
    // as sim.ts launches them: R1, R2, R3 on A1, R4, R5 on A2, R6 on A3
    expect(Object.fromEntries(othersNightlyLoad(sc, reach))).toEqual({ A1: 3, A2: 2, A3: 1 });
    const regions = sc.regions.map((r) => ({ name: r.name, appliances: reach.get(r.name)!.map((a) => ({ name: a, maxScans: 1 })) }));
    const placed = informedRunApplianceOf(regions, othersNightlyLoad(sc, reach));
    expect(Object.fromEntries(placed)).toEqual({ R2: 'A1', R4: 'A2', R6: 'A3', R1: 'A3', R3: 'A2', R5: 'A3' });
    expect(informedRunApplianceOf(regions, new Map())).toEqual(runApplianceOf(regions));
  });

  it('runs so, at no call; twice-daily (API) is placed the same way; both are baselines in the matrix and the default set', async () => {
    const sc = parseScenarioText('extends: mobile-fleet\nname: ring\ndays: 1\nfleet: { laptops: 60 }\nbackground: { hostsPerRegion: 20 }\n', 'ring.yaml');
    const reach = reachOf(sc);
    const w = generateWorkload(sc, 1);
    for (const policy of ['twice-daily', 'twice-daily-informed']) {
      let scanner: SimScanner | undefined;
      const m = await runOnce(sc, policy, 1, { workload: w, afterRun: (s) => (scanner = s) });
      // the nightly load as the run's scanner carried it, not as the policy computed it
      const nightly = new Map<string, number>();
      for (const s of scanner!.scans.filter((x) => x.other)) nightly.set(s.appliance, (nightly.get(s.appliance) ?? 0) + 1);
      expect(nightly.size, policy).toBeGreaterThan(0);
      const ours = scanner!.scans.filter((s) => !s.other);
      expect(ours.length, policy).toBe(6 * 2); // each region at 10:30 and 14:30
      for (const s of ours) {
        const fewest = Math.min(...reach.get(s.region!)!.map((a) => nightly.get(a) ?? 0));
        expect(nightly.get(s.appliance) ?? 0, `${policy} ${s.region} on ${s.appliance}`).toBe(fewest);
      }
      if (policy === 'twice-daily-informed') expect(m.apiCalls).toBe(0);
    }
    expect(expandPolicies(sc)).toContain('twice-daily-informed');
    expect(MATRIX_POLICIES).toContain('twice-daily-informed');
    expect(isBaseline('twice-daily-informed')).toBe(true);
  }, 60_000);
});

describe('batch baselines read the appliance list before placing a job', () => {
  it('spend the list calls (counted) and place no job on the appliance the list shows full while the other has room', async () => {
    // A1 held all day by another tool's scan (its one slot); A2 free
    const sc = parseScenarioText(`
extends: mobile-fleet
name: one-full
days: 1
regions: [{ name: R1 }]
appliances:
  - { name: A1, regions: [R1], slots: 1 }
  - { name: A2, regions: [R1], slots: 1 }
fleet: { laptops: 150, vpnRegion: R1 }
background: { hostsPerRegion: 8000, at: "00:00" }
`, 'one-full.yaml');
    const w = generateWorkload(sc, 1);
    for (const policy of ['batch-15min', 'batch-15min-verified']) {
      let scanner: SimScanner | undefined;
      const m = await runOnce(sc, policy, 1, { workload: w, afterRun: (s) => (scanner = s) });
      const theirs = scanner!.scans.find((s) => s.other)!;
      const ours = scanner!.scans.filter((s) => !s.other);
      expect(theirs.appliance).toBe('A1');
      // theirs held A1 from before our first launch to after our last: every list showed it full
      expect(theirs.firstStart!).toBeLessThan(ours[0].launchedAt);
      expect(theirs.endedAt ?? Infinity).toBeGreaterThan(ours[ours.length - 1].launchedAt);
      expect(ours.filter((s) => s.appliance === 'A1').map((s) => new Date(s.launchedAt).toISOString()), policy).toEqual([]);
      expect(ours.length, policy).toBeGreaterThan(5);
      // one list call before each job placed (one region, so one job a batch), counted with the others
      expect(m.apiByKind['list appliances'], policy).toBe(m.apiByKind.launch);
      expect(m.apiCalls).toBe(Object.values(m.apiByKind).reduce((a, b) => a + b, 0));
    }
  }, 60_000);
});

describe('scheduled range baselines: a time that comes while the region\'s run still goes (baselines.scheduledOverlap)', () => {
  // one appliance per region, no nightly scans of others: a run waits only for its region's previous run
  const scenario = (overlap: 'queue' | 'skip') => parseScenarioText(`
extends: mobile-fleet
name: overlap-${overlap}
startAt: "2026-01-05T00:00:00Z"
days: 2
regions: [{ name: R1 }, { name: R2 }]
appliances:
  - { name: A1, regions: [R1] }
  - { name: A2, regions: [R2] }
fleet: { laptops: 150, vpnRegion: R1 }
background: { hostsPerRegion: 0 }
scan: { medianMin: 60 }
baselines: { rangeScanTimes: ["10:30", "11:00"], scheduledOverlap: ${overlap} }
`, `overlap-${overlap}.yaml`);
  const launches = async (overlap: 'queue' | 'skip') => {
    const sc = scenario(overlap);
    let scanner!: SimScanner;
    await runOnce(sc, 'twice-daily-scheduled', 1, { workload: generateWorkload(sc, 1), afterRun: (s) => (scanner = s) });
    const mins = (t: number) => Math.round((t % 86_400_000) / 60_000);
    return scanner.scans.filter((s) => !s.other).map((s) => ({ at: mins(s.launchedAt), region: s.region, ended: s.endedAt }));
  };
  it('queue: the 11:00 run starts when the 10:30 one ends, long after its time; skip: every run starts at its time, and the 11:00 ones are dropped', async () => {
    const q = await launches('queue');
    const k = await launches('skip');
    // (10:30 UTC is minute 630; a run launches within the tick after its time)
    const onTime = (l: { at: number }) => (l.at >= 630 && l.at <= 632) || (l.at >= 660 && l.at <= 662);
    expect(q.length).toBe(8); // 2 regions x 2 times x 2 days
    expect(q.filter((l) => !onTime(l)).length).toBe(4); // each 11:00 run waited for the 10:30 one (60-min hosts: it runs past 11:00)
    expect(k.every(onTime)).toBe(true);
    expect(k.length).toBe(4);
  });
});
