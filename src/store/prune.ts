/**
 * What the hourly prune may delete, in both stores' SQL: the same rule on SQLite and PostgreSQL.
 * A device (identity) is forgotten once it was neither seen nor scanned for `forgetAfterS` and no
 * row names it any more (its bindings pruned, nothing queued, no scan target, mark or credit).
 */

import type { InventoryOptions } from './types.js';

/** What is pruned before which time (ms): history (`cutoff`, the retention) and devices (`forget`, forgetAfterS but never sooner). */
export function pruneCutoffs(now: number, o: Pick<InventoryOptions, 'retentionS' | 'forgetAfterS'>): { cutoff: number; forget: number } {
  return { cutoff: now - o.retentionS * 1000, forget: now - Math.max(o.forgetAfterS ?? 0, o.retentionS) * 1000 };
}

/** rows per transaction: ingest waits for one chunk at most */
export const PRUNE_CHUNK = 5000;

/**
 * A chunk of the names no identity holds any more: the name is no one's then, and the next identity
 * to take it becomes its first holder (a name is personal data, kept no longer than its devices).
 * A name still held stays as it is, even where its first holder was forgotten: given to the next
 * device to claim it, a LAN device took the name of a laptop working over the VPN for months
 * (review, session 42); no one gives credit by the pattern under it then.
 */
export const FORGOTTEN_HOLDERS = `DELETE FROM name_holders WHERE host_key IN (SELECT host_key FROM name_holders n
  WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.host_key = n.host_key) LIMIT ${PRUNE_CHUNK})`;

/** `param`: the statement's placeholder for the forget cutoff (`@forget`, `$1`) */
export function forgettableIdentity(param: string): string {
  // NOT EXISTS: PostgreSQL plans an anti-join (a NOT IN over a million rows may not fit work_mem and turn quadratic)
  const none = (table: string) => `NOT EXISTS (SELECT 1 FROM ${table} x WHERE x.identity_id = i.id)`;
  // never the newest: SQLite hands a deleted highest rowid out again, and old decisions name it
  return `i.id < (SELECT max(id) FROM identities) AND i.last_seen < ${param} AND (i.last_scanned_at IS NULL OR i.last_scanned_at < ${param})
    AND ${['bindings', 'queue', 'intent_targets', 'operator_marks', 'scan_credits'].map(none).join(' AND ')}`;
}
