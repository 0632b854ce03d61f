/**
 * Typed failures of the Qualys client. Every one carries `retryable` (may the same call succeed
 * later?) so the scheduler can decide without parsing messages; `ambiguous` marks a launch whose
 * outcome is unknown (the request may have been processed before the failure).
 */
import { OnsightError, type ErrorCode } from '../../errors.js';

export interface QualysFailureDetails {
  /** HTTP status, when a response arrived */
  status?: number;
  /** Qualys CODE from a SIMPLE_RETURN, e.g. 1905 */
  qualysCode?: number;
  /** Qualys TEXT from a SIMPLE_RETURN */
  qualysText?: string;
  retryable?: boolean;
  ambiguous?: boolean;
  cause?: unknown;
}

export class QualysError extends OnsightError {
  readonly status?: number;
  readonly qualysCode?: number;
  readonly qualysText?: string;
  readonly retryable: boolean;
  readonly ambiguous: boolean;
  /**
   * An idempotent call (a schedule's update, a list) failed after an earlier attempt that may have
   * been processed (its answer lost, a 5xx) was retried: what it asked may have been done, whatever
   * this failure says. Set by the transport.
   */
  earlierAttemptMayHaveRun = false;
  constructor(code: ErrorCode, message: string, d: QualysFailureDetails = {}) {
    super(code, message, d.cause === undefined ? undefined : { cause: d.cause });
    this.status = d.status;
    this.qualysCode = d.qualysCode;
    this.qualysText = d.qualysText;
    this.retryable = d.retryable ?? false;
    this.ambiguous = d.ambiguous ?? false;
  }
}

/** Qualys answered with an error CODE/TEXT (400-class parameter errors, licence, maintenance, ...). */
export class QualysApiError extends QualysError {
  constructor(message: string, d: QualysFailureDetails, code: ErrorCode = 'ONSIGHT_QUALYS_API') {
    super(code, message, d);
  }
}

/**
 * 401 / CODE 2000-2012 (2001 "account expired" comes with HTTP 200, 2003/2011 with 409): wrong
 * credentials, wrong platform host, expired, inactive or unregistered account. Stop launching.
 */
export class QualysAuthError extends QualysApiError {
  constructor(message: string, d: QualysFailureDetails) {
    super(message, { ...d, retryable: false }, 'ONSIGHT_QUALYS_AUTH');
  }
}

/**
 * Qualys refused a launch because targets are not in the subscription's VM host list (they must be
 * added first). Nothing was launched. Whether Qualys refuses or silently drops such targets is not
 * documented: the silent case shows as a scan whose TARGET lacks them (QualysScan.targets).
 */
export class QualysNotInSubscriptionError extends QualysApiError {
  /** the launch's targets that Qualys's message names; empty when it names none */
  readonly targets: string[];
  constructor(message: string, d: QualysFailureDetails, targets: string[] = []) {
    super(message, { ...d, retryable: false }, 'ONSIGHT_QUALYS_NOT_IN_SUBSCRIPTION');
    this.targets = targets;
  }
}

/** 409 with CODE 1960/1965 (or 1920) that we did not wait out: the wait was longer than allowed. */
export class QualysRateLimitError extends QualysError {
  /** seconds before the API takes calls again (X-RateLimit-ToWait-Sec, else the body's SECONDS_TO_WAIT), when known */
  readonly waitSec?: number;
  /** 1960: calls that must finish before ours may run (the body's CALLS_TO_FINISH) */
  readonly callsToFinish?: number;
  constructor(message: string, d: QualysFailureDetails & { waitSec?: number; callsToFinish?: number }) {
    super('ONSIGHT_QUALYS_RATE_LIMIT', message, { ...d, retryable: true });
    this.waitSec = d.waitSec;
    this.callsToFinish = d.callsToFinish;
  }
}

/** An HTTP answer that is neither success nor a Qualys error document (5xx without XML, 404, ...). */
export class QualysHttpError extends QualysError {
  constructor(message: string, d: QualysFailureDetails) {
    super('ONSIGHT_QUALYS_HTTP', message, d);
  }
}

/** A next-page URL we will not follow (not https, or not a host of the platform): credentials stay home. */
export class QualysPagingError extends QualysError {
  readonly url: string;
  constructor(message: string, url: string) {
    super('ONSIGHT_QUALYS_PAGING', message, { retryable: false });
    this.url = url;
  }
}

/** The body was not well-formed XML or not the document we expected. */
export class QualysXmlError extends QualysError {
  constructor(message: string, d: QualysFailureDetails = {}) {
    super('ONSIGHT_QUALYS_XML', message, d);
  }
}

/** Connect failures, resets, timeouts: no usable answer arrived. */
export class QualysNetworkError extends QualysError {
  constructor(message: string, d: QualysFailureDetails = {}) {
    super('ONSIGHT_QUALYS_NETWORK', message, { ...d, retryable: true });
  }
}

/** A launch failed ambiguously and we could not find out whether the scan exists. */
export class QualysLaunchUnconfirmedError extends QualysError {
  readonly intentId: string;
  constructor(intentId: string, message: string, d: QualysFailureDetails = {}) {
    super('ONSIGHT_QUALYS_LAUNCH_UNCONFIRMED', message, { ...d, retryable: true, ambiguous: true });
    this.intentId = intentId;
  }
}

/** A launch target failed the scope guard: nothing was sent. */
export class ScopeViolationError extends OnsightError {
  readonly targets: string[];
  constructor(targets: string[]) {
    super('ONSIGHT_SCOPE_VIOLATION', `refusing to scan ${targets.length} target(s) outside the allowed scope: ${targets.slice(0, 10).join(', ')}${targets.length > 10 ? ', ...' : ''}`);
    this.targets = targets;
  }
}

/** The client was closed while a call was waiting. */
export class ClientClosedError extends OnsightError {
  constructor() {
    super('ONSIGHT_CLOSED', 'qualys client closed');
  }
}
