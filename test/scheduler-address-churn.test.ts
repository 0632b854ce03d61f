/**
 * One address taken under a new MAC every 10 s (identity probe, session 41: 18 MACs in 3 minutes
 * gave 18 scans of the address): at most ADDRESS_DEVICES devices there get a scan within the
 * hour; the next waits until the oldest of those scans is an hour old, decided and counted, and
 * the region's other devices are not held up.
 */
import { describe, expect, it } from 'vitest';
import { ADDRESS_DEVICES, ADDRESS_WINDOW_MS, AddressChurn } from '../src/scheduler/churn.js';
import { mac, setup } from './helpers/scheduler.js';

const ATTACKED = '10.20.4.66';

describe('an address scanned for many devices within the hour', () => {
  it('a new MAC every 10 s for 10 minutes: three scans of the address, not one a minute; the holder then an hour after the first; other devices go', async () => {
    const { scanner, sched, see, clock, store } = await setup({ pickupS: 60 });
    const scansOf = (ip: string) => scanner.launches.filter((l) => l.targets.includes(ip)).length;
    const finishAll = () => {
      for (const l of scanner.launches) if (scanner.states.get(l.ref) === 'running' || scanner.states.get(l.ref) === 'queued') scanner.finish(l.ref);
    };
    for (let k = 0; k < 60; k++) {
      await see({ ip: ATTACKED, mac: mac(100 + k), hostname: 'rotator' });
      await sched.tick();
      finishAll(); // scans as quick as the dry-run's: each MAC's scan over before the next MAC
      clock.t += 10_000;
      await sched.tick();
    }
    expect(scansOf(ATTACKED)).toBe(ADDRESS_DEVICES);
    expect(sched.counters.heldAddressChurn).toBeGreaterThanOrEqual(1);
    const held = (await store.recentDecisions(200)).filter((d) => d.ip === ATTACKED && d.reason.startsWith('waits until'));
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(held[0].reason).toMatch(/^waits until 2026-11-23T1[01]:\d\d:\d\d\.\d{3}Z: 3 other devices of address 10\.20\.4\.66 were scanned within 60 min \(3 at most\)$/);
    // another device of the region is launched meanwhile
    await see({ ip: '10.20.4.70', mac: mac(7) });
    await sched.tick();
    expect(scansOf('10.20.4.70')).toBe(1);
    // an hour after the first of those scans, the holder then (the last MAC) is scanned
    for (let k = 0; k < 70 && scansOf(ATTACKED) === ADDRESS_DEVICES; k++) {
      clock.t += 60_000;
      finishAll();
      await sched.tick();
    }
    expect(scansOf(ATTACKED)).toBe(ADDRESS_DEVICES + 1);
    const last = scanner.launches.filter((l) => l.targets.includes(ATTACKED)).at(-1)!;
    expect(scanner.launches.indexOf(last)).toBeGreaterThan(0);
    const launched = (await store.recentDecisions(400)).filter((d) => d.ip === ATTACKED && d.decision === 'launched');
    expect(launched.length).toBe(ADDRESS_DEVICES + 1);
  });

  it('a VPN pool\'s address handed to a new user every 2 min is not held: each user is scanned (lowest-free pools hand addresses on at once)', async () => {
    const { scanner, sched, see, clock } = await setup({ pickupS: 60 });
    for (let k = 0; k < 6; k++) {
      await see({ ip: '10.20.8.2', user: `user${k}`, kind: 'tunnel-up', format: 'openvpn', durationS: undefined });
      await sched.tick();
      for (const l of scanner.launches) if (scanner.states.get(l.ref) !== 'finished') scanner.finish(l.ref);
      clock.t += 120_000;
      await sched.tick();
    }
    expect(scanner.launches.filter((l) => l.targets.includes('10.20.8.2'))).toHaveLength(6);
    expect(sched.counters.heldAddressChurn).toBe(0);
  });

  it('one VPN login reconnecting under a new machine name every 10 s (a new identity each time) is held after three: counted by its user (review: 11 scans in 10 min)', async () => {
    const { scanner, sched, see, clock } = await setup({ pickupS: 60 });
    for (let k = 0; k < 60; k++) {
      await see({ ip: '10.20.8.3', user: 'mallory', hostname: `pc-${k}`, kind: 'tunnel-up', format: 'openvpn', durationS: undefined });
      await sched.tick();
      for (const l of scanner.launches) if (scanner.states.get(l.ref) !== 'finished') scanner.finish(l.ref);
      clock.t += 10_000;
      await sched.tick();
    }
    expect(scanner.launches.filter((l) => l.targets.includes('10.20.8.3'))).toHaveLength(ADDRESS_DEVICES);
    expect(sched.counters.heldAddressChurn).toBeGreaterThanOrEqual(1);
  });

  it('one VPN login reconnecting under new machine names at a new address each time (a round-robin pool) is held after three all the same', async () => {
    const { scanner, sched, see, clock } = await setup({ pickupS: 60 });
    for (let k = 0; k < 12; k++) {
      await see({ ip: `10.20.8.${30 + k}`, user: 'mallory', hostname: `pc-${k}`, kind: 'tunnel-up', format: 'openvpn', durationS: undefined });
      await sched.tick();
      for (const l of scanner.launches) if (scanner.states.get(l.ref) !== 'finished') scanner.finish(l.ref);
      clock.t += 60_000;
      await sched.tick();
    }
    expect(scanner.launches.flatMap((l) => l.targets).filter((ip) => ip.startsWith('10.20.8.'))).toHaveLength(ADDRESS_DEVICES);
  });

  it('only other devices count: the same device scanned again there (a relaunch after a cancel) is not held; an hour frees the address', () => {
    const churn = new AddressChurn();
    const t0 = Date.parse('2026-11-23T10:00:00Z');
    for (const [id, min] of [[1, 0], [2, 10], [3, 20]]) churn.launched('10.20.4.10', id, t0 + min * 60_000);
    expect(churn.heldUntil('10.20.4.10', 1, t0 + 30 * 60_000)).toBeUndefined(); // two others
    expect(churn.heldUntil('10.20.4.10', 4, t0 + 30 * 60_000)).toEqual({ until: t0 + 60 * 60_000, devices: 3 });
    expect(churn.heldUntil('10.20.4.11', 4, t0 + 30 * 60_000)).toBeUndefined(); // another address
    expect(churn.heldUntil('10.20.4.10', 4, t0 + 60 * 60_000)).toBeUndefined(); // the first an hour old
    // five others within the hour (10, 20, 61, 62, 63 min): held until the third newest is an hour old
    for (const [id, min] of [[5, 61], [6, 62], [7, 63]]) churn.launched('10.20.4.10', id, t0 + min * 60_000);
    expect(churn.heldUntil('10.20.4.10', 9, t0 + 64 * 60_000)).toEqual({ until: t0 + 61 * 60_000 + ADDRESS_WINDOW_MS, devices: 5 });
  });
});
