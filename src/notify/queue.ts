/**
 * A bounded delivery queue with one worker: `push` never waits (the scheduler and the ingest call
 * it), the worker delivers in order and retries with exponential back-off, and a queue that
 * outgrows `maxQueue` (a receiver down for hours) drops its oldest events, counted.
 */
import type { Logger } from '../log.js';

export interface DeliveryCounters {
  /** events delivered */
  sent: number;
  /** attempts that failed and were retried */
  retries: number;
  /** events given up after their last attempt, or refused by the receiver */
  failed: number;
  /** events dropped because the queue was full */
  dropped: number;
  /** events waiting now */
  queued: number;
}

/** What one attempt came to: delivered, worth another try (after `afterMs` if the receiver said), or refused for good. */
export type Attempt = { ok: true } | { ok: false; retry: boolean; why: string; afterMs?: number };

export interface DeliveryOptions {
  maxQueue: number;
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
}

export class DeliveryQueue<T> {
  readonly counters: DeliveryCounters = { sent: 0, retries: 0, failed: 0, dropped: 0, queued: 0 };
  private readonly items: T[] = [];
  private running = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly name: string,
    private readonly attempt: (item: T) => Promise<Attempt>,
    private readonly opts: DeliveryOptions,
    private readonly log: Logger,
  ) {}

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    if (this.items.length > this.opts.maxQueue) {
      // the oldest waiting one goes (not the one being delivered now)
      this.items.splice(this.running && this.items.length > 1 ? 1 : 0, 1);
      if (this.counters.dropped++ === 0) this.log.warn(`notify ${this.name}: queue full (${this.opts.maxQueue}); dropping the oldest events`);
    }
    this.counters.queued = this.items.length;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.items.length && !this.closed) {
        const item = this.items[0];
        let tries = 0;
        for (;;) {
          tries++;
          let r: Attempt;
          try {
            r = await this.attempt(item);
          } catch (err) {
            r = { ok: false, retry: true, why: (err as Error).message };
          }
          if (r.ok) {
            this.counters.sent++;
            break;
          }
          if (!r.retry || tries >= this.opts.maxAttempts || this.closed) {
            this.counters.failed++;
            this.log.warn({ notify: this.name, attempts: tries }, `notify ${this.name}: gave up an event after ${tries} attempt(s): ${r.why}`);
            break;
          }
          this.counters.retries++;
          const backoff = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (tries - 1));
          const wait = Math.min(this.opts.maxBackoffMs, Math.max(backoff, r.afterMs ?? 0));
          this.log.debug({ notify: this.name, attempt: tries }, `notify ${this.name}: ${r.why}; retrying in ${Math.round(wait / 100) / 10} s`);
          await this.sleep(wait);
        }
        this.items.shift(); // the one just delivered or given up (drops never take the one in flight)
        this.counters.queued = this.items.length;
      }
    } finally {
      this.running = false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }

  /** Stop: what is queued is not delivered (a restart does not replay notifications). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
  }
}
