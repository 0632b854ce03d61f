/**
 * A store made to stall as a real one does: another connection holds what a commit needs (SQLite:
 * the write lock of the state file; PostgreSQL: an exclusive lock on `table`), until released.
 */
import pg from 'pg';
import Database from '../../src/store/sqlite.js';
import type { PgStore } from '../../src/store/postgres/store.js';
import type { Store } from '../../src/store/types.js';

/** Hold the store; the returned function lets it go (once; later calls do nothing). */
export async function stallStore(kind: 'sqlite' | 'postgres', store: Store, file: string, table: string): Promise<() => Promise<void>> {
  let done = false;
  if (kind === 'sqlite') {
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    return async () => {
      if (done) return;
      done = true;
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    };
  }
  const other = new pg.Client((store as PgStore).db.pool.options);
  await other.connect();
  await other.query('BEGIN');
  await other.query(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
  return async () => {
    if (done) return;
    done = true;
    await other.query('ROLLBACK').catch(() => undefined);
    await other.end();
  };
}
