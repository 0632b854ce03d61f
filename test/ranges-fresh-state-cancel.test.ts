/**
 * Our own range run of a region removed from the config, still going when onsight starts on a
 * state that records no region of ours (a new SQLite file, or the range-schedules part refused).
 * A run titled as ours of a region neither the config nor the saved state has is another
 * deployment's when launched under another login (ranges-other-deployment.test.ts); under ours it
 * is judged as ours: canceled, and said as the problem, when it scans what the policy refuses (its
 * range excluded since; before: left going for hours, no cancel), left alone and said once when
 * not. The real scheduler over a real SQLite file, the real Qualys client against the Qualys
 * emulator on loopback.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { QualysEmulator } from '../src/emulator/qualys/index.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/types.js';
import { AMER, EMEA, MIN, STORE_OPTS, at, clockAt, logLines, qualysClient, qualysPlatform, rangeRunScheduler, type Clock, type Closers } from './helpers/range-runs.js';

const open: Closers = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function onsight(clock: Clock, emu: QualysEmulator, store: Store, regions: typeof EMEA[], targets: Record<string, string[]>, exclude: string[]) {
  const { lines, log } = logLines();
  return { sched: rangeRunScheduler(clock, store, (p) => qualysClient(clock, emu, p, open), { regions, targets, exclude, log }).sched, lines };
}

const cancels = (emu: QualysEmulator) => emu.state.requests.filter((r) => r.api === 'scan' && r.action === 'cancel');

/** Both regions' runs launched at 10:30 by the schedules a first onsight made; the second starts at 10:35 with emea removed. */
async function emeaRunGoing(how: 'new state file' | 'learned part refused') {
  const clock = clockAt('10:00');
  const emu = await qualysPlatform(clock, ['a1', 'a2'], open);
  const dir = mkdtempSync(join(tmpdir(), 'onsight-fresh-'));
  const file = join(dir, 'state.db');
  const store = openSqliteStore(file, STORE_OPTS);
  const first = onsight(clock, emu, store, [EMEA, AMER], { emea: ['10.20.1.0/24'], amer: ['10.30.1.0/24'] }, []);
  await first.sched.tick();
  await first.sched.saveLearned();
  await store.close();
  clock.t = at('10:35');
  emu.state.model.advance();
  const run = () => emu.state.model.scans.filter((s) => s.title === 'onsight-range emea 1030').at(-1)!;
  expect(run().state).toBe('Running');
  if (how === 'learned part refused') {
    // one saved row the merge refuses (a placed run's time far ahead: a clock stepped back) drops the whole part
    const db = new Database(file);
    const row = db.prepare("SELECT state FROM learned_state WHERE name = 'range-schedules'").get() as { state: string };
    const st = JSON.parse(row.state);
    st.placed = [['onsight-range amer 1030', Date.now() + 100 * 365 * 86_400_000, 'a2', 'a2']];
    db.prepare("UPDATE learned_state SET state = ? WHERE name = 'range-schedules'").run(JSON.stringify(st));
    db.close();
  }
  const next = openSqliteStore(how === 'new state file' ? join(dir, 'fresh.db') : file, STORE_OPTS);
  open.push(next);
  return { clock, emu, store: next, run };
}

describe('our run of a removed region, found at a start on a state that does not record it', () => {
  for (const how of ['new state file', 'learned part refused'] as const) {
    it(`is canceled when its range is excluded since, and said as the problem (${how}; before: left going, no cancel)`, async () => {
      const { clock, emu, store, run } = await emeaRunGoing(how);
      // emea dropped from the config and its range excluded (a site handed over)
      const { sched, lines } = onsight(clock, emu, store, [AMER], { amer: ['10.30.1.0/24'] }, ['10.20.0.0/16']);
      await sched.tick();
      expect(run().state).toBe('Canceled');
      expect(cancels(emu).map((r) => r.params.scan_ref)).toEqual([run().ref]);
      const status = sched.rangeScans();
      expect(status.refusedCanceled).toBe(1);
      expect(status.problem).toBe(`range run onsight-range emea 1030 (${run().ref}) scans addresses the policy refuses, of a region emea neither the config nor the saved state has: taken as ours (launched under the login onsight uses) and canceled; if another deployment made it, give that one its own login`);
      expect(lines.filter((l) => l.level === 40 && l.msg.includes('onsight-range emea 1030')).map((l) => l.msg)).toContain(status.problem);
      for (let k = 0; k < 30; k++, clock.t += MIN) {
        await sched.tick();
        emu.state.model.advance();
      }
      expect(cancels(emu)).toHaveLength(1);
      expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range amer 1030']);
    }, 120_000);
  }

  it('is left alone, and said once, when it scans nothing the policy refuses (new state file)', async () => {
    const { clock, emu, store, run } = await emeaRunGoing('new state file');
    const { sched, lines } = onsight(clock, emu, store, [AMER], { amer: ['10.30.1.0/24'] }, []);
    for (let k = 0; k < 30; k++, clock.t += MIN) {
      await sched.tick();
      emu.state.model.advance();
    }
    expect(run().state).toBe('Running');
    expect(cancels(emu)).toEqual([]);
    expect(sched.rangeScans().refusedCanceled).toBe(0);
    expect(sched.rangeScans().problem).toBeUndefined();
    expect(lines.filter((l) => l.msg.includes('onsight-range emea 1030')).map((l) => l.msg)).toEqual([
      `range run onsight-range emea 1030 (${run().ref}) still goes, of a region emea neither the config nor the saved state has (launched under the login onsight uses): left alone, as it scans nothing the policy refuses`,
    ]);
  }, 120_000);
});
