/**
 * The HTTP input when the store stalls longer than commitTimeoutS (a real stall: SQLite's write
 * lock held by another connection, PostgreSQL's LOCK TABLE from another session). The client gets
 * 503, but the request's lines are still queued and commit once the store is back: until then a
 * retry with the same Idempotency-Key (or, for HEC, the same body) must not be taken as a new
 * request, and after that it gets the stored answer. Each request's sightings are stored once.
 */
import { afterEach, beforeEach, describe, expect, it as itAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ingest } from '../src/daemon/ingest.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startHttpInput } from '../src/sources/index.js';
import { httpInput } from '../src/sources/http/schema.js';
import type { InputHandle } from '../src/sources/types.js';
import { silentLogger } from '../src/log.js';
import { STORE_KINDS } from './helpers/stores.js';
import { stallStore } from './helpers/stall.js';
import { until } from './helpers/wait.js';

const log = silentLogger();
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 };
const TOKEN = 'hec-token-stall-test';
process.env.ONSIGHT_TEST_STALL_TOKEN = TOKEN;

let dir: string;
const cleanup: (() => Promise<void>)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-http-stall-'));
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(STORE_KINDS)('HTTP commit timeout on $name', (kind) => {
  if (kind.skip) console.log(`skip HTTP commit timeout on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('a retry of a request answered 503 while its lines wait is refused until they commit, then answered from the store; nothing is stored twice', async () => {
    const file = join(dir, 'state.db');
    const store = await kind.open(OPTS, file);
    const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC' });
    cleanup.push(() => ingest.close());
    const h: InputHandle = await startHttpInput(
      httpInput.parse({ type: 'http', listen: '127.0.0.1:0', format: 'isc-dhcpd', commitTimeoutS: 1, retryAfterS: 1, tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_STALL_TOKEN' }] }),
      ingest, store.inventory, log,
    );
    cleanup.push(() => h.close());
    const url = (p: string) => `http://127.0.0.1:${h.address!.port}${p}`;
    const sighting = JSON.stringify({ kind: 'lease', ip: '10.5.0.1', mac: '52:54:00:00:05:01', at: new Date().toISOString(), durationS: 600 });
    const postSighting = () => fetch(url('/api/v1/sightings'), { method: 'POST', body: sighting, headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': 'req-1' } });
    const hecBody = JSON.stringify({ event: 'Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.5.0.2 to 52:54:00:00:05:02 via eth0' });
    const postHec = () => fetch(url('/services/collector/event'), { method: 'POST', body: hecBody, headers: { authorization: `Splunk ${TOKEN}` } });

    // the stall: another connection holds what the commit needs
    const release = await stallStore(kind.name, store, file, 'sightings');
    cleanup.push(release);

    const [a1, b1] = await Promise.all([postSighting(), postHec()]);
    expect(a1.status).toBe(503);
    expect(b1.status).toBe(503);
    expect(h.counters().events?.commitTimeout).toBe(2);
    // the first copies are still queued: the retries are not new requests
    const [a2, b2] = await Promise.all([postSighting(), postHec()]);
    expect(a2.status).toBe(409);
    expect(b2.status).toBe(503);

    await release();
    await until(() => ingest.counters.pending === 0 && ingest.counters.sightings >= 2, 30_000, 'the queued requests committed');
    const [a3, b3] = await Promise.all([postSighting(), postHec()]);
    expect(a3.status).toBe(200);
    expect(a3.headers.get('idempotent-replayed')).toBe('true');
    expect(await a3.json()).toEqual({ status: 'ok', received: 1 });
    expect(b3.status).toBe(200);
    expect(b3.headers.get('idempotent-replayed')).toBe('true');
    await until(() => ingest.counters.pending === 0, 10_000, 'nothing left to commit');
    // each request's sighting once
    expect(ingest.counters.sightings).toBe(2);
    expect((await store.inventory.counts(Date.now())).sightings).toBe(2);
  }, 90_000);
});
