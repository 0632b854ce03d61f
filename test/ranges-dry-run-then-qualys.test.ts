/**
 * A dry-run trial on a fresh state with rangeScans.times set, then the Qualys scanner (the usual
 * way in): the trial's schedules were made on no platform, so nothing is stranded. Before: every
 * Qualys start (1 h, 2 h, 26 h on) warned and kept as the problem "range schedules onsight-range
 * emea 1030 were made on the dry-run scanner's platform ...; the qualys scanner cannot reach
 * them", and saved that record as `stranded` for the next start. A record so saved is dropped.
 * The real scheduler over a real SQLite file, the real Qualys client against the Qualys emulator
 * on loopback, the real dry-run scanner.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { QualysEmulator } from '../src/emulator/qualys/index.js';
import type { Policy } from '../src/policy/policy.js';
import { DryRunScanner } from '../src/scanners/dry-run/scanner.js';
import type { Scanner } from '../src/scanners/types.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { EMEA, HOUR, STORE_OPTS, at, clockAt, logLines, qualysClient, qualysPlatform, rangeRunScheduler, type Clock, type Closers } from './helpers/range-runs.js';

const open: Closers = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** onsight started over the state file with this scanner: one pass, then saved; its warnings and range-scan problem. */
async function start(file: string, clock: Clock, scanner: (p: Policy) => Scanner) {
  const store = openSqliteStore(file, STORE_OPTS);
  const { lines, log } = logLines();
  const { sched } = rangeRunScheduler(clock, store, scanner, { regions: [EMEA], targets: { emea: ['10.20.1.0/24'] }, log });
  await sched.tick();
  await sched.saveLearned();
  await store.close();
  return { problem: sched.rangeScans().problem, warned: lines.filter((l) => l.level === 40 && l.msg.includes('cannot reach them')).map((l) => l.msg) };
}

const qualys = (clock: Clock, emu: QualysEmulator) => (p: Policy) => qualysClient(clock, emu, p, open);

const dryRun = (clock: Clock) => () => new DryRunScanner({ appliances: ['a1'], scanDurationS: 600, now: () => clock.t, print: () => undefined });

/** The range-schedules part as saved. */
function savedPart(file: string): Record<string, unknown> {
  const db = new Database(file);
  try {
    return JSON.parse((db.prepare("SELECT state FROM learned_state WHERE name = 'range-schedules'").get() as { state: string }).state);
  } finally {
    db.close();
  }
}

const platform = (clock: Clock) => qualysPlatform(clock, ['a1'], open);

describe('a dry-run trial on a fresh state, then the Qualys scanner', () => {
  it('says nothing of the trial\'s pretend schedules at any Qualys start, and saves no stranded record (before: warned at 1 h, 2 h and 26 h)', async () => {
    const clock = clockAt('10:00');
    const emu = await platform(clock);
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-trial-')), 'state.db');
    await start(file, clock, dryRun(clock));
    expect(savedPart(file).schedules).toEqual([expect.objectContaining({ title: 'onsight-range emea 1030', id: 'dry-run-schedule/1' })]);
    for (const hours of [1, 2, 26]) {
      clock.t = at('10:00') + hours * HOUR;
      const q = await start(file, clock, qualys(clock, emu));
      expect({ hours, problem: q.problem, warned: q.warned }).toEqual({ hours, problem: undefined, warned: [] });
      expect(savedPart(file).stranded).toBeUndefined();
    }
    expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range emea 1030']);
  }, 120_000);

  it('drops a stranded record saved as on the dry-run scanner\'s platform (by the code before)', async () => {
    const clock = clockAt('10:00');
    const emu = await platform(clock);
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-trial-')), 'state.db');
    await start(file, clock, qualys(clock, emu));
    // what the code before saved at the first Qualys start after a trial
    const db = new Database(file);
    const part = savedPart(file);
    part.stranded = { on: 'dry-run', titles: ['onsight-range emea 1030'], prefixes: ['onsight'] };
    db.prepare("UPDATE learned_state SET state = ? WHERE name = 'range-schedules'").run(JSON.stringify(part));
    db.close();
    clock.t += HOUR;
    const q = await start(file, clock, qualys(clock, emu));
    expect(q.problem).toBeUndefined();
    expect(q.warned).toEqual([]);
    expect(savedPart(file).stranded).toBeUndefined();
  }, 60_000);
});
