/**
 * The daemon: wires sources → parsers → inventory → policy → scheduler → scanner and runs the
 * timers. Everything it wires is built elsewhere; this file only connects and starts/stops them.
 */
import { setLogLevel, type Logger } from '../log.js';
import { TIMED_OUT, within } from '../util/timeout.js';
import type { Config } from '../config/schema.js';
import { lockStateFile, type StateLock } from '../store/lock.js';
import { guardedWrite, StoreHealth } from '../store/health.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Inventory, Store } from '../store/types.js';
import { comparableList, peerPolicyProblem, policyListsKey, usablePeerLists, type NodePolicyLists, type PeerPolicy, type Policy } from '../policy/policy.js';
import { decodeThreadOn, inventoryOptions, policyFor, schedulerOptionsFor } from '../config/derive.js';
import { loadRegistry, type ParserRegistry } from '../parsers/registry.js';
import { Scheduler, systemClock, type Clock, type LaunchInfo, type SchedulerCounters } from '../scheduler/scheduler.js';
import type { Scanner } from '../scanners/types.js';
import { createScanner } from '../scanners/registry.js';
import { Ingest } from './ingest.js';
import type { InputHandle } from '../sources/types.js';
import { inputLabel, inputParserFormat, startInputs } from './inputs.js';
import type { Sighting } from '../sighting.js';
import type { ApplyResult } from '../inventory/inventory.js';
import { startHttp, type HttpHandle } from '../http/server.js';
import { OnsightError } from '../errors.js';
import { daemonView } from './view.js';
import { describeState, isPostgresState, sqliteStatePath, type ClusterConfig } from '../cluster/config.js';
import { pgConnectionConfig } from '../cluster/connection.js';
import { leaseSendGuard, termScanner, type Lease, type PeerNode } from '../cluster/lease.js';
import type { InboxApplier } from '../cluster/applier.js';
import { inboxBacklog } from '../cluster/inbox.js';
import type { ClusterMetricInput } from '../cluster/metrics.js';
import { openPostgresStore, PgStore } from '../store/postgres/store.js';
import type { PgConnection } from '../store/postgres/db.js';
import type { SchedulerStore } from '../store/types.js';
import { FencedError } from '../errors.js';
import { clusterApplier, clusterLease, fencedSchedulerStore, inboxAppend, nodeScoped, refuseNodeNameInUse } from './cluster.js';
import { Notifier } from '../notify/notifier.js';
import { InputFreshness } from './freshness.js';
import { MetricsRegistry } from '../http/prom.js';
import { scanTimings } from '../http/metrics.js';
import type { ClusterNodeView, DaemonView } from '../http/view.js';
import { DRY_RUN_KIND } from '../scanners/dry-run/scanner.js';
import { LogLimit } from '../util/log-limit.js';

export interface DaemonOptions {
  config: Config;
  log: Logger;
  /** a scanner to use instead of the configured one (tests) */
  scanner?: Scanner;
  clock?: Clock;
  /** an opened store to use instead of the SQLite state file (a PostgreSQL store: src/store/postgres/) */
  store?: Store;
  /** scheduler tick period, ms */
  tickMs?: number;
  /** sweep period (re-evaluate everyone present), ms */
  sweepMs?: number;
  /** ingest progress log period while lines flow (file catch-up), ms; default 10 s */
  progressMs?: number;
  /**
   * the longest stop() waits for the final scheduler pass before closing the scanner (which ends
   * the pass's calls), ms; default 10 s, so that stopping ends well within systemd's TimeoutStopSec=30s
   */
  stopPassMs?: number;
}

/** after the scanner is closed, how long stop() still waits for a pass it gave up on to end (its last writes), ms */
const STOP_SETTLE_MS = 3000;
/** a listener's reload that failed in part: what could not be read keeps its old value, but revocations went through */
const KEPT_AT_RELOAD = 'reload of its certificate or tokens failed in part: what could not be read keeps its old value (tokens whose files are gone, empty or refused by their permissions are revoked all the same)';

export class Daemon {
  store!: Store;
  inventory!: Inventory;
  /** the policy in force: this node's own, in a cluster narrowed by the other live nodes' scope and exclusions */
  policy!: Policy;
  /** this node's own policy, from its config */
  private ownPolicy!: Policy;
  /** cluster mode: the other live nodes as the lease's heartbeat last read them */
  private peers: PeerNode[] = [];
  /** the differing peers' lists `policy` is narrowed by (normalized JSON), to act and log once per change */
  private narrowedBy = '[]';
  /** live peers whose lists are unknown here (none published, an older onsight) or not all readable */
  private peersUnknown: string[] = [];
  /** peers whose lists are unknown or unreadable, said once each */
  private readonly peerPolicySaid = new Set<string>();
  scheduler!: Scheduler;
  scanner!: Scanner;
  ingest!: Ingest;
  registry!: ParserRegistry;
  /** failing writes to the state file (disk full, a lock held elsewhere): /healthz, metrics */
  storeHealth!: StoreHealth;
  private stateLock?: StateLock;
  /** cluster mode: the leader lease (only its holder applies the inbox and schedules) */
  lease?: Lease;
  private applier?: InboxApplier;
  inputs: InputHandle[] = [];
  /** what /metrics serves: prom-client's registry, and the histograms fed as scans launch and end */
  readonly metrics = new MetricsRegistry();
  private readonly timings = scanTimings(this.metrics);
  /** when each input and sender last sent a line (status page, metrics) */
  readonly freshness = new InputFreshness();
  /** webhook and syslog notifications (config `notify`) */
  notifier!: Notifier;
  /** what the status page, metrics and notifications read */
  view!: DaemonView;
  /** the status page / metrics listener, when http.enabled */
  http?: HttpHandle;
  readonly startedAt = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private kickPending = false;
  /** refused VPN session ends, said at most once a minute (committed) */
  private readonly refusedEnds = new LogLimit();
  private stopping = false;
  /** start() finished: until then stop() runs no scheduler pass (a start that failed half-way launches nothing) */
  private started = false;
  private readonly clock: Clock;

  constructor(private readonly opts: DaemonOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  get config(): Config {
    return this.opts.config;
  }

  /**
   * Apply a reloaded config (SIGHUP) without dropping connections: policy, regions, scheduler and
   * inventory settings, time zone and log level take effect now. Returns the sections that differ
   * but need a restart (inputs, state, scanner, http, parser plug-ins, the decode thread, notifications, cluster).
   */
  applyConfig(next: Config): string[] {
    const prev = this.opts.config;
    const same = (k: keyof Config) => JSON.stringify(prev[k]) === JSON.stringify(next[k]);
    // (cluster: its name is our scans' and range schedules' title prefix and the lease's; changed live, the schedules named by the old one would be no one's)
    // (ingest: the decode thread is made at the start, with its watchdog's bound)
    const restart = (['state', 'inputs', 'scanner', 'http', 'parsers', 'ingest', 'notify', 'cluster'] as const).filter((k) => !same(k));
    this.ownPolicy = policyFor(next);
    this.narrowByPeers(next.policy, true);
    // (the other nodes narrow their policies by ours from their next read of it, a third of a lease time at most)
    this.lease?.setPolicy(policyLists(next));
    this.inventory.setOptions(inventoryOptions(next));
    // the scanner and cluster sections need a restart: their running values (maxTargetsPerScan, the title prefix) stay
    this.scheduler.reconfigure(this.policy, schedulerOptionsFor({ ...next, scanner: prev.scanner, cluster: prev.cluster }, this.scanner));
    this.ingest.setZone(next.timezone);
    // every logger made from ours (store, scheduler, ingest, http, notify, cluster, inputs) follows
    setLogLevel(this.opts.log, next.log.level);
    // what cannot change live keeps its running value, so status pages tell the truth
    this.opts.config = { ...next, ...Object.fromEntries(restart.map((k) => [k, prev[k]])) } as Config;
    if (this.mayLead()) void guardedWrite(this.storeHealth, 'scheduler', 'tried again at the next sweep', () => this.scheduler.sweep()).then(() => this.kick());
    return restart;
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    const state = config.state;
    if (config.cluster && !isPostgresState(state)) {
      throw new OnsightError('ONSIGHT_CLUSTER', `cluster: needs a PostgreSQL state (state.postgres); this config's state is the SQLite file ${state}`);
    }
    if (this.opts.store) {
      this.storeHealth = new StoreHealth(':memory:', log.child({ stage: 'store' })); // a server's disk is not ours to watch
      this.store = this.opts.store;
    } else if (isPostgresState(state)) {
      // the password comes from its file, environment variable or credential, never the URL (pgConnectionConfig refuses one there)
      const conn = { ...pgConnectionConfig(state), max: state.poolSize, application_name: `onsight ${config.cluster?.node ?? 'run'}`.slice(0, 63) };
      const pg = await openPostgresStore(conn as PgConnection, inventoryOptions(config));
      pg.inventory.onBatchFallback = (why, n) => log.error(`${why}: ${n} sighting(s) applied one at a time instead (a bug: please report it)`);
      this.store = pg;
      this.storeHealth = new StoreHealth(':memory:', log.child({ stage: 'store' })); // a server's disk is not ours to watch
    } else {
      const statePath = sqliteStatePath(config.state, 'onsight run');
      this.stateLock = lockStateFile(statePath); // one daemon per state file
      this.storeHealth = new StoreHealth(statePath, log.child({ stage: 'store' }));
      this.store = openSqliteStore(statePath, inventoryOptions(config));
    }
    this.registry = await loadRegistry(config.parsers.directory);
    for (const inp of config.inputs) {
      const format = inputParserFormat(inp);
      if (format !== undefined && format !== 'auto' && !this.registry.get(format)) {
        throw new Error(`input ${inputLabel(inp)}: unknown format "${format}" (known: ${this.registry.ids().join(', ')})`);
      }
    }
    this.inventory = this.store.inventory;
    this.inventory.setOptions(inventoryOptions(config)); // an injected store gets this config's lease and linking settings
    this.ownPolicy = this.policy = policyFor(config);
    const cluster = config.cluster && isPostgresState(state) ? config.cluster : undefined;
    let pgStore: PgStore | undefined;
    if (cluster) {
      if (!(this.store instanceof PgStore)) throw new OnsightError('ONSIGHT_CLUSTER', 'cluster mode needs the PostgreSQL store');
      pgStore = this.store;
      await refuseNodeNameInUse(pgStore.db, cluster);
      this.lease = clusterLease(state as Extract<typeof state, object>, cluster, log.child({ stage: 'cluster' }));
      this.lease.setPolicy(policyLists(config));
    }
    // a node that does not lead sends nothing to the scanner: the lease guards every launch right before it is sent
    this.scanner = this.opts.scanner ?? await createScanner(config, log, (ip) => this.policy.allowed(ip), process.env, this.lease && leaseSendGuard(this.lease));
    this.view = daemonView(this);
    this.notifier = new Notifier(config.notify, {
      identity: (id) => this.inventory.identity(id), regionOf: (ip) => this.view.regionOf(ip),
      endedBindings: (since, now, before) => this.view.endedBindings(since, now, before), decisionPagesSince: (since) => this.view.decisionPagesSince(since),
      evaluator: () => this.view.markedEvaluator(),
    }, log.child({ stage: 'notify' }), this.startedAt);
    this.scheduler = this.buildScheduler(this.store.scheduler);
    this.ingest = new Ingest(this.registry, this.inventory, (s, r) => this.committed(s, r), log.child({ stage: 'ingest' }), {
      zone: config.timezone, storeHealth: this.storeHealth, decodeThread: decodeThreadOn(config), decodeLineTimeoutS: config.ingest.decodeLineTimeoutS, parsersDirectory: config.parsers.directory,
      append: pgStore && cluster ? inboxAppend(pgStore, cluster.node) : undefined,
    });
    // the status listener binds before anything acts: a port in use (a second instance, a typo)
    // fails the start before reconcile, sweep or the inputs, so a restart loop launches nothing
    if (config.http.enabled) {
      try {
        this.http = await startHttp(this.view, config.http, log.child({ stage: 'http' }));
      } catch (err) {
        await this.stop().catch(() => undefined); // (stop logs each step that fails)
        throw new OnsightError('ONSIGHT_LISTEN', `http.listen ${config.http.listen}: ${(err as Error).message}`, { cause: err });
      }
    }

    // a state a dry-run trial used: its pretend scans scanned nothing, and would hold every device it
    // "scanned" for the whole rescan window (a trial on the production state path: no real scan for 30 days)
    if (!this.scanner.pretend) {
      const forgotten = await this.inventory.forgetPretendScans(DRY_RUN_KIND);
      // (a real scan a later dry-run credit replaced is forgotten with it: such a device is scanned again, the safe way)
      if (forgotten) log.warn(`${forgotten} device(s) were last "scanned" by the dry-run scanner, which scans nothing: those scans are forgotten, and the devices are due when seen (a real scan before the dry-run's is forgotten with it)`);
    }
    if (!cluster) {
      // settle anything a previous run left half-done before taking new work (a cluster's leader does this when it takes the lease)
      await this.scheduler.reconcile();
      await this.scheduler.sweep();
    }
    await this.ingest.ready();
    this.inputs = await startInputs(config.inputs, this.ingest, cluster ? nodeScoped(this.inventory, cluster.node) : this.inventory, log, this.freshness);
    this.timers.push(setInterval(() => this.kick(), this.opts.tickMs ?? 1000));
    // a write that fails (disk full, lock held elsewhere) is reported and tried again next time, never fatal
    this.timers.push(setInterval(() => {
      if (!this.mayLead()) return;
      void guardedWrite(this.storeHealth, 'scheduler', 'tried again at the next sweep', () => this.scheduler.sweep()).then(() => this.kick());
    }, this.opts.sweepMs ?? 60_000));
    this.timers.push(setInterval(() => {
      if (!this.mayLead()) return;
      void guardedWrite(this.storeHealth, 'prune', 'tried again in an hour', () => this.inventory.prune(this.clock.now())).then((n) => {
        if (n && Object.values(n).some((k) => k > 0)) log.info({ pruned: n }, 'pruned what is older than inventory.retention (ended scans kept as counts) and devices long gone');
      });
    }, 3600_000));
    this.timers.push(this.progressTimer(this.opts.progressMs ?? 10_000));
    // devices that left unscanned (leases that ran out are found here; releases also check at once); in a cluster the leader alone notifies
    if (this.notifier.enabled) this.timers.push(setInterval(() => { if (this.mayLead()) void this.notifier.checkMissed(this.clock.now()); }, 30_000));
    for (const t of this.timers) t.unref();
    if (cluster && pgStore) await this.startCluster(pgStore, state as Extract<typeof state, object>, cluster);
    this.started = true;
    this.kick();
    const where = describeState(config.state);
    const member = cluster ? `; cluster ${cluster.name} node ${cluster.node} (${cluster.role})` : '';
    log.info({
      inputs: this.inputs.map((i) => i.name), state: where, scanner: this.scanner.kind,
      regions: config.regions.map((r) => r.name), formats: this.registry.ids().length, decoding: this.ingest.decodesIn,
      ...(cluster ? { cluster: { name: cluster.name, node: cluster.node, role: cluster.role } } : {}),
    }, `onsight running: ${this.inputs.map((i) => i.name).join(', ') || 'no inputs'}; state ${where}; scanner ${this.scanner.kind}${member}`);
  }

  /** /metrics in cluster mode: the lease's counters, the inbox backlog (read now; omitted when unreadable), the applier's counters. */
  async clusterMetrics(): Promise<ClusterMetricInput | undefined> {
    if (!this.lease || !(this.store instanceof PgStore)) return undefined;
    const backlog = await inboxBacklog(this.store.db.pool).catch(() => undefined);
    const fencing = { lateLaunchesCanceled: 0, transitionsRefused: 0, adoptedAcrossEpochs: 0 };
    for (const c of [...this.pastTerms, this.scheduler.counters]) for (const k of Object.keys(fencing) as (keyof typeof fencing)[]) fencing[k] += c[k];
    return { node: this.lease.node, lease: this.lease.metrics(), inboxBacklog: backlog, applier: this.applier?.counters, fencing, policyDiffers: this.policyDiffers().length, policyUnknown: this.peersUnknown.length };
  }

  /** The status page in cluster mode: this node, and the leader as the lease loop last saw it (every poll). */
  clusterNode(): ClusterNodeView | undefined {
    const cluster = this.opts.config.cluster;
    if (!this.lease || !cluster) return undefined;
    const seen = this.lease.leader();
    const leading = this.lease.isLeader();
    // a lapsed lease names nobody (database time, compared here with this node's clock: display only)
    const live = leading || (seen.holder !== null && seen.expiresAt !== null && seen.expiresAt.getTime() > Date.now());
    return {
      name: cluster.name, node: cluster.node, role: cluster.role, leading, leader: live ? seen.holder : null, epoch: seen.epoch,
      leaderSince: live ? seen.acquiredAt ?? null : null, leaseExpiresAt: seen.expiresAt,
    };
  }

  /** Cluster mode: the live nodes whose policy.scope or policy.exclude differ from this node's (narrowing it or not). */
  policyDiffers(): string[] {
    return (JSON.parse(this.narrowedBy) as PeerPolicy[]).map((p) => p.node);
  }

  /**
   * The lease read other nodes' lists that differ from before: the policy in force is narrowed
   * again and the scheduler reconfigured as by a reload (queued targets judged again; running scans
   * with a target now refused canceled at the next pass).
   */
  private peersSeen(peers: PeerNode[]): void {
    this.peers = peers;
    try {
      if (!this.narrowByPeers(this.opts.config.policy, false) || this.stopping) return;
      this.scheduler.reconfigure(this.policy, schedulerOptionsFor(this.opts.config, this.scanner));
    } catch (err) {
      // (called from the lease's heartbeat: a throw there would read as a failed lease connection)
      this.opts.log.error({ err: { message: (err as Error).message } }, `cluster: applying the other nodes' policies failed: ${(err as Error).message}; the next change tries again`);
      return;
    }
    if (this.mayLead()) void guardedWrite(this.storeHealth, 'scheduler', 'tried again at the next sweep', () => this.scheduler.sweep()).then(() => this.kick());
  }

  /**
   * Sets `policy` to this node's own narrowed by the live peers whose lists differ from `own`
   * (`rebuilt`: the own policy is new, set it whatever the peers). Returns whether the set of
   * differing lists changed, which is logged: a warning naming the nodes, or the end of it.
   */
  private narrowByPeers(own: NodePolicyLists, rebuilt: boolean): boolean {
    const log = this.opts.log;
    const norm = (l: string[]) => comparableList(l) as string[];
    const mine = policyListsKey(own);
    const differ: PeerPolicy[] = [];
    const unknown: string[] = [];
    for (const p of this.peers) {
      if (p.policy === null) {
        unknown.push(p.node);
        if (!this.peerPolicySaid.has(`${p.node} none`)) {
          this.peerPolicySaid.add(`${p.node} none`);
          log.warn({ peer: p.node }, `cluster: node ${p.node} publishes no policy (an older onsight): its scope and exclusions are unknown here and not applied; upgrade it`);
        }
        continue;
      }
      const peer: PeerPolicy = { node: p.node, scope: p.policy.scope, exclude: p.policy.exclude };
      const problem = peerPolicyProblem(peer);
      const usable = problem ? usablePeerLists(peer) : peer;
      if (problem) {
        unknown.push(p.node);
        if (!this.peerPolicySaid.has(`${p.node} ${problem}`)) {
          this.peerPolicySaid.add(`${p.node} ${problem}`);
          log.error({ peer: p.node }, usable
            ? `cluster: ${problem}: the entries of that node's lists that do not parse are not applied here; the others are`
            : `cluster: ${problem}: that node's scope and exclusions are not applied here`);
        }
        if (!usable) continue;
      }
      const lists = { node: p.node, scope: norm(usable!.scope), exclude: norm(usable!.exclude) };
      if (policyListsKey(lists) !== mine) differ.push(lists);
    }
    this.peersUnknown = unknown;
    const key = JSON.stringify(differ);
    const changed = key !== this.narrowedBy;
    if (changed || rebuilt) this.policy = differ.length ? this.ownPolicy.withPeers(differ) : this.ownPolicy;
    if (!changed) return false;
    const before = JSON.parse(this.narrowedBy) as PeerPolicy[];
    this.narrowedBy = key;
    const node = this.opts.config.cluster?.node ?? this.lease?.node;
    if (differ.length) {
      const what = differ.map((p) => `${p.node} (scope ${p.scope.length}, exclude ${p.exclude.length} entries)`).join(', ');
      log.warn({ policyDiffers: differ.map((p) => ({ node: p.node, scope: p.scope.length, exclude: p.exclude.length })) },
        `cluster: node(s) ${what} run another policy.scope or policy.exclude than this node ${node} (scope ${norm(own.scope).length}, exclude ${norm(own.exclude).length} entries): ` +
        "cluster nodes' policies differ; only what every live node's policy allows is scanned until they agree (reload every node with the same lists)");
    } else if (before.length) {
      log.info(`cluster: every live node's policy.scope and policy.exclude agree with this node ${node}'s again (${before.map((p) => p.node).join(', ')} no longer differ or left): no narrowing by other nodes' policies`);
    }
    return true;
  }

  /** counters of the schedulers of this node's earlier terms (a deposed term's pass may still count refusals) */
  private readonly pastTerms: SchedulerCounters[] = [];

  private buildScheduler(store: SchedulerStore): Scheduler {
    const { config, log } = this.opts;
    // (in a cluster, the term's: its calls are refused once this node leads another term)
    const scanner = store.epoch !== undefined ? termScanner(this.scanner, store.epoch) : this.scanner;
    return new Scheduler(this.clock, this.inventory, this.policy, store, scanner,
      schedulerOptionsFor(config, this.scanner), log.child({ stage: 'scheduler' }), {
        onLaunch: (i) => this.announceLaunch(i),
        onScanEnd: (i, end) => {
          if (i.launchedAt !== undefined) this.timings.launchToEnd(Math.max(0, end.endedAt - i.launchedAt) / 1000, { region: i.region, state: end.state });
          this.notifier.scanEnded(i, end);
        },
        onDecision: this.notifier.enabled ? (d) => this.notifier.decided(d) : undefined,
      });
  }

  /** Without a cluster always; in a cluster only while this node holds the lease. */
  private mayLead(): boolean {
    return !this.lease || this.lease.isLeader();
  }

  /**
   * Cluster mode: the applier follows the lease (inbox → inventory, leader only); each term gets a
   * fresh scheduler whose intents are fenced by the term's epoch; it reconciles what the previous
   * holder left (scans found by the intent id in their title), sweeps and starts launching. A step-down
   * ends the term's signal: scanner calls waiting on it stop, and no pass starts until the next term.
   */
  private async startCluster(store: PgStore, state: Parameters<typeof pgConnectionConfig>[0], cluster: ClusterConfig): Promise<void> {
    const lease = this.lease!;
    const log = this.opts.log.child({ stage: 'cluster' });
    this.applier = clusterApplier(store, lease, state, cluster, log, () => this.clock.now(), (s, r) => this.committed(s, r));
    lease.on('leader', (ev: { epoch: number }) => void this.lead(store, ev.epoch));
    lease.on('peers', (peers: PeerNode[]) => this.peersSeen(peers));
    this.applier.start();
    await lease.start();
  }

  private async lead(store: PgStore, epoch: number): Promise<void> {
    const lease = this.lease!;
    this.notifier.leading(this.clock.now());
    const scheduler = this.buildScheduler(fencedSchedulerStore(store, lease, epoch));
    this.pastTerms.push(this.scheduler.counters);
    if (this.pastTerms.length > 64) this.pastTerms.splice(0, this.pastTerms.length - 64);
    this.scheduler = scheduler;
    try {
      await scheduler.reconcile();
      await scheduler.sweep();
    } catch (err) {
      if (!(err instanceof FencedError)) this.opts.log.error({ err: { message: (err as Error).message } }, `cluster: taking over the scheduler (epoch ${epoch}) failed; the next sweep tries again`);
    }
    this.kick();
  }

  private async committed(sightings: Sighting[], results: ApplyResult[]): Promise<void> {
    const changed = new Set<number>(), ended = new Set<number>();
    sightings.forEach((s, i) => {
      const r = results[i];
      // new, moved and ended bindings are news; renewals and ignored lines only at debug level
      const level = r.change === 'renewed' || r.change === 'ignored' ? 'debug' : 'info';
      // (the line is built only when it is logged: a renewal is most of a busy fleet's sightings)
      if (this.opts.log.isLevelEnabled(level)) {
        const c = clippedForLog(s);
        this.opts.log[level]({ sighting: c, change: r.change, note: r.note },
          `sighting ${c.kind} ${c.ip}${c.mac ? ' ' + c.mac : ''}${c.user ? ' user ' + c.user : ''}${c.hostname ? ' (' + c.hostname + ')' : ''} from ${c.source} [${c.format}]: ${r.change}${r.note ? ' — ' + r.note : ''}`);
      }
      // a VPN session end the user's sessions from other public addresses refused: forged, or a
      // client that roamed (its session then stays open until it expires); said, at most once a minute
      if (r.refusedEnd) {
        const n = this.refusedEnds.take('refusedEnd');
        if (n !== undefined) {
          const c = clippedForLog(s);
          this.opts.log.warn({ sighting: c, note: r.note, refusedEnds: n },
            `VPN session end refused (${n} since the last such line): ${r.note}; a forged line, or a client whose public address changed (its session stays open until it expires)`);
        }
      }
      if (r.bindingId !== undefined && (r.change === 'new' || r.change === 'reassigned' || r.change === 'renewed')) changed.add(r.bindingId);
      if (r.bindingId !== undefined && r.change === 'ended') ended.add(r.bindingId);
    });
    const departures = ended.size ? await this.scheduler.departed(ended) : 0;
    if ((changed.size && (await this.scheduler.consider(changed)) > 0) || departures > 0) this.kick();
    if (this.notifier.enabled && results.some((r) => r.change === 'ended')) this.checkMissedSoon();
  }

  private missedCheckPending = false;

  /** A device left: was it scanned? (coalesced: a burst of releases is one check a second later) */
  private checkMissedSoon(): void {
    if (this.missedCheckPending || this.stopping) return;
    this.missedCheckPending = true;
    setTimeout(() => {
      this.missedCheckPending = false;
      void this.notifier.checkMissed(this.clock.now());
    }, 1000).unref();
  }

  private announceLaunch(i: LaunchInfo): void {
    const now = this.clock.now();
    for (const t of i.targets) if (t.dueSince !== undefined) this.timings.sightingToLaunch(Math.max(0, now - t.dueSince) / 1000, { region: i.region });
    const verb = this.scanner.pretend ? 'DRY RUN: would launch' : 'launched';
    const why = i.targets.map((t) => `${t.ip} (${t.why})`).join('; ');
    this.opts.log.info({ launch: i },
      `${verb} scan ${i.scanRef} on appliance ${i.appliance} in region ${i.region} for ${i.targets.length} host(s): ${why}. Appliance chosen: ${i.applianceWhy}`);
  }

  /** While lines flow (file catch-up, a burst), log ingest progress every `ms`: lines/s, sightings, pending. */
  private progressTimer(ms: number): NodeJS.Timeout {
    let last = { at: Date.now(), lines: 0, sightings: 0 };
    return setInterval(() => {
      const c = this.ingest.counters;
      const now = Date.now();
      if (c.lines !== last.lines || c.pending > 0) {
        const rate = Math.round(((c.lines - last.lines) * 1000) / Math.max(1, now - last.at));
        this.opts.log.info({ progress: { linesPerS: rate, lines: c.lines, sightings: c.sightings, pending: c.pending } },
          `ingest: ${rate} lines/s, ${c.lines} lines and ${c.sightings} sightings so far, ${c.pending} pending`);
      }
      last = { at: now, lines: c.lines, sightings: c.sightings };
    }, ms);
  }

  /** the scheduler pass whose outcome is already being handled (kick) */
  private passHandled?: Promise<void>;

  /** Run a scheduler pass soon (coalesced). */
  kick(): void {
    if (this.kickPending || this.stopping || !this.mayLead()) return;
    this.kickPending = true;
    setImmediate(() => {
      this.kickPending = false;
      // (stop() began meanwhile: it runs the last pass itself; one started now would meet a closed store and log)
      if (this.stopping) return;
      const pass = this.scheduler.tick();
      // a kick while a pass runs joins it (tick() hands back the pass in flight): its outcome is handled
      // once, not once per kick (a pass held by a lost connection then failed with 27 lines in 1 ms)
      if (pass === this.passHandled) return;
      this.passHandled = pass;
      pass.then(() => this.storeHealth.succeeded('scheduler'), (err: Error) => {
        const code = (err as { code?: string }).code;
        if (err instanceof FencedError) this.opts.log.info(`scheduler pass ended: ${err.message}`);
        else if (code?.startsWith('SQLITE_')) this.storeHealth.failed('scheduler', err, 'the next pass tries again');
        else this.opts.log.error({ err: { message: err.message, code } }, 'scheduler pass failed');
      });
    });
  }

  /**
   * Re-read TLS certificates and keys (SIGHUP). Each listener on its own: one that fails (a
   * half-written file) is logged by name and keeps its certificate; the others still reload.
   * Returns how many failed.
   */
  async reloadTls(): Promise<number> {
    const log = this.opts.log;
    let failed = 0;
    for (const i of this.inputs) {
      try {
        await i.reload?.();
      } catch (err) {
        failed++;
        log.error({ input: i.name, err: { message: (err as Error).message } }, `input ${i.name}: ${KEPT_AT_RELOAD}`);
      }
    }
    try {
      this.http?.reload();
    } catch (err) {
      failed++;
      log.error({ err: { message: (err as Error).message } }, `http.listen ${this.opts.config.http.listen}: ${KEPT_AT_RELOAD}`);
    }
    return failed;
  }

  /**
   * Stop everything, in order. Every step runs even when one before it failed (the lease is still
   * handed over, the database closed, the lock released); stop() then rejects naming the steps
   * that failed, so that `onsight run` exits 1.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const log = this.opts.log;
    const failed: string[] = [];
    const step = async (name: string, f: () => unknown) => {
      try {
        await f();
      } catch (err) {
        failed.push(`${name} (${(err as Error).message})`);
        log.error({ step: name, err: { message: (err as Error).message } }, `stopping: ${name} failed; the other steps go on`);
      }
    };
    for (const t of this.timers) clearInterval(t);
    await step('http', () => this.http?.close());
    for (const i of this.inputs) {
      try {
        await i.close();
      } catch (err) {
        log.warn({ input: i.name, err: { message: (err as Error).message } }, 'input did not close cleanly');
      }
    }
    await step('ingest', () => this.ingest?.close());
    // a last pass takes what was just committed, but never for long: a scanner call that hangs must
    // not outlast systemd's TimeoutStopSec; closing the scanner below ends such calls
    const lead = this.started && this.mayLead();
    // (a failed pass is no stop failure: the state is durable and the next start reconciles)
    const pass = lead && this.scheduler ? this.scheduler.tick().catch(() => undefined) : undefined;
    const passOut = pass && await within(pass, this.opts.stopPassMs ?? 10_000);
    if (passOut === TIMED_OUT) log.warn(`stopping: the last scheduler pass still runs after ${Math.round((this.opts.stopPassMs ?? 10_000) / 1000)} s; closing the scanner ends its calls (the next start reconciles)`);
    // what the scheduler learned, for the next start (scheduler/memory.ts; a failed write is logged there)
    if (lead) await step('scheduler memory', () => this.scheduler?.saveLearned());
    await step('cluster applier', () => this.applier?.stop());
    await step('cluster lease', () => this.lease?.stop()); // a leader hands the lease over now rather than at expiry
    await step('scanner', () => this.scanner?.close());
    // the abandoned pass's last writes land before the database closes
    if (passOut === TIMED_OUT && await within(pass!, STOP_SETTLE_MS) === TIMED_OUT) log.warn('stopping: the last scheduler pass did not end; closing the database under it');
    await step('notifications', () => this.notifier?.close());
    await step('state database', () => this.store?.close());
    await step('state lock', () => this.stateLock?.release());
    if (failed.length) {
      log.error(`onsight stopped; these steps failed: ${failed.join('; ')}`);
      throw new Error(`stopping: ${failed.join('; ')}`);
    }
    log.info('onsight stopped');
  }
}

/** What a cluster node publishes of its policy (cluster_nodes.policy): the lists other nodes narrow theirs by. */
function policyLists(config: Pick<Config, 'policy'>): NodePolicyLists {
  return { scope: config.policy.scope, exclude: config.policy.exclude };
}

/** a sighting's names cut for a log line (stored cut to 253; a 60,000-character name made a 120 KB line per packet) */
const LOGGED_NAME_MAX = 256;
function clippedForLog(s: Sighting): Sighting {
  const long = (['hostname', 'user', 'duid', 'clientId', 'remoteHost'] as const).filter((k) => (s[k]?.length ?? 0) > LOGGED_NAME_MAX);
  if (!long.length) return s;
  const c = { ...s };
  for (const k of long) c[k] = `${s[k]!.slice(0, LOGGED_NAME_MAX)}… (${s[k]!.length} characters)`;
  return c;
}
