/**
 * The scheduler: pure logic over an injected clock, inventory, policy, durable store and scanner,
 * so the daemon, the tests and the simulator run the same code. It owns no timers: the caller
 * runs `tick()` (periodically, and right after new due hosts arrive). This file only wires the
 * phases (README.md has the tick's order and which phase owns which state):
 *
 *   decide.ts     consider() / sweep(): which bindings are due (the queue)
 *   reconcile.ts  launches whose outcome is unknown, found by the intent id in the scan's title
 *   cancel.ts     scans to cancel (address changed hands, stuck behind others, all targets left)
 *   follow.ts     polling running scans, when it is worth a call; overdue scans given up
 *   results.ts    finished and failed scans recorded; results confirmed by the host list
 *   launch.ts     batched launches on the least-loaded online appliance
 *   late.ts       cluster mode: a deposed leader's late launch found in the scan list and canceled
 *   budget.ts     every scanner call: the API allowance, and what a failure means (retry, wait, stop)
 */
import { ScannerClock } from './skew.js';
import type { Logger } from '../log.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Policy } from '../policy/policy.js';
import type { Scanner } from '../scanners/types.js';
import type { Intent, SchedulerStore } from './queue.js';
import type { SchedulerOptions } from './options.js';
import { ApplianceBook, type LearnedAppliance } from './appliances.js';
import { HostParallelism, type LearnedParallelism } from './parallelism.js';
import { ScanProfile, type ScanProfileStatus } from './profile.js';
import type { LearnedLag } from './lag.js';
import { Budget, type ScannerBlock } from './budget.js';
import { Decider } from './decide.js';
import { Reconciler } from './reconcile.js';
import { Follower } from './follow.js';
import { Results } from './results.js';
import { Canceler } from './cancel.js';
import { Launcher } from './launch.js';
import { LateLaunches } from './late.js';
import { RangeScans, type RangeScanStatus } from './ranges.js';
import { observeDecisions } from './observe.js';
import { LearnedMemory, type LearnedStateStatus } from './memory.js';
import { newCounters, startingHostsInParallel, type Clock, type SchedulerCore, type SchedulerCounters, type SchedulerHooks } from './core.js';

export { systemClock, newIntentId, type Clock, type LaunchInfo, type ScanEnd, type SchedulerHooks, type SchedulerCounters } from './core.js';
export { buildSchedulerOptions, type SchedulerOptions, type SchedulerRegion } from './options.js';
export type { ScannerBlock } from './budget.js';
export type { LearnedAppliance } from './appliances.js';
export type { LearnedLag } from './lag.js';
export type { LearnedParallelism } from './parallelism.js';
export type { ScanProfileStatus } from './profile.js';

/** Hosts scanned at once as the scheduler assumes it: learned (parallelism.ts) from `start`, the option profile's figure (profile.ts) or the configured one. */
export type HostsInParallelStatus = LearnedParallelism & { start: number; profile: ScanProfileStatus };
export type { RangeScanStatus } from './ranges.js';
export type { LearnedStateStatus } from './memory.js';

export class Scheduler {
  readonly store: SchedulerStore;
  readonly counters: SchedulerCounters;
  private readonly core: SchedulerCore;
  private readonly phases: { budget: Budget; decide: Decider; reconcile: Reconciler; follow: Follower; results: Results; cancel: Canceler; launch: Launcher; late: LateLaunches; ranges: RangeScans };
  private ticking: Promise<void> | undefined;
  /** what was learned (appliance slots, durations, ...), kept in the store across restarts */
  private readonly memory: LearnedMemory;

  constructor(
    clock: Clock,
    inventory: Inventory,
    policy: Policy,
    store: SchedulerStore,
    scanner: Scanner,
    opts: SchedulerOptions,
    log: Logger,
    hooks: SchedulerHooks = {},
  ) {
    this.store = store;
    this.counters = newCounters();
    if (hooks.onDecision) store = observeDecisions(store, hooks.onDecision);
    const core = { clock, inventory, policy, store, scanner, opts, log, hooks, counters: this.counters, appliances: new ApplianceBook(log, () => this.phases.ranges.inEffect()), parallelism: new HostParallelism(), scannerClock: new ScannerClock(() => this.core.opts.node) } as Partial<SchedulerCore>;
    const c = core as SchedulerCore;
    this.phases = {
      budget: new Budget(c), decide: new Decider(c), reconcile: new Reconciler(c), follow: new Follower(c),
      results: new Results(c), cancel: new Canceler(c), launch: new Launcher(c), late: new LateLaunches(c), ranges: new RangeScans(c),
    };
    Object.assign(core, this.phases, { profile: new ScanProfile(c) });
    this.core = c;
    const { follow, results, decide, budget, ranges, launch } = this.phases;
    this.memory = new LearnedMemory(store, clock, log, {
      'appliances': c.appliances, 'hosts-in-parallel': c.parallelism, 'scan-durations': follow.durations,
      'processing-lag': results.lag, 'rejoins': results.rejoins, 'no-host': decide.silentMemory, 'launch-order': follow.orderMemory,
      'pace': budget.paceMemory, 'polls': follow.pollMemory, 'range-schedules': ranges.memory, 'scanner-clock': c.scannerClock,
      'address-churn': launch.churn,
    }, scanner.kind, scanner.pretend === true);
  }

  /** A reloaded config (SIGHUP): new policy, regions and limits apply from the next decision on. */
  reconfigure(policy: Policy, opts: SchedulerOptions): void {
    this.core.policy = policy;
    this.core.opts = opts;
    this.phases.decide.reset();
    this.core.appliances.invalidate(); // a region may have new appliances
    this.phases.budget.reset(); // an operator may have fixed what stopped calls
    this.core.profile.invalidate(); // a region's option profile may have changed (the scanner's own needs a restart), or a profile's settings
    this.phases.cancel.policyReloaded(); // running scans with a target the new policy refuses are canceled at the next pass
  }

  /** Evaluate bindings that just changed; enqueue the due ones; log every changed decision. */
  async consider(bindingIds: Iterable<number>): Promise<number> {
    await this.memory.restore();
    return this.phases.decide.consider(bindingIds);
  }

  /**
   * Bindings that just ended (tunnel-down, release): a running scan that may not have reached one
   * of them is marked for cancel-and-relaunch. Returns how many were marked (then tick()).
   */
  async departed(bindingIds: Iterable<number>): Promise<number> {
    await this.memory.restore();
    return this.phases.cancel.departedCheck(bindingIds);
  }

  /** Periodic pass: end run-out leases and re-evaluate bindings whose answer may have changed. */
  async sweep(): Promise<number> {
    await this.memory.restore();
    return this.phases.decide.sweep();
  }

  /** One scheduling pass. Concurrent calls share the pass in flight. */
  tick(): Promise<void> {
    this.ticking ??= this.pass().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async pass(): Promise<void> {
    await this.memory.restore(); // what was learned before a restart, before anything uses it
    try {
      await this.phases.decide.applyOperatorMarks(); // onsight rescan / skip, written by the CLI while we run
      await this.phases.reconcile.reconcile();
      await this.phases.cancel.cancelReassigned();
      await this.phases.follow.poll();
      await this.phases.late.watch();
      await this.phases.results.verify();
      await this.phases.ranges.tick();
      await this.core.profile.tick(this.core.clock.now()); // after the cancels (a slow read holds none of them), before launches: it sets their waves
      await this.phases.launch.launchReady();
    } finally {
      await this.memory.save(); // passes that fail (a store error in one phase) still keep what was learned
    }
  }

  /** Write what was learned now (at stop: the next start reads it back). */
  saveLearned(): Promise<void> {
    return this.memory.save(true);
  }

  /** What was read back of the learned state at start, and when it was last written. */
  learnedState(): LearnedStateStatus {
    return this.memory.describe();
  }

  /**
   * Settle launches whose outcome is unknown (at start-up, and when their grace runs out). One at a
   * time with the passes, which reconcile too: a new cluster term reconciles while the daemon's
   * kicks run passes, and two at once listed twice and raced on the same intents.
   */
  reconcile(): Promise<void> {
    this.ticking ??= this.memory.restore().then(() => this.phases.reconcile.reconcile()).finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** Poll running scans now (`force`: whatever the pace says). */
  async poll(force = false): Promise<void> {
    await this.memory.restore();
    await this.phases.follow.poll(force);
  }

  /** Confirm finished scans' results with the scanner's host list, when due. */
  async verify(): Promise<void> {
    await this.memory.restore();
    return this.phases.results.verify();
  }

  /** Load now: the scanner's count at refresh plus our launches since, less our scans ended since; never below our own. */
  async applianceLoad(name: string, active?: Intent[]): Promise<{ online: boolean; load: number; ours: number }> {
    return this.core.appliances.load(name, active ?? await this.store.activeIntents());
  }

  /** What was learned of an appliance (slots, pickup) next to what is configured, and how. */
  applianceLearned(name: string): LearnedAppliance {
    const configured = this.core.opts.regions.flatMap((r) => r.appliances).find((a) => a.name === name)?.maxScans ?? 1;
    return this.core.appliances.describe(name, configured, this.core.opts.pickupS, this.core.clock.now());
  }

  /** Hosts scanned at once in one of our scans, as learned from scan durations (parallelism.ts), next to hostsInParallel. */
  hostsInParallel(): HostsInParallelStatus {
    const start = startingHostsInParallel(this.core);
    const profile = this.core.profile.describe();
    // (the start differs from the config's figure only where the profiles decided it)
    const name = start === this.core.opts.hostsInParallel ? undefined : `the option profiles' ${start}`;
    const d = this.core.parallelism.describe(start, name);
    const learned = this.core.opts.learnHostsInParallel ? d : { ...d, value: start, how: `learnHostsInParallel is off: ${name ?? 'the configured value'} (${d.how})` };
    // (configured: the config's figure; learning starts from the profile's where it states one)
    return { ...learned, configured: this.core.opts.hostsInParallel, start, profile };
  }

  /** The scanner's processing lag as learned from the host list (results.ts), next to processingWaitS. */
  processingLag(): LearnedLag {
    return this.phases.results.lag.describe(this.core.opts.processingWaitS);
  }

  /** The platform's range schedules kept for scheduler.rangeScans, and what their runs credited. */
  rangeScans(): RangeScanStatus {
    return this.phases.ranges.describe();
  }

  /** Why scanner calls are held back now (a wait the scanner asked for, a stop), if they are. */
  scannerBlock(): ScannerBlock {
    return this.phases.budget.block();
  }
}
