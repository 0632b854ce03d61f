/**
 * When an appliance is usually full (others' nightly scans), learned from our own scans' waits:
 * the day profile itself, the appliance book that skips an appliance at those hours, and the
 * scheduler that learns it from a poll, or from a long scan's end when no poll saw it wait, and
 * sends the next night's launch elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { BUSY_BIN_MS, BUSY_MEMORY_MS, BusyHours, LONGEST_HABIT_MS } from '../src/scheduler/busyhours.js';
import { ApplianceBook } from '../src/scheduler/appliances.js';
import { silentLogger } from '../src/log.js';
import { mac, setup, T0 } from './helpers/scheduler.js';

const H = 3_600_000, DAY = 24 * H;
const NIGHT = Date.parse('2026-11-23T22:00:00Z');

describe('BusyHours', () => {
  it('marks the times of day a wait went through, believes them on later days, and forgets them after BUSY_MEMORY_MS', () => {
    const busy = new BusyHours();
    busy.sawWait('A1', NIGHT + 10 * 60_000, NIGHT + 8 * H); // 22:10 → 06:00
    expect(busy.usuallyFull('A1', NIGHT + DAY + 3 * H)).toBe(true); // 01:00 the next night
    expect(busy.usuallyFull('A1', NIGHT + DAY + 5 * 60_000)).toBe(true); // 22:05: the quarter-hour 22:00 was waited through
    expect(busy.usuallyFull('A1', NIGHT + DAY - 30 * 60_000)).toBe(false); // 21:30: not seen full
    expect(busy.usuallyFull('A1', NIGHT + DAY + 8 * H + BUSY_BIN_MS)).toBe(false); // 06:15
    expect(busy.usuallyFull('A2', NIGHT + DAY + 3 * H)).toBe(false); // another appliance
    expect(busy.freeAt('A1', NIGHT + DAY + 3 * H)).toBe(NIGHT + DAY + 8 * H + BUSY_BIN_MS); // the run ends after 06:00–06:15
    expect(busy.describe('A1', NIGHT + DAY)).toBe('22:00–06:15 UTC');
    // believed BUSY_MEMORY_MS after the wait, then the appliance is tried again
    expect(busy.usuallyFull('A1', NIGHT + 3 * H + BUSY_MEMORY_MS - BUSY_BIN_MS)).toBe(true);
    expect(busy.usuallyFull('A1', NIGHT + 3 * H + BUSY_MEMORY_MS + DAY)).toBe(false);
  });

  it('a free slot seen at a time of day clears it until a wait is seen there again', () => {
    const busy = new BusyHours();
    busy.sawWait('A1', NIGHT, NIGHT + 2 * H);
    busy.sawRoom('A1', NIGHT + DAY + H + 60_000); // 23:01 the next night: others' scans did not come
    expect(busy.usuallyFull('A1', NIGHT + DAY + H + 5 * 60_000)).toBe(false);
    expect(busy.usuallyFull('A1', NIGHT + DAY + 30 * 60_000)).toBe(true); // 22:30 still believed
    busy.sawWait('A1', NIGHT + 2 * DAY + H, NIGHT + 2 * DAY + H + 10 * 60_000);
    expect(busy.usuallyFull('A1', NIGHT + 3 * DAY + H + 5 * 60_000)).toBe(true);
  });

  it('a wait longer than LONGEST_HABIT_MS is not a time of day: only its first hours are marked', () => {
    const busy = new BusyHours();
    busy.sawWait('A1', NIGHT, NIGHT + 3 * DAY);
    expect(busy.usuallyFull('A1', NIGHT + 3 * DAY + LONGEST_HABIT_MS - BUSY_BIN_MS)).toBe(true);
    expect(busy.usuallyFull('A1', NIGHT + 3 * DAY + LONGEST_HABIT_MS + BUSY_BIN_MS)).toBe(false);
    expect(busy.describe('A1', NIGHT + 3 * DAY)).not.toBe('all day');
    busy.sawWait('A1', NIGHT, NIGHT); // a wait seen at one moment
    busy.sawWait('A1', NIGHT + H, NIGHT); // an end before the start marks nothing
    expect(busy.usuallyFull('A1', NIGHT + DAY + H + BUSY_BIN_MS)).toBe(true); // from the long wait
  });
});

describe('ApplianceBook and the usual hours', () => {
  const regions = [{ name: 'R1', appliances: [{ name: 'A1', maxScans: 2 }, { name: 'A3', maxScans: 2 }] }, { name: 'R2', appliances: [{ name: 'A1', maxScans: 2 }] }];
  it('sends a launch away from an appliance at the hours it is usually full, and holds it when the region has no other', () => {
    const book = new ApplianceBook(silentLogger());
    book.update([{ name: 'A1', online: true, runningScans: 0 }, { name: 'A3', online: true, runningScans: 1 }], regions, [], NIGHT - 2 * H);
    const nextNight = NIGHT + DAY + H;
    expect(book.pick(regions[0], regions, [], new Set(), nextNight)?.name).toBe('A1'); // less loaded by the last list
    book.busy.sawWait('A1', NIGHT, NIGHT + 7 * H);
    const r1 = book.pick(regions[0], regions, [], new Set(), nextNight);
    expect(r1?.name).toBe('A3');
    expect(r1?.why).toMatch(/A1 usually full until 05:15 UTC/);
    expect(book.pick(regions[1], regions, [], new Set(), nextNight)).toBeUndefined(); // R2 waits for the free time
    expect(book.pick(regions[1], regions, [], new Set(), nextNight, false)?.name).toBe('A1'); // not asked to avoid them (a plentiful allowance reads the list)
    expect(book.pick(regions[1], regions, [], new Set(), NIGHT + DAY + 9 * H)?.name).toBe('A1'); // 07:00: free
    expect(book.describe('A1', 2, 360, nextNight).usuallyFull).toBe('22:00–05:15 UTC');
    expect(book.describe('A3', 2, 360, nextNight).usuallyFull).toBeUndefined();
    // a list read that shows fewer scans running than the appliance was seen to run: room at that hour
    book.update([{ name: 'A1', online: true, runningScans: 2 }, { name: 'A3', online: true, runningScans: 1 }], regions, [], NIGHT + DAY + 2 * H);
    book.update([{ name: 'A1', online: true, runningScans: 1 }, { name: 'A3', online: true, runningScans: 1 }], regions, [], NIGHT + DAY + 2 * H + 60_000);
    expect(book.pick(regions[1], regions, [], new Set(), NIGHT + DAY + 2 * H + 120_000)?.name).toBe('A1');
  });
});

describe('scheduler: with a scarce allowance, an appliance full at night is avoided the next night', () => {
  const HOLD = 31 * 60_000; // a scarce allowance holds a launch up to 30 min for a fuller wave
  it('learned from a poll that found our scan waiting behind others\' scans', async () => {
    const { scanner, sched, see, clock } = await setup({ pickupS: 360, idlePollS: 60 });
    scanner.limit = { limit: 500, windowSec: 86_400 }; // scarce: no list read before a launch would show others' scans
    clock.t = NIGHT;
    await see({ ip: '10.20.1.1', mac: mac(1), durationS: 86400 });
    clock.t += HOLD;
    await sched.tick();
    expect(scanner.launches[0].appliance).toBe('emea-1');
    scanner.states.set(scanner.launches[0].ref, 'queued');
    scanner.appliancesState[0].runningScans = 1; // others' nightly scan holds emea-1's slot
    clock.t += 8 * 60_000;
    await sched.tick(); // the poll finds it still queued after pickup
    expect(sched.applianceLearned('emea-1').usuallyFull).toBe('22:30–22:45 UTC');
    // it starts in the morning and ends; others' scans end
    scanner.states.set(scanner.launches[0].ref, 'running');
    scanner.appliancesState[0].runningScans = 0;
    clock.t = NIGHT + 8 * H;
    await sched.tick();
    scanner.finish(scanner.launches[0].ref);
    clock.t += 61_000;
    await sched.tick();
    // a morning launch reads the list the wait asked for (others' scans gone); none is read again before the next night's launch
    clock.t = NIGHT + 9 * H;
    await see({ ip: '10.20.1.3', mac: mac(3), durationS: 86400 });
    clock.t += HOLD;
    await sched.tick();
    expect(scanner.launches).toHaveLength(2);
    scanner.finish(scanner.launches[1].ref);
    clock.t += 61_000;
    await sched.tick();
    // the next night at the same hour (by the last list, emea-1 is as free as emea-2): a new device goes to emea-2
    clock.t = NIGHT + DAY;
    await see({ ip: '10.20.1.2', mac: mac(2), durationS: 86400 });
    clock.t += HOLD;
    await sched.tick();
    expect(scanner.launches[2].appliance).toBe('emea-2');
  });

  it('learned from a scan that lasted hours longer than its kind, with no poll in between', async () => {
    const { scanner, sched, see, clock } = await setup({ pickupS: 360, idlePollS: 60 });
    scanner.limit = { limit: 500, windowSec: 86_400 };
    const iso = (t: number) => new Date(t).toISOString();
    // eight scans of one target in the day, 20 minutes each: what a scan of one takes
    for (let n = 1; n <= 8; n++) {
      clock.t = T0 + n * H;
      await see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 86400 });
      clock.t += HOLD;
      await sched.tick();
      const ref = scanner.launches.at(-1)!.ref;
      scanner.times.set(ref, { launchedAt: iso(clock.t), endedAt: iso(clock.t + 20 * 60_000) });
      scanner.finish(ref);
      clock.t += 25 * 60_000;
      await sched.tick();
    }
    expect(scanner.launches).toHaveLength(8);
    // one launched at 22:31 onto emea-1 that ended at 06:20: it waited for others' nightly scans
    clock.t = NIGHT;
    await see({ ip: '10.20.1.20', mac: mac(20), durationS: 86400 });
    clock.t += HOLD;
    await sched.tick();
    const night = scanner.launches.at(-1)!;
    expect(night.appliance).toBe('emea-1');
    expect(sched.applianceLearned('emea-1').usuallyFull).toBeUndefined();
    scanner.times.set(night.ref, { launchedAt: iso(clock.t), endedAt: iso(NIGHT + 8 * H + 20 * 60_000) });
    scanner.finish(night.ref);
    clock.t = NIGHT + 9 * H;
    await sched.tick();
    expect(sched.applianceLearned('emea-1').usuallyFull).toBe('22:30–06:15 UTC'); // from after pickup to the end less a typical scan
    clock.t = NIGHT + DAY + 2 * H;
    await see({ ip: '10.20.1.21', mac: mac(21), durationS: 86400 });
    clock.t += HOLD;
    await sched.tick();
    expect(scanner.launches.at(-1)!.appliance).toBe('emea-2');
  });
});
