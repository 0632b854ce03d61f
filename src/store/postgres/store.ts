/** The PostgreSQL store: one pool shared by the inventory and the scheduler store. */
import { PgDb, type PgConnection } from './db.js';
import { PgInventory } from './inventory.js';
import { PgSchedulerStore } from './scheduler.js';
import { History } from '../history.js';
import type { InventoryOptions, Store } from '../types.js';

export class PgStore implements Store {
  readonly kind = 'postgres' as const;
  readonly inventory: PgInventory;
  readonly scheduler: PgSchedulerStore;
  readonly history: History;

  constructor(readonly db: PgDb, opts: InventoryOptions) {
    this.inventory = new PgInventory(db, opts);
    this.scheduler = new PgSchedulerStore(db);
    // the shared SQL's `?` placeholders, numbered as PostgreSQL expects
    this.history = new History((sql, args) => {
      let n = 0;
      return db.rows(sql.replace(/\?/g, () => `$${++n}`), args);
    });
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1 AS ok');
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** Connect, migrate (under an advisory lock) and return the store. */
export async function openPostgresStore(conn: PgConnection, opts: InventoryOptions): Promise<PgStore> {
  const db = new PgDb(conn);
  try {
    await db.migrate();
  } catch (err) {
    await db.pool.end().catch(() => undefined);
    throw err;
  }
  return new PgStore(db, opts);
}
