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
  /** poll running scans only once they may have ended, by learned durations (default true) */
  adaptivePolling?: boolean;
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
  reconciled: number;
  abandoned: number;
  apiCalls: number;
  byRegion: Record<string, { launched: number; finished: number; failed: number }>;
  byAppliance: Record<string, { launched: number }>;
}

interface ApplianceState {
  status?: ApplianceStatus;
  refreshedAt: number;
  launchedSince: number;
  endedSince: number;
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
    launches: 0, launchFailures: 0, targetsLaunched: 0, dropped: 0, finished: 0, failed: 0, canceledLeft: 0,
    reconciled: 0, abandoned: 0, apiCalls: 0, byRegion: {}, byAppliance: {},
  };
  private readonly appliances = new Map<string, ApplianceState>();
  private readonly lastReason = new Map<number, string>();
  private readonly scannerChecked = new Map<string, number>();
  private nextPollAt = 0;
  private lastPollAt = 0;
  /** learned scan duration (EWMA, ms) and how many finished scans taught it */
  private scanMs = 0;
  private scanSamples = 0;
  private startupReconciled = false;
  private missing = new Map<string, number>();
  /** bindings last found scanned-recently: until when that answer holds (sweep skips them) */
  private readonly recent = new Map<number, { lastScannedAt: number; until: number }>();
  /** when each binding's verdict may next change */
  private readonly plan = new RecheckPlan();
  private nextFullSweepAt = 0;

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
  }

  /** A reloaded config (SIGHUP): new policy, regions and limits apply from the next decision on. */
  reconfigure(policy: Policy, opts: SchedulerOptions): void {
    this.policy = policy;
    this.opts = opts;
    this.lastReason.clear();
    this.recent.clear(); // windows may differ under the new policy
    this.plan.clear();
    this.nextFullSweepAt = 0;
    for (const a of this.appliances.values()) a.refreshedAt = 0; // a region may have new appliances
  }

  // ---------------------------------------------------------------- deciding

  /** Evaluate bindings that just changed; enqueue the due ones; log every changed decision. */
  consider(bindingIds: Iterable<number>): number {
    const now = this.clock.now();
    let enqueued = 0;
    for (const id of bindingIds) {
      const b = this.inventory.binding(id);
      if (!b) continue;
      const v = this.policy.evaluate(b, now);
      if (v.reason === 'scanned-recently' && b.lastScannedAt !== undefined) {
        if (this.recent.size > 200_000) this.recent.clear();
        const until = b.lastScannedAt + this.policy.rescanAfterS(b.ip, v.region) * 1000;
        this.recent.set(b.id, { lastScannedAt: b.lastScannedAt, until });
        this.plan.at(b.id, until);
      } else {
        this.recent.delete(b.id);
        if (v.reason === 'outside-scan-window' && v.region) this.plan.afterWindow(b.id, v.region);
        else this.plan.forget(b.id); // due (the queue has it) or an answer only a new sighting can change
      }
      if (v.due && v.region) {
        if (this.store.enqueue({ bindingId: b.id, ip: b.ip, identityId: b.identityId, region: v.region, dueSince: now, leaveBy: leaveBy(b) })) {
          enqueued++;
          this.decide(b, 'due', `${v.detail}; region ${v.region} (${v.regionCidr})`, now);
        }
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
    await this.poll();
    await this.launchReady();
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
   * Is any running scan likely to have ended? Once a few scans have finished, polling waits until
   * 60% of the learned scan duration has passed for at least one of them (a status call before
   * that would almost surely say "running"), with a safety poll every 10 intervals for scans that
   * error or are canceled early.
   */
  private pollWorthwhile(running: Intent[], now: number): boolean {
    if (this.scanSamples < 3) return true;
    if (now - this.lastPollAt >= 10 * this.pollIntervalMs()) return true;
    const soonest = Math.min(...running.map((i) => (i.launchedAt ?? i.createdAt) + 0.6 * this.scanMs));
    return now >= soonest;
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
      if (st.state === 'finished') this.finishOk(i, st);
      else if (st.state === 'error' || st.state === 'canceled') this.finishFailed(i, st.state, `scan ended ${st.state}`);
      else if (this.opts.cancelWhenAllLeft) await this.cancelIfAllLeft(i);
    }
  }

  private finishOk(i: Intent, st: ScanStatus): void {
    const now = this.clock.now();
    const endedAt = st.endedAt ? Date.parse(st.endedAt) : now;
    const scannedIds: number[] = [];
    for (const t of this.store.targets(i.id)) {
      this.plan.at(t.bindingId, now); // out of the queue: the next sweep decides again
      const b = this.inventory.binding(t.bindingId);
      // only a device that still held the address when the scan ended was the one scanned
      if (b && b.identityId === t.identityId && (b.endAt === undefined || b.endAt >= endedAt)) {
        scannedIds.push(t.identityId);
        this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'scanned', reason: `scan ${st.scanRef} finished on ${i.appliance}` });
      } else {
        this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'not-scanned', reason: `left the address before scan ${st.scanRef} ended` });
      }
    }
    this.inventory.markScanned(scannedIds, endedAt, this.scanner.kind === 'dry-run' ? 'dry-run' : 'onsight');
    if (i.launchedAt !== undefined && endedAt > i.launchedAt) {
      const d = endedAt - i.launchedAt;
      this.scanMs = this.scanSamples === 0 ? d : 0.8 * this.scanMs + 0.2 * d;
      this.scanSamples++;
    }
    this.store.endIntent(i.id, 'finished', now, null);
    this.noteEnded(i.appliance);
    this.counters.finished++;
    (this.counters.byRegion[i.region] ??= { launched: 0, finished: 0, failed: 0 }).finished++;
    this.hooks.onScanEnd?.(i, 'finished', scannedIds.length);
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
    this.counters.canceledLeft++;
    for (const t of targets) {
      this.plan.at(t.bindingId, now);
      this.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'canceled', reason: 'every target of the scan left' });
    }
  }

  // ---------------------------------------------------------------- appliances

  private noteEnded(appliance: string): void {
    const a = this.appliances.get(appliance);
    if (a) a.endedSince++;
  }

  private async refreshAppliances(): Promise<void> {
    const now = this.clock.now();
    const oldest = Math.min(...[...this.appliances.values()].map((a) => a.refreshedAt), this.appliances.size ? Infinity : 0);
    if (this.appliances.size && now - oldest < this.opts.applianceRefreshS * 1000) return;
    if (!this.canSpend(false) && this.appliances.size) return;
    let list: ApplianceStatus[];
    try {
      list = await this.call('list appliances', () => this.scanner.appliances());
    } catch {
      return;
    }
    const byName = new Map(list.map((a) => [a.name, a]));
    for (const r of this.opts.regions) {
      for (const ap of r.appliances) {
        const status = byName.get(ap.name);
        if (!status) this.log.warn({ appliance: ap.name, region: r.name }, 'configured appliance is not in the scanner\'s appliance list; treated as offline');
        this.appliances.set(ap.name, { status, refreshedAt: now, launchedSince: 0, endedSince: 0 });
      }
    }
  }

  /** Load now: the scanner's count at refresh plus our launches since, less our scans ended since; never below our own. */
  applianceLoad(name: string, active: Intent[] = this.store.activeIntents()): { online: boolean; load: number; ours: number } {
    const ours = active.filter((i) => i.appliance === name).length;
    const a = this.appliances.get(name);
    if (!a?.status) return { online: false, load: ours, ours };
    const load = Math.max(ours, a.status.runningScans + a.launchedSince - a.endedSince);
    return { online: a.status.online, load, ours };
  }

  private pickAppliance(r: SchedulerRegion, active: Intent[]): { name: string; why: string } | undefined {
    let best: { name: string; ratio: number; why: string } | undefined;
    const skipped: string[] = [];
    for (const ap of r.appliances) {
      const { online, load } = this.applianceLoad(ap.name, active);
      if (!online) {
        skipped.push(`${ap.name} offline`);
        continue;
      }
      if (load >= ap.maxScans) {
        skipped.push(`${ap.name} busy ${load}/${ap.maxScans}`);
        continue;
      }
      const ratio = load / ap.maxScans;
      if (!best || ratio < best.ratio) best = { name: ap.name, ratio, why: `${ap.name} online, load ${load}/${ap.maxScans}` };
    }
    if (!best) return undefined;
    return { name: best.name, why: skipped.length ? `${best.why} (${skipped.join(', ')})` : best.why };
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
        if (e) this.inventory.markScanned([e.identityId], Date.parse(d.lastScannedAt), `scanner:${d.via ?? 'vm-scan'}`);
      }
    } catch {
      /* dates are an optimisation: launch anyway */
    }
  }

  private async launchReady(): Promise<void> {
    const now = this.clock.now();
    const regions = this.store.readyRegions(now, this.opts.regions.map((r) => r.name));
    if (regions.length === 0) return;
    await this.refreshAppliances();
    const maxTotal = this.opts.maxRunningScans ?? Infinity;
    for (const name of regions) {
      const r = this.opts.regions.find((x) => x.name === name);
      if (!r) continue;
      for (;;) {
        const active = this.store.activeIntents();
        if (active.length >= maxTotal) return;
        if (active.filter((i) => i.region === r.name).length >= r.maxConcurrentScans) break;
        if (!this.canSpend(true)) return;
        const appliance = this.pickAppliance(r, active);
        if (!appliance) break;
        const launched = await this.launchBatch(r, appliance);
        if (!launched) break;
      }
    }
  }

  /** Build, re-check and launch one batch; false when nothing was launched. */
  private async launchBatch(r: SchedulerRegion, appliance: { name: string; why: string }): Promise<boolean> {
    const max = this.opts.maxTargetsPerScan;
    let now = this.clock.now();
    const candidates = this.store.ready(r.name, now, max * 2);
    if (candidates.length === 0) return false;
    await this.checkScannerDates(candidates);
    now = this.clock.now();
    const targets: (IntentTarget & { why: string })[] = [];
    for (const q of candidates) {
      if (targets.length >= max) break;
      const chk = this.revalidate(q, now);
      if (chk.ok) targets.push({ ip: q.ip, identityId: q.identityId, bindingId: q.bindingId, why: `${chk.v.detail}; in region ${r.name} by ${chk.v.regionCidr}` });
      else {
        this.store.dequeue(q.bindingId);
        this.plan.at(q.bindingId, now);
        this.counters.dropped++;
        this.store.decide({ at: now, ip: q.ip, identityId: q.identityId, decision: 'dropped', reason: chk.why });
      }
    }
    if (targets.length === 0) return candidates.length > 0; // all dropped: look at the next ones
    for (const t of targets) {
      if (!this.policy.allowed(t.ip)) throw new OnsightError('ONSIGHT_SCOPE_VIOLATION', `refusing to scan ${t.ip}: outside scope or excluded`);
    }
    const id = newIntentId(now);
    this.store.createIntent({ id, region: r.name, appliance: appliance.name, createdAt: now }, targets);
    const ap = this.appliances.get(appliance.name);
    if (ap) ap.launchedSince++;
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
        if (ap) ap.launchedSince--;
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

/** When is the device likely to leave? Short leases and VPN sessions first. */
function leaveBy(b: BindingView): number | undefined {
  if (b.channel === 'vpn') return b.lastSeen + 2 * 3600_000;
  return b.expiresAt;
}

function errInfo(err: unknown): { code?: string; message: string } {
  return { code: (err as OnsightError).code, message: (err as Error).message };
}
