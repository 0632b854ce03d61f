/**
 * Following running scans: one list call for all of them, made only when it is worth its API
 * cost (queued work waits for a scan that has likely ended, by the durations of earlier scans),
 * then each scan's state handed on — finished and failed scans to the results, stuck ones to the
 * canceler. A scan that never ends (a state the scanner does not explain, a scan it forgot) is
 * looked up once more after `maxScanAgeS`, then given up and its targets requeued. Owns when the
 * scans were last polled, the state each was last seen in, and how long scans take.
 */
import type { ScanStatus } from '../scanners/types.js';
import { ScanEndedBeforeCancel } from '../scanners/failure.js';
import type { Intent } from './queue.js';
import { ScanDurations } from './durations.js';
import { hostsInParallel, launchedAfter, startingHostsInParallel, type SchedulerCore } from './core.js';
import { CLOCK_SKEW_MS, isNum, record, type Remembers } from './memory.js';
import { LIST_RETRY_MS, RetryAfterFailure } from './retry.js';

/** launch orders and scan states kept across a restart: the latest (running scans are far fewer) */
const ORDER_SAVED = 1000;
/** an overdue scan's cancel is tried at this many polls before it is given up without one */
const GIVE_UP_CANCEL_TRIES = 5;
/** the states a scan's last poll can leave in `lastState` ('paused': started, then waiting again) */
const SCAN_STATES = new Set<string>(['submitted', 'queued', 'running', 'paused', 'finished', 'error', 'canceled', 'unknown']);

export class Follower {
  private nextPollAt = 0;
  private lastPollAt = 0;
  /** how long our scans took, by size (kept across restarts: memory.ts) */
  readonly durations = new ScanDurations();
  /** the state each running scan was last seen in (a scan still queued has reached none of its targets) */
  private readonly lastState = new Map<string, ScanStatus['state']>();
  /** target count per running intent (for the durations of scans of its size) */
  private readonly sizes = new Map<string, number>();
  /** each running scan's targets in the order it was launched with, and when */
  private readonly order = new Map<string, Map<string, number>>();
  private readonly launchedAt = new Map<string, number>();
  /**
   * `order`, kept across restarts (memory.ts; the latest ORDER_SAVED scans): without it a scan
   * launched before a restart has its targets' places unknown, taken as its last, and a reassigned
   * address cancels it even once the scan has surely passed it
   */
  readonly orderMemory: Remembers = {
    // scans launched within maxScanAgeS (an older one is given up; one that ended is dropped at its end)
    snapshot: (now) => Object.fromEntries([...this.order].filter(([id]) => (this.launchedAt.get(id) ?? 0) >= now - this.core.opts.maxScanAgeS * 1000)
      .slice(-ORDER_SAVED).map(([id, m]) => [id, { at: this.launchedAt.get(id), ips: [...m.keys()] }])),
    merge: (data, now) => {
      const d = record(data);
      const ok = (x: unknown) => {
        const e = record(x);
        return !!e && isNum(e.at, 0, now + CLOCK_SKEW_MS) && Array.isArray(e.ips) && e.ips.length <= 100_000 && e.ips.every((ip) => typeof ip === 'string');
      };
      if (!d || Object.keys(d).length > ORDER_SAVED || !Object.values(d).every(ok)) return undefined;
      let n = 0;
      for (const [id, e] of Object.entries(d as Record<string, { at: number; ips: string[] }>)) {
        if (this.order.has(id)) continue;
        this.order.set(id, new Map(e.ips.map((ip, k) => [ip, k])));
        this.launchedAt.set(id, e.at);
        n++;
      }
      return `the launch order of ${n} scan(s)`;
    },
  };
  /**
   * When the scans were last and will next be polled, and the state each was last seen in, kept
   * across restarts (memory.ts): without it a fresh scheduler polls at once (its last poll "never")
   * and knows no scan's state, so a scarce allowance spends a call, and scans queued behind others'
   * nightly scans that the rare polls had left to start are canceled as stuck (src/sim/README.md,
   * session 16)
   */
  readonly pollMemory: Remembers = {
    snapshot: () => ({ next: this.nextPollAt, last: this.lastPollAt, states: Object.fromEntries([...this.lastState].slice(-ORDER_SAVED)) }),
    merge: (data, now) => {
      const d = record(data), states = record(d?.states);
      if (!d || !isNum(d.next, 0, now + 30 * 86_400_000) || !isNum(d.last, 0, now + CLOCK_SKEW_MS) || !states
        || Object.keys(states).length > ORDER_SAVED || !Object.values(states).every((x) => typeof x === 'string' && SCAN_STATES.has(x))) return undefined;
      if (this.lastPollAt === 0) {
        // (no later than the longest interval a poll sets: a damaged "next" would stop the routine polls for up to 30 days)
        this.nextPollAt = Math.min(d.next, now + 4 * this.core.opts.pollIntervalS * 1000);
        this.lastPollAt = Math.min(d.last, now);
      }
      let n = 0;
      for (const [id, state] of Object.entries(states)) if (!this.lastState.has(id)) (this.lastState.set(id, state as ScanStatus['state']), n++);
      return `the last poll (${new Date(Math.min(d.last, now)).toISOString()}) and the states of ${n} scan(s)`;
    },
  };
  /** polls in a row that did not list the scan */
  private readonly missing = new Map<string, number>();
  /** the clock skew was said (sayClockAhead) */
  private saidAhead = false;
  /** scans past maxScanAgeS already looked up once (the next poll gives them up) */
  private readonly overdue = new Set<string>();
  /** give-ups whose cancel failed so far (intent id → tries): the scan may go on, so it is not abandoned yet */
  private readonly giveUpCancelTries = new Map<string, number>();
  /** after a failed list, when the next may go (forced and overdue looks included) */
  private readonly listRetry = new RetryAfterFailure(LIST_RETRY_MS);
  /** scans a poll found waiting for a slot: their durations include the wait (not for parallelism.ts) */
  private readonly waitedForSlot = new Set<string>();

  constructor(private readonly core: SchedulerCore) {}

  /** How long our scans of about `targets` targets took, at quantile q (0 before three finished). */
  durationMs(targets: number, q: number): number {
    return this.durations.count >= 3 ? this.durations.quantile(targets, q) : 0;
  }

  /**
   * Could the scan still be before one of its targets? While the scanner last said it was queued
   * (behind other scans on the appliance), or the appliance may not have picked it up (`pickupS`
   * after launch), surely. The first `hostsInParallel` targets start when it is picked up, so not
   * after that; targets beyond the first wave of hosts scanned in
   * parallel start later, so up to 30% of a typical scan's duration, too. Later, the target has
   * most likely been scanned already, and canceling would throw that work away. `slack`: the share
   * of a typical scan added as a safety margin (a target's place is an estimate).
   */
  async mayNotHaveReached(i: Intent, now: number, ip?: string, slack = 0.3): Promise<boolean> {
    const seen = this.lastState.get(i.id);
    if (seen === 'submitted' || seen === 'queued') return true;
    const n = await this.size(i);
    const typical = this.durations.count >= 3 ? this.durations.typical(n) : 0;
    const pickup = this.core.appliances.pickupMs(i.appliance, this.core.opts.pickupS);
    // the scan takes its targets in the order sent, in waves: the k-th of n starts about k/n into
    // it, so a target late in a long scan (a backlog batch) may be reached long after the first
    // wave; a target whose place is not known (a scan launched before a restart) may be reached
    // as late as the scan's end
    const index = ip === undefined ? 0 : this.order.get(i.id)?.get(ip) ?? n - 1;
    const age = now - (i.launchedAt ?? i.createdAt);
    // the first wave (hostsInParallel targets) starts when the appliance picks the scan up: once a
    // poll saw it running, or pickup is past, those targets have been reached
    if (index < hostsInParallel(this.core)) return seen === undefined && age < pickup;
    const reach = typical * Math.min(1, (index + 1) / Math.max(1, n));
    return age < Math.max(pickup, pickup + reach + slack * typical);
  }

  /**
   * Is the answer of mayNotHaveReached for this first-wave target a guess? It is when no poll has
   * seen the scan since launch and pickup has passed: the appliance most likely started it, but a
   * scan queued behind others' (a night of server scans) starts only when a slot frees, hours
   * later, and a poll would tell.
   */
  async unsure(i: Intent, now: number, ip: string): Promise<boolean> {
    if (this.lastState.has(i.id)) return false;
    const index = this.order.get(i.id)?.get(ip);
    if (index === undefined || index >= hostsInParallel(this.core)) return false;
    return now - (i.launchedAt ?? i.createdAt) >= this.core.appliances.pickupMs(i.appliance, this.core.opts.pickupS);
  }

  private async size(i: Intent): Promise<number> {
    let n = this.sizes.get(i.id);
    if (n === undefined) {
      n = (await this.core.store.targets(i.id)).length;
      if (this.sizes.size > 10_000) this.sizes.clear();
      this.sizes.set(i.id, n);
    }
    return n;
  }

  /** A scan just launched with these targets, in this order. */
  launched(intentId: string, ips: string[]): void {
    if (this.order.size > 10_000) (this.order.clear(), this.launchedAt.clear());
    this.order.set(intentId, new Map(ips.map((ip, k) => [ip, k])));
    this.launchedAt.set(intentId, this.core.clock.now());
  }

  /** A scan ended well at `endedAt`: learn its duration. */
  async ended(i: Intent, endedAt: number): Promise<void> {
    if (i.launchedAt !== undefined && endedAt > i.launchedAt) {
      const n = await this.size(i), ms = endedAt - i.launchedAt;
      this.durations.add(ms, n);
      if (!this.waitedForSlot.has(i.id)) this.learnParallelism(n, ms);
    }
    this.waitedForSlot.delete(i.id);
    this.sizes.delete(i.id);
    this.order.delete(i.id);
    this.launchedAt.delete(i.id);
  }

  /** A scan that did not wait for a slot: what its duration says of the hosts scanned at once (logged when the belief moves). */
  private learnParallelism(n: number, ms: number): void {
    const { parallelism, opts, log } = this.core;
    const start = startingHostsInParallel(this.core);
    const before = parallelism.value(start);
    parallelism.add(n, ms, start);
    const after = parallelism.describe(start);
    if (after.value !== before && opts.learnHostsInParallel) log.info({ hostsInParallel: after.value, start, configured: opts.hostsInParallel, steps: after.steps }, `hosts scanned at once taken as ${after.value}: ${after.how}`);
  }

  private pollIntervalMs(): number {
    const a = this.core.scanner.allowance();
    let f = 1;
    if (a.remaining !== undefined && a.limit) {
      const share = a.remaining / a.limit;
      if (share < 0.2) f = 4;
      else if (share < 0.5) f = 2;
    }
    return this.core.opts.pollIntervalS * 1000 * f;
  }

  /**
   * Running scans that queued work waits for: a region with ready targets has no room because of
   * them (its own scans, or scans on the appliances it could use, or the subscription-wide cap).
   */
  private async blockingScans(running: Intent[], now: number): Promise<Intent[]> {
    const { opts, store } = this.core;
    const ready = await store.readyRegions(now, opts.regions.map((r) => r.name));
    if (ready.length === 0) return [];
    if (running.length >= (opts.maxRunningScans ?? Infinity)) return running;
    const out = new Set<Intent>();
    for (const name of ready) {
      const r = opts.regions.find((x) => x.name === name)!;
      const apps = new Set(r.appliances.map((a) => a.name));
      for (const i of running) if (i.region === name || apps.has(i.appliance)) out.add(i);
    }
    return [...out];
  }

  /**
   * Is a status call worth its API cost now? Only when queued work waits for a running scan and,
   * by the distribution of past scan durations, one of those scans has likely ended since the
   * last call: the chances that each ended since then add up to 70% or more. Scans older than
   * every learned duration (every scan, before three have ended) count as more and more likely
   * the longer we wait, and never wait longer than the idle interval (idlePollS; six times it
   * under a scarce allowance). With nothing waiting, a call every idlePollS records results (they
   * keep their real end time).
   */
  private async pollWorthwhile(running: Intent[], now: number): Promise<boolean> {
    const blocking = await this.blockingScans(running, now);
    // with nothing waiting, a poll only records results: a scarce allowance does that a sixth as often
    const idleMs = (this.core.opts.idlePollS ?? 60 * this.core.opts.pollIntervalS) * 1000 * (this.core.budget.scarce() ? 6 : 1);
    if (blocking.length === 0) {
      if (now - this.lastPollAt >= idleMs) return true;
      // Nothing waits, but an operator reading `onsight scans` (and the notifications) should learn
      // of an end soon after it, not an idle interval later: one call when a scan has likely ended
      // by the learned durations. Scans already past every learned duration wait for the idle call;
      // a scarce allowance keeps to the idle call alone.
      if (this.core.budget.scarce() || this.durations.count < 3) return false;
      return (await this.endChance(running, now, true)) >= 0.7;
    }
    if (now - this.lastPollAt >= idleMs) return true;
    return (await this.endChance(blocking, now, false)) >= 0.7;
  }

  /**
   * The summed chances that each scan ended since the last call, by the learned durations. A scan
   * older than every learned duration adds more the longer we wait (or nothing, with `freshOnly`),
   * at a rate that falls as it ages (a heavy tail's: one that ran on this long may run on as long
   * again), so a few scans that overrun by hours are not looked up every minute.
   */
  private async endChance(scans: Intent[], now: number, freshOnly: boolean): Promise<number> {
    const interval = this.pollIntervalMs();
    // (before three scans have ended, every scan is taken as older than any learned)
    const learned = this.durations.count >= 3;
    let chance = 0;
    for (const i of scans) {
      const start = i.launchedAt ?? i.createdAt;
      const size = await this.size(i);
      const f0 = learned ? this.durations.cdf(this.lastPollAt - start, size) : 1;
      const f1 = learned ? this.durations.cdf(now - start, size) : 1;
      // (unlearned: at the pace of the polls while the scan is young, as a scan of any length may end)
      if (f0 >= 1) chance += freshOnly ? 0 : (now - this.lastPollAt) / Math.max((learned ? 5 : 1) * interval, (now - start) / 4);
      else chance += (f1 - f0) / (1 - f0);
    }
    return chance;
  }

  /** Running scans past their maximum age and not yet looked up: they are worth a call of their own. */
  private dueForLookup(running: Intent[], now: number): boolean {
    const max = this.core.opts.maxScanAgeS * 1000;
    return running.some((i) => now - (i.launchedAt ?? i.createdAt) >= max && !this.overdue.has(i.id));
  }

  /**
   * One list call for all running scans; record results; true when the scanner answered.
   * `correction`: the call decides whether a scan must be canceled before it probes an address
   * that changed hands (cancel.ts look-ups), so it is held as the cancel itself is: by the window,
   * not the pace (budget.canCorrect).
   */
  async poll(force = false, correction = false): Promise<boolean> {
    const { clock, store, opts, budget } = this.core;
    const now = clock.now();
    const running = (await store.activeIntents()).filter((i) => i.state === 'running' && i.scanRef);
    if (running.length === 0 || !(correction ? budget.canCorrect() : budget.canSpend(false))) return false;
    // (after a failed list, not even a forced or overdue look goes before its retry time)
    if (!this.listRetry.ready(now)) return false;
    const lookup = this.dueForLookup(running, now);
    if (!force && !lookup && now < this.nextPollAt) return false;
    if (!force && !lookup && opts.adaptivePolling && !(await this.pollWorthwhile(running, now))) return false;
    this.nextPollAt = now + this.pollIntervalMs();
    this.lastPollAt = now;
    let statuses: ScanStatus[];
    const late = this.core.late;
    try {
      // cluster mode: the same one call lists by launch time, so a deposed leader's late launch is in it too
      const since = Math.min(late.since(), ...running.map((i) => (i.launchedAt ?? i.createdAt) - 10 * 60_000));
      statuses = await budget.call('list scans (poll)', 'listScans', () => this.core.scanner.listScans(late.enabled
        ? { launchedAfter: launchedAfter(this.core, since) } : { scanRefs: running.map((i) => i.scanRef!) }));
    } catch {
      this.listRetry.failed(now);
      return false;
    }
    this.listRetry.answered();
    if (late.enabled) statuses = await this.lookUpUnlisted(running, statuses);
    await late.inspect(statuses);
    const byRef = new Map(statuses.map((s) => [s.scanRef, s]));
    for (const i of running) this.core.scannerClock.note(i.id, i.launchedAt, byRef.get(i.scanRef!)?.launchedAt);
    this.sayClockAhead();
    this.learnCapacity(running, byRef, now);
    for (const i of running) {
      const st = byRef.get(i.scanRef!);
      if (!st) {
        const n = (this.missing.get(i.id) ?? 0) + 1;
        this.missing.set(i.id, n);
        if (n >= 3) await this.forget(i, () => this.core.results.finishFailed(i, 'error', 'scan no longer listed by the scanner'));
        else await this.giveUpIfOverdue(i, now, 'not listed');
        continue;
      }
      this.missing.delete(i.id);
      if (this.lastState.size > 10_000) this.lastState.clear();
      const before = this.lastState.get(i.id);
      if (st.state === 'unknown' && before !== 'unknown') {
        this.core.log.warn({ intent: i.id, scanRef: st.scanRef }, `scan ${st.scanRef} is in a state onsight does not know; it is given up ${Math.round(opts.maxScanAgeS / 3600)} h after launch unless it ends`);
      }
      this.lastState.set(i.id, before === 'running' && st.state !== 'running' && st.state !== 'unknown' ? 'paused' : st.state); // once started, never "not started" again
      if (st.state === 'finished') await this.forget(i, () => this.core.results.finishOk(i, st));
      else if (st.state === 'error' || st.state === 'canceled') await this.forget(i, () => this.core.results.finishFailed(i, st.state as 'error' | 'canceled', `scan ended ${st.state}`));
      else if (await this.giveUpIfOverdue(i, now, st.state)) continue;
      else if ((st.state === 'queued' || st.state === 'submitted') && this.lastState.get(i.id) !== 'paused'
        && now - (i.launchedAt ?? i.createdAt) > 2 * this.core.appliances.pickupMs(i.appliance, opts.pickupS)) {
        await this.core.cancel.requeueIfStuck(i);
      } else if (opts.cancelWhenAllLeft) await this.core.cancel.cancelIfAllLeft(i);
    }
    return true;
  }

  /** Said once while our clock runs over 2 min ahead of the scanner's (learned from our scans' launch times: skew.ts). */
  private sayClockAhead(): void {
    const ahead = this.core.scannerClock.aheadMs();
    if (ahead <= 120_000 || this.saidAhead) {
      if (ahead <= 60_000) this.saidAhead = false;
      return;
    }
    this.saidAhead = true;
    this.core.log.warn({ aheadS: Math.round(ahead / 1000) },
      `this node's clock runs ${Math.round(ahead / 1000)} s ahead of the scanner's (the launch times it lists for our scans): lists by launch time reach back that much further; check NTP`);
  }

  /**
   * Running scans of ours that a list by launch time left out, looked up by reference (one more
   * call, when one can be spent) before they count as missing: our clock may run ahead of the
   * scanner's by more than the list's slack (skew.ts learns by how much from what this finds).
   */
  private async lookUpUnlisted(running: Intent[], statuses: ScanStatus[]): Promise<ScanStatus[]> {
    const listed = new Set(statuses.map((s) => s.scanRef));
    const unlisted = running.filter((i) => !listed.has(i.scanRef!));
    if (unlisted.length === 0 || !this.core.budget.canSpend(false)) return statuses;
    try {
      const found = await this.core.budget.call('list scans (left out by launch time)', 'listScans', () => this.core.scanner.listScans({ scanRefs: unlisted.map((i) => i.scanRef!) }));
      return [...statuses, ...found.filter((s) => !listed.has(s.scanRef))];
    } catch {
      return statuses;
    }
  }

  /**
   * What a poll tells of the appliances' slots: our scans found running on an appliance ran at
   * once (it has that many slots at least); one of ours still queued after the appliance surely
   * polled waits for a slot, so the appliance list is read again at the next launch pass, and
   * shows how many scans fill it (appliances.ts).
   */
  private learnCapacity(running: Intent[], byRef: Map<string, ScanStatus>, now: number): void {
    const book = this.core.appliances;
    const per = new Map<string, { running: number; waiting: string[] }>();
    for (const i of running) {
      const st = byRef.get(i.scanRef!);
      if (!st) continue;
      const p = per.get(i.appliance) ?? { running: 0, waiting: [] };
      per.set(i.appliance, p);
      const before = this.lastState.get(i.id);
      if (st.state === 'running') p.running++;
      else if ((st.state === 'queued' || st.state === 'submitted') && before !== 'running' && before !== 'paused'
        && now - (i.launchedAt ?? i.createdAt) > book.pickupMs(i.appliance, this.core.opts.pickupS)) {
        p.waiting.push(i.scanRef!);
        if (this.waitedForSlot.size > 10_000) this.waitedForSlot.clear();
        this.waitedForSlot.add(i.id);
      }
    }
    for (const [name, p] of per) {
      book.sawRunning(name, p.running);
      if (p.waiting.length) book.sawWaiting(name, p.waiting);
    }
  }

  private forget(i: Intent, end: () => Promise<void>): Promise<void> {
    this.overdue.delete(i.id);
    this.giveUpCancelTries.delete(i.id);
    return end();
  }

  /**
   * A scan past maxScanAgeS: the first poll after that only notes it (the call was made for it);
   * the next one gives it up — cancel it if the scanner lets us, requeue its targets either way.
   */
  private async giveUpIfOverdue(i: Intent, now: number, state: string): Promise<boolean> {
    const age = now - (i.launchedAt ?? i.createdAt);
    if (age < this.core.opts.maxScanAgeS * 1000) return false;
    if (!this.overdue.has(i.id)) {
      if (this.overdue.size > 10_000) this.overdue.clear();
      this.overdue.add(i.id);
      return false;
    }
    const why = `scan ${i.scanRef} still ${state} ${Math.round(age / 3_600_000)} h after launch: given up`;
    const failed: { error?: unknown } = {};
    const canceled = this.core.budget.canSpend(true) ? await this.core.cancel.cancelAndRequeue(i, why, 'abandoned', true, failed) : undefined;
    // it ended after all (after the poll that found it overdue): the next poll records its end and results
    if (failed.error instanceof ScanEndedBeforeCancel) return false;
    if (canceled === undefined) {
      // not canceled (the call failed, or no call left): the scan may go on, and abandoned now it would
      // go on untracked beside its targets' relaunch; tried again at the next polls, then given up anyway
      const tries = (this.giveUpCancelTries.get(i.id) ?? 0) + 1;
      if (tries < GIVE_UP_CANCEL_TRIES) {
        if (this.giveUpCancelTries.size > 10_000) this.giveUpCancelTries.clear();
        this.giveUpCancelTries.set(i.id, tries);
        return false;
      }
      this.core.log.warn({ intent: i.id, scanRef: i.scanRef, tries }, `scan ${i.scanRef}: the give-up's cancel failed ${tries} times; given up without it (the scan may still run on ${i.appliance})`);
    }
    this.giveUpCancelTries.delete(i.id);
    this.overdue.delete(i.id);
    this.lastState.delete(i.id);
    this.missing.delete(i.id);
    const targets = canceled ?? await this.core.cancel.requeue(i, why, 'abandoned');
    if (targets.length === 0) return true; // the end was refused (counted and logged)
    this.core.counters.givenUp++;
    this.core.log.warn({ intent: i.id, scanRef: i.scanRef, state }, `${why}; ${targets.length} target(s) requeued`);
    await this.core.cancel.settleRequeued(i, targets, `${why}; requeued`, { givenUp: true });
    return true;
  }
}
