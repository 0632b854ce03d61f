/**
 * Qualys failures in the seam's words (FailureOutcome): whether a launch was made and whether to
 * retry, wait or stop. Minimal version mapping the QualysError classes as they are (sched branch);
 * the Qualys helper's version (CODE 2001/2003/2011, SECONDS_TO_WAIT from the body) replaces it.
 */
import type { FailureOutcome, ScannerCall } from '../types.js';
import { CredentialsError } from './credentials.js';
import { ClientClosedError, QualysAuthError, QualysError, QualysRateLimitError, ScopeViolationError } from './errors.js';

export function qualysFailureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
  const code = (err as { code?: string }).code ?? 'ONSIGHT_SCANNER';
  const message = (err as Error)?.message ?? String(err);
  const out = (launched: FailureOutcome['launched'], next: FailureOutcome['next'], untilMs?: number): FailureOutcome =>
    ({ launched: call === 'launch' ? launched : 'no', next, untilMs, code, message });
  if (err instanceof CredentialsError || err instanceof QualysAuthError) return out('no', 'stop');
  if (err instanceof ScopeViolationError || err instanceof ClientClosedError) return out('no', 'retry');
  if (err instanceof QualysRateLimitError) {
    return err.waitSec !== undefined && err.waitSec > 0 ? out('no', 'wait', Date.now() + err.waitSec * 1000) : out('no', 'retry');
  }
  // an answer from Qualys that refused the call (a CODE in a SIMPLE_RETURN): nothing was launched
  if (err instanceof QualysError && err.code === 'ONSIGHT_QUALYS_API' || code === 'ONSIGHT_QUALYS_NOT_IN_SUBSCRIPTION') return out('no', 'retry');
  // no usable answer (network, 5xx, unreadable body, unconfirmed): the scan may exist
  return out('unknown', 'retry');
}
