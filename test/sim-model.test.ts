/**
 * The simulator's model where the audit found it flattering: the host list lags the scan (dates
 * appear only once results are processed), a cancel reaches the appliance only at its next poll
 * (targets in flight are judged, not erased), the headline coverage can tell policies apart, and
 * the relaxation bound is above every policy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BUILTIN, type Scenario } from '../src/sim/scenario.js';
import { SimScanner } from '../src/sim/scanner.js';
import { Rng } from '../src/sim/rng.js';
import { lostHostMs, runOnce } from '../src/sim/sim.js';
import { generateWorkload } from '../src/sim/workload.js';
import { smallFleet as smallFleetOf } from './helpers/sim.js';
import { ScheduleSyncIncomplete } from '../src/scanners/failure.js';
import { startQualysEmulator } from '../src/emulator/qualys/server.js';
import { QualysClient } from '../src/scanners/qualys/client.js';
import type { RangeSchedule } from '../src/scanners/types.js';

const MIN = 60_000;

/** 6 regions × 20 servers, always present: every target is a valid host */
function servers(scan: Partial<Scenario['scan']>): Scenario {
  const sc = structuredClone(BUILTIN['patch-night']);
  sc.servers = { perRegion: [20, 20, 20, 20, 20, 20] };
  sc.scan = { ...sc.scan, errorRate: 0, ...scan };
  return sc;
}

function scannerFor(sc: Scenario) {
  const w = generateWorkload(sc, 1);
  const s = new SimScanner({ scenario: sc, workload: w, seed: 1, regionOf: () => 'R1', scope: ['10.0.0.0/8'], exclude: [] });
  const ips = [...w.truth.keys()].filter((ip) => s.holder(ip, w.start + MIN) !== undefined).slice(0, 20);
  return { w, s, ips };
}

async function untilState(s: SimScanner, ref: string, states: string[], stepMs = MIN, limitMs = 24 * 60 * MIN) {
  const t0 = s.now;
  for (;;) {
    const st = s.peek(ref)!;
    if (states.includes(st.state)) return;
    if (s.now - t0 > limitMs) throw new Error(`scan ${ref} never reached ${states.join('/')} (is ${st.state})`);
    s.advance(s.now + stepMs);
  }
}

describe('simulated scanner: host list', () => {
  it('dates hosts only once the results are processed, hostListLagMin after the scan finished', async () => {
    const { s, ips } = scannerFor(servers({ hostListLagMin: 30, hostListLagSigma: 0 }));
    const { scanRef } = await s.launchFor({ intentId: 'i1', title: 't', targets: ips, appliance: 'A1' });
    await untilState(s, scanRef, ['finished']);
    const finishedAt = s.peek(scanRef)!.endedAt!;
    s.advance(finishedAt);
    const [st] = await s.listScans({ scanRefs: [scanRef] });
    expect(st.state).toBe('finished');
    expect(st.processed).toBe(false);
    expect((await s.lastScanned(ips)).filter((d) => d.lastScannedAt)).toEqual([]);
    s.advance(finishedAt + 29 * MIN);
    expect((await s.lastScanned(ips)).filter((d) => d.lastScannedAt)).toEqual([]);
    s.advance(finishedAt + 31 * MIN);
    const dated = (await s.lastScanned(ips)).filter((d) => d.lastScannedAt);
    expect(dated.length).toBe(ips.length);
    expect((await s.listScans({ scanRefs: [scanRef] }))[0].processed).toBe(true);
  });

  it('a canceled scan is never processed unless the scenario says so', async () => {
    for (const canceledProcessed of [false, true]) {
      const { s, ips } = scannerFor(servers({ hostListLagMin: 0, canceledProcessed }));
      const { scanRef } = await s.launchFor({ intentId: 'i1', title: 't', targets: ips, appliance: 'A1' });
      await untilState(s, scanRef, ['running']);
      s.advance(s.now + 15 * MIN); // some targets done
      await s.cancel(scanRef);
      s.advance(s.now + 10 * MIN);
      const dated = (await s.lastScanned(ips)).filter((d) => d.lastScannedAt).length;
      if (canceledProcessed) expect(dated).toBeGreaterThan(0);
      else expect(dated).toBe(0);
      // the valid probes it finished before the cancel bought nothing unless it is processed (lostHostHPerDay)
      const probed = s.targets.reduce((n, t) => n + (t.end - t.start), 0);
      const validMs = s.targets.filter((t) => t.outcome === 'valid').reduce((n, t) => n + (t.end - t.start), 0);
      expect(validMs).toBeGreaterThan(0);
      expect(lostHostMs(s)).toBe(canceledProcessed ? probed - validMs : probed);
    }
  });
});

describe('simulated scanner: cancel', () => {
  it('the API says canceled at once, the appliance stops at its next poll, and targets in flight are judged', async () => {
    const { s, ips } = scannerFor(servers({ hostListLagMin: 0 }));
    const { scanRef } = await s.launchFor({ intentId: 'i1', title: 't', targets: ips, appliance: 'A1' });
    await untilState(s, scanRef, ['running'], 1000);
    s.advance(s.now + 2 * MIN);
    const live = s.peek(scanRef)!.live.length;
    expect(live).toBeGreaterThan(0);
    const before = s.targets.length;
    const cancelAt = s.now;
    await s.cancel(scanRef);
    expect((await s.listScans({ scanRefs: [scanRef] }))[0].state).toBe('canceled');
    // the appliance has not heard yet: its hosts are still being probed
    expect(s.peek(scanRef)!.endedAt).toBeUndefined();
    s.advance(cancelAt + 190_000 + 1000);
    const scan = s.peek(scanRef)!;
    expect(scan.endedAt).toBeDefined();
    expect(scan.endedAt!).toBeGreaterThan(cancelAt);
    expect(scan.endedAt! - cancelAt).toBeLessThanOrEqual(190_000 + 1000);
    const stopped = s.targets.slice(before).filter((t) => t.end === scan.endedAt);
    // every host in flight when the appliance stopped is counted, and none of them as a complete scan
    expect(stopped.length).toBeGreaterThan(0);
    expect(stopped.every((t) => t.outcome === 'truncated')).toBe(true);
  });
});

describe('simulated scanner: an outage the platform learns of late', () => {
  it('lists a down appliance online, with the scan it ran as running, until offlineListedAfterMin has passed; then offline, the scan waiting', async () => {
    for (const after of [0, 30]) {
      const sc = servers({ hostListLagMin: 0, offlineListedAfterMin: after, medianMin: 60, sigma: 0 });
      sc.appliances = sc.appliances.map((a) => (a.name === 'A1' ? { ...a, outages: [{ fromH: 1, toH: 3 }] } : a));
      const { s, ips, w } = scannerFor(sc);
      const { scanRef } = await s.launchFor({ intentId: 'i1', title: 't', targets: ips, appliance: 'A1' });
      await untilState(s, scanRef, ['running']);
      const down = w.start + 60 * MIN;
      const listed = async () => {
        const a1 = (await s.appliances()).find((a) => a.name === 'A1')!;
        return { online: a1.online, running: a1.runningScanRefs, state: (await s.listScans({ scanRefs: [scanRef] }))[0].state };
      };
      s.advance(down - MIN);
      expect(await listed()).toEqual({ online: true, running: [scanRef], state: 'running' });
      s.advance(down + MIN);
      // the appliance stopped probing at once (its hosts run again when it is back), whatever the list says
      expect(s.peek(scanRef)!.state).toBe('queued');
      expect(await listed()).toEqual(after ? { online: true, running: [scanRef], state: 'running' } : { online: false, running: [], state: 'queued' });
      s.advance(down + (after + 1) * MIN);
      expect(await listed()).toEqual({ online: false, running: [], state: 'queued' });
      s.advance(w.start + 3 * 60 * MIN + 5 * MIN);
      expect((await listed()).online).toBe(true);
    }
  });
});

describe('simulated scanner: an address that changes hands mid-probe', () => {
  it('a probe that goes on after another host took the address is truncated and marked handed over; one whose host left with nobody after is not', async () => {
    const sc = servers({ hostListLagMin: 0, medianMin: 30, sigma: 0, hostMultSigma: 0, maxPerHostMin: 0 });
    const w = generateWorkload(sc, 1);
    const s = new SimScanner({ scenario: sc, workload: w, seed: 1, regionOf: () => 'R1', scope: ['10.0.0.0/8'], exclude: [] });
    const [handed, left, stays] = [...w.truth.keys()].filter((ip) => s.holder(ip, w.start + MIN) !== undefined).slice(0, 3);
    const at = s.now + 20 * MIN; // the probes (30 min) start within a poll and a setup of the launch
    const cut = (ip: string) => {
      const p = s.holder(ip, at)!;
      const rest = { ...p, start: at };
      p.end = at;
      return rest;
    };
    const other = cut(handed);
    w.truth.get(handed)!.push({ ...other, host: s.holder(stays, at)!.host + 1_000_000 }); // another device takes it at once
    w.truth.get(handed)!.sort((a, b) => a.start - b.start);
    cut(left); // its host leaves; nobody after
    const intended = [handed, left, stays].map((ip) => s.holder(ip, s.now)!.host);
    const { scanRef } = await s.launchFor({ intentId: 'i1', title: 't', targets: [handed, left, stays], appliance: 'A1' }, intended);
    await untilState(s, scanRef, ['finished']);
    const rec = (ip: string) => s.targets.find((t) => t.ip === ip)!;
    expect(rec(handed).start).toBeLessThan(at);
    expect(rec(handed)).toMatchObject({ outcome: 'truncated', handedOver: true });
    expect(rec(left).outcome).toBe('truncated');
    expect(rec(left).handedOver).toBeUndefined();
    expect(rec(stays).outcome).toBe('valid');
    expect(rec(stays).handedOver).toBeUndefined();
  });
});

/** A small fleet: 300 laptops over 9 days (one steady-state week after the first window). */
const smallFleet = (): Scenario => smallFleetOf(9);

describe('simulated scanner: draws keyed by what they describe', () => {
  it('a host or an empty address probed on the same day takes the same time, and a scan launched on the same appliance in the same hour the same setup, error, processing and lag, whatever else was launched first', async () => {
    const sc = servers({ hostListLagMin: 30, hostListLagSigma: 0.8, errorRate: 0.5 });
    const w = generateWorkload(sc, 1);
    const make = () => new SimScanner({ scenario: sc, workload: w, seed: 1, regionOf: (ip) => ip, scope: ['10.0.0.0/8'], exclude: [] });
    const live = [...w.truth.keys()].filter((ip) => w.truth.get(ip)!.length > 0).slice(0, 20);
    // eight scans on A1 in one hour, one server each, the first with an address nobody holds too
    const ours = live.slice(0, 8).map((ip, k) => (k === 0 ? [ip, '10.250.0.1'] : [ip]));
    const course = async (s: SimScanner) => {
      const refs: string[] = [];
      for (const targets of ours) refs.push((await s.launchFor({ intentId: `i${refs.length}`, title: 't', targets, appliance: 'A1' })).scanRef);
      for (const ref of refs) await untilState(s, ref, ['finished', 'error']);
      s.advance(w.start + 20 * 60 * MIN); // every result processed
      return refs.map((ref) => {
        const scan = s.peek(ref)!;
        const mine = s.targets.filter((t) => t.scan === scan.id);
        // what the scan drew, as it happened: its setup, its processing after its last host, its error, the host list's lag
        const lastHost = Math.max(...mine.map((t) => t.end));
        return {
          setup: scan.readyAt - scan.launchedAt, processing: scan.endedAt! - lastHost, state: scan.state,
          lag: scan.processedAt === undefined ? undefined : scan.processedAt - scan.endedAt!, times: mine.map((t) => [t.ip, t.end - t.start]),
        };
      });
    };
    const seen = await course(make());
    // the other course: another tool's scan on the same appliance in the same hour, and a scan of other hosts elsewhere, first
    const after = make();
    after.launchOther('A1', 3, 'other tool');
    await after.launchFor({ intentId: 'o', title: 'o', targets: live.slice(10), appliance: 'A2' });
    expect(await course(after)).toEqual(seen);
    // the draws are not all alike: nine targets, nine times; errors and not
    expect(new Set(seen.flatMap((x) => x.times.map(([, ms]) => ms))).size).toBe(9);
    expect(new Set(seen.map((x) => x.state))).toEqual(new Set(['finished', 'error']));
    expect(seen.some((x) => x.lag !== undefined && x.lag > 0)).toBe(true);
    // and the next day the same hosts draw anew
    const later = make();
    later.advance(w.start + 26 * 60 * MIN);
    const { scanRef } = await later.launchFor({ intentId: 'd2', title: 't', targets: ours[0], appliance: 'A1' });
    await untilState(later, scanRef, ['finished', 'error']);
    const dayBefore = new Map(seen[0].times as [string, number][]);
    expect(later.targets.length).toBe(2);
    for (const t of later.targets) expect(t.end - t.start, t.ip).not.toBe(dayBefore.get(t.ip));
  });

  it('keyed draws of different seeds, streams or keys are unrelated: no value of one seed recurs under another, and they are uniform', () => {
    const first = (seed: number, stream: number) => Array.from({ length: 2000 }, (_, host) => Rng.keyed(seed, stream, host, 3, 0).next());
    const one = first(1, 21);
    // (a seed that only xor-ed into the first key gave seed 2's host 6 seed 1's host 5)
    for (const other of [first(2, 21), first(3, 21), first(1, 22)]) expect(one.filter((x) => other.includes(x))).toEqual([]);
    expect(new Set(one).size).toBe(one.length);
    // deciles: each holds 200 ± 3.5 σ of the 2,000
    const counts = Array.from({ length: 10 }, (_, d) => one.filter((x) => Math.floor(x * 10) === d).length);
    for (const c of counts) expect(Math.abs(c - 200)).toBeLessThan(3.5 * Math.sqrt(2000 * 0.1 * 0.9));
  });
});

describe('simulator metrics', () => {
  it('the relaxation bound is at or above every policy, and the headline coverage tells policies apart', async () => {
    const sc = smallFleet();
    const w = generateWorkload(sc, 2);
    const bound = await runOnce(sc, 'bound', 2, { workload: w });
    expect(bound.compliancePairs).toBeGreaterThan(0);
    const runs = [];
    for (const p of ['onsight', 'immediate', 'twice-daily', 'twice-daily-scheduled', 'batch-15min', 'batch-15min-verified', 'oracle']) {
      const m = await runOnce(sc, p, 2, { workload: w });
      expect(m.compliance, p).toBeLessThanOrEqual(bound.compliance);
      expect(m.complianceStrict, p).toBeLessThanOrEqual(m.compliance + 1e-12);
      runs.push(m);
    }
    const byName = Object.fromEntries(runs.map((m) => [m.policy, m]));
    // single-target scans behind one region lock reach few: far below the others
    expect(byName.immediate.compliance).toBeLessThan(byName['batch-15min'].compliance - 0.2);
    // a Qualys scheduled scan costs no call; the API-launched one polls every 30 min
    expect(byName['twice-daily-scheduled'].apiCalls).toBe(0);
    expect(byName['twice-daily'].apiCallsPerDay).toBeGreaterThan(2);
    expect(byName['twice-daily'].apiCallsPerDay).toBeLessThan(200);
    // the verified variant reads the host list and credits only what it confirms
    expect(byName['batch-15min-verified'].apiByKind['host list']).toBeGreaterThan(0);
    expect(byName['batch-15min'].apiByKind['host list'] ?? 0).toBe(0);
  }, 240_000);
});

describe('simulated scanner: schedule changes refused or their answers lost', () => {
  const P = 'onsight-range ';
  const open: { close(): Promise<void> | void }[] = [];
  afterEach(async () => { for (const o of open.splice(0)) await o.close(); });
  const want = (ap: string, n: string, t: string): RangeSchedule => ({ title: `${P}${n}`, targets: ['10.1.0.0/29'], appliance: ap, timeUtc: t });
  const said = (err: ScheduleSyncIncomplete, platform: string[]) => ({
    done: err.done.map((d) => `${d.action} ${d.title}`), unsure: err.unsure, calls: err.changeCalls, platform: [...platform].sort(),
  });

  it('a sync whose every create answer is lost says what the Qualys client says against its emulator: the kept one, both creates unsure, both made', async () => {
    // the Qualys client against the emulator: B kept, A and C created, each answer dropped after processing
    const e = await startQualysEmulator({ appliances: [{ name: 'sa-1', capacity: 4 }] });
    open.push(e);
    const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 } });
    open.push(c);
    await c.syncSchedules([want('sa-1', 'b 0200', '02:00')], P);
    Object.assign(e.state.config.faults, { dropAfterShare: 1, apis: ['schedule'], actions: ['create'] });
    const real = await c.syncSchedules([want('sa-1', 'a 0100', '01:00'), want('sa-1', 'b 0200', '02:00'), want('sa-1', 'c 0300', '03:00')], P).catch((x: unknown) => x) as ScheduleSyncIncomplete;
    expect(real).toBeInstanceOf(ScheduleSyncIncomplete);
    // the simulated scanner, every answer lost
    const sc = servers({});
    const { s } = scannerFor(sc);
    const ap = sc.appliances[0].name;
    await s.syncSchedules([want(ap, 'b 0200', '02:00')], P);
    sc.api.scheduleLostShare = 1;
    const simulated = await s.syncSchedules([want(ap, 'a 0100', '01:00'), want(ap, 'b 0200', '02:00'), want(ap, 'c 0300', '03:00')], P).catch((x: unknown) => x) as ScheduleSyncIncomplete;
    expect(simulated).toBeInstanceOf(ScheduleSyncIncomplete);
    const expected = { done: [`kept ${P}b 0200`], unsure: [`${P}a 0100`, `${P}c 0300`], calls: 2, platform: [`${P}a 0100`, `${P}b 0200`, `${P}c 0300`] };
    expect(said(real, e.state.model.schedules.map((x) => x.title))).toEqual(expected);
    expect(said(simulated, s.schedules.map((x) => x.title))).toEqual(expected);
    expect(s.scheduleFaults).toEqual({ lost: 2, refused: 0 });
  });

  it('a refused change is spent, not made and not unsure, and the others go on; without the shares nothing is drawn', async () => {
    const sc = servers({});
    const { s } = scannerFor(sc);
    const ap = sc.appliances[0].name;
    sc.api.scheduleRefusedShare = 1;
    const err = await s.syncSchedules([want(ap, 'a 0100', '01:00'), want(ap, 'c 0300', '03:00')], P).catch((x: unknown) => x) as ScheduleSyncIncomplete;
    expect(err).toBeInstanceOf(ScheduleSyncIncomplete);
    expect({ done: err.done, unsure: err.unsure, calls: err.changeCalls, platform: s.schedules.length }).toEqual({ done: [], unsure: [], calls: 2, platform: 0 });
    expect(s.scheduleFaults).toEqual({ lost: 0, refused: 2 });
    sc.api.scheduleRefusedShare = 0;
    const ok = await s.syncSchedules([want(ap, 'a 0100', '01:00'), want(ap, 'c 0300', '03:00')], P);
    expect(ok.map((x) => x.action)).toEqual(['created', 'created']);
  });
});
