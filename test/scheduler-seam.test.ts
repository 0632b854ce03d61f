/**
 * The scheduler decides from the scanner's FailureOutcome alone (the scripted scanner throws its
 * own failures, no vendor codes): `wait` holds every call until the scanner's time, `stop` stops
 * launching and says why until the config is reloaded, `launched: unknown` is reconciled by the
 * intent id. Scans that never end are given up after maxScanAgeS; targets the scanner dropped
 * from a scan are not recorded as scanned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { hostsView } from '../src/cli/views.js';
import { mac, setup } from './helpers/scheduler.js';

describe('scheduler and the scanner seam', () => {
  it("'wait': no call at all before the scanner's time (not retried every minute), then the launch goes out; not counted as a failed attempt", async () => {
    const { scanner, sched, see, clock, store } = await setup({ retryBackoffS: 60 });
    scanner.waitUntil = clock.t + 3 * 3600_000;
    scanner.failNext = 'rate-limited';
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(scanner.launches).toHaveLength(0);
    expect(sched.scannerBlock().waitUntil).toBe(scanner.waitUntil);
    const callsAfterFailure = scanner.calls.length;
    for (let m = 1; m < 170; m += 7) { // 175 minutes
      clock.t += 7 * 60_000;
      await see({ ip: `10.20.1.${10 + m}`, mac: mac(10 + (m % 200)) }); // news keeps arriving
      await sched.tick();
    }
    expect(scanner.calls.length).toBe(callsAfterFailure); // not one call in three hours
    clock.t = scanner.waitUntil + 1000;
    await sched.tick();
    expect(scanner.launches.length).toBeGreaterThan(0);
    expect((await store.queued(1))?.attempts ?? 0).toBe(0);
    expect(sched.scannerBlock().waitUntil).toBeUndefined();
  });

  it("'stop': no more launches, the reason is exposed, and a reloaded config lets it try again", async () => {
    const { scanner, sched, see, clock, policy } = await setup();
    scanner.failNext = 'denied';
    await see({ ip: '10.20.1.1', mac: mac(1) });
    await sched.tick();
    expect(sched.scannerBlock().stopped).toMatchObject({ code: 'ONSIGHT_SCANNER_DENIED', message: 'scripted: account disabled' });
    const calls = scanner.calls.length;
    for (let i = 0; i < 5; i++) {
      clock.t += 10 * 60_000;
      await sched.tick();
    }
    expect(scanner.calls.length).toBe(calls);
    expect(scanner.launches).toHaveLength(0);
    // SIGHUP: the operator fixed the account
    sched.reconfigure(policy, (sched as unknown as { core: { opts: Parameters<typeof sched.reconfigure>[1] } }).core.opts);
    expect(sched.scannerBlock().stopped).toBeUndefined();
    await sched.tick();
    expect(scanner.launches).toHaveLength(1);
  });

  it('a scan in a state the scanner does not explain is looked up after maxScanAgeS, then given up and its targets requeued', async () => {
    const { scanner, sched, see, clock, store } = await setup({ maxScanAgeS: 6 * 3600, idlePollS: 600, pollIntervalS: 60 });
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    const [first] = scanner.launches;
    scanner.states.set(first.ref, 'unknown');
    for (let h = 0; h < 6; h++) {
      clock.t += 3600_000 - 1000;
      await sched.tick();
    }
    expect(await store.activeIntents()).toHaveLength(1); // still waiting: not yet overdue
    clock.t += 7000;
    const lists = scanner.calls.filter((c) => c === 'list').length;
    await sched.tick(); // overdue: looked up at once
    expect(scanner.calls.filter((c) => c === 'list').length).toBe(lists + 1);
    clock.t += 600_000;
    await sched.tick(); // still unknown: given up, canceled, requeued, relaunched
    expect(sched.counters.givenUp).toBe(1);
    expect((await store.intent((await store.recentIntents(5)).find((i) => i.scanRef === first.ref)!.id))?.state).toBe('abandoned');
    expect(scanner.states.get(first.ref)).toBe('canceled');
    expect((await store.recentDecisions(10)).some((d) => d.decision === 'not-scanned' && /still unknown 6 h after launch: given up/.test(d.reason))).toBe(true);
    expect(scanner.launches).toHaveLength(1); // not while the canceled scan's appliance may still probe the region
    clock.t += 201_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    expect(scanner.launches[1].targets).toEqual(['10.20.1.1']);
  });

  it('a scan given up after maxScanAgeS: a target the scanner already scanned is credited (verifyResults), the others requeued', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ maxScanAgeS: 6 * 3600, idlePollS: 600, pollIntervalS: 60, verifyResults: true });
    const done = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    await sched.tick();
    const [first] = scanner.launches;
    scanner.states.set(first.ref, 'unknown');
    scanner.lastScannedDates.set('10.20.1.1', new Date(clock.t + 3600_000).toISOString());
    for (let h = 0; h < 6; h++) {
      clock.t += 3600_000 - 1000;
      await sched.tick();
    }
    clock.t += 7000;
    await sched.tick(); // overdue: looked up
    clock.t += 600_000;
    await sched.tick(); // given up
    expect(sched.counters.givenUp).toBe(1);
    expect((await inv.binding(done.bindingId!))!.lastScannedAt).toBe(clock.t);
    clock.t += 201_000;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    expect(scanner.launches[1].targets).toEqual(['10.20.1.2']);
  });

  it('an overdue scan that ends between the poll and the cancel is not given up: the next poll records its end and credits it', async () => {
    const { scanner, sched, see, clock, inv, store } = await setup({ maxScanAgeS: 6 * 3600, idlePollS: 600, pollIntervalS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    await sched.tick();
    const [first] = scanner.launches;
    for (let h = 0; h < 6; h++) {
      clock.t += 3600_000 - 1000;
      await sched.tick();
    }
    clock.t += 7000;
    await sched.tick(); // overdue: looked up (still running)
    scanner.beforeCancel = (ref) => scanner.finish(ref); // it ends as the give-up's cancel goes out
    clock.t += 600_000;
    await sched.tick();
    expect(scanner.calls).toContain('cancel');
    expect(sched.counters.givenUp).toBe(0);
    expect(scanner.states.get(first.ref)).toBe('finished');
    scanner.beforeCancel = undefined;
    for (let k = 0; k < 20 && (await inv.binding(a.bindingId!))?.lastScannedAt === undefined; k++) {
      clock.t += 61_000;
      await sched.tick();
    }
    expect((await inv.binding(a.bindingId!))?.lastScannedAt).toBeDefined();
    expect((await store.intent((await store.recentIntents(5)).find((i) => i.scanRef === first.ref)!.id))?.state).toBe('finished');
    expect(scanner.launches).toHaveLength(1); // nothing relaunched
  });

  it('targets a finished scan lacks in its own target list are not recorded as scanned, are counted, and say why', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ idlePollS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1) });
    const b = await see({ ip: '10.20.1.2', mac: mac(2) });
    await sched.tick();
    const [l] = scanner.launches;
    expect(l.targets).toHaveLength(2);
    scanner.reportedTargets.set(l.ref, ['10.20.1.1']); // the scanner left 10.20.1.2 out
    scanner.finish(l.ref);
    clock.t += 61_000;
    await sched.tick();
    expect((await inv.binding(a.bindingId!))?.lastScannedAt).toBeDefined();
    expect((await inv.binding(b.bindingId!))?.lastScannedAt).toBeUndefined();
    expect(sched.counters.droppedByScanner).toBe(1);
    expect((await sched.store.lastDroppedByScanner()).get(`10.20.1.2|${(await inv.binding(b.bindingId!))!.identityId}`)?.reason).toMatch(/left 10\.20\.1\.2 out of its target list/);
    // back in the queue with back-off, not relaunched at once
    expect(await sched.store.queued(b.bindingId!)).toMatchObject({ attempts: 1 });
  });

  it('`onsight hosts` shows a target the scanner dropped, and why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-seam-'));
    try {
      const state = join(dir, 'state.db');
      const { scanner, sched, see, clock, db } = await setup({ idlePollS: 60 }, {}, state);
      await see({ ip: '10.20.1.1', mac: mac(1) });
      await see({ ip: '10.20.1.2', mac: mac(2) });
      await sched.tick();
      const [l] = scanner.launches;
      scanner.reportedTargets.set(l.ref, ['10.20.1.1']);
      scanner.finish(l.ref);
      clock.t += 61_000;
      await sched.tick();
      db!.close();
      const config = validateConfig({
        state, timezone: 'UTC', policy: { scope: ['10.0.0.0/8'], exclude: ['10.20.9.0/24'] },
        regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-1', 'emea-2'] }],
      }).config;
      const rows = JSON.parse(await hostsView({ config, now: clock.t }, true)) as { ip: string; status: string; why: string }[];
      expect(rows.find((r) => r.ip === '10.20.1.2')).toMatchObject({ status: 'dropped-by-scanner', why: expect.stringMatching(/left 10\.20\.1\.2 out of its target list/) });
      expect(rows.find((r) => r.ip === '10.20.1.1')?.status).toBe('scanned-recently');
      const table = await hostsView({ config, now: clock.t }, false);
      expect(table).toMatch(/10\.20\.1\.2 .*dropped-by-scanner .*outside the scanner's subscription/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a range in the reported target list covers the addresses inside it', async () => {
    const { scanner, sched, see, clock, inv } = await setup({ idlePollS: 60 });
    const a = await see({ ip: '10.20.1.1', mac: mac(1) });
    const b = await see({ ip: '10.20.1.2', mac: mac(2) });
    await sched.tick();
    const [l] = scanner.launches;
    scanner.reportedTargets.set(l.ref, ['10.20.1.1-10.20.1.3']);
    scanner.finish(l.ref);
    clock.t += 61_000;
    await sched.tick();
    expect((await inv.binding(a.bindingId!))?.lastScannedAt).toBeDefined();
    expect((await inv.binding(b.bindingId!))?.lastScannedAt).toBeDefined();
    expect(sched.counters.droppedByScanner).toBe(0);
  });
});
