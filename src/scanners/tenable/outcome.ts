/** Every Tenable failure in the seam's words (FailureOutcome); the scheduler decides from this alone. */
import { OnsightError } from '../../errors.js';
import type { FailureOutcome, ScannerCall } from '../types.js';
import { TenableError } from './errors.js';

export function tenableFailureOutcome(err: unknown, call: ScannerCall, now: number = Date.now()): FailureOutcome {
  const launch = call === 'launch';
  const message = err instanceof Error ? err.message : String(err);
  const out = (launched: FailureOutcome['launched'], next: FailureOutcome['next'], code: string, extra: Partial<FailureOutcome> = {}): FailureOutcome =>
    ({ launched: launch ? launched : 'no', next, code, message, ...extra });
  if (err instanceof TenableError) {
    const launched = err.o.ambiguous ? 'unknown' : 'no';
    if (err.o.next === 'wait') {
      // a 429 is refused before it runs: nothing was launched
      const sec = err.o.retryAfterSec;
      return sec && sec > 0 ? out('no', 'wait', err.code, { untilMs: now + Math.ceil(sec * 1000) }) : out('no', 'retry', err.code);
    }
    return out(launched, err.o.next, err.code);
  }
  if (!(err instanceof OnsightError)) return out('unknown', 'retry', 'ONSIGHT_SCANNER');
  // nothing sent: no keys to send, targets refused by our own scope check, a launch we refused
  return out('no', err.code === 'ONSIGHT_CREDENTIALS' ? 'stop' : 'retry', err.code);
}
