/**
 * The daemon as the HTTP listener sees it (src/http/view.ts): read-only named queries over the
 * running parts, so the listener needs neither the daemon nor SQL of its own.
 */
import type { ClusterMetricInput } from '../cluster/metrics.js';
import type { ClusterNodeView, DaemonView, EndedBinding } from '../http/view.js';
import type { Config } from '../config/schema.js';
import type { AddressReuse, BindingView, Inventory, Store } from '../store/types.js';
import type { Policy } from '../policy/policy.js';
import type { Scanner } from '../scanners/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { InputHandle } from '../sources/types.js';
import type { Ingest } from './ingest.js';
import type { StoreHealth } from '../store/health.js';
import type { Notifier } from '../notify/notifier.js';
import type { InputFreshness } from './freshness.js';
import type { MetricsRegistry } from '../http/prom.js';
import { coverageReports } from '../coverage/report.js';
import { applyMark, OperatorMarks } from '../scheduler/marks.js';

/** How long the address reuse figures are reused before they are counted again (a look-up per ended binding of the last day). */
const REUSE_TTL_MS = 5 * 60_000;

/** The running parts the view reads (the Daemon has them; read afresh at each query: a reload replaces the policy). */
export interface ViewedParts {
  readonly startedAt: number;
  readonly config: Config;
  readonly store: Store;
  readonly inventory: Inventory;
  readonly policy: Policy;
  readonly scheduler: Scheduler;
  readonly scanner: Scanner;
  readonly ingest: Ingest;
  readonly inputs: InputHandle[];
  readonly storeHealth?: StoreHealth;
  readonly notifier?: Notifier;
  readonly freshness?: InputFreshness;
  readonly metrics: MetricsRegistry;
  /** cluster mode: what /metrics reports of the lease, the inbox and the applier */
  clusterMetrics?(): Promise<ClusterMetricInput | undefined>;
  /** cluster mode: this node and the leader it last saw (the status page) */
  clusterNode?(): ClusterNodeView | undefined;
}

/** a number per object, for the counts' version: the running policy is replaced at a reload */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function versionOf(o: object): number {
  let id = objectIds.get(o);
  if (id === undefined) objectIds.set(o, (id = nextObjectId++));
  return id;
}

export function daemonView(d: ViewedParts): DaemonView {
  /** each day's coverage, when it was counted and what counting it cost (ms) */
  const coverage = new Map<number, { at: number; costMs: number; point: Awaited<ReturnType<DaemonView['coverageByDay']>>[number] }>();
  /** the count under way, if any */
  let counting: Promise<unknown> | undefined;
  /** the last address reuse figures (addressReuse), and when they were asked for */
  let reuse: { at: number; quickMs: number; value: Promise<AddressReuse[]> } | undefined;
  /** coverage of the last `days` UTC days, each day from the cache while it is fresh enough */
  async function countCoverage(days: number): Promise<Awaited<ReturnType<DaemonView['coverageByDay']>>> {
    const now = Date.now();
    const today = Math.floor(now / 86400_000) * 86400_000;
    const q = { inventory: d.inventory, store: d.scheduler.store, history: d.store.history, policy: d.policy, marks: await new OperatorMarks(d.scheduler.store).all(), now };
    // a past day changes only with late lines: an hour; today: a minute, or 50 times what counting
    // it cost (a fleet of 1M: at most 2% of a core however often the page and metrics are read)
    const stale: { from: number; to: number }[] = [];
    for (let n = days - 1; n >= 0; n--) {
      const from = today - n * 86400_000;
      const hit = coverage.get(from);
      if (!hit || now - hit.at >= Math.max(n === 0 ? 60_000 : 3600_000, 50 * hit.costMs)) stale.push({ from, to: Math.min(now, from + 86400_000) });
    }
    // the stale days in one pass over their bindings; each day is charged the whole pass's cost
    const t0 = performance.now();
    const reports = await coverageReports(q, stale);
    const costMs = performance.now() - t0;
    stale.forEach((p, i) => coverage.set(p.from, { at: now, costMs, point: { day: new Date(p.from).toISOString().slice(0, 10), regions: reports[i].regions } }));
    const out: Awaited<ReturnType<DaemonView['coverageByDay']>> = [];
    for (let n = days - 1; n >= 0; n--) out.push(coverage.get(today - n * 86400_000)!.point);
    for (const k of coverage.keys()) if (k < today - days * 86400_000) coverage.delete(k);
    return out;
  }
  return {
    startedAt: d.startedAt,
    config: () => d.config,
    // (the running values: a reload applies regions and scheduler at once)
    whyLimits: () => ({ regions: d.config.regions, scheduler: d.config.scheduler, scanner: d.config.scanner }),
    inputs: () => d.inputs,
    ingestCounters: () => d.ingest.counters,
    decoderCounters: () => d.ingest.decoderCounters(),
    decodeWatchdog: () => d.ingest.decodeWatchdog(),
    scanner: () => ({ kind: d.scanner.kind, allowance: d.scanner.allowance(), block: d.scheduler.scannerBlock() }),
    schedulerCounters: () => d.scheduler.counters,
    applianceLoad: (name) => d.scheduler.applianceLoad(name),
    applianceLearned: (name) => d.scheduler.applianceLearned(name),
    processingLag: () => d.scheduler.processingLag(),
    learnedState: () => d.scheduler.learnedState(),
    hostsInParallel: () => d.scheduler.hostsInParallel(),
    rangeScans: () => d.scheduler.rangeScans(),
    activeIntents: () => d.scheduler.store.activeIntents(),
    queue: () => d.scheduler.store.allQueued(),
    recentDecisions: (limit) => d.scheduler.store.recentDecisions(limit),
    decisionPagesSince: (since) => d.scheduler.store.decisionPagesSince(since),
    async recentIntents(limit) {
      const out = [];
      for (const i of await d.scheduler.store.recentIntents(limit)) out.push({ ...i, targets: (await d.scheduler.store.targets(i.id)).length });
      return out;
    },
    endedIntentCounts: () => d.scheduler.store.endedIntentCounts(),
    presentBindingPages: (now) => d.inventory.presentBindingPages(now),
    async endedBindings(since, now, before): Promise<EndedBinding[]> {
      return (await d.inventory.endedBindings(since, now, before)).map((e) => ({
        view: {
          id: e.id, ip: e.ip, identityId: e.identityId, startAt: e.startAt, lastSeen: e.endAt,
          lastScannedAt: e.lastScannedAt, lastScannedVia: e.lastScannedVia,
        } as BindingView,
        endAt: e.endAt,
        presentElsewhere: e.presentElsewhere,
      }));
    },
    inventoryCounts: (now) => d.inventory.counts(now),
    addressReuse(since, quickMs) {
      // a look-up per ended binding of the day: shared by the page's refreshes and /metrics scrapes for REUSE_TTL_MS
      const now = Date.now();
      if (!reuse || now - reuse.at > REUSE_TTL_MS || reuse.quickMs !== quickMs) {
        const value = d.store.history.addressReuse(since, quickMs);
        const mine = { at: now, quickMs, value };
        reuse = mine;
        value.catch(() => { if (reuse === mine) reuse = undefined; });
      }
      return reuse.value;
    },
    evaluate: (b, at) => d.policy.evaluate(b, at),
    // operators' skips and rescans count as the scheduler counts them
    async markedEvaluator() {
      const marks = await new OperatorMarks(d.scheduler.store).all();
      const policy = d.policy;
      return (b, at) => applyMark(marks.get(b.identityId), policy.evaluate(b, at), b, at, (region) => policy.windowOpen(region, at));
    },
    async countsVersion() {
      return `${await new OperatorMarks(d.scheduler.store).lastUpdate()}/${versionOf(d.policy)}`;
    },
    async coverageByDay(days) {
      // concurrent readers (the page, /metrics) wait for the count under way, then read its result
      while (counting) await counting.catch(() => undefined);
      const run = countCoverage(days);
      counting = run;
      try {
        return await run;
      } finally {
        counting = undefined;
      }
    },
    metricsRegistry: () => d.metrics,
    cluster: async () => d.clusterMetrics?.(),
    clusterNode: () => d.clusterNode?.(),
    // marks are not fenced (any node or command may write one; the leader reads them): the plain store, not the term's
    operatorStore: () => d.store,
    inputFreshness: (name) => d.freshness?.get(name),
    notifyCounters: () => d.notifier?.counters() ?? [],
    regionOf: (ip) => d.policy.regions.lookup(ip)?.region.name,
    storeHealth: () => ({ writeErrors: d.storeHealth?.writeErrors ?? 0, problem: d.storeHealth?.problem() }),
    async ping() {
      if (!d.store) throw new Error('not started');
      await d.store.ping();
      const problem = d.storeHealth?.problem(); // failing writes, a full disk
      if (problem) throw new Error(problem.replace(/^state database: /, ''));
    },
  };
}
