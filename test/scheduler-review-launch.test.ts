/**
 * Review findings on launching, the budget and no-host results (session review of 727a959):
 * a scanner date from before a device arrived, calls while the scanner is stopped or waiting, and
 * a present device the host list never dates.
 */
import { describe, expect, it } from 'vitest';
import { mac, setup, T0 } from './helpers/scheduler.js';
import { FailedCall } from '../src/scheduler/budget.js';

const DAY = 86_400_000;
const count = (calls: string[], c: string) => calls.filter((x) => x === c).length;

describe('lastScannedFromScanner: the date is the address\'s', () => {
  it('a scan of its address from before a device arrived is not credited to it (whoever held it then may be unknown to us)', async () => {
    const { scanner, sched, see, inv, store } = await setup({ lastScannedFromScanner: true });
    scanner.lastScannedDates.set('10.20.1.5', new Date(T0 - 10 * DAY).toISOString());
    const r = await see({ ip: '10.20.1.5', mac: mac(5) }); // never seen before, arriving now
    await sched.tick();
    expect((await inv.binding(r.bindingId!))!.lastScannedAt).toBeUndefined();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.5']]);
    expect((await store.recentDecisions(10)).some((d) => d.decision === 'dropped')).toBe(false);
  });

  it('a scan of its address while the device held it is credited', async () => {
    const { scanner, sched, see, inv, clock, store } = await setup({ lastScannedFromScanner: true });
    clock.t = T0 - 3 * DAY;
    const r = await see({ ip: '10.20.1.5', mac: mac(5), durationS: 7 * 86_400 }); // here for three days
    clock.t = T0;
    scanner.lastScannedDates.set('10.20.1.5', new Date(T0 - DAY).toISOString());
    await sched.tick();
    expect((await inv.binding(r.bindingId!))!).toMatchObject({ lastScannedAt: T0 - DAY, lastScannedVia: 'scanner:vm-scan' });
    expect(scanner.launches).toHaveLength(0);
    expect((await store.recentDecisions(10)).find((d) => d.decision === 'dropped')?.reason).toMatch(/scanned-recently/);
  });
});

describe('a stopped or waiting scanner gets no call at all', () => {
  it('stopped (denied) at the first appliance list: the list is not read again every pass until a reload', async () => {
    const { scanner, sched, see, clock, policy } = await setup();
    scanner.failing.set('appliances', 'denied'); // a password changed before the restart
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(sched.scannerBlock().stopped).toMatchObject({ code: 'ONSIGHT_SCANNER_DENIED' });
    const before = scanner.calls.length;
    for (let s = 0; s < 60; s++) {
      clock.t += 1000;
      await sched.tick();
    }
    expect(scanner.calls.length - before).toBe(0); // was 60 appliance lists: failed logins that can lock the account
    // SIGHUP: the operator fixed it
    scanner.failing.delete('appliances');
    sched.reconfigure(policy, (sched as unknown as { core: { opts: Parameters<typeof sched.reconfigure>[1] } }).core.opts);
    await sched.tick();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1']]);
  });

  it('in a wait for every call, asked at the first appliance list: no list before its end, then the launch', async () => {
    const { scanner, sched, see, clock } = await setup();
    scanner.failing.set('appliances', 'rate-limited');
    scanner.waitUntil = clock.t + 3600_000;
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(sched.scannerBlock().waitUntil).toBe(scanner.waitUntil);
    const before = count(scanner.calls, 'appliances');
    for (let s = 0; s < 60; s++) {
      clock.t += 1000;
      await sched.tick();
    }
    expect(count(scanner.calls, 'appliances') - before).toBe(0);
    scanner.failing.delete('appliances');
    clock.t = scanner.waitUntil;
    await sched.tick();
    expect(scanner.launches.map((l) => l.targets)).toEqual([['10.20.1.1']]);
  });

  it('launches held by a wait of their own (Tenable\'s active-scan limit): no batch is made and no intent written until it ends; the other calls go on', async () => {
    const { scanner, sched, see, clock, db } = await setup();
    const intents = () => (db.prepare('SELECT count(*) n FROM intents').get() as { n: number }).n;
    scanner.failing.set('launch', 'api-limited');
    scanner.waitUntil = clock.t + 10 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(count(scanner.calls, 'launch')).toBe(1);
    expect(sched.scannerBlock().callsHeldUntil).toEqual({ launch: scanner.waitUntil });
    expect(sched.scannerBlock().waitUntil).toBeUndefined();
    const first = intents();
    const lists = count(scanner.calls, 'appliances');
    for (let i = 2; i <= 6; i++) {
      await see({ ip: `10.20.1.${i}`, mac: mac(i) });
      for (let s = 0; s < 60; s++) {
        clock.t += 1000;
        await sched.tick();
      }
    }
    // (before: each pass made a batch and an intent the budget then refused: an error intent a pass)
    expect(intents()).toBe(first);
    expect(count(scanner.calls, 'launch')).toBe(1);
    expect(sched.counters.launchFailures).toBe(1);
    expect(count(scanner.calls, 'appliances')).toBeGreaterThan(lists); // the appliance list is still read
    scanner.failing.delete('launch');
    clock.t = scanner.waitUntil;
    await sched.tick();
    expect(sched.scannerBlock().callsHeldUntil).toBeUndefined();
    // then the launch, a full batch (maxTargetsPerScan 3, one scan at a time in the region)
    expect(scanner.launches).toHaveLength(1);
    expect(scanner.launches[0].targets).toHaveLength(3);
  });

  it('budget.call itself refuses, without a call, while stopped or in a wait (whatever its caller checked)', async () => {
    const { scanner, sched, clock } = await setup();
    const budget = (sched as unknown as { core: { budget: { call<T>(what: string, which: string, fn: () => Promise<T>): Promise<T> } } }).core.budget;
    let made = 0;
    const list = () => budget.call('list appliances', 'appliances', async () => (made++, scanner.appliances()));
    await expect(list()).resolves.toHaveLength(3);
    scanner.failing.set('appliances', 'rate-limited');
    scanner.waitUntil = clock.t + 600_000;
    await expect(list()).rejects.toBeInstanceOf(FailedCall);
    expect(made).toBe(2);
    scanner.failing.delete('appliances');
    const waiting = await list().catch((e: unknown) => e);
    expect(waiting).toBeInstanceOf(FailedCall);
    expect((waiting as FailedCall).outcome).toMatchObject({ launched: 'no', next: 'wait', untilMs: scanner.waitUntil, code: 'ONSIGHT_SCANNER_RATE_LIMIT' });
    expect(made).toBe(2); // no call
    clock.t = scanner.waitUntil;
    await expect(list()).resolves.toHaveLength(3);
    expect(made).toBe(3);
    scanner.failing.set('appliances', 'denied');
    await expect(list()).rejects.toBeInstanceOf(FailedCall);
    scanner.failing.delete('appliances');
    const stopped = await list().catch((e: unknown) => e);
    expect((stopped as FailedCall).outcome).toMatchObject({ launched: 'no', next: 'stop', code: 'ONSIGHT_SCANNER_DENIED' });
    expect(made).toBe(4);
    expect(sched.counters.apiCalls).toBe(4); // refused calls are not counted as made
  });
});

describe('a present device the host list never dates (not alive to the scanner)', () => {
  /** a laptop on a 1-h lease renewing every 30 min, scans finishing within the minute, for `hours` */
  async function renewing(t: Awaited<ReturnType<typeof setup>>, hours: number, ip = '10.20.1.1', n = 1) {
    const { scanner, sched, see, clock } = t;
    const launchedAt: number[] = [];
    for (let h = 0; h < hours * 2; h++) {
      await see({ ip, mac: mac(n), durationS: 3600 });
      for (let m = 0; m < 30; m++) {
        clock.t += 60_000;
        for (const l of scanner.launches) if (scanner.states.get(l.ref) === 'running') scanner.finish(l.ref);
        const before = scanner.launches.length;
        await sched.tick();
        await sched.sweep();
        if (scanner.launches.length > before) launchedAt.push(clock.t);
      }
    }
    return launchedAt;
  }
  const opts = { verifyResults: true, idlePollS: 300, verifyDelayS: 600, processingWaitS: 3600 };

  it('is not relaunched at every renewal: each no-host result in a row doubles a quiet time (from 2 h, a day at most)', async () => {
    const t = await setup(opts);
    const launchedAt = await renewing(t, 24);
    // was 16 launches and 16 no-host results in 24 h for one device
    expect(launchedAt.length).toBeLessThanOrEqual(5);
    expect(t.sched.counters.noHost).toBeGreaterThanOrEqual(launchedAt.length - 1);
    const gaps = launchedAt.slice(1).map((at, k) => at - launchedAt[k]);
    // the first no-host: due at the next renewal, as a laptop that left without a release is; then 2 h, 4 h, 8 h quiet
    for (let k = 2; k < gaps.length; k++) expect(gaps[k]).toBeGreaterThan(gaps[k - 1] + 3600_000);
    expect(gaps[gaps.length - 1]).toBeGreaterThanOrEqual(8 * 3600_000);
    const why = (await t.store.recentDecisions(200)).find((d) => d.decision === 'not-due' && /in a row/.test(d.reason));
    expect(why?.reason).toMatch(/^no-answer-backoff: \d+ scans of 10\.20\.1\.1 in a row found no host/);
  });

  it('a new lease starts afresh; a scan that finds it ends the count', async () => {
    const t = await setup(opts);
    const { scanner, sched, see, clock, inv } = t;
    const silent = (sched as unknown as { core: { decide: { silent: Map<number, { count: number }> } } }).core.decide.silent;
    await renewing(t, 6); // three no-hosts in a row: quiet for 4 h
    expect(sched.counters.noHost).toBe(3);
    expect(silent.get(1)?.count).toBe(3);
    // a new lease (released, then a new binding of the address), not a renewal: due at once
    await inv.commitBatch([{ kind: 'release', at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't', ip: '10.20.1.1', mac: mac(1) } as never]);
    clock.t += 60_000;
    const launches = scanner.launches.length;
    const r = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 3600 });
    expect(r.bindingId).not.toBe(1);
    await sched.tick();
    expect(scanner.launches.length).toBe(launches + 1);
    // not found again: its first no-host, due at the next renewal
    scanner.finish(scanner.launches[launches].ref);
    clock.t += 60_000;
    await sched.tick();
    clock.t += 3601_000;
    await sched.tick();
    expect(sched.counters.noHost).toBe(4);
    expect(silent.get(r.bindingId!)?.count).toBe(1);
    clock.t += 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 3600 });
    await sched.tick();
    expect(scanner.launches.length).toBe(launches + 2);
    // found this time: credited, and its no-host count ends
    scanner.finish(scanner.launches[launches + 1].ref);
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t).toISOString());
    clock.t += 60_000;
    await sched.tick();
    clock.t += 601_000;
    await sched.tick();
    expect(sched.counters.noHost).toBe(4);
    expect((await inv.binding(r.bindingId!))!.lastScannedAt).toBeDefined();
    expect(silent.has(r.bindingId!)).toBe(false);
  });

  it('a scan that finds it ends the count even when its result is not credited (the client rejoined mid-scan)', async () => {
    const t = await setup(opts);
    const { scanner, sched, see, clock } = t;
    const silent = (sched as unknown as { core: { decide: { silent: Map<number, { count: number }> } } }).core.decide.silent;
    await renewing(t, 3);
    expect(silent.get(1)?.count).toBeGreaterThanOrEqual(2);
    for (const l of scanner.launches) if (scanner.states.get(l.ref) === 'running') scanner.finish(l.ref);
    const launches = scanner.launches.length;
    // seen at each renewal until its quiet time has passed and it is launched again
    for (let k = 0; k < 24 && scanner.launches.length === launches; k++) {
      clock.t += 30 * 60_000;
      await see({ ip: '10.20.1.1', mac: mac(1), durationS: 3600 });
      await sched.tick();
    }
    expect(scanner.launches.length).toBe(launches + 1);
    clock.t += 5 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 3600 }); // a request 5 min into the scan, well before T1: it rejoined
    scanner.finish(scanner.launches[launches].ref);
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t).toISOString()); // found
    clock.t += 60_000;
    await sched.tick();
    clock.t += 601_000;
    await sched.tick();
    expect(sched.counters.rejoined).toBe(1);
    expect(silent.has(1)).toBe(false);
  });

  it('the quiet time survives a restart (learned_state, no-host), and a version\'s [id, lastSeen] rows are still read', async () => {
    const t = await setup(opts);
    const { scanner, clock, see } = t;
    await renewing(t, 6); // three in a row: quiet 4 h from the third
    expect(t.sched.counters.noHost).toBe(3);
    await t.sched.saveLearned();
    const again = t.restart();
    const launches = scanner.launches.length;
    clock.t += 30 * 60_000;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 3600 }); // a renewal within the quiet time
    await again.tick();
    expect(scanner.launches.length).toBe(launches);
    expect(again.learnedState().restored).toContain('1 binding(s) whose last scan found no host');
    // the form a version before the count wrote: one no-host each, silent until seen again
    await t.store.saveLearned([{ name: 'no-host', state: JSON.stringify([[1, clock.t]]), savedAt: clock.t }]);
    const third = t.restart();
    await third.tick();
    expect(third.learnedState().restored).toContain('1 binding(s) whose last scan found no host');
  });
});
