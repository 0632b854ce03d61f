/**
 * What the HTTP listener may see of the daemon: a narrow, read-only view with named queries. It
 * is built by the daemon (src/daemon/view.ts), so this folder never imports the daemon (only the
 * types of what it reads) and runs no SQL of its own: no import cycle between daemon and http.
 */
import type { BindingView } from '../inventory/inventory.js';
import type { Verdict } from '../policy/policy.js';
import type { Allowance } from '../scanners/types.js';
import type { Decision, Intent, QueueEntry } from '../scheduler/queue.js';
import type { LearnedAppliance, LearnedLag, HostsInParallelStatus, LearnedStateStatus, RangeScanStatus, SchedulerCounters, ScannerBlock } from '../scheduler/scheduler.js';
import type { SourceCounters } from '../sources/types.js';
import type { IngestCounters } from '../daemon/ingest.js';
import type { DecoderCounters } from '../parsers/decoder.js';
import type { DecodeWatchdogFigures } from '../daemon/decode-client.js';
import type { EndedBinding } from '../coverage/missed.js';
import type { AddressReuse, EndedKey } from '../store/types.js';
import type { DeliveryCounters } from '../notify/queue.js';
import type { LineFreshness } from '../daemon/freshness.js';
import type { CoverageRow } from '../coverage/report.js';
import type { MetricsRegistry } from './prom.js';
import type { StateConfig } from '../cluster/config.js';
import type { ClusterMetricInput } from '../cluster/metrics.js';
import type { Store } from '../store/types.js';
import type { WhyLimits } from './operator.js';

export type { EndedBinding } from '../coverage/missed.js';

/** A cluster node as its status page shows it. */
export interface ClusterNodeView {
  /** the deployment (cluster.name) */
  name: string;
  node: string;
  /** scheduler: may lead; collector: never does */
  role: 'scheduler' | 'collector';
  /** whether this node holds the lease now */
  leading: boolean;
  /** the lease holder as last seen (null: none, or its lease lapsed) */
  leader: string | null;
  epoch: number;
  /** database time the leader took the lease */
  leaderSince: Date | null;
  /** database time the leader's lease lapses unless renewed */
  leaseExpiresAt: Date | null;
}

export interface DaemonView {
  readonly startedAt: number;
  /** the running config's regions and state file (what a reload could not change keeps its running value) */
  config(): { state: StateConfig; regions: { name: string; cidrs: string[]; appliances: { name: string; maxScans: number }[] }[] };
  /** the running config's regions, scheduler and scanner, read at each request (a reload changes them): /api/why's `now` names the limit a ready device waits on */
  whyLimits(): WhyLimits;
  inputs(): { name: string; counters(): SourceCounters }[];
  ingestCounters(): IngestCounters;
  decoderCounters(): DecoderCounters[];
  /** the decode thread's watchdog: lines it dropped by source, user plug-ins it disabled (undefined: no decode thread) */
  decodeWatchdog(): DecodeWatchdogFigures | undefined;
  scanner(): { kind: string; allowance: Allowance; block: ScannerBlock };
  schedulerCounters(): SchedulerCounters;
  applianceLoad(name: string): Promise<{ online: boolean; load: number; ours: number }>;
  /** what the scheduler learned of the appliance (slots, pickup) next to what is configured, and how */
  applianceLearned(name: string): LearnedAppliance;
  /** the scanner's processing lag as learned from the host list */
  processingLag(): LearnedLag;
  /** hosts an appliance scans at once in one scan, as learned from scan durations, from the option profile's figure or the configured hostsInParallel */
  hostsInParallel(): HostsInParallelStatus;
  /** the platform's range schedules kept for scheduler.rangeScans, and what their runs credited */
  rangeScans(): RangeScanStatus;
  /** what the scheduler read back of what it had learned before a restart, and when it last wrote it */
  learnedState(): LearnedStateStatus;
  activeIntents(): Promise<Intent[]>;
  queue(): Promise<QueueEntry[]>;
  recentDecisions(limit: number): Promise<Decision[]>;
  /** decisions logged since `since` (ms), oldest first, a page at a time (the log may hold 1M) */
  decisionPagesSince(since: number): AsyncIterable<Decision[]>;
  recentIntents(limit: number): Promise<(Intent & { targets: number })[]>;
  /** ended intents in the state database by region, appliance and final state (durable counts) */
  endedIntentCounts(): Promise<{ region: string; appliance: string; state: string; n: number }[]>;
  /** every present binding, a page at a time (a fleet may be 1M) */
  presentBindingPages(now: number): AsyncIterable<BindingView[]>;
  /** bindings that ended since `since`, newest first (ENDED_PAGE at most; `before`: the page after) */
  endedBindings(since: number, now: number, before?: EndedKey): Promise<EndedBinding[]>;
  inventoryCounts(now: number): Promise<{ identities: number; present: number }>;
  /** per channel, bindings ended since `since` whose address another device took next, and how many within `quickMs` (HistoryStore.addressReuse) */
  addressReuse(since: number, quickMs: number): Promise<AddressReuse[]>;
  /** the policy's verdict for a binding at a time, and the region its address maps to (if any) */
  evaluate(b: BindingView, at: number): Verdict;
  /** the policy's verdict with operators' skips and rescans applied, as the scheduler decides (marks read now) */
  markedEvaluator(): Promise<(b: BindingView, at: number) => Verdict>;
  /**
   * What the verdicts depend on besides the bindings and time, as a token that changes with it: the
   * operators' last mark (written by the CLI too) and the running policy (a reload replaces it).
   */
  countsVersion(): Promise<string>;
  regionOf(ip: string): string | undefined;
  /** failed writes to the state database since start, and what is failing now (a full disk), if anything */
  storeHealth(): { writeErrors: number; problem?: string };
  /** when the input (by name) and each of its senders last sent a line; undefined for an input not tracked */
  inputFreshness(name: string): LineFreshness | undefined;
  /** coverage per region for each of the last `days` UTC days (today up to now); cached (today's a minute, earlier days an hour, or 50 times what counting the day cost): it reads every binding of the day */
  coverageByDay(days: number): Promise<{ day: string; regions: CoverageRow[] }[]>;
  /** cluster mode: this node, its role, and the leader as this node last saw the lease (undefined on a single node) */
  clusterNode?(): ClusterNodeView | undefined;
  /** the running store, for the operator API (why: reads; rescan/skip: operator marks, which any node may write) */
  operatorStore(): Pick<Store, 'inventory' | 'scheduler' | 'history'>;
  /** cluster mode: lease counters, inbox backlog, applier counters (undefined on a single node) */
  cluster?(): Promise<ClusterMetricInput | undefined>;
  /** the prom-client registry /metrics renders (with the histograms the daemon observes) */
  metricsRegistry(): MetricsRegistry;
  /** notification sinks (webhook, syslog) and their delivery counts; empty when none is configured */
  notifyCounters(): { sink: string; counters: DeliveryCounters }[];
  /** rejects when the state database cannot answer (or its writes are failing: a full disk) */
  ping(): Promise<void>;
}
