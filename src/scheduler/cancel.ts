/**
 * Canceling running scans, for four reasons: a target's address went to another device before
 * the scan could reach it, or the policy no longer allows it (cancel, relaunch the others at once),
 * the scan sits queued behind others long after launch (cancel, requeue), every target left
 * (cancel), its region closed (a blackout began, or its windows closed with scanWindowEnd: stop;
 * cancel, requeue). Owns the scans waiting to be canceled.
 */
import type { BindingView } from '../inventory/inventory.js';
import type { Intent, IntentTarget } from './queue.js';
import { transitionRefused, type SchedulerCore, type SettleOptions } from './core.js';
import { FailedCall } from './budget.js';
import { ScanEndedBeforeCancel } from '../scanners/failure.js';

/** a reassignment cancel the scanner refused is tried again this much later, this many times in all (10 min) */
const CANCEL_RETRY_MS = 30_000;
const CANCEL_TRIES = 20;

/** after a reload, running scans with a refused target are looked for again this often until none is left (checkPolicy) */
const POLICY_RECHECK_MS = 60_000;
/** a region-closed stop whose cancel failed is tried again this much later */
const CLOSED_RETRY_MS = 60_000;
/** after the appliance's polling interval, this long more before a canceled scan surely probes no more */
const DRAIN_MARGIN_MS = 10_000;
/**
 * A region where changes of hand and departures have canceled this many scans within
 * FLAP_WINDOW_MS cancels no more for them until the oldest of those is that old: a client that
 * releases and takes its address again every 30 s (or a fresh address under a fresh MAC each
 * time) canceled every scan of its region for as long as it went on, and the other devices there
 * were never scanned (identity probe, session 41). Counted per region, not per address: per
 * address, a client moving from address to address went on, and two honest changes of hand
 * switched one address's protection off (review). A probe of a new holder is then what the scan's
 * end finds, said and counted (other-holder), as for a change that came too late for a cancel;
 * scope and exclusions hold whatever happens. Honest churn is far below: the simulated fleet
 * cancels about one scan a region a day for these reasons.
 */
const FLAP_CANCELS = 4;
const FLAP_WINDOW_MS = 3_600_000;

export class Canceler {
  /** running scans to cancel and relaunch: a target's address now belongs to another device (intent id → why) */
  private readonly reassigned = new Map<string, string>();
  /**
   * Reassignment cancels the scanner refused while the scan was still going (Rapid7 stops only a
   * running or paused scan: one still dispatched refuses), tried again: when, how often so far, why.
   */
  private readonly cancelRetries = new Map<string, { at: number; tries: number; why: string }>();
  /**
   * Running scans are checked against the policy at the next pass (checkPolicy): after a reload, and
   * at a new scheduler's first pass (a start, a new cluster term: the policy may have narrowed while
   * the scans ran on without us)
   */
  private policyChanged = true;
  /** the next check after one that found a scan to cancel (a cancel that keeps failing is not tried every pass) */
  private policyCheckAt = 0;
  /** reloads so far: one that lands while checkPolicy awaits the store makes it check again */
  private policyGeneration = 0;
  /** scans whose region-closed stop failed: when it may be tried again */
  private readonly closedRetryAt = new Map<string, number>();
  /** region → until when a canceled scan's appliance may still probe it */
  private readonly draining = new Map<string, number>();
  /**
   * targets whose address changed hands (or that left) in a scan no poll has seen since launch:
   * whether it has started is looked up (one list call) before the cancel is decided
   */
  private readonly toLookUp = new Map<string, { intentId: string; ip: string; slack: number; why: string }>();
  /** region → when changes of hand or departures there marked scans for cancel (the last FLAP_WINDOW_MS) */
  private readonly cancelsByRegion = new Map<string, number[]>();
  /** regions said to be held (once each time they reach FLAP_CANCELS) */
  private readonly saidFlapping = new Set<string>();

  constructor(private readonly core: SchedulerCore) {}

  /**
   * For consider(): a check of new bindings against the targets of running scans (read once, on
   * first use). A scan that may not have reached an address now held by another device is marked
   * for cancel-and-relaunch.
   */
  newHolderCheck(now: number): (b: BindingView) => Promise<void> {
    let targets: Map<string, { intent: Intent; identityId: number }> | undefined;
    return async (b) => {
      targets ??= await this.runningTargets();
      const t = targets.get(b.ip);
      if (!t || t.identityId === b.identityId || this.reassigned.has(t.intent.id)) return;
      const why = `target ${b.ip} now held by ${b.identityKey}`;
      if (this.atCap(t.intent.region, now)) {
        // (said only where a cancel is held back: a scan past the address needs none)
        if (await this.core.follow.mayNotHaveReached(t.intent, now, b.ip)) this.flapping(t.intent.region, now);
        return;
      }
      if (await this.core.follow.mayNotHaveReached(t.intent, now, b.ip)) this.markForChange(t.intent, why, now);
      else if (await this.core.follow.unsure(t.intent, now, b.ip)) this.toLookUp.set(`${t.intent.id} ${b.ip}`, { intentId: t.intent.id, ip: b.ip, slack: 0.3, why });
    };
  }

  /**
   * For departures (a tunnel-down, a DHCP release): the address is free, and a VPN pool or a
   * lowest-free DHCP server hands it to the next device at once, often before that device's line
   * reaches us (log delay) and the scan's appliance hears of a cancel (its next poll). A running
   * scan that may not have reached the departed target is canceled and its other targets relaunched
   * now, as for a new holder: the target would only be probed dead, or as someone else. The window
   * has no safety margin here (the target's place in a typical scan, not +30%): a departure is a risk
   * only if the address is handed out again before the probe, and each cancel loses the scan's
   * finished targets (fleet-500 x 9 d, 14 seeds: with the margin, coverage -1.5 pts and calls +40%;
   * without, -0.7 ± 0.9 pts and +12%, wrong-host as low). Returns how many scans were marked.
   */
  async departedCheck(bindingIds: Iterable<number>): Promise<number> {
    if (!this.core.opts.cancelWhenTargetLeaves) return 0;
    const now = this.core.clock.now();
    // no running scan (most of the time): no binding to read; else the departed ones read at once
    const targets = await this.runningTargets();
    if (!targets.size) return 0;
    const ids = [...bindingIds];
    const byId = new Map((await this.core.inventory.bindings(ids)).map((b) => [b.id, b]));
    let marked = 0;
    for (const id of ids) {
      const b = byId.get(id);
      if (!b || b.endAt === undefined) continue;
      const t = targets.get(b.ip);
      if (!t || t.identityId !== b.identityId || this.reassigned.has(t.intent.id)) continue;
      const why = `target ${b.ip} left (${b.identityKey}); its address is free for another device`;
      if (this.atCap(t.intent.region, now)) {
        if (await this.core.follow.mayNotHaveReached(t.intent, now, b.ip, 0)) this.flapping(t.intent.region, now);
        continue;
      }
      if (await this.core.follow.mayNotHaveReached(t.intent, now, b.ip, 0)) {
        this.markForChange(t.intent, why, now);
        marked++;
      } else if (!this.core.budget.scarce() && await this.core.follow.unsure(t.intent, now, b.ip)) {
        // a scarce allowance does not look up on a departure (most such look-ups find the scan
        // running: 4 polls a day at 50 a day) but on the new holder's line (newHolderCheck)
        this.toLookUp.set(`${t.intent.id} ${b.ip}`, { intentId: t.intent.id, ip: b.ip, slack: 0, why });
        marked++;
      }
    }
    return marked;
  }

  /** A reload (reconfigure) changed the policy: checkPolicy runs at the next pass. */
  policyReloaded(): void {
    this.policyChanged = true;
    this.policyCheckAt = 0;
    this.policyGeneration++;
  }

  /**
   * After a reload: a running scan with a target the policy now refuses (out of scope, newly
   * excluded) is marked to be canceled and its other targets relaunched, as for an address that
   * changed hands, whether or not it has reached that target yet: the operator has just said the
   * address must not be scanned, and the appliance would go on probing it. Looked for again every
   * POLICY_RECHECK_MS until none is left, so a cancel that failed is tried again.
   */
  private async checkPolicy(): Promise<void> {
    const now = this.core.clock.now();
    if (!this.policyChanged || now < this.policyCheckAt) return;
    const generation = this.policyGeneration;
    let found = false;
    for (const i of await this.core.store.activeIntents()) {
      // a launch not confirmed yet may be running once reconcile finds it: looked at again then
      if (i.state === 'launching') found = true;
      if (i.state !== 'running' || !i.scanRef) continue;
      const refused = (await this.core.store.targets(i.id)).filter((t) => !this.core.policy.allowed(t.ip));
      if (!refused.length) continue;
      found = true;
      if (!this.reassigned.has(i.id)) this.reassigned.set(i.id, `target ${refused[0].ip}${refused.length > 1 ? ` and ${refused.length - 1} more` : ''} no longer allowed by the policy (scope, exclusions changed since its launch)`);
    }
    // a reload during the check (its awaits): the scans read before it were judged by the old policy
    if (this.policyGeneration !== generation) return;
    this.policyChanged = found;
    this.policyCheckAt = now + POLICY_RECHECK_MS;
  }

  /**
   * A scan of ours still going when its region closes (a blackout begins; its scan windows close
   * with `scanWindowEnd: stop`) is canceled: the operator has said the region takes no scans now.
   * Its targets are requeued (not due until the region opens, they leave the queue with that reason
   * and are decided again then); those it had scanned are credited from the host list, as after
   * any cancel. A failed cancel is tried again in CLOSED_RETRY_MS.
   */
  private async stopClosed(): Promise<void> {
    const { store, budget, counters, clock, policy, log } = this.core;
    if (!policy.stopsScans) return;
    const now = clock.now();
    for (const i of await store.activeIntents()) {
      if (i.state !== 'running' || !i.scanRef || this.reassigned.has(i.id) || (this.closedRetryAt.get(i.id) ?? 0) > now) continue;
      const why = policy.stopReason(i.region, now);
      if (!why) continue;
      if (!budget.canCorrect()) return;
      const failed: { error?: unknown } = {};
      const targets = await this.cancelAndRequeue(i, `stopped: ${why}`, 'canceled', true, failed);
      if (failed.error !== undefined) {
        // (one that had ended is the poll's to record; tried no sooner either way)
        if (this.closedRetryAt.size > 10_000) this.closedRetryAt.clear();
        this.closedRetryAt.set(i.id, now + CLOSED_RETRY_MS);
        continue;
      }
      this.closedRetryAt.delete(i.id);
      if (!targets?.length) continue;
      counters.canceledClosed++;
      log.info({ intent: i.id, scanRef: i.scanRef, region: i.region, targets: targets.length }, `stopped scan ${i.scanRef}: ${why}; ${targets.length} target(s) requeued`);
      await this.settleRequeued(i, targets, `scan stopped: ${why}; requeued`);
    }
  }

  /**
   * address → (scan, device) for every target of our scans going or being launched: a launch whose
   * answer is still on the wire, or not confirmed yet (reconcile), is marked as a running scan is,
   * and canceled once its scan is known (cancelReassigned)
   */
  private async runningTargets(): Promise<Map<string, { intent: Intent; identityId: number }>> {
    const out = new Map<string, { intent: Intent; identityId: number }>();
    for (const i of await this.core.store.activeIntents()) {
      if (i.state !== 'launching' && (i.state !== 'running' || !i.scanRef)) continue;
      for (const t of await this.core.store.targets(i.id)) out.set(t.ip, { intent: i, identityId: t.identityId });
    }
    return out;
  }

  /**
   * A running scan one of whose target addresses went to another device would scan that device
   * if it has not reached the address yet (we cannot tell whether it has). Cancel it and put its
   * other targets back at the front of the queue, so they go out again at once without the lost
   * address: two calls, against a scan of the wrong machine.
   */
  async cancelReassigned(): Promise<void> {
    const { store, counters, budget } = this.core;
    await this.checkPolicy();
    await this.stopClosed();
    await this.lookUp();
    const now = this.core.clock.now();
    for (const [id, r] of this.cancelRetries) if (r.at <= now && !this.reassigned.has(id)) this.reassigned.set(id, r.why);
    // no status call first: within the cancel window a scan has rarely ended (setup, pickup and a
    // host's scan take longer); a cancel refused because it had leaves the scan to the regular poll,
    // one refused while it goes on is tried again (retryCancel)
    for (const [id, why] of this.reassigned) {
      const i = await store.intent(id);
      if (i?.state === 'launching') continue; // its scan not known yet: canceled once the launch is confirmed
      if (!i || i.state !== 'running' || !i.scanRef) {
        this.reassigned.delete(id);
        this.cancelRetries.delete(id);
        continue;
      }
      if (!budget.canCorrect()) return;
      this.reassigned.delete(id);
      const failed: { error?: unknown } = {};
      const targets = await this.cancelAndRequeue(i, why, 'canceled', true, failed);
      if (failed.error !== undefined) this.retryCancel(id, why, failed.error);
      else this.cancelRetries.delete(id);
      if (!targets?.length) continue; // it may have ended after all (the regular poll records how), or the end was refused
      counters.canceledReassigned++;
      this.core.log.info({ intent: id, scanRef: i.scanRef }, `canceled a running scan: ${why}`);
      await this.settleRequeued(i, targets, `scan canceled before it could reach the wrong device: ${why}; relaunching the others`);
    }
  }

  /**
   * What a cancel that put a scan's targets back in the queue leaves to do, whoever canceled: each
   * target's decision written, those the scan had already scanned credited (the host list), the
   * others decided again.
   */
  async settleRequeued(i: Intent, targets: IntentTarget[], reason: string, o: SettleOptions = {}): Promise<void> {
    const now = this.core.clock.now();
    for (const t of targets) await this.core.store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: o.givenUp ? 'not-scanned' : 'canceled', reason });
    if (o.credit !== false) await this.core.results.creditPartial(i, targets, o.givenUp ? 'given up' : 'canceled');
    await this.core.decide.requeued(targets.map((t) => t.bindingId));
  }

  /**
   * Targets whose address changed hands in a scan no poll has seen since launch: one list call
   * (a forced poll) says whether each scan is still queued behind others (cancel: its target would
   * be probed as someone else) or running (its first wave was reached at pickup: no cancel).
   */
  private async lookUp(): Promise<void> {
    if (!this.toLookUp.size || !this.core.budget.canCorrect(2)) return;
    const pending = [...this.toLookUp.values()];
    this.toLookUp.clear();
    // a correction, as the cancel is (budget.canCorrect): with the allowance down to its reserve, or
    // the pace's bucket empty, this call is what keeps the scan from probing the new holder (a scan
    // queued for hours behind others' starts with the old address)
    const answered = await this.core.follow.poll(true, true);
    const now = this.core.clock.now();
    for (const p of pending) {
      const i = await this.core.store.intent(p.intentId);
      if (!i || i.state !== 'running' || !i.scanRef || this.reassigned.has(i.id)) continue;
      // no answer (no call left in the window, a failed call): still a guess, asked again next pass
      if (!answered) this.toLookUp.set(`${p.intentId} ${p.ip}`, p);
      else if (await this.core.follow.mayNotHaveReached(i, now, p.ip, p.slack) && !this.flapping(i.region, now)) this.markForChange(i, p.why, now);
    }
  }

  /** A scan marked for cancel because a target's address changed hands or its target left: counted against its region (flapping). */
  private markForChange(i: Intent, why: string, now: number): void {
    this.reassigned.set(i.id, why);
    this.cancelsByRegion.set(i.region, [...this.recentCancels(i.region, now), now]);
  }

  private recentCancels(region: string, now: number): number[] {
    const recent = (this.cancelsByRegion.get(region) ?? []).filter((t) => t > now - FLAP_WINDOW_MS);
    if (recent.length) this.cancelsByRegion.set(region, recent);
    else this.cancelsByRegion.delete(region);
    // (said again each time the region reaches the cap anew)
    if (recent.length < FLAP_CANCELS) this.saidFlapping.delete(region);
    return recent;
  }

  /** Has `region` reached the cap (FLAP_CANCELS within FLAP_WINDOW_MS)? Nothing said or counted: flapping() does that, where a cancel is held back. */
  private atCap(region: string, now: number): boolean {
    return this.recentCancels(region, now).length >= FLAP_CANCELS;
  }

  /**
   * Have changes of hand and departures in `region` canceled FLAP_CANCELS scans within
   * FLAP_WINDOW_MS (no more such cancels there until the oldest ages out)? Said and counted once
   * each time the region reaches the cap.
   */
  private flapping(region: string, now: number): boolean {
    const recent = this.recentCancels(region, now);
    if (recent.length < FLAP_CANCELS) return false;
    if (!this.saidFlapping.has(region)) {
      this.saidFlapping.add(region);
      this.core.counters.cancelsHeldFlapping++;
      const until = new Date(recent[0] + FLAP_WINDOW_MS).toISOString();
      this.core.log.warn({ region, cancels: recent.length, until },
        `region ${region}: ${recent.length} scans canceled within ${FLAP_WINDOW_MS / 60_000} min because a target's address changed hands or its device left (a client flapping its lease?): no more such cancels there until ${until}; a probe of a new holder is said and counted at the scan's end`);
    }
    return true;
  }

  /**
   * Cancel a running scan and put its targets back in the queue, ready at once and not counted as
   * a failed attempt. Undefined when the cancel call failed (nothing changed); else the targets.
   */
  async cancelAndRequeue(i: Intent, why: string, state: 'canceled' | 'abandoned' = 'canceled', mayBeProbing = true, failed?: { error?: unknown }): Promise<IntentTarget[] | undefined> {
    try {
      await this.core.budget.call('cancel scan', 'cancel', () => this.core.scanner.cancel(i.scanRef!));
    } catch (err) {
      if (failed) failed.error = err instanceof FailedCall ? err.error : err;
      return undefined;
    }
    if (mayBeProbing) this.drainAfterCancel(i.region, i.appliance);
    return this.requeue(i, why, state);
  }

  /**
   * A reassignment cancel the scanner refused: tried again in CANCEL_RETRY_MS while the scan goes on
   * (a scan still queued on a console that stops only running ones starts soon, and would probe the
   * new holder), up to CANCEL_TRIES; not when the scan had ended (the poll records it). What a cancel
   * that never lands leaves is found at the scan's end (a target another device held: not credited,
   * counted as other-holder).
   */
  private retryCancel(id: string, why: string, error: unknown): void {
    const tries = (this.cancelRetries.get(id)?.tries ?? 0) + 1;
    if (error instanceof ScanEndedBeforeCancel || tries >= CANCEL_TRIES) {
      this.cancelRetries.delete(id);
      if (tries >= CANCEL_TRIES) this.core.log.warn({ intent: id, tries }, `gave up canceling a scan whose target changed hands (${why}): it may probe the new holder; its end says so`);
      return;
    }
    this.cancelRetries.set(id, { at: this.core.clock.now() + CANCEL_RETRY_MS, tries, why });
  }

  /**
   * The region of a scan just canceled on `appliance` (ours, or a range run: ranges.ts): the
   * appliance may probe on until it hears of the cancel, at its next contact with the platform:
   * cancelDrainS, or the appliance's listed polling interval (plus a little) when longer (Qualys
   * POLLING_INTERVAL can be 10 min and more).
   */
  drainAfterCancel(region: string, appliance: string | undefined): void {
    const { opts, appliances, clock } = this.core;
    const poll = appliance === undefined ? undefined : appliances.pollIntervalMs(appliance);
    const until = clock.now() + Math.max(opts.cancelDrainS * 1000, (poll ?? 0) + DRAIN_MARGIN_MS);
    this.draining.set(region, Math.max(this.draining.get(region) ?? 0, until));
  }

  /**
   * Does a canceled scan's appliance perhaps still probe `region`? Then the region takes no new
   * scan: on that appliance it would be a second scan, on another a second appliance in the region.
   */
  isDraining(region: string, now: number): boolean {
    const until = this.draining.get(region);
    if (until !== undefined && until <= now) this.draining.delete(region);
    return until !== undefined && until > now;
  }

  /**
   * End a running intent without a result; its targets go back to the queue, ready at once (none
   * when the end was refused). The caller has them decided again (decide.requeued) once it has
   * written what it did with them (its decisions, partial credits).
   */
  async requeue(i: Intent, why: string, state: 'canceled' | 'abandoned'): Promise<IntentTarget[]> {
    const now = this.core.clock.now();
    const targets = await this.core.store.targets(i.id);
    if (!(await this.core.store.endIntent(i.id, state, now, why, { notBefore: now, countAttempt: false }))) {
      transitionRefused(this.core, i.id, `ending it ${state} (${why})`);
      return [];
    }
    this.core.hooks.onScanEnd?.(i, { state, endedAt: now, targets: targets.length, scanned: 0, why });
    return targets;
  }

  /**
   * A scan that has not started long after launch sits behind other scans on a full (or offline)
   * appliance: its targets go stale while it waits. When a fresh appliance list confirms that,
   * cancel it and put the targets back in the queue: they go out again, re-checked, as soon as
   * an appliance of the region has room (maybe another one). A scan that had started and waits
   * again (its appliance went offline) keeps its progress and is left alone.
   */
  async requeueIfStuck(i: Intent): Promise<void> {
    const { appliances, opts, clock } = this.core;
    appliances.invalidate(i.appliance); // read the list again: it may be old
    await this.core.launch.refreshAppliances();
    const r = opts.regions.find((x) => x.name === i.region);
    const max = appliances.capacity(i.appliance, r?.appliances.find((a) => a.name === i.appliance)?.maxScans ?? 1, clock.now());
    const { online, load } = appliances.load(i.appliance, await this.core.store.activeIntents());
    if (online && load <= max) return; // it has its slot: about to start
    if (!this.core.budget.canSpend(true)) return;
    const why = `still waiting for ${i.appliance} ${Math.round((clock.now() - (i.launchedAt ?? i.createdAt)) / 60_000)} min after launch (${online ? `load ${load}/${max}` : 'offline'})`;
    // not started: its appliance hears of the cancel before it could pick the scan up
    const targets = await this.cancelAndRequeue(i, why, 'canceled', false);
    if (!targets?.length) return;
    this.core.counters.requeuedStuck++;
    this.core.log.info({ intent: i.id, scanRef: i.scanRef }, `canceled a queued scan: ${why}; targets requeued`);
    await this.settleRequeued(i, targets, `scan canceled before it started: ${why}; requeued`);
  }

  /** Cancel a running scan every target of which has left the network (cancelWhenAllLeft). */
  async cancelIfAllLeft(i: Intent): Promise<void> {
    const { store, inventory, budget } = this.core;
    const targets = await store.targets(i.id);
    let gone = true;
    for (const t of targets) {
      const b = await inventory.binding(t.bindingId);
      if (b && b.endAt === undefined) {
        gone = false;
        break;
      }
    }
    if (!gone || !budget.canSpend(false)) return;
    try {
      await budget.call('cancel scan', 'cancel', () => this.core.scanner.cancel(i.scanRef!));
    } catch {
      return;
    }
    const now = this.core.clock.now();
    this.drainAfterCancel(i.region, i.appliance);
    if (!(await store.endIntent(i.id, 'canceled', now, 'every target left the network'))) return transitionRefused(this.core, i.id, 'ending it canceled (every target left)');
    this.core.counters.canceledLeft++;
    for (const t of targets) {
      this.core.decide.recheck(t.bindingId, now);
      await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'canceled', reason: 'every target of the scan left' });
    }
  }
}
