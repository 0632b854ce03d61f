/**
 * `onsight report`: coverage per region from a real SQLite state file built by the real
 * inventory and scheduler (scripted scanner, hand-moved clock), read by the real CLI. Numbers are
 * per device: a device seen on two addresses counts once; one seen before the period not at all.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorMarks } from '../src/scheduler/marks.js';
import type { Sighting } from '../src/sighting.js';
import { CLI } from './helpers/paths.js';
import { mac, setup } from './helpers/scheduler.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-report-'));
const state = join(dir, 'state.db');
const cfg = join(dir, 'onsight.yaml');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => execFileSync(process.execPath, [CLI, 'report', '--config', cfg, ...args], { encoding: 'utf8' });

beforeAll(async () => {
  // the scheduler harness's regions and policy, as a config the CLI reads
  writeFileSync(cfg, `
state: ${state}
timezone: UTC
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"], exclude: ["10.20.9.0/24"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-1, emea-2] }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [{ name: amer-1, maxScans: 2 }], maxConcurrentScans: 2 }
http: { enabled: false }
`);
  const { db, clock, inv, scanner, sched, see, store } = await setup({}, {}, state);
  const at = () => new Date(clock.t).toISOString();
  const lease = (ip: string, n: number): Partial<Sighting> & Pick<Sighting, 'ip'> => ({ ip, mac: mac(n), durationS: 86400 });
  const release = (ip: string, n: number) => inv.commitBatch([{ kind: 'release', ip, mac: mac(n), at: at(), format: 'isc-dhcpd', source: 't' } as Sighting]);
  // G: seen and gone ten days ago (before the period)
  clock.t = Date.now() - 10 * 86400_000;
  await inv.commitBatch([{ kind: 'lease', ip: '10.20.1.70', mac: mac(70), at: at(), format: 'isc-dhcpd', source: 't', durationS: 3600 } as Sighting]);
  clock.t += 600_000;
  await release('10.20.1.70', 70);

  clock.t = Date.now() - 3 * 3600_000;
  // D (amer) is skipped by an operator before the scheduler's first pass
  const d = await see(lease('10.30.1.4', 4));
  await new OperatorMarks(store).skip([d.identityId!], Date.now() + 86400_000, clock.t);
  // A (emea) is launched; B waits behind it (one scan at a time in emea) and leaves while queued
  await see(lease('10.20.1.1', 1));
  await sched.tick();
  expect(scanner.launches).toHaveLength(1);
  clock.t += 60_000;
  await see(lease('10.20.1.2', 2));
  await sched.tick();
  expect(scanner.launches).toHaveLength(1);
  clock.t += 300_000;
  await release('10.20.1.2', 2);
  scanner.finish(scanner.launches[0].ref);
  clock.t += 60_000;
  await sched.tick();
  await sched.tick();
  // A comes back on another address: the same device
  clock.t += 600_000;
  await inv.commitBatch([{ kind: 'lease', ip: '10.20.1.8', mac: mac(1), at: at(), format: 'isc-dhcpd', source: 't', durationS: 86400 } as Sighting]);
  // F (amer) comes and goes before the scheduler looks at it; E is excluded; C is present, not scanned yet
  await inv.commitBatch([{ kind: 'lease', ip: '10.30.1.6', mac: mac(6), at: at(), format: 'isc-dhcpd', source: 't', durationS: 86400 } as Sighting]);
  clock.t += 60_000;
  await release('10.30.1.6', 6);
  await see(lease('10.20.9.5', 5));
  await see(lease('10.20.1.3', 3));
  db.close();
});

describe('onsight report', () => {
  it('--json: per region seen, scanned within policy, pending, skipped, missed by reason, excluded; and the total', () => {
    const r = JSON.parse(run('--since', '7d', '--json')) as { regions: Record<string, unknown>[]; total: Record<string, unknown> };
    expect(r.regions).toEqual([
      { region: 'emea', seen: 3, scanned: 1, coveragePct: 33.3, pending: 1, skipped: 0, missed: 1, excluded: 1,
        missedBy: { 'left-while-queued': 1, 'left-during-scan': 0, 'scan-failed': 0, 'outside-scan-window': 0, 'no-decision': 0, other: 0, 'no-region': 0 } },
      { region: 'amer', seen: 2, scanned: 0, coveragePct: 0, pending: 0, skipped: 1, missed: 1, excluded: 0,
        missedBy: { 'left-while-queued': 0, 'left-during-scan': 0, 'scan-failed': 0, 'outside-scan-window': 0, 'no-decision': 1, other: 0, 'no-region': 0 } },
    ]);
    // no device moved and the regions cover the scope: the total is the rows' sum, and there is no "(no region)" row
    expect(r.total).toEqual({ seen: 5, scanned: 1, coveragePct: 20, pending: 1, skipped: 1, missed: 2, excluded: 1,
      missedBy: { 'left-while-queued': 1, 'left-during-scan': 0, 'scan-failed': 0, 'outside-scan-window': 0, 'no-decision': 1, other: 0, 'no-region': 0 } });
  });

  it('--since 30d takes in the device seen ten days ago (missed: nothing was decided about it)', () => {
    const r = JSON.parse(run('--since', '30d', '--json', '--region', 'emea')) as { regions: { region: string; seen: number; missed: number }[] };
    expect(r.regions).toEqual([expect.objectContaining({ region: 'emea', seen: 4, missed: 2 })]);
  });

  it('--csv and --html carry the same numbers; the table is the default', () => {
    const csv = run('--csv').split('\r\n');
    expect(csv[0]).toBe('region,seen,scanned,coverage_pct,pending,skipped,missed,missed_left_while_queued,missed_left_during_scan,missed_scan_failed,missed_outside_scan_window,missed_no_decision,missed_other,excluded,missed_no_region');
    expect(csv[1]).toBe('emea,3,1,33.3,1,0,1,1,0,0,0,0,0,1,0');
    expect(csv[2]).toBe('amer,2,0,0.0,0,1,1,0,0,0,0,1,0,0,0');
    expect(csv[3]).toBe('(total),5,1,20.0,1,1,2,1,0,0,0,1,0,1,0');
    const html = run('--html');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<tr><td>emea</td><td class="n">3</td><td class="n">1</td><td class="n">33.3</td>');
    expect(run()).toMatch(/^coverage .*\nREGION +SEEN +SCANNED +COVERAGE[^\n]*\n-+[^\n]*\nemea +3 +1 +33\.3% +1 +0 +1 +left-while-queued 1 +1\n/);
  });

  it('refuses an unknown region and two formats at once (exit 2)', () => {
    const bad = spawnSync(process.execPath, [CLI, 'report', '--config', cfg, '--region', 'mars'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--region: no region "mars"/);
    const two = spawnSync(process.execPath, [CLI, 'report', '--config', cfg, '--csv', '--html'], { encoding: 'utf8' });
    expect(two.status).toBe(2);
  });
});
