// Range skips and make-ups, from a seventh independent review (of 7938101): a reactivation whose
// answer was lost, make-ups kept across a restart, a skip whose doubt a later sync settles, a
// make-up still running at a restart. Each test fails without its fix.
import { describe, expect, it } from 'vitest';
import { setup, mac, scarceRanges, RANGES_TWO_TIMES, tickLaunchedRange } from './helpers/scheduler.js';
import { ScannerFailure, ScheduleSyncIncomplete } from '../src/scanners/failure.js';

const MIN = 60_000;
const at = (hhmm: string, day = 23) => Date.parse(`2026-11-${day}T${hhmm}:00Z`);
const iso = (t: number) => new Date(t).toISOString();
const hm = (t: number) => iso(t).slice(11, 16);
type WithRanges = { phases: { ranges: { holds(region: string, now: number): boolean } } };
const held = (sched: unknown, now: number) => (sched as WithRanges).phases.ranges.holds('emea', now);
const OPTS = RANGES_TWO_TIMES;
const endRun = (scanner: { finish(r: string): void; times: Map<string, { launchedAt: string; endedAt: string }> }, ref: string, from: string, to: string) => {
  scanner.finish(ref);
  scanner.times.set(ref, { launchedAt: iso(at(from)), endedAt: iso(at(to)) });
};

/** Saves what the scheduler learned, then rewrites its range-schedules row with `edit` (as another process, or an operator, left it). */
async function editSavedRanges(t: Awaited<ReturnType<typeof scarceRanges>>, edit: (state: Record<string, unknown>) => object, savedAt?: number): Promise<void> {
  await t.sched.saveLearned();
  const row = (await t.store.learned()).find((r) => r.name === 'range-schedules')!;
  await t.store.saveLearned([{ ...row, ...(savedAt !== undefined ? { savedAt } : {}), state: JSON.stringify(edit(JSON.parse(row.state) as Record<string, unknown>)) }]);
}
/** A skip of 10:30 counted and its make-up pending, as saved at 11:00. */
const SKIPPED_1030 = { skipsSeen: [`onsight-range emea 1030@${at('10:30')}`], catchUps: [['onsight-range emea 1030', 'emea', at('10:30'), 0]] };

/** At 11:00, as saved during a skip of 10:30 (the schedule inactive, the skip counted, its make-up pending); every sync refused from now on. */
async function skipped1030SyncsRefused() {
  const t = await scarceRanges();
  t.clock.t = at('11:00');
  await editSavedRanges(t, (st) => {
    for (const x of st.schedules as { title: string; active: boolean }[]) if (x.title === 'onsight-range emea 1030') x.active = false;
    return { ...st, ...SKIPPED_1030 };
  }, t.clock.t);
  t.scanner.syncSchedules = async () => { throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', 'refused', 'no', 'retry'); };
  return t;
}

describe('scheduler.rangeScans: a skipped time whose reactivation\'s answer was lost', () => {
  const outcome = async (lostReactivation: boolean) => {
    const { scanner, sched, clock } = await setup({ rangeScans: { times: ['10:30', '14:30', '22:30'], targets: { emea: ['10.20.1.0/24'], amer: [] }, aim: 'ranges' as const } });
    scanner.limit = { limit: 300, windowSec: 86_400 };
    await sched.tick();
    const sync = scanner.syncSchedules.bind(scanner);
    let lost = false;
    scanner.syncSchedules = async (w, p) => {
      // the re-activation after the skip (14:30 wanted active again, the platform has it inactive): made, its answer lost
      const reactivate = w.some((x) => x.title === 'onsight-range emea 1430' && x.active !== false)
        && scanner.schedules.some((s) => s.title === 'onsight-range emea 1430' && s.active === false);
      if (lostReactivation && !lost && reactivate) {
        lost = true;
        await sync(w, p);
        throw new ScheduleSyncIncomplete(new ScannerFailure('ONSIGHT_SCANNER_UNREACHABLE', 'answer lost', 'unknown', 'retry'), [], ['onsight-range emea 1430'], 1);
      }
      return sync(w, p);
    };
    clock.t = at('10:30');
    const run = scanner.runSchedule('onsight-range emea 1030', clock.t);
    const makeUps: string[] = [];
    for (clock.t = at('11:00'); clock.t <= at('19:00'); clock.t += 5 * MIN) {
      if (clock.t === at('14:40')) endRun(scanner, run, '10:30', '14:40');
      // the first make-up launch is refused (a 409, a 5xx): tried again 10 min later
      if (clock.t === at('14:50')) scanner.failing.set('launch', 'refused');
      if (clock.t === at('15:00')) scanner.failing.delete('launch');
      if (await tickLaunchedRange(sched, scanner)) makeUps.push(hm(clock.t));
    }
    return { skipped: sched.rangeScans().skipped, makeUps, lost };
  };

  it('reactivation answered: made up once the refused launch is retried', async () => {
    const o = await outcome(false);
    expect(o).toEqual({ skipped: 1, makeUps: ['15:00'], lost: false });
  });

  it('reactivation\'s answer lost (taken as active, its since before the time): the skipped run is not registered again, so the make-up is not held back (before: held to 18:30, then dropped)', async () => {
    const o = await outcome(true);
    expect(o).toEqual({ skipped: 1, makeUps: ['15:00'], lost: true });
  });
});

describe('scheduler.rangeScans: make-ups kept across a restart', () => {
  it('a make-up saved under Qualys, restored under a scanner that keeps no schedules and launches no ranges (Rapid7, Tenable): nothing holds the region (before: held for good)', async () => {
    const t = await setup(OPTS);
    const { scanner, clock, store, see } = t;
    await store.saveLearned([{ name: 'range-schedules', state: JSON.stringify({ noneOfOurs: false, schedules: [], catchUps: [['onsight-range emea 1430', 'emea', clock.t - 3600_000, 0]] }), savedAt: clock.t }]);
    const s = scanner as unknown as Record<string, unknown>;
    s.syncSchedules = undefined;
    s.launchRanges = undefined;
    const sched = t.restart(undefined, { rangeScans: { times: [] } } as never);
    await see({ ip: '10.20.1.7', mac: mac(7), durationS: 5 * 86400 });
    const heldAt: string[] = [];
    for (clock.t = at('10:05'); clock.t <= at('10:00', 24); clock.t += 60 * MIN) {
      await sched.tick();
      if (held(sched, clock.t)) heldAt.push(iso(clock.t).slice(8, 16));
    }
    expect(sched.learnedState().restored.join()).toContain('range schedules');
    // expected: nothing holds emea (no range scans at all on this platform)
    expect({ heldAt: heldAt.length, ours: scanner.launches.filter((l) => l.intentId !== '').length }).toEqual({ heldAt: 0, ours: 1 });
  });

  it('a saved make-up whose time is far ahead (a clock stepped back, an edited row) is dropped (before: it held its region until then)', async () => {
    const t = await scarceRanges();
    const { clock, see } = t;
    await editSavedRanges(t, (st) => ({ ...st, catchUps: [['onsight-range emea 1430', 'emea', clock.t + 20 * 3600_000, 0]] }));
    const sched = t.restart();
    await see({ ip: '10.20.1.7', mac: mac(7), durationS: 5 * 86400 });
    const heldAt: string[] = [];
    for (clock.t = at('10:05'); clock.t <= at('10:00', 24); clock.t += 30 * MIN) {
      await sched.tick();
      // (19:00-06:00: no range run's hold; the platform runs nothing in this test, so 10:30-14:30 and 14:30-18:30 are held unseen)
      if (held(sched, clock.t) && clock.t >= at('19:00') && clock.t < at('06:00', 24)) heldAt.push(hm(clock.t));
    }
    expect(heldAt).toEqual([]);
  });

  it('a restored make-up launched while syncs are refused scans what the config asks for now, not the saved schedule\'s targets (the config narrowed them)', async () => {
    const t = await skipped1030SyncsRefused();
    const { scanner, clock } = t;
    // the config narrowed emea's range targets meanwhile (restart)
    const sched = t.restart(undefined, { rangeScans: { ...OPTS.rangeScans, targets: { emea: ['10.20.2.0/24'], amer: [] } } } as never);
    for (; clock.t <= at('12:00'); clock.t += 5 * MIN) await sched.tick();
    expect(scanner.rangeLaunches.map((l) => l.targets)).toEqual([['10.20.2.0-10.20.2.255']]);
  });

  it('a restored make-up whose region\'s targets cannot be read waits unlaunched, holding nothing, and is launched once the config is mended (not dropped for good)', async () => {
    const t = await skipped1030SyncsRefused();
    const { scanner, clock } = t;
    // restarted with a target that is no address (the config's check passed by, or the region's CIDRs changed under it)
    let sched = t.restart(undefined, { rangeScans: { ...OPTS.rangeScans, targets: { emea: ['10.20.2.x'], amer: [] } } } as never);
    const heldWhileBroken: string[] = [];
    for (; clock.t <= at('11:30'); clock.t += 5 * MIN) {
      await sched.tick();
      if (held(sched, clock.t)) heldWhileBroken.push(hm(clock.t));
    }
    const whileBroken = { launched: scanner.rangeLaunches.length, problem: sched.rangeScans().problem };
    // (a make-up that cannot launch holds nothing: our own scans of emea go on meanwhile)
    expect(heldWhileBroken).toEqual([]);
    // mended (a restart with readable targets): the make-up is still there to launch
    await sched.saveLearned();
    sched = t.restart(undefined, { rangeScans: { ...OPTS.rangeScans, targets: { emea: ['10.20.2.0/24'], amer: [] } } } as never);
    for (; clock.t <= at('12:30'); clock.t += 5 * MIN) await sched.tick();
    expect(whileBroken.launched).toBe(0);
    expect(whileBroken.problem).toMatch(/^scheduler\.rangeScans\.targets\.emea: .*10\.20\.2\.x/);
    // (before: taken as "no longer asked for" and dropped; with the wait removed, dropped as "no device to aim at")
    expect(scanner.rangeLaunches.map((l) => l.targets)).toEqual([['10.20.2.0-10.20.2.255']]);
  });

  it('a make-up a day old is dropped, even where no schedule is synced to drop it by (not launched a day late)', async () => {
    const t = await scarceRanges();
    const { scanner, clock } = t;
    clock.t = at('11:00');
    await editSavedRanges(t, (st) => ({ ...st, schedules: [], catchUps: [['onsight-range emea 1030', 'emea', clock.t - 25 * 3600_000, 0]] }), clock.t);
    scanner.syncSchedules = async () => { throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', 'refused', 'no', 'retry'); };
    const sched = t.restart();
    for (; clock.t <= at('12:00'); clock.t += 5 * MIN) await sched.tick();
    // (before: with no schedule synced, the region had no next time, and the make-up launched 25 h after its time)
    expect(scanner.rangeLaunches).toEqual([]);
  });
});

describe('scheduler.rangeScans: a restored make-up the config no longer asks for', () => {
  it('is dropped, neither launched nor holding its region (the times changed meanwhile)', async () => {
    const t = await scarceRanges();
    const { scanner, clock } = t;
    clock.t = at('11:00');
    await editSavedRanges(t, (st) => ({ ...st, ...SKIPPED_1030 }), clock.t);
    // restarted with other times: 10:30 is asked for no more (and the sync that would delete its schedule refused)
    scanner.syncSchedules = async () => { throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', 'refused', 'no', 'retry'); };
    const sched = t.restart(undefined, { rangeScans: { ...OPTS.rangeScans, times: ['16:00'] } } as never);
    const heldAt: string[] = [];
    for (; clock.t <= at('14:00'); clock.t += 5 * MIN) {
      await sched.tick();
      if (held(sched, clock.t)) heldAt.push(hm(clock.t));
    }
    // (the platform still has 14:30's schedule, the sync that would delete it refused: its run's hold begins before it)
    expect({ launched: scanner.rangeLaunches.length, heldAt: heldAt.filter((x) => x < '13:30') }).toEqual({ launched: 0, heldAt: [] });
  });
});

describe('scheduler.rangeScans: a skip in doubt settled by a later sync', () => {
  it('a skip made at 14:05 (answer lost), then a sync sent 14:25 answering 14:31 that finds it already inactive: made in time, so made up once the region is free (before: held to 18:30 and made up then)', async () => {
    const { scanner, sched, clock } = await scarceRanges();
    const sync = scanner.syncSchedules.bind(scanner);
    let lost = false, slow = false;
    const kept: string[] = [];
    scanner.syncSchedules = async (w, p) => {
      if (clock.t >= at('14:00') && !lost && w.some((x) => x.active === false)) {
        lost = true;
        await sync(w, p);
        throw new ScheduleSyncIncomplete(new ScannerFailure('ONSIGHT_SCANNER_UNREACHABLE', 'answer lost', 'unknown', 'retry'), [], ['onsight-range emea 1430'], 1);
      }
      if (lost && clock.t < at('14:25')) throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', 'refused', 'no', 'retry');
      if (lost && !slow && clock.t === at('14:25')) {
        slow = true;
        const out = await sync(w, p);
        kept.push(...out.filter((s) => s.title === 'onsight-range emea 1430').map((s) => `${s.action} ${String(s.active)}`));
        clock.t = at('14:31');
        return out;
      }
      return sync(w, p);
    };
    clock.t = at('10:30');
    const run = scanner.runSchedule('onsight-range emea 1030', clock.t);
    const makeUps: string[] = [];
    for (clock.t = at('11:00'); clock.t <= at('19:00'); clock.t += MIN) {
      if (clock.t % (5 * MIN) !== 0) continue;
      if (clock.t === at('14:31')) continue;
      if (clock.t === at('14:40')) endRun(scanner, run, '10:30', '14:40');
      if (await tickLaunchedRange(sched, scanner)) makeUps.push(hm(clock.t));
    }
    expect({ slow, kept }).toEqual({ slow: true, kept: ['kept false'] });
    // the platform had the schedule inactive since 14:05: the skip is sure; expected made up once the 10:30 run ended
    expect(makeUps).toHaveLength(1);
    expect(makeUps[0] < '15:00').toBe(true);
  });
});

describe('scheduler.rangeScans: a make-up still running across a restart', () => {
  it('is found as a make-up, dated by its launch: seen ended, it frees the region (before: dated to the next day\'s time, emea held until then though it ended at 16:00)', async () => {
    const t = await setup(OPTS);
    const { scanner, clock } = t;
    let sched = t.sched;
    scanner.limit = { limit: 300, windowSec: 86_400 };
    await sched.tick();
    clock.t = at('10:30');
    const run = scanner.runSchedule('onsight-range emea 1030', clock.t);
    const heldAt: string[] = [];
    for (clock.t = at('11:00'); clock.t <= at('10:00', 24); clock.t += 5 * MIN) {
      if (clock.t === at('14:40')) endRun(scanner, run, '10:30', '14:40');
      if (clock.t === at('15:00')) { await sched.saveLearned(); sched = t.restart(); }
      if (clock.t === at('16:00')) for (const l of scanner.rangeLaunches) { const la = (scanner.times.get(l.ref) as { launchedAt: string }).launchedAt; scanner.finish(l.ref); scanner.times.set(l.ref, { launchedAt: la, endedAt: iso(at('16:00')) }); }
      await sched.tick();
      for (const l of scanner.rangeLaunches) if (!scanner.times.has(l.ref)) scanner.times.set(l.ref, { launchedAt: iso(clock.t) } as never);
      if (clock.t >= at('17:00') && clock.t < at('09:00', 24) && held(sched, clock.t)) heldAt.push(iso(clock.t).slice(8, 16));
    }
    expect(scanner.rangeLaunches.length).toBe(1);
    expect(heldAt).toEqual([]);
  });

  it('a platform run launched late (15 min after its time) is found as that time\'s run, not a make-up: the platform\'s cut-off of it is counted', async () => {
    const t = await setup({ rangeScans: { ...OPTS.rangeScans, endBeforeNext: true } });
    const { scanner, clock } = t;
    let sched = t.sched;
    await sched.tick();
    const ref = scanner.runSchedule('onsight-range emea 1030', at('10:45')); // the platform started it late
    clock.t = at('11:00');
    await sched.saveLearned();
    sched = t.restart();
    const heldLate: string[] = [];
    for (; clock.t <= at('22:00'); clock.t += 5 * MIN) {
      if (clock.t === at('14:20')) {
        scanner.finish(ref, 'canceled'); // its cut-off, before 14:30
        scanner.times.set(ref, { launchedAt: iso(at('10:45')), endedAt: iso(at('14:20')) });
      }
      await sched.tick();
      // (14:30's run, never started here, holds until the end of its hold, 18:30)
      if (clock.t >= at('19:00') && held(sched, clock.t)) heldLate.push(hm(clock.t));
    }
    // (before: taken for a make-up of ours by its launch time, dated 10:45: a make-up carries no cut-off, so nothing counted)
    expect(sched.rangeScans()).toMatchObject({ runsSeen: 1, cutShort: 1 });
    // (dated to the next day's 10:30, it would never be looked at, and would hold emea on)
    expect(heldLate).toEqual([]);
  });
});

describe('scheduler.rangeScans: make-ups and a config changed at a restart', () => {
  it('a restart whose config drops the time whose run still goes: that run is still found and holds its region, so the make-up waits for it', async () => {
    const t = await scarceRanges();
    const { scanner, clock } = t;
    clock.t = at('10:30');
    const ref = scanner.runSchedule('onsight-range emea 1030', clock.t);
    for (clock.t = at('10:35'); clock.t <= at('15:00'); clock.t += 5 * MIN) await t.sched.tick();
    expect(t.sched.rangeScans().skipped).toBe(1);
    await t.sched.saveLearned();
    const sched = t.restart(undefined, { rangeScans: { ...OPTS.rangeScans, times: ['14:30', '20:00'] } } as never);
    const makeUps: string[] = [];
    for (clock.t = at('15:05'); clock.t <= at('17:00'); clock.t += 5 * MIN) {
      if (clock.t === at('16:30')) endRun(scanner, ref, '10:30', '16:30');
      if (await tickLaunchedRange(sched, scanner)) makeUps.push(hm(clock.t));
    }
    // (before: the run of a time no longer asked for was not looked for at the start: the make-up launched at 15:05 on top of it)
    // (after it, none either: 20:00 comes within what 9 in 10 runs took, the six hours of this one)
    expect(makeUps).toEqual([]);
    expect(sched.rangeScans().runsSeen).toBe(1); // the run of 10:30, found at the start and seen ended
  });

  it('a make-up whose schedule\'s next run falls outside the scan windows (Monday only) is still launched today, inside them', async () => {
    const makeUps = async (windows: string[]) => {
      const { scanner, sched, clock } = await setup(OPTS, { scanWindows: windows });
      scanner.limit = { limit: 300, windowSec: 86_400 };
      await sched.tick();
      clock.t = at('10:30'); // (Monday 23 November)
      const ref = scanner.runSchedule('onsight-range emea 1030', clock.t);
      const launched: string[] = [];
      for (clock.t = at('10:35'); clock.t <= at('17:30'); clock.t += 5 * MIN) {
        if (clock.t === at('15:00')) endRun(scanner, ref, '10:30', '15:00');
        if (await tickLaunchedRange(sched, scanner)) launched.push(hm(clock.t));
      }
      return { skipped: sched.rangeScans().skipped, made: launched.length };
    };
    expect(await makeUps(['* 08:00-18:00'])).toEqual({ skipped: 1, made: 1 });
    // (before: the sync deleted the schedule whose next run, Tuesday's, is outside the windows, and the make-up was dropped unsaid)
    expect(await makeUps(['Mon 08:00-18:00'])).toEqual({ skipped: 1, made: 1 });
  });

  it('a restart while no schedule is wanted now (the next runs fall outside the windows): the run still going is found, and the make-up waits for it', async () => {
    const t = await setup(OPTS, { scanWindows: ['Mon 08:00-18:00'] });
    const { scanner, clock } = t;
    scanner.limit = { limit: 300, windowSec: 86_400 };
    await t.sched.tick();
    clock.t = at('10:30');
    const ref = scanner.runSchedule('onsight-range emea 1030', clock.t);
    for (clock.t = at('10:35'); clock.t <= at('14:50'); clock.t += 5 * MIN) await t.sched.tick();
    expect(t.sched.rangeScans().skipped).toBe(1);
    await t.sched.saveLearned();
    const sched = t.restart();
    const makeUps: string[] = [];
    for (clock.t = at('14:55'); clock.t <= at('17:58'); clock.t += 5 * MIN) {
      if (clock.t === at('16:30')) endRun(scanner, ref, '10:30', '16:30');
      if (await tickLaunchedRange(sched, scanner)) makeUps.push(hm(clock.t));
    }
    // (before: nothing listed at the start when no schedule was wanted: the make-up launched at 14:55 on top of the run)
    expect(makeUps).toHaveLength(1);
    expect(makeUps[0] >= '16:30').toBe(true);
  });
});
