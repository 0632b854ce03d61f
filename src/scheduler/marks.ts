/**
 * What an operator asked about a device (`onsight rescan`, `onsight skip`), kept in the state
 * file's `operator_marks` table (migration 8) so that the CLI can write it while the daemon runs,
 * and the daemon reads it when deciding:
 * - a rescan requested at T makes the device due whatever its last scan, until it is scanned after T
 *   (its region's scan windows and the scope still apply);
 * - a skip until U keeps the device from being queued or launched before U, and says so in its decisions.
 */
import type { DB } from '../store/db.js';
import type { Verdict } from '../policy/policy.js';

export interface OperatorMark {
  identityId: number;
  rescanAt?: number;
  skipUntil?: number;
  updatedAt: number;
}

/** a skip without an end: until the operator lifts it (`onsight skip … --until now`) */
export const SKIP_FOREVER = 8.64e15;

/** strictly after every earlier mark (two in the same millisecond stay apart): the daemon reads marks newer than the last it saw */
const NEXT_STAMP = 'max(?, coalesce((SELECT max(updated_at) FROM operator_marks), 0) + 1)';

const iso = (ms: number) => (ms >= SKIP_FOREVER ? 'lifted' : new Date(ms).toISOString());

export class OperatorMarks {
  private readonly s;

  constructor(private readonly db: DB) {
    this.s = {
      get: db.prepare('SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE identity_id = ?'),
      changed: db.prepare('SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE updated_at > ? ORDER BY updated_at'),
      maxUpdated: db.prepare('SELECT max(updated_at) AS m FROM operator_marks'),
      all: db.prepare('SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks'),
    };
  }

  get(identityId: number): OperatorMark | undefined {
    const r = this.s.get.get(identityId) as Row | undefined;
    return r && toMark(r);
  }

  /** Marks written after `since` (ms, the daemon's last look), oldest first. */
  changedSince(since: number): OperatorMark[] {
    return (this.s.changed.all(since) as Row[]).map(toMark);
  }

  lastUpdate(): number {
    return ((this.s.maxUpdated.get() as { m: number | null }).m) ?? 0;
  }

  /**
   * The verdict once the operator's marks are applied: a skip turns any verdict into not-due; a
   * rescan not yet honoured turns scanned-recently into due when the region's window is open.
   */
  adjust(v: Verdict, b: { identityId: number; lastScannedAt?: number }, now: number, windowOpen: (region: string) => boolean): Verdict {
    return applyMark(this.get(b.identityId), v, b, now, windowOpen);
  }

  /** Every mark, by device (the status page applies them to many devices at once). */
  all(): Map<number, OperatorMark> {
    return new Map((this.s.all.all() as Row[]).map((r) => [r.identity_id, toMark(r)]));
  }

  /**
   * Forget marks that no longer change any answer: skips that ended, rescans honoured (scanned
   * since) or older than `rescanTtlMs` (the device never came back). Called by the sweep.
   */
  prune(now: number, rescanTtlMs = 7 * 86_400_000): number {
    return this.db.prepare(`DELETE FROM operator_marks WHERE (skip_until IS NULL OR skip_until <= ?)
      AND (rescan_at IS NULL OR rescan_at < ? OR rescan_at <= (SELECT last_scanned_at FROM identities WHERE id = identity_id))`).run(now, now - rescanTtlMs).changes;
  }

  /** `onsight rescan`: due now (the daemon sees it within a second). */
  requestRescan(identityIds: number[], now: number): void {
    const up = this.db.prepare(`INSERT INTO operator_marks (identity_id, rescan_at, updated_at) VALUES (?, ?, ${NEXT_STAMP})
      ON CONFLICT(identity_id) DO UPDATE SET rescan_at = excluded.rescan_at, updated_at = excluded.updated_at`);
    this.db.transaction(() => { for (const id of identityIds) up.run(id, now, now); })();
  }

  /** `onsight skip`: not queued, not launched before `until` (a skip already in flight is not cancelled). */
  skip(identityIds: number[], until: number, now: number): void {
    const up = this.db.prepare(`INSERT INTO operator_marks (identity_id, skip_until, updated_at) VALUES (?, ?, ${NEXT_STAMP})
      ON CONFLICT(identity_id) DO UPDATE SET skip_until = excluded.skip_until, updated_at = excluded.updated_at`);
    this.db.transaction(() => { for (const id of identityIds) up.run(id, until, now); })();
  }
}

interface Row { identity_id: number; rescan_at: number | null; skip_until: number | null; updated_at: number }

const toMark = (r: Row): OperatorMark => ({ identityId: r.identity_id, rescanAt: r.rescan_at ?? undefined, skipUntil: r.skip_until ?? undefined, updatedAt: r.updated_at });

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
