/**
 * What the scheduler may spend on scanner calls, and what a failed call means for the next ones.
 * Every call goes through `call()`: it is counted, and when it fails the scanner's own
 * FailureOutcome says what follows — `retry` (ordinary back-off by the caller), `wait` (no call
 * before a time the scanner names: a rate-limit block can last most of a day), `stop` (only an
 * operator can fix it: no call until the config is reloaded or the daemon restarted).
 */
import type { FailureOutcome, ScannerCall } from '../scanners/types.js';
import { errInfo, type SchedulerCore } from './core.js';

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
}

export class Budget {
  private waitUntil = 0;
  private stopped?: { at: number; code: string; message: string };

  constructor(private readonly core: SchedulerCore) {}

  /** May a call be made now? `essential` calls (launches, cancels) may dip into the reserve. */
  canSpend(essential: boolean): boolean {
    if (this.stopped || this.core.clock.now() < this.waitUntil) return false;
    const a = this.core.scanner.allowance();
    if (a.waitSec > 0) return false;
    if (!essential && a.remaining !== undefined && a.remaining <= this.core.opts.reserveCalls) return false;
    return true;
  }

  /** Make one scanner call; a failure is logged, applied (wait, stop) and rethrown as a FailedCall. */
  async call<T>(what: string, which: ScannerCall, fn: () => Promise<T>): Promise<T> {
    this.core.counters.apiCalls++;
    try {
      return await fn();
    } catch (err) {
      const outcome = this.outcome(err, which);
      this.core.log.warn({ err: errInfo(err), call: what, outcome: { launched: outcome.launched, next: outcome.next, untilMs: outcome.untilMs } },
        `scanner call ${what} failed`);
      this.apply(outcome);
      throw new FailedCall(outcome, err);
    }
  }

  /** The scanner's reading of a failure; a scanner that cannot say is taken to mean the worst that is safe. */
  private outcome(err: unknown, which: ScannerCall): FailureOutcome {
    try {
      return this.core.scanner.failureOutcome(err, which);
    } catch {
      return { launched: which === 'launch' ? 'unknown' : 'no', next: 'retry', code: errInfo(err).code ?? 'ONSIGHT_SCANNER', message: errInfo(err).message };
    }
  }

  private apply(o: FailureOutcome): void {
    if (o.next === 'wait' && o.untilMs !== undefined && o.untilMs > this.waitUntil) {
      this.waitUntil = o.untilMs;
      this.core.log.warn({ code: o.code, until: new Date(o.untilMs).toISOString() }, `scanner asks to wait: no call before ${new Date(o.untilMs).toISOString()} (${o.message})`);
    } else if (o.next === 'stop' && !this.stopped) {
      this.stopped = { at: this.core.clock.now(), code: o.code, message: o.message };
      this.core.log.error({ code: o.code }, `stopped calling the scanner until the config is reloaded or onsight restarted: ${o.message}`);
    }
  }

  /** Why calls are held back now, if they are. */
  block(): ScannerBlock {
    const out: ScannerBlock = {};
    if (this.core.clock.now() < this.waitUntil) out.waitUntil = this.waitUntil;
    if (this.stopped) out.stopped = { ...this.stopped };
    return out;
  }

  /** A reloaded config: an operator may have fixed what stopped us. */
  reset(): void {
    this.stopped = undefined;
  }
}
