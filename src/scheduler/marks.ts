/**
 * What an operator asked about a device (`onsight rescan`, `onsight skip`), kept in the state
 * file's `operator_marks` table (migration 8) so that the CLI can write it while the daemon runs,
 * and the daemon reads it when deciding:
 * - a rescan requested at T makes the device due whatever its last scan, until it is scanned after T
 *   (its region's scan windows and the scope still apply);
 * - a skip until U keeps the device from being queued or launched before U, and says so in its decisions.
 */
import type { OperatorMark, SchedulerStore } from '../store/types.js';
import type { Verdict } from '../policy/policy.js';

export type { OperatorMark } from '../store/types.js';

/** a skip without an end: until the operator lifts it (`onsight skip … --until now`) */
export const SKIP_FOREVER = 8.64e15;

const iso = (ms: number) => (ms >= SKIP_FOREVER ? 'lifted' : new Date(ms).toISOString());

export class OperatorMarks {
  constructor(private readonly store: SchedulerStore) {}

  get(identityId: number): Promise<OperatorMark | undefined> {
    return this.store.mark(identityId);
  }

  /** Marks written after `since` (ms, the daemon's last look), oldest first. */
  changedSince(since: number): Promise<OperatorMark[]> {
    return this.store.marksChangedSince(since);
  }

  lastUpdate(): Promise<number> {
    return this.store.marksLastUpdate();
  }

  /**
   * The verdict once the operator's marks are applied: a skip turns any verdict into not-due; a
   * rescan not yet honoured turns scanned-recently into due when the region's window is open.
   */
  async adjust(v: Verdict, b: { identityId: number; lastScannedAt?: number }, now: number, windowOpen: (region: string) => boolean): Promise<Verdict> {
    return applyMark(await this.get(b.identityId), v, b, now, windowOpen);
  }

  /** Every mark, by device (the status page applies them to many devices at once). */
  async all(): Promise<Map<number, OperatorMark>> {
    return new Map((await this.store.marksChangedSince(0)).map((m) => [m.identityId, m]));
  }

  /**
   * Forget marks that no longer change any answer: skips that ended, rescans honoured (scanned
   * since) or older than `rescanTtlMs` (the device never came back). Called by the sweep.
   */
  prune(now: number, rescanTtlMs = 7 * 86_400_000): Promise<number> {
    return this.store.pruneMarks(now, rescanTtlMs);
  }

  /** `onsight rescan`: due now (the daemon sees it within a second). */
  requestRescan(identityIds: number[], now: number): Promise<void> {
    return this.store.requestRescan(identityIds, now);
  }

  /** `onsight skip`: not queued, not launched before `until` (a skip already in flight is not cancelled). */
  skip(identityIds: number[], until: number, now: number): Promise<void> {
    return this.store.skip(identityIds, until, now);
  }
}

/** An operator's mark applied to a verdict (see OperatorMarks.adjust); no mark: the verdict as it is. */
export function applyMark(m: OperatorMark | undefined, v: Verdict, b: { identityId: number; lastScannedAt?: number }, now: number, windowOpen: (region: string) => boolean): Verdict {
  if (!m) return v;
  if (m.skipUntil !== undefined && m.skipUntil > now && (v.due || v.reason === 'scanned-recently' || v.reason === 'outside-scan-window')) {
    return { ...v, due: false, reason: 'skipped', detail: `an operator skipped this device ${m.skipUntil >= SKIP_FOREVER ? 'until the skip is lifted' : `until ${iso(m.skipUntil)}`}` };
  }
  if (m.rescanAt !== undefined && v.reason === 'scanned-recently' && v.region && (b.lastScannedAt === undefined || b.lastScannedAt < m.rescanAt) && windowOpen(v.region)) {
    return { ...v, due: true, reason: 'due', detail: `an operator asked for a rescan at ${iso(m.rescanAt)} (${v.detail})` };
  }
  return v;
}
