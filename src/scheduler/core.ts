/**
 * What the scheduler's phases share: the injected parts (clock, inventory, policy, store, scanner,
 * options, log, hooks), the counters, and the phases themselves, so that one phase can hand work
 * to another (following a scan ends in recording its results). Each phase owns its own state.
 */
import type { ScannerClock } from './skew.js';
import type { Rejoins } from './rejoin.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { OnsightError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Policy, Verdict } from '../policy/policy.js';
import type { Waiting } from './waitlist.js';
import type { BindingView } from '../inventory/inventory.js';
import type { LastScanned, Scanner, ScannerCall, ScanStatus } from '../scanners/types.js';
import type { Decision, Intent, IntentTarget, SchedulerStore } from './queue.js';
import type { SchedulerOptions } from './options.js';
import type { ApplianceBook } from './appliances.js';
import type { HostParallelism } from './parallelism.js';
import type { ScanProfile } from './profile.js';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface LaunchInfo {
  intentId: string;
  scanRef: string;
  region: string;
  appliance: string;
  /** dueSince: when the device was queued (the sighting that made it due, or the end of its rescan window) */
  targets: { ip: string; why: string; dueSince?: number }[];
  /** why this appliance */
  applianceWhy: string;
}

export interface ScanEnd {
  state: string;
  endedAt: number;
  targets: number;
  scanned: number;
  why?: string;
}

export interface SchedulerHooks {
  onLaunch?(info: LaunchInfo): void;
  /** a scan ended (finished, error, canceled, abandoned): `scanned` targets recorded scanned by this end; never throws into the scheduler */
  onScanEnd?(intent: Intent, end: ScanEnd): void;
  /** a decision was logged (the decision log, notifications of hosts scanned) */
  onDecision?(d: Decision): void;
}

export interface SchedulerCounters {
  launches: number;
  launchFailures: number;
  targetsLaunched: number;
  dropped: number;
  finished: number;
  failed: number;
  canceledLeft: number;
  /** scans canceled (and their other targets relaunched) because a target's address went to another device first */
  canceledReassigned: number;
  /** times a region reached 4 scans canceled within an hour for changes of hand or departures, so it cancels no more for them for a while (cancel.ts, flapping) */
  cancelsHeldFlapping: number;
  /** devices held at launch: their address had scans for ADDRESS_DEVICES other devices within the hour (churn.ts) */
  heldAddressChurn: number;
  /** queued scans canceled because their appliance was full or offline long after launch (targets requeued) */
  requeuedStuck: number;
  /** scans stopped because their region's blackout began, or its scan windows closed with scanWindowEnd: stop (targets requeued) */
  canceledClosed: number;
  /** targets of finished scans the scanner found no host at (verifyResults) */
  noHost: number;
  /** targets of finished scans whose address another device held at some time during the scan (their own device having left before the end; or, with verifyResults, one the scanner dated): the scan may have probed that device, a wrong host the cancels could not prevent (log delay, a late reassignment); logged, not recorded as scanned */
  otherHolder: number;
  /** devices owed a second look at their first scan in a window, as each starts waiting for one (second-look.ts) */
  secondLooks: number;
  /** devices scanned ahead of time, in room a launch left (ahead.ts) */
  scannedAhead: number;
  /** targets not recorded scanned because the device rejoined the network during the scan (rejoin.ts) */
  rejoined: number;
  /** targets a finished scan's own target list lacked (the scanner dropped them: out of subscription, say) */
  droppedByScanner: number;
  /** scans older than maxScanAgeS that never ended: given up, targets requeued */
  givenUp: number;
  reconciled: number;
  abandoned: number;
  /** launching intents of an earlier epoch (another leader's term) whose scan was found and adopted */
  adoptedAcrossEpochs: number;
  /** intent transitions refused by their condition (the intent was no longer in a state it may leave that way) or by the lease fence */
  transitionsRefused: number;
  /** cluster mode: scans with our title prefix whose intent had ended, or that duplicated an active intent's targets (a deposed leader's late launch), canceled */
  lateLaunchesCanceled: number;
  /** queued devices credited as found by one of the platform's range runs (ranges.ts) */
  rangeCredited: number;
  apiCalls: number;
  byRegion: Record<string, { launched: number; finished: number; failed: number }>;
  byAppliance: Record<string, { launched: number }>;
}

export function newCounters(): SchedulerCounters {
  return {
    launches: 0, launchFailures: 0, targetsLaunched: 0, dropped: 0, finished: 0, failed: 0, canceledLeft: 0, canceledReassigned: 0, cancelsHeldFlapping: 0, heldAddressChurn: 0, requeuedStuck: 0, canceledClosed: 0, noHost: 0, otherHolder: 0, rejoined: 0, secondLooks: 0, scannedAhead: 0,
    droppedByScanner: 0, givenUp: 0, reconciled: 0, abandoned: 0, adoptedAcrossEpochs: 0, transitionsRefused: 0, lateLaunchesCanceled: 0, rangeCredited: 0,
    apiCalls: 0, byRegion: {}, byAppliance: {},
  };
}

// What each phase offers the others (the classes in budget.ts, decide.ts, ... implement these;
// declared here so that this module depends on none of them).
export interface BudgetPhase {
  canSpend(essential: boolean): boolean;
  /** may a correction be made now (a look-up and a cancel that keep a scan from probing a wrong host)? the window alone holds it, not the pace */
  canCorrect(calls?: number): boolean;
  /** may `n` calls be made one after the other now (a schedule sync)? */
  canSpendCalls(n: number, essential: boolean): boolean;
  /** calls one `call` made beyond its first, counted and paced */
  spentExtra(n: number): void;
  canLaunch(): boolean;
  /** keep `n` calls, in the pace and the window, for an essential job due soon (launches and other calls leave them) */
  keep(n: number): void;
  /** the allowance holds fewer than SCARCE_CALLS_PER_DAY calls a day */
  scarce(): boolean;
  /** the allowance's calls a day, when the scanner states its limit */
  callsPerDay(): number | undefined;
  call<T>(what: string, which: ScannerCall, fn: () => Promise<T>, o?: { optional?: boolean }): Promise<T>;
  /** the calls a host list of `n` addresses takes (one per batch the scanner sends) */
  hostListCalls(n: number): number;
  /** the scanner's host list, counted a call per batch; undefined (no call) when they cannot all be made now */
  hostList(what: string, ips: string[], essential?: boolean): Promise<LastScanned[] | undefined>;
}
export interface DecidePhase {
  recheck(bindingId: number, at: number): void;
  /** targets of a scan that ended without a result are back in the queue: decided again now (riders and the no-longer-due leave it) */
  requeued(bindingIds: number[]): Promise<void>;
  /** onsight recorded a scan of this device, ending at `at`, on binding `b`; `whole`: known whole (second looks) */
  credited(identityId: number, at: number, b: BindingView | undefined, whole: boolean): Promise<void>;
  /** a scanned-recently verdict turned due when the device is owed a second look */
  secondLook(b: BindingView, v: Verdict, now: number): Verdict & { secondLook?: true };
  /** devices waiting for a second look in `region`, the most recently seen first */
  secondLooksIn(region: string): Waiting[];
  /** a waiting second look went out in a scan, or is no longer owed */
  secondLookGone(bindingId: number): void;
  /** a scanned-recently verdict turned due when the device comes due within scanAheadH */
  scanAhead(b: BindingView, v: Verdict, now: number): Verdict & { ahead?: true };
  /** present devices of `region` that come due within scanAheadH, the most recently seen first */
  aheadIn(region: string, now: number): Waiting[];
  /** a device scanned ahead went out in a scan, or is no longer present */
  aheadGone(bindingId: number): void;
  silence(bindingId: number, lastSeen: number): void;
  /** a scan found the device at this binding, credited or not: its no-host results in a row end */
  hostFound(bindingId: number): void;
  applyOperatorMarks(): Promise<number>;
}
export interface FollowPhase {
  /** could the scan still be before its target `ip` (by its place in the launch order)? */
  mayNotHaveReached(i: Intent, now: number, ip?: string, slack?: number): Promise<boolean>;
  /** is mayNotHaveReached's answer for this first-wave target a guess (no poll has seen the scan since launch)? */
  unsure(i: Intent, now: number, ip: string): Promise<boolean>;
  /** poll running scans now (`force`: whatever the pace says; `correction`: a cancel's look-up, held by the window alone, as the cancel is) */
  poll(force?: boolean, correction?: boolean): Promise<boolean>;
  launched(intentId: string, ips: string[]): void;
  /** how long our scans of about `targets` targets took, at quantile q, launch to end (0 before three finished) */
  durationMs(targets: number, q: number): number;
  ended(i: Intent, endedAt: number): Promise<void>;
}
export interface ResultsPhase {
  finishOk(i: Intent, st: ScanStatus): Promise<void>;
  finishFailed(i: Intent, state: 'error' | 'canceled', why: string): Promise<void>;
  creditPartial(i: Intent, targets: IntentTarget[], ended?: 'canceled' | 'given up'): Promise<void>;
  /** A target the scanner left out of its scan (`scanRef`) or refused to launch (undefined): back with back-off, given up after maxAttempts; true when recorded. */
  droppedByScanner(intentId: string, t: IntentTarget, scanRef: string | undefined, now: number, retried: number[]): Promise<boolean>;
  /** DHCP bindings as they stood at launch (and their first request after it): a client that rejoins during its scan is not credited */
  readonly rejoins: Rejoins;
}
/** What is done with a scan's targets after a cancel put them back in the queue (CancelPhase.settleRequeued). */
export interface SettleOptions {
  /** the scan was given up (maxScanAgeS), not canceled for a reason of ours: its targets were not scanned as far as we know */
  givenUp?: boolean;
  /** false: no host-list call for the targets it had already scanned (a range run about to scan them all credits them) */
  credit?: boolean;
}

export interface CancelPhase {
  newHolderCheck(now: number): (b: BindingView) => Promise<void>;
  /** `failed`: set to the scanner's error when the cancel call failed (undefined returned) */
  cancelAndRequeue(i: Intent, why: string, state?: 'canceled' | 'abandoned', mayBeProbing?: boolean, failed?: { error?: unknown }): Promise<IntentTarget[] | undefined>;
  requeue(i: Intent, why: string, state: 'canceled' | 'abandoned'): Promise<IntentTarget[]>;
  /** after cancelAndRequeue: the targets' decisions written, those already scanned credited, the others decided again */
  settleRequeued(i: Intent, targets: IntentTarget[], reason: string, o?: SettleOptions): Promise<void>;
  requeueIfStuck(i: Intent): Promise<void>;
  cancelIfAllLeft(i: Intent): Promise<void>;
  /** a region whose canceled scan may still be probing: no new launch there until it has drained */
  isDraining(region: string, now: number): boolean;
  /** a scan of the region canceled on `appliance` (a range run): the region drains as after our own */
  drainAfterCancel(region: string, appliance: string | undefined): void;
}
export interface RangesPhase {
  /** is this region held for a range run of the platform's now (no launch of ours)? */
  holds(region: string, now: number): boolean;
  /** per appliance, the slots kept for the platform's range runs about to start there (no launch of ours takes them) */
  reserved(now: number): ReadonlyMap<string, number>;
  /** an operator skipped a device: the aims of runs still to come are made again at the next pass */
  marksChanged(now: number): void;
  /** the scan references of our range runs known (their scans are ours, though no intent names them) */
  runRefs(): ReadonlySet<string>;
}
export interface LaunchPhase {
  refreshAppliances(): Promise<boolean>;
}
export interface LatePhase {
  /** cluster mode (the store is fenced by an epoch): the scan list is searched for late launches */
  readonly enabled: boolean;
  /** from when a list by launch time must reach to cover everything since the last list looked at */
  since(): number;
  /** look through a list of scans by launch time (any phase's): cancel late launches */
  inspect(scans: ScanStatus[]): Promise<void>;
}

/** The shared context: `policy` and `opts` change on reconfigure, so phases read them from here each time. */
export interface SchedulerCore {
  readonly clock: Clock;
  readonly inventory: Inventory;
  policy: Policy;
  readonly store: SchedulerStore;
  readonly scanner: Scanner;
  opts: SchedulerOptions;
  readonly log: Logger;
  readonly hooks: SchedulerHooks;
  readonly counters: SchedulerCounters;
  readonly appliances: ApplianceBook;
  /** hosts an appliance scans at once in one scan, as learned from scan durations */
  readonly parallelism: HostParallelism;
  /** the scan settings our launches run with, as the scanner states them (the start of the parallelism belief) */
  readonly profile: ScanProfile;
  /** how far our clock runs ahead of the scanner's: lists by launch time reach back that much further */
  readonly scannerClock: ScannerClock;
  readonly budget: BudgetPhase;
  readonly decide: DecidePhase;
  readonly follow: FollowPhase;
  readonly results: ResultsPhase;
  readonly cancel: CancelPhase;
  readonly launch: LaunchPhase;
  readonly late: LatePhase;
  readonly ranges: RangesPhase;
}

/**
 * Hosts an appliance scans at once in one of our scans, as the scheduler assumes now: the learned
 * value (parallelism.ts), or where learning starts when it is off.
 */
export function hostsInParallel(core: SchedulerCore): number {
  const start = startingHostsInParallel(core);
  return core.opts.learnHostsInParallel ? core.parallelism.value(start) : start;
}

/**
 * Where the hosts-in-parallel belief starts: the option profiles' figure where the scanner states
 * one (profile.ts), which replaces the default and lowers a configured value but never raises it
 * (set low on purpose, it stays: a wave taken too large costs wrong hosts); else the configured value.
 */
export function startingHostsInParallel(core: SchedulerCore): number {
  return startFrom(core.profile.hostsInParallel(), core.opts);
}

/** The rule of startingHostsInParallel, for a profile figure (`onsight doctor` says what it gives). */
export function startFrom(fromProfile: number | undefined, opts: Pick<SchedulerOptions, 'hostsInParallel' | 'hostsInParallelSet'>): number {
  if (fromProfile === undefined) return opts.hostsInParallel;
  return opts.hostsInParallelSet ? Math.min(fromProfile, opts.hostsInParallel) : fromProfile;
}

/** A list by launch time reaching back to `since` by our clock: the same instant on the scanner's (skew.ts). */
export function launchedAfter(core: SchedulerCore, since: number): Date {
  return new Date(since - core.scannerClock.aheadMs());
}

export function newIntentId(now: number): string {
  return `onsight-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

const INTENT_ID = /(?:^|[^A-Za-z0-9_-])(onsight-[0-9a-z]+-[0-9a-f]{8})(?:$|[^A-Za-z0-9_-])/;

/** The intent id a scan title carries (as newIntentId makes them), if any. */
export function intentIdIn(title: string): string | undefined {
  return INTENT_ID.exec(title)?.[1];
}

/** Is this scan title one of this deployment's? Its first word is our prefix (cluster.name in cluster mode). */
export function hasOurPrefix(title: string, prefix: string): boolean {
  return title.startsWith(`${prefix} `);
}

/**
 * A transition the store refused (false): the intent had moved on (another actor ended it, or a
 * new leader took it over) or this node no longer holds the lease. Counted and logged, never thrown.
 */
export function transitionRefused(core: SchedulerCore, intentId: string, what: string): void {
  core.counters.transitionsRefused++;
  core.log.warn({ intent: intentId, transition: what, epoch: core.store.epoch },
    `scan intent ${intentId}: ${what} refused (the intent is no longer in a state it may leave that way, or this node no longer holds the lease); nothing written`);
}

/** Did the scan launched at `launchedAt` find a host at the address? Its date may be stamped at launch: a minute of slack for clocks. */
export function foundInScan(lastScannedAt: number | undefined, launchedAt: number): boolean {
  return lastScannedAt !== undefined && lastScannedAt >= launchedAt - 60_000;
}

export function errInfo(err: unknown): { code?: string; message: string } {
  return { code: (err as OnsightError).code, message: (err as Error).message };
}
