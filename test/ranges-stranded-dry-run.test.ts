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
import { afterEach, describe, expect, it } from 'vitest';
import type { QualysEmulator } from '../src/emulator/qualys/index.js';
import type { Policy } from '../src/policy/policy.js';
import { DryRunScanner } from '../src/scanners/dry-run/scanner.js';
import type { Scanner } from '../src/scanners/types.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { EMEA, STORE_OPTS, at, clockAt, logLines, qualysClient, qualysPlatform, rangeRunScheduler, type Clock, type Closers } from './helpers/range-runs.js';

const open: Closers = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** onsight started over the state file with this scanner and exclusion list: one pass, then saved. */
async function start(file: string, clock: Clock, scanner: (p: Policy) => Scanner, exclude: string[]) {
  const store = openSqliteStore(file, STORE_OPTS);
  const { lines, log } = logLines();
  const { sched } = rangeRunScheduler(clock, store, scanner, { regions: [EMEA], targets: { emea: ['10.20.1.0/24'] }, exclude, aim: 'ranges', log });
  await sched.tick();
  await sched.saveLearned();
  await store.close();
  const warned = lines.filter((l) => l.level === 40 && l.msg.includes('cannot reach them'));
  return { problem: sched.rangeScans().problem, warned };
}

const qualys = (clock: Clock, emu: QualysEmulator) => (p: Policy) => qualysClient(clock, emu, p, open);

const dryRun = (clock: Clock) => () => new DryRunScanner({ appliances: ['a1'], scanDurationS: 600, now: () => clock.t, print: () => undefined });

describe('a switch from Qualys to the dry-run scanner', () => {
  it('names the Qualys schedules left running, in a warning and on the status, at each dry-run start; the Qualys scanner back says nothing of them (before: nothing said)', async () => {
    const clock = clockAt('10:00');
    const emu = await qualysPlatform(clock, ['a1'], open);
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
    const clock = clockAt('10:00');
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-stranded-')), 'state.db');
    await start(file, clock, dryRun(clock), []);
    clock.t += 3_600_000;
    const d = await start(file, clock, dryRun(clock), ['10.20.1.200']);
    expect(d.problem).toBeUndefined();
    expect(d.warned).toEqual([]);
  }, 60_000);
});
