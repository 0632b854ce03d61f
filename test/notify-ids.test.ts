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
import { openSqliteStore } from '../src/store/sqlite-store.js';
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

  it('every device that left is reported, past a page of ended bindings (a sweep after an outage ends more at once)', async () => {
    const store = openSqliteStore(join(mkdtempSync(join(tmpdir(), 'onsight-missed-')), 'state.db'), { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 });
    try {
      const t0 = Date.parse('2026-12-01T08:00:00Z');
      const n = ENDED_PAGE + 37;
      const batch: Sighting[] = [];
      const ip = (k: number) => `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
      const mac = (k: number) => `52:54:00:${((k >> 16) & 255).toString(16).padStart(2, '0')}:${((k >> 8) & 255).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')}`;
      for (let k = 1; k <= n; k++) batch.push({ kind: 'lease', ip: ip(k), mac: mac(k), at: new Date(t0).toISOString(), format: 'isc-dhcpd', source: 't' });
      // they all leave within two seconds: many share an end time, so the pages meet inside one
      for (let k = 1; k <= n; k++) batch.push({ kind: 'release', ip: ip(k), mac: mac(k), at: new Date(t0 + 60_000 + (k % 2) * 1000).toISOString(), format: 'isc-dhcpd', source: 't' });
      await store.inventory.commitBatch(batch);
      const ctx: NotifyContext = {
        identity: () => undefined, regionOf: () => 'r',
        endedBindings: async (since, now, before) => (await store.inventory.endedBindings(since, now, before)).map((e) => ({
          view: { id: e.id, ip: e.ip, identityId: e.identityId, startAt: e.startAt, lastSeen: e.endAt } as never, endAt: e.endAt, presentElsewhere: e.presentElsewhere,
        })),
        decisionPagesSince: async function* () { /* none */ },
        evaluator: () => () => ({ due: true, reason: 'due', detail: 'never scanned', region: 'r' }),
      };
      const cfg = { webhook: { url: 'http://127.0.0.1:9/', secret: { env: 'S' }, events: ['host-missed' as const], timeoutS: 1, maxAttempts: 1, backoffS: 0.05, maxBackoffS: 1, maxQueue: 10 } };
      const notifier = new Notifier(cfg as never, ctx, silentLogger(), t0, { S: 'secret-0123456789' });
      try {
        expect(await notifier.checkMissed(t0 + 120_000)).toBe(n);
        expect(await notifier.checkMissed(t0 + 150_000)).toBe(0); // each once
      } finally {
        notifier.close();
      }
    } finally {
      await store.close();
    }
  }, 60_000);
});
