/**
 * What the scheduler may spend on scanner calls, and what a failed call means for the next ones.
 * Every call goes through `call()`: it is counted, and when it fails the scanner's own
 * FailureOutcome says what follows — `retry` (ordinary back-off by the caller), `wait` (no call
 * before a time the scanner names: a rate-limit block can last most of a day), `stop` (only an
 * operator can fix it: no call until the config is reloaded or the daemon restarted).
 */
import { MAX_WAIT_SEC, type Allowance, type FailureOutcome, type LastScanned, type ScannerCall } from '../scanners/types.js';
import { ScheduleSyncIncomplete } from '../scanners/failure.js';
import { errInfo, type SchedulerCore } from './core.js';
import { CLOCK_SKEW_MS, isNum, record, type Remembers } from './memory.js';

/** A scanner call failed; `outcome` is what the scanner says it means. */
export class FailedCall extends Error {
  constructor(readonly outcome: FailureOutcome, readonly error: unknown) {
    super(outcome.message);
  }
}

export interface ScannerBlock {
  /** no call before this time (epoch ms), when the scanner asked to wait */
  waitUntil?: number;
  /** why onsight stopped calling the scanner (only an operator can fix it) */
  stopped?: { at: number; code: string; message: string };
  /** per kind of call, no such call before this time (epoch ms): a wait that holds back that kind only (Qualys's host-list API, Tenable's launches at the active-scan limit) */
  callsHeldUntil?: Partial<Record<ScannerCall, number>>;
}

/** calls a launch leaves in the window for a look-up (a forced poll) and a cancel */
export const CORRECTION_CALLS = 2;

/** the pace saves a quiet night's calls for a week after the allowance last bound (a weekend's for the Monday) */
const BINDS_MEMORY_MS = 7 * 86_400_000;

/** below this many calls a day the allowance is scarce: rarer idle polls, confirmations and appliance reads */
export const SCARCE_CALLS_PER_DAY = 1000;

/** The pace as the store keeps it (memory.ts): level, calls saved, when the allowance last bound, when, and for which limit. */
interface PaceState { tokens: number; saved: number; boundAt?: number; at: number; limit: string }

/**
 * The pace of spending: a bucket that refills at the allowance's own rate (limit per window, as
 * the scanner's headers state it; nothing assumed when they do not), holding at most six hours'
 * worth. What a full bucket cannot hold (a quiet night, a weekend) is saved, up to another bucket,
 * for a week after the window's remaining count was last within a bucket of running out (the
 * allowance binds), and flows back at the same rate once calls are spent: the morning's arrivals
 * have it without a burst. An allowance that does not bind saves nothing: there the bucket alone
 * batches the launches (sim README, session 23). Every call takes one token. A launch waits until
 * the bucket holds what a scan costs in all (its launch, polls, confirmation: learned as calls per
 * launch so far), and other calls leave that much for it, so a scarce allowance is spread over
 * the day in fewer, larger launches instead of being spent by the morning's arrivals. Only for a
 * scarce allowance: with calls to spare, today's fast path.
 */
class Pace {
  private tokens?: number;
  private saved = 0;
  /** when the window's remaining count was last within a bucket of running out (the allowance binds) */
  private boundAt?: number;
  private at = 0;
  private limitKey = '';

  /** Tokens now (undefined: the scanner states no limit, so no pacing). */
  level(limit: number | undefined, windowSec: number | undefined, now: number, remaining?: number): number | undefined {
    if (limit === undefined || windowSec === undefined || !(limit > 0) || !(windowSec > 0)) return (this.tokens = undefined);
    windowSec = Math.min(windowSec, MAX_WAIT_SEC); // (a window past a day, as the scanners' own)
    const cap = this.cap(limit, windowSec);
    const key = `${limit}/${windowSec}`;
    const bindsNow = remaining !== undefined && remaining <= cap;
    if (this.tokens === undefined || key !== this.limitKey) {
      this.tokens = cap; // a new or changed limit: start full (the remaining count still bounds every call)
      this.limitKey = key;
      this.saved = 0;
      this.boundAt = bindsNow ? now : undefined;
    } else {
      // (a remaining count is as last reported, less our calls since: after a quiet night, the evening's)
      if (bindsNow) this.boundAt = now;
      // (a clock stepped back refills nothing)
      const inflow = Math.max(0, ((now - this.at) / (windowSec * 1000)) * limit);
      const drip = Math.min(this.saved, inflow);
      const level = this.tokens + inflow + drip;
      // what the bucket cannot hold is saved only where the allowance binds: else the day loses nothing
      const binds = this.boundAt !== undefined && now - this.boundAt < BINDS_MEMORY_MS;
      this.saved = Math.min(cap, this.saved - drip + (binds ? Math.max(0, level - cap) : 0));
      this.tokens = Math.min(cap, level);
    }
    this.at = now;
    return this.tokens;
  }

  cap(limit: number, windowSec: number): number {
    return Math.max(3, Math.min(limit, (limit * 21_600) / windowSec));
  }

  spend(): void {
    if (this.tokens !== undefined) this.tokens -= 1;
  }

  /** for the store (memory.ts) */
  state(): PaceState | undefined {
    return this.tokens === undefined ? undefined
      : { tokens: this.tokens, saved: this.saved, ...(this.boundAt !== undefined ? { boundAt: this.boundAt } : {}), at: this.at, limit: this.limitKey };
  }

  /**
   * The level before a restart (refilled since, at the next level()), unless this process has
   * paced calls already. Without it every restart starts full: up to a scarce allowance's six
   * hours' worth more to spend than the pace had left.
   */
  restore(s: PaceState): void {
    if (this.tokens !== undefined) return;
    this.tokens = s.tokens;
    this.saved = s.saved;
    this.boundAt = s.boundAt;
    this.at = s.at;
    this.limitKey = s.limit;
  }
}

export class Budget {
  /** the pace's level, kept across restarts (memory.ts) */
  readonly paceMemory: Remembers = {
    snapshot: () => this.pace.state() ?? null,
    merge: (data, now) => {
      if (data === null) return 'no pace yet';
      const d = record(data);
      const limit = typeof d?.limit === 'string' ? /^(\d{1,9})\/(\d{1,9})$/.exec(d.limit) : null;
      // (a level is at most the bucket's cap, and below zero by a few essential calls at most: a damaged one would stop every launch for days)
      const cap = limit && Number(limit[1]) > 0 && Number(limit[2]) > 0 ? this.pace.cap(Number(limit[1]), Number(limit[2])) : 0;
      if (!d || !limit || !cap || !isNum(d.tokens, -cap - 10, cap) || !isNum(d.at, 0, now + CLOCK_SKEW_MS)) return undefined;
      // (saved: at most the bucket's cap; absent in what a version before it wrote)
      if (d.saved !== undefined && !isNum(d.saved, 0, cap)) return undefined;
      if (d.boundAt !== undefined && !isNum(d.boundAt, 0, now + CLOCK_SKEW_MS)) return undefined;
      const saved = (d.saved as number | undefined) ?? 0;
      const boundAt = d.boundAt as number | undefined;
      this.pace.restore({ tokens: d.tokens, saved, ...(boundAt !== undefined ? { boundAt: Math.min(boundAt, now) } : {}), at: Math.min(d.at, now), limit: d.limit as string });
      return `the pace at ${d.tokens.toFixed(1)} call(s)${saved ? `, ${saved.toFixed(1)} saved` : ''} (limit ${d.limit} s)`;
    },
  };
  /** the failure that asked for a wait for every call (its untilMs): what a call refused meanwhile is told */
  private wait?: FailureOutcome;
  /** waits that hold back one kind of call only (its own API's limit: FailureOutcome.holds) */
  private readonly callWaits = new Map<ScannerCall, FailureOutcome>();
  /** calls an essential job will soon need at once (a skip's look and sync), which launches and other calls leave in the pace */
  private kept = 0;
  private stopped?: { at: number; code: string; message: string };
  private readonly pace = new Pace();

  constructor(private readonly core: SchedulerCore) {}

  /** The allowance's calls per day, when the scanner states its limit. */
  callsPerDay(): number | undefined {
    const a = this.core.scanner.allowance();
    return a.limit! > 0 && a.windowSec! > 0 ? (a.limit! * 86_400) / Math.min(a.windowSec!, MAX_WAIT_SEC) : undefined;
  }

  /** Fewer than SCARCE_CALLS_PER_DAY calls a day (as the scanner states its limit). */
  scarce(): boolean {
    const d = this.callsPerDay();
    return d !== undefined && d < SCARCE_CALLS_PER_DAY;
  }

  /** What one scan costs in calls, all told (launch, polls, confirmation, reads), as learned so far. */
  private scanCost(): number {
    const { launches, apiCalls } = this.core.counters;
    return launches >= 3 ? Math.min(6, Math.max(2, apiCalls / launches)) : 3;
  }

  /** The pace's tokens now (undefined: a plentiful allowance, or one the scanner does not state, is not paced). */
  private paceLevel(a: Allowance): number | undefined {
    return this.scarce() ? this.pace.level(a.limit, a.windowSec, this.core.clock.now(), a.remaining) : undefined;
  }

  /** Until when every call waits, as the scanner asked (0: none asked). */
  private get waitUntil(): number {
    return this.wait?.untilMs ?? 0;
  }

  /** The allowance, unless no call may be made now at all: stopped, or waiting out what the scanner asked for. */
  private open(): Allowance | undefined {
    if (this.stopped || this.core.clock.now() < this.waitUntil) return undefined;
    const a = this.core.scanner.allowance();
    return a.waitSec > 0 ? undefined : a;
  }

  /** May a call be made now? `essential` calls (launches, cancels) may dip into the reserve. */
  canSpend(essential: boolean): boolean {
    const a = this.open();
    if (!a) return false;
    if (!essential && a.remaining !== undefined && a.remaining <= this.core.opts.reserveCalls + this.kept) return false;
    // plentiful: today's fast path, no pace (the remaining count still keeps a reserve)
    const tokens = this.paceLevel(a);
    if (tokens !== undefined) {
      // other calls leave a scan's worth for the next launch (within what the bucket can hold)
      const keep = essential ? 1 : Math.min(this.scanCost() + this.kept, this.pace.cap(a.limit!, a.windowSec!) - 1) + 1;
      if (tokens < keep) return false;
    }
    return true;
  }

  /**
   * May a correction be made now: the look-up of a scan's state and its cancel, when a target's
   * address changed hands (or a target left) before the scan may have reached it. Held by the
   * window (a launch leaves CORRECTION_CALLS in it for them) and a wait the scanner asked for, not
   * by the pace: a look-up that took the bucket's last token held its cancel until the bucket
   * refilled (50 calls a day: 12 min, while the scan started and probed the new holder;
   * src/sim/README.md, session 25). The calls are still counted against the pace, which runs into
   * debt and holds the next launches instead; at most CORRECTION_CALLS of debt, so look-ups that
   * keep failing (a scanner answering 5xx) are not retried every pass until the window is spent.
   * `calls`: what the correction may still need (a look-up: itself and the cancel after it).
   */
  canCorrect(calls = 1): boolean {
    const a = this.open();
    if (!a || (a.remaining !== undefined && a.remaining < calls)) return false;
    const tokens = this.paceLevel(a);
    return tokens === undefined || tokens >= calls - CORRECTION_CALLS;
  }

  /**
   * May a scan be launched now: a call allowed, the pace has a whole scan's calls for it, and the
   * window keeps CORRECTION_CALLS after it. A launch that took the window's last call would leave
   * none to look up and cancel a scan whose target address changes hands while it waits behind
   * others' scans (fleet at 50 calls a day: launched at 50 of 50, the scan probed the new holders).
   */
  canLaunch(): boolean {
    // (launches held on their own, Tenable's active-scan limit: no batch made, no intent written, for a call refused here)
    if (this.heldCall('launch')) return false;
    if (!this.canSpend(true)) return false;
    const a = this.core.scanner.allowance();
    if (a.remaining !== undefined && a.remaining <= CORRECTION_CALLS + this.kept) return false;
    const tokens = this.paceLevel(a);
    return tokens === undefined || tokens >= Math.min(this.scanCost() + this.kept, this.pace.cap(a.limit!, a.windowSec!));
  }

  /**
   * Keep `n` calls, in the pace and in the window's remaining count, for an essential job due soon
   * that needs them at once (a range run's skip: its look, the schedule list, an update per
   * region): launches and other calls leave them. 0 releases them.
   */
  keep(n: number): void {
    this.kept = Math.max(0, n);
  }

  /**
   * May `n` calls be made now, one after the other (a schedule sync: a list, then a call per
   * change)? As canSpend, and the window and the pace hold all of them.
   */
  canSpendCalls(n: number, essential: boolean): boolean {
    if (!this.canSpend(essential)) return false;
    const a = this.core.scanner.allowance();
    if (a.remaining !== undefined && a.remaining < n + (essential ? 0 : this.core.opts.reserveCalls)) return false;
    const tokens = this.paceLevel(a);
    return tokens === undefined || tokens >= Math.min(n, this.pace.cap(a.limit!, a.windowSec!));
  }

  /** Calls one `call` made beyond its first (a sync's creates, updates and deletes): counted and paced like any. */
  spentExtra(n: number): void {
    for (let k = 0; k < n; k++) {
      this.core.counters.apiCalls++;
      this.pace.spend();
    }
  }

  /** The calls a host list of `n` addresses takes: one per batch the scanner sends (one when it does not say). */
  hostListCalls(n: number): number {
    const batch = this.core.scanner.hostListBatchSize;
    return batch ? Math.max(1, Math.ceil(n / batch)) : 1;
  }

  /**
   * The scanner's host list for `ips` (each once), counted and paced as the calls it makes, one per
   * batch; undefined, with no call made, when the window or the pace cannot hold all of them now. A
   * failure is thrown as `call`'s are (counted as one call: how many batches went is not known).
   */
  async hostList(what: string, ips: string[], essential = false): Promise<LastScanned[] | undefined> {
    const unique = [...new Set(ips)];
    // each address family in batches of its own (Qualys: ips and ipv6 apart)
    const v6 = unique.filter((ip) => ip.includes(':')).length;
    const calls = v6 && v6 < unique.length ? this.hostListCalls(unique.length - v6) + this.hostListCalls(v6) : this.hostListCalls(unique.length);
    if (!this.canSpendCalls(calls, essential)) return undefined;
    const list = await this.call(what, 'lastScanned', () => this.core.scanner.lastScanned(unique));
    this.spentExtra(calls - 1);
    return list;
  }

  /**
   * Make one scanner call; a failure is logged, applied (wait, stop) and rethrown as a FailedCall.
   * An `optional` call's failure is applied to nothing (a read the scheduler can do without: a path
   * or a permission it lacks says nothing of launches, and a vendor that limits each API apart,
   * as Qualys does, may hold that API back while launches and cancels may go on); its caller
   * waits on its own (FailedCall.outcome.untilMs).
   */
  async call<T>(what: string, which: ScannerCall, fn: () => Promise<T>, o: { optional?: boolean } = {}): Promise<T> {
    // its own API asked for a wait (holds: 'call'): refused here, no call made, nothing logged again
    if (this.heldCall(which)) {
      const held = this.callWaits.get(which)!;
      throw new FailedCall(held, new Error(held.message));
    }
    // stopped, or in a wait for every call: refused too, whatever the caller checked (a caller that
    // forgot called a denied account's API every pass, failed logins that can lock it)
    const blocked = this.blockedOutcome();
    if (blocked) throw new FailedCall(blocked, new Error(blocked.message));
    this.core.counters.apiCalls++;
    this.pace.spend();
    try {
      return await fn();
    } catch (err) {
      // (a sync stopped half-way: the failure that stopped it is the call's; what it did goes to the caller)
      const failure = err instanceof ScheduleSyncIncomplete ? err.failure : err;
      const outcome = this.bounded(this.outcome(failure, which));
      this.core.log.warn({ err: errInfo(failure), call: what, outcome: { launched: outcome.launched, next: outcome.next, untilMs: outcome.untilMs } },
        `scanner call ${what} failed${o.optional && outcome.next !== 'retry' ? ' (other calls go on: the scheduler does without it)' : ''}`);
      if (!o.optional) this.apply(outcome, which);
      throw new FailedCall(outcome, err);
    }
  }

  /** Why no call at all may go now (stopped, or a wait for every call), as the failure that said so; undefined when calls may go. */
  private blockedOutcome(): FailureOutcome | undefined {
    if (this.stopped) return { launched: 'no', next: 'stop', code: this.stopped.code, message: this.stopped.message };
    const w = this.wait;
    if (w && this.core.clock.now() < this.waitUntil) return { launched: 'no', next: 'wait', untilMs: this.waitUntil, code: w.code, message: w.message };
    return undefined;
  }

  /** The scanner's reading of a failure; a scanner that cannot say is taken to mean the worst that is safe. */
  private outcome(err: unknown, which: ScannerCall): FailureOutcome {
    try {
      return this.core.scanner.failureOutcome(err, which);
    } catch {
      return { launched: which === 'launch' ? 'unknown' : 'no', next: 'retry', code: errInfo(err).code ?? 'ONSIGHT_SCANNER', message: errInfo(err).message };
    }
  }

  /**
   * A wait past a day is a day: the next call asks again (past year 275760 a date threw where it was
   * logged, and the launch it answered was left 'launching'; callers keep targets back until it too)
   */
  private bounded(o: FailureOutcome): FailureOutcome {
    const most = this.core.clock.now() + MAX_WAIT_SEC * 1000;
    return o.untilMs !== undefined && !(o.untilMs <= most) ? { ...o, untilMs: most } : o;
  }

  private apply(o: FailureOutcome, which: ScannerCall): void {
    if (o.next === 'wait' && o.untilMs !== undefined && o.holds === 'call') {
      if (o.untilMs > (this.callWaits.get(which)?.untilMs ?? 0)) this.callWaits.set(which, o);
      this.core.log.warn({ code: o.code, call: which, until: new Date(o.untilMs).toISOString() }, `scanner asks to wait: no ${which} call before ${new Date(o.untilMs).toISOString()}; other calls go on (${o.message})`);
    } else if (o.next === 'wait' && o.untilMs !== undefined && o.untilMs > this.waitUntil) {
      this.wait = o;
      this.core.log.warn({ code: o.code, until: new Date(o.untilMs).toISOString() }, `scanner asks to wait: no call before ${new Date(o.untilMs).toISOString()} (${o.message})`);
    } else if (o.next === 'stop' && !this.stopped) {
      this.stopped = { at: this.core.clock.now(), code: o.code, message: o.message };
      this.core.log.error({ code: o.code }, `stopped calling the scanner until the config is reloaded (an account fixed on the platform) or onsight restarted (a new password: credentials are read at start): ${o.message}`);
    }
  }

  /** Is `which` held back by a wait of its own (FailureOutcome.holds) now? */
  private heldCall(which: ScannerCall): boolean {
    const held = this.callWaits.get(which);
    return held !== undefined && this.core.clock.now() < held.untilMs!;
  }

  /** Why calls are held back now, if they are. */
  block(): ScannerBlock {
    const out: ScannerBlock = {};
    const now = this.core.clock.now();
    if (now < this.waitUntil) out.waitUntil = this.waitUntil;
    if (this.stopped) out.stopped = { ...this.stopped };
    const held = [...this.callWaits].filter(([, o]) => now < o.untilMs!);
    if (held.length) out.callsHeldUntil = Object.fromEntries(held.map(([which, o]) => [which, o.untilMs!]));
    return out;
  }

  /** A reloaded config: an operator may have fixed what stopped us. */
  reset(): void {
    this.stopped = undefined;
  }
}
