import { describe, expect, it } from 'vitest';
import { ApplianceBook, FULL_MEMORY_MS, OTHERS_LONG_MS } from '../src/scheduler/appliances.js';
import { silentLogger } from '../src/log.js';

const regions = [
  { name: 'R1', appliances: [{ name: 'A1', maxScans: 2 }, { name: 'A3', maxScans: 2 }] },
  { name: 'R2', appliances: [{ name: 'A1', maxScans: 2 }] },
  { name: 'R6', appliances: [{ name: 'A3', maxScans: 2 }] },
];
const list = (a1: number, a3: number, a3online = true) => [
  { name: 'A1', online: true, runningScans: a1 }, { name: 'A3', online: a3online, runningScans: a3 },
];

describe('ApplianceBook', () => {
  it('picks the least-loaded online appliance; between equals, the one fewer waiting regions depend on', () => {
    const book = new ApplianceBook(silentLogger());
    book.update(list(0, 0), regions, [], 0);
    expect(book.pick(regions[0], regions, [], new Set(['R2']))?.name).toBe('A3'); // R2 can use only A1
    expect(book.pick(regions[0], regions, [], new Set(['R6']))?.name).toBe('A1'); // R6 can use only A3
    book.update(list(0, 1), regions, [], 0);
    expect(book.pick(regions[0], regions, [], new Set(['R2']))?.name).toBe('A1'); // load first
    book.update(list(2, 0, false), regions, [], 0);
    book.sawFull('A1', 2, 0); // A1 runs 2 at most
    expect(book.pick(regions[0], regions, [])).toBeUndefined();
    expect(book.pick(regions[2], regions, [])).toBeUndefined();
  });

  it('counts others\' scans as last listed plus ours now, and reads less often while nothing else changes', () => {
    const book = new ApplianceBook(silentLogger());
    const T0 = Date.parse('2026-11-23T10:00:00Z');
    expect(book.stale(T0, 300)).toBe(true);
    book.update(list(1, 0), regions, [], T0);
    const mine = { id: 'i1', region: 'R2', appliance: 'A1', state: 'running' as const, scanRef: 'scan/1', createdAt: T0, launchedAt: T0 };
    expect(book.load('A1', [mine]).load).toBe(2); // one of others' (listed) and ours since
    expect(book.load('A1', []).load).toBe(1); // ours ended: others' only
    expect(book.stale(T0 + 299_000, 300)).toBe(false);
    expect(book.stale(T0 + 300_000, 300)).toBe(true);
    book.update(list(1, 0), regions, [], T0 + 300_000); // the same again: twice the interval
    expect(book.stale(T0 + 300_000 + 599_000, 300)).toBe(false);
    expect(book.stale(T0 + 300_000 + 600_000, 300)).toBe(true);
    book.invalidate('A3'); // read again at once, whatever the back-off
    expect(book.stale(T0 + 300_001, 300)).toBe(true);
  });

  it('is overrun when the lists in a row have shown others\' scans in every slot for the time asked (theirs may take turns), ours and our range runs not counted', () => {
    const book = new ApplianceBook(silentLogger());
    const T0 = Date.parse('2026-11-23T10:00:00Z');
    const H = 3_600_000;
    const a1 = (refs: string[] | undefined, n = refs?.length ?? 0) => [{ name: 'A1', online: true, runningScans: n, ...(refs ? { runningScanRefs: refs } : {}) }, { name: 'A3', online: true, runningScans: 0, runningScanRefs: [] }];
    const ours = { id: 'i1', region: 'R2', appliance: 'A1', state: 'running' as const, scanRef: 'scan/ours', createdAt: T0, launchedAt: T0 };
    // (A1 configured for 2 at once)
    book.update(a1(['x', 'y']), regions, [], T0);
    expect(book.overrun('A1', H)).toBe(false); // held, but for no time yet
    book.update(a1(['x', 'z']), regions, [], T0 + H); // y ended, z of theirs took its slot at once: still held
    expect(book.overrun('A1', H)).toBe(true);
    expect(book.overrun('A1', 2 * H)).toBe(false);
    // a slot free at one list ends the streak
    book.update(a1(['x']), regions, [], T0 + 2 * H);
    expect(book.overrun('A1', 0)).toBe(false);
    book.update(a1(['x', 'w']), regions, [], T0 + 3 * H);
    expect(book.overrun('A1', H)).toBe(false);
    // a slot ours (a scan of ours, or a range run ranges.ts names) is not theirs
    book.update(a1(['x', 'scan/ours']), regions, [ours], T0 + 4 * H);
    expect(book.overrun('A1', 0)).toBe(false);
    book.update(a1(['x', 'run/1']), regions, [], T0 + 5 * H, new Set(['run/1']));
    expect(book.overrun('A1', 0)).toBe(false);
    expect(book.load('A1', []).load).toBe(1); // (the run is not others' load either)
    book.update(a1(['x', 'w']), regions, [], T0 + 6 * H);
    // a list with counts only counts as well; the streak goes on
    book.update(a1(undefined, 2), regions, [], T0 + 7 * H);
    expect(book.overrun('A1', H)).toBe(true);
    // learned to run 3 at once: 2 of theirs no longer fill it
    book.update(a1(['x', 'w', 'v']), regions, [], T0 + 8 * H);
    book.update(a1(['x', 'w']), regions, [], T0 + 9 * H);
    expect(book.overrun('A1', 0)).toBe(false);
    // offline: nothing runs there, ours or theirs (placement takes it as blocked on its own)
    book.update([{ name: 'A1', online: false, runningScans: 3, runningScanRefs: ['x', 'y', 'v'] }, { name: 'A3', online: true, runningScans: 0 }], regions, [], T0 + 10 * H);
    expect(book.overrun('A1', 0)).toBe(false);
    expect(book.load('A1', []).online).toBe(false);
    expect(book.load('A3', []).online).toBe(true);
  });

  it('learns an appliance\'s slots: probes one past what it saw run, and holds at what ran while ours waited', () => {
    const book = new ApplianceBook(silentLogger());
    const T0 = Date.parse('2026-11-23T10:00:00Z');
    const intent = (n: number) => ({ id: `i${n}`, region: 'R1', appliance: 'A1', state: 'running' as const, scanRef: `scan/${n}`, createdAt: T0, launchedAt: T0 });
    // configured 1, nothing seen: one more than configured may be tried
    expect(book.capacity('A1', 1, T0)).toBe(2);
    // three scans seen running at once (ours among them): at least 3, so 4 may be tried
    book.update([{ name: 'A1', online: true, runningScans: 3, runningScanRefs: ['scan/1', 'scan/2', 'x'] }], regions, [intent(1), intent(2)], T0);
    expect(book.capacity('A1', 1, T0)).toBe(4);
    // a poll found scan/4 still queued after pickup; the list then shows 3 running without it: full at 3
    book.sawWaiting('A1', ['scan/4']);
    expect(book.stale(T0 + 1, 300)).toBe(true); // the list is read again at once
    book.update([{ name: 'A1', online: true, runningScans: 3, runningScanRefs: ['scan/1', 'scan/2', 'x'] }], regions, [intent(1), intent(2), intent(4)], T0 + 60_000);
    expect(book.capacity('A1', 1, T0 + 60_000)).toBe(3);
    expect(book.capacity('A1', 8, T0 + 60_000)).toBe(3); // over-configured: what was seen wins
    expect(book.pick(regions[1], regions, [intent(1), intent(2), intent(4)], new Set(), T0 + 60_000)).toBeUndefined(); // 1 foreign + 3 ours ≥ 3
    // a scan the poll saw waiting that has started by the list read proves nothing
    book.sawWaiting('A1', ['scan/5']);
    book.update([{ name: 'A1', online: true, runningScans: 4, runningScanRefs: ['scan/1', 'scan/2', 'scan/5', 'x'] }], regions, [intent(1), intent(2), intent(5)], T0 + 120_000);
    expect(book.capacity('A1', 1, T0 + 120_000)).toBe(5); // 4 ran: the old "full at 3" is wrong, probe on
    // "full" is believed for FULL_MEMORY_MS, then probed again
    book.sawFull('A1', 4, T0 + 200_000);
    expect(book.capacity('A1', 1, T0 + 200_000 + FULL_MEMORY_MS - 1)).toBe(4);
    expect(book.capacity('A1', 1, T0 + 200_000 + FULL_MEMORY_MS)).toBe(5);
  });

  it('knows how long an appliance may take to pick a scan up from its listed polling interval, else the configured pickupS', () => {
    const book = new ApplianceBook(silentLogger());
    book.update([{ name: 'A1', online: true, runningScans: 0, pollIntervalS: 600 }, { name: 'A3', online: true, runningScans: 0 }], regions, [], 0);
    expect(book.pickupMs('A1', 360)).toBe(600_000 + 180_000);
    expect(book.pickupMs('A3', 360)).toBe(360_000);
  });

  it('describes what it learned next to what is configured, and how (the status page and /metrics)', () => {
    const book = new ApplianceBook(silentLogger());
    const T0 = Date.parse('2026-11-23T10:00:00Z');
    expect(book.describe('A1', 1, 360, T0)).toMatchObject({ slotsSeen: 0, capacity: 2, pickupS: 360, configuredPickupS: 360, slotsHow: expect.stringContaining('nothing seen running yet') });
    book.update([{ name: 'A1', online: true, runningScans: 2, pollIntervalS: 190 }, { name: 'A3', online: true, runningScans: 0 }], regions, [], T0);
    const seen = book.describe('A1', 1, 360, T0);
    expect(seen).toMatchObject({ slotsSeen: 2, capacity: 3, pickupS: 370, pickupHow: 'listed polling interval 190 s + 180 s setup' });
    expect(seen.fullAt).toBeUndefined();
    expect(seen.slotsHow).toContain('seen running 2 at once (configured 1)');
    book.sawFull('A1', 2, T0 + 60_000);
    expect(book.describe('A1', 4, 360, T0 + 30 * 60_000)).toMatchObject({ slotsSeen: 2, fullAt: 2, capacity: 2, slotsHow: expect.stringMatching(/^full at 2: .* \(29 min ago; believed 6 h\)$/) });
    expect(book.describe('A1', 4, 360, T0 + 60_000 + FULL_MEMORY_MS)).not.toHaveProperty('fullAt');
    expect(book.describe('A1', 4, 360, T0 + 60_000 + FULL_MEMORY_MS)).toMatchObject({ capacity: 5, slotsHow: expect.stringContaining('the configured 4 applies') });
    expect(book.describe('A3', 1, 360, T0)).toMatchObject({ pickupS: 360, pickupHow: expect.stringContaining('configured pickupS') });
  });

  it('says when another tool\'s scan has held a slot for half a day or more (from the first list that named it), and logs it once at a day', () => {
    const lines: string[] = [];
    const log = { ...silentLogger(), warn: (_o: unknown, m: string) => { lines.push(m); } } as unknown as ReturnType<typeof silentLogger>;
    const book = new ApplianceBook(log);
    const T0 = Date.parse('2026-11-23T22:00:00Z'), H = 3_600_000;
    const ours = { id: 'i1', region: 'R2', appliance: 'A1', state: 'running', scanRef: 'scan/ours', createdAt: T0 } as never;
    const read = (t: number, refs: string[]) => book.update([{ name: 'A1', online: true, runningScans: refs.length, runningScanRefs: refs }, { name: 'A3', online: true, runningScans: 0 }], regions, [ours], t);
    read(T0, ['night/1', 'scan/ours']);
    read(T0 + OTHERS_LONG_MS - 60_000, ['night/1', 'night/2']);
    expect(book.describe('A1', 1, 360, T0 + OTHERS_LONG_MS - 60_000)).not.toHaveProperty('othersHow');
    read(T0 + 13 * H, ['night/1', 'night/2', 'scan/ours']);
    const d = book.describe('A1', 1, 360, T0 + 13 * H);
    expect(d.othersLongestH).toBe(13); // night/1 (seen since T0), not ours, not night/2
    expect(d.othersHow).toMatch(/another tool's scan \(night\/1\) has been running for at least 13 h \(listed since 2026-11-23T22:00:00.000Z\)/);
    expect(d.othersHow).toMatch(/canceled as stuck and relaunched later, when its devices may have left: range runs \(scheduler\.rangeScans\) keep their place/);
    expect(lines).toEqual([]);
    read(T0 + 25 * H, ['night/1', 'night/2']);
    read(T0 + 26 * H, ['night/1', 'night/2']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^appliance A1: another tool's scan night\/1 has run for at least 25 h: with nightly scans that long the appliance may not keep up, and scans of ours wait behind them; range runs \(scheduler\.rangeScans\) keep their place/);
    // it ended: the next longest is night/2, listed since T0 + 12 h less a minute
    read(T0 + 27 * H, ['night/2', 'night/3']);
    expect(book.describe('A1', 1, 360, T0 + 27 * H).othersLongestH).toBe(15);
    // a list that names no scans tells nothing; an appliance with none is quiet
    expect(book.describe('A3', 1, 360, T0 + 27 * H)).not.toHaveProperty('othersHow');
    // with range runs on, the text does not advise turning them on
    let on = false;
    const withRanges = new ApplianceBook(silentLogger(), () => on);
    withRanges.update([{ name: 'A1', online: true, runningScans: 1, runningScanRefs: ['night/1'] }], regions, [], T0);
    withRanges.update([{ name: 'A1', online: true, runningScans: 1, runningScanRefs: ['night/1'] }], regions, [], T0 + 13 * H);
    expect(withRanges.describe('A1', 1, 360, T0 + 13 * H).othersHow).toMatch(/: range runs \(scheduler\.rangeScans\) keep their place.*16-min hosts 90\.0 % coverage with them/);
    on = true;
    const said = withRanges.describe('A1', 1, 360, T0 + 13 * H).othersHow;
    expect(said).toMatch(/: range runs \(scheduler\.rangeScans, on\) keep their place in its queue and scan whoever is present when they start; a run is placed on another appliance .*; with aim auto they are not aimed for a day after one still waits/);
    expect(said).not.toMatch(/90\.0 %/);
  });
});
