/**
 * The range schedules' title prefix is cluster.name: a restart under another one (cluster mode
 * turned on, or the cluster renamed) must not leave the old prefix's schedules running daily with
 * targets no exclusion reaches any more. The prefix synced is kept in the learned state; the old
 * prefix's schedules are deleted first, and nobody else's (another deployment's prefix, a human's
 * schedule) is ever named in a call. A scanner that keeps no schedules (scanner.type changed) says
 * which ones it leaves on the earlier platform. The real scheduler over a real SQLite file, the real
 * Qualys client against the Qualys emulator on loopback (and the Tenable client against its emulator).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { startTenableEmulator } from '../src/emulator/tenable/index.js';
import { Policy } from '../src/policy/policy.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { TenableClient } from '../src/scanners/tenable/index.js';
import type { Scanner } from '../src/scanners/types.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import Database from '../src/store/sqlite.js';
import type { Store } from '../src/store/types.js';
import { rangeMatcher } from '../src/util/ip-ranges.js';

const MIN = 60_000;
const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
const REGIONS = [
  { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1 },
  { name: 'amer', cidrs: ['10.30.0.0/16'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2 },
];
const TARGETS = { emea: ['10.20.1.0/24'], amer: [] as string[] };
const STORE_OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 };

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function logSink() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level: 'info' }, sink) };
}

type Clock = { t: number; now(): number };

function qualys(clock: Clock, emu: QualysEmulator, policy: Policy, log = pino({ level: 'silent' })): QualysClient {
  const client = new QualysClient({
    baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => policy.allowed(ip), now: () => clock.t,
  }, { log });
  open.push(client);
  return client;
}

/** onsight started with this exclusion list and title prefix (cluster.name; undefined: the default "onsight"). */
function onsight(clock: Clock, store: Store, scanner: (p: Policy) => Scanner, c: { exclude: string[]; titlePrefix?: string }, log = pino({ level: 'silent' })) {
  const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: c.exclude, rescanAfter: 30 * 86400, rules: [], regions: REGIONS, timezone: 'UTC' });
  const s = scanner(policy);
  const opts = buildSchedulerOptions({
    regions: REGIONS, maxTargetsPerScan: 10, scanner: s, titlePrefix: c.titlePrefix,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: TARGETS, aim: 'ranges' } },
  });
  return new Scheduler(clock, store.inventory, policy, store.scheduler, s, opts, log);
}

/** onsight (prefix "onsight") made its schedule at 10:00 and stopped; beside it, another deployment's (prefix "other") and a human's. */
async function madeAndStopped(emulator: { faults?: object } = {}) {
  const clock: Clock = { t: at('10:00'), now() { return this.t; } };
  const emu = await startQualysEmulator({
    now: () => clock.t,
    appliances: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }],
    scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 },
    schedules: [
      { title: 'other-range emea 1030', targets: ['10.20.1.0/24'], appliance: 'emea-2', startHour: 10, startMinute: 30 },
      { title: 'weekly servers', targets: ['10.20.1.0/24'], appliance: 'emea-1', startHour: 22 },
    ],
    ...emulator,
  });
  open.push(emu);
  const file = join(mkdtempSync(join(tmpdir(), 'onsight-rv-')), 'state.db');
  const store = openSqliteStore(file, STORE_OPTS);
  const first = onsight(clock, store, (p) => qualys(clock, emu, p), { exclude: ['10.20.9.0/24'] });
  await first.tick();
  await first.saveLearned();
  await store.close();
  const titles = () => emu.state.model.schedules.map((s) => s.title).sort();
  expect(titles()).toEqual(['onsight-range emea 1030', 'other-range emea 1030', 'weekly servers']);
  const others = JSON.stringify(emu.state.model.schedules.filter((s) => !s.title.startsWith('onsight-')));
  const reopen = () => {
    const s = openSqliteStore(file, STORE_OPTS);
    open.push(s);
    return s;
  };
  return { clock, emu, file, reopen, titles, others };
}

/** The schedule calls made, in order, as `method action title-or-id`. */
function scheduleCalls(emu: QualysEmulator, from: number): string[] {
  return emu.state.requests.slice(from).filter((r) => r.api === 'schedule' && r.action !== 'list').map((r) => `${r.action} ${r.params.scan_title ?? r.params.id}`);
}

describe('a restart under another title prefix', () => {
  it('as cluster "prod", 10.20.1.200 newly excluded: the old "onsight-range" schedule is deleted first, said, and "prod-range" made without the address; another deployment\'s and a human\'s never named (before: the old one kept scanning it daily)', async () => {
    const { clock, emu, reopen, titles, others } = await madeAndStopped();
    const oldId = String(emu.state.model.schedules.find((s) => s.title === 'onsight-range emea 1030')!.id);
    const { lines, log } = logSink();
    const from = emu.state.requests.length;
    const store = reopen();
    const sched = onsight(clock, store, (p) => qualys(clock, emu, p), { exclude: ['10.20.9.0/24', '10.20.1.200'], titlePrefix: 'prod' }, log);
    for (let k = 0; k < 5; k++, clock.t += MIN) await sched.tick();
    expect(titles()).toEqual(['other-range emea 1030', 'prod-range emea 1030', 'weekly servers']);
    expect(scheduleCalls(emu, from)).toEqual([`delete ${oldId}`, 'create prod-range emea 1030']);
    const made = emu.state.model.schedules.find((s) => s.title === 'prod-range emea 1030')!;
    expect(rangeMatcher(made.targets)('10.20.1.200')).toBe(false);
    expect(rangeMatcher(made.targets)('10.20.1.199')).toBe(true);
    expect(JSON.stringify(emu.state.model.schedules.filter((s) => !s.title.startsWith('prod-')))).toBe(others);
    // nothing sent named another's schedule
    const ids = emu.state.model.schedules.filter((s) => !s.title.startsWith('prod-')).map((s) => String(s.id));
    expect(emu.state.requests.slice(from).filter((r) => r.api === 'schedule' && ids.includes(r.params.id))).toEqual([]);
    expect(lines.some((l) => l.level === 40 && l.msg.includes('range schedules made under the earlier title prefix "onsight" deleted (onsight-range emea 1030)'))).toBe(true);
    // the prefix remembered is the new one alone: a further restart deletes nothing
    await sched.saveLearned();
    const again = onsight(clock, store, (p) => qualys(clock, emu, p), { exclude: ['10.20.9.0/24', '10.20.1.200'], titlePrefix: 'prod' });
    const before = emu.state.requests.length;
    await again.tick();
    expect(scheduleCalls(emu, before)).toEqual([]);
  });

  it('the delete refused for a while: nothing is made under the new prefix until the old schedule is gone, the status says why; then deleted and made', async () => {
    const { clock, emu, reopen, titles } = await madeAndStopped();
    emu.state.config.faults.serverErrorShare = 1;
    emu.state.config.faults.apis = ['schedule'];
    emu.state.config.faults.actions = ['delete'];
    const from = emu.state.requests.length;
    const sched = onsight(clock, reopen(), (p) => qualys(clock, emu, p), { exclude: ['10.20.9.0/24', '10.20.1.200'], titlePrefix: 'prod' });
    for (let k = 0; k < 10; k++, clock.t += MIN) await sched.tick();
    expect(titles()).toEqual(['onsight-range emea 1030', 'other-range emea 1030', 'weekly servers']);
    expect(scheduleCalls(emu, from).filter((c) => c.startsWith('create'))).toEqual([]);
    expect(sched.rangeScans().problem).toMatch(/the range schedules of the earlier title prefix "onsight" \(onsight-range emea 1030\) are not deleted yet .*region\(s\) emea get no range run under "prod" until they are/);
    emu.state.config.faults.serverErrorShare = 0;
    for (let k = 0; k < 20; k++, clock.t += MIN) await sched.tick();
    expect(titles()).toEqual(['other-range emea 1030', 'prod-range emea 1030', 'weekly servers']);
    expect(sched.rangeScans().problem).toBeUndefined();
  });

  it('a state saved by a version that kept no prefix: the prefix is read from the schedules it kept, and the old one still deleted', async () => {
    const { clock, emu, file, reopen, titles } = await madeAndStopped();
    const db = new Database(file);
    const row = db.prepare("SELECT state FROM learned_state WHERE name = 'range-schedules'").get() as { state: string };
    const state = JSON.parse(row.state) as Record<string, unknown>;
    delete state.prefixes; // (this version writes ['onsight'])
    db.prepare("UPDATE learned_state SET state = ? WHERE name = 'range-schedules'").run(JSON.stringify(state));
    db.close();
    const sched = onsight(clock, reopen(), (p) => qualys(clock, emu, p), { exclude: ['10.20.9.0/24'], titlePrefix: 'prod' });
    for (let k = 0; k < 3; k++, clock.t += MIN) await sched.tick();
    expect(titles()).toEqual(['other-range emea 1030', 'prod-range emea 1030', 'weekly servers']);
  });

  it('the old prefix\'s run going at the restart, its addresses newly excluded: taken on and canceled; another deployment\'s run left alone', async () => {
    const { clock, emu, reopen } = await madeAndStopped();
    clock.t = at('10:40');
    emu.state.model.advance(); // (the platform launched both runs at 10:30)
    const run = (title: string) => emu.state.model.scans.find((s) => s.title === title && s.type === 'Scheduled')!;
    expect(run('onsight-range emea 1030').state).toBe('Running');
    const sched = onsight(clock, reopen(), (p) => qualys(clock, emu, p), { exclude: ['10.20.9.0/24', '10.20.1.200'], titlePrefix: 'prod' });
    await sched.tick();
    expect(run('onsight-range emea 1030').state).toBe('Canceled');
    expect(run('other-range emea 1030').state).toBe('Running');
  });

  it('scanner.type changed to tenable: the Qualys schedules it can no longer reach are named in a warning and on the status', async () => {
    const { clock, reopen } = await madeAndStopped();
    const tenable = await startTenableEmulator({ scanners: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }] });
    open.push(tenable);
    const { lines, log } = logSink();
    const sched = onsight(clock, reopen(), (p) => {
      const c = new TenableClient({ baseUrl: tenable.url, apiKeys: tenable.apiKeys, template: 'basic', reconcileDelayMs: 0, maxAttempts: 2, baseDelayMs: 5, appliances: ['emea-1', 'emea-2', 'amer-1'], allowTarget: (ip) => p.allowed(ip) });
      open.push(c);
      return c;
    }, { exclude: ['10.20.9.0/24'] }, log);
    await sched.tick();
    const said = lines.filter((l) => l.level === 40 && l.msg.startsWith('range schedules onsight-range emea 1030 were made on the qualys scanner\'s platform and run there daily'));
    expect(said).toHaveLength(1);
    expect(sched.rangeScans().problem).toMatch(/^range schedules onsight-range emea 1030 were made on the qualys scanner's platform .*the tenable scanner cannot reach them/);
  });
});
