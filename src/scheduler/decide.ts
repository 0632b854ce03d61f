/**
 * Deciding: is a binding due for a scan? `consider()` evaluates bindings that just changed and
 * enqueues the due ones, logging every changed decision; `sweep()` re-evaluates those whose answer
 * may have changed on its own since (a rescan window ran out, a scan window opened, a scan ended),
 * and every `fullSweepS` everyone present. Owns the last answer per binding, the re-check plan, and
 * the devices whose last scan found no host.
 */
import type { BindingView } from '../inventory/inventory.js';
import type { ConsideredWrites, Decision, DecisionKind, QueueEntry } from './queue.js';
import { RecheckPlan } from './recheck.js';
import { OperatorMarks, applyMark } from './marks.js';
import { SECOND_LOOK_FORGET_MS, SecondLooks } from './second-look.js';
import { ScanAhead } from './ahead.js';
import type { Waiting } from './waitlist.js';
import type { Verdict } from '../policy/policy.js';
import type { SchedulerCore } from './core.js';
import { CLOCK_SKEW_MS, int, num, numberRows, type Remembers } from './memory.js';

const RECENT_KEY = 'not-due:scanned-recently';
/** bindings last seen longer ago than this are not kept across a restart (their lease has run out) */
const SILENT_SAVE_MS = 7 * 86_400_000;
/** the quiet time after a binding's second no-host result in a row; doubled at each one after */
const NO_HOST_QUIET_MS = 2 * 3600_000;
/** the longest quiet time: a device the scanner never finds alive is still tried once a day */
const NO_HOST_QUIET_MAX_MS = 86_400_000;

/**
 * A binding whose last scan(s) found no host: `seen`, its lastSeen then; `count`, the no-host
 * results in a row on this binding; `quietUntil`, before which it is not due even if seen again.
 */
interface NoHost { seen: number; count: number; quietUntil: number }

/**
 * The quiet time after the `count`-th no-host result in a row. The first has none: a laptop that
 * left without a release is due again as soon as it is seen again. From the second on the device
 * was seen (it renewed its lease) and still not found: a host the scanner cannot see (a firewall
 * that makes it "not alive"), which each renewal would otherwise relaunch, 16 times a day on a 1-h
 * lease. So 2 h, 4 h, 8 h ... up to a day. A new binding (a new lease, not a renewal) starts
 * afresh, and so does a scan that finds it.
 */
export function noHostQuietMs(count: number): number {
  return count < 2 ? 0 : Math.min(NO_HOST_QUIET_MAX_MS, NO_HOST_QUIET_MS * 2 ** Math.min(count - 2, 20));
}

export class Decider {
  /** the last decision logged per binding (kind and reason class): an unchanged not-due answer is not news */
  private readonly lastReason = new Map<number, string>();
  /** bindings last found scanned-recently: until when that answer holds (sweep skips them) */
  private readonly recent = new Map<number, { lastScannedAt: number; until: number }>();
  /** when each binding's verdict may next change */
  private readonly plan = new RecheckPlan();
  private nextFullSweepAt = 0;
  /** the next full sweep also re-evaluates waiting queue entries (first start, a reload: regions may differ) */
  private rehomeDue = true;
  /** bindings whose last scan found no host: not due again until the device is seen again, and the quiet time has passed (binding id → NoHost) */
  private readonly silent = new Map<number, NoHost>();
  /** `silent`, kept across restarts (memory.ts): without it a restart relaunches every device a scan found gone */
  readonly silentMemory: Remembers = {
    snapshot: (now) => [...this.silent].filter(([, s]) => s.seen >= now - SILENT_SAVE_MS).map(([id, s]) => [id, s.seen, s.count, s.quietUntil]),
    merge: (data, now) => {
      const id = int(Number.MAX_SAFE_INTEGER), seen = num(now + CLOCK_SKEW_MS);
      // [id, lastSeen] rows: a version before the count (one no-host each)
      const rows = numberRows(data, [id, seen, int(1_000_000, 1), num(now + NO_HOST_QUIET_MAX_MS + CLOCK_SKEW_MS)], 100_000)
        ?? numberRows(data, [id, seen], 100_000)?.map(([b, s]) => [b, s, 1, 0]);
      if (!rows) return undefined;
      let n = 0;
      for (const [b, s, count, quietUntil] of rows) if (!this.silent.has(b)) (this.silent.set(b, { seen: s, count, quietUntil }), n++);
      return `${n} binding(s) whose last scan found no host`;
    },
  };

  /** devices whose first scan in a window is looked at again when they are next seen (second-look.ts) */
  private readonly secondLooks = new SecondLooks();
  /** present devices found scanned recently: they may ride ahead of time (ahead.ts) */
  private readonly ahead = new ScanAhead();
  /** the stored credits, read back once (the first pass after a start, or a new term in a cluster) */
  private creditsRead?: Promise<void>;

  /** operators' rescans and skips (onsight rescan / skip), and when we last looked for new ones */
  private readonly marks: OperatorMarks;
  /** undefined until the first look: marks older than the start are read as devices are considered */
  private marksSeen: number | undefined;

  constructor(private readonly core: SchedulerCore) {
    this.marks = new OperatorMarks(core.store);
  }

  /** A new policy: every answer may differ. */
  reset(): void {
    this.rehomeDue = true;
    this.lastReason.clear();
    this.recent.clear(); // windows may differ under the new policy
    this.ahead.clear(); // and regions: the full sweep this brings notes everyone present again
    this.plan.clear();
    this.nextFullSweepAt = 0;
  }

  /** Decide about `bindingId` again at `at` (it left the queue, its scan ended, ...). */
  recheck(bindingId: number, at: number): void {
    this.plan.at(bindingId, at);
  }

  /**
   * The targets of a scan that ended without a result (canceled, failed, given up, a launch refused
   * or never confirmed) went back to the queue as if due. Decided again at once: a rider (a second
   * look, a device ahead of time) is not due itself, so it leaves the queue and waits for the next
   * scan's room again, instead of counting as due until a launch drops it as "scanned-recently";
   * a device no longer due for another reason (excluded by a reload, its window closed, skipped)
   * leaves with that reason. A due one stays where it is, and so does one that left or whose address
   * changed hands (as anywhere: the launch's re-check drops it). The scan's end is written already:
   * a store error here is logged, and the next sweep or launch re-check decides them instead.
   */
  async requeued(bindingIds: number[]): Promise<void> {
    if (!bindingIds.length) return;
    try {
      await this.consider(bindingIds);
    } catch (err) {
      this.core.log.warn({ err: (err as Error).message, bindings: bindingIds.length }, 'could not decide a scan\'s targets again as they went back to the queue; the next sweep will');
    }
  }

  /** The last scan of this binding found no host (told now): not due again until it is seen again and its quiet time (noHostQuietMs) has passed. */
  silence(bindingId: number, lastSeen: number): void {
    if (this.silent.size > 100_000) this.silent.clear();
    const count = (this.silent.get(bindingId)?.count ?? 0) + 1;
    this.silent.set(bindingId, { seen: lastSeen, count, quietUntil: this.core.clock.now() + noHostQuietMs(count) });
  }

  /** A scan found the device at this binding (credited, or not for a rejoin mid-scan): its no-host results in a row end. */
  hostFound(bindingId: number): void {
    this.silent.delete(bindingId);
  }

  /** Why a due binding waits after no-host results, or undefined when it does not. */
  private quiet(b: BindingView, now: number): string | undefined {
    const s = this.silent.get(b.id);
    if (!s) return undefined;
    if (s.seen === b.lastSeen) return `no-answer: the last scan of ${b.ip} found no host; waiting for the device to be seen again`;
    if (now >= s.quietUntil) return undefined;
    this.plan.at(b.id, s.quietUntil);
    // (a reason class of its own: logged, though the device's last answer was the first no-answer)
    return `no-answer-backoff: ${s.count} scans of ${b.ip} in a row found no host though it was seen between them (not alive to the scanner?); not due again before ${new Date(s.quietUntil).toISOString()}`;
  }

  /** onsight recorded a scan of this device, ending at `at`, on binding `b`; `whole`: known whole (second-look.ts). Kept in the store too. */
  async credited(identityId: number, at: number, b: BindingView | undefined, whole: boolean): Promise<void> {
    if (b) this.hostFound(b.id);
    if (!this.core.opts.secondLook) return;
    await this.readCredits();
    await this.core.store.saveScanCredits([this.secondLooks.credited(identityId, at, b, whole)]);
  }

  /** Second looks owed before a restart: the credits in the store, read once (a failed read is tried again next pass). */
  private readCredits(): Promise<void> {
    if (!this.core.opts.secondLook) return Promise.resolve();
    this.creditsRead ??= this.core.store.scanCredits(this.core.clock.now() - SECOND_LOOK_FORGET_MS).then(
      (stored) => this.secondLooks.load(stored),
      (err: unknown) => {
        this.creditsRead = undefined;
        throw err;
      });
    return this.creditsRead;
  }

  /**
   * A scanned-recently verdict turned due when the device is owed a second look (second-look.ts):
   * its region's scan window open (a scarce allowance too: looks ride in scans launched anyway).
   */
  secondLook(b: BindingView, v: Verdict, now: number): Verdict & { secondLook?: true } {
    const { policy, opts } = this.core;
    if (!opts.secondLook || v.reason !== 'scanned-recently' || !v.region || b.lastScannedAt === undefined) return v;
    if (!this.secondLooks.owed(b, policy.dueAfterS(b.ip, v.region) * 1000) || !policy.windowOpen(v.region, now)) return v;
    return {
      ...v, due: true, reason: 'due', secondLook: true,
      detail: `a second look: its scan ending ${new Date(b.lastScannedAt).toISOString()} was its first in the window, and it was seen again at ${new Date(b.lastSeen).toISOString()} (a device that left mid-probe without a line passes for scanned)`,
    };
  }

  /** Devices waiting for a second look in `region`, the most recently seen first. */
  secondLooksIn(region: string): Waiting[] {
    return this.secondLooks.waitingIn(region);
  }

  /** A waiting second look went out in a scan, or is no longer owed. */
  secondLookGone(bindingId: number): void {
    this.secondLooks.gone(bindingId);
  }

  /**
   * A scanned-recently verdict turned due when the device comes due within `scanAheadH`
   * (ahead.ts): its region's scan window open. Only launch.ts asks, for the room a scan leaves.
   */
  scanAhead(b: BindingView, v: Verdict, now: number): Verdict & { ahead?: true } {
    const { policy, opts } = this.core;
    if (!opts.scanAheadH || v.reason !== 'scanned-recently' || !v.region || b.lastScannedAt === undefined) return v;
    const dueAt = this.dueAt(b.lastScannedAt, b.ip, v.region);
    if (dueAt > now + opts.scanAheadH * 3600_000 || !policy.windowOpen(v.region, now)) return v;
    return {
      ...v, due: true, reason: 'due', ahead: true,
      detail: `ahead of time: due at ${new Date(dueAt).toISOString()}, within scanAheadH (${opts.scanAheadH} h); riding in room a scan launched for due devices leaves`,
    };
  }

  /** When a device last scanned at `lastScannedAt` comes due again (the policy's rescan time for its address and region). */
  private dueAt(lastScannedAt: number, ip: string, region: string | undefined): number {
    return lastScannedAt + this.core.policy.dueAfterS(ip, region) * 1000;
  }

  /** Present devices of `region` that come due within scanAheadH, the most recently seen first. */
  aheadIn(region: string, now: number): Waiting[] {
    return this.core.opts.scanAheadH ? this.ahead.in(region, now + this.core.opts.scanAheadH * 3600_000) : [];
  }

  aheadGone(bindingId: number): void {
    this.ahead.gone(bindingId);
  }

  /** Evaluate bindings that just changed; enqueue the due ones; log every changed decision. */
  consider(bindingIds: Iterable<number>): Promise<number> {
    // one transaction for the pass: a batch of new bindings logs one decision each (issue 18: one
    // commit per insert was 7% of ingest)
    return this.core.store.atomically(() => this.considerEach(bindingIds));
  }

  /**
   * One pass in a few round trips whatever its size (issue 17: 4-6 per binding held the cluster's
   * apply at ~280 sightings/s): the bindings, their devices' marks and their queue entries are read
   * at once, each binding is decided in memory in the given order (the queue as the pass leaves it
   * is followed in memory: a binding listed twice is queued once), and the queue changes and the
   * decisions are written at once, in that order (store.writeConsidered).
   */
  private async considerEach(bindingIds: Iterable<number>): Promise<number> {
    const { clock, inventory, store } = this.core;
    const policy = this.core.policy;
    const now = clock.now();
    const order = [...bindingIds];
    if (!order.length) return 0;
    await this.readCredits();
    const unique = [...new Set(order)];
    const bindings = new Map((await inventory.bindings(unique)).map((b) => [b.id, b]));
    if (!bindings.size) return 0;
    const [marks, queued] = await Promise.all([
      store.marksOf([...new Set([...bindings.values()].map((b) => b.identityId))]).then((ms) => new Map(ms.map((m) => [m.identityId, m]))),
      store.queuedOf([...bindings.keys()]).then((qs) => new Map<number, QueueEntry | undefined>(qs.map((q) => [q.bindingId, q]))),
    ]);
    const w: ConsideredWrites = { dequeueIfWaiting: [], enqueue: [], moveRegion: [], touch: [], decisions: [] };
    const log = (b: BindingView, decision: DecisionKind, reason: string) => {
      const d = this.logged(b, decision, reason, now);
      if (d) w.decisions.push(d);
    };
    let enqueued = 0;
    const newHolders = this.core.cancel.newHolderCheck(now);
    // devices found scanned recently are noted for a ride ahead only where a launch would take them (ahead.ts): a plentiful allowance keeps no list
    const noteAhead = this.core.opts.scanAheadH > 0 && this.core.budget.scarce();
    for (const id of order) {
      const b = bindings.get(id);
      if (!b) continue;
      this.core.results.rejoins.seen(b);
      if (b.endAt === undefined && b.startAt >= now - 3600_000) await newHolders(b);
      const mark = marks.get(b.identityId);
      const v = applyMark(mark, policy.evaluate(b, now), b, now, (region) => policy.windowOpen(region, now));
      // owed a second look (second-look.ts): it waits, out of the queue, for a scan launched in its region for first scans
      const look = this.secondLook(b, v, now);
      const looking = 'secondLook' in look; // (only a verdict with a region is turned into one)
      if (looking && this.secondLooks.wait(look.region!, b)) {
        this.core.counters.secondLooks++;
        const d = this.logged(b, 'due', `${look.detail}; region ${look.region} (${look.regionCidr}); it rides in the next scan launched there for devices due for their first scan`, now);
        if (d) w.decisions.push(d);
      } else if (!looking) this.secondLooks.gone(b.id);
      if (v.reason === 'scanned-recently' && b.lastScannedAt !== undefined) {
        if (this.recent.size > 200_000) this.recent.clear();
        const until = this.dueAt(b.lastScannedAt, b.ip, v.region);
        this.recent.set(b.id, { lastScannedAt: b.lastScannedAt, until });
        this.plan.at(b.id, until);
        if (v.region && noteAhead) this.ahead.note(v.region, b, until);
        else this.ahead.gone(b.id);
      } else {
        this.recent.delete(b.id);
        this.ahead.gone(b.id);
        if (v.reason === 'outside-scan-window' && v.region) this.plan.afterWindow(b.id, v.region);
        else if (v.reason === 'skipped') this.plan.at(b.id, mark!.skipUntil!);
        else this.plan.forget(b.id); // due (the queue has it) or an answer only a new sighting can change
      }
      const quiet = v.due && v.region ? this.quiet(b, now) : undefined;
      if (quiet) {
        log(b, 'not-due', quiet);
      } else if (v.due && v.region) {
        const q = queued.get(b.id);
        if (!q) {
          const e = { bindingId: b.id, ip: b.ip, identityId: b.identityId, region: v.region, dueSince: now, lastSeen: b.lastSeen };
          w.enqueue.push(e);
          queued.set(b.id, { ...e, attempts: 0, notBefore: 0 });
          enqueued++;
          log(b, 'due', `${v.detail}; region ${v.region} (${v.regionCidr})`);
        } else {
          // already queued: seen again, it moves up; queued under another region than its address maps
          // to now (the config changed under it: SIGHUP, a restart), it moves to that region while it waits
          if (q.intentId === undefined && q.region !== v.region) {
            w.moveRegion.push({ bindingId: b.id, region: v.region });
            queued.set(b.id, { ...q, region: v.region });
            log(b, 'due', `now in region ${v.region} (${v.regionCidr}); was queued under ${q.region}`);
          }
          w.touch.push({ bindingId: b.id, lastSeen: b.lastSeen });
        }
      } else {
        // a waiting entry no longer due (its region's window closed, scanned elsewhere, excluded by a reload) leaves the queue
        if (v.reason !== 'not-present') {
          w.dequeueIfWaiting.push(b.id);
          if (queued.get(b.id)?.intentId === undefined) queued.delete(b.id);
        }
        if (!looking) log(b, 'not-due', `${v.reason}: ${v.detail}`);
      }
    }
    if (w.dequeueIfWaiting.length || w.enqueue.length || w.moveRegion.length || w.touch.length || w.decisions.length) await store.writeConsidered(w);
    // credits found whole in this pass (or by a launch's re-check since the last)
    await store.saveScanCredits(this.secondLooks.takeChanged());
    return enqueued;
  }

  /**
   * Marks an operator wrote since the last look (every tick, so within a second): the devices they
   * name are decided again now; a skipped one waiting in the queue leaves it (one in flight stays).
   */
  async applyOperatorMarks(): Promise<number> {
    this.marksSeen ??= await this.marks.lastUpdate();
    const changed = await this.marks.changedSince(this.marksSeen);
    if (!changed.length) return 0;
    this.marksSeen = changed[changed.length - 1].updatedAt;
    const { clock, inventory, store } = this.core;
    const now = clock.now();
    // a run aimed before a skip: aimed again (ranges.ts; a rescan changes no aim)
    if (changed.some((m) => m.skipUntil !== undefined && m.skipUntil > now)) this.core.ranges.marksChanged(now);
    const ids: number[] = [];
    for (const m of changed) {
      for (const b of await inventory.presentBindingsOf(m.identityId, now)) {
        if (m.skipUntil !== undefined && m.skipUntil > now) await store.dequeueIfWaiting(b.id);
        this.lastReason.delete(b.id); // the operator's answer is news
        ids.push(b.id);
      }
    }
    return this.consider(ids);
  }

  /**
   * Periodic pass: end run-out leases, and re-evaluate the bindings whose answer may have changed
   * since (rescan windows run out, scan windows open, scans ended). Every `fullSweepS` (and first)
   * it re-evaluates everyone present instead.
   */
  async sweep(): Promise<number> {
    const { clock, inventory, store } = this.core;
    const now = clock.now();
    // bindings whose lease ran out wait for no ride (second looks, ahead of time)
    for (const id of await inventory.expireStale(now)) {
      this.secondLooks.gone(id);
      this.ahead.gone(id);
    }
    await store.pruneDecisions(100_000);
    await this.marks.prune(now);
    if (now < this.nextFullSweepAt && this.plan.size < 1_000_000) {
      const ids = this.plan.takeDue(now);
      for (const region of this.plan.regionsWaiting()) {
        if (this.core.policy.windowOpen(region, now)) for (const id of this.plan.takeWaiting(region)) ids.push(id);
      }
      return this.consider(ids);
    }
    this.nextFullSweepAt = now + this.core.opts.fullSweepS * 1000;
    this.plan.clear();
    await store.pruneScanCredits(now - SECOND_LOOK_FORGET_MS);
    const queued = await store.queuedIds();
    const waiting = this.rehomeDue ? new Set((await store.allQueued()).filter((q) => q.intentId === undefined).map((q) => q.bindingId)) : undefined;
    this.rehomeDue = false;
    let enqueued = 0;
    // a page at a time, one transaction each: a fleet of 1M is never held as objects, nor written in one transaction
    for await (const page of inventory.presentIdPages(now)) {
      const ids: number[] = [];
      for (const p of page) {
        if (waiting?.has(p.id)) {
          ids.push(p.id);
          continue;
        }
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
      enqueued += await this.consider(ids);
    }
    return enqueued;
  }

  /** The decision to log, or undefined when it is the same not-due answer as last time (not news). */
  private logged(b: Pick<BindingView, 'id' | 'ip' | 'identityId'>, decision: DecisionKind, reason: string, now: number): Decision | undefined {
    const key = `${decision}:${reason.split(':')[0]}`;
    if (this.lastReason.get(b.id) === key && decision === 'not-due') return undefined;
    if (this.lastReason.size > 200_000) this.lastReason.clear();
    this.lastReason.set(b.id, key);
    return { at: now, ip: b.ip, identityId: b.identityId, decision, reason };
  }
}
