import { describe, expect, it } from 'vitest';
import { ApplianceBook } from '../src/scheduler/appliances.js';
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
    expect(book.pick(regions[0], regions, [])).toBeUndefined();
    expect(book.pick(regions[2], regions, [])).toBeUndefined();
  });

  it('counts our launches and ended scans between reads, and reads less often while nothing else changes', () => {
    const book = new ApplianceBook(silentLogger());
    const T0 = Date.parse('2026-11-23T10:00:00Z');
    expect(book.stale(T0, 300)).toBe(true);
    book.update(list(1, 0), regions, [], T0);
    book.launched('A1');
    expect(book.load('A1', []).load).toBe(2);
    book.ended('A1');
    book.ended('A1');
    expect(book.load('A1', []).load).toBe(0);
    expect(book.stale(T0 + 299_000, 300)).toBe(false);
    expect(book.stale(T0 + 300_000, 300)).toBe(true);
    book.update(list(1, 0), regions, [], T0 + 300_000); // the same again: twice the interval
    expect(book.stale(T0 + 300_000 + 599_000, 300)).toBe(false);
    expect(book.stale(T0 + 300_000 + 600_000, 300)).toBe(true);
    book.invalidate('A3'); // read again at once, whatever the back-off
    expect(book.stale(T0 + 300_001, 300)).toBe(true);
  });
});
