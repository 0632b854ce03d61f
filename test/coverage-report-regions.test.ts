/**
 * The coverage report's two blind spots, on a real SQLite state file: devices in scope that no
 * region maps (a forgotten site) get their own "(no region)" row and count in the total, and a
 * device that moved regions counts in each region it was in but once in the total. Read through
 * the library, the status page's timeline and the real CLI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coverageReport, type CoverageQuery } from '../src/coverage/report.js';
import { coverageTimeline } from '../src/http/coverage.js';
import { daemonView, type ViewedParts } from '../src/daemon/view.js';
import { loadConfig } from '../src/config/load.js';
import { policyFor } from '../src/config/derive.js';
import type { Store } from '../src/store/types.js';
import { CLI } from './helpers/paths.js';
import { STORE_KINDS } from './helpers/stores.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-report-regions-'));
const state = join(dir, 'state.db');
const cfg = join(dir, 'onsight.yaml');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// the scope is broader than the regions: 10.40.0.0/16 (a site nobody added) is in scope, mapped by none
writeFileSync(cfg, `
state: ${state}
timezone: UTC
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"], exclude: ["10.20.9.0/24", "10.40.9.0/24"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-1] }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [amer-1] }
http: { enabled: false }
`);

const HOUR = 3600_000;
const now = Date.now();
const from = now - 6 * HOUR;
let store: Store;
let query: CoverageQuery;

beforeAll(async () => {
  store = await STORE_KINDS[0].open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 }, state);
  const at = (ms: number) => new Date(ms).toISOString();
  const mac = (k: number) => `52:54:00:00:03:${k.toString(16).padStart(2, '0')}`;
  const lease = (ip: string, k: number, t: number) => ({ kind: 'lease', ip, mac: mac(k), at: at(t), format: 'isc-dhcpd', source: 't', durationS: 86400 }) as never;
  const release = (ip: string, k: number, t: number) => ({ kind: 'release', ip, mac: mac(k), at: at(t), format: 'isc-dhcpd', source: 't' }) as never;
  const t1 = now - 5 * HOUR;
  const r = await store.inventory.commitBatch([
    // the forgotten site: 1 present, 2 came and went, 3 scanned (by a range scan), 4 on an excluded address
    lease('10.40.1.1', 1, t1), lease('10.40.1.2', 2, t1), lease('10.40.1.3', 3, t1), lease('10.40.9.4', 4, t1),
    // outside the scope: not the report's business
    lease('192.168.1.5', 5, t1),
    // emea: 6 scanned
    lease('10.20.1.6', 6, t1),
    // 7 leaves emea unscanned and is in amer now, still unscanned; 8 is scanned in emea, then moves to amer
    lease('10.20.1.7', 7, t1), lease('10.20.1.8', 8, t1),
  ], [], t1);
  const id = (k: number) => r[k - 1].identityId!;
  await store.scheduler.decide({ at: t1 + 60_000, ip: '10.40.1.3', identityId: id(3), decision: 'scanned', reason: 'found by a range scan' });
  await store.scheduler.decide({ at: t1 + 60_000, ip: '10.20.1.6', identityId: id(6), decision: 'scanned', reason: 'scan s/6' });
  await store.scheduler.decide({ at: t1 + 60_000, ip: '10.20.1.8', identityId: id(8), decision: 'scanned', reason: 'scan s/8' });
  const t2 = now - 3 * HOUR;
  await store.inventory.commitBatch([release('10.40.1.2', 2, t2), release('10.20.1.7', 7, t2), release('10.20.1.8', 8, t2)], [], t2);
  const t3 = now - 2 * HOUR;
  await store.inventory.commitBatch([lease('10.30.1.7', 7, t3), lease('10.30.1.8', 8, t3)], [], t3);
  const policy = policyFor(loadConfig(cfg).config);
  query = { inventory: store.inventory, store: store.scheduler, history: store.history, policy, marks: new Map(), from, to: now, now };
});

const missedBy = (x: Record<string, number> = {}) => ({
  'left-while-queued': 0, 'left-during-scan': 0, 'scan-failed': 0, 'outside-scan-window': 0, 'no-decision': 0, other: 0, 'no-region': 0, ...x,
});

describe('devices in scope that no region maps', () => {
  it('have their own row, with coverage and misses, and count in the total', async () => {
    const r = await coverageReport(query);
    expect(r.regions.map((x) => x.region)).toEqual(['emea', 'amer', '(no region)']);
    expect(r.regions[2]).toEqual({
      region: '(no region)', noRegion: true, seen: 3, scanned: 1, coveragePct: 33.3, pending: 1, skipped: 0, missed: 1,
      missedBy: missedBy({ 'no-region': 1 }), excluded: 1,
    });
    // 6 devices: 1, 2, 3 unmapped; 6, 7, 8 in the regions. Scanned: 3, 6, 8; pending: 1, 7; missed: 2
    expect(r.total).toEqual({ seen: 6, scanned: 3, coveragePct: 50, pending: 2, skipped: 0, missed: 1, missedBy: missedBy({ 'no-region': 1 }), excluded: 1 });
  });

  it('are left out when one region is asked for', async () => {
    const r = await coverageReport({ ...query, region: 'emea' });
    expect(r.regions.map((x) => x.region)).toEqual(['emea']);
    expect(r.total.seen).toBe(3);
  });

  it('show on the status page every day, as 0 on days none was seen (rows line up by position)', async () => {
    const view = daemonView({ inventory: store.inventory, scheduler: { store: store.scheduler }, store, policy: query.policy } as unknown as ViewedParts);
    // the devices came within 6 h: two days ago none was seen, and that day's count alone has no such row
    const points = await coverageTimeline(view, 3);
    for (const p of points) expect(p.regions.map((x) => x.region)).toEqual(['emea', 'amer', '(no region)']);
    expect(points[0].regions[2]).toMatchObject({ seen: 0, scanned: 0, coveragePct: 100, missed: 0 });
    expect(points[2].regions[2].seen).toBeGreaterThan(0);
  });
});

describe('a device that moved regions in the period', () => {
  it('counts in each region it was in, as that region saw it, and once in the total', async () => {
    const r = await coverageReport(query);
    const row = (name: string) => r.regions.find((x) => x.region === name)!;
    // emea: 6 scanned, 7 left unscanned, 8 scanned before it left
    expect(row('emea')).toMatchObject({ seen: 3, scanned: 2, pending: 0, missed: 1 });
    expect(row('emea').missedBy['no-decision']).toBe(1);
    // amer: 7 present and unscanned, 8 covered by its emea scan
    expect(row('amer')).toMatchObject({ seen: 2, scanned: 1, pending: 1, missed: 0 });
    // 7 and 8 are in two rows each, once in the total, as amer (their last region) has them: 7 pending, not missed; 8 scanned
    const sum = (k: 'seen' | 'scanned' | 'pending' | 'missed') => r.regions.reduce((n, x) => n + x[k], 0);
    expect(r.total.seen).toBe(sum('seen') - 2);
    expect(r.total.scanned).toBe(sum('scanned') - 1);
    expect(r.total.pending).toBe(sum('pending'));
    expect(r.total.missed).toBe(sum('missed') - 1);
    expect(r.total.missedBy['no-decision']).toBe(0);
  });
});

describe('onsight report renders the new row and the total', () => {
  const run = (...args: string[]) => execFileSync(process.execPath, [CLI, 'report', '--config', cfg, '--since', '6h', ...args], { encoding: 'utf8' });

  it('--json: the rows, then the total (each device once)', () => {
    const r = JSON.parse(run('--json')) as { regions: { region: string }[]; total: { seen: number } };
    expect(r.regions.map((x) => x.region)).toEqual(['emea', 'amer', '(no region)']);
    expect(r.total.seen).toBe(6);
  });

  it('--csv keeps its columns in place (new ones last) and ends with the total', () => {
    const csv = run('--csv').trimEnd().split('\r\n');
    expect(csv[0]).toBe('region,seen,scanned,coverage_pct,pending,skipped,missed,missed_left_while_queued,missed_left_during_scan,missed_scan_failed,missed_outside_scan_window,missed_no_decision,missed_other,excluded,missed_no_region');
    expect(csv[3]).toBe('(no region),3,1,33.3,1,0,1,0,0,0,0,0,0,1,1');
    expect(csv[4]).toBe('(total),6,3,50.0,2,0,1,0,0,0,0,0,0,1,1');
    expect(csv).toHaveLength(5);
  });

  it('the table: the no-region row, the total and what the total means', () => {
    const out = run();
    expect(out).toMatch(/\n\(no region\) +3 +1 +33\.3% +1 +0 +1 +no-region 1 +1\n/);
    expect(out).toMatch(/\n\(total\) +6 +3 +50\.0% +2 +0 +1 +no-region 1 +1\n/);
    expect(out).toMatch(/once in the total/);
  });
});
