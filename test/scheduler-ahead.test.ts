import { describe, expect, it } from 'vitest';
import { Policy } from '../src/policy/policy.js';
import type { SchedulerOptions } from '../src/scheduler/options.js';
import { mac, setup } from './helpers/scheduler.js';

// The policy's rescan window is 30 days (test/helpers/scheduler.ts), so a device scanned at t is due
// again at t + 29 d (the lead is a day); scanAheadH (48 h by default) lets it ride from t + 27 d.
const DAY = 86_400_000;

/** A device scanned once (second looks off: the ride ahead alone), then `laterMs` on, seen again. */
async function scannedThenSeen(laterMs: number, scarce: boolean, over: Parameters<typeof setup>[0] = {}) {
  const t = await setup({ secondLook: false, ...over });
  if (scarce) t.scanner.limit = { limit: 300, windowSec: 86_400 };
  const a = await t.see({ ip: '10.20.1.1', mac: mac(1) });
  await t.sched.tick();
  if (!t.scanner.launches.length) {
    t.clock.t += 31 * 60_000; // a scarce allowance holds a lone target for a wave up to 30 min
    await t.sched.tick();
  }
  expect(t.scanner.launches).toHaveLength(1);
  t.scanner.finish(t.scanner.launches[0].ref);
  const scanned = async () => (await t.inv.binding(a.bindingId!))?.lastScannedAt;
  for (let k = 0; k < 60 && (await scanned()) === undefined; k++) {
    t.clock.t += 61_000;
    await t.sched.tick();
  }
  expect(await scanned()).toBeDefined(); // credited before the time passes
  t.clock.t += laterMs;
  await t.see({ ip: '10.20.1.1', mac: mac(1) });
  await t.sched.tick();
  return t;
}

/** A device due for its first scan arrives; its launch goes (past a scarce allowance's hold). */
async function firstScanLaunched(t: Awaited<ReturnType<typeof scannedThenSeen>>, ip = '10.20.1.2', n = 2) {
  const before = t.scanner.launches.length;
  await t.see({ ip, mac: mac(n) });
  await t.sched.tick();
  if (t.scanner.launches.length === before) {
    t.clock.t += 31 * 60_000;
    await t.sched.tick();
  }
  expect(t.scanner.launches).toHaveLength(before + 1);
  return t.scanner.launches[before];
}

describe('scan ahead (scheduler.scanAheadH): a device that comes due soon rides in room a scan leaves, while the allowance is scarce', () => {
  it('rides in the next scan launched for a due device, never launches alone, and is counted and logged', async () => {
    const t = await scannedThenSeen(28 * DAY, true); // due in a day
    expect(t.scanner.launches).toHaveLength(1); // alone it launches nothing
    const scan = await firstScanLaunched(t);
    expect(scan.targets).toEqual(['10.20.1.2', '10.20.1.1']);
    expect(t.sched.counters.scannedAhead).toBe(1);
    const launched = (await t.store.recentDecisions(30)).filter((d) => d.ip === '10.20.1.1' && d.decision === 'launched' && d.reason.includes(scan.ref));
    expect(launched).toHaveLength(1);
    // scanned again, it is not due for another window: the next first scan goes alone
    t.scanner.finish(scan.ref);
    t.clock.t += 3600_000;
    await t.sched.tick();
    await t.see({ ip: '10.20.1.1', mac: mac(1) });
    const next = await firstScanLaunched(t, '10.20.1.3', 3);
    expect(next.targets).toEqual(['10.20.1.3']);
  });

  it('not while it comes due later than scanAheadH', async () => {
    const t = await scannedThenSeen(20 * DAY, true); // due in 9 days
    expect((await firstScanLaunched(t)).targets).toEqual(['10.20.1.2']);
    expect(t.sched.counters.scannedAhead).toBe(0);
  });

  it('a wider scanAheadH takes it; 0 turns it off', async () => {
    const wide = await scannedThenSeen(20 * DAY, true, { scanAheadH: 10 * 24 });
    expect((await firstScanLaunched(wide)).targets).toEqual(['10.20.1.2', '10.20.1.1']);
    const off = await scannedThenSeen(28 * DAY, true, { scanAheadH: 0 });
    expect((await firstScanLaunched(off)).targets).toEqual(['10.20.1.2']);
  });

  it('not while the allowance is plentiful: each due device has its own timely launch there', async () => {
    const t = await scannedThenSeen(28 * DAY, false);
    expect((await firstScanLaunched(t)).targets).toEqual(['10.20.1.2']);
    expect(t.sched.counters.scannedAhead).toBe(0);
  });

  it('a refused launch puts the due device back in the queue and the rider out of it: it rides again in the next launch, counted once', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    t.scanner.failNext = 'refused';
    await t.see({ ip: '10.20.1.2', mac: mac(2) });
    await t.sched.tick();
    t.clock.t += 31 * 60_000;
    await t.sched.tick(); // the hold ends: the launch is refused
    expect(t.scanner.calls.filter((c) => c === 'launch')).toHaveLength(2);
    expect(t.scanner.launches).toHaveLength(1);
    expect(t.sched.counters.scannedAhead).toBe(0);
    const queued = (await t.store.allQueued()).map((q) => q.ip);
    expect(queued).toEqual(['10.20.1.2']); // the rider is not left in the queue as if due
    t.clock.t += 3 * 3600_000; // past the retry back-off; both still there
    await t.see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' });
    await t.see({ ip: '10.20.1.2', mac: mac(2), kind: 'renew' });
    await t.sched.tick();
    expect(t.scanner.launches).toHaveLength(2);
    expect(t.scanner.launches[1].targets).toEqual(['10.20.1.2', '10.20.1.1']);
    expect(t.sched.counters.scannedAhead).toBe(1);
    expect((await t.store.recentDecisions(40)).filter((d) => d.ip === '10.20.1.1' && d.decision === 'dropped')).toEqual([]);
  });

  it('a launch refused for the rider by name (outside the subscription, say) takes it out of the queue again; the due device goes again without it', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    t.scanner.refuseNext = ['10.20.1.1'];
    await t.see({ ip: '10.20.1.2', mac: mac(2) });
    await t.sched.tick();
    t.clock.t += 31 * 60_000;
    await t.sched.tick(); // the hold ends: the launch is refused for the rider
    const refusedAt = t.clock.t;
    expect(t.sched.counters.droppedByScanner).toBe(1);
    expect(t.sched.counters.scannedAhead).toBe(0);
    // the rider is not left in the queue as if due (with back-off, counting toward the wave's hold)
    expect((await t.store.allQueued()).map((q) => q.ip).filter((ip) => ip === '10.20.1.1')).toEqual([]);
    for (let k = 0; k < 40 && t.scanner.launches.length < 2; k++) {
      t.clock.t += 61_000;
      if (k % 10 === 9) await t.see({ ip: '10.20.1.2', mac: mac(2), kind: 'renew' }); // still there
      await t.sched.tick();
    }
    // the due one alone, within minutes (its wave hold was waited once), not with the refused rider again
    expect(t.scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1'], ['10.20.1.2']]);
    expect(t.clock.t - refusedAt).toBeLessThan(10 * 60_000);
    // its back-off over (10 min), it rides again and is refused again: the next back-off is twice as long
    const launchOf = async (ip: string, n: number) => {
      for (const l of t.scanner.launches) if (t.scanner.states.get(l.ref) === 'running') t.scanner.finish(l.ref);
      const before = t.scanner.calls.filter((c) => c === 'launch').length;
      await t.see({ ip, mac: mac(n) });
      for (let k = 0; k < 40 && t.scanner.calls.filter((c) => c === 'launch').length === before; k++) {
        t.clock.t += 61_000;
        await t.sched.tick();
      }
    };
    t.clock.t = refusedAt + 11 * 60_000;
    t.scanner.refuseNext = ['10.20.1.1'];
    await t.see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' }); // seen again: it may ride again
    await launchOf('10.20.1.3', 3);
    expect(t.sched.counters.droppedByScanner).toBe(2);
    // the second refusal holds it back twice as long (retryBackoffS 600 s, doubled)
    const refusedRiders = (t.sched as unknown as { core: { launch: { refusedRiders: Map<number, { until: number; n: number }> } } }).core.launch.refusedRiders;
    const rider = (await t.inv.openBinding('10.20.1.1'))!;
    const last = [...(await t.store.recentDecisions(40))].find((d) => d.ip === '10.20.1.1' && d.decision === 'dropped-by-scanner')!;
    expect(refusedRiders.get(rider.id)).toEqual({ until: last.at + 2 * 600_000, n: 2 });
    expect(t.sched.counters.droppedByScanner).toBe(2);
  });

  it('a scan canceled before it reached a target (its address changed hands) takes its rider out of the queue again: it rides in the relaunch, and is never dropped as if due', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    const scan = await firstScanLaunched(t);
    expect(scan.targets).toEqual(['10.20.1.2', '10.20.1.1']);
    await t.see({ ip: '10.20.1.2', mac: mac(9) }); // the due device's address goes to another one before pickup
    await t.sched.tick();
    expect(t.scanner.states.get(scan.ref)).toBe('canceled');
    expect(t.sched.counters.canceledReassigned).toBe(1);
    // the new holder waits as due (and the old device's entry, dropped at the next launch); the rider is not in the queue as if due
    expect((await t.store.allQueued()).map((q) => q.ip)).toEqual(['10.20.1.2', '10.20.1.2']);
    t.clock.t += 31 * 60_000; // the region drains (its appliance hears of the cancel); a scarce allowance's hold ends
    await t.see({ ip: '10.20.1.1', mac: mac(1), kind: 'renew' });
    await t.sched.tick();
    expect(t.scanner.launches).toHaveLength(3);
    expect(t.scanner.launches[2].targets).toEqual(['10.20.1.2', '10.20.1.1']);
    const rider = (await t.store.recentDecisions(60)).filter((d) => d.ip === '10.20.1.1');
    expect(rider.filter((d) => d.decision === 'dropped')).toEqual([]);
    // its first scan, the canceled one and the relaunch
    expect(rider.filter((d) => d.decision === 'launched').map((d) => d.reason.split(' ')[1]).reverse()).toEqual(t.scanner.launches.map((l) => l.ref));
  });

  it('a scan that ended in error takes its rider out of the queue again (its due device waits out the back-off)', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    const scan = await firstScanLaunched(t);
    t.scanner.finish(scan.ref, 'error');
    for (let k = 0; k < 60 && t.sched.counters.failed === 0; k++) {
      t.clock.t += 61_000;
      await t.sched.tick();
    }
    expect(t.sched.counters.failed).toBe(1);
    expect((await t.store.allQueued()).map((q) => q.ip)).toEqual(['10.20.1.2']);
    expect((await t.store.recentDecisions(60)).filter((d) => d.ip === '10.20.1.1' && d.decision === 'dropped')).toEqual([]);
    // the same with the due device skipped by an operator while its scan ran: it leaves the queue with the skip as its reason
    const s = await scannedThenSeen(28 * DAY, true);
    const second = await firstScanLaunched(s);
    const due = (await s.inv.openBinding('10.20.1.2'))!;
    await s.store.skip([due.identityId], s.clock.t + 7 * DAY, s.clock.t);
    s.scanner.finish(second.ref, 'error');
    for (let k = 0; k < 60 && s.sched.counters.failed === 0; k++) {
      s.clock.t += 61_000;
      await s.sched.tick();
    }
    expect(await s.store.allQueued()).toEqual([]);
    expect((await s.store.recentDecisions(60)).find((d) => d.ip === '10.20.1.2')).toMatchObject({ decision: 'not-due', reason: expect.stringMatching(/^skipped: an operator skipped this device/) });
  });

  it('a rider the scanner left out of a finished scan leaves the queue again (it is not due: it waits for the next scan\'s room)', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    const scan = await firstScanLaunched(t);
    t.scanner.reportedTargets.set(scan.ref, ['10.20.1.2']); // the rider left out (outside the subscription, say)
    t.scanner.finish(scan.ref);
    for (let k = 0; k < 60 && t.sched.counters.droppedByScanner === 0; k++) {
      t.clock.t += 61_000;
      await t.sched.tick();
    }
    expect(t.sched.counters.droppedByScanner).toBe(1);
    expect(await t.store.allQueued()).toEqual([]);
  });

  it('an operator\'s skip, or an exclusion a reload adds, keeps the device from riding', async () => {
    const skipped = await scannedThenSeen(28 * DAY, true);
    const rider = await skipped.inv.binding((await skipped.inv.openBinding('10.20.1.1'))!.id);
    await skipped.store.skip([rider!.identityId], skipped.clock.t + 7 * DAY, skipped.clock.t);
    expect((await firstScanLaunched(skipped)).targets).toEqual(['10.20.1.2']);
    expect(skipped.sched.counters.scannedAhead).toBe(0);

    const excluded = await scannedThenSeen(28 * DAY, true);
    // the helper's policy as configured, with the rider's address added to the exclusions (a SIGHUP)
    const conf = (excluded.policy as unknown as { opts: ConstructorParameters<typeof Policy>[0] }).opts;
    const opts = (excluded.sched as unknown as { core: { opts: SchedulerOptions } }).core.opts;
    excluded.sched.reconfigure(new Policy({ ...conf, exclude: [...conf.exclude, '10.20.1.1/32'] }), opts);
    expect((await firstScanLaunched(excluded)).targets).toEqual(['10.20.1.2']);
    expect(excluded.sched.counters.scannedAhead).toBe(0);
  });

  it('a device that left (released its lease) does not ride', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    await t.see({ ip: '10.20.1.1', mac: mac(1), kind: 'release' });
    expect((await firstScanLaunched(t)).targets).toEqual(['10.20.1.2']);
    expect(t.sched.counters.scannedAhead).toBe(0);
  });
});
