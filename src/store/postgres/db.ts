/**
 * A PostgreSQL connection pool for the store: every query runs on the transaction's client when
 * one is open in this async context (AsyncLocalStorage follows awaits), else on any pooled
 * client. Write transactions of this process run one at a time, as on SQLite's single
 * connection, so the store's semantics do not depend on the engine; statements of other callers
 * never join an open transaction (they run on other connections, or wait for theirs).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { withPooledClient } from './pooled.js';
import { OnsightError } from '../../errors.js';
import { MIGRATIONS } from './schema.js';

/** A pg pool's settings: src/cluster/connection.ts pgConnectionConfig(state) gives them from the config (password from a file, never the URL); `max` defaults to 4. */
export type PgConnection = pg.PoolConfig;

/** epoch-ms columns are BIGINT: read them as numbers (they stay far below 2^53) */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

type Row = Record<string, unknown>;

/** Named statements are parsed once per connection (pg's prepared statements). */
export interface Statement {
  name: string;
  text: string;
}

export function statement(name: string, text: string): Statement {
  return { name: `onsight_${name}`, text };
}

export class PgDb {
  readonly pool: pg.Pool;
  private readonly context = new AsyncLocalStorage<{ client: pg.PoolClient; depth: number }>();
  /** the tail of this process's write transactions: each starts when the previous ended */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(conn: PgConnection) {
    // (TCP keepalive: a server gone without a word, a partition, is noticed by the pool's sessions too, not only the lease's)
    this.pool = new pg.Pool({ keepAlive: true, keepAliveInitialDelayMillis: 10_000, ...conn, max: conn.max ?? 4, types });
    this.pool.on('error', () => undefined); // an idle client's error surfaces on its next use
  }

  async query<T = Row>(st: Statement | string, values: unknown[] = []): Promise<{ rows: T[]; rowCount: number | null }> {
    const q = typeof st === 'string' ? { text: st, values } : { name: st.name, text: st.text, values };
    const tx = this.context.getStore();
    return (tx ? tx.client.query(q) : this.pool.query(q)) as unknown as Promise<{ rows: T[]; rowCount: number | null }>;
  }

  async rows<T = Row>(st: Statement | string, values: unknown[] = []): Promise<T[]> {
    return (await this.query<T>(st, values)).rows;
  }

  async row<T = Row>(st: Statement | string, values: unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(st, values)).rows[0];
  }

  /**
   * Run `fn` with `client`, a transaction the caller opened (a fenced one, src/cluster/fence.ts), as
   * this context's transaction: the store's calls in `fn` join it (their own transactions become savepoints).
   */
  within<T>(client: pg.PoolClient, fn: () => Promise<T>): Promise<T> {
    return this.context.run({ client, depth: 0 }, fn);
  }

  /** Run `fn` as one transaction (nested: a savepoint); committed when it resolves, rolled back when it throws. */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const open = this.context.getStore();
    if (open) {
      const name = `onsight_sp${++open.depth}`;
      await open.client.query(`SAVEPOINT ${name}`);
      try {
        const r = await fn();
        await open.client.query(`RELEASE SAVEPOINT ${name}`);
        return r;
      } catch (err) {
        await open.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        throw err;
      } finally {
        open.depth--;
      }
    }
    // withPooledClient: a connection lost mid-transaction fails the query in flight, never the process
    const run = this.writes.then(() => withPooledClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        const r = await this.context.run({ client, depth: 0 }, fn);
        await client.query('COMMIT');
        return r;
      } catch (err) {
        // a failed ROLLBACK means the connection is gone: the server rolls back, the client is discarded
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }));
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** Bring the schema up to date under an advisory lock (two instances starting at once migrate once). */
  async migrate(): Promise<void> {
    await withPooledClient(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', ['onsight:migrate']);
      try {
        await client.query('CREATE TABLE IF NOT EXISTS onsight_schema (version INTEGER NOT NULL)');
        const r = await client.query<{ version: number }>('SELECT version FROM onsight_schema');
        const current = r.rows[0]?.version ?? 0;
        if (current > MIGRATIONS.length) {
          throw new OnsightError('ONSIGHT_STORE', `the PostgreSQL state has schema ${current}, newer than this onsight knows (${MIGRATIONS.length}); upgrade onsight`);
        }
        for (let v = current; v < MIGRATIONS.length; v++) {
          await client.query('BEGIN');
          try {
            const m = MIGRATIONS[v];
            if (typeof m === 'string') await client.query(m);
            else await m(client);
            if (v === 0 && current === 0) await client.query('INSERT INTO onsight_schema (version) VALUES (1)');
            else await client.query('UPDATE onsight_schema SET version = $1', [v + 1]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['onsight:migrate']);
      }
    });
  }

  async close(): Promise<void> {
    await this.writes;
    await this.pool.end();
  }
}
