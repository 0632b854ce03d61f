/**
 * A platform range run going when onsight restarts with a config that drops its region (and may
 * exclude its addresses): the run is taken on at start and canceled, as a reload would; another
 * deployment's run on the same subscription (its own title prefix) is left alone. The real
 * scheduler over a real SQLite file, the real Qualys client against the Qualys emulator on loopback
 * (its scan clock the test's clock: the emulator launches the schedule's run itself at 10:30).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { Policy } from '../src/policy/policy.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/types.js';

const MIN = 60_000;
const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
const EMEA = { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1 };
const AMER = { name: 'amer', cidrs: ['10.30.0.0/16'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2 };

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function logSink() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level: 'info' }, sink) };
}

/** onsight as started with this config: a new client and scheduler over the state file. */
function onsight(clock: { t: number; now(): number }, emu: QualysEmulator, store: Store, c: { regions: typeof EMEA[]; exclude: string[]; targets: Record<string, string[]> }, log = pino({ level: 'silent' })) {
  const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: c.exclude, rescanAfter: 30 * 86400, rules: [], regions: c.regions, timezone: 'UTC' });
  const client = new QualysClient({
    baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => policy.allowed(ip), now: () => clock.t,
  }, { log });
  open.push(client);
  const opts = buildSchedulerOptions({
    regions: c.regions, maxTargetsPerScan: 10, scanner: client,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: c.targets, aim: 'ranges' } },
  });
  return new Scheduler(clock, store.inventory, policy, store.scheduler, client, opts, log);
}

/** emea's 10:30 run going (and another deployment's, prefix "other"), onsight stopped at 10:35. */
async function runGoingAtStop() {
  const clock = { t: at('10:00'), now() { return this.t; } };
  const emu = await startQualysEmulator({
    now: () => clock.t,
    appliances: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }],
    scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 },
    schedules: [{ title: 'other-range emea 1030', targets: ['10.20.1.0/24'], appliance: 'emea-2', startHour: 10, startMinute: 30 }],
  });
  open.push(emu);
  const file = join(mkdtempSync(join(tmpdir(), 'onsight-rv-')), 'state.db');
  const opts = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 };
  let store = openSqliteStore(file, opts);
  const first = onsight(clock, emu, store, { regions: [EMEA, AMER], exclude: ['10.20.9.0/24'], targets: { emea: ['10.20.1.0/24'], amer: [] } });
  await first.tick();
  expect(emu.state.model.schedules.map((s) => s.title).sort()).toEqual(['onsight-range emea 1030', 'other-range emea 1030']);
  clock.t = at('10:35');
  emu.state.model.advance(); // (the platform's time passes whether or not a call comes: it launched both runs at 10:30)
  await first.tick();
  const run = (title: string) => emu.state.model.scans.find((s) => s.title === title && s.type === 'Scheduled')!;
  expect(run('onsight-range emea 1030').state).toBe('Running');
  expect(run('other-range emea 1030').state).toBe('Running');
  await first.saveLearned();
  await store.close();
  store = openSqliteStore(file, opts);
  open.push(store);
  return { clock, emu, store, run };
}

describe('a restart while a range run goes', () => {
  for (const [what, exclude] of [['drops its region and excludes its addresses', ['10.20.0.0/16']], ['drops its region (its addresses still in scope)', []]] as const) {
    it(`the new config ${what}: the run is canceled at the first pass, counted and said; the other deployment's run and schedule are left alone (before: it went on for hours)`, async () => {
      const { clock, emu, store, run } = await runGoingAtStop();
      const { lines, log } = logSink();
      clock.t = at('10:40');
      const sched = onsight(clock, emu, store, { regions: [AMER], exclude: [...exclude], targets: {} }, log);
      await sched.tick();
      expect(run('onsight-range emea 1030').state).toBe('Canceled');
      expect(sched.rangeScans().refusedCanceled).toBe(1);
      expect(lines.some((l) => l.level === 40 && /range run onsight-range emea 1030 \(.+\) goes in region emea, which the config no longer has: canceled/.test(l.msg))).toBe(true);
      // its schedule deleted; another deployment's (prefix "other") never touched, its run going on
      expect(emu.state.model.schedules.map((s) => s.title).sort()).toEqual(['onsight-range amer 1030', 'other-range emea 1030']);
      expect(run('other-range emea 1030').state).toBe('Running');
      const cancels = emu.state.requests.filter((r) => r.action === 'cancel');
      expect(cancels.map((r) => r.params.scan_ref)).toEqual([run('onsight-range emea 1030').ref]);
      for (clock.t += MIN; clock.t <= at('11:00'); clock.t += MIN) await sched.tick();
      expect(emu.state.requests.filter((r) => r.action === 'cancel')).toHaveLength(1);
    });
  }

  it('the new config keeps its region but excludes its addresses: canceled at the first pass (as before)', async () => {
    const { clock, emu, store, run } = await runGoingAtStop();
    clock.t = at('10:40');
    const sched = onsight(clock, emu, store, { regions: [EMEA, AMER], exclude: ['10.20.0.0/16'], targets: { emea: ['10.20.1.0/24'] } });
    await sched.tick();
    expect(run('onsight-range emea 1030').state).toBe('Canceled');
    expect(run('other-range emea 1030').state).toBe('Running');
  });

  it('the new config changes nothing of it: the run is taken on, holds its region and is not canceled', async () => {
    const { clock, emu, store, run } = await runGoingAtStop();
    clock.t = at('10:40');
    const sched = onsight(clock, emu, store, { regions: [EMEA, AMER], exclude: ['10.20.9.0/24'], targets: { emea: ['10.20.1.0/24'], amer: [] } });
    for (; clock.t <= at('11:00'); clock.t += MIN) await sched.tick();
    expect(run('onsight-range emea 1030').state).toBe('Running');
    expect(emu.state.requests.filter((r) => r.action === 'cancel')).toHaveLength(0);
    expect(sched.rangeScans()).toMatchObject({ refusedCanceled: 0 });
  });
});
