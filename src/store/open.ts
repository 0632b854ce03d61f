/**
 * The daemon's state, opened by a command that runs beside it (the views, `why`, `decisions`,
 * `report`, `rescan`, `skip`): SQLite or PostgreSQL alike, through the Store interface. Such a
 * command never creates state and never takes the daemon's lock (store/lock.ts); a read never
 * migrates (SQLite: opened read-only; PostgreSQL: `asView` runs it in one read-only transaction),
 * and neither does a write: the schema must be the one this onsight speaks (a newer CLI migrating
 * under an older daemon would break the daemon's statements).
 */
import type { Config } from '../config/schema.js';
import { inventoryOptions } from '../config/derive.js';
import { describeState, isPostgresState, type PostgresState } from '../cluster/config.js';
import { OnsightError } from '../errors.js';
import { openDatabase, openDatabaseReadOnly, requireStateFile, type DB } from './db.js';
import { SqliteStore } from './sqlite-store.js';
import type { PgDb, PgConnection } from './postgres/db.js';
import type { Store } from './types.js';

/** read: the views; write: operator marks (SQLite: WAL beside the daemon; PostgreSQL: any node's database) */
export type StateAccess = 'read' | 'write';

export async function openStateFor(config: Pick<Config, 'state' | 'inventory'>, access: StateAccess, what: string): Promise<Store> {
  const state = config.state;
  if (!isPostgresState(state)) {
    if (access === 'read') return new SqliteStore(openDatabaseReadOnly(state), inventoryOptions(config));
    requireStateFile(state);
    return new SqliteStore(openDatabase(state, { migrate: false }), inventoryOptions(config));
  }
  // loaded only for a PostgreSQL state: `pg` costs a SQLite command's start-up noticeable time
  const [{ PgDb }, { PgStore }] = await Promise.all([import('./postgres/db.js'), import('./postgres/store.js')]);
  const db = new PgDb(await pgSettings(state, what));
  try {
    await requireCurrentSchema(db, state);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return new PgStore(db, inventoryOptions(config));
}

/** A command's connection: two at most, named in pg_stat_activity. */
async function pgSettings(state: PostgresState, what: string): Promise<PgConnection> {
  const { pgConnectionConfig } = await import('../cluster/connection.js');
  return { ...pgConnectionConfig(state), max: 2, application_name: `onsight ${what}`.slice(0, 63) };
}

/**
 * Run a view's reads. On PostgreSQL: in one REPEATABLE READ, READ ONLY transaction, so every
 * query sees the same snapshot (the leader keeps writing meanwhile) and any write is refused;
 * a transaction, not a session setting, so it also holds behind PgBouncer. SQLite: the file is
 * open read-only already; one read transaction gives its queries one snapshot too (each query
 * was its own, and the daemon commits between them).
 */
export async function asView<T>(store: Store, fn: () => Promise<T>): Promise<T> {
  if (store.kind !== 'postgres') {
    const db = (store as Store & { db: DB }).db;
    db.exec('BEGIN');
    try {
      return await fn();
    } finally {
      if (db.inTransaction) db.exec('COMMIT');
    }
  }
  const db = (store as Store & { db: PgDb }).db;
  return db.transaction(async () => {
    await db.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    return fn();
  });
}

/** The onsight schema is there and current (the daemon migrates it; a command never does). */
async function requireCurrentSchema(db: PgDb, state: PostgresState): Promise<void> {
  const t = await db.row<{ t: string | null }>("SELECT to_regclass('onsight_schema')::text AS t");
  if (!t?.t) {
    throw new OnsightError('ONSIGHT_STORE', `no onsight state in ${describeState(state)}: the daemon has not run with this config yet (onsight run), ` +
      'or move an embedded install there first (onsight state copy --to postgres)');
  }
  const { MIGRATIONS } = await import('./postgres/schema.js');
  const v = (await db.row<{ version: number }>('SELECT version FROM onsight_schema'))?.version ?? 0;
  if (v !== MIGRATIONS.length) {
    throw new OnsightError('ONSIGHT_STORE', `the state in ${describeState(state)} has schema ${v}, this onsight reads ${MIGRATIONS.length}: ` +
      (v < MIGRATIONS.length ? 'start the daemon once (onsight run) to upgrade it' : 'upgrade onsight'));
  }
}
