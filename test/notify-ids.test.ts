/**
 * host-missed events across leaders: the event id names the binding and when it ended, so the
 * same miss reported again (a new cluster leader, a restart) is the same event to a receiver that
 * drops repeated ids; and a node that starts to lead looks back from then (less the takeover's
 * lookback), not from its own start days ago.
 */
import { describe, expect, it } from 'vitest';
import { factId } from '../src/notify/events.js';
import { Notifier, type NotifyContext } from '../src/notify/notifier.js';
import { silentLogger } from '../src/log.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { ENDED_PAGE } from '../src/store/types.js';
import type { Sighting } from '../src/sighting.js';

describe('host-missed across leaders', () => {
  it('ids name the fact: the same key gives the same UUID-shaped id, another key another', () => {
    const a = factId('host-missed 41 1796200000000');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(factId('host-missed 41 1796200000000')).toBe(a);
    expect(factId('host-missed 42 1796200000000')).not.toBe(a);
  });

  it('a node that starts to lead looks back from then, not from its own start', async () => {
    const started = Date.parse('2026-12-01T00:00:00Z');
    const sinces: number[] = [];
    const ctx: NotifyContext = {
      identity: () => undefined, regionOf: () => undefined,
      endedBindings: (since) => (sinces.push(since), []),
      decisionPagesSince: async function* () { /* none */ },
      evaluator: () => () => ({ due: false }) as never,
    };
    const cfg = { webhook: { url: 'http://127.0.0.1:9/', secret: { env: 'S' }, events: ['host-missed' as const], timeoutS: 1, maxAttempts: 1, backoffS: 0.05, maxBackoffS: 1, maxQueue: 10 } };
    const n = new Notifier(cfg as never, ctx, silentLogger(), started, { S: 'secret-0123456789' });
    const lead = started + 3 * 86_400_000;
    n.leading(lead);
    await n.checkMissed(lead + 1000);
    expect(sinces).toEqual([lead - 15 * 60_000]);
  });

  it('every device that left is reported, past a page of ended bindings (a sweep after an outage ends more at once), through the daemon', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-missed-'));
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC', inputs: [],
      policy: { rescanAfter: '30d', scope: ['10.0.0.0/8'] },
      regions: [{ name: 'r', cidrs: ['10.0.0.0/8'], appliances: ['a'] }],
      scanner: { type: 'dry-run', scanDurationS: 1 }, http: { enabled: false },
      notify: { webhook: { url: 'http://127.0.0.1:9/', secret: { env: 'ONSIGHT_TEST_HOOK_SECRET' } } },
    });
    process.env.ONSIGHT_TEST_HOOK_SECRET = 'secret-0123456789';
    const daemon = new Daemon({ config, log: silentLogger() });
    await daemon.start();
    try {
      const t0 = Date.now();
      const n = ENDED_PAGE + 37;
      const batch: Sighting[] = [];
      const ip = (k: number) => `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
      const mac = (k: number) => `52:54:00:${((k >> 16) & 255).toString(16).padStart(2, '0')}:${((k >> 8) & 255).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')}`;
      for (let k = 1; k <= n; k++) batch.push({ kind: 'lease', ip: ip(k), mac: mac(k), at: new Date(t0).toISOString(), format: 'isc-dhcpd', source: 't' });
      // they all leave within two seconds: many share an end time, so the pages meet inside one
      for (let k = 1; k <= n; k++) batch.push({ kind: 'release', ip: ip(k), mac: mac(k), at: new Date(t0 + 1000 + (k % 2) * 1000).toISOString(), format: 'isc-dhcpd', source: 't' });
      await daemon.inventory.commitBatch(batch);
      expect(await daemon.notifier.checkMissed(t0 + 5000)).toBe(n);
      expect(await daemon.notifier.checkMissed(t0 + 6000)).toBe(0); // each once
    } finally {
      await daemon.stop();
      delete process.env.ONSIGHT_TEST_HOOK_SECRET;
    }
  }, 120_000);
});
