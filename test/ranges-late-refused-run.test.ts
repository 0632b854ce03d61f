/**
 * A reload excludes an address of a range schedule's targets while the schedule API drops every
 * call (the schedule keeps its old targets), and the platform starts the run late. Past the
 * platform's start delay (15 min) the run, not listed yet, is still looked for every quarter of its
 * age (at most the runs' look pace, not as a priority call), so one started 20 or 31 min late is
 * canceled within a quarter of its lateness (before: the looks went to the 15-min pace at 15 min,
 * 30 while calls are scarce: 10 to 25 min over the excluded address). A run that never comes is not
 * looked for every poll meanwhile. The real scheduler over a real SQLite file, the real Qualys
 * client against the Qualys emulator on loopback (its scan clock the test's clock).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator } from '../src/emulator/qualys/index.js';
import { Policy } from '../src/policy/policy.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';

const MIN = 60_000;
const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
const REGIONS = [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'a1', maxScans: 2 }], maxConcurrentScans: 1 }];

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** The 10:30 run started `lateMin` late by the platform, the exclusion reloaded at 10:10; followed to `until`. */
async function startedLate(lateMin: number, scarce: boolean, until = at('12:30')) {
  const clock = { t: at('10:00'), now() { return this.t; } };
  const emu = await startQualysEmulator({
    now: () => clock.t, appliances: [{ name: 'a1' }], ...(scarce ? { limits: { default: { limit: 300, windowSec: 86_400, concurrency: 2 } } } : {}),
    scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 },
  });
  open.push(emu);
  const store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'onsight-late-')), 'state.db'), { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 });
  open.push(store);
  let policy = new Policy({ scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], regions: REGIONS, timezone: 'UTC' });
  const client = new QualysClient({
    baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => policy.allowed(ip), now: () => clock.t,
  }, { log: pino({ level: 'silent' }) });
  open.push(client);
  const opts = () => buildSchedulerOptions({
    regions: REGIONS, maxTargetsPerScan: 10, scanner: client,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: { emea: ['10.20.1.0/24'] }, aim: 'ranges' } },
  });
  const sched = new Scheduler(clock, store.inventory, policy, store.scheduler, client, opts(), pino({ level: 'silent' }));
  await sched.tick();
  clock.t = at('10:10');
  await sched.tick();
  Object.assign(emu.state.config.faults, { dropShare: 1, apis: ['schedule'] });
  policy = new Policy({ scope: ['10.0.0.0/8'], exclude: ['10.20.1.200'], rescanAfter: 30 * 86400, rules: [], regions: REGIONS, timezone: 'UTC' });
  sched.reconfigure(policy, opts());
  // the platform starts it late
  (emu.state.model.schedules[0] as unknown as { nextLaunch: number }).nextLaunch = at('10:30') + lateMin * MIN;
  const lists: number[] = [];
  for (clock.t = at('10:11'); clock.t <= until; clock.t += MIN) {
    const before = emu.state.requests.length;
    await sched.tick();
    if (emu.state.requests.slice(before).some((r) => r.api === 'scan' && r.action === 'list')) lists.push(clock.t);
    emu.state.model.advance();
  }
  const run = emu.state.model.scans.find((x) => x.title === 'onsight-range emea 1030');
  return { run, lists, sched };
}

describe('a refused schedule whose run the platform starts more than 15 min late', () => {
  for (const [late, scarce] of [[20, false], [20, true], [31, false]] as const) {
    it(`${late} min late${scarce ? ', calls scarce' : ''}: canceled within a quarter of its lateness (before: ${late === 20 ? (scarce ? 25 : 10) : 14} min)`, async () => {
      const { run, sched } = await startedLate(late, scarce);
      expect(run!.launchedAt).toBe(at('10:30') + late * MIN);
      expect(run!.jobs.some((j) => j.ip === '10.20.1.200')).toBe(true);
      expect(run!.state).toBe('Canceled');
      expect(run!.endedAt! - run!.launchedAt).toBeLessThanOrEqual(late * MIN / 4 + MIN);
      expect(sched.rangeScans().refusedCanceled).toBe(1);
    }, 120_000);
  }

  it('a run that never comes (the platform has not started it by 12:30): looked for a quarter of its age apart, then at the 15-min pace, not every poll', async () => {
    const { run, lists } = await startedLate(180, false);
    expect(run).toBeUndefined();
    // every poll until 10:45 (the start delay), then spaced out
    const after = lists.filter((t) => t > at('10:45'));
    for (let k = 1; k < after.length; k++) expect(after[k] - after[k - 1]).toBeGreaterThanOrEqual(Math.min(15 * MIN, (after[k - 1] - at('10:30')) / 4) - MIN);
    expect(after.length).toBeLessThanOrEqual(12);
    expect(after.length).toBeGreaterThanOrEqual(6);
  }, 120_000);
});
