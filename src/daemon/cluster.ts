/**
 * Cluster mode in the daemon (issue 17; ../shared/reference/cluster-postgres.md): every node appends
 * what it ingests to the PostgreSQL inbox; the lease holder alone applies the inbox to the inventory
 * and runs the scheduler. This file builds what the daemon wires: the lease, the inbox append (file
 * checkpoints in the same transaction), node-scoped resume keys, the applier, and the scheduler store
 * whose scan intents are fenced by the lease epoch.
 */
import type pg from 'pg';
import type { Logger } from '../log.js';
import type { ClusterConfig, PostgresState } from '../cluster/config.js';
import { pgConnectionConfig, withPooledClient } from '../cluster/connection.js';
import { Lease } from '../cluster/lease.js';
import { nodeLiveUntilSql } from '../cluster/schema.js';
import { holdLease, type FenceHolder } from '../cluster/fence.js';
import { InboxApplier } from '../cluster/applier.js';
import { InboxReader, InboxWriter } from '../cluster/inbox.js';
import { hostname } from 'node:os';
import { FencedError, OnsightError } from '../errors.js';
import type { PgDb } from '../store/postgres/db.js';
import type { PgStore } from '../store/postgres/store.js';
import type { ApplyResult, ConsideredWrites, SchedulerStore } from '../store/types.js';
import type { FileCheckpoint, ResumeStore, SourcePosition } from '../sources/types.js';
import type { Sighting } from '../sighting.js';
import type { AppendBatch, IngestedSighting } from './ingest.js';

/**
 * Refuses to start when another live node goes by this node's name (cluster.node; by default the
 * short host name, which two machines may share): file checkpoints and source positions are kept by
 * the name, so the two would overwrite each other's and read lines twice or skip them. A row of our
 * own host whose process is gone is a crashed run of ours, not another node.
 */
export async function refuseNodeNameInUse(db: PgDb, cluster: Pick<ClusterConfig, 'node' | 'leaseTtlS'>, alive: (pid: number) => boolean = processAlive): Promise<void> {
  if (!(await db.row<{ t: string | null }>("SELECT to_regclass('cluster_nodes')::text AS t"))?.t) return;
  // (live until the time the node wrote with its heartbeat, two of its own lease times on; a row
  // an older onsight wrote: two of ours. to_jsonb: this runs before the lease migrates the table)
  const r = await db.row<{ host: string | null; pid: number | null; age_s: number; left_s: number }>(
    `SELECT host, pid, extract(epoch FROM now() - heartbeat_at)::float8 AS age_s,
            extract(epoch FROM ${nodeLiveUntilSql('$2::float8')} - now())::float8 AS left_s
       FROM cluster_nodes n WHERE name = $1`, [cluster.node, 2 * cluster.leaseTtlS]);
  if (!r || r.left_s <= 0) return;
  if (r.host === hostname() && (r.pid === null || r.pid === process.pid || !alive(r.pid))) return;
  throw new OnsightError('ONSIGHT_CLUSTER', `another node named "${cluster.node}" is running (host ${r.host ?? '?'}, pid ${r.pid ?? '?'}, heartbeat ${Math.round(r.age_s)} s ago): ` +
    `give each node its own cluster.node (the default is the short host name); file checkpoints and positions are kept by that name. A node that is gone stops counting ${Math.max(1, Math.ceil(r.left_s))} s from now`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function clusterLease(state: PostgresState, cluster: ClusterConfig, log: Logger): Lease {
  return new Lease({
    connection: pgConnectionConfig(state), node: cluster.node, role: cluster.role, ttlMs: cluster.leaseTtlS * 1000,
    pollMs: cluster.pollS * 1000, fastTakeover: cluster.fastTakeover, log,
  });
}

/** File checkpoints and source positions belong to this node: keyed `node:…` in the shared database. */
export function nodeScoped(inner: ResumeStore, node: string): ResumeStore {
  const k = (key: string) => scopedKey(node, key);
  return {
    checkpoint: async (path) => {
      // (a file's checkpoint is always this node's, as inboxAppend writes it, whatever its path holds)
      const cp = await inner.checkpoint(`${node}:${path}`);
      return cp && { ...cp, path };
    },
    position: (key) => inner.position(k(key)),
    prunePositions: (prefix, before) => inner.prunePositions(k(prefix), before),
  };
}

/**
 * A source position's key in the shared state: this node's own (`c1:file:…`), except the HTTP
 * inputs' idempotency keys and HEC body digests (`…:idem:…`), which every node shares: a client's
 * retry that a load balancer sends to the other node is the same request (it was applied twice,
 * the second time as a renewal: cluster probe). Two nodes taking the same key at the same instant
 * can still both apply it (each checks before its own commit).
 */
function scopedKey(node: string, key: string): string {
  return key.includes(':idem:') ? key : `${node}:${key}`;
}

/**
 * The ingest's write in cluster mode: the batch's sightings go to the inbox (an exact duplicate line
 * from a sender that logs to every node is dropped by its key) and the node's file checkpoints and
 * source positions commit in the same transaction, so a restart neither loses nor repeats lines.
 */
/** an inbox append idle this long inside its transaction is ended by the server (a paused or cut-off node) */
const APPEND_IDLE_LIMIT_MS = 10_000;

export function inboxAppend(store: PgStore, node: string): AppendBatch {
  const writer = new InboxWriter(store.db.pool, node);
  const k = (key: string) => `${node}:${key}`;
  const once = (entries: IngestedSighting[], checkpoints: FileCheckpoint[], positions: SourcePosition[]) => withPooledClient(store.db.pool, async (c) => {
    await c.query('BEGIN');
    try {
      // (an append left open by a node paused or cut off in it, SIGSTOP or a partition, held back every
      // node's inbox: the reader reads below the oldest open transaction, and a duplicate line's insert
      // waits on it. The server ends it, and its session, once it sits idle this long: the node's
      // next query fails and its ingest tries the batch again, as after any lost connection.)
      await c.query(`SET LOCAL idle_in_transaction_session_timeout = ${APPEND_IDLE_LIMIT_MS}`);
      if (checkpoints.length || positions.length) {
        await store.db.within(c, () => store.inventory.commitBatch([], checkpoints.map((cp) => ({ ...cp, path: k(cp.path) })), Date.now(),
          positions.map((p) => ({ ...p, key: scopedKey(node, p.key) }))));
      }
      // origin: the sender's address (the same line from one sender to two nodes is one sighting), else this node's input
      await writer.append(entries.map((e) => ({ sighting: e.sighting, raw: e.raw, origin: e.sender ?? k(e.source) })), c);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
  // appends insert in key order, so two nodes' duplicates do not deadlock; should a deadlock with another writer occur, PostgreSQL aborts one, which tries again
  return async (entries, checkpoints, positions) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(entries, checkpoints, positions);
      } catch (err) {
        if ((err as { code?: string }).code !== '40P01' || attempt >= 5) throw err;
      }
    }
  };
}

/**
 * The leader's applier: each inbox batch is applied to the inventory inside the fenced transaction
 * that moves the inbox cursor; once it committed, `applied` gets the sightings and their results.
 */
export function clusterApplier(
  store: PgStore, lease: Lease, state: PostgresState, cluster: ClusterConfig, log: Logger, now: () => number,
  applied: (sightings: Sighting[], results: ApplyResult[]) => Promise<void>,
): InboxApplier {
  let last: [Sighting[], ApplyResult[]] | undefined;
  return new InboxApplier({
    lease, log, connection: pgConnectionConfig(state),
    reader: new InboxReader(store.db.pool, { dedupWindowMs: cluster.dedupWindowS * 1000 }),
    apply: async (rows, client) => {
      last = undefined;
      const sightings = rows.map((r) => r.sighting);
      const results = await store.db.within(client as pg.PoolClient, () => store.inventory.commitBatch(sightings, [], now()));
      last = [sightings, results];
    },
    afterCommit: async () => {
      const done = last;
      last = undefined;
      if (done) await applied(done[0], done[1]);
    },
  });
}

/**
 * The scheduler store of one term (`epoch`): its intents record the epoch, and every write that
 * moves an intent or its queue entries (a new intent, a transition, a release, a dequeue, and the
 * scheduler's own transactions) runs in a transaction that first finds the lease row held by this
 * node under `epoch` (src/cluster/fence.ts holdLease; FOR KEY SHARE: a takeover waits for it to
 * commit), so a deposed leader can neither launch nor write the outcome of a launch it had sent.
 * A refused transition returns false, as one refused by its state condition does (the scheduler
 * counts and logs it); other refused writes throw FencedError, which ends the scheduler's pass.
 */
export function fencedSchedulerStore(store: PgStore, lease: FenceHolder, epoch: number): SchedulerStore {
  const inner = store.scheduler;
  const fence = <A extends unknown[], R>(what: string, fn: (...a: A) => Promise<R>) => (...a: A): Promise<R> => store.db.transaction(async () => {
    lease.assertLeader(what, epoch); // no round trip for a node that knows it lost
    await holdLease(store.db, lease, epoch, what);
    return fn(...a);
  });
  const transition = <A extends unknown[]>(what: string, fn: (...a: A) => Promise<boolean>) => {
    const fenced = fence(what, fn);
    return (...a: A): Promise<boolean> => fenced(...a).catch((err: unknown) => {
      if (err instanceof FencedError) return false;
      throw err;
    });
  };
  const writes: Partial<SchedulerStore> = {
    epoch,
    createIntent: fence('scan intent', (i, targets) => inner.createIntent({ ...i, epoch }, targets)),
    atomically: fence('scheduler transaction', (fn: () => Promise<unknown>) => fn()) as SchedulerStore['atomically'],
    setRunning: transition('launching → running', (id: string, ref: string, at: number) => inner.setRunning(id, ref, at)),
    endIntent: transition('end of a scan intent', (...a: Parameters<SchedulerStore['endIntent']>) => inner.endIntent(...a)),
    finishKeeping: transition('end of a scan intent', (...a: Parameters<SchedulerStore['finishKeeping']>) => inner.finishKeeping(...a)),
    releaseTarget: transition('release of a scan target', (...a: Parameters<SchedulerStore['releaseTarget']>) => inner.releaseTarget(...a)),
    dequeue: fence('dequeue', (id: number) => inner.dequeue(id)),
    dequeueIfWaiting: fence('dequeue', (id: number) => inner.dequeueIfWaiting(id)),
    holdUntil: fence('queue hold', (id: number, notBefore: number) => inner.holdUntil(id, notBefore)),
    writeConsidered: fence('consider pass', (w: ConsideredWrites) => inner.writeConsidered(w)),
    // a deposed leader's learning does not overwrite the new leader's
    saveLearned: fence('learned state', (r: Parameters<SchedulerStore['saveLearned']>[0]) => inner.saveLearned(r)),
  };
  return new Proxy(inner, {
    get(target, prop) {
      if (Object.hasOwn(writes, prop)) return writes[prop as keyof SchedulerStore];
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
