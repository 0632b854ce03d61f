/**
 * The scheduler: pure logic over an injected clock, inventory, policy, durable store and scanner,
 * so the daemon, the tests and the simulator run the same code. It owns no timers: the caller
 * runs `tick()` (periodically, and right after new due hosts arrive).
 *
 * One tick: reconcile unconfirmed launches, refresh appliance load when stale, follow running
 * scans, then launch what the regions have room for — one batched launch per free slot, on the
 * least-loaded online appliance, after re-checking every target.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { OnsightError } from '../errors.js';
import type { BindingView, Inventory } from '../inventory/inventory.js';
import type { Policy, Verdict } from '../policy/policy.js';
import type { ApplianceStatus, Scanner, ScanStatus } from '../scanners/types.js';
import { SchedulerStore, type Intent, type IntentTarget, type QueueEntry } from './queue.js';
import { RecheckPlan } from './recheck.js';
import { ScanDurations } from './durations.js';
import { ApplianceBook } from './appliances.js';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface SchedulerRegion {
  name: string;
  appliances: { name: string; maxScans: number }[];
  maxConcurrentScans: number;
}

export interface SchedulerOptions {
  regions: SchedulerRegion[];
  maxTargetsPerScan: number;
  optionProfile?: string;
  pollIntervalS: number;
  applianceRefreshS: number;
  retryBackoffS: number;
  maxAttempts: number;
  cancelWhenAllLeft: boolean;
  lastScannedFromScanner: boolean;
  /** scans the subscription may run at once, across regions (Infinity: no limit of our own) */
  maxRunningScans?: number;
  /** API calls kept back for launches: polls and refreshes wait when fewer remain */
  reserveCalls?: number;
  /**
   * poll running scans only when one may have ended, by the durations of the scans that finished
   * before (default true); otherwise every pollIntervalS
   */
  adaptivePolling?: boolean;
  /**
   * with adaptive polling, how often to poll when no queued work waits for a running scan to end
   * (the answer then only records results, which keep their real end time); default 60 × pollIntervalS
   */
  idlePollS?: number;
  /**
   * confirm each finished scan's targets with the scanner's host list (one call for the targets of
   * every scan that ended within verifyDelayS) before recording them scanned: a device that left
   * without a DHCP release still looks present, and its scan found nobody (default false)
   */
  verifyResults?: boolean;
  /** seconds a finished scan's result may wait to be confirmed together with others' (default 3600) */
  verifyDelayS?: number;
  /**
   * how long after launch an appliance may take to pick a scan up (its polling interval, 190 s
   * by default, plus setup): a target address that changes hands within this time cancels and
   * relaunches the scan (default 360)
   */
  pickupS?: number;
  /**
   * a canceled scan's appliance learns of the cancel only at its next contact with the platform
   * (Qualys: every 190 s by default) and probes on until then: its region counts the scan as
   * running for this long after the cancel call (default 200)
   */
  cancelDrainS?: number;
  /**
   * a finished scan's results appear in the host list only once the scanner has processed them;
   * its targets are judged "no host found" only when another target of the same scan is dated
   * (so the scan was processed) or after this long (default 21600)
   */
  processingWaitS?: number;
  /**
   * an unconfirmed launch with no scan in the scanner's list is given up (and its targets
   * requeued) only after this long (ms): longer than a launch request can take (default 180 s)
   */
  reconcileGraceMs?: number;
  /**
   * the sweep re-evaluates only bindings whose answer may have changed (a rescan window ran out,
   * a scan window opened, a scan ended); every this many seconds it re-reads every present binding
   * as a safety net (default 3600)
   */
  fullSweepS?: number;
}

export interface LaunchInfo {
  intentId: string;
  scanRef: string;
  region: string;
  appliance: string;
  targets: { ip: string; why: string }[];
  /** why this appliance */
  applianceWhy: string;
}

export interface SchedulerHooks {
  onLaunch?(info: LaunchInfo): void;
  onScanEnd?(intent: Intent, state: string, scanned: number): void;
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
  /** queued scans canceled because their appliance was full or offline long after launch (targets requeued) */
  requeuedStuck: number;
  /** targets of finished scans the scanner found no host at (verifyResults) */
  noHost: number;
  reconciled: number;
  abandoned: number;
  apiCalls: number;
  byRegion: Record<string, { launched: number; finished: number; failed: number }>;
  byAppliance: Record<string, { launched: number }>;
}

/** Errors after which we know the scanner did not create a scan (so a retry cannot duplicate one). */
const NOT_LAUNCHED_CODES = new Set([
  'ONSIGHT_QUALYS_API', 'ONSIGHT_QUALYS_AUTH', 'ONSIGHT_QUALYS_NOT_IN_SUBSCRIPTION', 'ONSIGHT_QUALYS_RATE_LIMIT',
  'ONSIGHT_SCOPE_VIOLATION', 'ONSIGHT_CREDENTIALS', 'ONSIGHT_CLOSED',
]);

const RECENT_KEY = 'not-due:scanned-recently';

export function newIntentId(now: number): string {
  return `onsight-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

export class Scheduler {
  readonly store: SchedulerStore;
  readonly counters: SchedulerCounters = {
    launches: 0, launchFailures: 0, targetsLaunched: 0, dropped: 0, finished: 0, failed: 0, canceledLeft: 0, canceledReassigned: 0, requeuedStuck: 0, noHost: 0,
    reconciled: 0, abandoned: 0, apiCalls: 0, byRegion: {}, byAppliance: {},
  };
  private readonly appliances: ApplianceBook;
  private readonly lastReason = new Map<number, string>();
  private readonly scannerChecked = new Map<string, number>();
  private nextPollAt = 0;
  private lastPollAt = 0;
  /** how long our scans take, by size */
  private readonly durations = new ScanDurations();
  /** the state each running scan was last seen in (a scan still queued has reached none of its targets) */
  private readonly lastState = new Map<string, ScanStatus['state']>();
  /** target count per running intent (for the durations of scans of its size) */
  private readonly sizes = new Map<string, number>();
  private startupReconciled = false;
  private missing = new Map<string, number>();
  /** bindings last found scanned-recently: until when that answer holds (sweep skips them) */
  private readonly recent = new Map<number, { lastScannedAt: number; until: number }>();
  /** when each binding's verdict may next change */
  private readonly plan = new RecheckPlan();
  private nextFullSweepAt = 0;
  /** when the results of finished scans are next confirmed (0: look at start-up) */
  private verifyDueAt = 0;
  /** region → until when a canceled scan's appliance may still probe it */
  private readonly draining = new Map<string, number>();
  /** bindings whose last scan found no host: not due again until the device is seen again (binding id → lastSeen) */
  private readonly silent = new Map<number, number>();
  /** running scans to cancel and relaunch: a target's address now belongs to another device */
  private readonly reassigned = new Map<string, string>();

  constructor(
    private readonly clock: Clock,
    private readonly inventory: Inventory,
    private policy: Policy,
    store: SchedulerStore,
    private readonly scanner: Scanner,
    private opts: SchedulerOptions,
    private readonly log: Logger,
    private readonly hooks: SchedulerHooks = {},
  ) {
    this.store = store;
    this.appliances = new ApplianceBook(log);
  }

  /** A reloaded config (SIGHUP): new policy, regions and limits apply from the next decision on. */
  reconfigure(policy: Policy, opts: SchedulerOptions): void {
    this.policy = policy;
    this.opts = opts;
    this.lastReason.clear();
    this.recent.clear(); // windows may differ under the new policy
    this.plan.clear();
    this.nextFullSweepAt = 0;
    this.appliances.invalidate(); // a region may have new appliances
  }

  // ---------------------------------------------------------------- deciding

  /** Evaluate bindings that just changed; enqueue the due ones; log every changed decision. */
  consider(bindingIds: Iterable<number>): number {
    const now = this.clock.now();
    let enqueued = 0;
    let targets: Map<string, { intent: Intent; identityId: number }> | undefined;
    for (const id of bindingIds) {
      const b = this.inventory.binding(id);
      if (!b) continue;
      if (b.endAt === undefined && b.startAt >= now - 3600_000) {
        targets ??= this.runningTargets();
        const t = targets.get(b.ip);
        if (t && t.identityId !== b.identityId && !this.reassigned.has(t.intent.id) && this.mayNotHaveReached(t.intent, now)) {
          this.reassigned.set(t.intent.id, `target ${b.ip} now held by ${b.identityKey}`);
        }
      }
      const v = this.policy.evaluate(b, now);
      if (v.reason === 'scanned-recently' && b.lastScannedAt !== undefined) {
        if (this.recent.size > 200_000) this.recent.clear();
        const until = b.lastScannedAt + this.policy.dueAfterS(b.ip, v.region) * 1000;
        this.recent.set(b.id, { lastScannedAt: b.lastScannedAt, until });
        this.plan.at(b.id, until);
      } else {
        this.recent.delete(b.id);
        if (v.reason === 'outside-scan-window' && v.region) this.plan.afterWindow(b.id, v.region);
        else this.plan.forget(b.id); // due (the queue has it) or an answer only a new sighting can change
      }
      if (v.due && v.region && this.silent.get(b.id) === b.lastSeen) {
        this.decide(b, 'not-due', `no-answer: the last scan of ${b.ip} found no host; waiting for the device to be seen again`, now);
      } else if (v.due && v.region) {
        if (this.store.enqueue({ bindingId: b.id, ip: b.ip, identityId: b.identityId, region: v.region, dueSince: now, lastSeen: b.lastSeen })) {
          enqueued++;
          this.decide(b, 'due', `${v.detail}; region ${v.region} (${v.regionCidr})`, now);
        } else this.store.touch(b.id, b.lastSeen);
      } else {
        this.decide(b, 'not-due', `${v.reason}: ${v.detail}`, now);
      }
    }
    return enqueued;
  }

  /**
   * Periodic pass: end run-out leases, and re-evaluate the bindings whose answer may have changed
   * since (rescan windows run out, scan windows open, scans ended). Every `fullSweepS` (and first)
   * it re-evaluates everyone present instead.
   */
  sweep(): number {
    const now = this.clock.now();
    this.inventory.expireStale(now);
    this.store.pruneDecisions(100_000);
    if (now < this.nextFullSweepAt && this.plan.size < 1_000_000) {
      const ids = this.plan.takeDue(now);
      for (const region of this.plan.regionsWaiting()) {
        if (this.policy.windowOpen(region, now)) for (const id of this.plan.takeWaiting(region)) ids.push(id);
      }
      return this.consider(ids);
    }
    this.nextFullSweepAt = now + (this.opts.fullSweepS ?? 3600) * 1000;
    this.plan.clear();
    const queued = this.store.queuedIds();
    const ids: number[] = [];
    for (const p of this.inventory.presentIds(now)) {
      if (queued.has(p.id)) continue;
      // Skip what consider() would find unchanged: still scanned recently (scope, exclusion and
      // region depend only on the address, which a binding never changes), with that same answer
      // already logged, so re-evaluating would neither enqueue nor log anything.
      const r = this.recent.get(p.id);
      if (r && r.lastScannedAt === p.lastScannedAt && now < r.until && this.lastReason.get(p.id) === RECENT_KEY) {
        this.plan.at(p.id, r.until);
        continue;
      }
      ids.push(p.id);
    }
    return this.consider(ids);
  }

  /**
   * Could the scan still be before one of its targets? While the scanner last said it was queued
   * (behind other scans on the appliance), or the appliance may not have picked it up (`pickupS`
   * after launch), surely; targets beyond the first wave of hosts scanned in
   * parallel start later, so up to 30% of a typical scan's duration, too. Later, the target has
   * most likely been scanned already, and canceling would throw that work away.
   */
  private mayNotHaveReached(i: Intent, now: number): boolean {
    const seen = this.lastState.get(i.id);
    if (seen === 'submitted' || seen === 'queued') return true;
    const typical = this.durations.count >= 3 ? this.durations.typical(this.size(i)) : 0;
    return now - (i.launchedAt ?? i.createdAt) < Math.max((this.opts.pickupS ?? 360) * 1000, 0.3 * typical);
  }

  private size(i: Intent): number {
    let n = this.sizes.get(i.id);
    if (n === undefined) {
      if (this.sizes.size > 10_000) this.sizes.clear();
      this.sizes.set(i.id, (n = this.store.targets(i.id).length));
    }
    return n;
  }

  /** address → (scan, device) for every target of our running scans */
  private runningTargets(): Map<string, { intent: Intent; identityId: number }> {
    const out = new Map<string, { intent: Intent; identityId: number }>();
    for (const i of this.store.activeIntents()) {
      if (i.state !== 'running' || !i.scanRef) continue;
      for (const t of this.store.targets(i.id)) out.set(t.ip, { intent: i, identityId: t.identityId });
    }
    return out;
  }

  private decide(b: Pick<BindingView, 'id' | 'ip' | 'identityId'>, decision: string, reason: string, now: number): void {
    const key = `${decision}:${reason.split(':')[0]}`;
    if (this.lastReason.get(b.id) === key && decision === 'not-due') return; // same answer as last time: not news
    if (this.lastReason.size > 200_000) this.lastReason.clear();
    this.lastReason.set(b.id, key);
    this.store.decide({ at: now, ip: b.ip, identityId: b.identityId, decision, reason });
  }

  // ---------------------------------------------------------------- ticking

  private ticking: Promise<void> | undefined;

  /** One scheduling pass. Concurrent calls share the pass in flight. */
  tick(): Promise<void> {
    this.ticking ??= this.pass().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async pass(): Promise<void> {
    await this.reconcile();
    await this.cancelReassigned();
    await this.poll();
    await this.verify();
    await this.launchReady();
  }

  /**
   * A running scan one of whose target addresses went to another device would scan that device
   * if it has not reached the address yet (we cannot tell whether it has). Cancel it and put its
   * other targets back at the front of the queue, so they go out again at once without the lost
   * address: two calls, against a scan of the wrong machine.
   */
  private async cancelReassigned(): Promise<void> {
    // no status call first: within the cancel window a scan cannot have ended (setup, pickup and a
    // host's scan take longer), and a cancel that fails leaves the scan to the regular poll
    for (const [id, why] of this.reassigned) {
      const i = this.store.intent(id);
      if (!i || i.state !== 'running' || !i.scanRef) {
        this.reassigned.delete(id);
        continue;
      }
      if (!this.canSpend(true)) return;
      this.reassigned.delete(id);
      const targets = await this.cancelAndRequeue(i, why);
      if (!targets) continue; // it may have ended after all: the regular poll records how
      const now = this.clock.now();
      this.counters.canceledReassigned++;
      for (const t of targets) this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'canceled', reason: `scan canceled before it could reach the wrong device: ${why}; relaunching the others` });
      this.log.info({ intent: id, scanRef: i.scanRef }, `canceled a running scan: ${why}`);
      await this.creditPartial(i, targets);
    }
  }

  /**
   * Cancel a running scan and put its targets back in the queue, ready at once and not counted as
   * a failed attempt. Undefined when the cancel call failed (nothing changed); else the targets.
   */
  private async cancelAndRequeue(i: Intent, why: string): Promise<IntentTarget[] | undefined> {
    try {
      await this.call('cancel scan', () => this.scanner.cancel(i.scanRef!));
    } catch {
      return undefined;
    }
    const now = this.clock.now();
    const targets = this.store.targets(i.id);
    this.store.endIntent(i.id, 'canceled', now, why, { notBefore: now, countAttempt: false });
    this.noteEnded(i.appliance);
    this.drain(i.region, now);
    return targets;
  }

  private drain(region: string, now: number): void {
    this.draining.set(region, Math.max(this.draining.get(region) ?? 0, now + (this.opts.cancelDrainS ?? 200) * 1000));
  }

  /**
   * A region whose canceled scan's appliance may still probe takes no new scan (on that appliance
   * it would be a second scan; on another, a second appliance in the region).
   */
  private isDraining(region: string, now: number): boolean {
    const until = this.draining.get(region);
    if (until !== undefined && until <= now) this.draining.delete(region);
    return until !== undefined && until > now;
  }

  /** Targets a canceled scan had already scanned (by the scanner's host list) are recorded, not relaunched. */
  private async creditPartial(i: Intent, targets: IntentTarget[]): Promise<void> {
    if (!this.opts.verifyResults || !this.canSpend(false)) return;
    const launchedAt = i.launchedAt ?? i.createdAt;
    const dates = await this.scanDates('host list (canceled scan)', targets.map((t) => t.ip));
    if (!dates) return;
    const now = this.clock.now();
    for (const t of targets) {
      if (!foundInScan(dates.get(t.ip), launchedAt) || this.inventory.heldByAnotherAt(t.ip, launchedAt, t.identityId, now)) continue;
      const b = this.inventory.binding(t.bindingId);
      if (!b || b.identityId !== t.identityId || b.endAt !== undefined) continue;
      this.inventory.markScanned([t.identityId], now, 'onsight');
      this.store.dequeue(t.bindingId);
      this.plan.at(t.bindingId, now);
      this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'scanned', reason: `scanned before scan ${i.scanRef} was canceled (the scanner's host list)` });
    }
  }

  /** The scanner's last-scan date per address (one host-list call); undefined when the call failed. */
  private async scanDates(what: string, ips: string[]): Promise<Map<string, number> | undefined> {
    try {
      const list = await this.call(what, () => this.scanner.lastScanned([...new Set(ips)]));
      return new Map(list.filter((d) => d.lastScannedAt).map((d) => [d.ip, Date.parse(d.lastScannedAt!)]));
    } catch {
      return undefined;
    }
  }

  private canSpend(essential: boolean): boolean {
    const a = this.scanner.allowance();
    if (a.waitSec > 0) return false;
    if (!essential && a.remaining !== undefined && a.remaining <= (this.opts.reserveCalls ?? 5)) return false;
    return true;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.counters.apiCalls++;
    try {
      return await fn();
    } catch (err) {
      this.log.warn({ err: errInfo(err), call: what }, `scanner call ${what} failed`);
      throw err;
    }
  }

  // ---------------------------------------------------------------- reconciling

  /**
   * Intents recorded but never confirmed (the daemon died mid-launch, or the call's outcome was
   * unknown): look for a scan whose title carries the intent id. Found: adopt it. Not found once
   * the grace period is over (a launch request still in flight on the scanner's side could yet
   * create it): the launch never happened, so the targets go back to the queue. Nothing launches
   * twice. The list is read once at start-up and then only when an intent's grace has run out.
   */
  async reconcile(): Promise<void> {
    const now = this.clock.now();
    const grace = this.opts.reconcileGraceMs ?? 180_000;
    const pending = this.store.activeIntents().filter((i) => i.state === 'launching');
    const ripe = pending.filter((i) => now - i.createdAt >= grace);
    if (pending.length === 0 || (this.startupReconciled && ripe.length === 0)) {
      this.startupReconciled = true;
      return;
    }
    if (!this.canSpend(true)) return;
    const since = Math.min(...pending.map((i) => i.createdAt)) - 10 * 60_000;
    let scans: ScanStatus[];
    try {
      scans = await this.call('list scans (reconcile)', () => this.scanner.listScans({ launchedAfter: new Date(since) }));
    } catch {
      return;
    }
    this.startupReconciled = true;
    for (const i of pending) {
      const found = scans.find((s) => s.title.includes(i.id));
      if (found) {
        this.store.setRunning(i.id, found.scanRef, found.launchedAt ? Date.parse(found.launchedAt) : now);
        this.counters.reconciled++;
        this.log.info({ intent: i.id, scanRef: found.scanRef }, 'reconciled an unconfirmed launch: the scan exists, adopted it');
      } else if (now - i.createdAt >= grace) {
        this.store.endIntent(i.id, 'abandoned', now, 'launch not confirmed and no scan carries this intent id', { notBefore: now, countAttempt: false });
        this.counters.abandoned++;
        this.log.info({ intent: i.id }, 'reconciled an unconfirmed launch: no such scan, targets requeued');
      }
    }
  }

  // ---------------------------------------------------------------- following scans

  private pollIntervalMs(): number {
    const a = this.scanner.allowance();
    let f = 1;
    if (a.remaining !== undefined && a.limit) {
      const share = a.remaining / a.limit;
      if (share < 0.2) f = 4;
      else if (share < 0.5) f = 2;
    }
    return this.opts.pollIntervalS * 1000 * f;
  }

  /**
   * Running scans that queued work waits for: a region with ready targets has no room because of
   * them (its own scans, or scans on the appliances it could use, or the subscription-wide cap).
   */
  private blockingScans(running: Intent[], now: number): Intent[] {
    const ready = this.store.readyRegions(now, this.opts.regions.map((r) => r.name));
    if (ready.length === 0) return [];
    if (running.length >= (this.opts.maxRunningScans ?? Infinity)) return running;
    const out = new Set<Intent>();
    for (const name of ready) {
      const r = this.opts.regions.find((x) => x.name === name)!;
      const apps = new Set(r.appliances.map((a) => a.name));
      for (const i of running) if (i.region === name || apps.has(i.appliance)) out.add(i);
    }
    return [...out];
  }

  /**
   * Is a status call worth its API cost now? Only when queued work waits for a running scan and,
   * by the distribution of past scan durations, one of those scans has likely ended since the
   * last call: the chances that each ended since then add up to 70% or more. Scans older than
   * every learned duration count as more and more likely the longer we wait. With nothing
   * waiting, a call every idlePollS records results (they keep their real end time).
   */
  private pollWorthwhile(running: Intent[], now: number): boolean {
    const blocking = this.blockingScans(running, now);
    if (blocking.length === 0) return now - this.lastPollAt >= (this.opts.idlePollS ?? 60 * this.opts.pollIntervalS) * 1000;
    if (this.durations.count < 3) return true;
    const interval = this.pollIntervalMs();
    let chance = 0;
    for (const i of blocking) {
      const start = i.launchedAt ?? i.createdAt;
      const f0 = this.durations.cdf(this.lastPollAt - start, this.size(i));
      const f1 = this.durations.cdf(now - start, this.size(i));
      chance += f0 >= 1 ? (now - this.lastPollAt) / (5 * interval) : (f1 - f0) / (1 - f0);
    }
    return chance >= 0.7;
  }

  /** One list call for all running scans; record results. */
  async poll(force = false): Promise<void> {
    const now = this.clock.now();
    const running = this.store.activeIntents().filter((i) => i.state === 'running' && i.scanRef);
    if (running.length === 0 || (!force && now < this.nextPollAt) || !this.canSpend(false)) return;
    if (!force && this.opts.adaptivePolling !== false && !this.pollWorthwhile(running, now)) return;
    this.nextPollAt = now + this.pollIntervalMs();
    this.lastPollAt = now;
    let statuses: ScanStatus[];
    try {
      statuses = await this.call('list scans (poll)', () => this.scanner.listScans({ scanRefs: running.map((i) => i.scanRef!) }));
    } catch {
      return;
    }
    const byRef = new Map(statuses.map((s) => [s.scanRef, s]));
    for (const i of running) {
      const st = byRef.get(i.scanRef!);
      if (!st) {
        const n = (this.missing.get(i.id) ?? 0) + 1;
        this.missing.set(i.id, n);
        if (n >= 3) this.finishFailed(i, 'error', 'scan no longer listed by the scanner');
        continue;
      }
      this.missing.delete(i.id);
      if (this.lastState.size > 10_000) this.lastState.clear();
      const before = this.lastState.get(i.id);
      this.lastState.set(i.id, before === 'running' && st.state !== 'running' ? 'paused' : st.state); // once started, never "not started" again
      if (st.state === 'finished') this.finishOk(i, st);
      else if (st.state === 'error' || st.state === 'canceled') this.finishFailed(i, st.state, `scan ended ${st.state}`);
      else if ((st.state === 'queued' || st.state === 'submitted') && this.lastState.get(i.id) !== 'paused'
        && now - (i.launchedAt ?? i.createdAt) > 2 * (this.opts.pickupS ?? 360) * 1000) {
        await this.requeueIfStuck(i);
      } else if (this.opts.cancelWhenAllLeft) await this.cancelIfAllLeft(i);
    }
  }

  /**
   * A scan that has not started long after launch sits behind other scans on a full (or offline)
   * appliance: its targets go stale while it waits. When a fresh appliance list confirms that,
   * cancel it and put the targets back in the queue: they go out again, re-checked, as soon as
   * an appliance of the region has room (maybe another one). A scan that had started and waits
   * again (its appliance went offline) keeps its progress and is left alone.
   */
  private async requeueIfStuck(i: Intent): Promise<void> {
    this.appliances.invalidate(i.appliance); // read the list again: it may be old
    await this.refreshAppliances();
    const r = this.opts.regions.find((x) => x.name === i.region);
    const max = r?.appliances.find((a) => a.name === i.appliance)?.maxScans ?? 1;
    const { online, load } = this.applianceLoad(i.appliance);
    if (online && load <= max) return; // it has its slot: about to start
    if (!this.canSpend(true)) return;
    const why = `still waiting for ${i.appliance} ${Math.round((this.clock.now() - (i.launchedAt ?? i.createdAt)) / 60_000)} min after launch (${online ? `load ${load}/${max}` : 'offline'})`;
    const targets = await this.cancelAndRequeue(i, why);
    if (!targets) return;
    this.counters.requeuedStuck++;
    this.log.info({ intent: i.id, scanRef: i.scanRef }, `canceled a queued scan: ${why}; targets requeued`);
    await this.creditPartial(i, targets);
  }

  private finishOk(i: Intent, st: ScanStatus): void {
    const now = this.clock.now();
    const endedAt = st.endedAt ? Date.parse(st.endedAt) : now;
    const scannedIds: number[] = [];
    const held = new Set<number>();
    for (const t of this.store.targets(i.id)) {
      const b = this.inventory.binding(t.bindingId);
      // only a device that still held the address when the scan ended was surely the one scanned (one
      // that left earlier may have left mid-scan: a partial result, not one to skip its next scan for)
      if (b && b.identityId === t.identityId && (b.endAt === undefined || b.endAt >= endedAt)) {
        if (this.opts.verifyResults) {
          held.add(t.bindingId); // recorded once the scanner confirms it found the host (verify())
          continue;
        }
        scannedIds.push(t.identityId);
        this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'scanned', reason: `scan ${st.scanRef} finished on ${i.appliance}` });
      } else {
        this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'not-scanned', reason: `left the address before scan ${st.scanRef} ended` });
      }
      this.plan.at(t.bindingId, now); // out of the queue: the next sweep decides again
    }
    this.inventory.markScanned(scannedIds, endedAt, this.scanner.kind === 'dry-run' ? 'dry-run' : 'onsight');
    if (i.launchedAt !== undefined && endedAt > i.launchedAt) this.durations.add(endedAt - i.launchedAt, this.size(i));
    this.sizes.delete(i.id);
    if (held.size) {
      this.store.finishKeeping(i.id, now, held);
      this.verifyDueAt = Math.min(this.verifyDueAt, now + (this.opts.verifyDelayS ?? 3600) * 1000);
    } else this.store.endIntent(i.id, 'finished', now, null);
    this.noteEnded(i.appliance);
    this.counters.finished++;
    (this.counters.byRegion[i.region] ??= { launched: 0, finished: 0, failed: 0 }).finished++;
    this.hooks.onScanEnd?.(i, 'finished', scannedIds.length);
  }

  /**
   * Confirm finished scans' targets with the scanner's last-scan dates (one call for many scans):
   * a target whose address the scanner scanned in that scan is recorded scanned; one it found no
   * host at is not, and its device is not due again until it is seen again (a renewal, a new
   * lease), so an address a laptop left without a release is not probed scan after scan.
   */
  async verify(): Promise<void> {
    const now = this.clock.now();
    if (now < this.verifyDueAt) return;
    const rows = this.store.awaitingVerification(1000);
    if (rows.length === 0) {
      this.verifyDueAt = Infinity;
      return;
    }
    if (!this.canSpend(false)) return;
    const dates = await this.scanDates('host list (verify results)', rows.map((r) => r.ip));
    if (!dates) {
      this.verifyDueAt = now + this.opts.pollIntervalS * 1000;
      return;
    }
    const at = this.clock.now();
    // a scan with no target dated yet may simply not be processed: its undated targets wait
    // (up to processingWaitS) instead of being judged "no host"
    const processed = new Set(rows.filter((r) => foundInScan(dates.get(r.ip), r.launchedAt)).map((r) => r.scanRef));
    const waitMs = (this.opts.processingWaitS ?? 21600) * 1000;
    let waiting = false;
    for (const r of rows) {
      const found = foundInScan(dates.get(r.ip), r.launchedAt);
      if (!found && !processed.has(r.scanRef) && at - r.endedAt < waitMs) {
        waiting = true;
        continue;
      }
      // the address is this device's result only if no other device held it while the scan ran
      if (found && this.inventory.heldByAnotherAt(r.ip, r.launchedAt, r.identityId, r.endedAt)) {
        this.store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'not-scanned', reason: `scan ${r.scanRef}: ${r.ip} changed hands while it ran; the result is not this device's` });
      } else if (found) {
        this.inventory.markScanned([r.identityId], r.endedAt, 'onsight');
        this.store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'scanned', reason: `scan ${r.scanRef} finished on ${r.appliance}; the scanner reports the host scanned` });
      } else {
        const b = this.inventory.binding(r.bindingId);
        if (b) {
          if (this.silent.size > 100_000) this.silent.clear();
          this.silent.set(b.id, b.lastSeen);
        }
        this.counters.noHost++;
        this.store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'not-scanned', reason: `scan ${r.scanRef} found no host at ${r.ip} (the device left without a release?)` });
      }
      this.store.dequeue(r.bindingId);
      this.plan.at(r.bindingId, at);
    }
    this.verifyDueAt = rows.length === 1000 && !waiting ? at : waiting ? at + (this.opts.verifyDelayS ?? 3600) * 1000 : Infinity;
  }

  private finishFailed(i: Intent, state: 'error' | 'canceled', why: string): void {
    const now = this.clock.now();
    const targets = this.store.targets(i.id);
    const attempts = Math.max(0, ...targets.map((t) => this.store.queued(t.bindingId)?.attempts ?? 0));
    const backoff = this.opts.retryBackoffS * 1000 * 2 ** attempts;
    this.store.endIntent(i.id, state, now, why, { notBefore: now + backoff, countAttempt: true });
    for (const t of targets) {
      const q = this.store.queued(t.bindingId);
      if (q && q.attempts >= this.opts.maxAttempts) {
        this.store.dequeue(t.bindingId);
        this.plan.at(t.bindingId, now + backoff);
        this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'failed', reason: `gave up after ${q.attempts} failed scans (${why})` });
      }
    }
    this.noteEnded(i.appliance);
    this.counters.failed++;
    (this.counters.byRegion[i.region] ??= { launched: 0, finished: 0, failed: 0 }).failed++;
    this.log.warn({ intent: i.id, scanRef: i.scanRef, state }, `scan ${why}; targets requeued with backoff`);
    this.hooks.onScanEnd?.(i, state, 0);
  }

  private async cancelIfAllLeft(i: Intent): Promise<void> {
    const targets = this.store.targets(i.id);
    const gone = targets.every((t) => {
      const b = this.inventory.binding(t.bindingId);
      return !b || b.endAt !== undefined;
    });
    if (!gone || !this.canSpend(false)) return;
    try {
      await this.call('cancel scan', () => this.scanner.cancel(i.scanRef!));
    } catch {
      return;
    }
    const now = this.clock.now();
    this.store.endIntent(i.id, 'canceled', now, 'every target left the network');
    this.noteEnded(i.appliance);
    this.drain(i.region, now);
    this.counters.canceledLeft++;
    for (const t of targets) {
      this.plan.at(t.bindingId, now);
      this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'canceled', reason: 'every target of the scan left' });
    }
  }

  // ---------------------------------------------------------------- appliances

  private noteEnded(appliance: string): void {
    this.appliances.ended(appliance);
  }

  /** Re-read the appliance list when stale; true when it was read. */
  private async refreshAppliances(): Promise<boolean> {
    const now = this.clock.now();
    if (!this.appliances.stale(now, this.opts.applianceRefreshS)) return false;
    if (!this.canSpend(false) && this.appliances.known) return false;
    let list: ApplianceStatus[];
    try {
      list = await this.call('list appliances', () => this.scanner.appliances());
    } catch {
      return false;
    }
    this.appliances.update(list, this.opts.regions, this.store.activeIntents(), now);
    return true;
  }

  /** Load now: the scanner's count at refresh plus our launches since, less our scans ended since; never below our own. */
  applianceLoad(name: string, active: Intent[] = this.store.activeIntents()): { online: boolean; load: number; ours: number } {
    return this.appliances.load(name, active);
  }

  // ---------------------------------------------------------------- launching

  /** Re-check a queued target right before launch: same device, still present, still due, still allowed. */
  private revalidate(q: QueueEntry, now: number): { ok: true; b: BindingView; v: Verdict } | { ok: false; why: string } {
    const b = this.inventory.binding(q.bindingId);
    if (!b) return { ok: false, why: 'binding no longer known' };
    if (b.identityId !== q.identityId) return { ok: false, why: 'address now held by another device' };
    const holder = this.inventory.openBinding(q.ip);
    if (!holder || holder.id !== b.id) return { ok: false, why: holder ? `address reassigned to ${holder.identityKey}` : 'device left (binding ended)' };
    const v = this.policy.evaluate(b, now);
    if (!v.due) return { ok: false, why: `${v.reason}: ${v.detail}` };
    if (!this.policy.allowed(q.ip)) return { ok: false, why: 'outside scope or excluded' };
    return { ok: true, b, v };
  }

  private async checkScannerDates(entries: QueueEntry[]): Promise<void> {
    if (!this.opts.lastScannedFromScanner) return;
    const now = this.clock.now();
    const ips = entries.map((e) => e.ip).filter((ip) => (this.scannerChecked.get(ip) ?? 0) < now - 86_400_000);
    if (ips.length === 0 || !this.canSpend(false)) return;
    try {
      const dates = await this.call('host list (last scanned)', () => this.scanner.lastScanned(ips));
      if (this.scannerChecked.size > 500_000) this.scannerChecked.clear();
      for (const ip of ips) this.scannerChecked.set(ip, now);
      for (const d of dates) {
        if (!d.lastScannedAt) continue;
        const e = entries.find((x) => x.ip === d.ip);
        const at = Date.parse(d.lastScannedAt);
        // the date is the address's: it is this device's only if no other device held the address then
        if (e && !this.inventory.heldByAnotherAt(e.ip, at, e.identityId)) this.inventory.markScanned([e.identityId], at, `scanner:${d.via ?? 'vm-scan'}`);
      }
    } catch {
      /* dates are an optimisation: launch anyway */
    }
  }

  private async launchReady(): Promise<void> {
    const now = this.clock.now();
    const regions = this.store.readyRegions(now, this.opts.regions.map((r) => r.name));
    if (regions.length === 0) return;
    const maxTotal = this.opts.maxRunningScans ?? Infinity;
    // the appliance list is read only when a launch may follow: some ready region has room by our own count
    const before = this.store.activeIntents();
    if (before.length >= maxTotal) return;
    const roomy = regions.some((name) => {
      const r = this.opts.regions.find((x) => x.name === name);
      return r && !this.isDraining(name, now) && before.filter((i) => i.region === name).length < r.maxConcurrentScans;
    });
    if (!roomy) return;
    const refreshed = await this.refreshAppliances();
    const waiting = new Set(regions);
    let launches = 0, blocked = false;
    // regions with the fewest usable appliances choose first, so a flexible region does not take
    // the only appliance another region can use
    const order = regions.map((name) => this.opts.regions.find((x) => x.name === name)).filter((r): r is SchedulerRegion => r !== undefined)
      .sort((a, b) => a.appliances.length - b.appliances.length);
    for (const r of order) {
      for (;;) {
        const active = this.store.activeIntents();
        if (active.length >= maxTotal) return;
        if (this.isDraining(r.name, this.clock.now()) || active.filter((i) => i.region === r.name).length >= r.maxConcurrentScans) break;
        if (!this.canSpend(true)) return;
        const appliance = this.appliances.pick(r, this.opts.regions, active, waiting);
        if (!appliance) {
          blocked = true;
          break;
        }
        const launched = await this.launchBatch(r, appliance);
        if (!launched) break;
        launches++;
      }
      waiting.delete(r.name);
    }
    // a list that showed no room is not worth re-reading every applianceRefreshS: back off until a launch
    this.appliances.afterPass(launches, blocked, refreshed);
  }

  /** Build, re-check and launch one batch; false when nothing was launched. */
  private async launchBatch(r: SchedulerRegion, appliance: { name: string; why: string }): Promise<boolean> {
    const max = this.opts.maxTargetsPerScan;
    let now = this.clock.now();
    const candidates = this.store.ready(r.name, now, max * 2);
    if (candidates.length === 0) return false;
    await this.checkScannerDates(candidates);
    now = this.clock.now();
    const targets: (IntentTarget & { why: string; vpn: boolean })[] = [];
    for (const q of candidates) {
      if (targets.length >= max) break;
      const chk = this.revalidate(q, now);
      if (chk.ok) targets.push({ ip: q.ip, identityId: q.identityId, bindingId: q.bindingId, vpn: chk.b.channel === 'vpn', why: `${chk.v.detail}; in region ${r.name} by ${chk.v.regionCidr}` });
      else {
        this.store.dequeue(q.bindingId);
        this.plan.at(q.bindingId, now);
        this.counters.dropped++;
        this.store.decide({ at: now, ip: q.ip, identityId: q.identityId, decision: 'dropped', reason: chk.why });
      }
    }
    if (targets.length === 0) return candidates.length > 0; // all dropped: look at the next ones
    // VPN pools hand a freed address to the next user at once: their targets go first, into the
    // scan's first wave, so the window in which the address can change hands is the shortest
    targets.sort((a, b) => Number(b.vpn) - Number(a.vpn));
    for (const t of targets) {
      if (!this.policy.allowed(t.ip)) throw new OnsightError('ONSIGHT_SCOPE_VIOLATION', `refusing to scan ${t.ip}: outside scope or excluded`);
    }
    const id = newIntentId(now);
    this.store.createIntent({ id, region: r.name, appliance: appliance.name, createdAt: now }, targets);
    this.appliances.launched(appliance.name);
    let scanRef: string;
    try {
      const res = await this.call('launch scan', () => this.scanner.launch({
        intentId: id, title: `onsight ${id} ${r.name}`, targets: targets.map((t) => t.ip), appliance: appliance.name,
        optionProfile: this.opts.optionProfile,
      }));
      scanRef = res.scanRef;
    } catch (err) {
      this.counters.launchFailures++;
      if (err instanceof OnsightError && NOT_LAUNCHED_CODES.has(err.code)) {
        this.appliances.launched(appliance.name, -1);
        const attempts = Math.max(0, ...targets.map((t) => this.store.queued(t.bindingId)?.attempts ?? 0));
        this.store.endIntent(id, 'error', this.clock.now(), `${err.code}: ${err.message}`, {
          notBefore: this.clock.now() + this.opts.retryBackoffS * 1000 * 2 ** attempts, countAttempt: true,
        });
      }
      // otherwise the outcome is unknown: the intent stays 'launching' and reconcile() settles it
      return false;
    }
    const at = this.clock.now();
    this.store.setRunning(id, scanRef, at);
    this.counters.launches++;
    this.counters.targetsLaunched += targets.length;
    (this.counters.byRegion[r.name] ??= { launched: 0, finished: 0, failed: 0 }).launched++;
    (this.counters.byAppliance[appliance.name] ??= { launched: 0 }).launched++;
    for (const t of targets) this.store.decide({ at, ip: t.ip, identityId: t.identityId, decision: 'launched', reason: `scan ${scanRef} on ${appliance.name} (${r.name})` });
    this.hooks.onLaunch?.({ intentId: id, scanRef, region: r.name, appliance: appliance.name, applianceWhy: appliance.why, targets: targets.map((t) => ({ ip: t.ip, why: t.why })) });
    return true;
  }
}

/** Did the scan launched at `launchedAt` find a host at the address? Its date may be stamped at launch: a minute of slack for clocks. */
function foundInScan(lastScannedAt: number | undefined, launchedAt: number): boolean {
  return lastScannedAt !== undefined && lastScannedAt >= launchedAt - 60_000;
}

function errInfo(err: unknown): { code?: string; message: string } {
  return { code: (err as OnsightError).code, message: (err as Error).message };
}
