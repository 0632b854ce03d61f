/**
 * The inbox: every node appends the sightings it parsed; the leader alone applies them, in order,
 * behind a durable cursor.
 *
 * - Appends are conflict-free inserts. Senders that log to every configured server (ASA `logging
 *   host`, FortiGate, Palo Alto) deliver the same line to each node: an exact duplicate (same origin,
 *   raw line and time) hashes to the same key and is dropped by `ON CONFLICT DO NOTHING`. The key
 *   stays in the table for `dedupWindowMs` after it is applied, so that is the duplicate window.
 * - Lock order: a batch's rows are inserted in key order (their ids still follow the given order:
 *   the batch takes its ids from the sequence first). Two nodes appending the same duplicates in
 *   opposite orders then wait for each other's keys in one global order and never deadlock: the
 *   second simply finds the first's rows (a duplicate once the first commits).
 * - Order and the cursor: each row records the id of the transaction that wrote it (xid8). The
 *   reader takes only rows whose transaction is older than the oldest one still running
 *   (pg_snapshot_xmin), in (tx, id) order. Those are final: no row can later commit below the
 *   cursor, so one cursor row replaces the memo's per-row `applied` flag (one write per batch, not
 *   per row) without the outbox sequence-gap trap. The cost: a long-running transaction anywhere in
 *   the server holds the applier back until it ends (the backlog shows it).
 * - The cursor moves in the same transaction as whatever the apply callback writes, so a leader
 *   that dies mid-batch leaves the batch for the next leader (exactly once).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { sightingToJson, type Sighting } from '../sighting.js';
import { fenced, type FenceHolder } from './fence.js';
import { withPooledClient } from './connection.js';

/** NOTIFY channel: an append wakes the leader's applier (delivered at commit) */
export const INBOX_CHANNEL = 'onsight_inbox';

export interface InboxEntry {
  sighting: Sighting;
  /** who sent it: the sender's address for network inputs, `node:path` for a tailed file */
  origin: string;
  /** the line as received; without it the sighting's own fields stand in */
  raw?: string;
}

export interface InboxRow {
  id: number;
  /** the writing transaction (xid8, as text) */
  tx: string;
  node: string;
  receivedAt: Date;
  sighting: Sighting;
}

/** The duplicate key: sha-256 of origin, raw line (or the sighting without its input-specific fields) and time. */
export function inboxKey(e: InboxEntry): Buffer {
  const body = e.raw ?? sightingToJson({ ...e.sighting, source: '', line: undefined });
  return createHash('sha256').update(e.origin).update('\0').update(body).update('\0').update(e.sighting.at).digest();
}

export interface AppendResult {
  inserted: number;
  duplicates: number;
}

/** Appends from one node. Pass a client inside your own transaction to commit file checkpoints with the rows. */
export class InboxWriter {
  constructor(private readonly db: pg.Pool | pg.ClientBase, readonly node: string) {}

  /**
   * Appends in the given order (ids follow it), inserting in key order so that concurrent appends
   * of the same lines cannot deadlock (see above). A deadlock with some other writer of the table
   * is still retried on a pool (the rows that won are duplicates then); inside your own transaction
   * the error is yours.
   */
  async append(entries: readonly InboxEntry[], client: pg.ClientBase | pg.Pool = this.db): Promise<AppendResult> {
    if (entries.length === 0) return { inserted: 0, duplicates: 0 };
    const keys = entries.map(inboxKey);
    const bodies = entries.map((e) => JSON.stringify(e.sighting));
    for (let attempt = 1; ; attempt++) {
      try {
        // ids: one block from the sequence, handed out in the given order; rows: inserted sorted by key
        const r = await client.query<{ n: number }>(
          `WITH ids AS MATERIALIZED (
             SELECT array_agg(v ORDER BY v) AS a FROM (SELECT nextval(pg_get_serial_sequence('cluster_inbox', 'id')) AS v
               FROM generate_series(1, cardinality($2::bytea[]))) s),
           ins AS (
             INSERT INTO cluster_inbox (id, node, key, sighting) OVERRIDING SYSTEM VALUE
             SELECT ids.a[u.n], $1, u.k, u.s FROM unnest($2::bytea[], $3::jsonb[]) WITH ORDINALITY AS u(k, s, n), ids ORDER BY u.k, u.n
             ON CONFLICT (key) DO NOTHING RETURNING 1)
           SELECT n, CASE WHEN n > 0 THEN pg_notify('${INBOX_CHANNEL}', '') END FROM (SELECT count(*)::int AS n FROM ins) c`,
          [this.node, keys, bodies],
        );
        const inserted = r.rows[0]?.n ?? 0;
        this.deadlockRetries += attempt - 1;
        return { inserted, duplicates: entries.length - inserted };
      } catch (err) {
        if ((err as { code?: string }).code === '40P01') this.deadlocks++;
        if ((err as { code?: string }).code !== '40P01' || !(client instanceof pg.Pool) || attempt >= 5) throw err;
      }
    }
  }

  /** deadlocks this writer's appends ran into (each cost the server's deadlock_timeout) */
  deadlocks = 0;

  /** appends retried after a deadlock with another node's append */
  deadlockRetries = 0;
}

/** Writes a batch's effects on the given client (inside the transaction that moves the cursor); `epoch` is the fenced term's. */
export type ApplyBatch = (rows: InboxRow[], client: pg.ClientBase, epoch?: number) => Promise<void>;

export interface ReaderOptions {
  /** cursor name (default `applier`) */
  name?: string;
  /** rows per batch (default 500) */
  batch?: number;
  /** how long an applied row's key keeps dropping duplicates (default 10 min) */
  dedupWindowMs?: number;
}

/** The leader's side: applies rows in order and moves the cursor in the same (fenced) transaction. */
export class InboxReader {
  readonly name: string;
  readonly batch: number;
  readonly dedupWindowMs: number;

  constructor(private readonly pool: pg.Pool, opts: ReaderOptions = {}) {
    this.name = opts.name ?? 'applier';
    this.batch = opts.batch ?? 500;
    this.dedupWindowMs = opts.dedupWindowMs ?? 10 * 60_000;
  }

  /**
   * Applies the next batch: `apply` gets the rows and the transaction's client (write the inventory
   * with it). With a lease the transaction is fenced (a deposed leader applies nothing). Returns the
   * number of rows applied (0 when the inbox is drained).
   */
  async applyNext(apply: ApplyBatch, lease?: FenceHolder): Promise<number> {
    if (lease) return fenced(this.pool, lease, (c, ctx) => this.applyIn(c, apply, ctx.epoch), { what: 'inbox apply' });
    const body = (c: pg.ClientBase) => this.applyIn(c, apply);
    return withPooledClient(this.pool, async (c) => {
      await c.query('BEGIN');
      try {
        const n = await body(c);
        await c.query('COMMIT');
        return n;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  private async applyIn(c: pg.ClientBase, apply: ApplyBatch, epoch?: number): Promise<number> {
    const cur = await c.query<{ tx: string; id: string }>('SELECT tx::text AS tx, id FROM cluster_inbox_cursor WHERE name = $1 FOR UPDATE', [this.name]);
    let from = cur.rows[0];
    if (!from) {
      await c.query("INSERT INTO cluster_inbox_cursor (name, tx, id) VALUES ($1, '0', 0) ON CONFLICT DO NOTHING", [this.name]);
      from = { tx: '0', id: '0' };
    }
    const r = await c.query<{ id: string; tx: string; node: string; received_at: Date; sighting: Sighting }>(
      `SELECT id, tx::text AS tx, node, received_at, sighting FROM cluster_inbox
        WHERE (tx, id) > ($1::xid8, $2::bigint) AND tx < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY tx, id LIMIT $3`,
      [from.tx, from.id, this.batch],
    );
    if (r.rows.length === 0) return 0;
    const rows: InboxRow[] = r.rows.map((x) => ({ id: Number(x.id), tx: x.tx, node: x.node, receivedAt: x.received_at, sighting: x.sighting }));
    await apply(rows, c, epoch);
    const last = rows[rows.length - 1];
    await c.query('UPDATE cluster_inbox_cursor SET tx = $2::xid8, id = $3, applied = applied + $4, updated_at = now() WHERE name = $1', [this.name, last.tx, last.id, rows.length]);
    return rows.length;
  }

  /** Rows appended but not yet applied. */
  async backlog(db: pg.Pool | pg.ClientBase = this.pool): Promise<number> {
    return inboxBacklog(db, this.name);
  }

  /** Drops applied rows older than the duplicate window; returns how many. */
  async prune(db: pg.Pool | pg.ClientBase = this.pool): Promise<number> {
    const r = await db.query(
      `DELETE FROM cluster_inbox i USING cluster_inbox_cursor c
        WHERE c.name = $1 AND (i.tx, i.id) <= (c.tx, c.id) AND i.received_at < now() - make_interval(secs => $2)`,
      [this.name, this.dedupWindowMs / 1000],
    );
    return r.rowCount ?? 0;
  }
}

/** Rows past the cursor (appended, not yet applied). */
export async function inboxBacklog(db: pg.Pool | pg.ClientBase, name = 'applier'): Promise<number> {
  const r = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM cluster_inbox i, cluster_inbox_cursor c WHERE c.name = $1 AND (i.tx, i.id) > (c.tx, c.id)`,
    [name],
  );
  return Number(r.rows[0]?.n ?? 0);
}
