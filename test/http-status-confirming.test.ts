/**
 * The status (`/api/status`, the page, /metrics) counts a target whose scan has ended and whose
 * credit waits for the host list as `confirming`, as `onsight hosts` says, not as being scanned
 * (a review: the operator saw two answers). Real daemon in process, real SQLite file.
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

const dir = mkdtempSync(join(tmpdir(), 'onsight-status-confirming-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('status and hosts agree on a scan that has ended', () => {
  it('a target whose scan ended, awaiting the host list, is not counted as being scanned', async () => {
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC', inputs: [],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.0.0.0/8'], appliances: ['a'], scanWindows: ['* 00:00-00:01'] }],
      http: { enabled: false },
    });
    const d = new Daemon({ config, log: silentLogger(), tickMs: 3_600_000, sweepMs: 3_600_000 });
    await d.start();
    try {
      const now = Date.now();
      const s = (ip: string, mac: string) => ({ kind: 'lease', ip, mac, at: new Date(now - 60_000).toISOString(), format: 'isc-dhcpd', source: 't', durationS: 7200 }) as Sighting;
      const [a, b] = await d.inventory.commitBatch([s('10.0.0.7', '52:54:00:00:00:07'), s('10.0.0.8', '52:54:00:00:00:08')]);
      const sch = d.scheduler.store;
      for (const [r, ip, id] of [[a, '10.0.0.7', 'i-ended'], [b, '10.0.0.8', 'i-running']] as const) {
        await sch.enqueue({ bindingId: r.bindingId!, ip, identityId: r.identityId!, region: 'emea', dueSince: now - 60_000 });
        await sch.createIntent({ id, region: 'emea', appliance: 'a', createdAt: now - 50_000, epoch: 0 }, [{ ip, identityId: r.identityId!, bindingId: r.bindingId! }]);
        expect(await sch.setRunning(id, `scan/${id}`, now - 40_000)).toBe(true);
      }
      expect(await sch.finishKeeping('i-ended', now - 10_000, new Set([a.bindingId!]))).toBe(true);
      const st = await buildStatus(daemonView(d), { coverageDays: 0 });
      expect(st.regions[0].scans.running).toBe(1);
      expect(st.regions[0].scanning).toBe(1); // hosts: 10.0.0.7 confirming, 10.0.0.8 scanning
      expect(st.regions[0].confirming).toBe(1);
      expect(st.totals).toMatchObject({ scanning: 1, confirming: 1 });
    } finally {
      await d.stop();
    }
  }, 60_000);
});
