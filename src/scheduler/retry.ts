/**
 * When a call that failed may go out again. The daemon passes every second, and a call that
 * bypasses the poll's pace (a reconcile list, a forced look-up, an overdue scan's look) was sent
 * again at each pass while the scanner failed: 60 calls a minute into an outage, draining the
 * window its recovery needs. Now: after a failure, wait `baseMs`, doubling with each failure in a
 * row, at most MAX_RETRY_MS; an answer resets it.
 */
export const MAX_RETRY_MS = 15 * 60_000;
/**
 * A failed scan list's first retry: soon, as a look-up decides a cancel before a queued scan
 * probes an address that changed hands (the appliance hears of a cancel only at its next poll)
 */
export const LIST_RETRY_MS = 10_000;

export class RetryAfterFailure {
  private failures = 0;
  private at = 0;

  constructor(private readonly baseMs: () => number) {}

  /** May the call go at `now`? */
  ready(now: number): boolean {
    return now >= this.at;
  }

  failed(now: number): void {
    this.at = now + Math.min(MAX_RETRY_MS, Math.max(1000, this.baseMs()) * 2 ** Math.min(this.failures++, 16));
  }

  answered(): void {
    this.failures = 0;
    this.at = 0;
  }
}
