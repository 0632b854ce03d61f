/**
 * Fencing: work only the leader may do runs in a transaction that first re-reads the lease row
 * `FOR KEY SHARE` (holder, epoch, unexpired on the database clock). A stale leader finds no row and
 * writes nothing; a takeover's UPDATE changes the epoch, a key column (unique index), so it takes
 * FOR UPDATE and waits until an in-flight fenced transaction ends: the new leader always sees what
 * the old one committed (Kleppmann's fencing token, checked by the store that holds the resource).
 * A renewal changes only expires_at (FOR NO KEY UPDATE) and is never held up by fenced work. The
 * server ends a fenced transaction that outlives the lease (a paused leader must not block the takeover).
 */
import type pg from 'pg';
import { FencedError } from '../errors.js';
import { withPooledClient } from './connection.js';

/** What the fence needs from a lease (src/cluster/lease.ts provides it). */
export interface FenceHolder {
  readonly node: string;
  readonly leaseName: string;
  currentEpoch(): number | undefined;
  /** throws FencedError when this node may not act as leader (or not for that epoch) */
  assertLeader(what?: string, epoch?: number): void;
  /** milliseconds before this node must stop acting as leader */
  remainingMs(): number;
}

export interface FenceContext {
  /** the epoch the work runs under */
  epoch: number;
}

/**
 * Runs `fn` inside one transaction on a pooled connection, only after the lease row confirms that
 * this node holds `epoch` (default: the epoch it leads now) and the lease has not lapsed.
 * Throws FencedError (nothing written) otherwise; `fn`'s own errors roll back and propagate.
 */
export async function fenced<T>(
  pool: pg.Pool,
  lease: FenceHolder,
  fn: (client: pg.PoolClient, ctx: FenceContext) => Promise<T>,
  opts: { epoch?: number; what?: string } = {},
): Promise<T> {
  const what = opts.what ?? 'fenced write';
  const epoch = opts.epoch ?? lease.currentEpoch();
  lease.assertLeader(what, epoch); // cheap local refusal first: no round trip for a node that knows it lost
  return withPooledClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      await holdLease(client, lease, epoch!, what);
      const out = await fn(client, { epoch: epoch! });
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

/** What holdLease needs to run statements in the caller's open transaction. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null }>;
}

/**
 * The fence inside a transaction the caller opened: bounds the transaction by the lease time left
 * (a leader paused inside it would hold its FOR KEY SHARE lock and so block every takeover: the
 * server ends the transaction, and its session, when it outlives the lease), then confirms that this
 * node holds `epoch` and the lease has not lapsed (database clock). Throws FencedError otherwise.
 */
export async function holdLease(tx: Queryable, lease: FenceHolder, epoch: number, what: string): Promise<void> {
  const limitMs = Math.max(100, Math.ceil(lease.remainingMs()));
  await tx.query(`SET LOCAL idle_in_transaction_session_timeout = ${limitMs}; SET LOCAL statement_timeout = ${limitMs}`);
  const r = await tx.query(
    'SELECT epoch FROM cluster_lease WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now() FOR KEY SHARE',
    [lease.leaseName, lease.node, epoch],
  );
  if (r.rowCount !== 1) throw new FencedError(`${what} refused by the database: node ${lease.node} does not hold epoch ${epoch} of lease ${lease.leaseName}`);
}
