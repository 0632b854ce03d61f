/**
 * One SQLite connection shared by async callers. better-sqlite3 is synchronous, so a single
 * statement (or a synchronous `db.transaction`) never interleaves with anything; but an async
 * transaction (`atomically(fn)` with awaits inside) stays open across turns of the event loop,
 * and on one connection any statement run meanwhile would silently join it. The gate queues
 * every other caller's statements until that transaction commits or rolls back; the owner's own
 * calls (found through AsyncLocalStorage, which follows awaits) go straight through.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DB } from './db.js';

export class SqliteGate {
  /** the open async transaction's token, if one is open */
  private owner: object | undefined;
  private depth = 0;
  private waiters: (() => void)[] = [];
  private readonly context = new AsyncLocalStorage<object>();

  constructor(readonly db: DB) {}

  private mine(): boolean {
    return this.owner === undefined || this.context.getStore() === this.owner;
  }

  private free(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Run synchronous statements now, or once another caller's open transaction has ended. */
  run<T>(fn: () => T): Promise<T> {
    if (this.mine()) {
      try {
        return Promise.resolve(fn());
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.free().then(() => this.run(fn));
  }

  /** Run `fn` as one transaction: committed when it resolves, rolled back when it throws. Nested calls are savepoints. */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.owner !== undefined && this.context.getStore() === this.owner) return this.savepoint(fn);
    while (this.owner !== undefined) await this.free();
    const token = {};
    this.owner = token;
    try {
      // IMMEDIATE: the write lock at once (busy_timeout waits for it); a deferred BEGIN that read first fails at its first write, with no wait, when another process (the CLI) committed in between (SQLITE_BUSY_SNAPSHOT)
      this.db.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await this.context.run(token, fn);
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      try {
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      return result;
    } finally {
      this.owner = undefined;
      const w = this.waiters;
      this.waiters = [];
      for (const wake of w) wake();
    }
  }

  private async savepoint<T>(fn: () => Promise<T>): Promise<T> {
    const name = `onsight_sp${++this.depth}`;
    this.db.exec(`SAVEPOINT ${name}`);
    try {
      const r = await fn();
      this.db.exec(`RELEASE ${name}`);
      return r;
    } catch (err) {
      this.db.exec(`ROLLBACK TO ${name}`);
      this.db.exec(`RELEASE ${name}`);
      throw err;
    } finally {
      this.depth--;
    }
  }
}

/** The gate of a connection: every store object on one connection must share it. */
const gates = new WeakMap<DB, SqliteGate>();

export function gateOf(db: DB): SqliteGate {
  let g = gates.get(db);
  if (!g) gates.set(db, (g = new SqliteGate(db)));
  return g;
}
