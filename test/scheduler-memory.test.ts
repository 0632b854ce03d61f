/**
 * What the scheduler learned is kept across restarts (src/scheduler/memory.ts): each part's
 * snapshot and merge, the store's learned_state table, and a restarted scheduler over the same
 * store (SQLite and PostgreSQL).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApplianceBook } from '../src/scheduler/appliances.js';
import { Budget } from '../src/scheduler/budget.js';
import { ScanDurations } from '../src/scheduler/durations.js';
import { ProcessingLag } from '../src/scheduler/lag.js';
import { HostParallelism } from '../src/scheduler/parallelism.js';
import { Rejoins } from '../src/scheduler/rejoin.js';
import { LearnedMemory, MAX_AGE_MS, MOVED_SAVE_MS, SAVE_EVERY_MS } from '../src/scheduler/memory.js';
import { silentLogger } from '../src/log.js';
import type { LearnedRecord, SchedulerStore } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';
import { T0, mac, setupOn } from './helpers/scheduler.js';
import { freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { openDatabaseReadOnly } from '../src/store/db.js';

const regions = [{ name: 'R1', appliances: [{ name: 'A1', maxScans: 1 }, { name: 'A2', maxScans: 1 }] }];
const intent = (n: number) => ({ id: `i${n}`, region: 'R1', appliance: 'A1', state: 'running' as const, scanRef: `scan/${n}`, createdAt: T0, launchedAt: T0 });
/** a part's snapshot as it goes through the store: JSON text */
const viaJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

describe('learned parts: snapshot and merge', () => {
  it('appliances: slots seen, "full at" and others\' running scans come back; merged with what was seen since (most seen, newer full, earlier since)', () => {
    const before = new ApplianceBook(silentLogger());
    before.update([{ name: 'A1', online: true, runningScans: 3, runningScanRefs: ['scan/1', 'x', 'y'] }, { name: 'A2', online: true, runningScans: 1 }], regions, [intent(1)], T0);
    before.sawFull('A2', 1, T0 + 60_000);
    const saved = viaJson(before.snapshot(T0 + 60_000));
    const after = new ApplianceBook(silentLogger());
    after.sawRunning('A1', 2); // seen since the restart: fewer than before
    // (the list is not taken back: this book has read one since, or rather knows A1's slots from elsewhere, and reads its own)
    after.update([{ name: 'A1', online: true, runningScans: 2 }, { name: 'A2', online: true, runningScans: 0 }], regions, [], T0 + 60_000);
    expect(after.merge(saved, T0 + 60_000)).toBe('slots of 2 appliance(s) (A1: seen 3, A2: seen 1, full at 1)');
    expect(after.foreign('A1')).toBe(2); // its own list, not the saved one
    const now = T0 + 120_000;
    expect(after.describe('A1', 1, 360, now)).toMatchObject({ slotsSeen: 3, capacity: 4 });
    expect(after.describe('A2', 4, 360, now)).toMatchObject({ slotsSeen: 1, fullAt: 1, capacity: 1 }); // full at 1 believes over a configured 4
    // others' scans: counted from the first list before the restart, not from the first after it
    after.update([{ name: 'A1', online: true, runningScans: 2, runningScanRefs: ['x', 'y'] }, { name: 'A2', online: true, runningScans: 1 }], regions, [], T0 + 13 * 3_600_000);
    expect(after.describe('A1', 1, 360, T0 + 13 * 3_600_000)).toMatchObject({ othersLongestH: 13 });
    // a "full at" older than the one learned since does not replace it
    const later = new ApplianceBook(silentLogger());
    later.sawFull('A2', 2, T0 + 90_000);
    later.merge(saved, T0 + 90_000);
    expect(later.learnedCapacity('A2', T0 + 100_000)).toEqual({ atLeast: 2, fullAt: 2 });
  });

  it('scan durations and processing lags: the saved ones come first, as the older; the latest KEEP stay', () => {
    const d = new ScanDurations();
    for (let i = 1; i <= 100; i++) d.add(i * 60_000, 10);
    const again = new ScanDurations();
    for (let i = 0; i < 50; i++) again.add(999 * 60_000, 10); // 50 learned since the restart, all long
    expect(again.merge(viaJson(d.snapshot()), T0)).toBe('100 scan duration(s)');
    expect(again.count).toBe(128); // KEEP: the 22 oldest saved ones dropped
    expect(again.quantile(10, 0)).toBe(23 * 60_000);
    expect(again.quantile(10, 1)).toBe(999 * 60_000);
    const lag = new ProcessingLag();
    for (const s of [60, 120, 180, 240, 300]) lag.add(s * 1000);
    const lagAgain = new ProcessingLag();
    expect(lagAgain.merge(viaJson(lag.snapshot()), T0)).toBe('5 processing lag(s)');
    expect(lagAgain.describe(600)).toEqual(lag.describe(600));
  });

  it('hosts in parallel: the scans come back, and so does what was learned from them', () => {
    const p = new HostParallelism();
    // 40 one-wave scans of 5 targets (10–20 min) and 30 of 10–25 targets lasting as long: one wave up to 25
    for (let i = 0; i < 40; i++) p.add(5, (10 + (i % 11)) * 60_000, 5);
    for (let i = 0; i < 30; i++) p.add(10 + (i % 16), (15 + (i % 6)) * 60_000, 5);
    const learned = p.describe(5);
    expect(learned.value).toBeGreaterThan(5);
    const again = new HostParallelism();
    expect(again.describe(5).value).toBe(5);
    expect(again.merge(viaJson(p.snapshot()), T0)).toMatch(/^70 scan\(s\) for hosts in parallel \(held \d+ for a configured 5\)$/);
    expect(again.describe(5)).toEqual(learned);
  });

  it('rejoins: a binding noted at launch comes back with its first request since; one noted since the restart stays', () => {
    const r = new Rejoins();
    const b = (id: number, lastSeen: number) => ({ id, channel: 'dhcp', lastSeen, expiresAt: lastSeen + 3600_000 }) as never;
    r.launched(b(1, T0), T0);
    r.seen(b(1, T0 + 5 * 60_000)); // a request 5 min after the launch: the client rejoined
    r.launched(b(2, T0), T0);
    r.launched(b(3, T0 - 8 * 86_400_000), T0 - 8 * 86_400_000); // launched more than a week ago: not saved
    r.launched(b(4, T0 - 9 * 86_400_000), T0 - 60_000); // a lease granted 9 days ago, launched a minute ago: saved
    const saved = viaJson(r.snapshot(T0 + 10 * 60_000));
    expect(saved).toHaveLength(3);
    const again = new Rejoins();
    again.launched(b(2, T0 + 60_000), T0 + 60_000); // noted since the restart: newer, stays
    expect(again.merge(saved, T0 + 10 * 60_000)).toBe('2 DHCP binding(s) of scans in flight');
    // the rejoin is still seen though the binding has been renewed since
    expect(again.check(b(1, T0 + 20 * 60_000), 1, T0 + 15 * 60_000).rejoined).toMatch(/rejoined the network at .*T10:05:00/);
    expect(again.check(b(2, T0 + 31 * 60_000), 2, T0 + 15 * 60_000)).toEqual({ whole: true }); // T1 of the newer note (T0+1 min + 30 min)
  });

  it('the pace: a restarted budget goes on from the level it was at, refilled at the allowance\'s rate since (a fresh one starts full)', () => {
    const clock = { t: T0, now() { return this.t; } };
    const core = { clock, scanner: { allowance: () => ({ limit: 50, windowSec: 86_400, waitSec: 0 }) }, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 } };
    const b = new Budget(core as never);
    expect(b.canLaunch()).toBe(true); // 12.5 calls at most at 50 a day; a scan costs 3 until learned
    b.spentExtra(11); // 1.5 left
    expect(b.canLaunch()).toBe(false);
    const saved = viaJson(b.paceMemory.snapshot(clock.t));
    clock.t += 30 * 60_000; // +1.04
    expect(new Budget(core as never).canLaunch()).toBe(true); // a fresh budget starts full: what a restart did before
    const again = new Budget(core as never);
    expect(again.paceMemory.merge(saved, clock.t)).toBe('the pace at 1.5 call(s) (limit 50/86400 s)');
    expect(again.canLaunch()).toBe(false); // 2.54 < 3
    clock.t += 15 * 60_000; // +0.52
    expect(again.canLaunch()).toBe(true);
    // (a level far below zero would stop every launch for days: 50 a day holds 12.5, a few essential calls may go 10 under)
    for (const bad of [{}, { tokens: 'x', at: T0, limit: '50/86400' }, { tokens: 1, at: T0 + 2 * 86_400_000, limit: '50/86400' }, { tokens: 1, at: T0, limit: 'x' }, { tokens: Infinity, at: T0, limit: '50/86400' },
      { tokens: -1e6, at: T0, limit: '50/86400' }, { tokens: -23, at: T0, limit: '50/86400' }, { tokens: 13, at: T0, limit: '50/86400' }, { tokens: 1, at: T0, limit: '0/86400' }]) {
      expect(new Budget(core as never).paceMemory.merge(bad, T0)).toBeUndefined();
    }
    expect(new Budget(core as never).paceMemory.merge({ tokens: -22.5, at: T0, limit: '50/86400' }, T0)).toBe('the pace at -22.5 call(s) (limit 50/86400 s)');
  });

  it('a snapshot not in the form a part writes is refused whole (undefined), and the part keeps what it has', () => {
    const d = new ScanDurations();
    d.add(60_000, 1);
    for (const bad of [undefined, null, 'x', {}, [[1]], [[1, 'x']], [[-1, 2]], [[1, Infinity]], [[1, 2, 3]], [[1e300, 2]], [[60_000, 0.5]], [[60_000, 0]]]) expect(d.merge(bad, T0)).toBeUndefined();
    expect(d.count).toBe(1);
    const lag = new ProcessingLag();
    for (const bad of [[-5], ['1'], [NaN], { 0: 1 }, [1e308]]) expect(lag.merge(bad, T0)).toBeUndefined();
    expect(lag.count).toBe(0);
    const p = new HostParallelism();
    for (const bad of [{}, { splitAt: 5, smaller: [], larger: 'x' }, { splitAt: -1, smaller: [], larger: [] }, { splitAt: 5, smaller: [], larger: [], held: { configured: 0, value: 3 } },
      { splitAt: 5, smaller: [], larger: [], held: { configured: 5, value: 26 } }, { splitAt: 5, smaller: [], larger: [], held: { configured: 5, value: 7.5 } }]) expect(p.merge(bad, T0)).toBeUndefined();
    expect(p.describe(5).small).toBe(0);
    const book = new ApplianceBook(silentLogger());
    for (const bad of [{}, { slots: {} }, { slots: { A1: { seen: 'x' } }, othersSince: {} }, { slots: { A1: { seen: 1, full: { scans: 0, at: 1 } } }, othersSince: {} },
      { slots: {}, othersSince: { A1: { x: 'y' } } }, { slots: {}, othersSince: { A1: [] } }, { slots: { A1: { seen: 1e9 } }, othersSince: {} },
      { slots: { A1: { seen: 1, full: { scans: 1, at: T0 + 2 * 86_400_000 } } }, othersSince: {} }]) expect(book.merge(bad, T0)).toBeUndefined();
    // the saved list: its time, back-offs, and each appliance's state and listed status
    const list = (over: Record<string, unknown>, status: Record<string, unknown> = {}) => ({ slots: {}, othersSince: {}, list: {
      at: T0, backoff: 1, steady: 2, lastForeign: '', ...over,
      states: { A1: { refreshedAt: T0, foreign: 0, status: { name: 'A1', online: true, runningScans: 1, ...status } } } } });
    expect(new ApplianceBook(silentLogger()).merge(list({}), T0)).toMatch(/; the appliance list read 0 min before$/);
    // a list not in the form written is left out (read again), the slots kept
    const manyStates = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`A${i}`, { refreshedAt: T0, foreign: 0 }]));
    for (const bad of [list({ at: 'x' }), list({ backoff: 7 }), list({ steady: 0 }), list({ lastForeign: 3 }), list({ at: T0 + 2 * 86_400_000 }),
      list({}, { name: 'A2' }), list({}, { online: 'yes' }), list({}, { runningScans: -1 }), list({}, { runningScanRefs: 'x' }), list({}, { runningScanRefs: [1] }),
      list({}, { pollIntervalS: 1e9 }), list({}, { runningScanRefs: Array.from({ length: 10_001 }, (_, i) => `s${i}`) }),
      { slots: {}, othersSince: {}, list: { at: T0, backoff: 1, steady: 1, lastForeign: '', states: [] } },
      { slots: {}, othersSince: {}, list: { at: T0, backoff: 1, steady: 1, lastForeign: '', states: { A1: { refreshedAt: -1, foreign: 0 } } } },
      // (a store grown past any subscription: refused as a whole, not spread into one call's arguments)
      { slots: {}, othersSince: {}, list: { at: T0, backoff: 1, steady: 1, lastForeign: '', states: manyStates } }]) {
      expect(book.merge(bad, T0), JSON.stringify(bad).slice(0, 200)).toBe('slots of 0 appliance(s); the appliance list saved unreadable: read again');
    }
    expect(book.merge({ slots: Object.fromEntries(Object.keys(manyStates).map((n) => [n, { seen: 1 }])), othersSince: {} }, T0)).toBeUndefined();
    expect(book.learnedCapacity('A1', T0)).toEqual({ atLeast: 0 });
    expect(book.known).toBe(false);
    // a list saved ahead of this clock (another node's, a clock stepped back): its age is unknown, not taken as fresh
    expect(new ApplianceBook(silentLogger()).merge(list({ at: T0 + 60_000 }), T0)).toMatch(/; the appliance list not kept \(saved ahead of this clock: read again\)$/);
    const ahead = new ApplianceBook(silentLogger());
    expect(ahead.merge({ ...list({}), list: { ...list({}).list, states: { A1: { refreshedAt: T0 + 60_000, foreign: 0 } } } }, T0)).toMatch(/; the appliance list saved read ahead of this clock: read again$/);
    expect(ahead.mustRead()).toBe(true); // (A1 read "in a minute": read again)
    const r = new Rejoins();
    for (const bad of [[[1, 2, 3]], [['1', 2, 3, 0, 4]], {}, [[1, T0 + 2 * 86_400_000, T0 + 3 * 86_400_000, 0, T0]]]) expect(r.merge(bad, T0)).toBeUndefined();
    // a longer array than a part keeps: its newest rows, no stack overflow
    const many = Array.from({ length: 300_000 }, (_, i) => [i * 1000, 3]);
    expect(new ScanDurations().merge(many, T0)).toBe('128 scan duration(s)');
  });
});

describe('the scanner kind the learned state is saved with (reviews of session 44)', () => {
  it('a state saved before the kind row existed (an upgrade), then a dry-run trial: the trial writes nothing over it, and the real scanner\'s learning comes back', async () => {
    const t = await setupOn(STORE_KINDS[0]);
    const { scanner, clock, db } = t;
    scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0 }, { name: 'emea-2', online: true, runningScans: 0 }, { name: 'amer-1', online: true, runningScans: 3 }];
    await t.see({ ip: '10.30.1.1', mac: mac(1) });
    await t.sched.tick();
    expect(t.sched.applianceLearned('amer-1').slotsSeen).toBe(3);
    await t.sched.saveLearned();
    db!.prepare("DELETE FROM learned_state WHERE name = 'learned-with'").run(); // (as an onsight before the row saved it)
    const pretend = scanner as { kind: string; pretend?: boolean };
    pretend.kind = 'dry-run';
    pretend.pretend = true;
    scanner.appliancesState[2].runningScans = 0;
    clock.t += 60_000;
    const trial = t.restart();
    await trial.tick();
    expect(trial.learnedState().how).toMatch(/; nothing the dry-run scanner learns is written \(the saved state is from before the scanner kind was saved with it, maybe a real scanner's: kept for it\)$/);
    clock.t += SAVE_EVERY_MS;
    await trial.tick();
    await trial.saveLearned();
    pretend.kind = 'scripted';
    pretend.pretend = undefined;
    clock.t += 60_000;
    const back = t.restart();
    await back.tick();
    expect(back.applianceLearned('amer-1').slotsSeen).toBe(3);
  });

  it('a dry-run whose first whole write failed: a part it writes alone carries its kind, and a real scanner leaves it out', async () => {
    const rows = new Map<string, LearnedRecord>();
    let fail = 1;
    const store = {
      learned: async () => [...rows.values()],
      saveLearned: async (r: readonly LearnedRecord[]) => {
        if (fail-- > 0) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
        for (const x of r) rows.set(x.name, x);
      },
    } as unknown as SchedulerStore;
    const clock = { t: T0, now() { return this.t; } };
    let v = 0;
    let got: unknown;
    const part = { snapshot: () => ({ v }), merge: (d: unknown) => ((got = d), 'churn'), version: () => v };
    const dry = new LearnedMemory(store, clock, silentLogger(), { 'address-churn': part }, 'dry-run', true);
    await dry.restore();
    await dry.save(); // the whole write: fails
    v = 5;
    clock.t += MOVED_SAVE_MS;
    await dry.save(); // the moved part alone
    expect([...rows.keys()].sort()).toEqual(['address-churn', 'learned-with']);
    const real = new LearnedMemory(store, clock, silentLogger(), { 'address-churn': part }, 'qualys');
    await real.restore();
    expect(got).toBeUndefined();
    expect(real.describe().left).toEqual(['every part (1): learned with the dry-run scanner, not qualys']);
  });
});

describe.each(STORE_KINDS)('learned state on $name', (kind) => {
  if (kind.skip) console.log(`skip the learned state on ${kind.name}: ${kind.skip}`);
  const it_ = kind.skip ? it.skip : it;

  it_('the store keeps one row per part, the newest replacing it', async () => {
    const { store } = await setupOn(kind);
    await store.saveLearned([]);
    await store.saveLearned([{ name: 'a', state: '[1]', savedAt: 1000 }, { name: 'b', state: '{}', savedAt: 1000 }]);
    await store.saveLearned([{ name: 'a', state: '[2]', savedAt: 2000 }]);
    expect(await store.learned()).toEqual([{ name: 'a', state: '[2]', savedAt: 2000 }, { name: 'b', state: '{}', savedAt: 1000 }]);
  });

  it_('a restarted scheduler takes back what the last one learned: appliance slots and scan durations (and without the store it would not)', async () => {
    const t = await setupOn(kind);
    const { scanner, clock, store, see } = t;
    // the appliance list shows amer-1 running 3 scans of other tools: it has at least 3 slots (configured 2)
    scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0 }, { name: 'emea-2', online: true, runningScans: 0 }, { name: 'amer-1', online: true, runningScans: 3 }];
    await see({ ip: '10.30.1.1', mac: mac(1) });
    await t.sched.tick();
    expect(t.sched.applianceLearned('amer-1')).toMatchObject({ slotsSeen: 3, capacity: 4 });
    const durations = async () => (await store.learned()).find((r) => r.name === 'scan-durations')?.state;
    expect(await durations()).toBe('[]'); // written by the first pass, before any scan ended
    clock.t += 5 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    await t.sched.tick();
    expect(t.sched.learnedState()).toMatchObject({ restored: [], how: 'nothing saved before: learning starts from the configured values' });
    expect(await durations()).toBe('[]'); // not again yet: every SAVE_EVERY_MS
    await t.sched.saveLearned(); // at stop
    expect((await store.learned()).map((r) => r.name)).toEqual(['address-churn', 'appliances', 'hosts-in-parallel', 'launch-order', 'learned-with', 'no-host', 'pace', 'polls', 'processing-lag', 'range-schedules', 'rejoins', 'scan-durations', 'scanner-clock']);
    expect(await durations()).toBe('[[300000,1]]');

    scanner.appliancesState[2].runningScans = 0; // the others' scans have ended meanwhile
    const again = t.restart();
    expect(again.applianceLearned('amer-1').slotsSeen).toBe(0); // nothing read back before the first call
    clock.t += 3600_000;
    await again.tick();
    expect(again.applianceLearned('amer-1')).toMatchObject({ slotsSeen: 3, capacity: 4 }); // not 2 + 1
    const state = again.learnedState();
    // (an hour after the stop: the list is read again, and amer-1's 3 scans have ended)
    expect(state.restored).toEqual(expect.arrayContaining(['slots of 3 appliance(s) (emea-1: seen 0, emea-2: seen 0, amer-1: seen 3); the appliance list not kept (saved 60 min before, over 15: read again)', '1 scan duration(s)']));
    expect(state).toMatchObject({ left: [], restoredAt: clock.t, how: expect.stringMatching(/^read back at start \(saved 2026-11-23T10:05:00\.000Z\)/) });

    // the store is what carried it: with the table emptied, a restart starts from the configured values
    await store.saveLearned([{ name: 'appliances', state: '{"slots":{},"othersSince":{}}', savedAt: clock.t }]);
    const fresh = t.restart();
    await fresh.tick();
    expect(fresh.applianceLearned('amer-1')).toMatchObject({ slotsSeen: 0, capacity: 3 });
  });

  it_('a state learned with another scanner kind (a dry-run trial) is left out whole, said; a kind row it cannot read leaves the parts to their own checks', async () => {
    const t = await setupOn(kind);
    const { scanner, clock, store } = t;
    scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0 }, { name: 'emea-2', online: true, runningScans: 0 }, { name: 'amer-1', online: true, runningScans: 3 }];
    await t.sched.tick();
    await t.sched.saveLearned();
    expect((await store.learned()).find((r) => r.name === 'learned-with')?.state).toBe('{"scanner":"scripted"}');
    const withKind = async (state: string) => {
      const rows = (await store.learned()).filter((r) => r.name !== 'learned-with');
      await store.saveLearned([...rows, { name: 'learned-with', state, savedAt: clock.t }]);
      scanner.appliancesState[2].runningScans = 0;
      const again = t.restart();
      clock.t += 60_000;
      await again.tick();
      return { state: again.learnedState(), slotsSeen: again.applianceLearned('amer-1').slotsSeen };
    };
    const dry = await withKind('{"scanner":"dry-run"}');
    expect(dry.state.restored).toEqual([]);
    expect(dry.state.left).toEqual(['every part (12): learned with the dry-run scanner, not scripted']);
    expect(dry.slotsSeen).toBe(0); // the pretend scanner's appliances taught nothing
    // (the restarted scheduler wrote its own state, of this kind, over the dry-run's)
    expect((await store.learned()).find((r) => r.name === 'learned-with')?.state).toBe('{"scanner":"scripted"}');
    scanner.appliancesState[2].runningScans = 3;
    await t.sched.tick();
    const odd = await withKind('{"scanner":"\\u001b[31mx"}');
    expect(odd.state.left).toEqual([expect.stringMatching(/^every part \(\d+\): learned with another scanner, not scripted$/)]);
    const same = await withKind('{"scanner":"scripted"}');
    expect(same.state.left).toEqual([]);
    expect(same.state.restored.length).toBeGreaterThan(0);
    const unreadable = await withKind('{not json');
    expect(unreadable.state.left).toEqual([]); // (the parts' own checks decide, as before the row existed)
  });

  it_('a dry-run trial on a real scanner\'s state writes nothing over it: back on the real scanner, what it learned comes back', async () => {
    const t = await setupOn(kind);
    const { scanner, clock, store } = t;
    scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0 }, { name: 'emea-2', online: true, runningScans: 0 }, { name: 'amer-1', online: true, runningScans: 3 }];
    await t.see({ ip: '10.30.1.1', mac: mac(1) });
    await t.sched.tick();
    expect(t.sched.applianceLearned('amer-1').slotsSeen).toBe(3);
    await t.sched.saveLearned(); // the real daemon stops
    const saved = await store.learned();
    const pretend = scanner as { kind: string; pretend?: boolean };
    pretend.kind = 'dry-run'; // a dry-run trial on the same state
    pretend.pretend = true;
    scanner.appliancesState[2].runningScans = 0;
    clock.t += 60_000;
    const trial = t.restart();
    await trial.tick();
    expect(trial.learnedState().left).toEqual(['every part (12): learned with the scripted scanner, not dry-run, and kept for it (this scanner writes nothing over it)']);
    clock.t += SAVE_EVERY_MS;
    await trial.tick();
    await trial.saveLearned(); // (at its stop too)
    expect(await store.learned()).toEqual(saved);
    pretend.kind = 'scripted'; // back to the real scanner
    pretend.pretend = undefined;
    clock.t += 60_000;
    const back = t.restart();
    await back.tick();
    expect(back.learnedState().left).toEqual([]);
    expect(back.applianceLearned('amer-1').slotsSeen).toBe(3);
  });

  it_('written every SAVE_EVERY_MS by the passes; a part too old or unreadable is left out and said so; a failed read writes nothing and is tried again', async () => {
    const t = await setupOn(kind);
    const { clock, store } = t;
    await t.sched.tick();
    expect(await store.learned()).toHaveLength(13); // the first pass after the read-back writes (12 parts and the scanner's kind)
    clock.t += SAVE_EVERY_MS - 1;
    await store.saveLearned([{ name: 'scan-durations', state: '[[60000, 1]]', savedAt: clock.t }]);
    await t.sched.tick();
    expect((await store.learned()).find((r) => r.name === 'scan-durations')?.state).toBe('[[60000, 1]]'); // not yet
    clock.t += 1;
    await t.sched.tick();
    expect((await store.learned()).find((r) => r.name === 'scan-durations')?.state).toBe('[]');

    await store.saveLearned([
      { name: 'scan-durations', state: '[[60000, 1], [120000, 2]]', savedAt: clock.t - MAX_AGE_MS - 86_400_000 },
      { name: 'processing-lag', state: '{not json', savedAt: clock.t },
      { name: 'hosts-in-parallel', state: '{"splitAt": 3, "smaller": [[1, -5]], "larger": []}', savedAt: clock.t },
      { name: 'from-a-newer-version', state: '{}', savedAt: clock.t },
      { name: 'launch-order', state: '{"onsight-x": [1, 2]}', savedAt: clock.t },
      { name: 'no-host', state: '[[1]]', savedAt: clock.t },
      { name: 'range-schedules', state: '{"noneOfOurs":false,"schedules":[{"title":"onsight-range emea 1030","timeUtc":"25:00"}]}', savedAt: clock.t },
    ]);
    // the first read fails (a locked file, a lost connection): the pass fails, nothing is written over the saved state
    let fail = true;
    const flaky = Object.create(store) as SchedulerStore;
    flaky.learned = () => (fail ? Promise.reject(new Error('database is locked')) : store.learned());
    const before = await store.learned();
    const again = t.restart(flaky);
    clock.t += SAVE_EVERY_MS;
    await expect(again.tick()).rejects.toThrow('database is locked');
    await again.saveLearned();
    expect(await store.learned()).toEqual(before);
    fail = false;
    await again.tick();
    const state = again.learnedState();
    expect(state.left).toEqual([
      'from-a-newer-version: not a part this version keeps',
      'hosts-in-parallel: not in the form this version writes',
      'launch-order: not in the form this version writes',
      'no-host: not in the form this version writes',
      'processing-lag: not in the form this version writes',
      'range-schedules: not in the form this version writes',
      'scan-durations: saved 31 days ago (more than 30)',
    ]);
    expect(state.restored).toHaveLength(6); // appliances, rejoins, pace, polls, the scanner clock and the address churn, saved by the last scheduler
    expect(state.how).toMatch(/; left out: from-a-newer-version/);
    expect(again.processingLag().samples).toBe(0);
    // a save time that is no time (an edit of the table), or one days ahead of this clock: that part is left out, the others are taken
    await store.saveLearned([{ name: 'rejoins', state: '[]', savedAt: clock.t + 5 * 86_400_000 }]);
    t.db?.prepare("UPDATE learned_state SET saved_at = 'x' WHERE name = 'appliances'").run();
    const third = t.restart();
    await expect(third.tick()).resolves.toBeUndefined();
    expect(third.learnedState().left).toEqual(expect.arrayContaining([
      `rejoins: no valid save time (${clock.t + 5 * 86_400_000})`, ...(t.db ? ['appliances: no valid save time (NaN)'] : []),
    ]));
    // and written again, whole, by the pass after the read-back
    expect((await store.learned()).find((r) => r.name === 'processing-lag')).toMatchObject({ state: '[]', savedAt: clock.t });

    // a failed write (a full disk; a deposed leader's, refused by the lease) never fails a pass: tried again in SAVE_EVERY_MS
    const written = again.learnedState().savedAt;
    flaky.saveLearned = () => Promise.reject(new Error('database or disk is full'));
    clock.t += SAVE_EVERY_MS;
    await expect(again.tick()).resolves.toBeUndefined();
    expect(again.learnedState().savedAt).toBe(written);
    flaky.saveLearned = (r) => store.saveLearned(r);
    clock.t += SAVE_EVERY_MS;
    await again.tick();
    expect(again.learnedState().savedAt).toBe(clock.t);
  });
});

describe.each(STORE_KINDS)('what a restart would forget, kept, on $name', (kind) => {
  const it_ = kind.skip ? it.skip : it;

  it_('a device whose scan found no host is not relaunched after a restart either, until it is seen again (and is, without the kept state)', async () => {
    for (const keep of [true, false]) {
      const t = await setupOn(kind, { verifyResults: true, verifyDelayS: 600, idlePollS: 60 });
      const { scanner, clock, see } = t;
      await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
      await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 }); // this laptop left without a release
      await t.sched.tick();
      clock.t += 20 * 60_000;
      scanner.finish(scanner.launches[0].ref);
      scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t).toISOString());
      await t.sched.tick();
      clock.t += 601_000;
      await t.sched.tick();
      expect(t.sched.counters.noHost).toBe(1);
      await t.sched.saveLearned();
      if (!keep) await t.store.saveLearned([{ name: 'no-host', state: '[]', savedAt: clock.t }]);
      const again = t.restart();
      clock.t += 3600_000;
      await again.sweep();
      await again.tick();
      expect(scanner.launches.map((l) => l.targets)).toEqual(keep ? [['10.20.1.1', '10.20.1.2']] : [['10.20.1.1', '10.20.1.2'], ['10.20.1.2']]);
      if (!keep) continue;
      expect(again.learnedState().restored).toContain('1 binding(s) whose last scan found no host');
      await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 }); // seen again: due again
      await again.tick();
      expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1', '10.20.1.2'], ['10.20.1.2']]);
    }
  });

  it_('a restarted scheduler polls when the last one would have, not at once (and at once, without the kept polls; on time, with a "next" saved weeks ahead)', async () => {
    for (const keep of [true, false, 'damaged' as const]) {
      const t = await setupOn(kind, { idlePollS: 3600 });
      const { scanner, clock, see } = t;
      const polls = () => scanner.calls.filter((c) => c === 'list').length;
      await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
      await t.sched.tick(); // launched
      clock.t += 60_000;
      await t.sched.tick(); // the first poll (none before)
      expect(polls()).toBe(1);
      clock.t += 60_000;
      await t.sched.tick(); // nothing waits: the next poll is the idle one, an hour on
      expect(polls()).toBe(1);
      await t.sched.saveLearned();
      if (!keep) await t.store.saveLearned([{ name: 'polls', state: '{"next":0,"last":0,"states":{}}', savedAt: clock.t }]);
      if (keep === 'damaged') {
        const row = (await t.store.learned()).find((r) => r.name === 'polls')!;
        await t.store.saveLearned([{ ...row, state: JSON.stringify({ ...JSON.parse(row.state) as object, next: clock.t + 29 * 86_400_000 }) }]);
      }
      const again = t.restart();
      clock.t += 60_000;
      await again.tick();
      expect(polls()).toBe(keep ? 1 : 2);
      if (!keep) continue;
      clock.t += 3600_000;
      await again.tick();
      expect(polls()).toBe(2); // the idle poll, on time
    }
  });

  it_('a scan launched before a restart keeps its targets\' places: an address reassigned once the scan has surely passed it does not cancel it (and does, without the kept order)', async () => {
    for (const keep of [true, false]) {
      const t = await setupOn(kind, { maxTargetsPerScan: 6, hostsInParallel: 2, learnHostsInParallel: false, pickupS: 360, idlePollS: 60 });
      const { scanner, clock, see } = t;
      const settled = { durationS: 2 * 86400 }; // leases running a day past now: a scan may carry more than one wave of them
      for (let i = 1; i <= 3; i++) { // three scans of 20 min: the typical duration
        await see({ ip: `10.20.2.${i}`, mac: mac(100 + i), ...settled });
        await t.sched.tick();
        clock.t += 20 * 60_000;
        scanner.finish(scanner.launches.at(-1)!.ref);
        await t.sched.tick();
      }
      for (let i = 1; i <= 6; i++) await see({ ip: `10.20.1.${i}`, mac: mac(i), ...settled });
      await t.sched.tick();
      const scan = scanner.launches.at(-1)!;
      expect(scan.targets).toHaveLength(6);
      clock.t += 7 * 60_000;
      await t.sched.tick(); // a poll sees it running
      await t.sched.saveLearned();
      if (!keep) await t.store.saveLearned([{ name: 'launch-order', state: '{}', savedAt: clock.t }]);
      const again = t.restart();
      await again.reconcile();
      // 25 min after launch: the third target started by about 6 + 20 × 3/6 + 6 (slack) = 22 min; the last not before 32
      clock.t += 18 * 60_000;
      await see({ ip: scan.targets[2], mac: mac(99), durationS: 86400 }); // the address goes to another laptop
      await again.tick();
      expect(again.counters.canceledReassigned).toBe(keep ? 0 : 1);
      expect(scanner.states.get(scan.ref)).toBe(keep ? 'running' : 'canceled');
    }
  });
  it_('range schedules as last synced hold their region from the start: a restart whose first sync cannot be made launches nothing into a run\'s hold (and did, without them)', async () => {
    for (const keep of [true, false]) {
      const t = await setupOn(kind, { rangeScans: { times: ['10:30'], targets: { emea: ['10.20.1.0/24'], amer: [] } } });
      const { scanner, clock, see, store } = t;
      scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0 }, { name: 'emea-2', online: true, runningScans: 0 }, { name: 'amer-1', online: true, runningScans: 0 }];
      clock.t = Date.parse('2026-11-23T08:00:00Z');
      await t.sched.tick();
      expect(scanner.schedules.map((x) => x.title)).toEqual(['onsight-range emea 1030']);
      await t.sched.saveLearned();
      if (!keep) await store.saveLearned([{ name: 'range-schedules', state: '{"noneOfOurs":false}', savedAt: clock.t }]);
      // onsight restarts in the run's hold (from 09:45), and the platform refuses the schedule calls for now
      scanner.failing.set('syncSchedules', 'refused');
      const again = t.restart();
      clock.t = Date.parse('2026-11-23T09:50:00Z');
      await see({ ip: '10.20.1.7', mac: mac(7), durationS: 86400 });
      for (let k = 0; k < 3; k++, clock.t += 5 * 60_000) await again.tick();
      const ours = scanner.launches.filter((l) => l.intentId !== '');
      expect(ours).toHaveLength(keep ? 0 : 1);
      if (!keep) continue;
      expect(again.learnedState().restored).toContain('range schedules: 1 of ours as last synced');
      expect(again.rangeScans().schedules.map((x) => x.title)).toEqual(['onsight-range emea 1030']);
      // a scanner that keeps no schedules now (another platform's, or none): the saved ones hold nothing
      await again.saveLearned();
      const other = t.restart();
      Object.defineProperty(scanner, 'syncSchedules', { value: undefined, configurable: true });
      await other.tick();
      expect(other.learnedState().restored).toContain('range schedules: the scripted scanner keeps none (1 saved, not held)');
      expect(other.rangeScans().schedules).toEqual([]);
    }
  });

  it_('a run\'s aim survives a restart between the aim and the run: the first sync does not write the whole ranges back over it (and did, without the kept aims)', async () => {
    for (const keep of [true, false]) {
      const t = await setupOn(kind, { rangeScans: { times: ['10:30'], targets: { emea: ['10.20.1.0/24'], amer: [] }, aim: 'held' } });
      const { scanner, clock, see, store } = t;
      scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0 }, { name: 'emea-2', online: true, runningScans: 0 }, { name: 'amer-1', online: true, runningScans: 0 }];
      clock.t = Date.parse('2026-11-23T08:00:00Z');
      await t.sched.tick();
      await see({ ip: '10.20.1.7', mac: mac(7), durationS: 86400 });
      clock.t = Date.parse('2026-11-23T10:21:00Z'); // the aim: 10 min before the run
      await t.sched.tick();
      const schedule = () => scanner.schedules.find((x) => x.title === 'onsight-range emea 1030')!;
      expect(schedule().targets).toEqual(['10.20.1.7']);
      await t.sched.saveLearned();
      if (!keep) {
        const row = (await store.learned()).find((r) => r.name === 'range-schedules')!;
        await store.saveLearned([{ ...row, state: JSON.stringify({ ...JSON.parse(row.state) as object, aimed: [] }) }]);
      }
      const updates = scanner.calls.filter((c) => c === 'updateSchedule').length;
      const again = t.restart();
      clock.t += 60_000;
      await again.tick();
      expect(schedule().targets).toEqual(keep ? ['10.20.1.7'] : ['10.20.1.0-10.20.1.255']); // (the whole range, as allowedRanges writes it)
      expect(scanner.calls.filter((c) => c === 'updateSchedule').length - updates).toBe(keep ? 0 : 1);
      if (!keep) continue;
      expect(again.learnedState().restored).toContain('range schedules: 1 of ours as last synced, 1 aim(s)');
      // an aim, a cost, a not-found device or a duration not in the form written: the part is left out
      const kept = { title: 'onsight-range emea 1030', id: 'sched-9', appliance: 'emea-1', region: 'emea', timeUtc: '10:30', active: true, since: clock.t, targets: ['10.20.1.0/24'] };
      for (const bad of [{ aimed: [['onsight-range emea 1030', clock.t, [7]]] }, { aimCost: [['x', -1, 2]] }, { notFound: [[0, clock.t]] }, { durations: ['1'] }, { durations: {} },
        // (a target that is no address would make every later pass throw)
        { aimed: [['onsight-range emea 1030', clock.t, ['10.20.1.x']]] }, { schedules: [{ ...kept, targets: ['10.20.1.0/33'] }] }, { schedules: [{ ...kept, timeUtc: '24:00' }] }, { schedules: [{ ...kept, timeUtc: '10:60' }] },
        // skips in doubt, skips counted, make-ups to launch
        { skipsSent: ['onsight-range emea 1030'] }, { skipsSent: [7] }, { skipsSeen: ['x@soon'] }, { skipsSeen: [`x@${clock.t + 3 * 86_400_000}`] }, { skipsSent: {} },
        { catchUps: [['onsight-range emea 1030', 'emea', -1, 0]] }, { catchUps: [['onsight-range emea 1030', 'emea']] }, { catchUps: [[7, 'emea', clock.t, 0]] }]) {
        await store.saveLearned([{ name: 'range-schedules', state: JSON.stringify({ noneOfOurs: false, schedules: [], ...bad }), savedAt: clock.t }]);
        const other = t.restart();
        await other.tick();
        expect(other.learnedState().left, JSON.stringify(bad)).toContain('range-schedules: not in the form this version writes');
      }
      // (the same rows, every field as written: taken back)
      await store.saveLearned([{ name: 'range-schedules', state: JSON.stringify({ noneOfOurs: false, schedules: [kept], aimed: [['onsight-range emea 1030', clock.t, ['10.20.1.7', '10.20.1.9-10.20.1.12']]],
        skipsSent: [`onsight-range emea 1030@${clock.t - 3600_000}`, `onsight-range emea 1030@${clock.t - 3 * 86_400_000}`], skipsSeen: [], catchUps: [['onsight-range emea 1030', 'emea', clock.t - 3600_000, 0]] }), savedAt: clock.t }]);
      const other = t.restart();
      await other.tick();
      // (the skip three days old is pruned as it would have been)
      expect(other.learnedState().restored).toContain('range schedules: 1 of ours as last synced, 1 aim(s), 1 skip(s) whose run a list is still to decide, 1 skipped time(s) to make up');
    }
  });

  it_('a sync that created schedules and then failed leaves "none of ours kept" false: a restart with range scans off cleans them up (the orphan ran on, without), trying three times', async () => {
    const t = await setupOn(kind);
    const { scanner, clock, store } = t;
    await t.sched.tick(); // range scans off: the clean-up at start finds none of ours
    await t.sched.saveLearned();
    expect(JSON.parse((await store.learned()).find((r) => r.name === 'range-schedules')!.state)).toMatchObject({ noneOfOurs: true });
    // turned on with two times; the platform takes the first schedule, then the connection drops
    scanner.schedulesFailAfter = 1;
    const on = t.restart(undefined, { rangeScans: { times: ['10:30', '22:30'], targets: { emea: ['10.20.1.0/24'], amer: [] } } });
    clock.t += 60_000;
    await on.tick();
    expect(scanner.schedules.map((x) => x.title)).toEqual(['onsight-range emea 1030']);
    await on.saveLearned();
    expect(JSON.parse((await store.learned()).find((r) => r.name === 'range-schedules')!.state)).toMatchObject({ noneOfOurs: false });
    // turned off again before a sync succeeded: the start's clean-up is tried three times an hour apart (refused here), then left
    scanner.schedulesFailAfter = undefined;
    scanner.failing.set('syncSchedules', 'refused');
    const lists = () => scanner.calls.filter((c) => c === 'listSchedules').length;
    const listed = lists();
    const off = t.restart();
    for (let k = 0; k < 6; k++, clock.t += 61 * 60_000) await off.tick();
    expect(lists() - listed).toBe(3);
    expect(scanner.schedules.map((x) => x.title)).toEqual(['onsight-range emea 1030']);
    // the next start lists the schedules and deletes ours
    await off.saveLearned();
    scanner.failing.delete('syncSchedules');
    const next = t.restart();
    await next.tick();
    expect(scanner.schedules).toEqual([]);
    expect(scanner.calls.filter((c) => c === 'deleteSchedule')).toHaveLength(1);
  });

  it_('a restart moments after a stop spends no call on the appliance list or the range schedules under a scarce allowance (and does without the kept state, after 15 min, or when the list lacks an appliance)', async () => {
    const t = await setupOn(kind, { idlePollS: 3600 });
    const { scanner, clock, see, store } = t;
    scanner.limit = { limit: 50, windowSec: 86400 };
    scanner.appliancesState = [{ name: 'emea-1', online: true, runningScans: 0, pollIntervalS: 180 }, { name: 'emea-2', online: true, runningScans: 0, pollIntervalS: 180 }, { name: 'amer-1', online: true, runningScans: 0, pollIntervalS: 180 }];
    const reads = () => ({ appliances: scanner.calls.filter((c) => c === 'appliances').length, schedules: scanner.calls.filter((c) => c === 'listSchedules').length });
    for (let i = 1; i <= 3; i++) await see({ ip: `10.20.1.${i}`, mac: mac(i), durationS: 86400 });
    await t.sched.tick();
    expect(reads()).toEqual({ appliances: 1, schedules: 1 }); // the first start: the list, and the clean-up of range schedules an earlier config left
    await t.sched.saveLearned();
    const saved = await store.learned();
    const row = (name: string) => saved.find((r) => r.name === name)!;
    // each restart: a new scheduler over the state as saved (or edited), a device seen, one pass
    let n = 10;
    const restartWith = async (edit: (name: string, state: string) => string, after = 60_000) => {
      // stopped now: the list as saved at the stop (read then)
      const list = JSON.parse(row('appliances').state) as { list: { at: number; states: Record<string, { refreshedAt: number }> } };
      list.list.at = clock.t;
      for (const a of Object.values(list.list.states)) a.refreshedAt = clock.t;
      await store.saveLearned(saved.map((r) => ({ ...r, savedAt: clock.t, state: edit(r.name, r.name === 'appliances' ? JSON.stringify(list) : r.state) })));
      const before = reads();
      const again = t.restart();
      clock.t += after;
      await see({ ip: `10.20.1.${++n}`, mac: mac(n), durationS: 86400 });
      await again.tick();
      const now = reads();
      return { again, appliances: now.appliances - before.appliances, schedules: now.schedules - before.schedules };
    };
    const kept = await restartWith((_, s) => s);
    expect(kept).toMatchObject({ appliances: 0, schedules: 0 });
    expect(kept.again.learnedState().restored).toEqual(expect.arrayContaining([expect.stringMatching(/; the appliance list read 1 min before$/), 'range schedules: none of ours kept']));
    expect(kept.again.applianceLearned('emea-1')).toMatchObject({ pickupS: 360 }); // the listed polling interval, from the kept list
    // the state as the version before wrote it (slots, no list; no range-schedules part): both read again
    expect(await restartWith((name, s) => {
      if (name === 'appliances') return JSON.stringify({ ...JSON.parse(s) as object, list: undefined });
      return name === 'range-schedules' ? '"not a part then"' : s;
    })).toMatchObject({ appliances: 1, schedules: 1 });
    // schedules of ours may be kept (the last sync created some): cleaned up at start
    expect(await restartWith((name, s) => (name === 'range-schedules' ? '{"noneOfOurs":false}' : s))).toMatchObject({ appliances: 0, schedules: 1 });
    // a start long after the stop (an outage): the list is read again; the schedules were still none of ours
    const late = await restartWith((_, s) => s, 16 * 60_000);
    expect(late).toMatchObject({ appliances: 1, schedules: 0 });
    expect(late.again.learnedState().restored).toEqual(expect.arrayContaining([expect.stringMatching(/the appliance list not kept \(saved 16 min before, over 15: read again\)$/)]));
    // a list without an appliance the config names (one added while onsight was stopped): read again
    const lacking = await restartWith((name, s) => {
      if (name !== 'appliances') return s;
      const d = JSON.parse(s) as { list: { states: Record<string, unknown> } };
      delete d.list.states['amer-1'];
      return JSON.stringify(d);
    });
    expect(lacking).toMatchObject({ appliances: 1, schedules: 0 });
    // "none of ours" found 8 days ago (a crash before a save may have hidden one made since), or saved by a version that did not date it: listed again
    const dated = (at: number | undefined) => (name: string, st: string) => (name === 'range-schedules' ? JSON.stringify({ ...JSON.parse(st) as object, noneOfOursAt: at }) : st);
    const week = await restartWith(dated(clock.t - 8 * 86_400_000));
    expect(week).toMatchObject({ appliances: 0, schedules: 1 });
    expect(week.again.learnedState().restored).toContain('range schedules: none of ours 8 days ago, listed again');
    expect(await restartWith(dated(undefined))).toMatchObject({ appliances: 0, schedules: 1 });
    expect(await restartWith(dated(clock.t - 6 * 86_400_000))).toMatchObject({ appliances: 0, schedules: 0 });
  });
});

describe('the daemon (a real process, dry-run scanner)', () => {
  it('writes what it learned when it stops, and reads it back when it starts again on the same state', async () => {
    const port = await freePort();
    const yaml = `${udpDaemonHead(port)}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }
scanner: { type: dry-run, scanDurationS: 1 }
`;
    const first = await startDaemon(yaml);
    let exit: number | null;
    try {
      await udpSend(port, 'dhcpd[1]: DHCPACK on 10.20.1.7 to 52:54:00:aa:bb:cc (laptop-7) via eth0');
      await first.waitFor((e) => /^scan \S+ finished on emea-sa-1: 1 of 1 target/.test(e.msg), 30_000);
    } finally {
      exit = await first.stop();
    }
    expect(exit).toBe(0);
    const db = openDatabaseReadOnly(join(first.dir, 'state.db'));
    const rows = db.prepare('SELECT name, state FROM learned_state ORDER BY name').all() as { name: string; state: string }[];
    db.close();
    expect(rows.map((r) => r.name)).toEqual(['address-churn', 'appliances', 'hosts-in-parallel', 'launch-order', 'learned-with', 'no-host', 'pace', 'polls', 'processing-lag', 'range-schedules', 'rejoins', 'scan-durations', 'scanner-clock']);
    expect(JSON.parse(rows.find((r) => r.name === 'scan-durations')!.state)).toHaveLength(1); // the scan that finished, written at stop

    const again = await startDaemon(yaml, {}, first.dir);
    try {
      const read = await again.waitFor((e) => e.msg.startsWith('what the scheduler learned before the restart is read back at start'), 15_000);
      expect(read.msg).toContain('1 scan duration(s)');
      expect(read.msg).toContain('slots of 1 appliance(s) (emea-sa-1: seen ');
    } finally {
      exit = await again.stop();
    }
    expect(exit).toBe(0);
  }, 90_000);
});
