/**
 * The reads the status page, metrics and the coverage report make over a fleet of 1M (issue 18),
 * on both stores: the decision log's scans a page at a time (HistoryStore.scanPagesUntil), and a
 * DecisionIndex built from pages keeping only the decisions about the devices asked for, which
 * must answer as the index over the whole log does.
 */
import { describe, expect, it as itAll } from 'vitest';
import { DecisionIndex, decisionIndexFor } from '../src/coverage/missed.js';
import { coverageReport, coverageReports } from '../src/coverage/report.js';
import { validateConfig } from '../src/config/load.js';
import { policyFor } from '../src/config/derive.js';
import type { Decision } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-03-02T08:00:00Z');
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 };

describe.each(STORE_KINDS)('scanPagesUntil on $name', (kind) => {
  if (kind.skip) console.log(`skip scanPagesUntil on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;
  it('only scanned decisions naming a device, up to the time, oldest first, a page at a time', async () => {
    const store = await kind.open(OPTS);
    const log: Decision[] = [
      { at: T0, ip: '10.0.0.1', identityId: 1, decision: 'scanned', reason: 'scan/1' },
      { at: T0 + 1000, ip: '10.0.0.2', identityId: 2, decision: 'due', reason: 'due' },
      { at: T0 + 2000, ip: '10.0.0.3', decision: 'scanned', reason: 'no device' },
      { at: T0 + 3000, ip: '10.0.0.2', identityId: 2, decision: 'scanned', reason: 'scan/2' },
      { at: T0 + 4000, ip: '10.0.0.1', identityId: 1, decision: 'scanned', reason: 'scan/3' },
      { at: T0 + 5000, ip: '10.0.0.4', identityId: 4, decision: 'scanned', reason: 'after' },
    ];
    for (const d of log) await store.scheduler.decide(d);
    const pages = [];
    for await (const page of store.history.scanPagesUntil(T0 + 4000, 2)) pages.push(page);
    expect(pages).toEqual([
      [{ identityId: 1, at: T0 }, { identityId: 2, at: T0 + 3000 }],
      [{ identityId: 1, at: T0 + 4000 }],
    ]);
  });
});

describe.each(STORE_KINDS)('coverage of several days in one pass on $name', (kind) => {
  const it = kind.skip ? itAll.skip : itAll;
  it('counts each day as a report of that day alone does', async () => {
    const store = await kind.open(OPTS);
    const day = 86400_000;
    const D0 = Date.parse('2026-03-02T00:00:00Z');
    const at = (ms: number) => new Date(ms).toISOString();
    const s = (x: Record<string, unknown>) => ({ format: 'isc-dhcpd', source: 't', durationS: 7200, ...x }) as never;
    const mac = (k: number) => `52:54:00:00:02:${k.toString(16).padStart(2, '0')}`;
    // day 0: 1 scanned, 2 left unscanned (queued), 3 excluded; day 1: 1 again (moves), 4 spans midnight; day 2: 5 present
    const r = await store.inventory.commitBatch([
      s({ kind: 'lease', ip: '10.20.0.1', mac: mac(1), at: at(D0 + 3600_000) }),
      s({ kind: 'lease', ip: '10.20.0.2', mac: mac(2), at: at(D0 + 3600_000) }),
      s({ kind: 'lease', ip: '10.20.9.3', mac: mac(3), at: at(D0 + 3600_000) }),
      s({ kind: 'release', ip: '10.20.0.2', mac: mac(2), at: at(D0 + 2 * 3600_000) }),
      s({ kind: 'lease', ip: '10.20.0.4', mac: mac(4), at: at(D0 + day - 1800_000) }),
      s({ kind: 'lease', ip: '10.20.0.11', mac: mac(1), at: at(D0 + day + 3600_000) }),
      s({ kind: 'lease', ip: '10.20.0.5', mac: mac(5), at: at(D0 + 2 * day + 3600_000) }),
    ], [], D0);
    await store.scheduler.decide({ at: D0 + 3600_000 + 60_000, ip: '10.20.0.2', identityId: r[1].identityId, decision: 'due', reason: 'due' });
    await store.scheduler.decide({ at: D0 + 3600_000 + 90_000, ip: '10.20.0.1', identityId: r[0].identityId, decision: 'scanned', reason: 'scan/1' });
    const config = validateConfig({ state: ':memory:', timezone: 'UTC', inputs: [], policy: { scope: ['10.0.0.0/8'], exclude: ['10.20.9.0/24'], rescanAfter: '30d' },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['a'] }], scanner: { type: 'dry-run' }, http: { enabled: false } }).config;
    const now = D0 + 2 * day + 7200_000;
    const q = { inventory: store.inventory, store: store.scheduler, history: store.history, policy: policyFor(config), marks: new Map(), now };
    const days = [0, 1, 2].map((n) => ({ from: D0 + n * day, to: Math.min(now, D0 + (n + 1) * day) }));
    const together = await coverageReports(q, days);
    const alone = [];
    for (const p of days) alone.push(await coverageReport({ ...q, ...p }));
    expect(together).toEqual(alone);
    // and the figures are not all zero: day 0 saw 1 (scanned), 2 (missed: left while queued), 4; 3 excluded
    expect(alone[0].regions[0]).toMatchObject({ seen: 3, scanned: 1, missed: 1, excluded: 1 });
    expect(alone[0].regions[0].missedBy['left-while-queued']).toBe(1);
  });
});

describe('decisionIndexFor', () => {
  itAll('answers for the devices asked about as the index over the whole log does, keeping only theirs', async () => {
    const log: Decision[] = [];
    for (let k = 0; k < 60; k++) {
      // devices 0..9 by identity; every 7th decision names no device (by address only)
      log.push({ at: T0 + k * 1000, ip: `10.0.0.${k % 10}`, identityId: k % 7 ? k % 10 : undefined, decision: k % 3 ? 'due' : 'launched', reason: `r${k}` });
    }
    const pages = async function* () {
      for (let i = 0; i < log.length; i += 8) yield log.slice(i, i + 8);
    };
    const asked = [3, 5].map((k) => ({ view: { id: k, ip: `10.0.0.${k}`, identityId: k, startAt: T0 + 20_000 } as never, endAt: T0 + 70_000, presentElsewhere: false }));
    const whole = new DecisionIndex(log.filter((d) => d.at <= T0 + 45_000));
    const paged = await decisionIndexFor(asked.map((e) => (e.view as { identityId: number; ip: string })), pages(), T0 + 45_000);
    for (const e of asked) {
      expect(paged.last(e)).toBeDefined();
      expect(paged.last(e)).toEqual(whole.last(e));
    }
    // a device with decisions only by address, after its binding started
    const byIp = { view: { id: 9, ip: '10.0.0.7', identityId: 99, startAt: T0 + 40_000 } as never, endAt: T0 + 70_000, presentElsewhere: false };
    const all = await decisionIndexFor([{ identityId: 99, ip: '10.0.0.7' }], pages());
    expect(all.last(byIp)).toEqual(new DecisionIndex(log).last(byIp));
    expect(all.last(byIp)?.identityId).toBeUndefined();
    // nothing asked: the log is not read
    let read = 0;
    await decisionIndexFor([], (async function* () { read++; yield log; })());
    expect(read).toBe(0);
  });
});
