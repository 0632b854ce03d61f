/**
 * A reload excludes an address of a range run's targets, but the platform's schedule cannot be
 * mended: its run, started by the platform with the old targets, is looked for every poll interval
 * from its time and canceled as soon as a list shows it; and a sync refused as a whole (the
 * schedules together name more addresses than the Qualys client checks in one sync) no longer
 * leaves every schedule stale: each one naming what the policy refuses is mended alone, or deleted
 * when it cannot be. The real scheduler over a real SQLite file, the real Qualys client against the
 * Qualys emulator on loopback (its scan clock the test's clock, or behind it: a platform that
 * starts the run late).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type EmulatorOptions, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { Policy } from '../src/policy/policy.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { MAX_CHECKED_ADDRESSES } from '../src/scanners/qualys/schedules.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { rangeMatcher } from '../src/util/ip-ranges.js';

const MIN = 60_000;
const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
const EMEA = { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1 };
const AMER = { name: 'amer', cidrs: ['10.64.0.0/12'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2 };
const REGIONS = [EMEA, AMER];

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

type Clock = { t: number; now(): number };

async function platform(clock: Clock, o: EmulatorOptions = {}, lagMs = 0): Promise<QualysEmulator> {
  const emu = await startQualysEmulator({
    now: () => clock.t - lagMs,
    appliances: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }],
    scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 },
    ...o,
  });
  open.push(emu);
  return emu;
}

function setupOnsight(clock: Clock, emu: QualysEmulator, targets: Record<string, string[]>, log = pino({ level: 'silent' })) {
  let policy = new Policy({ scope: ['10.0.0.0/8'], exclude: ['10.20.9.0/24'], rescanAfter: 30 * 86400, rules: [], regions: REGIONS, timezone: 'UTC' });
  const client = new QualysClient({
    baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
    // (the daemon's client asks the policy in force: a reload's)
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => policy.allowed(ip), now: () => clock.t,
  }, { log });
  open.push(client);
  const store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'onsight-rv-')), 'state.db'), { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 });
  open.push(store);
  const options = (t: Record<string, string[]>) => buildSchedulerOptions({
    regions: REGIONS, maxTargetsPerScan: 10, scanner: client,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: t, aim: 'ranges' } },
  });
  const sched = new Scheduler(clock, store.inventory, policy, store.scheduler, client, options(targets), log);
  /** SIGHUP: 10.20.1.200 newly excluded, the range targets as given */
  const reload = (t: Record<string, string[]>) => {
    policy = new Policy({ scope: ['10.0.0.0/8'], exclude: ['10.20.9.0/24', '10.20.1.200'], rescanAfter: 30 * 86400, rules: [], regions: REGIONS, timezone: 'UTC' });
    sched.reconfigure(policy, options(t));
  };
  return { sched, reload };
}

function logSink() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level: 'info' }, sink) };
}

const TARGETS = { emea: ['10.20.1.0/24'], amer: [] as string[] };

describe('a range run whose schedule a refused sync left naming a newly excluded address', () => {
  for (const scarce of [false, true]) {
    it(`the platform starts it 2 min late${scarce ? ', 300 calls a day' : ''}: canceled within 2 min of its start (before: 13 min${scarce ? '; 28 min scarce' : ''})`, async () => {
      const clock: Clock = { t: at('10:00'), now() { return this.t; } };
      const emu = await platform(clock, scarce ? { limits: { default: { limit: 300, windowSec: 86_400, concurrency: 2 } } } : {}, 2 * MIN);
      const { sched, reload } = setupOnsight(clock, emu, TARGETS);
      await sched.tick();
      clock.t = at('10:20');
      await sched.tick();
      // the schedule API's calls lost from now on (the socket drops): the exclusion never reaches the schedule
      Object.assign(emu.state.config.faults, { dropShare: 1, apis: ['schedule'] });
      reload(TARGETS);
      let canceledAt: number | undefined;
      const run = () => emu.state.model.scans.find((s) => s.title === 'onsight-range emea 1030' && s.type === 'Scheduled');
      for (clock.t = at('10:21'); clock.t <= at('12:30'); clock.t += MIN) {
        await sched.tick();
        if (canceledAt === undefined && run()?.state === 'Canceled') canceledAt = clock.t;
      }
      const schedule = emu.state.model.schedules.find((s) => s.title === 'onsight-range emea 1030')!;
      expect(rangeMatcher(schedule.targets)('10.20.1.200')).toBe(true); // (stale, as the premise says)
      expect(run()).toBeDefined();
      const startedAt = at('10:32');
      expect(canceledAt).toBeDefined();
      expect(canceledAt! - startedAt).toBeLessThanOrEqual(2 * MIN);
      expect(sched.rangeScans().refusedCanceled).toBe(1);
      // looked for every minute from 10:30 until it was listed, not on after it was canceled
      const lists = emu.state.requests.filter((r) => r.api === 'scan' && r.action === 'list' && r.at >= startedAt + 5 * MIN);
      expect(lists.length).toBeLessThan(10);
    });
  }
});

describe('a sync refused as a whole', () => {
  it(`the schedules together name over ${MAX_CHECKED_ADDRESSES} addresses: the one naming the newly excluded address is mended alone before its time (before: left naming it)`, async () => {
    const clock: Clock = { t: at('10:00'), now() { return this.t; } };
    const emu = await platform(clock);
    const { lines, log } = logSink();
    const { sched, reload } = setupOnsight(clock, emu, { emea: ['10.20.1.0/24'], amer: ['10.64.0.0/24'] }, log);
    await sched.tick();
    expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range emea 1030', 'onsight-range amer 1030']);
    clock.t = at('10:05');
    // amer widened to a /12 (2^20 addresses) in the same reload: with emea's, more than one sync checks
    reload({ emea: ['10.20.1.0/24'], amer: ['10.64.0.0/12'] });
    for (; clock.t <= at('10:15'); clock.t += MIN) await sched.tick();
    const [emea, amer] = emu.state.model.schedules;
    expect(rangeMatcher(emea.targets)('10.20.1.200')).toBe(false);
    expect(rangeMatcher(emea.targets)('10.20.1.201')).toBe(true);
    expect(emea.active).toBe(true);
    expect(amer.targets).toEqual(['10.64.0.0-10.64.0.255']); // (not refused: left as it was until a whole sync goes)
    expect(sched.rangeScans().problem).toMatch(/^sync: schedules name more than 1048576 addresses/);
    expect(lines.some((l) => l.level === 40 && l.msg.startsWith('range schedule onsight-range emea 1030 named addresses the policy refuses and the sync of all schedules failed: mended on its own'))).toBe(true);
    // mended once, not at every failed sync after
    const alone = emu.state.requests.filter((r) => r.api === 'schedule' && r.action === 'update');
    expect(alone).toHaveLength(1);
  });

  it('the mended schedule alone is refused too (emea itself widened past the limit): it is deleted, so no run of it probes the excluded address, and said', async () => {
    const clock: Clock = { t: at('10:00'), now() { return this.t; } };
    const emu = await platform(clock);
    const { lines, log } = logSink();
    const { sched, reload } = setupOnsight(clock, emu, { emea: ['10.20.1.0/24'], amer: ['10.64.0.0/24'] }, log);
    await sched.tick();
    clock.t = at('10:05');
    reload({ emea: ['10.20.1.0/24', '10.0.0.0/11'], amer: ['10.64.0.0/24'] });
    for (; clock.t <= at('10:15'); clock.t += MIN) await sched.tick();
    expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range amer 1030']);
    expect(lines.some((l) => l.level === 40 && l.msg.startsWith('range schedule onsight-range emea 1030 named addresses the policy refuses and could not be mended (schedules name more than 1048576 addresses'))).toBe(true);
    clock.t = at('10:31');
    emu.state.model.advance();
    expect(emu.state.model.scans.filter((s) => s.title === 'onsight-range emea 1030')).toEqual([]);
  });
});
