/**
 * The one shared record of what Qualys lets us spend, fed by the X-RateLimit-* and
 * X-Concurrency-Limit-* headers of every answer. Limits are per API (scan, appliance, ...), so
 * the record keeps one budget per API. `acquire()` is the gate every call passes: it keeps our
 * calls in flight under the concurrency limit, waits out a known block (ToWait), and once the
 * window is spent lets a single probe through (Qualys answers it, or tells us how long to wait).
 */
import { MAX_WAIT_SEC, type Allowance } from '../types.js';
import type { QualysApi } from './options.js';

interface Budget {
  limit?: number;
  windowSec?: number;
  /** calls left, as last reported minus the calls we started since */
  remaining?: number;
  /** when `remaining` was last reported */
  reportedAt: number;
  /** epoch ms before which the server will refuse calls */
  blockedUntil: number;
  concurrencyLimit?: number;
  concurrencyRunning?: number;
  inFlight: number;
  probing: boolean;
}

export interface AllowanceOptions {
  now?: () => number;
  /** calls in flight per API before any header told us the limit (default 1) */
  initialConcurrency?: number;
  /** concurrency slots left to other users of the subscription (default 0) */
  headroom?: number;
}

export interface Ticket {
  release(): void;
}

type HeaderBag = Record<string, string | string[] | undefined>;

/** A limit header's value: a number not below 0, else none (a negative window paced calls down to none, for good) */
function header(h: HeaderBag, name: string): number | undefined {
  const v = h[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || s.trim() === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export class QualysAllowance {
  private readonly budgets = new Map<QualysApi, Budget>();
  private readonly now: () => number;
  private readonly initialConcurrency: number;
  private readonly headroom: number;
  private waiters: (() => void)[] = [];

  constructor(o: AllowanceOptions = {}) {
    this.now = o.now ?? Date.now;
    this.initialConcurrency = Math.max(1, o.initialConcurrency ?? 1);
    this.headroom = Math.max(0, o.headroom ?? 0);
  }

  private budget(api: QualysApi): Budget {
    let b = this.budgets.get(api);
    if (!b) {
      b = { blockedUntil: 0, inFlight: 0, probing: false, reportedAt: 0 };
      this.budgets.set(api, b);
    }
    return b;
  }

  /**
   * The reported count, or nothing once it says nothing of now: a whole window has passed since
   * (the window slides: every call counted then has aged out), or a block set since has ended (the
   * server lets calls through again). Kept, a count of 0 read before a 409 held every poll, launch
   * and cancel for good: time never raised it, and only an answer does.
   */
  private remainingNow(b: Budget): number | undefined {
    if (b.remaining === undefined) return undefined;
    const now = this.now();
    const windowOver = b.windowSec !== undefined && now - b.reportedAt >= b.windowSec * 1000;
    const blockOver = b.blockedUntil > b.reportedAt && now >= b.blockedUntil;
    if (windowOver || blockOver) b.remaining = undefined;
    return b.remaining;
  }

  /** Calls we may have in flight on this API now. */
  concurrencyCap(api: QualysApi): number {
    const b = this.budget(api);
    return b.concurrencyLimit === undefined ? this.initialConcurrency : Math.max(1, b.concurrencyLimit - this.headroom);
  }

  /**
   * Waits until a call to `api` may start and reserves it. `maxWaitMs` bounds a known block:
   * a longer one throws via `onTooLong` (the caller turns it into a typed error).
   */
  async acquire(api: QualysApi, o: { signal?: AbortSignal; maxWaitMs: number; onTooLong: (waitMs: number) => Error }): Promise<Ticket> {
    for (;;) {
      o.signal?.throwIfAborted();
      const b = this.budget(api);
      const blockedMs = b.blockedUntil - this.now();
      if (blockedMs > 0) {
        if (blockedMs > o.maxWaitMs) throw o.onTooLong(blockedMs);
        await this.waitForChange(blockedMs, o.signal);
        continue;
      }
      if (b.inFlight >= this.concurrencyCap(api)) {
        await this.waitForChange(undefined, o.signal);
        continue;
      }
      const left = this.remainingNow(b);
      const spent = left !== undefined && left <= 0;
      if (spent && b.probing) {
        await this.waitForChange(undefined, o.signal);
        continue;
      }
      const probe = spent;
      if (probe) b.probing = true;
      b.inFlight++;
      if (b.remaining !== undefined) b.remaining--;
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          b.inFlight--;
          if (probe) b.probing = false;
          this.notify();
        },
      };
    }
  }

  /** Reads the limit headers of an answer (any status) into the budget of `api`. */
  update(api: QualysApi, headers: HeaderBag): void {
    const b = this.budget(api);
    const limit = header(headers, 'x-ratelimit-limit');
    const windowSec = header(headers, 'x-ratelimit-window-sec');
    const remaining = header(headers, 'x-ratelimit-remaining');
    const toWait = header(headers, 'x-ratelimit-towait-sec');
    const cLimit = header(headers, 'x-concurrency-limit-limit');
    const cRunning = header(headers, 'x-concurrency-limit-running');
    // (a limit or window of 0 says nothing a call can go by)
    if (limit !== undefined && limit > 0) b.limit = limit;
    if (windowSec !== undefined && windowSec > 0) b.windowSec = Math.min(windowSec, MAX_WAIT_SEC);
    // our other calls still in flight will each spend one more
    if (remaining !== undefined) {
      b.remaining = Math.max(0, remaining - Math.max(0, b.inFlight - 1));
      b.reportedAt = this.now();
    }
    if (toWait !== undefined && toWait > 0) this.block(api, toWait);
    if (cLimit !== undefined && cLimit > 0) b.concurrencyLimit = cLimit;
    if (cRunning !== undefined) b.concurrencyRunning = cRunning;
    this.notify();
  }

  /** Nobody calls `api` for `sec` seconds (a 409 told us so). */
  block(api: QualysApi, sec: number): void {
    const b = this.budget(api);
    b.blockedUntil = Math.max(b.blockedUntil, this.now() + Math.min(sec, MAX_WAIT_SEC) * 1000);
    this.notify();
  }

  snapshot(api: QualysApi): Allowance {
    const b = this.budget(api);
    return {
      remaining: this.remainingNow(b),
      limit: b.limit,
      windowSec: b.windowSec,
      waitSec: Math.max(0, (b.blockedUntil - this.now()) / 1000),
      concurrencyLimit: b.concurrencyLimit,
      concurrencyRunning: b.concurrencyRunning,
    };
  }

  /** Wakes every waiter (e.g. on close, so they see the abort). */
  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private waitForChange(timeoutMs: number | undefined, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.push(done);
      if (timeoutMs !== undefined) timer = setTimeout(done, Math.max(1, timeoutMs));
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
