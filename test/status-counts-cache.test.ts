/**
 * On a fleet large enough that counting it costs over 100 ms, the status page and /metrics reuse the
 * count (http/costly.ts), but an operator's skip or rescan shows at the next read: the counts are
 * keyed by the operators' last mark. Real daemon, real SQLite file, 50,000 devices.
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

const dir = mkdtempSync(join(tmpdir(), 'onsight-counts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 50_000;

describe('counts over a large fleet', () => {
  it('are reused between reads, and an operator\'s skip shows at the next read all the same', async () => {
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC', inputs: [],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.0.0.0/8'], appliances: ['a'], scanWindows: ['* 00:00-24:00'] }],
      http: { enabled: false },
    });
    const d = new Daemon({ config, log: silentLogger(), tickMs: 3_600_000, sweepMs: 3_600_000 });
    await d.start();
    try {
      const now = Date.now();
      const at = new Date(now - 30 * 60_000).toISOString();
      const hex = (x: number) => x.toString(16).padStart(2, '0');
      const ids: number[] = [];
      for (let i = 0; i < N; i += 5000) {
        const batch: Sighting[] = [];
        for (let k = i; k < i + 5000; k++) {
          batch.push({ kind: 'lease', ip: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`, mac: `52:54:01:${hex((k >> 16) & 255)}:${hex((k >> 8) & 255)}:${hex(k & 255)}`, at, format: 'isc-dhcpd', source: 'test', durationS: 86400 } as Sighting);
        }
        for (const r of await d.inventory.commitBatch(batch)) ids.push(r.identityId!);
      }
      const view = daemonView(d);
      const first = await buildStatus(view, { coverageDays: 0 });
      expect(first.regions[0].due).toBe(N);
      // reused: counted once (over 100 ms for 50,000 devices), the second read has the same count time
      const second = await buildStatus(view, { coverageDays: 0 });
      expect(second.presentEvaluatedAt).toBe(first.presentEvaluatedAt);
      // an operator skips three devices: the next read counts again
      await new OperatorMarks(d.scheduler.store).skip(ids.slice(0, 3), Date.now() + 3600_000, Date.now());
      const after = await buildStatus(view, { coverageDays: 0 });
      expect(after.regions[0].due).toBe(N - 3);
      expect(after.regions[0].notDue.skipped).toBe(3);
      expect(Date.parse(after.presentEvaluatedAt)).toBeGreaterThan(Date.parse(first.presentEvaluatedAt));
    } finally {
      await d.stop();
    }
  }, 60_000);
});
