/**
 * Qualys range schedules made, then onsight started on the same state with scanner.type dry-run (a
 * trial) and an address newly excluded: the dry-run scanner's sync touches no platform, so the
 * Qualys schedules go on running daily over the address. Its start names them, as a switch to
 * Tenable does (before: nothing said, since the dry-run scanner has a syncSchedules). The real
 * scheduler over a real SQLite file, the real Qualys client against the Qualys emulator on loopback.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { Policy } from '../src/policy/policy.js';
import { DryRunScanner } from '../src/scanners/dry-run/scanner.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import type { Scanner } from '../src/scanners/types.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';

const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
const REGIONS = [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'a1', maxScans: 2 }], maxConcurrentScans: 1 }];
const STORE_OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 };

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

type Clock = { t: number; now(): number };

function logSink() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level: 'info' }, sink) };
}

/** onsight started over the state file with this scanner and exclusion list: one pass, then saved. */
async function start(file: string, clock: Clock, scanner: (p: Policy) => Scanner, exclude: string[]) {
  const policy = new Policy({ scope: ['10.0.0.0/8'], exclude, rescanAfter: 30 * 86400, rules: [], regions: REGIONS, timezone: 'UTC' });
  const s = scanner(policy);
  const store = openSqliteStore(file, STORE_OPTS);
  const opts = buildSchedulerOptions({
    regions: REGIONS, maxTargetsPerScan: 10, scanner: s,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: { emea: ['10.20.1.0/24'] }, aim: 'ranges' } },
  });
  const { lines, log } = logSink();
  const sched = new Scheduler(clock, store.inventory, policy, store.scheduler, s, opts, log);
  await sched.tick();
  await sched.saveLearned();
  await store.close();
  const warned = lines.filter((l) => l.level === 40 && l.msg.includes('cannot reach them'));
  return { problem: sched.rangeScans().problem, warned };
}

function qualys(clock: Clock, emu: QualysEmulator) {
  return (p: Policy) => {
    const c = new QualysClient({
      baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => p.allowed(ip), now: () => clock.t,
    }, { log: pino({ level: 'silent' }) });
    open.push(c);
    return c;
  };
}

const dryRun = (clock: Clock) => () => new DryRunScanner({ appliances: ['a1'], scanDurationS: 600, now: () => clock.t, print: () => undefined });

describe('a switch from Qualys to the dry-run scanner', () => {
  it('names the Qualys schedules left running, in a warning and on the status, at each dry-run start; the Qualys scanner back says nothing of them (before: nothing said)', async () => {
    const clock: Clock = { t: at('10:00'), now() { return this.t; } };
    const emu = await startQualysEmulator({ now: () => clock.t, appliances: [{ name: 'a1' }], scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 } });
    open.push(emu);
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-stranded-')), 'state.db');
    await start(file, clock, qualys(clock, emu), []);
    expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range emea 1030']);
    const schedule = JSON.stringify(emu.state.model.schedules);

    for (const hours of [1, 2]) {
      clock.t = at('10:00') + hours * 3_600_000;
      const d = await start(file, clock, dryRun(clock), ['10.20.1.200']);
      expect(d.problem).toMatch(/^range schedules onsight-range emea 1030 were made on the qualys scanner's platform and run there daily; the dry-run scanner cannot reach them \(it schedules and scans nothing\): delete them there/);
      expect(d.warned.map((l) => l.msg)).toEqual([d.problem]);
    }
    // the real schedule untouched: it still names the whole /24 the trial excluded an address of
    expect(JSON.stringify(emu.state.model.schedules)).toBe(schedule);

    // the Qualys scanner back: it reaches them (mends them, and cancels their run going over the address), nothing stranded
    clock.t = at('13:00');
    const q = await start(file, clock, qualys(clock, emu), ['10.20.1.200']);
    expect(q.problem).toBeUndefined();
    expect(q.warned).toEqual([]);
  }, 120_000);

  it('a dry-run trial on its own state says nothing of its pretend schedules', async () => {
    const clock: Clock = { t: at('10:00'), now() { return this.t; } };
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-stranded-')), 'state.db');
    await start(file, clock, dryRun(clock), []);
    clock.t += 3_600_000;
    const d = await start(file, clock, dryRun(clock), ['10.20.1.200']);
    expect(d.problem).toBeUndefined();
    expect(d.warned).toEqual([]);
  }, 60_000);
});
