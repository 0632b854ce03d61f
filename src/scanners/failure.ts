/**
 * A failure that carries its own seam-level meaning: for backends without a vendor's error
 * vocabulary to map (dry run, the simulator's scanner, test scanners). A vendor backend maps its
 * own errors instead (src/scanners/qualys/outcome.ts).
 */
import { OnsightError, type ErrorCode } from '../errors.js';
import type { FailureOutcome, ScannerCall, ScheduleStatus } from './types.js';

export class ScannerFailure extends OnsightError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly launched: FailureOutcome['launched'],
    readonly next: FailureOutcome['next'],
    readonly untilMs?: number,
  ) {
    super(code, message);
  }
}

/**
 * A cancel that came after its scan had ended (finished, or in error): not a cancel. The scan's
 * end and result are the poll's to record; taken for a cancel, a finished scan's targets were
 * requeued and its results thrown away. A scan canceled already is a cancel that worked.
 */
export class ScanEndedBeforeCancel extends ScannerFailure {
  constructor(readonly scanRef: string, readonly state: string) {
    super('ONSIGHT_SCANNER', `scan ${scanRef} had ended (${state}) before the cancel: its result is the poll's to record`, 'no', 'retry');
  }
}

/** What a backend's cancel does once the platform refused it and the scan's state is read: a scan canceled already is done, an ended one is not canceled, any other refusal stands. */
export function cancelRefused(scanRef: string, state: string | undefined, refusal: unknown): void {
  if (state === 'canceled') return;
  if (state === 'finished' || state === 'error') throw new ScanEndedBeforeCancel(scanRef, state);
  throw refusal;
}

/**
 * The outcome a ScannerFailure states; anything else is an unexplained failure: a launch may have
 * happened (`unknown`: reconciled by intent id before anything is launched again), retry later.
 */
export function statedOutcome(err: unknown, call: ScannerCall): FailureOutcome {
  if (err instanceof ScheduleSyncIncomplete) return statedOutcome(err.failure, call);
  if (err instanceof ScannerFailure) {
    return { launched: call === 'launch' ? err.launched : 'no', next: err.next, untilMs: err.untilMs, code: err.code, message: err.message };
  }
  const e = err as { code?: unknown; message?: unknown };
  return {
    launched: call === 'launch' ? 'unknown' : 'no', next: 'retry',
    code: typeof e?.code === 'string' ? e.code : 'ONSIGHT_SCANNER', message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/**
 * A schedule sync (`syncSchedules`) that failed after it had begun changing the platform's
 * schedules: `failure` is what stopped it (its meaning is the backend's, as for any call), `done`
 * the schedules as far as it got (kept, created, updated, deleted), `unsure` the titles whose
 * change may or may not have been made (its answer was lost), `changeCalls` the calls its changes
 * made (refused ones too). A failure before any change is thrown as it is: nothing changed.
 */
export class ScheduleSyncIncomplete extends Error {
  constructor(readonly failure: unknown, readonly done: ScheduleStatus[], readonly unsure: string[], readonly changeCalls: number) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
}
