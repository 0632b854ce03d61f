/**
 * Another deployment on the same subscription named "onsight-range" (a valid cluster.name) titles
 * its own scans "onsight-range <launch id> <region>": one of its region "dc 2300" reads as our
 * range run ("onsight-range <region> <HHMM>") of a region "<launch id> dc" at 23:00. Our start
 * takes on runs of a region configured or recorded in our saved state; one of a region neither has
 * is theirs when launched under another login (USER_LOGIN), and left alone (before: canceled as our
 * run of a region no longer configured). Under our login it cannot be told from our own run on a
 * fresh state (ranges-fresh-state-cancel.test.ts): left alone unless it scans what our policy
 * refuses. A run of a region we had and have since removed is still canceled at start, also after
 * more than 30 days stopped. The real scheduler over a real SQLite file, the real Qualys client
 * against the Qualys emulator on loopback.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { QualysEmulator } from '../src/emulator/qualys/index.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/types.js';
import { AMER, DAY, EMEA, MIN, STORE_OPTS, at, clockAt, qualysClient, qualysPlatform, rangeRunScheduler, type Clock, type Closers } from './helpers/range-runs.js';

const open: Closers = [];
/** what the schedulers warned of */
const said: { msg: string }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function onsight(clock: Clock, emu: QualysEmulator, store: Store, regions: typeof EMEA[], targets: Record<string, string[]>) {
  const log = pino({ level: 'warn' }, { write: (l: string) => void said.push(JSON.parse(l) as { msg: string }) });
  return rangeRunScheduler(clock, store, (p) => qualysClient(clock, emu, p, open), { regions, targets, aim: 'ranges', log }).sched;
}

const platform = (clock: Clock) => qualysPlatform(clock, ['a1', 'a2', 'b1'], open);

const cancels = (emu: QualysEmulator) => emu.state.requests.filter((r) => r.api === 'scan' && r.action === 'cancel');

describe('a scan titled as our range run of a region we never had', () => {
  for (const saved of [false, true]) {
    it(`another deployment's own scan ("onsight-range <launch id> dc 2300") is left alone at our start${saved ? ', a saved state read back' : ''} (before: canceled)`, async () => {
      said.length = 0;
      const clock = clockAt('10:00');
      const emu = await platform(clock);
      const file = join(mkdtempSync(join(tmpdir(), 'onsight-other-')), 'state.db');
      if (saved) {
        const store = openSqliteStore(file, STORE_OPTS);
        const first = onsight(clock, emu, store, [EMEA], { emea: ['10.20.1.0/24'] });
        await first.tick();
        await first.saveLearned();
        await store.close();
        clock.t += 3_600_000;
      }
      // (its own login: over what our policy refuses, the login alone tells it from ours)
      const theirs = emu.state.model.launch({ title: 'onsight-range onsight-mi3k2x0-0a1b2c3d dc 2300', targets: ['172.16.5.0/24'], appliances: ['b1'], priority: 0, userLogin: 'acme_dc2' });
      const store = openSqliteStore(file, STORE_OPTS);
      open.push(store);
      const sched = onsight(clock, emu, store, [EMEA], { emea: ['10.20.1.0/24'] });
      for (let k = 0; k < 5; k++, clock.t += MIN) {
        await sched.tick();
        emu.state.model.advance();
      }
      expect(theirs.state).not.toBe('Canceled');
      expect(cancels(emu)).toEqual([]);
      expect(sched.rangeScans()).toMatchObject({ refusedCanceled: 0 });
      // (over what our policy refuses: said, in case it is ours from before a change of login, as a warning only:
      // a status problem stayed on a setup that works until a restart; fifth and sixth reviews)
      expect(said.filter((e) => /scans addresses the policy refuses, .* under another login than onsight's: left alone/.test(e.msg))).toHaveLength(1);
      expect(sched.rangeScans().problem).toBeUndefined();
      expect(emu.state.model.schedules.map((s) => s.title)).toEqual(['onsight-range emea 1030']);
    }, 60_000);
  }
});

describe('a scan titled as our range run of a region we never had, under our own login', () => {
  it('is left alone over what our policy allows, canceled over what it refuses (before: both left alone)', async () => {
    const clock = clockAt('10:00');
    const emu = await platform(clock);
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-other-')), 'state.db');
    const allowed = emu.state.model.launch({ title: 'onsight-range onsight-mi3k2x0-0a1b2c3d dc 2300', targets: ['10.99.5.0/24'], appliances: ['b1'], priority: 0, userLogin: emu.username });
    const refused = emu.state.model.launch({ title: 'onsight-range onsight-mi3k2x0-0a1b2c3e dc 2300', targets: ['172.16.5.0/24'], appliances: ['b1'], priority: 0, userLogin: emu.username });
    const store = openSqliteStore(file, STORE_OPTS);
    open.push(store);
    const sched = onsight(clock, emu, store, [EMEA], { emea: ['10.20.1.0/24'] });
    for (let k = 0; k < 5; k++, clock.t += MIN) {
      await sched.tick();
      emu.state.model.advance();
    }
    expect(allowed.state).not.toBe('Canceled');
    expect(refused.state).toBe('Canceled');
    expect(cancels(emu).map((r) => r.params.scan_ref)).toEqual([refused.ref]);
    expect(sched.rangeScans()).toMatchObject({ refusedCanceled: 1, problem: expect.stringContaining(`range run ${refused.title} (${refused.ref}) scans addresses the policy refuses`) });
  }, 60_000);
});

describe('our run of a region removed since, found at start', () => {
  for (const days of [0, 31]) {
    it(`is still canceled (the state saved ${days ? `${days} days` : 'minutes'} before: its schedule recorded)`, async () => {
      const clock = clockAt('10:00');
      const emu = await platform(clock);
      const file = join(mkdtempSync(join(tmpdir(), 'onsight-other-')), 'state.db');
      let store = openSqliteStore(file, STORE_OPTS);
      const first = onsight(clock, emu, store, [EMEA, AMER], { emea: ['10.20.1.0/24'], amer: ['10.30.1.0/24'] });
      await first.tick();
      await first.saveLearned();
      await store.close();
      clock.t = at('10:35') + days * DAY;
      emu.state.model.advance(); // (the platform launched the runs at 10:30)
      const run = () => emu.state.model.scans.filter((s) => s.title === 'onsight-range emea 1030').at(-1)!;
      expect(run().state).toBe('Running');
      store = openSqliteStore(file, STORE_OPTS);
      open.push(store);
      const sched = onsight(clock, emu, store, [AMER], { amer: ['10.30.1.0/24'] });
      await sched.tick();
      expect(run().state).toBe('Canceled');
      expect(cancels(emu).map((r) => r.params.scan_ref)).toEqual([run().ref]);
      expect(sched.rangeScans().refusedCanceled).toBe(1);
    }, 60_000);
  }
});
