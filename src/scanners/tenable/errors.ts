/**
 * A failed Tenable call, already in the seam's words where it was thrown: whether it may have done
 * something (`ambiguous`), and whether to retry, wait, or stop. Tenable's statuses stay in here and
 * in transport.ts.
 */
import { OnsightError, type ErrorCode } from '../../errors.js';
import type { FailureOutcome } from '../types.js';

export class TenableError extends OnsightError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly o: {
      status?: number;
      /** the call may have taken effect (a launch may exist) */
      ambiguous?: boolean;
      next: FailureOutcome['next'];
      /** seconds Tenable asked us to wait (429 Retry-After) */
      retryAfterSec?: number;
      cause?: unknown;
    },
  ) {
    super(code, message, { cause: o.cause });
  }

  get status(): number | undefined {
    return this.o.status;
  }
}
