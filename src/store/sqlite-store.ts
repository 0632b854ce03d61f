/**
 * The embedded store: one SQLite connection (store/db.ts) shared by the inventory and the
 * scheduler store through one async gate (store/gate.ts).
 */
import { openDatabase, type DB } from './db.js';
import { gateOf } from './gate.js';
import { SqliteInventory } from '../inventory/inventory.js';
import { SqliteSchedulerStore } from '../scheduler/queue.js';
import { History } from './history.js';
import type { InventoryOptions, Store } from './types.js';

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly inventory: SqliteInventory;
  readonly scheduler: SqliteSchedulerStore;
  readonly history: History;

  constructor(readonly db: DB, opts: InventoryOptions) {
    this.inventory = new SqliteInventory(db, opts);
    this.scheduler = new SqliteSchedulerStore(db);
    this.history = new History((sql, args) => gateOf(db).run(() => db.prepare(sql).all(...args) as never[]));
  }

  ping(): Promise<void> {
    return gateOf(this.db).run(() => void this.db.prepare('SELECT 1 AS ok').get());
  }

  /** Close once no transaction is open (a sweep may be in the middle of one). */
  close(): Promise<void> {
    return gateOf(this.db).run(() => {
      if (this.db.open) this.db.close();
    });
  }
}

/** Open (create, migrate) the SQLite state file and the store over it. */
export function openSqliteStore(file: string, opts: InventoryOptions): SqliteStore {
  return new SqliteStore(openDatabase(file), opts);
}
