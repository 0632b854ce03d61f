import { describe, expect, it as itAll } from 'vitest';
import { Rng } from '../src/sim/rng.js';
import type { Sighting } from '../src/sighting.js';
import type { BudgetPhase } from '../src/scheduler/core.js';
import { mac, setup as setupSqlite, setupOn, T0 } from './helpers/scheduler.js';
import { STORE_KINDS } from './helpers/stores.js';

/** Three scans of 10 minutes each, one after another: they teach the scheduler the duration. */
async function learnTenMinuteScans({ scanner, sched, see, clock }: Awaited<ReturnType<typeof setupOn>>): Promise<void> {
  for (let n = 1; n <= 3; n++) {
    await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 86400 });
    await sched.tick();
    clock.t += 10 * 60_000;
    scanner.finish(scanner.launches[n - 1].ref);
    await sched.tick();
  }
}

describe.each(STORE_KINDS)('scheduler on $name', (kind) => {
  if (kind.skip) console.log(`skip the scheduler on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;
  const setup = (...a: Parameters<typeof setupOn> extends [unknown, ...infer R] ? R : never) => setupOn(kind, ...a);
  it('launches at once when the region has room, on an online appliance, with the intent id in the title', async () => {
    const { scanner, sched, see, store } = await setup();
    await see({ ip: '10.20.1.7', mac: mac(1) });
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
    const l = scanner.launches[0];
    expect(l.targets).toEqual(['10.20.1.7']);
    expect(l.appliance).toBe('emea-1');
    expect(l.title).toContain(l.intentId);
    expect((await store.intent(l.intentId))?.state).toBe('running');
  });

  it('decisionPagesSince: the decision log since a time a page at a time, oldest first, the same as decisionsSince', async () => {
    const { store } = await setup();
    for (let k = 0; k < 5; k++) await store.decide({ at: T0 + k * 1000, ip: `10.20.1.${k}`, identityId: k % 2 ? k : undefined, decision: 'due', reason: `r${k}` });
    const pages = [];
    for await (const page of store.decisionPagesSince(T0 + 1000, 2)) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([2, 2]);
    expect(pages.flat()).toEqual(await store.decisionsSince(T0 + 1000));
    expect(pages.flat().map((d) => d.reason)).toEqual(['r1', 'r2', 'r3', 'r4']);
  });

  it('never scans outside scope or inside the exclusion list, whatever the log says', async () => {
    const { scanner, sched, see, store } = await setup();
    await see({ ip: '10.20.9.9', mac: mac(1) }); // excluded
    await see({ ip: '192.168.1.1', mac: mac(2) }); // out of scope
    await see({ ip: '10.99.0.1', mac: mac(3) }); // in scope but no region
    await sched.tick();
    expect(scanner.launches).toHaveLength(0);
    const reasons = (await store.recentDecisions(10)).map((d) => `${d.ip} ${d.reason.split(':')[0]}`);
    expect(reasons).toEqual(expect.arrayContaining(['10.20.9.9 excluded', '192.168.1.1 out-of-scope', '10.99.0.1 no-region']));
  });

  it('one scan per region at a time: due hosts accumulate and go out in one batch when room opens, most recently seen first', async () => {
    const { scanner, sched, see, clock } = await setup();
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 7200 });
    clock.t += 60_000;
    await see({ ip: '10.20.1.3', mac: mac(3), durationS: 600 });
    clock.t += 60_000;
    await see({ ip: '10.20.1.4', mac: mac(4), durationS: 3600 });
    clock.t += 60_000;
    await see({ ip: '10.20.1.5', mac: mac(5), durationS: 9000 });
    clock.t += 60_000;
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 7200, kind: 'renew' }); // seen again: moves up
    await sched.tick();
    expect(scanner.launches).toHaveLength(1); // region busy
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    // max 3; a laptop seen long ago may have left without a release: the freshest sightings go first
    expect(scanner.launches[1].targets).toEqual(['10.20.1.2', '10.20.1.5', '10.20.1.4']);
  });

  it('re-checks targets right before launch: a reassigned or departed address is dropped with a reason', async () => {
    const { scanner, sched, see, store, inv, clock } = await setup();
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick(); // region now busy
    await see({ ip: '10.20.1.2', mac: mac(2) });
    await see({ ip: '10.20.1.3', mac: mac(3) });
    // before room opens, 10.20.1.2 goes to another device and 10.20.1.3 is released
    await inv.commitBatch([{ kind: 'lease', ip: '10.20.1.2', mac: mac(9), at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't' }]);
    await inv.commitBatch([{ kind: 'release', ip: '10.20.1.3', mac: mac(3), at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't' }]);
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
    const dropped = (await store.recentDecisions(20)).filter((d) => d.decision === 'dropped').map((d) => `${d.ip}: ${d.reason}`);
    expect(dropped).toEqual(expect.arrayContaining([expect.stringMatching(/^10\.20\.1\.2: address reassigned/), expect.stringMatching(/^10\.20\.1\.3: device left/)]));
  });

  it('picks by real load: an appliance busy with someone else\'s scan is passed over; offline ones are never used', async () => {
    const { scanner, sched, see } = await setup();
    scanner.appliancesState[0] = { name: 'emea-1', online: true, runningScans: 1 }; // a GUI scan
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(scanner.launches[0].appliance).toBe('emea-2');

    const b = await setup();
    b.scanner.appliancesState[0] = { name: 'emea-1', online: false, runningScans: 0 };
    b.scanner.appliancesState[1] = { name: 'emea-2', online: false, runningScans: 0 };
    await b.see({ ip: '10.20.1.1', mac: mac(1) });
    await b.sched.tick();
    expect(b.scanner.launches).toHaveLength(0);
    b.scanner.appliancesState[1].online = true;
    b.clock.t += 301_000;
    await b.sched.tick();
    expect(b.scanner.launches).toHaveLength(0); // a list that showed no room is re-read half as often
    b.clock.t += 300_000;
    await b.sched.tick();
    expect(b.scanner.launches[0].appliance).toBe('emea-2');
  });

  it('finished scans record last-scanned; the device is not due again within rescanAfter', async () => {
    const { scanner, sched, see, inv, clock } = await setup();
    const r = await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    expect((await inv.binding(r.bindingId!))?.lastScannedAt).toBe(clock.t);
    await see({ ip: '10.20.1.1', mac: mac(1) }); // renewal
    await sched.sweep();
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
  });

  it('second look: a device\'s first scan in its window is looked at again when it is next seen (over 30 min after the scan), once, riding only in the room a scan for first scans leaves', async () => {
    const { scanner, sched, see, inv, clock, store } = await setup();
    const a = await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    const firstScan = (await inv.binding(a.bindingId!))!.lastScannedAt;
    expect(firstScan).toBe(clock.t);
    clock.t += 20 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' }); // 20 min after: the rejoin window (rejoin.ts), not a second look
    await sched.tick();
    expect(sched.counters.secondLooks).toBe(0);
    // the region is busy with another device's scan while the laptop comes back and three others arrive
    await see({ ip: '10.20.1.9', mac: mac(9) });
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    clock.t += 3 * 3600_000;
    for (const n of [2, 3, 4]) {
      await see({ ip: `10.20.1.${n}`, mac: mac(n) });
      clock.t += 1000;
    }
    clock.t += 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1) }); // back, hours later: the freshest sighting, yet it waits for the first scans
    expect(sched.counters.secondLooks).toBe(1);
    expect((await store.recentDecisions(20)).find((d) => d.ip === '10.20.1.1' && d.decision === 'due')?.reason).toMatch(/a second look: its scan ending .* was its first in the window/);
    scanner.finish(scanner.launches[1].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches[2].targets).toEqual(['10.20.1.4', '10.20.1.3', '10.20.1.2']); // max 3 a scan: the first scans
    scanner.finish(scanner.launches[2].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(3); // a second look alone launches nothing (no calls, no hold on the region of its own)
    expect((await store.allQueued()).filter((q) => q.intentId === undefined)).toEqual([]); // and waits out of the queue (no polls, no status counts for it)
    clock.t += 10 * 60_000;
    await see({ ip: '10.20.1.5', mac: mac(5) }); // a device due for its first scan: the second look rides in its scan
    await sched.tick();
    expect(scanner.launches[3].targets).toEqual(['10.20.1.5', '10.20.1.1']);
    scanner.finish(scanner.launches[3].ref);
    clock.t += 4 * 3600_000; // polled by the durations learned (the 3-hour scan among them)
    await sched.tick();
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeGreaterThan(firstScan!);
    // a second credit in the window ends it: seen again, not due
    clock.t += 5 * 3600_000;
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(scanner.launches).toHaveLength(4);
    expect(sched.counters.secondLooks).toBe(1);
  });

  it('second look: a restart does not forget who is owed one, nor whose scan a renewal at T1 showed whole (the credits are in the store)', async () => {
    const { scanner, sched, see, clock, store, restart } = await setup();
    await see({ ip: '10.20.1.1', mac: mac(1) }); // lease at T0: T1 at +30 min
    await see({ ip: '10.20.1.2', mac: mac(2) });
    await sched.tick();
    clock.t += 25 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    await sched.tick(); // both credited: their first scans in the window
    const credits = await store.scanCredits(0);
    expect(credits.map((c) => [c.identityId, c.whole, c.lease !== undefined]).sort()).toEqual([[1, false, true], [2, false, true]]);
    clock.t += 5 * 60_000;
    await see({ ip: '10.20.1.2', mac: mac(2), kind: 'renew' }); // T1 after the scan: it stayed, the result is whole
    expect(sched.counters.secondLooks).toBe(0);
    const again = restart();
    clock.t += 2 * 3600_000;
    await see({ ip: '10.20.1.1', mac: mac(1) }); // seen again after the restart: still owed its look
    await see({ ip: '10.20.1.2', mac: mac(2) }); // known whole before the restart: none owed
    expect(again.counters.secondLooks).toBe(1);
    expect((await store.recentDecisions(5)).find((d) => d.ip === '10.20.1.1' && d.decision === 'due')?.reason).toMatch(/a second look/);
    // the store is what carried it: without the credits a restarted scheduler owes nobody a look
    await store.pruneScanCredits(Number.MAX_SAFE_INTEGER);
    const forgot = restart();
    clock.t += 3600_000;
    await see({ ip: '10.20.1.1', mac: mac(1) });
    expect(forgot.counters.secondLooks).toBe(0);
  });

  it('second look: an operator\'s rescan of a device owed a second look launches at once (the mark is applied first)', async () => {
    const { scanner, sched, see, clock, store } = await setup();
    const a = await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick(); // credited: the first scan in the window
    clock.t += 2 * 3600_000;
    await see({ ip: '10.20.1.1', mac: mac(1) }); // seen again, not at T1: owed a second look
    await sched.tick();
    expect(scanner.launches).toHaveLength(1); // a lone second look: no launch (as designed)
    await store.requestRescan([a.identityId!], clock.t); // `onsight rescan`
    clock.t += 1000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
  });

  it('second look: devices due for their first scan launch whatever the number of fresher second looks waiting (they are not in the queue)', async () => {
    const { scanner, sched, see, clock } = await setup(); // maxTargetsPerScan 3: candidates = ready(…, 6)
    for (let n = 1; n <= 6; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n) });
    await sched.tick();
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    scanner.finish(scanner.launches[1].ref);
    clock.t += 4 * 3600_000; // polled by the durations learned
    await sched.tick(); // all six credited
    expect(scanner.launches).toHaveLength(2);
    clock.t += 2 * 3600_000;
    await see({ ip: '10.20.1.50', mac: mac(50) }); // due for its first scan
    for (let n = 1; n <= 6; n++) {
      clock.t += 1000;
      await see({ ip: `10.20.1.${n}`, mac: mac(n) }); // seen again after it: six second looks, fresher
    }
    await sched.tick();
    expect(sched.counters.secondLooks).toBe(6);
    expect(scanner.launches).toHaveLength(3);
    expect(scanner.launches[2].targets).toEqual(['10.20.1.50', '10.20.1.6', '10.20.1.5']); // and the freshest second looks ride in its room (3 a scan)
  });

  it('second look: a DHCP renewal at T1 after the scan, even within 30 min of its end, says the device stayed: none owed', async () => {
    const { scanner, sched, see, clock } = await setup(); // verifyResults false; leases of 1 h: T1 at +30 min
    await see({ ip: '10.20.1.1', mac: mac(1) }); // lease granted at T0
    await sched.tick();
    clock.t += 25 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    await sched.tick(); // credited ~T0+25 min (a poll right after the end)
    clock.t += 5 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' }); // T0+30 min: T1, on schedule (within 30 min of the end)
    clock.t += 30 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' }); // T0+60 min: T1 of the renewed lease
    expect(sched.counters.secondLooks).toBe(0);
    clock.t += 2 * 3600_000;
    await see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' }); // and a later return is no reason either
    expect(sched.counters.secondLooks).toBe(0);
  });

  it('second look: under a scarce allowance too (it costs no call of its own); none when switched off (scheduler.secondLook: false)', async () => {
    for (const variant of ['scarce', 'off'] as const) {
      const { scanner, sched, see, inv, clock } = await setup({ maxTargetsPerScan: 10, ...(variant === 'off' ? { secondLook: false } : {}) });
      if (variant === 'scarce') scanner.limit = { limit: 50, windowSec: 86_400 };
      for (let n = 1; n <= 10; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n) }); // a wave (a scarce allowance's launch waits for one)
      await sched.tick();
      expect(scanner.launches).toHaveLength(1);
      scanner.finish(scanner.launches[0].ref);
      clock.t += 61_000;
      await sched.tick();
      expect((await inv.binding((await see({ ip: '10.20.1.1', mac: mac(1) })).bindingId!))!.lastScannedAt).toBeDefined();
      clock.t += 3 * 3600_000;
      await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86_400 });
      await sched.sweep();
      clock.t += 3600_000;
      await sched.tick();
      expect(scanner.launches, variant).toHaveLength(1); // a look alone launches nothing, scarce or not
      expect(sched.counters.secondLooks, variant).toBe(variant === 'off' ? 0 : 1);
      if (variant === 'off') continue;
      // it rides in the next wave launched for first scans
      for (let n = 11; n <= 19; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n) });
      clock.t += 31 * 60_000; // a scarce allowance's launch waits up to 30 min for a wave
      await sched.tick();
      expect(scanner.launches).toHaveLength(2);
      expect(scanner.launches[1].targets).toContain('10.20.1.1');
      expect(scanner.launches[1].targets).toHaveLength(10);
    }
  });

  it('one clock per question: a scanner clock 2 h ahead neither dates a scan in our future nor teaches a 2-hour duration', async () => {
    const { scanner, sched, see, inv, clock } = await setup({ idlePollS: 60 });
    const r = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    const launchedLocal = clock.t;
    const ahead = 2 * 3600_000;
    // the scanner says: launched at its 12:00 (our 10:00), ended 20 minutes later
    scanner.times.set(scanner.launches[0].ref, { launchedAt: new Date(launchedLocal + ahead).toISOString(), endedAt: new Date(launchedLocal + ahead + 20 * 60_000).toISOString() });
    clock.t += 25 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    await sched.tick();
    expect((await inv.binding(r.bindingId!))?.lastScannedAt).toBe(launchedLocal + 20 * 60_000);
    expect((await inv.binding(r.bindingId!))!.lastScannedAt!).toBeLessThanOrEqual(clock.t);
  });

  it('failed scans requeue with backoff and give up after maxAttempts', async () => {
    const { scanner, sched, see, clock, store } = await setup({ maxAttempts: 2, retryBackoffS: 100, idlePollS: 60 });
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    scanner.finish(scanner.launches[0].ref, 'error');
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(1); // backing off
    clock.t += 101_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    scanner.finish(scanner.launches[1].ref, 'error');
    clock.t += 61_000;
    await sched.tick();
    expect(await store.allQueued()).toHaveLength(0);
    expect((await store.recentDecisions(5))[0]).toMatchObject({ decision: 'failed' });
  });

  it('a launch refused by the API is retried later; a launch whose answer was lost is reconciled, never launched twice', async () => {
    const { scanner, sched, see, clock, store } = await setup({ reconcileGraceS: 1, retryBackoffS: 10 });
    scanner.failNext = 'refused';
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(scanner.launches).toHaveLength(0);
    clock.t += 11_000;
    scanner.failNext = 'lost-answer';
    await sched.tick();
    expect(scanner.launches).toHaveLength(1); // created, but we never heard back
    const pending = await store.activeIntents();
    expect(pending[0].state).toBe('launching');
    clock.t += 2000;
    await sched.tick();
    expect(await store.intent(pending[0].id)).toMatchObject({ state: 'running', scanRef: scanner.launches[0].ref });
    expect(scanner.launches).toHaveLength(1);
  });

  it('scan windows: due hosts wait for the window to open', async () => {
    const { scanner, sched, see, clock, store } = await setup({}, { scanWindows: ['* 12:00-13:00'] });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 4 * 3600 });
    await sched.tick();
    expect(scanner.launches).toHaveLength(0);
    expect((await store.recentDecisions(1))[0].reason).toMatch(/^outside-scan-window/);
    clock.t = Date.parse('2026-11-23T12:00:30Z');
    await sched.sweep();
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
  });

  it('the sweep re-evaluates a binding when its rescan window runs out, without re-reading everyone present', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ fullSweepS: 1e9 });
    const r = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 90 * 86400 });
    await sched.tick();
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    const scannedAt = (await inv.binding(r.bindingId!))!.lastScannedAt!;
    await sched.sweep(); // the first sweep is a full pass; the later ones take only what is planned
    // due a lead before the 30-day window runs out (a seventh of it, at most a day): at 29 days
    clock.t = scannedAt + 29 * 86400_000 - 1000;
    expect(await sched.sweep()).toBe(0);
    clock.t += 2000;
    expect(await sched.sweep()).toBe(1); // due again
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
  });

  it('the sweep wakes the bindings waiting for a scan window when the window opens, and only then', async () => {
    const { scanner, sched, see, clock } = await setup({ fullSweepS: 1e9 }, { scanWindows: ['* 12:00-13:00'] });
    await sched.sweep();
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    clock.t = Date.parse('2026-11-23T11:59:00Z');
    expect(await sched.sweep()).toBe(0);
    clock.t = Date.parse('2026-11-23T12:00:00Z');
    expect(await sched.sweep()).toBe(2);
    await sched.tick();
    expect(scanner.launches[0].targets).toEqual(['10.20.1.1', '10.20.1.2']);
  });

  it('a last-scan date of an address is not credited to a device when another device held the address then', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ lastScannedFromScanner: true });
    const old = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 600 });
    await sched.tick(); // mac 1 is scanned at 10.20.1.1 ...
    scanner.finish(scanner.launches[0].ref);
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t + 60_000).toISOString());
    clock.t += 120_000;
    await sched.tick();
    clock.t += 3600_000;
    const neu = await see({ ip: '10.20.1.1', mac: mac(2), durationS: 86400 }); // ... then the address goes to mac 2
    await sched.tick();
    expect((await inv.binding(neu.bindingId!))!.lastScannedAt).toBeUndefined();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1'], ['10.20.1.1']]);
    void old;
  });

  it('asks the scanner for last-scan dates when configured: a device scanned elsewhere is skipped', async () => {
    const { scanner, sched, see, store, clock } = await setup({ lastScannedFromScanner: true });
    // (seen since before the date: a date from before a device held the address is not its scan)
    clock.t = T0 - 2 * 86400_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 7 * 86400 });
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 7 * 86400 });
    clock.t = T0;
    scanner.lastScannedDates.set('10.20.1.1', new Date(T0 - 86400_000).toISOString());
    await sched.tick();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.2']]);
    expect((await store.recentDecisions(10)).find((d) => d.ip === '10.20.1.1' && d.decision === 'dropped')?.reason).toMatch(/scanned-recently/);
  });

  it('with a scarce allowance, a launch whose last-scan check spent the calls it needed waits (the check is a call per batch)', async () => {
    const launched: Record<string, number> = {};
    for (const drained of [15, 20]) {
      const { scanner, sched, see } = await setup({ lastScannedFromScanner: true });
      (scanner as unknown as { hostListBatchSize: number }).hostListBatchSize = 2; // a launch's six candidates: three calls
      await sched.tick();
      // 100 calls a day: the pace holds 25 (a changed limit starts full)
      scanner.limit = { limit: 100, windowSec: 86_400 };
      const budget = (sched as unknown as { core: { budget: { canSpend(e: boolean): boolean; spentExtra(n: number): void } } }).core.budget;
      budget.canSpend(true);
      budget.spentExtra(drained);
      for (let n = 1; n <= 10; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n) }); // a wave (a scarce allowance's launch waits for one)
      const before = scanner.calls.length;
      await sched.tick();
      expect(scanner.calls.slice(before).filter((c) => c === 'lastScanned'), `drained ${drained}`).toHaveLength(1);
      launched[`${25 - drained} left`] = scanner.launches.length;
    }
    // after the appliance list (1) and the check (3): 10 left gives 6, a scan's worth (3) and more; 5 left gives 1, and the launch waits
    expect(launched).toEqual({ '10 left': 1, '5 left': 0 });
  });

  it('cancels a running scan when every target left, if configured', async () => {
    const { scanner, sched, see, inv, clock } = await setup({ cancelWhenAllLeft: true });
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    await inv.commitBatch([{ kind: 'release', ip: '10.20.1.1', mac: mac(1), at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't' }]);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.calls).toContain('cancel');
    expect(scanner.states.get(scanner.launches[0].ref)).toBe('canceled');
  });

  it('after a cancel, the region takes no scan until the appliance has surely heard of it: its listed polling interval when longer than cancelDrainS', async () => {
    const { scanner, sched, see, inv, clock } = await setup({ cancelWhenAllLeft: true });
    // both emea appliances ask the platform for work every 10 min (Qualys POLLING_INTERVAL)
    scanner.appliancesState = scanner.appliancesState.map((a) => ({ ...a, pollIntervalS: 600 }));
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
    await inv.commitBatch([{ kind: 'release', ip: '10.20.1.1', mac: mac(1), at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't' }]);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.states.get(scanner.launches[0].ref)).toBe('canceled');
    const canceledAt = clock.t;
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    while (scanner.launches.length === 1 && clock.t < canceledAt + 20 * 60_000) {
      clock.t += 10_000;
      await sched.tick();
    }
    // not within the default cancelDrainS (200 s): the canceled scan may probe on until the appliance's next poll
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1'], ['10.20.1.2']]);
    expect(clock.t - canceledAt).toBeGreaterThanOrEqual(600_000);
    expect(clock.t - canceledAt).toBeLessThanOrEqual(660_000);
  });

  it('polls only when queued work waits for a running scan that has likely ended, by the durations it has learned', async () => {
    const ctx = await setup({ pollIntervalS: 60, idlePollS: 1800 });
    const { scanner, sched, see, clock } = ctx;
    const lists = () => scanner.calls.filter((c) => c === 'list').length;
    await learnTenMinuteScans(ctx);
    // nothing waits: no call before the scan can have ended; one when it has likely ended (so
    // `onsight scans` shows the end soon after it); a scan running long past every learned
    // duration is then followed only every idlePollS
    await see({ ip: '10.20.1.9', mac: mac(9), durationS: 86400 });
    await sched.tick();
    let before = lists();
    const callsAt: number[] = [];
    for (let m = 1; m <= 40; m++) {
      clock.t += 60_000;
      const n = lists();
      await sched.tick();
      if (lists() > n) callsAt.push(m);
    }
    expect(callsAt[0]).toBeGreaterThanOrEqual(9); // not before a 10-minute scan could have ended
    expect(callsAt[0]).toBeLessThanOrEqual(12);
    expect(callsAt).toHaveLength(2); // the likely end, then the idle call 30 minutes later
    expect(callsAt[1] - callsAt[0]).toBe(30);
    scanner.finish(scanner.launches[3].ref);
    before = lists();
    clock.t += 60_000;
    await sched.tick();
    expect(lists()).toBe(before); // past every learned duration: it waits for the idle call
    clock.t += 30 * 60_000;
    await sched.tick();
    expect(lists()).toBe(before + 1); // the idle call records the result
    // now a host waits for the region: no call before a scan could have ended (10 minutes), then one
    await see({ ip: '10.20.1.10', mac: mac(10), durationS: 86400 });
    await sched.tick();
    await see({ ip: '10.20.1.11', mac: mac(11), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches).toHaveLength(5);
    before = lists();
    for (let m = 1; m <= 9; m++) {
      clock.t += 60_000;
      await sched.tick();
    }
    expect(lists()).toBe(before); // the interval alone would have made 9 calls
    scanner.finish(scanner.launches[4].ref);
    clock.t += 60_000;
    await sched.tick();
    expect(lists()).toBe(before + 1);
    expect(scanner.launches).toHaveLength(6); // the waiting host went out at once
  });

  it('a scan that runs on for hours while work waits for its region is looked up less often the longer it runs, learned durations or not', async () => {
    for (const learn of [false, true]) {
      const ctx = await setup({ pollIntervalS: 60, idlePollS: 3600 });
      const { scanner, sched, see, clock } = ctx;
      const lists = () => scanner.calls.filter((c) => c === 'list').length;
      if (learn) await learnTenMinuteScans(ctx);
      const first = scanner.launches.length;
      await see({ ip: '10.20.1.20', mac: mac(20), durationS: 86400 });
      await sched.tick();
      expect(scanner.launches).toHaveLength(first + 1);
      await see({ ip: '10.20.1.21', mac: mac(21), durationS: 86400 }); // waits: one scan per region
      await sched.tick();
      const perHour: number[] = [];
      for (let h = 0; h < 4; h++) {
        const before = lists();
        for (let m = 0; m < 60; m++) {
          clock.t += 60_000;
          await sched.tick();
        }
        perHour.push(lists() - before);
      }
      expect(scanner.launches, `learned ${learn}`).toHaveLength(first + 1);
      // (a call a minute while work waits made 60 an hour, 240 in all, before session 35)
      expect(perHour[3], `learned ${learn}: ${perHour}`).toBeLessThanOrEqual(3);
      expect(perHour[3], `learned ${learn}: ${perHour}`).toBeGreaterThanOrEqual(1); // never more than idlePollS apart
      expect(perHour[0], `learned ${learn}: ${perHour}`).toBeGreaterThan(perHour[3]);
      expect(perHour.reduce((a, b) => a + b), `learned ${learn}: ${perHour}`).toBeLessThanOrEqual(30);
      // it ends: the waiting host goes out at the next look-up, within the hour
      scanner.finish(scanner.launches[first].ref);
      const endedAt = clock.t;
      while (scanner.launches.length === first + 1 && clock.t < endedAt + 3 * 3600_000) {
        clock.t += 60_000;
        await sched.tick();
      }
      expect(scanner.launches).toHaveLength(first + 2);
      expect(clock.t - endedAt).toBeLessThanOrEqual(3600_000);
    }
  });

  it('a target address that changes hands before the appliance can have started cancels the scan and relaunches the others', async () => {
    const { scanner, sched, see, clock, store } = await setup({ pickupS: 360 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches[0].targets).toEqual(['10.20.1.1', '10.20.1.2']);
    clock.t += 120_000;
    await see({ ip: '10.20.1.1', mac: mac(9), durationS: 86400 }); // 10.20.1.1 went to another laptop
    await sched.tick();
    expect(scanner.states.get(scanner.launches[0].ref)).toBe('canceled');
    expect(await store.intent(scanner.launches[0].intentId)).toMatchObject({ state: 'canceled', error: expect.stringMatching(/10\.20\.1\.1 now held by mac:/) });
    // relaunched once the appliance has surely heard of the cancel (it probes on until its next
    // contact: cancelDrainS): the device that stayed, and the new holder (a device of its own, due too)
    expect(scanner.launches).toHaveLength(1);
    clock.t += 201_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    expect([...scanner.launches[1].targets].sort()).toEqual(['10.20.1.1', '10.20.1.2']);
    expect(sched.counters.canceledReassigned).toBe(1);
    // later than pickupS the scan has most likely reached its targets: it runs on
    clock.t += 400_000;
    await see({ ip: '10.20.1.2', mac: mac(8), durationS: 86400 });
    await sched.tick();
    expect(scanner.states.get(scanner.launches[1].ref)).toBe('running');
    expect(sched.counters.canceledReassigned).toBe(1);
  });

  it('a scan that ended before its cancel reached the scanner is not taken for canceled: the poll records its end, the target that stayed is credited', async () => {
    const { scanner, sched, see, clock, store } = await setup({ pickupS: 360 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    const l = scanner.launches[0];
    clock.t += 120_000;
    scanner.finish(l.ref); // it ended; no poll has seen it yet
    scanner.lastScannedDates.set('10.20.1.2', new Date(clock.t - 1000).toISOString());
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t - 1000).toISOString());
    await see({ ip: '10.20.1.1', mac: mac(9), durationS: 86400 }); // 10.20.1.1 went to another laptop
    for (let k = 0; k < 5; k++) {
      await sched.tick();
      clock.t += 30_000;
    }
    expect(scanner.calls).toContain('cancel'); // it tried, and the scanner said the scan had ended
    expect(scanner.states.get(l.ref)).toBe('finished');
    expect((await store.intent(l.intentId))?.state).toBe('finished');
    expect(sched.counters.canceledReassigned).toBe(0);
    const scanned = (await store.recentDecisions(100)).filter((d) => d.decision === 'scanned').map((d) => d.ip);
    expect(scanned).toContain('10.20.1.2');
  });

  it('a reassignment cancel the scanner refuses while the scan goes on (Rapid7: a scan still dispatched) is tried again until it lands', async () => {
    const { scanner, sched, see, clock, store } = await setup({ pickupS: 360 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    const l = scanner.launches[0];
    scanner.failing.set('cancel', 'refused'); // the console refuses to stop it (still dispatched)
    clock.t += 60_000;
    await see({ ip: '10.20.1.1', mac: mac(9), durationS: 86400 }); // 10.20.1.1 went to another laptop
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'cancel')).toHaveLength(1);
    expect(scanner.states.get(l.ref)).toBe('running');
    clock.t += 10_000;
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'cancel')).toHaveLength(1); // not each pass
    scanner.failing.delete('cancel'); // it started: now it can be stopped
    clock.t += 25_000;
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'cancel')).toHaveLength(2);
    expect(scanner.states.get(l.ref)).toBe('canceled');
    expect((await store.intent(l.intentId))?.state).toBe('canceled');
    expect(sched.counters.canceledReassigned).toBe(1);
  });

  it('VPN targets go first in a batch (their pool hands a freed address out again at once)', async () => {
    const { scanner, sched, see } = await setup({ maxTargetsPerScan: 5 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 600 });
    await see({ ip: '10.20.7.1', kind: 'tunnel-up', user: 'alice', durationS: undefined });
    await sched.tick();
    expect(scanner.launches[0].targets).toEqual(['10.20.7.1', '10.20.1.1']);
  });

  it('verifyResults: a scan whose results are not processed yet (no target dated) is not judged "no host"; it is once a sibling is dated, or after processingWaitS', async () => {
    const { scanner, sched, see, clock, inv, store } = await setup({ verifyResults: true, verifyDelayS: 600, idlePollS: 60, processingWaitS: 7200 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    const b = await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    clock.t += 20 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    await sched.tick();
    clock.t += 601_000;
    await sched.tick(); // host list read: nothing dated yet (the scanner is still processing)
    expect(scanner.calls.filter((c) => c === 'lastScanned')).toHaveLength(1);
    expect(sched.counters.noHost).toBe(0);
    expect((await store.recentDecisions(10)).some((d) => /found no host/.test(d.reason))).toBe(false);
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t).toISOString()); // processed now: .1 found, .2 not
    clock.t += 601_000;
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'lastScanned')).toHaveLength(2);
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeDefined();
    expect((await inv.binding(b.bindingId!))!.lastScannedAt).toBeUndefined();
    expect(sched.counters.noHost).toBe(1); // the sibling's date shows the scan was processed
    // a scan never processed: judged after processingWaitS
    await see({ ip: '10.20.1.3', mac: mac(3), durationS: 86400 });
    await sched.tick();
    const second = scanner.launches.at(-1)!;
    clock.t += 20 * 60_000;
    scanner.finish(second.ref);
    const endedAt = clock.t;
    await sched.tick();
    for (let k = 0; k < 20 && sched.counters.noHost === 1; k++) {
      clock.t += 601_000;
      await sched.tick();
    }
    expect(sched.counters.noHost).toBe(2);
    expect(clock.t - endedAt).toBeGreaterThanOrEqual(7200_000); // not judged before processingWaitS
    expect(clock.t - endedAt).toBeLessThan(7200_000 + 2 * 601_000);
  });

  it('verifyResults: a DHCP client that rejoins (a request well before T1) while its scan runs is not credited and goes out again; one that renews at T1 is credited', async () => {
    const { scanner, sched, see, clock, inv, store } = await setup({ verifyResults: true, verifyDelayS: 600, idlePollS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 7200 }); // Wi-Fi laptop: drops off mid-scan and rejoins
    const b = await see({ ip: '10.20.1.2', mac: mac(2), durationS: 7200 }); // stays: renews at T1 (an hour after its ACK)
    await sched.tick();
    const first = scanner.launches[0];
    expect(first.targets).toEqual(['10.20.1.1', '10.20.1.2']);
    clock.t += 12 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 7200, kind: 'renew' }); // INIT-REBOOT 12 min after the ACK
    clock.t += 8 * 60_000;
    scanner.finish(first.ref);
    await sched.tick();
    clock.t += 40 * 60_000;
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 7200, kind: 'renew' }); // T1: 60 min after its ACK, after the scan ended
    // the host list dates both addresses (the scanner found a host at each when its probe started)
    for (const ip of first.targets) scanner.lastScannedDates.set(ip, new Date(clock.t).toISOString());
    clock.t += 601_000;
    await sched.tick();
    expect((await inv.binding(b.bindingId!))!.lastScannedAt).toBeDefined();
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeUndefined();
    expect(sched.counters.rejoined).toBe(1);
    expect((await store.recentDecisions(20)).find((d) => d.ip === '10.20.1.1' && d.decision === 'not-scanned')?.reason).toMatch(/rejoined the network/);
    // due again: the next sweep queues it and it goes out in a new scan
    await sched.sweep();
    await sched.tick();
    expect(scanner.launches.at(-1)!.targets).toEqual(['10.20.1.1']);
  });

  it('verifyResults: a rejoin during the scan is remembered when the client asks again later, before the result is confirmed (its last request alone would hide it)', async () => {
    const { scanner, sched, see, clock, inv, store } = await setup({ verifyResults: true, verifyDelayS: 3600, idlePollS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 7200 });
    await sched.tick();
    const first = scanner.launches[0];
    clock.t += 12 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 7200, kind: 'renew' }); // INIT-REBOOT mid-scan
    clock.t += 8 * 60_000;
    scanner.finish(first.ref);
    await sched.tick();
    clock.t += 35 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 7200, kind: 'renew' }); // another drop, 35 min after the end
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t).toISOString());
    clock.t += 3601_000; // the result is confirmed an hour after the scan
    await sched.tick();
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeUndefined();
    expect(sched.counters.rejoined).toBe(1);
    expect((await store.recentDecisions(20)).find((d) => d.ip === '10.20.1.1' && d.decision === 'not-scanned')?.reason).toMatch(/rejoined the network at 2026-11-23T10:12/);
  });

  it('verifyResults: a finished scan is recorded per target from the scanner\'s host list; an address with no host is not probed again until the device is seen again', async () => {
    const { scanner, sched, see, clock, inv, store } = await setup({ verifyResults: true, verifyDelayS: 600, idlePollS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    const b = await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 }); // this laptop left without a release
    await sched.tick();
    clock.t += 20 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t).toISOString());
    await sched.tick(); // the poll sees it finished; the result waits to be confirmed with others'
    expect(scanner.calls.filter((c) => c === 'lastScanned')).toHaveLength(0);
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeUndefined();
    expect(await store.activeIntents()).toHaveLength(0); // the region is free meanwhile
    clock.t += 601_000;
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'lastScanned')).toHaveLength(1);
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeDefined();
    expect((await inv.binding(b.bindingId!))!.lastScannedAt).toBeUndefined();
    expect((await store.recentDecisions(10)).find((d) => d.ip === '10.20.1.2')).toMatchObject({ decision: 'not-scanned', reason: expect.stringMatching(/found no host/) });
    expect(sched.counters.noHost).toBe(1);
    // the lease still runs, but the address is not probed again...
    await sched.sweep();
    clock.t += 3600_000;
    await sched.sweep();
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
    // ...until the laptop is seen again (a renewal)
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    expect(scanner.launches[1].targets).toEqual(['10.20.1.2']);
  });

  it('an address that changed hands while its scan ran, too late for a cancel, is a possible wrong host: counted, logged, not recorded as scanned', async () => {
    const { scanner, sched, see, clock, inv, store } = await setup({ idlePollS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    const stays = await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1', '10.20.1.2']]);
    clock.t += 18 * 60_000;
    await sched.tick(); // running, long past the targets' place in the scan: no cancel for what follows
    await see({ ip: '10.20.1.1', mac: mac(1), kind: 'release' });
    clock.t += 60_000;
    await see({ ip: '10.20.1.1', mac: mac(9), durationS: 86400 }); // the address goes to another laptop during the scan
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'cancel')).toHaveLength(0);
    clock.t += 2 * 60_000;
    scanner.finish(scanner.launches[0].ref);
    await sched.tick();
    expect(sched.counters.otherHolder).toBe(1);
    expect((await inv.binding(a.bindingId!))!.lastScannedAt).toBeUndefined();
    expect((await inv.binding(stays.bindingId!))!.lastScannedAt).toBeDefined();
    expect((await store.recentDecisions(20)).find((d) => d.ip === '10.20.1.1' && d.identityId === a.identityId && d.decision === 'not-scanned')?.reason).toMatch(/left the address before scan .* ended; another device held it during the scan, which may have probed that device \(wrong host\)/);
    // a device that left with nobody after it is not counted
    const b = await see({ ip: '10.20.1.3', mac: mac(3), durationS: 86400 });
    for (let k = 0; k < 5 && !scanner.launches.at(-1)!.targets.includes('10.20.1.3'); k++) {
      scanner.finish(scanner.launches.at(-1)!.ref); // the new holder's own scan first (a region runs one at a time)
      clock.t += 10 * 60_000;
      await sched.tick();
    }
    const second = scanner.launches.at(-1)!;
    expect(second.targets).toContain('10.20.1.3');
    clock.t += 18 * 60_000;
    await sched.tick();
    await see({ ip: '10.20.1.3', mac: mac(3), kind: 'release' });
    clock.t += 3 * 60_000;
    scanner.finish(second.ref);
    await sched.tick();
    expect((await store.recentDecisions(40)).find((d) => d.ip === '10.20.1.3' && d.identityId === b.identityId && d.decision === 'not-scanned')?.reason).toMatch(/^left the address before scan \S+ ended$/);
    expect(sched.counters.otherHolder).toBe(1);
  });

  it('reads the appliance list less often while others\' load and online states stay the same', async () => {
    const { scanner, sched, see, clock } = await setup({ applianceRefreshS: 300, idlePollS: 60 });
    const reads = () => scanner.calls.filter((c) => c === 'appliances').length;
    for (let n = 1; n <= 4; n++) {
      await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 86400 });
      await sched.tick();
      scanner.finish(scanner.launches[n - 1].ref);
      clock.t += 301_000;
      await sched.tick();
    }
    // launches every 5 minutes: read at 0 and 5 minutes; unchanged, so the next read waits 10 minutes
    expect(scanner.launches).toHaveLength(4);
    expect(reads()).toBe(3);
    scanner.appliancesState[0].runningScans = 1; // someone else's scan shows up on emea-1
    clock.t += 20 * 60_000; // unchanged three times: the next read waits 20 minutes
    await see({ ip: '10.20.1.9', mac: mac(9), durationS: 86400 });
    await sched.tick();
    expect(reads()).toBe(4);
    expect(scanner.launches[4].appliance).toBe('emea-2');
    // it changed: back to every 5 minutes
    scanner.finish(scanner.launches[4].ref);
    clock.t += 301_000;
    await sched.tick();
    await see({ ip: '10.20.1.10', mac: mac(10), durationS: 86400 });
    await sched.tick();
    expect(reads()).toBe(5);
  });

  it('a canceled scan\'s targets the scanner already scanned are recorded, not relaunched (verifyResults)', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ pickupS: 360, verifyResults: true });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    const done = await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await see({ ip: '10.20.1.3', mac: mac(3), durationS: 86400 });
    await sched.tick();
    clock.t += 120_000;
    scanner.lastScannedDates.set('10.20.1.2', new Date(clock.t - 30_000).toISOString()); // reached before the cancel
    await see({ ip: '10.20.1.1', mac: mac(9), durationS: 86400 });
    await sched.tick();
    expect(scanner.states.get(scanner.launches[0].ref)).toBe('canceled');
    expect((await inv.binding(done.bindingId!))!.lastScannedAt).toBe(clock.t);
    clock.t += 201_000; // the canceled scan's appliance has heard of it (cancelDrainS)
    await sched.tick();
    expect([...scanner.launches[1].targets].sort()).toEqual(['10.20.1.1', '10.20.1.3']); // the new holder of .1, and .3
  });

  it('a scan that has not started long after launch, behind others on a full appliance, is canceled and relaunched where there is room', async () => {
    const { scanner, sched, see, clock, store } = await setup({ pickupS: 360, idlePollS: 60 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    expect(scanner.launches[0].appliance).toBe('emea-1');
    scanner.states.set(scanner.launches[0].ref, 'queued');
    scanner.appliancesState[0].runningScans = 3; // others' nightly scans filled emea-1 after our launch
    clock.t += 5 * 60_000;
    await sched.tick();
    expect(scanner.calls).not.toContain('cancel'); // 5 minutes: still within the pickup time
    clock.t += 8 * 60_000;
    await sched.tick();
    expect(scanner.states.get(scanner.launches[0].ref)).toBe('canceled');
    expect(await store.intent(scanner.launches[0].intentId)).toMatchObject({ state: 'canceled', error: expect.stringMatching(/still waiting for emea-1 13 min after launch \(load 4\/3\)/) }); // 3 others' ran while ours waited: it runs 3
    expect(scanner.launches[1]).toMatchObject({ appliance: 'emea-2', targets: ['10.20.1.1'] });
    expect(sched.counters.requeuedStuck).toBe(1);
    expect((await store.recentDecisions(10)).some((d) => d.ip === '10.20.1.1' && d.decision === 'canceled' && /scan canceled before it started: still waiting for emea-1/.test(d.reason))).toBe(true);
    // a scan that had started and waits again (its appliance went offline) keeps its progress
    scanner.states.set(scanner.launches[1].ref, 'running');
    clock.t += 60_000;
    await sched.tick();
    scanner.states.set(scanner.launches[1].ref, 'queued');
    scanner.appliancesState[1].online = false;
    clock.t += 15 * 60_000;
    await sched.tick();
    expect(scanner.states.get(scanner.launches[1].ref)).toBe('queued');
    expect(sched.counters.requeuedStuck).toBe(1);
  });
});

describe('scheduler: batch size and API pace', () => {
  itAll('a region\'s backlog goes out in one scan, up to the scanner\'s maxTargetsPerLaunch (its queue, not maxTargetsPerScan, sets the size)', async () => {
    const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 3, maxTargetsPerLaunch: 6 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick(); // the region is busy with this one
    // settled targets (week-long leases: servers, docked laptops)
    for (let n = 2; n <= 9; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 7 * 86400 });
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches[1].targets).toHaveLength(6); // 8 wait: one scan of the most the client takes
    scanner.finish(scanner.launches[1].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches[2].targets).toHaveLength(2);
  });

  itAll('transient targets (a Wi-Fi lease of hours) keep to scans of maxTargetsPerScan: a long scan would reach them after their address may have changed hands', async () => {
    const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 3, maxTargetsPerLaunch: 6 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
    await sched.tick();
    for (let n = 2; n <= 9; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 43200 });
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches[1].targets).toHaveLength(3);
  });

  itAll('transient targets fill one wave (hostsInParallel) of a scan, settled ones the rest: after pickup every transient target has been reached, so no cancel need throw the scan away', async () => {
    const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 10, hostsInParallel: 2 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
    await sched.tick(); // the region is busy with this one
    for (let n = 2; n <= 5; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 43200 }); // Wi-Fi: transient
    for (let n = 6; n <= 8; n++) await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 7 * 86400 }); // docked: settled
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    const first = scanner.launches[1].targets;
    expect(first.filter((ip) => Number(ip.split('.')[3]) <= 5)).toHaveLength(2);
    expect(first.filter((ip) => Number(ip.split('.')[3]) >= 6)).toHaveLength(3);
    scanner.finish(scanner.launches[1].ref);
    clock.t += 61_000;
    await sched.tick();
    expect(scanner.launches[2].targets).toHaveLength(2); // the other two transient ones
  });

  /** the host times' generator (the estimator needs a few hundred scans: with 300 it learns 6–8 on each of seeds 1–6) */
  const SEED = 1;
  itAll('an appliance that scans more hosts at once than configured: learned from how long larger scans take, transient targets then fill the larger wave (parallelism.ts)', async () => {
    const run = async (learnHostsInParallel: boolean) => {
      const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 12, hostsInParallel: 2, learnHostsInParallel, idlePollS: 60 });
      // the appliance's truth: 8 hosts at once, greedy; host times lognormal (median 12 min, σ 0.5), 8 min of overhead
      const rng = new Rng(SEED);
      const hostMin = () => rng.logNormal(12, 0.5);
      const durationMin = (n: number) => {
        const places = new Array(Math.min(n, 8)).fill(0);
        for (let i = 0; i < n; i++) places[places.indexOf(Math.min(...places))] += hostMin();
        return 8 + Math.max(...places);
      };
      let host = 0;
      for (let k = 0; k < 300; k++) {
        // small scans of transient targets (one wave of the configured 2), larger ones of settled targets (docked laptops)
        const small = k % 3 !== 2;
        const n = small ? 1 + (k % 2) : k % 6 === 2 ? 6 : 8;
        for (let j = 0; j < n; j++, host++) await see({ ip: `10.30.${1 + (host >> 8)}.${host & 255}`, mac: `52:54:00:01:${(host >> 8).toString(16).padStart(2, '0')}:${(host & 255).toString(16).padStart(2, '0')}`, durationS: small ? 43200 : 7 * 86400 });
        await sched.tick();
        const scan = scanner.launches.at(-1)!;
        expect(scan.targets).toHaveLength(n);
        clock.t += durationMin(n) * 60_000;
        scanner.finish(scan.ref);
        await sched.poll(true);
      }
      for (let j = 0; j < 6; j++, host++) await see({ ip: `10.30.${1 + (host >> 8)}.${host & 255}`, mac: `52:54:00:01:${(host >> 8).toString(16).padStart(2, '0')}:${(host & 255).toString(16).padStart(2, '0')}`, durationS: 43200 });
      await sched.tick();
      const wave = scanner.launches.at(-1)!.targets.length;
      scanner.finish(scanner.launches.at(-1)!.ref);
      await sched.poll(true);
      // five VPN tunnels and three Wi-Fi laptops: VPN targets keep to what is surely the first wave,
      // the configured one or half the learned one (a VPN pool hands a freed address on at once; a
      // learned wave, up to twice the truth, may start its later targets minutes after pickup)
      for (let j = 0; j < 5; j++, host++) await see({ kind: 'tunnel-up', ip: `10.30.200.${j + 1}`, user: `user${j}`, format: 'openvpn', durationS: undefined });
      for (let j = 0; j < 3; j++, host++) await see({ ip: `10.30.${1 + (host >> 8)}.${host & 255}`, mac: `52:54:00:01:${(host >> 8).toString(16).padStart(2, '0')}:${(host & 255).toString(16).padStart(2, '0')}`, durationS: 43200 });
      const before = scanner.launches.length;
      await sched.tick();
      const mixed = scanner.launches[before].targets; // the region's second slot takes the third VPN target in a scan of its own
      return { learned: sched.hostsInParallel(), wave, vpn: mixed.filter((ip) => ip.startsWith('10.30.200.')).length, mixed: mixed.length };
    };
    const on = await run(true);
    expect(on.learned.value).toBeGreaterThanOrEqual(6);
    expect(on.learned.value).toBeLessThanOrEqual(8); // no larger scans seen: it cannot tell beyond 8
    expect(on.wave).toBe(6); // six transient targets in one scan
    const vpnWave = Math.max(2, Math.floor(on.learned.value / 2));
    expect(on).toMatchObject({ vpn: vpnWave, mixed: Math.min(on.learned.value, vpnWave + 3) }); // and the three Wi-Fi laptops
    const off = await run(false);
    expect(off.wave).toBe(2); // the configured wave
    expect(off.learned.how).toMatch(/off/);
  });

  itAll('a scarce allowance: a region\'s launch waits (up to 30 min) for a full wave of ready targets; a plentiful one launches at once', async () => {
    const run = async (limit: { limit: number; windowSec: number } | undefined) => {
      const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 50, hostsInParallel: 3 });
      if (limit) scanner.limit = limit;
      await see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
      await sched.tick();
      const first = scanner.launches.length;
      clock.t += 10 * 60_000;
      await see({ ip: '10.20.1.2', mac: mac(2), durationS: 43200 });
      await sched.tick();
      const second = scanner.launches.map((l) => l.targets);
      clock.t += 21 * 60_000; // the first target has waited 31 min
      await sched.tick();
      return { first, second, third: scanner.launches.map((l) => l.targets) };
    };
    const scarce = await run({ limit: 50, windowSec: 86_400 });
    expect(scarce.first).toBe(0); // one of a wave of three: waits
    expect(scarce.second).toHaveLength(0);
    expect(scarce.third).toEqual([['10.20.1.2', '10.20.1.1']]); // the oldest waited 30 min: both go in one scan
    const plenty = await run(undefined);
    expect(plenty.first).toBe(1);
  });

  itAll('a scarce allowance\'s wave hold is not waited again after a refused launch: the targets go out when their back-off ends', async () => {
    const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 50, hostsInParallel: 3, retryBackoffS: 600 });
    scanner.limit = { limit: 50, windowSec: 86_400 };
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
    await sched.tick();
    clock.t += 31 * 60_000; // held for a wave, then launched alone
    scanner.failNext = 'refused';
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'launch')).toHaveLength(1);
    expect(scanner.launches).toHaveLength(0);
    clock.t += 601_000; // its back-off over
    await sched.tick();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1']]); // was held another 30 min
  });

  itAll('a scarce allowance (as the scanner states it) is spread over the day: no burst that leaves the evening without calls', async () => {
    const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 50, idlePollS: 60, pollIntervalS: 60 });
    scanner.limit = { limit: 24, windowSec: 86_400 }; // 24 calls a day: the bucket holds 6
    const callsAt: number[] = [];
    let n = 0;
    for (let minute = 0; minute < 24 * 60; minute += 10) {
      // a new laptop in each region every 10 minutes; running scans end within 10 minutes
      await see({ ip: `10.20.${1 + (n >> 8)}.${n & 255}`, mac: mac(n % 250), durationS: 86400 });
      await see({ ip: `10.30.${1 + (n >> 8)}.${n & 255}`, mac: mac((n + 100) % 250), durationS: 86400 });
      n++;
      const before = scanner.calls.length;
      await sched.tick();
      for (let k = before; k < scanner.calls.length; k++) callsAt.push(clock.t - T0);
      clock.t += 10 * 60_000;
      for (const l of scanner.launches) if (scanner.states.get(l.ref) === 'running') scanner.finish(l.ref);
    }
    const hours = (h: number) => callsAt.filter((t) => t < h * 3_600_000).length;
    // never more than the bucket plus what the allowance refills (24 a day: 1 an hour)
    for (let h = 1; h <= 24; h++) expect(hours(h)).toBeLessThanOrEqual(6 + h);
    expect(callsAt.length).toBeLessThanOrEqual(30);
    // and the evening still gets launches
    const launchesLate = scanner.calls.filter((c, i) => c === 'launch' && callsAt[i] >= 18 * 3_600_000).length;
    expect(launchesLate).toBeGreaterThan(0);
  });
});

describe('scheduler: the cancel window follows the target\'s place in the scan', () => {
  itAll('a first-wave target whose address changes hands in a scan no poll has seen since launch: one list call says whether the scan is still queued behind others (cancel) or started at pickup (no cancel)', async () => {
    const run = async (state: 'queued' | 'running') => {
      const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 6, pickupS: 360, idlePollS: 86400, hostsInParallel: 6 });
      for (let j = 1; j <= 3; j++) await see({ ip: `10.30.1.${j}`, mac: mac(j), durationS: 43200 });
      await sched.tick();
      const scan = scanner.launches[0];
      scanner.states.set(scan.ref, state); // queued: the appliance's slots are taken by others' scans
      clock.t += 2 * 3_600_000; // long past pickup; no poll since launch
      const lists = scanner.calls.filter((c) => c === 'list').length;
      await see({ ip: scan.targets[0], mac: mac(100), durationS: 43200 }); // the address went to another laptop
      await sched.tick();
      return { state: scanner.states.get(scan.ref), lists: scanner.calls.filter((c) => c === 'list').length - lists };
    };
    expect(await run('queued')).toEqual({ state: 'canceled', lists: 1 });
    expect(await run('running')).toEqual({ state: 'running', lists: 1 });
  });
  describe('with a scarce allowance (50 calls a day)', () => {
    // a scan of three laptops queued behind others' scans on a full appliance, two hours after launch, no poll since
    const queuedScan = async () => {
      const t = await setupSqlite({ maxTargetsPerScan: 3, pickupS: 360, idlePollS: 86400, hostsInParallel: 3 });
      t.scanner.limit = { limit: 50, windowSec: 86_400 };
      for (let j = 1; j <= 3; j++) await t.see({ ip: `10.30.1.${j}`, mac: mac(j), durationS: 43200 });
      await t.sched.tick();
      const scan = t.scanner.launches[0];
      t.scanner.states.set(scan.ref, 'queued');
      // a poll right after launch whose call failed: no state seen, and no idle poll due for a day
      t.scanner.failing.set('listScans', 'refused');
      await t.sched.poll(true);
      t.scanner.failing.clear();
      t.clock.t += 2 * 3_600_000;
      return { ...t, scan, lists: () => t.scanner.calls.filter((c) => c === 'list').length };
    };
    itAll('the look-up before a cancel may use the calls kept back for launches: down to the reserve, the queued scan is still looked up and canceled', async () => {
      const { scanner, sched, see, scan, lists } = await queuedScan();
      scanner.limit = { limit: 50, windowSec: 86_400, remaining: 5 }; // the reserve (reserveCalls 5) and no more
      const before = lists();
      await see({ ip: scan.targets[0], mac: mac(100), durationS: 43200 }); // the address went to another laptop
      await sched.tick();
      expect(lists() - before).toBe(1);
      expect(scanner.states.get(scan.ref)).toBe('canceled');
    });
    itAll('the look-up and the cancel are held by the window, not the pace: with the bucket empty, the queued scan is looked up and canceled in the same pass', async () => {
      const { scanner, sched, see, scan, lists } = await queuedScan();
      const budget = (sched as unknown as { core: { budget: BudgetPhase } }).core.budget;
      for (let k = 0; k < 20 && budget.canSpend(true); k++) budget.spentExtra(1); // another job's calls took the bucket
      expect(budget.canSpend(true)).toBe(false);
      const before = lists();
      await see({ ip: scan.targets[0], mac: mac(100), durationS: 43200 }); // the address went to another laptop
      await sched.tick();
      expect(lists() - before).toBe(1);
      expect(scanner.states.get(scan.ref)).toBe('canceled');
      // the window's last call is still the limit
      const t = await queuedScan();
      t.scanner.limit = { limit: 50, windowSec: 86_400, remaining: 0 };
      const listed = t.lists();
      await t.see({ ip: t.scan.targets[0], mac: mac(100), durationS: 43200 });
      await t.sched.tick();
      expect(t.lists()).toBe(listed);
      expect(t.scanner.states.get(t.scan.ref)).toBe('queued');
      // and the pace's debt is bounded: look-ups that keep failing are not retried every pass
      const f = await queuedScan();
      const fb = (f.sched as unknown as { core: { budget: BudgetPhase } }).core.budget;
      for (let k = 0; k < 20 && fb.canSpend(true); k++) fb.spentExtra(1);
      f.scanner.failing.set('listScans', 'refused');
      const tried = f.scanner.calls.length;
      await f.see({ ip: f.scan.targets[0], mac: mac(100), durationS: 43200 });
      for (let k = 0; k < 10; k++) await f.sched.tick();
      expect(f.scanner.calls.length - tried).toBe(1);
    });
    itAll('a look-up whose list call failed is asked again after a short wait (10 s, doubling while lists fail), not at every pass, and not forgotten', async () => {
      const { scanner, sched, see, scan, lists, clock } = await queuedScan();
      scanner.failing.set('listScans', 'refused');
      await see({ ip: scan.targets[0], mac: mac(100), durationS: 43200 });
      await sched.tick();
      expect(scanner.states.get(scan.ref)).toBe('queued');
      scanner.failing.clear();
      let before = lists();
      await sched.tick();
      expect(lists() - before).toBe(0);
      clock.t += 20_000; // (the second failure in a row: queuedScan's poll failed too)
      before = lists();
      await sched.tick();
      expect(lists() - before).toBe(1);
      expect(scanner.states.get(scan.ref)).toBe('canceled');
    });
    itAll('a departure does not look the scan up (the new holder\'s line does), where calls to spare do', async () => {
      for (const scarce of [true, false]) {
        const { scanner, sched, inv, clock, scan, lists } = await queuedScan();
        if (!scarce) scanner.limit = undefined;
        const before = lists();
        const gone = scan.targets[0];
        const [r] = await inv.commitBatch([{ kind: 'release', ip: gone, mac: mac(Number(gone.split('.')[3])), at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't' } as Sighting]);
        await sched.departed([r.bindingId!]);
        await sched.tick();
        expect({ scarce, lists: lists() - before }).toEqual({ scarce, lists: scarce ? 0 : 1 });
      }
    });
    itAll('a launch leaves two calls in the window (a look-up and a cancel): at two remaining, due laptops wait', async () => {
      for (const remaining of [2, 3]) {
        const { scanner, sched, see } = await setupSqlite({ maxTargetsPerScan: 3, hostsInParallel: 3 });
        scanner.limit = { limit: 50, windowSec: 86_400, remaining };
        for (let j = 1; j <= 3; j++) await see({ ip: `10.30.1.${j}`, mac: mac(j), durationS: 43200 });
        await sched.tick();
        expect({ remaining, launches: scanner.launches.length }).toEqual({ remaining, launches: remaining > 2 ? 1 : 0 });
      }
    });
  });
  itAll('a reassignment late in a long scan cancels it when the address comes late in the scan\'s order, not when it came first', async () => {
    const run = async (which: 'first' | 'last') => {
      // two hosts at a time: a scan of 6 goes in three waves
      const { scanner, sched, see, clock } = await setupSqlite({ maxTargetsPerScan: 6, pickupS: 360, idlePollS: 60, hostsInParallel: 2 });
      // three scans of 6 that take an hour each: a typical scan of this size is an hour
      let n = 1;
      for (let k = 0; k < 3; k++) {
        for (let j = 0; j < 6; j++, n++) await see({ ip: `10.30.1.${n}`, mac: mac(n), durationS: 86400 });
        await sched.tick();
        scanner.states.set(scanner.launches[k].ref, 'running');
        clock.t += 60 * 60_000;
        scanner.finish(scanner.launches[k].ref);
        await sched.poll(true);
      }
      for (let j = 0; j < 6; j++, n++) await see({ ip: `10.20.2.${j + 1}`, mac: mac(n), durationS: 86400 });
      await sched.tick();
      const scan = scanner.launches[3];
      scanner.states.set(scan.ref, 'running');
      await sched.poll(true); // seen running
      clock.t += 40 * 60_000; // 40 minutes in: past the first wave, before the last targets
      const ip = which === 'first' ? scan.targets[0] : scan.targets[5];
      await see({ ip, mac: mac(200), durationS: 86400 });
      await sched.tick();
      return scanner.states.get(scan.ref);
    };
    expect(await run('last')).toBe('canceled'); // 6th of 6: reached about an hour in
    expect(await run('first')).toBe('running'); // 1st of 6: long since probed; canceling would waste the others
  });
});

describe('scheduler: a target that leaves before its scan reaches it', () => {
  itAll('its departure cancels the scan and relaunches the others (the freed address may go to another device before its line reaches us); not once the window has passed', async () => {
    const run = async (afterMin: number, cancelWhenTargetLeaves = true, hostsInParallel = 2, polled = true) => {
      const { scanner, sched, see, inv, clock } = await setupSqlite({ maxTargetsPerScan: 6, pickupS: 360, idlePollS: 60, cancelWhenTargetLeaves, hostsInParallel });
      for (let j = 1; j <= 6; j++) await see({ ip: `10.30.1.${j}`, mac: mac(j), durationS: 86400 });
      await sched.tick();
      const scan = scanner.launches[0];
      scanner.states.set(scan.ref, 'running');
      if (polled) await sched.poll(true); // seen running
      clock.t += afterMin * 60_000;
      const gone = scan.targets[5];
      const [r] = await inv.commitBatch([{ kind: 'release', ip: gone, mac: mac(Number(gone.split('.')[3])), at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't' } as Sighting]);
      expect(r.change).toBe('ended');
      const marked = await sched.departed([r.bindingId!]);
      await sched.tick();
      const state = scanner.states.get(scan.ref);
      clock.t += 15 * 60_000; // the region drains (its appliance hears of the cancel), then the others go out
      await sched.tick();
      return { marked, state, gone, relaunch: scanner.launches[1]?.targets };
    };
    const early = await run(1, true, 10, false); // not polled yet, within pickupS: the scan may not have started
    expect(early.marked).toBe(1);
    expect(early.state).toBe('canceled');
    expect(early.relaunch?.length).toBe(5); // the others go out again, without the departed one
    expect(early.relaunch).not.toContain(early.gone);
    const laterWave = await run(1, true, 2); // running, two hosts at a time: the 6th of 6 comes in the third wave
    expect(laterWave.marked).toBe(1);
    expect(laterWave.state).toBe('canceled');
    const late = await run(120); // long past pickup: the scan has reached all six
    expect(late.marked).toBe(0);
    expect(late.state).toBe('running');
    const off = await run(1, false); // switched off: the scan runs on
    expect(off.marked).toBe(0);
    expect(off.state).toBe('running');
    // six targets, ten hosts at a time: all six start when the appliance picks the scan up
    const oneWave = await run(1, true, 10); // a poll saw it running: every target reached, nothing to gain
    expect(oneWave.marked).toBe(0);
    expect(oneWave.state).toBe('running');
    // past pickupS (360 s) with no poll since launch: one list call looks (the scan may wait behind
    // others' for a slot); it is running, so every target was reached at pickup: no cancel
    const pastPickup = await run(7, true, 10, false);
    expect(pastPickup.marked).toBe(1);
    expect(pastPickup.state).toBe('running');
  });
});
