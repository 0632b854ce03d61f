/**
 * The leader lease: one row in PostgreSQL (holder, epoch, holder backend pid, expires_at on the
 * DATABASE clock), held over a dedicated connection whose backend pid is the holder's pid.
 *
 * - A follower tries to take the lease every `pollMs`: it wins when the row is free, expired by the
 *   database clock, or (fast path) when the holder's lease backend is gone from pg_stat_activity
 *   (the holder was killed, its connection terminated, or the server restarted).
 * - The leader renews every ttl/3. It keeps a LOCAL deadline on the monotonic clock: the send time
 *   of the last successful renewal + ttl − margin. The database set expires_at = now() + ttl at a
 *   moment after that send, so the local deadline always falls before the lease can lapse. Any
 *   renewal error, a renewal that finds the row taken, or reaching the deadline steps down at once.
 * - Stepping down aborts the term's AbortSignal (scanner calls waiting at the allowance gate or in a
 *   back-off listen to it) and closes the lease connection, which frees the row for the fast path.
 * - Every node's heartbeat (every ttl/3) publishes its policy.scope and policy.exclude and reads the
 *   other live nodes' ('peers' event on a change): the daemon scans only what all of them allow.
 *
 * Design memo: ../shared/reference/cluster-postgres.md §3.3 (this adds the backend start time beside
 * the pid so that a reused pid is not taken for the holder, and a hold-off after stepping down so a
 * healthy peer gets the first try).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Logger } from '../log.js';
import { FencedError } from '../errors.js';
import { liveUntilSql, migrateCluster } from './schema.js';
import type { NodePolicyLists } from '../policy/policy.js';

export type ClusterRole = 'scheduler' | 'collector';

export interface LeaseOptions {
  /** the lease connection (its own; never from a pool: its backend pid is the holder's identity) */
  connection: pg.ClientConfig;
  /** this node's name, unique in the cluster */
  node: string;
  /** collectors never take the lease; they only announce themselves */
  role?: ClusterRole;
  /** lease time to live (default 15 s) */
  ttlMs?: number;
  /** how long before the lease would lapse the leader stops acting (default min(2 s, ttl/4)) */
  marginMs?: number;
  /** how often a follower tries to take the lease (default 1 s) */
  pollMs?: number;
  /** take over as soon as the holder's backend is gone (default true; false behind PgBouncer transaction pooling) */
  fastTakeover?: boolean;
  /** which lease (default `scheduler`) */
  leaseName?: string;
  version?: string;
  log?: Logger;
  /** monotonic milliseconds (default performance.now) */
  monotonic?: () => number;
}

/** Another live node as the heartbeat read it. */
export interface PeerNode {
  node: string;
  role: string;
  /** its lists as stored (check them before use: peerPolicyProblem); null: it publishes none (an older onsight) */
  policy: NodePolicyLists | null;
}

export interface LeaderView {
  holder: string | null;
  epoch: number;
  /** database time the lease lapses */
  expiresAt: Date | null;
  /** database time the holder took it (the start of its term; status pages say "leader since") */
  acquiredAt?: Date | null;
}

export interface LeaseMetrics {
  /** 1 while this node leads */
  leader: 0 | 1;
  /** the epoch this node leads, else the last epoch it saw */
  epoch: number;
  /** terms taken from a previous holder that had not released the lease */
  failovers: number;
  acquisitions: number;
  stepDowns: number;
  renewFailures: number;
}

export interface LeaderEvent {
  epoch: number;
  previous: string | null;
  previousExpiresAt: Date | null;
}

export interface FollowerEvent {
  epoch: number;
  reason: string;
}

interface Term {
  epoch: number;
  controller: AbortController;
  /** monotonic ms after which this node must not act as leader */
  deadline: number;
}

export class Lease extends EventEmitter {
  readonly node: string;
  readonly role: ClusterRole;
  readonly leaseName: string;
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly pollMs: number;
  readonly renewEveryMs: number;
  private readonly fastTakeover: boolean;
  private readonly mono: () => number;
  private readonly log?: Logger;
  private client?: pg.Client;
  private connecting?: Promise<pg.Client>;
  private migrated = false;
  private term?: Term;
  private timer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  private running = false;
  private ticking?: Promise<void>;
  private holdoffUntil = 0;
  private lastHeartbeat = -Infinity;
  private announced = false;
  private policyLists?: NodePolicyLists;
  private peerList: PeerNode[] = [];
  private peersKey = '[]';
  private seen: LeaderView = { holder: null, epoch: 0, expiresAt: null, acquiredAt: null };
  private counters = { failovers: 0, acquisitions: 0, stepDowns: 0, renewFailures: 0 };
  private readonly notLeader: AbortSignal;

  constructor(private readonly opts: LeaseOptions) {
    super();
    this.node = opts.node;
    this.role = opts.role ?? 'scheduler';
    this.leaseName = opts.leaseName ?? 'scheduler';
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.marginMs = opts.marginMs ?? Math.min(2000, this.ttlMs / 4);
    this.pollMs = opts.pollMs ?? 1000;
    this.renewEveryMs = this.ttlMs / 3;
    this.fastTakeover = opts.fastTakeover ?? true;
    this.mono = opts.monotonic ?? (() => performance.now());
    this.log = opts.log;
    this.notLeader = AbortSignal.abort(new FencedError(`node ${this.node} is not the leader`));
    if (this.marginMs >= this.ttlMs - this.renewEveryMs) throw new RangeError('lease margin must leave room for a renewal (margin < 2/3 ttl)');
  }

  /** Starts the loop; resolves after the first attempt (which may have failed: the loop keeps trying). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.runTick();
  }

  /** Stops the loop; a leader gives the lease up (expires it now) so a peer takes over at its next try. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.ticking;
    const term = this.term;
    this.stepDown('stopping', false);
    const c = this.client;
    if (term && c) {
      await c.query('UPDATE cluster_lease SET expires_at = now(), holder_pid = NULL WHERE name = $1 AND holder = $2 AND epoch = $3', [this.leaseName, this.node, term.epoch])
        .catch((err) => this.log?.warn({ err: (err as Error).message }, 'cluster: could not release the lease (the peer takes over when it lapses)'));
    }
    if (c) await c.query('DELETE FROM cluster_nodes WHERE name = $1 AND pid = $2', [this.node, process.pid]).catch(() => undefined);
    this.dropConnection();
  }

  /** True while this node leads and its local deadline has not passed (checked on the monotonic clock). */
  isLeader(): boolean {
    return this.term !== undefined && this.mono() < this.term.deadline;
  }

  /** The epoch this node leads now, or undefined. */
  currentEpoch(): number | undefined {
    return this.isLeader() ? this.term!.epoch : undefined;
  }

  /** Aborted when the current term ends; already aborted when this node does not lead. */
  get signal(): AbortSignal {
    return this.isLeader() ? this.term!.controller.signal : this.notLeader;
  }

  /** Milliseconds left before this node must stop acting as leader (0 when it does not lead). */
  remainingMs(): number {
    return this.term ? Math.max(0, this.term.deadline - this.mono()) : 0;
  }

  /**
   * The transport guard: call right before sending anything only a leader may send (a scanner
   * launch, say). Throws FencedError when this node does not lead, leads another epoch than the one
   * the work was decided under, or is past its local deadline (it then steps down at once).
   */
  assertLeader(what = 'call', epoch?: number): void {
    const term = this.term;
    if (!term) throw new FencedError(`${what} refused: node ${this.node} is not the leader`);
    if (this.mono() >= term.deadline) {
      this.stepDown('the local lease deadline passed before a renewal');
      throw new FencedError(`${what} refused: node ${this.node}'s lease deadline passed (epoch ${term.epoch})`);
    }
    if (epoch !== undefined && epoch !== term.epoch) throw new FencedError(`${what} refused: decided under epoch ${epoch}, node ${this.node} now leads epoch ${term.epoch}`);
  }

  /**
   * This node's policy lists, published with its heartbeat: at start (before the first tick) and at
   * every reload, when they go out at once rather than at the next heartbeat.
   */
  setPolicy(lists: NodePolicyLists): void {
    this.policyLists = { scope: [...lists.scope], exclude: [...lists.exclude] };
    this.lastHeartbeat = -Infinity;
    if (!this.running) return;
    // (a tick under way reschedules itself when it ends: this one comes after that)
    if (this.ticking) void this.ticking.then(() => this.schedule(0));
    else this.schedule(0);
  }

  /** The other live nodes and their policy lists, as the last heartbeat read them. */
  peers(): PeerNode[] {
    return this.peerList.map((p) => ({ ...p }));
  }

  /** The leader as last seen from this node (itself when it leads). */
  leader(): LeaderView {
    return { ...this.seen };
  }

  metrics(): LeaseMetrics {
    const leading = this.isLeader();
    return { leader: leading ? 1 : 0, epoch: leading ? this.term!.epoch : this.seen.epoch, ...this.counters };
  }

  // ---- the loop

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (!this.running) return;
    this.timer = setTimeout(() => void this.runTick(), ms);
  }

  private runTick(): Promise<void> {
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
      this.schedule(this.term ? this.renewEveryMs : this.pollMs);
    });
    return this.ticking;
  }

  private async tick(): Promise<void> {
    try {
      const c = await this.connection();
      // (a little early counts: the next tick is set renewEveryMs after this one's heartbeat, and a
      // timer may fire a millisecond early; strict, a leader skipped every few beats, doubling the gap)
      let beat = this.mono() - this.lastHeartbeat >= this.renewEveryMs - Math.min(50, this.renewEveryMs / 10);
      // a follower reads its peers' policies before it may take the lease: its first term starts narrowed by them
      if (!this.term && beat) {
        await this.heartbeat(c);
        beat = false;
      }
      if (this.term) await this.renew(c);
      else if (this.role === 'scheduler' && this.mono() >= this.holdoffUntil) await this.tryAcquire(c);
      else await this.observe(c);
      if (beat) await this.heartbeat(c);
    } catch (err) {
      const message = (err as Error).message;
      if (this.term) {
        this.counters.renewFailures++;
        this.stepDown(`the lease connection failed: ${message}`);
      } else this.log?.warn({ err: message }, 'cluster: lease connection failed; retrying');
      this.dropConnection();
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    if (!this.connecting) {
      this.connecting = (async () => {
        const c = new pg.Client({
          ...this.opts.connection,
          application_name: `onsight-lease ${this.node}`.slice(0, 63),
          // client-side limit on every lease statement: a renewal stuck behind a dead network must not outlive a renew period
          query_timeout: Math.min(2000, this.renewEveryMs),
          connectionTimeoutMillis: Math.max(1000, this.pollMs),
          keepAlive: true,
          keepAliveInitialDelayMillis: Math.max(1000, this.ttlMs / 3),
        });
        c.on('error', (err) => {
          if (this.client !== c) return;
          if (this.term) this.stepDown(`the lease connection failed: ${err.message}`);
          this.dropConnection();
        });
        try {
          await c.connect();
          // the server drops a partitioned holder's session after about ttl, so the pid path frees the row (ignored on Unix sockets)
          const idle = Math.max(1, Math.round(this.ttlMs / 3000));
          // server-side bound too: a takeover blocked behind a paused leader's lock is canceled, not left waiting
          await c.query(`SET statement_timeout = ${Math.round(Math.min(2000, this.renewEveryMs))}`);
          await c.query(`SET tcp_keepalives_idle = ${idle}; SET tcp_keepalives_interval = ${idle}; SET tcp_keepalives_count = 3; SET tcp_user_timeout = ${Math.round(this.ttlMs)}`).catch(() => undefined);
          if (!this.migrated) {
            await migrateCluster(c);
            this.migrated = true;
          }
        } catch (err) {
          await c.end().catch(() => undefined);
          throw err;
        }
        this.client = c;
        return c;
      })().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private dropConnection(): void {
    const c = this.client;
    this.client = undefined;
    if (c) void c.end().catch(() => undefined);
  }

  private async tryAcquire(c: pg.Client): Promise<void> {
    const sent = this.mono();
    const r = await c.query<{ won: boolean; holder: string | null; epoch: string; expires_at: Date | null; acquired_at: Date | null; prev_holder: string | null; prev_expires_at: Date | null }>(
      `WITH taken AS (
         UPDATE cluster_lease l
            SET holder = $2, epoch = l.epoch + 1, holder_pid = pg_backend_pid(),
                holder_backend_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
                prev_holder = l.holder, prev_expires_at = l.expires_at,
                acquired_at = now(), expires_at = now() + make_interval(secs => $3)
          WHERE l.name = $1
            AND (l.holder IS NULL OR l.expires_at IS NULL OR l.expires_at < now()
                 OR ($4 AND l.holder_pid IS NOT NULL AND NOT EXISTS (
                       SELECT 1 FROM pg_stat_activity a
                        WHERE a.pid = l.holder_pid
                          AND (a.backend_start IS NULL OR l.holder_backend_start IS NULL OR a.backend_start = l.holder_backend_start))))
         RETURNING holder, epoch, expires_at, acquired_at, prev_holder, prev_expires_at)
       SELECT true AS won, holder, epoch, expires_at, acquired_at, prev_holder, prev_expires_at FROM taken
       UNION ALL
       SELECT false, holder, epoch, expires_at, acquired_at, NULL, NULL FROM cluster_lease WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM taken)`,
      [this.leaseName, this.node, this.ttlMs / 1000, this.fastTakeover],
    );
    const row = r.rows[0];
    if (!row) throw new Error(`lease row ${this.leaseName} is missing`);
    const epoch = Number(row.epoch);
    this.seen = { holder: row.holder, epoch, expiresAt: row.expires_at, acquiredAt: row.acquired_at };
    if (!row.won) return;
    if (!this.running) {
      // stopped while the statement ran: hand it straight back
      await c.query('UPDATE cluster_lease SET expires_at = now(), holder_pid = NULL WHERE name = $1 AND holder = $2 AND epoch = $3', [this.leaseName, this.node, epoch]);
      return;
    }
    this.counters.acquisitions++;
    if (row.prev_holder !== null) this.counters.failovers++;
    this.term = { epoch, controller: new AbortController(), deadline: sent + this.ttlMs - this.marginMs };
    this.armDeadline();
    const ev: LeaderEvent = { epoch, previous: row.prev_holder, previousExpiresAt: row.prev_expires_at };
    this.log?.info({ node: this.node, epoch, previous: row.prev_holder, previousExpiresAt: row.prev_expires_at?.toISOString() }, `leader: ${this.node} epoch ${epoch}${row.prev_holder ? ` (previous ${row.prev_holder})` : ''}`);
    this.emit('leader', ev);
  }

  private async renew(c: pg.Client): Promise<void> {
    const term = this.term!;
    const sent = this.mono();
    const r = await c.query<{ expires_at: Date }>(
      `UPDATE cluster_lease SET expires_at = now() + make_interval(secs => $4)
        WHERE name = $1 AND holder = $2 AND epoch = $3 AND holder_pid = pg_backend_pid() AND expires_at > now()
        RETURNING expires_at`,
      [this.leaseName, this.node, term.epoch, this.ttlMs / 1000],
    );
    if (this.term !== term) return; // stepped down while the statement ran (deadline): stays down
    if (r.rowCount !== 1) {
      this.counters.renewFailures++;
      this.stepDown('deposed: the lease row names another holder or epoch, or it lapsed');
      await this.observe(c).catch(() => undefined);
      return;
    }
    term.deadline = sent + this.ttlMs - this.marginMs;
    this.seen = { ...this.seen, holder: this.node, epoch: term.epoch, expiresAt: r.rows[0].expires_at };
    this.armDeadline();
  }

  private async observe(c: pg.Client): Promise<void> {
    const r = await c.query<{ holder: string | null; epoch: string; expires_at: Date | null; acquired_at: Date | null }>(
      'SELECT holder, epoch, expires_at, acquired_at FROM cluster_lease WHERE name = $1', [this.leaseName]);
    const row = r.rows[0];
    if (row) this.seen = { holder: row.holder, epoch: Number(row.epoch), expiresAt: row.expires_at, acquiredAt: row.acquired_at };
  }

  /**
   * Announces this node with its policy lists and reads the other live nodes' in the same round
   * trip. Each node writes its own live_until (two of its lease times ahead by the database clock; a
   * heartbeat goes every third of one, so a node a slow tick delays keeps counting), and readers go
   * by it: nodes with different leaseTtlS (a rolling change) never look gone between heartbeats.
   */
  private async heartbeat(c: pg.Client): Promise<void> {
    const r = await c.query<{ name: string; role: string; policy: NodePolicyLists | null }>(
      `WITH beat AS (
         INSERT INTO cluster_nodes (name, role, version, host, pid, started_at, heartbeat_at, policy, live_until)
         VALUES ($1, $2, $3, $4, $5, now(), now(), $7::jsonb, now() + make_interval(secs => $8))
         ON CONFLICT (name) DO UPDATE SET role = $2, version = $3, host = $4, pid = $5, heartbeat_at = now(), policy = $7::jsonb,
           live_until = now() + make_interval(secs => $8), started_at = CASE WHEN $6 THEN cluster_nodes.started_at ELSE now() END
         RETURNING 1)
       SELECT name, role, policy FROM cluster_nodes n
        WHERE name <> $1 AND ${liveUntilSql('n.live_until', 'n.heartbeat_at', '$8')} > now()
        ORDER BY name`,
      [this.node, this.role, this.opts.version ?? null, hostname(), process.pid, this.announced,
        this.policyLists ? JSON.stringify(this.policyLists) : null, (2 * this.ttlMs) / 1000],
    );
    this.announced = true;
    this.lastHeartbeat = this.mono();
    const peers = r.rows.map((row) => ({ node: row.name, role: row.role, policy: row.policy }));
    const key = JSON.stringify(peers);
    if (key === this.peersKey) return;
    this.peersKey = key;
    this.peerList = peers;
    this.emit('peers', this.peers());
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const term = this.term;
    if (!term) return;
    this.deadlineTimer = setTimeout(() => {
      if (this.term === term && this.mono() >= term.deadline) this.stepDown('the local lease deadline passed before a renewal');
      else if (this.term === term) this.armDeadline();
    }, Math.max(0, term.deadline - this.mono()));
  }

  /**
   * Ends the term now: aborts its signal, closes the lease connection (a peer then takes the row on
   * the fast path) and waits a couple of polls before trying again, so a healthy peer goes first.
   */
  private stepDown(reason: string, closeConnection = true): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    clearTimeout(this.deadlineTimer);
    this.counters.stepDowns++;
    this.holdoffUntil = this.mono() + 2 * this.pollMs;
    term.controller.abort(new FencedError(`node ${this.node} stepped down from epoch ${term.epoch}: ${reason}`));
    if (closeConnection) this.dropConnection();
    this.log?.warn({ node: this.node, epoch: term.epoch, reason }, `follower: ${this.node} stepped down from epoch ${term.epoch}: ${reason}`);
    const ev: FollowerEvent = { epoch: term.epoch, reason };
    this.emit('follower', ev);
    if (this.running && !this.ticking) this.schedule(this.pollMs); // a running tick reschedules itself
  }
}

/** The epoch a scanner call was decided under (termScanner), for the send guard. */
const sendingTerm = new AsyncLocalStorage<number>();

/**
 * The scanner transport's guard for this node's lease (src/scanners/backend.ts SendGuard): this
 * node leads, and, for a call made through a term's scanner (termScanner), leads that term still.
 * A node that lost the lease and won it back has a new epoch: a launch its old term's pass had
 * under way is refused, as that term's intents are by the database.
 */
export function leaseSendGuard(lease: Lease): { check(what: string): void; signal(): AbortSignal } {
  return {
    check: (what) => lease.assertLeader(what, sendingTerm.getStore()),
    // (a call of an earlier term ends at once: it would wait at an allowance gate only to be refused after)
    signal: () => {
      const epoch = sendingTerm.getStore();
      const now = lease.currentEpoch();
      return epoch !== undefined && epoch !== now ? AbortSignal.abort(new FencedError(`decided under epoch ${epoch}, node ${lease.node} now leads epoch ${now}`)) : lease.signal;
    },
  };
}

/**
 * `scanner` for the scheduler of one term (`epoch`): each of its calls runs, to its last retry,
 * as that term's, so the send guard refuses it once the node leads another term.
 */
export function termScanner<T extends object>(scanner: T, epoch: number): T {
  return new Proxy(scanner, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => sendingTerm.run(epoch, () => (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}
