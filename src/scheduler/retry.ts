/**
 * When a call that failed may go out again. The daemon passes every second, and a call that
 * bypasses the poll's pace (a reconcile list, a forced look-up, an overdue scan's look, a range
 * run's list or cancel) was sent again at each pass while the scanner failed: 60 calls a minute
 * into an outage, draining the window its recovery needs. Now: after a failure, wait a base time,
 * doubling with each failure in a row, up to a most; an answer forgets the failures.
 */
export const MAX_RETRY_MS = 15 * 60_000;
/**
 * A failed scan list's first retry: soon, as a look-up decides a cancel before a queued scan
 * probes an address that changed hands (the appliance hears of a cancel only at its next poll)
 */
export const LIST_RETRY_MS = 10_000;

/** The next try after a failure: `baseMs` after the first, twice the last wait after each one more, at most `maxMs`. */
export interface Retry {
  at: number;
  waitMs: number;
}

export function nextRetry(last: Retry | undefined, now: number, baseMs: number, maxMs = MAX_RETRY_MS): Retry {
  const waitMs = Math.min(maxMs, last ? 2 * last.waitMs : Math.max(1000, baseMs));
  return { at: now + waitMs, waitMs };
}

/** One call's retries (nextRetry), for a phase that makes it from one place. */
export class RetryAfterFailure {
  private last?: Retry;

  constructor(private readonly baseMs: number) {}

  /** May the call go at `now`? */
  ready(now: number): boolean {
    return now >= (this.last?.at ?? 0);
  }

  failed(now: number): void {
    this.last = nextRetry(this.last, now, this.baseMs);
  }

  answered(): void {
    this.last = undefined;
  }
}
