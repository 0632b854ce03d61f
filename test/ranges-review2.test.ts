/**
 * Range runs, second review of the scope fixes: an earlier title prefix remembered past the learned
 * state's age limit; a delete the platform always refuses holds back only its own region, and stops
 * being a priority; a refused run that never comes is not looked for every poll for hours; a
 * schedule mended alone touches only its own title, and is not deleted for a 5xx; schedules left on
 * a scanner switched away from are said at every start.
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
import type { Store } from '../src/store/types.js';

const MIN = 60_000;
const DAY = 86_400_000;
const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
type R = { name: string; cidrs: string[]; appliances: { name: string; maxScans: number }[]; maxConcurrentScans: number };
const reg = (name: string, cidr: string, ap: string): R => ({ name, cidrs: [cidr], appliances: [{ name: ap, maxScans: 2 }], maxConcurrentScans: 1 });
const STORE_OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 };
const open: { close(): Promise<void> }[] = [];
afterEach(async () => { while (open.length) await open.pop()!.close(); });
type Clock = { t: number; now(): number };
const newClock = (t: number): Clock => ({ t, now() { return this.t; } });
const dbFile = () => join(mkdtempSync(join(tmpdir(), 'onsight-rv2-')), 'state.db');

function logSink() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level: 'info' }, sink) };
}

interface Setup { regions: R[]; exclude: string[]; targets: Record<string, string[]>; titlePrefix?: string }

function onsight(clock: Clock, store: Store, emu: QualysEmulator, c: Setup, log = pino({ level: 'silent' })) {
  let policy = new Policy({ scope: ['10.0.0.0/8'], exclude: c.exclude, rescanAfter: 30 * 86400, rules: [], regions: c.regions, timezone: 'UTC' });
  const s = new QualysClient({
    baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => policy.allowed(ip), now: () => clock.t,
  }, { log });
  open.push(s);
  const options = (regions: R[], targets: Record<string, string[]>) => buildSchedulerOptions({
    regions, maxTargetsPerScan: 10, scanner: s, titlePrefix: c.titlePrefix,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets, aim: 'ranges' } },
  });
  const sched = new Scheduler(clock, store.inventory, policy, store.scheduler, s, options(c.regions, c.targets), log);
  const reload = (regions: R[], targets: Record<string, string[]>, exclude: string[]) => {
    policy = new Policy({ scope: ['10.0.0.0/8'], exclude, rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });
    sched.reconfigure(policy, options(regions, targets));
  };
  return { sched, reload };
}

async function emulator(clock: Clock, extra: Record<string, unknown> = {}) {
  const emu = await startQualysEmulator({
    now: () => clock.t, appliances: [{ name: 'a1' }, { name: 'a2' }, { name: 'a3' }],
    scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 }, ...extra,
  });
  open.push(emu);
  return emu;
}
const titles = (emu: QualysEmulator) => emu.state.model.schedules.map((s) => s.title).sort();

describe('range runs, second review', () => {
  it('an earlier prefix saved 31 days ago is still remembered: its schedule is deleted at a restart under a new one', async () => {
    const clock = newClock(at('10:00'));
    const emu = await emulator(clock);
    const file = dbFile();
    let store = openSqliteStore(file, STORE_OPTS);
    const E = reg('emea', '10.20.0.0/16', 'a1');
    const { sched: first } = onsight(clock, store, emu, { regions: [E], exclude: [], targets: { emea: ['10.20.1.0/24'] } });
    await first.tick();
    await first.saveLearned();
    await store.close();
    expect(titles(emu)).toEqual(['onsight-range emea 1030']);
    // stopped 31 days (past the learned state's age limit), restarted as cluster "prod" with an address newly excluded
    clock.t += 31 * DAY;
    store = openSqliteStore(file, STORE_OPTS);
    open.push(store);
    const { sched } = onsight(clock, store, emu, { regions: [E], exclude: ['10.20.1.200'], targets: { emea: ['10.20.1.0/24'] }, titlePrefix: 'prod' });
    for (let k = 0; k < 5; k++, clock.t += MIN) await sched.tick();
    expect(titles(emu)).toEqual(['prod-range emea 1030']);
    expect(sched.rangeScans().schedules.map((s) => s.title)).toEqual(['prod-range emea 1030']);
  }, 120_000);

  it('an earlier prefix\'s delete always refused: only its region waits, the tries stop being a priority and back off, said once', async () => {
    const clock = newClock(at('10:00'));
    const emu = await emulator(clock, { limits: { default: { limit: 50, windowSec: 86_400, concurrency: 2 } } });
    const file = dbFile();
    let store = openSqliteStore(file, STORE_OPTS);
    const E = reg('emea', '10.20.0.0/16', 'a1');
    const A = reg('amer', '10.30.0.0/16', 'a2');
    const T = { emea: ['10.20.1.0/24'], amer: ['10.30.1.0/24'] };
    const { sched: first } = onsight(clock, store, emu, { regions: [E], exclude: [], targets: { emea: T.emea } });
    await first.tick();
    await first.saveLearned();
    await store.close();
    expect(titles(emu)).toEqual(['onsight-range emea 1030']);
    // the platform refuses every schedule delete (a 5xx)
    Object.assign(emu.state.config.faults, { serverErrorShare: 1, apis: ['schedule'], actions: ['delete'] });
    store = openSqliteStore(file, STORE_OPTS);
    open.push(store);
    const { lines, log } = logSink();
    clock.t = at('11:00');
    const { sched } = onsight(clock, store, emu, { regions: [E, A], exclude: [], targets: T, titlePrefix: 'prod' }, log);
    const from = emu.state.requests.length;
    for (const end = at('11:00') + 2 * DAY; clock.t <= end; clock.t += MIN) {
      await sched.tick();
      emu.state.model.advance();
    }
    // amer has no old schedule: its own is made at once; emea's waits for the old one's deletion
    expect(titles(emu)).toEqual(['onsight-range emea 1030', 'prod-range amer 1030']);
    expect(sched.rangeScans().problem).toMatch(/region\(s\) emea get no range run under "prod"/);
    const deletes = emu.state.requests.slice(from).filter((r) => r.api === 'schedule' && r.action === 'delete').length;
    // (two attempts a try, the tries 1, 2, 4 ... min apart up to 6 h; before, an hour at most: ~96 in two days)
    expect(deletes).toBeLessThanOrEqual(2 * 16);
    const said = lines.filter((l) => l.level >= 40 && l.msg.includes('earlier title prefix "onsight" not deleted'));
    expect(said.length).toBe(1);
  }, 600_000);

  it('a refused run that never comes is looked for every poll only through the platform\'s start delay', async () => {
    const clock = newClock(at('10:00'));
    const emu = await emulator(clock);
    const store = openSqliteStore(dbFile(), STORE_OPTS);
    open.push(store);
    const E = reg('emea', '10.20.0.0/16', 'a1');
    const T = { emea: ['10.20.1.0/24'] };
    const { sched, reload } = onsight(clock, store, emu, { regions: [E], exclude: ['10.20.9.0/24'], targets: T });
    await sched.tick();
    clock.t = at('10:20');
    await sched.tick();
    // the schedule API drops every call (the sync keeps failing) and someone paused the schedule: no run comes
    Object.assign(emu.state.config.faults, { dropShare: 1, apis: ['schedule'] });
    (emu.state.model.schedules[0] as { active: boolean }).active = false;
    reload([E], T, ['10.20.9.0/24', '10.20.1.200']);
    const from = emu.state.requests.length;
    const lists: number[] = [];
    for (clock.t = at('10:21'); clock.t <= at('16:00'); clock.t += MIN) {
      const n = emu.state.requests.length;
      await sched.tick();
      if (emu.state.requests.slice(n).some((r) => r.api === 'scan' && r.action === 'list')) lists.push(clock.t);
      emu.state.model.advance();
    }
    expect(emu.state.requests.length).toBeGreaterThan(from);
    // every minute or few within the start delay, then a quarter of its age apart, at most lookAgainS
    // (a run the platform starts late is still found within a quarter of its lateness: third review)
    expect(lists.filter((t) => t >= at('10:30') && t <= at('10:35')).length).toBeGreaterThanOrEqual(5);
    const late = lists.filter((t) => t > at('10:45'));
    for (let k = 1; k < late.length; k++) expect(late[k] - late[k - 1]).toBeGreaterThanOrEqual(Math.min(15 * MIN, (late[k - 1] - at('10:30')) / 4));
    expect(late.length).toBeLessThanOrEqual(18);
  }, 600_000);

  it('a schedule mended alone touches only its own title, and a 5xx on its update leaves it to a retry, not deleted', async () => {
    const clock = newClock(at('10:00'));
    const emu = await emulator(clock);
    const store = openSqliteStore(dbFile(), STORE_OPTS);
    open.push(store);
    const B = reg('b', '10.20.0.0/16', 'a1');
    const BX = reg('b 1030 x', '10.40.0.0/16', 'a2');
    const BIG = reg('big', '10.64.0.0/12', 'a3');
    const T = { b: ['10.20.1.0/24'], 'b 1030 x': ['10.40.1.0/24'], big: ['10.64.0.0/24'] };
    const { sched, reload } = onsight(clock, store, emu, { regions: [B, BX, BIG], exclude: [], targets: T });
    await sched.tick();
    expect(titles(emu)).toEqual(['onsight-range b 1030', 'onsight-range b 1030 x 1030', 'onsight-range big 1030']);
    // the whole sync refused for its size (big's /12 with another's), b's schedule named an address now excluded
    clock.t = at('10:05');
    reload([B, BX, BIG], { ...T, big: ['10.64.0.0/12'] }, ['10.20.1.200']);
    Object.assign(emu.state.config.faults, { serverErrorShare: 1, apis: ['schedule'], actions: ['update'] });
    for (; clock.t <= at('10:08'); clock.t += MIN) await sched.tick();
    // its update answered 5xx: kept, as were the others
    expect(titles(emu)).toEqual(['onsight-range b 1030', 'onsight-range b 1030 x 1030', 'onsight-range big 1030']);
    Object.assign(emu.state.config.faults, { serverErrorShare: 0 });
    for (; clock.t <= at('10:20'); clock.t += MIN) await sched.tick();
    // mended alone: region "b 1030 x"'s schedule, whose title begins with b's, untouched
    expect(titles(emu)).toEqual(['onsight-range b 1030', 'onsight-range b 1030 x 1030', 'onsight-range big 1030']);
    const b = emu.state.model.schedules.find((s) => s.title === 'onsight-range b 1030')!;
    expect(JSON.stringify(b)).not.toContain('10.20.1.0/24');
  }, 120_000);

  it('schedules left on Qualys are said at every start on a scanner that cannot reach them', async () => {
    const clock = newClock(at('10:00'));
    const emu = await emulator(clock);
    const file = dbFile();
    const regions = [reg('emea', '10.20.0.0/16', 'a1')];
    let store = openSqliteStore(file, STORE_OPTS);
    const { sched: q } = onsight(clock, store, emu, { regions, exclude: [], targets: { emea: ['10.20.1.0/24'] } });
    await q.tick();
    await q.saveLearned();
    await store.close();
    const tenable = await startTenableEmulator({ scanners: [{ name: 'a1' }] });
    open.push(tenable);
    const mk = (p: Policy): Scanner => {
      const c = new TenableClient({ baseUrl: tenable.url, apiKeys: tenable.apiKeys, template: 'basic', reconcileDelayMs: 0, maxAttempts: 2, baseDelayMs: 5, appliances: ['a1'], allowTarget: (ip) => p.allowed(ip) });
      open.push(c);
      return c;
    };
    for (const n of [1, 2, 3]) {
      clock.t += 3_600_000;
      store = openSqliteStore(file, STORE_OPTS);
      const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });
      const s = mk(policy);
      const opts = buildSchedulerOptions({ regions, maxTargetsPerScan: 10, scanner: s,
        scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: { emea: ['10.20.1.0/24'] }, aim: 'ranges' } } });
      const t = new Scheduler(clock, store.inventory, policy, store.scheduler, s, opts, pino({ level: 'silent' }));
      await t.tick();
      await t.saveLearned();
      expect(t.rangeScans().problem, `start ${n}`).toMatch(/onsight-range emea 1030 were made on the qualys scanner's platform/);
      await store.close();
    }
  }, 120_000);
});
