import { describe, expect, it } from 'vitest';
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

  it('a device that left (released its lease) does not ride', async () => {
    const t = await scannedThenSeen(28 * DAY, true);
    await t.see({ ip: '10.20.1.1', mac: mac(1), kind: 'release' });
    expect((await firstScanLaunched(t)).targets).toEqual(['10.20.1.2']);
    expect(t.sched.counters.scannedAhead).toBe(0);
  });
});
