/**
 * Apply rate of the store behind the Inventory interface: N new DHCP leases (new identity, new
 * binding, a sighting row each), then the same N renewed, through commitBatch in batches of 500,
 * into SQLite (temp file) and PostgreSQL (a throwaway server from test/helpers/postgres.ts over
 * its Unix socket, when installed). `node dist/bench/store-apply.js [N]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sighting } from '../src/sighting.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { openPostgresStore } from '../src/store/postgres/store.js';
import type { Store } from '../src/store/types.js';
import { pgUnavailable, startPostgres } from '../test/helpers/postgres.js';

const opts = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 };

function lease(k: number, at: number, kind: 'lease' | 'renew'): Sighting {
  const h = k.toString(16).padStart(6, '0');
  return {
    kind, ip: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`, mac: `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`,
    hostname: `host-${k}`, at: new Date(at).toISOString(), durationS: 86400, format: 'isc-dhcpd', source: 'bench',
  };
}

async function rate(store: Store, n: number, kind: 'lease' | 'renew', at: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 500) {
    const batch: Sighting[] = [];
    for (let k = i; k < Math.min(n, i + 500); k++) batch.push(lease(k, at + k, kind));
    await store.inventory.commitBatch(batch);
  }
  return Math.round(n / ((performance.now() - t0) / 1000));
}

async function measure(name: string, store: Store, n: number): Promise<void> {
  const at = Date.now();
  const fresh = await rate(store, n, 'lease', at);
  const renew = await rate(store, n, 'renew', at + 60_000);
  const c = await store.inventory.counts(at + 120_000);
  console.log(`${name}: ${n.toLocaleString('en')} new leases ${fresh.toLocaleString('en')}/s, renewals ${renew.toLocaleString('en')}/s (${c.identities} identities, ${c.sightings} sightings)`);
}

export async function runStoreApply(n = 20_000): Promise<void> {
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
  try {
    const pg = await openPostgresStore({ ...server.connection, max: 2 }, opts);
    try {
      await measure(`PostgreSQL (Unix socket, ${server.dataDir.includes('/tmp') ? 'temp data dir, fsync off' : 'data dir'})`, pg, n);
    } finally {
      await pg.close();
    }
  } finally {
    server.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runStoreApply(Number(process.argv[2] ?? 20_000));
