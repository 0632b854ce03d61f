/**
 * The address-churn hold (churn.ts) across a restart: a client taking one address under a new MAC
 * every 10 s got ADDRESS_DEVICES scans, and after a restart (a package upgrade, a crash, a new
 * cluster leader) ADDRESS_DEVICES more, the record being in memory only. It is a learned part now
 * (memory.ts `address-churn`), written at the end of a pass within a minute of the launch, so a
 * daemon killed without its stop's save keeps it too. What is read back is checked row by row.
 */
import { describe, expect, it } from 'vitest';
import { ADDRESS_DEVICES, ADDRESS_WINDOW_MS, AddressChurn, MAX_LAUNCHES } from '../src/scheduler/churn.js';
import { SAVE_EVERY_MS } from '../src/scheduler/memory.js';
import { T0, mac, setup } from './helpers/scheduler.js';

const ATTACKED = '10.20.4.66';
const viaJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

describe('the address-churn hold across a restart', () => {
  it('a MAC-rotating client is held after a restart just as before it, the daemon killed (no save at stop) seconds after the last launch', async () => {
    const t = await setup({ pickupS: 60 });
    const { scanner, clock, store } = t;
    const scansOf = (ip: string) => scanner.launches.filter((l) => l.targets.includes(ip)).length;
    const finishAll = () => {
      for (const l of scanner.launches) if (scanner.states.get(l.ref) === 'running' || scanner.states.get(l.ref) === 'queued') scanner.finish(l.ref);
    };
    let sched = t.sched, k = 0;
    const rotate = async (n: number) => {
      for (let end = k + n; k < end; k++) {
        await t.see({ ip: ATTACKED, mac: mac(100 + k), hostname: 'rotator' });
        await sched.tick();
        finishAll();
        clock.t += 10_000;
        await sched.tick();
      }
    };
    // before the restart: three scans of the address, then the next MAC held
    while (sched.counters.heldAddressChurn === 0 && k < 60) await rotate(1);
    expect(scansOf(ATTACKED)).toBe(ADDRESS_DEVICES);
    const launches = scanner.launches.filter((l) => l.targets.includes(ATTACKED));
    const first = (await store.recentDecisions(400)).filter((d) => d.ip === ATTACKED && d.decision === 'launched').map((d) => d.at).sort((a, b) => a - b)[0];
    expect(first).toBe(T0);
    // the last launch was less than SAVE_EVERY_MS after the periodic save: written within a minute all the same
    expect(clock.t - T0).toBeLessThan(SAVE_EVERY_MS);
    const saved = (await store.learned()).find((r) => r.name === 'address-churn'); // (looked at below)

    // killed: no saveLearned; a new scheduler over the same file
    sched = t.restart();
    await rotate(60); // ten more minutes of new MACs
    expect(scanner.launches.filter((l) => l.targets.includes(ATTACKED))).toEqual(launches);
    expect(sched.counters.heldAddressChurn).toBeGreaterThanOrEqual(1);
    // what the killed scheduler had written: the three launches, by the passes that made them
    expect(JSON.parse(saved!.state).launches.filter((l: [string]) => l[0] === ATTACKED)).toHaveLength(ADDRESS_DEVICES);
    expect(sched.learnedState().restored).toContain(`${ADDRESS_DEVICES} launch(es) within 60 min at 1 address(es) and VPN user(s)`);
    const held = (await store.recentDecisions(50)).find((d) => d.ip === ATTACKED && d.reason.startsWith('waits until'));
    // (held until the oldest of the three is an hour old, as before the restart)
    expect(held?.reason).toMatch(/^waits until 2026-11-23T1[01]:\d\d:\d\d\.\d{3}Z: 3 other devices of address 10\.20\.4\.66 were scanned within 60 min \(3 at most\)$/);
    expect(Date.parse(/^waits until (\S+): /.exec(held!.reason)![1])).toBe(first + ADDRESS_WINDOW_MS);
    // an hour after the first of them, the holder then is scanned
    for (let n = 0; n < 70 && scansOf(ATTACKED) === ADDRESS_DEVICES; n++) {
      clock.t += 60_000;
      finishAll();
      await sched.tick();
    }
    expect(scansOf(ATTACKED)).toBe(ADDRESS_DEVICES + 1);
    expect(clock.t).toBeGreaterThanOrEqual(first + ADDRESS_WINDOW_MS);
  });

  it('a saved record an hour old holds nothing: only launches within the window are written and taken back', async () => {
    const t = await setup({ pickupS: 60 });
    const { scanner, clock } = t;
    for (let k = 0; k < 3; k++) {
      await t.see({ ip: ATTACKED, mac: mac(100 + k) });
      await t.sched.tick();
      for (const l of scanner.launches) if (scanner.states.get(l.ref) !== 'finished') scanner.finish(l.ref);
      clock.t += 61_000;
      await t.sched.tick();
    }
    expect(scanner.launches).toHaveLength(3);
    await t.sched.saveLearned();
    clock.t = T0 + ADDRESS_WINDOW_MS + 5 * 60_000;
    const again = t.restart();
    await t.see({ ip: ATTACKED, mac: mac(110) });
    await again.tick();
    expect(scanner.launches).toHaveLength(4);
    expect(again.counters.heldAddressChurn).toBe(0);
    expect(again.learnedState().restored).toContain('0 launch(es) within 60 min at 0 address(es) and VPN user(s)');
  });

  it('what is read back is checked row by row: a bad row refuses the part, with why; the others are taken', async () => {
    const t = await setup();
    const { store, clock } = t;
    await t.sched.tick(); // (the other parts written)
    const cases: [unknown, string][] = [
      [{ launches: [['10.20.4.66', 7, T0 - 60_000], ['10.20.4.66', 7, T0 - 30_000]] }, 'address-churn: launch 1: device 7 at 10.20.4.66 twice'],
      [{ launches: [['10.20.4.66', 0, T0]] }, 'address-churn: launch 0: device 0 is no device id'],
      [{ launches: [['10.20.4.66', 7, 'soon']] }, 'address-churn: launch 0: time "soon" is no time up to a day ahead of now'],
      [{ launches: [['10.20.4.66', 7, T0 + 2 * 86_400_000]] }, `address-churn: launch 0: time ${T0 + 2 * 86_400_000} is no time up to a day ahead of now`],
      [{ launches: [['', 7, T0]] }, 'address-churn: launch 0: no place (an address or a VPN user)'],
      [{ launches: [[7, T0]] }, 'address-churn: launch 0 is not [place, device, time]'],
      [{ launches: Array.from({ length: MAX_LAUNCHES + 1 }, (_, n) => [`10.20.${n >> 8}.${n & 255}`, 1, T0]) }, `address-churn: ${MAX_LAUNCHES + 1} launches, more than the ${MAX_LAUNCHES} this version keeps`],
      [{ places: {} }, 'address-churn: not in the form this version writes'],
    ];
    for (const [state, why] of cases) {
      await store.saveLearned([{ name: 'address-churn', state: JSON.stringify(state), savedAt: clock.t }]);
      const again = t.restart();
      await again.tick();
      expect(again.learnedState().left).toEqual([why]);
      expect(again.learnedState().restored.length).toBeGreaterThan(0); // (the other parts, saved by the first pass)
    }
  });

  it('bounded: MAX_LAUNCHES kept at most, the oldest forgotten first; a time ahead of now counts as now', () => {
    const c = new AddressChurn();
    // two devices an address (a place with one is not written: it holds no one)
    const addr = (k: number) => `10.20.${k >> 8}.${k & 255}`;
    for (let n = 0; n < MAX_LAUNCHES + 6; n++) c.launched(addr(n >> 1), n + 1, T0 + n);
    expect(c.size).toBeLessThanOrEqual(MAX_LAUNCHES);
    const rows = (viaJson(c.snapshot(T0 + MAX_LAUNCHES)) as { launches: [string, number, number][] }).launches;
    expect(rows.length).toBeLessThanOrEqual(c.size);
    expect(rows.length).toBeGreaterThan(MAX_LAUNCHES * 0.85);
    expect(rows[0][2]).toBeGreaterThan(T0 + 1000); // the oldest went
    expect(rows.at(-1)).toEqual([addr((MAX_LAUNCHES + 5) >> 1), MAX_LAUNCHES + 6, T0 + MAX_LAUNCHES + 5]);
    // one device at an address: not written
    const one = new AddressChurn();
    one.launched('10.20.0.1', 1, T0);
    expect((viaJson(one.snapshot(T0)) as { launches: unknown[] }).launches).toEqual([]);
    // three others at one address within the hour, one of them saved ahead of this clock: held until an hour from now at most
    const d = new AddressChurn();
    expect(d.merge({ launches: [['u', 1, T0 - 10 * 60_000], ['u', 2, T0 - 5 * 60_000], ['u', 3, T0 + 3_600_000]] }, T0)).toBe('3 launch(es) within 60 min at 1 address(es) and VPN user(s)');
    expect(d.heldUntil('u', 4, T0)).toEqual({ until: T0 - 10 * 60_000 + ADDRESS_WINDOW_MS, devices: 3 });
    expect(d.heldUntil('u', 4, T0 + 50 * 60_000)).toBeUndefined();
  });

  it('at the cap, launches at places that hold no one go first: a hold is not ended by 20,000 single launches elsewhere (review)', () => {
    const c = new AddressChurn();
    for (const id of [1, 2, 3]) c.launched('10.20.9.9', id, T0 + id); // the oldest launches: a hold at 10.20.9.9
    for (let n = 0; n < MAX_LAUNCHES; n++) c.launched(`10.21.${n >> 8}.${n & 255}`, 100 + n, T0 + 1000 + n);
    expect(c.size).toBeLessThanOrEqual(MAX_LAUNCHES);
    expect(c.heldUntil('10.20.9.9', 4, T0 + 2000)).toEqual({ until: T0 + 1 + ADDRESS_WINDOW_MS, devices: 3 });
  });
});
