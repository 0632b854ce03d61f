/**
 * "Missed (24 h)" reasons on the status page belong to the device that left, not to whoever held
 * its address before or after: a reused address must not make an unscanned device look scanned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { daemonView } from '../src/daemon/view.js';
import { buildStatus } from '../src/http/status.js';
import { silentLogger } from '../src/log.js';
import type { Sighting } from '../src/sighting.js';
import { OperatorMarks } from '../src/scheduler/marks.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-missed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a daemon with one always-open region, no inputs, and timers too slow to act during a test */
async function startQuietDaemon(state: string): Promise<Daemon> {
  const { config } = validateConfig({
    state: join(dir, state), timezone: 'UTC', inputs: [],
    policy: { scope: ['10.0.0.0/8'] },
    regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['a'], scanWindows: ['* 00:00-24:00'] }],
    http: { enabled: false },
  });
  const d = new Daemon({ config, log: silentLogger(), tickMs: 3_600_000, sweepMs: 3_600_000 });
  await d.start();
  return d;
}

describe('missed reasons are keyed by device', () => {
  it('a device that reused a scanned device\'s address and left unscanned is not "other:scanned"', async () => {
    const d = await startQuietDaemon('state.db');
    try {
      const now = Date.now();
      const at = (minAgo: number) => new Date(now - minAgo * 60_000).toISOString();
      const s = (x: Partial<Sighting>): Sighting => ({ kind: 'lease', ip: '10.20.0.5', format: 'isc-dhcpd', source: 'test', durationS: 86400, ...x }) as Sighting;
      // device A holds the address, is scanned, leaves
      const [a] = await d.inventory.commitBatch([s({ mac: '52:54:00:00:00:0a', at: at(300) })]);
      await d.inventory.markScanned([a.identityId!], now - 250 * 60_000, 'onsight');
      await d.scheduler.store.decide({ at: now - 250 * 60_000, ip: '10.20.0.5', identityId: a.identityId, decision: 'scanned', reason: 'scan finished' });
      await d.inventory.commitBatch([s({ kind: 'release', mac: '52:54:00:00:00:0a', at: at(200) })]);
      // device B takes the address and leaves before anything was decided about it
      const [b] = await d.inventory.commitBatch([s({ mac: '52:54:00:00:00:0b', at: at(100) })]);
      await d.inventory.commitBatch([s({ kind: 'release', mac: '52:54:00:00:00:0b', at: at(90) })]);
      expect(b.identityId).not.toBe(a.identityId);
      const emea = (await buildStatus(daemonView(d), {})).regions.find((r) => r.name === 'emea')!;
      expect(emea.missed).toBe(1);
      expect(emea.missedWhy.map((w) => w.key)).toEqual(['no-decision']);
    } finally {
      await d.stop();
    }
  });

  it('operator skips count as the scheduler counts them: a skipped device is not due, and one that left is not missed', async () => {
    const d = await startQuietDaemon('skips.db');
    try {
      const now = Date.now();
      const at = (minAgo: number) => new Date(now - minAgo * 60_000).toISOString();
      const s = (x: Partial<Sighting>): Sighting => ({ kind: 'lease', format: 'isc-dhcpd', source: 'test', durationS: 86400, ...x }) as Sighting;
      const [present, gone, other] = await d.inventory.commitBatch([
        s({ ip: '10.20.0.1', mac: '52:54:00:00:01:01', at: at(30) }),
        s({ ip: '10.20.0.2', mac: '52:54:00:00:01:02', at: at(30) }),
        s({ ip: '10.20.0.3', mac: '52:54:00:00:01:03', at: at(30) }),
      ]);
      await d.inventory.commitBatch([s({ kind: 'release', ip: '10.20.0.2', mac: '52:54:00:00:01:02', at: at(10) })]);
      const before = (await buildStatus(daemonView(d), {})).regions[0];
      expect([before.due, before.missed]).toEqual([2, 1]);
      await new OperatorMarks(d.scheduler.store).skip([present.identityId!, gone.identityId!], now + 3600_000, now - 60 * 60_000);
      const after = (await buildStatus(daemonView(d), {})).regions[0];
      expect(after.due).toBe(1); // only the device nobody skipped
      expect(after.notDue.skipped).toBe(1);
      expect(after.missed).toBe(0);
      expect(other.identityId).toBeDefined();
    } finally {
      await d.stop();
    }
  });
});
