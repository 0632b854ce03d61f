/**
 * Apply rate of the store behind the Inventory interface, all in one run: N new DHCP leases (new
 * identity, new binding, a sighting row each), the same N renewed, and N mixed sightings (renewals,
 * new devices, releases, VPN sessions up and down, a device seen twice in a batch), through
 * commitBatch in batches of 500, into SQLite (temp file), PostgreSQL one sighting at a time and
 * PostgreSQL batched (src/store/postgres/batch.ts; a throwaway server from test/helpers/postgres.ts
 * over its Unix socket, when installed). Then the cluster inbox: N lines appended by one node
 * (batches of 500), and the same N applied from the inbox into the inventory the way the leader
 * does (InboxReader.applyNext, commitBatch on the batch's transaction). The load average is
 * printed with the figures: the machine is shared.
 * `node dist/bench/store-apply.js [N] [N for one at a time]` (defaults 10,000 and 3,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Sighting } from '../src/sighting.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { openPostgresStore, type PgStore } from '../src/store/postgres/store.js';
import type { Store } from '../src/store/types.js';
import { migrateCluster } from '../src/cluster/schema.js';
import { InboxReader, InboxWriter } from '../src/cluster/inbox.js';
import { withPooledClient } from '../src/store/postgres/pooled.js';
import { createDatabase, pgUnavailable, startPostgres } from '../test/helpers/postgres.js';

const opts = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 };
const BATCH = 500;

const ipOf = (k: number, net = 10) => `${net}.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;

function lease(k: number, at: number, kind: 'lease' | 'renew'): Sighting {
  const h = k.toString(16).padStart(6, '0');
  return {
    kind, ip: ipOf(k), mac: `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`,
    hostname: `host-${k}`, at: new Date(at).toISOString(), durationS: 86400, format: 'isc-dhcpd', source: 'bench',
  };
}

/** The k-th sighting of a mixed stream over a fleet of `n` leased devices (devices n.. are new). */
function mixed(k: number, n: number, at: number): Sighting {
  const t = new Date(at).toISOString();
  const vpn = (kind: 'tunnel-up' | 'tunnel-down', u: number): Sighting =>
    ({ kind, ip: ipOf(u, 11), user: `user${u}`, hostname: `lt-${u}`, at: t, format: 'globalprotect', source: 'bench' });
  switch (k % 10) {
    case 0: case 1: case 2: case 3: return lease((k * 7919) % n, at, 'renew');
    case 4: return lease((k * 7919) % n, at + 1, 'renew'); // the same device again, later in the batch
    case 5: case 6: return lease(n + k, at, 'lease');
    case 7: return { ...lease((k * 104729) % n, at, 'lease'), kind: 'release' };
    case 8: return vpn('tunnel-up', k % 2000);
    default: return vpn('tunnel-down', (k - 1) % 2000);
  }
}

async function rate(store: Store, n: number, make: (k: number) => Sighting): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const batch: Sighting[] = [];
    for (let k = i; k < Math.min(n, i + BATCH); k++) batch.push(make(k));
    await store.inventory.commitBatch(batch);
  }
  return Math.round(n / ((performance.now() - t0) / 1000));
}

const fmt = (x: number) => x.toLocaleString('en');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function measure(name: string, store: Store, n: number): Promise<void> {
  const at = Date.now();
  const fresh = await rate(store, n, (k) => lease(k, at + k, 'lease'));
  const renew = await rate(store, n, (k) => lease(k, at + 60_000 + k, 'renew'));
  const mix = await rate(store, n, (k) => mixed(k, n, at + 120_000 + k));
  const c = await store.inventory.counts(at + 240_000);
  console.log(`${name}: N=${fmt(n)}: new leases ${fmt(fresh)}/s, renewals ${fmt(renew)}/s, mixed ${fmt(mix)}/s`
    + ` (${fmt(c.identities)} identities, ${fmt(c.sightings)} sightings; load average ${load()})`);
}

/** One node appends N lines to the inbox; the leader's reader applies them into the (batched) inventory. */
async function measureInbox(store: PgStore, n: number): Promise<void> {
  const pool = store.db.pool;
  await withPooledClient(pool, migrateCluster);
  const writer = new InboxWriter(pool, 'bench-a');
  const at = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const entries = [];
    for (let k = i; k < Math.min(n, i + BATCH); k++) {
      const s = mixed(k, n, at + k);
      entries.push({ sighting: s, origin: '10.9.0.1', raw: `${s.kind} ${s.ip} ${s.mac ?? s.user} #${k}` });
    }
    await writer.append(entries);
  }
  const appendRate = Math.round(n / ((performance.now() - t0) / 1000));
  const reader = new InboxReader(pool, { batch: BATCH });
  const t1 = performance.now();
  let applied = 0;
  for (let m; (m = await reader.applyNext((rows, client) =>
    store.db.within(client as pg.PoolClient, async () => void await store.inventory.commitBatch(rows.map((r) => r.sighting))))) > 0;) applied += m;
  const applyRate = Math.round(applied / ((performance.now() - t1) / 1000));
  console.log(`PostgreSQL inbox: N=${fmt(n)} mixed lines: append ${fmt(appendRate)} lines/s (one node, batches of ${BATCH});`
    + ` apply into the batched inventory ${fmt(applyRate)} sightings/s (reader, batch apply, cursor; unfenced) (load average ${load()})`);
}

export async function runStoreApply(n = 10_000, nEach = 3_000): Promise<void> {
  console.log(`store apply, batches of ${BATCH} (load average ${load()})`);
  const dir = mkdtempSync(join(tmpdir(), 'onsight-apply-'));
  const sqlite = openSqliteStore(join(dir, 'state.db'), opts);
  try {
    await measure('SQLite (temp file)', sqlite, n);
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const why = pgUnavailable();
  if (why) return void console.log(`PostgreSQL: skipped (${why})`);
  const server = startPostgres();
  const where = `Unix socket, temp data dir, fsync off`;
  try {
    for (const [db, batched] of [['onsight_each', false], ['onsight_batched', true]] as const) {
      const store = await openPostgresStore({ ...await createDatabase(server, db), max: 2 }, opts);
      store.inventory.batched = batched;
      try {
        await measure(`PostgreSQL ${batched ? 'batched' : 'one at a time'} (${where})`, store, batched ? n : nEach);
      } finally {
        await store.close();
      }
    }
    const store = await openPostgresStore({ ...await createDatabase(server, 'onsight_inbox'), max: 2 }, opts);
    try {
      await measureInbox(store, n);
    } finally {
      await store.close();
    }
  } finally {
    server.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runStoreApply(Number(process.argv[2] ?? 10_000), Number(process.argv[3] ?? 3_000));
