/**
 * HEC repeat keys: a HEC request without an Idempotency-Key leaves one position row (the hash of
 * its body), which only answers an exact repeat within HEC_REPEAT_MS (10 min). Those rows are pruned
 * after HEC_REPEAT_MS, not after idempotencyTtlS (a day of them, one per request); Idempotency-Key
 * rows keep their day. Real HTTP client, real store (SQLite; PostgreSQL where available).
 */
import { afterEach, describe, expect, it as itAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ingest } from '../src/daemon/ingest.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startHttpInput } from '../src/sources/index.js';
import { httpInput } from '../src/sources/http/schema.js';
import { HEC_REPEAT_MS } from '../src/sources/http/input.js';
import { silentLogger } from '../src/log.js';
import { STORE_KINDS } from './helpers/stores.js';
import { until } from './helpers/wait.js';

const log = silentLogger();
const TOKEN = 'hec-token-prune-test';
process.env.ONSIGHT_TEST_PRUNE_TOKEN = TOKEN;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe.each(STORE_KINDS)('HEC repeat keys on $name', (kind) => {
  if (kind.skip) console.log(`skip HEC repeat keys on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('a HEC body key older than HEC_REPEAT_MS is pruned; a fresh one, and an old Idempotency-Key, are kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-hec-prune-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 }, join(dir, 'state.db'));
    const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC' });
    cleanup.push(() => ingest.close());
    const h = await startHttpInput(httpInput.parse({ type: 'http', listen: '127.0.0.1:0', format: 'isc-dhcpd', tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_PRUNE_TOKEN' }] }), ingest, store.inventory, log);
    cleanup.push(() => h.close());
    const port = h.address!.port;
    // rows a run 11 minutes ago left: a HEC body's key and a client's Idempotency-Key
    const old = Date.now() - HEC_REPEAT_MS - 60_000;
    const oldHec = `http:${port}:idem:siem:hec-sha256:${'a'.repeat(64)}`;
    const oldIdem = `http:${port}:idem:siem:client-key-1`;
    const answer = { status: 200, body: { text: 'Success', code: 0 } };
    await store.inventory.commitBatch([], [], old, [{ key: oldHec, value: { ...answer, at: old } }, { key: oldIdem, value: answer }]);
    expect(await store.inventory.position(oldHec)).toBeDefined();

    // a HEC request now: its commit runs the prune (the first one since the input started)
    const r = await fetch(`http://127.0.0.1:${port}/services/collector/event`, {
      method: 'POST', headers: { authorization: `Splunk ${TOKEN}` },
      body: JSON.stringify({ event: 'Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.6.0.1 to 52:54:00:00:06:01 via eth0' }),
    });
    expect(r.status).toBe(200);
    await until(async () => (await store.inventory.position(oldHec)) === undefined, 5000, 'the old HEC key pruned');
    expect(await store.inventory.position(oldIdem)).toEqual(answer);
    // the fresh request's own key stays: an exact repeat now is answered from it, not applied again
    const again = await fetch(`http://127.0.0.1:${port}/services/collector/event`, {
      method: 'POST', headers: { authorization: `Splunk ${TOKEN}` },
      body: JSON.stringify({ event: 'Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.6.0.1 to 52:54:00:00:06:01 via eth0' }),
    });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(ingest.counters.sightings).toBe(1);
  }, 30_000);
});
