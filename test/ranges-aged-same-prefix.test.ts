/**
 * onsight stopped for more than 30 days (the learned state too old to read back whole) and started
 * again under the same title prefix with an address of a range schedule's targets newly excluded,
 * while the schedule API fails: the schedule the platform still keeps under that prefix runs at its
 * time with its old targets. Its saved form is taken back all the same (mergeAged), so its run is
 * judged by those targets and canceled on the first look that shows it, as with a younger state.
 * The real scheduler over a real SQLite file, the real Qualys client against the Qualys emulator on
 * loopback (its scan clock the test's clock: it launches the schedule's run itself at 10:30).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { QualysEmulator } from '../src/emulator/qualys/index.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/types.js';
import { DAY, EMEA, MIN, STORE_OPTS, at, clockAt, logLines, qualysClient, qualysPlatform, rangeRunScheduler, type Closers, type Clock } from './helpers/range-runs.js';

const open: Closers = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function onsight(clock: Clock, store: Store, emu: QualysEmulator, exclude: string[], log?: Logger) {
  return rangeRunScheduler(clock, store, (p) => qualysClient(clock, emu, p, open), { regions: [EMEA], targets: { emea: ['10.20.1.0/24'] }, exclude, aim: 'ranges', log }).sched;
}

/**
 * `onsight-range emea 1030` made over 10.20.1.0/24 and saved; onsight stopped `days` days; started
 * again at 10:00 with 10.20.1.200 excluded and the schedule API failing as `fault` says; run to 11:30.
 */
async function stoppedFor(days: number, fault: 'drop' | '5xx') {
  const clock = clockAt('10:00');
  const emu = await qualysPlatform(clock, ['a1'], open);
  const file = join(mkdtempSync(join(tmpdir(), 'onsight-aged-')), 'state.db');
  let store = openSqliteStore(file, STORE_OPTS);
  const first = onsight(clock, store, emu, []);
  await first.tick();
  await first.saveLearned();
  await store.close();
  expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range emea 1030']);
  clock.t += days * DAY;
  emu.state.model.advance();
  const before = emu.state.model.scans.length;
  Object.assign(emu.state.config.faults, fault === 'drop' ? { dropShare: 1, apis: ['schedule'] } : { serverErrorShare: 1, apis: ['schedule'], actions: ['update', 'create', 'delete'] });
  store = openSqliteStore(file, STORE_OPTS);
  open.push(store);
  const { lines, log } = logLines();
  const sched = onsight(clock, store, emu, ['10.20.1.200'], log);
  for (; clock.t <= at('11:30') + days * DAY; clock.t += MIN) {
    await sched.tick();
    emu.state.model.advance();
  }
  const runs = emu.state.model.scans.slice(before).filter((s) => s.title === 'onsight-range emea 1030');
  return { sched, lines, runs, schedule: emu.state.model.schedules[0] };
}

describe('a restart after more than 30 days stopped, same title prefix, an address newly excluded, the schedule API failing', () => {
  for (const fault of ['drop', '5xx'] as const) {
    it(`(${fault === 'drop' ? 'every schedule call dropped' : '5xx on update, create and delete'}) 31 days: the stale schedule's run is canceled within minutes of its start, as with a 20-day-old state (before: ${fault === 'drop' ? 'still running hours later' : 'canceled after an hour'})`, async () => {
      const { sched, lines, runs, schedule } = await stoppedFor(31, fault);
      // the platform's schedule still names the excluded address (no sync got through), and ran at 10:30
      expect(JSON.stringify(schedule.targets)).toMatch(/10\.20\.1\.(0\/24|0-10\.20\.1\.255)/);
      expect(runs).toHaveLength(1);
      const [run] = runs;
      expect(run.jobs.some((j) => j.ip === '10.20.1.200')).toBe(true);
      expect(run.state).toBe('Canceled');
      expect(run.endedAt! - run.launchedAt).toBeLessThanOrEqual(5 * MIN);
      expect(sched.rangeScans().refusedCanceled).toBe(1);
      // the saved schedule was taken back though the state was too old for the rest, and said
      expect(lines.some((l) => /range-schedules: saved 31 days ago .*but for the range schedules' title prefix\(es\) "onsight", 1 schedule\(s\) as last synced/.test(l.msg))).toBe(true);
    }, 120_000);
  }

  it('20 days (the state read back whole): canceled within minutes too', async () => {
    const { runs } = await stoppedFor(20, 'drop');
    expect(runs.map((r) => r.state)).toEqual(['Canceled']);
    expect(runs[0].endedAt! - runs[0].launchedAt).toBeLessThanOrEqual(5 * MIN);
  }, 120_000);
});
