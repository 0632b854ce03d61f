/** A PostgreSQL store with the cluster tables, for inbox tests (skip them when `pgKind.skip` says why). */
import { migrateCluster } from '../../src/cluster/schema.js';
import type { PgStore } from '../../src/store/postgres/store.js';
import { STORE_KINDS } from './stores.js';

export const pgKind = STORE_KINDS.find((k) => k.name === 'postgres')!;

export async function inboxStore(): Promise<PgStore> {
  const store = (await pgKind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 })) as PgStore;
  const c = await store.db.pool.connect();
  try {
    await migrateCluster(c);
  } finally {
    c.release();
  }
  return store;
}
