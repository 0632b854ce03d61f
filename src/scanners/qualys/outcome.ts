/**
 * Every Qualys failure class in the seam's words (FailureOutcome): whether a launch may exist, and
 * whether to retry, wait until a time, or stop until an operator acts. The scheduler decides from
 * this alone; Qualys codes stay here.
 */
import { OnsightError } from '../../errors.js';
import { ScheduleSyncIncomplete } from '../failure.js';
import type { FailureOutcome, ScannerCall } from '../types.js';
import {
  ClientClosedError, QualysApiError, QualysAuthError, QualysError, QualysLaunchUnconfirmedError, QualysNotInSubscriptionError, QualysPagingError,
  QualysRateLimitError, ScopeViolationError,
} from './errors.js';

/** Calls on an API other than the scan API (/api/2.0/fo/scan/: launch, list, cancel), each limited apart. */
const OWN_API_CALLS = new Set<ScannerCall>(['lastScanned', 'appliances', 'syncSchedules', 'scanProfiles']);

/** Scheduled maintenance (503 / CODE 1999) lasts minutes: no call before this much later. */
const MAINTENANCE_WAIT_MS = 5 * 60_000;

export function qualysFailureOutcome(err: unknown, call: ScannerCall, now: number = Date.now()): FailureOutcome {
  if (err instanceof ScheduleSyncIncomplete) return qualysFailureOutcome(err.failure, call, now);
  const launch = call === 'launch';
  const message = err instanceof Error ? err.message : String(err);
  const out = (launched: FailureOutcome['launched'], next: FailureOutcome['next'], code: string, extra: Partial<FailureOutcome> = {}): FailureOutcome =>
    ({ launched: launch ? launched : 'no', next, code, message, ...extra });

  if (!(err instanceof OnsightError)) return out('unknown', 'retry', 'ONSIGHT_SCANNER'); // a bug or a surprise: assume the worst for a launch
  // the client closed (shutdown): a launch may have been on the wire
  if (err instanceof ClientClosedError) return out('unknown', 'retry', err.code);
  // nothing was sent: the scheduler revalidates its targets before the next launch
  if (err instanceof ScopeViolationError) return out('no', 'retry', err.code);
  if (!(err instanceof QualysError)) {
    // ONSIGHT_CREDENTIALS: no password to send; ONSIGHT_SCANNER: a launch we refused to send
    return out('no', err.code === 'ONSIGHT_CREDENTIALS' ? 'stop' : 'retry', err.code);
  }
  // credentials, expired / unregistered / SecureID account, licence: only an operator can fix it
  if (err instanceof QualysAuthError) return out('no', 'stop', err.code);
  if (err instanceof QualysRateLimitError) {
    // a 409 is answered before the call runs: nothing was launched
    if (err.qualysCode === 1960 || !(err.waitSec && err.waitSec > 0)) return out('no', 'retry', err.code);
    // Qualys limits each API apart: the host list's, the appliance list's, the schedules' and the
    // option profiles' limits hold back their own calls only, never the scan API's launches and cancels
    return out('no', 'wait', err.code, { untilMs: now + Math.ceil(err.waitSec * 1000), ...(OWN_API_CALLS.has(call) ? { holds: 'call' as const } : {}) });
  }
  // a next-page URL off the platform: following it would hand our credentials to another host
  if (err instanceof QualysPagingError) return out('no', 'stop', err.code);
  if (err instanceof QualysLaunchUnconfirmedError) return out('unknown', 'retry', err.code);
  // the targets Qualys named as outside the subscription; a text that names none refuses the launch as a whole
  if (err instanceof QualysNotInSubscriptionError && launch && err.targets.length) return out('no', 'retry', err.code, { refused: [...err.targets] });
  // a version Qualys no longer serves (or a wrong scanner.endpoints path)
  if (err.status === 404 || err.status === 410) {
    return out('no', 'stop', err.code, { message: `${message} (check scanner.endpoints: Qualys may have retired this API version)` });
  }
  if (err instanceof QualysApiError && (err.qualysCode === 1999 || err.status === 503)) {
    return out(err.ambiguous ? 'unknown' : 'no', 'wait', err.code, { untilMs: now + MAINTENANCE_WAIT_MS });
  }
  // 5xx, 202/1981, network failures, unreadable answers: a launch that may have reached Qualys is `ambiguous`
  return out(err.ambiguous ? 'unknown' : 'no', 'retry', err.code);
}
