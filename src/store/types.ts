/**
 * The store behind one interface: the inventory (identities, bindings, sightings, source
 * positions) and the scheduler's durable part (queue, intents, decisions, operator marks).
 * Every method that touches the database returns a Promise, so one implementation can sit on
 * embedded SQLite (src/inventory/inventory.ts, src/scheduler/queue.ts) and another on a
 * PostgreSQL server (src/store/postgres/). Callers never see SQL.
 *
 * Transactions: `SchedulerStore.atomically(fn)` runs `fn` (which may await store calls on either
 * store of the same Store) as one transaction; while it is open no other caller's statement joins
 * it, and an exception rolls it back.
 */
import type { Sighting } from '../sighting.js';
import type { FileCheckpoint, SourcePosition } from '../sources/types.js';

// ------------------------------------------------------------------------------ inventory

export interface InventoryOptions {
  defaultLeaseS: number;
  maxSessionS: number;
  retentionS: number;
  /**
   * A device neither seen nor scanned for this long (and no longer named by any row) is forgotten;
   * at least retentionS. The daemon sets the longest rescan window, so a device that comes back
   * within its window keeps its last scan.
   */
  forgetAfterS?: number;
  /** identities with the same specific hostname share their last scan (DHCP and VPN views of one laptop); default true */
  linkHostnames?: boolean;
  /**
   * Host-key globs (`lt-*`) the operator vouches for: names handed out centrally to managed
   * devices. Identities sharing such a name link on the name alone; any other name links only
   * when the two identities also share a user name (a LAN device that names itself like a
   * scanned laptop must not inherit its scan).
   */
  linkHostPatterns?: string[];
  /** learn DHCP pools' lease times from renewals when lines state none (lease-times.ts); default true */
  learnLeaseTimes?: boolean;
}

export interface IdentityView {
  id: number;
  key: string;
  mac?: string;
  duid?: string;
  user?: string;
  hostname?: string;
  lastScannedAt?: number;
  lastScannedVia?: string;
}

export interface BindingView {
  id: number;
  ip: string;
  identityId: number;
  identityKey: string;
  mac?: string;
  user?: string;
  hostname?: string;
  channel: 'dhcp' | 'vpn';
  format: string;
  startAt: number;
  lastSeen: number;
  expiresAt?: number;
  endAt?: number;
  endReason?: string;
  renewals: number;
  lastScannedAt?: number;
  lastScannedVia?: string;
}

export type Change = 'new' | 'renewed' | 'ended' | 'reassigned' | 'ignored';

export interface ApplyResult {
  change: Change;
  bindingId?: number;
  identityId?: number;
  /** why a sighting changed nothing */
  note?: string;
  /**
   * an address-less VPN session end refused: the user's open sessions are all from other public
   * addresses than the line names (a forged end, or a client whose public address changed)
   */
  refusedEnd?: true;
}

/** A binding that ended since some time (the status page's "left without a scan"). */
export interface EndedBindingRow {
  id: number;
  ip: string;
  identityId: number;
  startAt: number;
  endAt: number;
  endReason?: string;
  lastScannedAt?: number;
  lastScannedVia?: string;
  /** the device holds another present binding */
  presentElsewhere: boolean;
}

/** A binding as a coverage report reads it (Inventory.bindingPagesBetween). */
export interface PeriodBinding {
  id: number;
  ip: string;
  identityId: number;
  channel: 'dhcp' | 'vpn';
  startAt: number;
  expiresAt?: number;
  endAt?: number;
  lastScannedAt?: number;
  lastScannedVia?: string;
}

export interface InventoryCounts {
  identities: number;
  present: number;
  bindings: number;
  sightings: number;
}

export interface Inventory {
  /** Lease and retention defaults and hostname linking from a reloaded config (no I/O). */
  setOptions(opts: InventoryOptions): void;
  /**
   * Apply a batch of sightings, the file checkpoints of the lines that produced them and other
   * sources' positions in ONE transaction: either all of it is in the database or none of it is.
   */
  commitBatch(sightings: Sighting[], checkpoints?: FileCheckpoint[], now?: number, positions?: SourcePosition[]): Promise<ApplyResult[]>;
  /** A source position's committed value, or undefined. */
  position(key: string): Promise<unknown>;
  /** Forget positions under `prefix` not updated since `before` (old HTTP idempotency keys). */
  prunePositions(prefix: string, before: number): Promise<number>;
  checkpoint(path: string): Promise<FileCheckpoint | undefined>;
  binding(id: number): Promise<BindingView | undefined>;
  /** binding(id) of many at once (one round trip): those that exist, in no particular order (the scheduler's consider pass) */
  bindings(ids: readonly number[]): Promise<BindingView[]>;
  /** the binding holding `ip` now, if any */
  openBinding(ip: string): Promise<BindingView | undefined>;
  identity(id: number): Promise<IdentityView | undefined>;
  /** A binding is present while it is open and not past its expiry (no I/O). */
  isPresent(b: BindingView, now: number): boolean;
  presentBindings(now: number): Promise<BindingView[]>;
  /** The bindings an identity holds now (onsight rescan / skip name devices, not addresses). */
  presentBindingsOf(identityId: number, now: number): Promise<BindingView[]>;
  /** The ids (and identities' last scan) of presentBindings(now), same order: a cheap pass for the periodic sweep. */
  presentIds(now: number): Promise<{ id: number; lastScannedAt?: number }[]>;
  /**
   * presentBindings(now) a page at a time, same order (keyset pages by address), so a pass over a
   * fleet of 1M holds one page, not the fleet (status page, metrics).
   */
  presentBindingPages(now: number, pageSize?: number): AsyncIterable<BindingView[]>;
  /** presentIds(now) a page at a time (the periodic full sweep). */
  presentIdPages(now: number, pageSize?: number): AsyncIterable<{ id: number; lastScannedAt?: number }[]>;
  /**
   * Bindings ended at or after `since`, newest first, ENDED_PAGE at most; `before`: the next page,
   * older than the last row of the one before (by end, then id).
   */
  endedBindings(since: number, now: number, before?: EndedKey): Promise<EndedBindingRow[]>;
  /** Bindings that overlap [from, to): started before `to`, not ended (or run out) before `from`; with their device's last scan (coverage reports). */
  /** The bindings held at any time from `from` to `to` (each until its end, else its expiry, else `now`), a page at a time, ordered by identity then binding: a report over 1M keeps one page in memory. */
  bindingPagesBetween(from: number, to: number, now: number, pageSize?: number): AsyncIterable<PeriodBinding[]>;
  /** End bindings whose lease ran out without a release; returns their ids. */
  expireStale(now: number): Promise<number[]>;
  /** Did a device other than `identityId` hold `ip` at any time from `from` to `to` (default: at `from`), as far as we know? */
  heldByAnotherAt(ip: string, from: number, identityId: number, to?: number): Promise<boolean>;
  /**
   * Record a scan of these identities (only ever forward); with linkHostnames, identities sharing
   * a specific host key with one of them are credited too.
   */
  markScanned(identityIds: number[], at: number, via: string): Promise<void>;
  /**
   * Forget the last scans a pretend scanner (dry-run) recorded, its own and those linked from them:
   * they scanned nothing. Returns how many devices were credited so.
   */
  forgetPretendScans(via: string): Promise<number>;
  /** Drop ended scans (kept as counts), sightings and ended bindings older than the retention, and devices long forgotten. */
  prune(now: number): Promise<PruneCounts>;
  counts(now: number): Promise<InventoryCounts>;
}

/** One channel's addresses taken by another device after a binding ended (HistoryStore.addressReuse). */
export interface AddressReuse {
  channel: 'dhcp' | 'vpn';
  /** bindings ended in the period whose address another device took next */
  reused: number;
  /** of those whose end a line stated (a release, a tunnel-down, a move), taken within the quick limit of it */
  quick: number;
}

/** The most rows one endedBindings call returns. */
export const ENDED_PAGE = 20_000;

/** Where a page of ended bindings left off (its last row's end and id). */
export interface EndedKey {
  endAt: number;
  id: number;
}

/** Rows the hourly prune deleted. */
export interface PruneCounts {
  sightings: number;
  bindings: number;
  /** ended scans, kept as counts by region, appliance and state */
  intents: number;
  identities: number;
}

// ------------------------------------------------------------------------------ scheduler store

export interface QueueEntry {
  bindingId: number;
  ip: string;
  identityId: number;
  region: string;
  dueSince: number;
  /** the device's last sighting (ms): the most recently seen go first */
  lastSeen?: number;
  attempts: number;
  notBefore: number;
  intentId?: string;
}

export type IntentState = 'launching' | 'running' | 'finished' | 'error' | 'canceled' | 'abandoned';

export interface Intent {
  id: string;
  region: string;
  appliance: string;
  state: IntentState;
  scanRef?: string;
  createdAt: number;
  launchedAt?: number;
  endedAt?: number;
  error?: string;
  /** the lease epoch (cluster term) it was created under; absent on a single node */
  epoch?: number;
}

export interface IntentTarget {
  ip: string;
  identityId: number;
  bindingId: number;
}

/**
 * What the scheduler decided about an address, as logged (the decision log, `onsight hosts`, the
 * status page): `due` queued; `not-due` not queued (the reason says why); `dropped` taken out of
 * the queue at launch time (re-check failed); `launched`; `scanned` recorded as scanned;
 * `not-scanned` a scan ended without a result for it; `dropped-by-scanner` the scanner left it out
 * of the scan it launched (outside its subscription, say); `canceled` its scan was canceled;
 * `failed` given up after too many failed scans.
 */
export type DecisionKind = 'due' | 'not-due' | 'dropped' | 'launched' | 'scanned' | 'not-scanned' | 'dropped-by-scanner' | 'canceled' | 'failed';

export interface Decision {
  at: number;
  ip: string;
  identityId?: number;
  decision: DecisionKind;
  reason: string;
}

/** What an operator asked about a device (`onsight rescan`, `onsight skip`); see scheduler/marks.ts. */
export interface OperatorMark {
  identityId: number;
  rescanAt?: number;
  skipUntil?: number;
  updatedAt: number;
}

/**
 * onsight's credit of a scan to a device, kept for second looks (scheduler/second-look.ts): when the
 * credited scan ended (the device's last scan it set), the credit before it, the DHCP lease held
 * then, and whether the result is known whole. Kept so that a restart does not forget who is owed
 * a look.
 */
export interface ScanCredit {
  identityId: number;
  at: number;
  prev?: number;
  lease?: { lastSeen: number; expiresAt: number };
  whole: boolean;
}

/**
 * One part of what the scheduler learned (appliance slots, scan durations, hosts in parallel,
 * processing lag, DHCP bindings of scans in flight, devices whose last scan found no host, running
 * scans' launch order: scheduler/memory.ts), as JSON, kept so that a
 * restart or a new cluster term starts from it rather than from the configured values.
 */
export interface LearnedRecord {
  name: string;
  /** JSON */
  state: string;
  savedAt: number;
}

/** What one consider pass writes (SchedulerStore.writeConsidered). */
export interface ConsideredWrites {
  /** binding ids whose entry leaves the queue unless a scan for it is in flight */
  dequeueIfWaiting: number[];
  enqueue: Omit<QueueEntry, 'attempts' | 'notBefore' | 'intentId'>[];
  /** waiting entries that move to the region their address maps to now */
  moveRegion: { bindingId: number; region: string }[];
  /** queued devices seen again (they move up) */
  touch: { bindingId: number; lastSeen: number }[];
  decisions: Decision[];
}

export type AwaitingEntry = QueueEntry & { scanRef: string; appliance: string; launchedAt: number; endedAt: number };

export interface SchedulerStore {
  /** cluster mode: the lease epoch this store's writes are fenced by (src/daemon/cluster.ts); undefined on a single node */
  readonly epoch?: number;
  /** Queue a due binding; false when it is queued already. */
  enqueue(e: Omit<QueueEntry, 'attempts' | 'notBefore' | 'intentId'>): Promise<boolean>;
  /** A waiting entry (no scan in flight) moves to the region its address maps to now (the config changed under it). */
  moveRegion(bindingId: number, region: string): Promise<void>;
  /** A queued device seen again moves up the queue. */
  touch(bindingId: number, lastSeen: number): Promise<void>;
  queued(bindingId: number): Promise<QueueEntry | undefined>;
  /** queued(id) of many at once: the entries that exist, in no particular order */
  queuedOf(bindingIds: readonly number[]): Promise<QueueEntry[]>;
  /**
   * The writes of one consider pass, one statement per kind (in this order): waiting entries that
   * leave the queue, new entries (a binding queued already is left as it is), waiting entries moved
   * to another region, queued devices seen again, then the decisions in the order given.
   */
  writeConsidered(w: ConsideredWrites): Promise<void>;
  /** binding ids of every queue entry */
  queuedIds(): Promise<Set<number>>;
  ready(region: string, now: number, limit: number): Promise<QueueEntry[]>;
  /** Those of `regions` with a queue entry ready to launch (one indexed probe per region, not a queue scan). */
  readyRegions(now: number, regions: Iterable<string>): Promise<string[]>;
  dequeue(bindingId: number): Promise<void>;
  /** Leave the queue unless a scan for it is in flight (an operator's skip does not cancel a running scan). */
  dequeueIfWaiting(bindingId: number): Promise<void>;
  /** A waiting entry (no scan in flight) is not ready before `notBefore` (a later one it has stays; launch.ts: an address scanned for too many devices within the hour). */
  holdUntil(bindingId: number, notBefore: number): Promise<void>;
  /** Record the intent and its targets before the launch call: the crash-safety anchor. */
  createIntent(i: Pick<Intent, 'id' | 'region' | 'appliance' | 'createdAt' | 'epoch'>, targets: IntentTarget[]): Promise<void>;
  // Transitions are conditional: each applies only from the states it may come from and returns
  // false, writing nothing, otherwise (another actor, or a deposed leader, moved the intent first).
  /** launching → running; false when the intent is not launching. */
  setRunning(id: string, scanRef: string, at: number): Promise<boolean>;
  /**
   * End an intent (from launching or running; `finished` only from running); its queue entries
   * are removed (finished) or released for a retry later. False when it was not in such a state.
   */
  endIntent(id: string, state: Exclude<IntentState, 'launching' | 'running'>, at: number, error: string | null, retry?: { notBefore: number; countAttempt: boolean }): Promise<boolean>;
  /** Take one target out of its intent `intentId` (still launching or running), back to the queue (the rest of the intent is ended later). */
  releaseTarget(bindingId: number, retry: { notBefore: number; countAttempt: boolean }, intentId: string): Promise<boolean>;
  /**
   * End a running intent as finished but keep the queue entries of `keep` assigned to it: their
   * result is yet to be confirmed by the scanner (awaitingVerification); the others leave the queue.
   */
  finishKeeping(id: string, at: number, keep: Set<number>): Promise<boolean>;
  /** Queue entries of finished scans whose result is not confirmed yet, oldest scan first. */
  awaitingVerification(limit: number): Promise<AwaitingEntry[]>;
  intent(id: string): Promise<Intent | undefined>;
  activeIntents(): Promise<Intent[]>;
  targets(intentId: string): Promise<IntentTarget[]>;
  /**
   * Run `fn` as one transaction (the many small writes of one pass commit once). `fn` may await
   * calls on this store and on the inventory of the same Store; nobody else's statements join it
   * meanwhile; an exception rolls it back and is rethrown.
   */
  atomically<T>(fn: () => Promise<T>): Promise<T>;
  decide(d: Decision): Promise<void>;
  recentDecisions(limit: number): Promise<Decision[]>;
  /** Decisions logged since `since` (ms), oldest first. */
  decisionsSince(since: number): Promise<Decision[]>;
  /** decisionsSince a page at a time, oldest first: a pass over a large decision log keeps one page in memory. */
  decisionPagesSince(since: number, pageSize?: number): AsyncIterable<Decision[]>;
  /** Ended intents by region, appliance and final state (durable counts for /metrics). */
  endedIntentCounts(): Promise<{ region: string; appliance: string; state: string; n: number }[]>;
  pruneDecisions(keep: number): Promise<void>;
  allQueued(): Promise<QueueEntry[]>;
  /** The last time the scanner dropped each (address, device) from a scan, and why (`onsight hosts`). */
  lastDroppedByScanner(): Promise<Map<string, { identityId?: number; at: number; reason: string }>>;
  recentIntents(limit: number): Promise<Intent[]>;

  // operator marks (onsight rescan / skip): written by the CLI while the daemon runs
  mark(identityId: number): Promise<OperatorMark | undefined>;
  /** mark(id) of many devices at once: the marks that exist */
  marksOf(identityIds: readonly number[]): Promise<OperatorMark[]>;
  /** Marks written after `since` (ms, the daemon's last look), oldest first. */
  marksChangedSince(since: number): Promise<OperatorMark[]>;
  marksLastUpdate(): Promise<number>;
  /** Forget marks that no longer change any answer (skips ended, rescans honoured or older than `rescanTtlMs`). */
  pruneMarks(now: number, rescanTtlMs: number): Promise<number>;
  requestRescan(identityIds: number[], now: number): Promise<void>;
  skip(identityIds: number[], until: number, now: number): Promise<void>;

  // onsight's scan credits, for second looks (written by the scheduler, read back after a restart)
  /** Write these credits (one per device: a newer one replaces the device's last). */
  saveScanCredits(credits: readonly ScanCredit[]): Promise<void>;
  /** The credits of scans that ended at or after `since`. */
  scanCredits(since: number): Promise<ScanCredit[]>;
  /** Forget credits of scans that ended before `before`; how many. */
  pruneScanCredits(before: number): Promise<number>;

  // what the scheduler learned (scheduler/memory.ts): written every few minutes and at stop, read back after a restart
  /** Write these parts (one row per name: a newer one replaces it). */
  saveLearned(records: readonly LearnedRecord[]): Promise<void>;
  learned(): Promise<LearnedRecord[]>;
}

// ------------------------------------------------------------------------------ history (operator views)

/** A device as an operator names it: an address (whoever held it), a MAC address or a user name. */
export interface DeviceName {
  /** `key`: an identity key as onsight prints it (`mac:…`, `duid:…`, `user:…|host`); `hostname`: the host name its lines gave, any case */
  kind: 'ip' | 'mac' | 'user' | 'key' | 'hostname';
  value: string;
}

/** Rows about any of these addresses or any of these devices (both empty: none). */
export interface About {
  ips: string[];
  identityIds: number[];
}

export interface SightingRow {
  at: number;
  kind: string;
  ip: string;
  format: string;
  source: string;
}

/** The decision log filtered (`onsight decisions --ip --mac --since`, `onsight why`): every given condition holds. */
export interface DecisionQuery {
  about?: About;
  ip?: string;
  since?: number;
}

/** A scan intent with one of its targets' address. */
export type TargetedScan = Intent & { ip: string };

/** What `onsight why`, `decisions`, `rescan` and `skip` (CLI and API) read beyond the inventory and the queue; read-only, newest first. */
export interface HistoryStore {
  /** The devices a name denotes (an address: every device that held it); with `presentAt`, only those holding an address then (matched by it). Ascending ids. */
  identitiesNamed(name: DeviceName, presentAt?: number): Promise<number[]>;
  sightingsAbout(about: About, limit: number): Promise<SightingRow[]>;
  decisionsMatching(q: DecisionQuery, limit: number): Promise<Decision[]>;
  scansTargeting(about: About, limit: number): Promise<TargetedScan[]>;
  /** The queue entries of these devices (waiting, under a scan in flight, or awaiting its host list), by address (`onsight why`'s NOW). */
  queuedFor(identityIds: readonly number[]): Promise<QueueEntry[]>;
  /** The targets of scans in flight (launching, running) that are these devices' (`why`'s NOW). */
  activeTargetsOf(identityIds: readonly number[]): Promise<(IntentTarget & { intentId: string })[]>;
  /** These rows of the scheduler's learned state (`why` reads the appliances' alone, not the table). */
  learnedRows(names: readonly string[]): Promise<LearnedRecord[]>;
  /** The scans the decision log records (`scanned` decisions naming a device) up to `until`, oldest first, a page at a time (coverage: a log of 1M decisions holds few scans). */
  scanPagesUntil(until: number, pageSize?: number): AsyncIterable<DeviceScan[]>;
  /**
   * How soon ended addresses went to another device: per channel, the bindings ended at or after
   * `since` whose address another identity took next, and how many of those it took within
   * `quickMs` of the end. A VPN hub that hands a freed address to the next user at once is where a
   * probe of a departed device reaches another (README, wrong hosts).
   */
  addressReuse(since: number, quickMs: number): Promise<AddressReuse[]>;
}

/** A `scanned` decision: the device and when. */
export interface DeviceScan {
  identityId: number;
  at: number;
}

// ------------------------------------------------------------------------------ the whole store

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly inventory: Inventory;
  readonly scheduler: SchedulerStore;
  readonly history: HistoryStore;
  /** A trivial round trip: throws when the database cannot answer (/healthz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
