/**
 * A HEC body repeated within 10 min from the same token (HEC has no idempotency key): a client's
 * retry while no other body of the token's was committed in between, news otherwise. Each body
 * counts once committed, answered or not, and on any endpoint:
 * - a body answered 503 on the commit timeout, committed later, then retried, is stored once (the
 *   review of 9653f43: the rule counted only answered bodies, so it was stored twice);
 * - a Sighting JSON body between two like HEC bodies makes the second news (it was dropped).
 * Left, said in the README: two connections of one forwarder (a retry on one after the other
 * committed) apply the retry twice; after a restart, and across cluster nodes, a repeat is a retry.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
const TOKEN = 'hec-token-onsight-hec-repeat-test-abcdef';
process.env.ONSIGHT_TEST_HEC_REPEAT_TOKEN = TOKEN;
const kind = STORE_KINDS.find((k) => k.name === 'sqlite')!;

let dir: string;
const cleanup: (() => Promise<void>)[] = [];
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'onsight-hec-repeat-')); });
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  rmSync(dir, { recursive: true, force: true });
});

async function setup() {
  const file = join(dir, 'state.db');
  const store = await kind.open(OPTS, file);
  const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC' });
  cleanup.push(() => ingest.close());
  const h: InputHandle = await startHttpInput(
    httpInput.parse({ type: 'http', listen: '127.0.0.1:0', format: 'isc-dhcpd', commitTimeoutS: 1, retryAfterS: 1, tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_HEC_REPEAT_TOKEN' }] }),
    ingest, store.inventory, log,
  );
  cleanup.push(() => h.close());
  const post = (body: string, path = '/services/collector/event') => fetch(`http://127.0.0.1:${h.address!.port}${path}`, { method: 'POST', body, headers: { authorization: `Splunk ${TOKEN}` } });
  const ev = (n: number) => JSON.stringify({ event: `Nov 23 10:00:0${n} gw dhcpd[7]: DHCPACK on 10.5.0.${n} to 52:54:00:00:05:0${n} via eth0` });
  return { store, ingest, h, post, ev, file };
}

describe('a HEC body repeated within 10 min', () => {
  it('answered 503 on the commit timeout, committed later, then retried: stored once (review: twice)', async () => {
    const { store, ingest, post, ev, file } = await setup();
    expect((await post(ev(1))).status).toBe(200); // an earlier batch from the same token (the usual case)
    const release = await stallStore('sqlite', store, file, 'sightings');
    cleanup.push(release);
    expect((await post(ev(2))).status).toBe(503); // commitTimeoutS: the lines stay queued
    await release();
    await until(() => ingest.counters.pending === 0 && ingest.counters.sightings >= 2, 30_000, 'committed');
    const retry = await post(ev(2)); // the client's retry of the 503
    expect(retry.status).toBe(200);
    await until(() => ingest.counters.pending === 0, 10_000, 'idle');
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await store.inventory.counts(Date.now())).sightings).toBe(2);
  }, 60_000);

  it('with a Sighting JSON body of the token between: news, applied (it was dropped as a retry)', async () => {
    const { store, ingest, post, ev } = await setup();
    expect((await post(ev(3))).status).toBe(200);
    const between = await post(JSON.stringify({ kind: 'release', ip: '10.5.0.3', mac: '52:54:00:00:05:03' }), '/api/v1/sightings');
    expect(between.status).toBe(200);
    const again = await post(ev(3));
    await until(() => ingest.counters.pending === 0, 10_000, 'idle');
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect((await store.inventory.counts(Date.now())).sightings).toBe(3);
  }, 30_000);
});
