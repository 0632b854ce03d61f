/**
 * The scheduler's durable part on PostgreSQL: the same queue, intents, decision log and operator
 * marks as src/scheduler/queue.ts (row mappers shared), in PostgreSQL's dialect.
 */
import { ACTIVE, ENDS_FROM, decision, entry, intent, toCredit, toLearned, toMark, type CreditRow, type DecisionRow, type MarkRow } from '../../scheduler/queue.js';
import type { AwaitingEntry, ConsideredWrites, Decision, Intent, IntentState, IntentTarget, LearnedRecord, OperatorMark, QueueEntry, ScanCredit, SchedulerStore } from '../types.js';
import { statement as st, type PgDb } from './db.js';

/**
 * strictly after every earlier mark (two in the same millisecond stay apart). Writers of marks (the
 * CLI, any node's API) take MARKS_LOCK first: two transactions computing the stamp at once could
 * share one, or commit a smaller one after the leader read a larger, and the leader would miss it.
 */
const MARKS_LOCK = st('marks_lock', "SELECT pg_advisory_xact_lock(hashtext('onsight:operator_marks'))");
const NEXT_STAMP = 'GREATEST($3, coalesce((SELECT max(updated_at) FROM operator_marks), 0) + 1)';

const S = {
  enqueue: st('enqueue', `INSERT INTO queue (binding_id, ip, identity_id, region, due_since, last_seen) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (binding_id) DO NOTHING`),
  queued: st('queued', 'SELECT * FROM queue WHERE binding_id = $1'),
  queuedOf: st('queued_of', 'SELECT * FROM queue WHERE binding_id = ANY($1::bigint[])'),
  dequeueWaitingMany: st('dequeue_waiting_many', 'DELETE FROM queue WHERE binding_id = ANY($1::bigint[]) AND intent_id IS NULL'),
  enqueueMany: st('enqueue_many', `INSERT INTO queue (binding_id, ip, identity_id, region, due_since, last_seen)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[]) ON CONFLICT (binding_id) DO NOTHING`),
  moveRegionMany: st('move_region_many', `UPDATE queue q SET region = u.region FROM unnest($1::bigint[], $2::text[]) AS u(id, region)
    WHERE q.binding_id = u.id AND q.intent_id IS NULL`),
  touchMany: st('touch_many', `UPDATE queue q SET last_seen = u.last_seen FROM unnest($1::bigint[], $2::bigint[]) AS u(id, last_seen)
    WHERE q.binding_id = u.id AND q.intent_id IS NULL`),
  // ids in the given order (the decision log is read in id order)
  decideMany: st('decide_many', `INSERT INTO decisions (at, ip, identity_id, decision, reason)
    SELECT at, ip, identity_id, decision, reason FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[])
      WITH ORDINALITY AS u(at, ip, identity_id, decision, reason, n) ORDER BY n`),
  moveRegion: st('move_region', 'UPDATE queue SET region = $1 WHERE binding_id = $2 AND intent_id IS NULL'),
  touch: st('touch', 'UPDATE queue SET last_seen = $1 WHERE binding_id = $2 AND intent_id IS NULL'),
  ready: st('ready', `SELECT * FROM queue WHERE region = $1 AND intent_id IS NULL AND not_before <= $2
    ORDER BY last_seen IS NULL, last_seen DESC, due_since LIMIT $3`),
  hasReady: st('has_ready', 'SELECT 1 AS one FROM queue WHERE region = $1 AND intent_id IS NULL AND not_before <= $2 LIMIT 1'),
  dequeue: st('dequeue', 'DELETE FROM queue WHERE binding_id = $1'),
  dequeueWaiting: st('dequeue_waiting', 'DELETE FROM queue WHERE binding_id = $1 AND intent_id IS NULL'),
  holdUntil: st('hold_until', 'UPDATE queue SET not_before = GREATEST(not_before, $1) WHERE binding_id = $2 AND intent_id IS NULL'),
  assign: st('assign', 'UPDATE queue SET intent_id = $1 WHERE binding_id = $2'),
  release: st('release', 'UPDATE queue SET intent_id = NULL, attempts = attempts + $1, not_before = $2 WHERE binding_id = $3'),
  releaseFrom: st('release_from', `UPDATE queue SET intent_id = NULL, attempts = attempts + $1, not_before = $2 WHERE binding_id = $3 AND intent_id = $4
    AND EXISTS (SELECT 1 FROM intents WHERE id = $4 AND state IN ${ACTIVE})`),
  insertIntent: st('insert_intent_epoch', `INSERT INTO intents (id, region, appliance, state, created_at, epoch) VALUES ($1, $2, $3, 'launching', $4, $5)`),
  insertTarget: st('insert_target', 'INSERT INTO intent_targets (intent_id, ip, identity_id, binding_id) VALUES ($1, $2, $3, $4)'),
  setRunning: st('set_running_cond', `UPDATE intents SET state = 'running', scan_ref = $1, launched_at = $2 WHERE id = $3 AND state = 'launching'`),
  setEnded: st('set_ended_cond', `UPDATE intents SET state = $1, ended_at = $2, error = $3 WHERE id = $4 AND ${ENDS_FROM('$1::text')}`),
  intentById: st('intent_by_id', 'SELECT * FROM intents WHERE id = $1'),
  active: st('active', `SELECT * FROM intents WHERE state IN ('launching', 'running') ORDER BY created_at`),
  targets: st('targets', 'SELECT ip, identity_id, binding_id FROM intent_targets WHERE intent_id = $1'),
  queueByIntent: st('queue_by_intent', 'SELECT * FROM queue WHERE intent_id = $1'),
  awaiting: st('awaiting', `SELECT q.*, i.scan_ref AS i_scan_ref, i.appliance AS i_appliance, i.launched_at AS i_launched_at, i.ended_at AS i_ended_at
    FROM queue q JOIN intents i ON i.id = q.intent_id WHERE i.state = 'finished' ORDER BY i.ended_at LIMIT $1`),
  decide: st('decide', 'INSERT INTO decisions (at, ip, identity_id, decision, reason) VALUES ($1, $2, $3, $4, $5)'),
  recent: st('recent', 'SELECT at, ip, identity_id, decision, reason FROM decisions ORDER BY id DESC LIMIT $1'),
  pruneDecisions: st('prune_decisions', 'DELETE FROM decisions WHERE id <= (SELECT max(id) FROM decisions) - $1'),
  queueAll: st('queue_all', 'SELECT * FROM queue ORDER BY region, last_seen IS NULL, last_seen DESC, due_since'),
  intentsRecent: st('intents_recent', 'SELECT * FROM intents ORDER BY created_at DESC LIMIT $1'),
  decisionsSince: st('decisions_since', 'SELECT at, ip, identity_id, decision, reason FROM decisions WHERE at >= $1 ORDER BY id'),
  // with the scans pruned after the retention (their counts kept): the counter never goes down
  endedIntentCounts: st('ended_intent_counts', `SELECT region, appliance, state, sum(n)::bigint AS n FROM (
      SELECT region, appliance, state, count(*) AS n FROM intents WHERE state NOT IN ('launching', 'running') GROUP BY region, appliance, state
      UNION ALL SELECT region, appliance, state, n FROM pruned_intent_counts) c
    GROUP BY region, appliance, state ORDER BY region, appliance, state`),
  lastDropped: st('last_dropped', `SELECT DISTINCT ON (ip, identity_id) ip, identity_id, at, reason FROM decisions
    WHERE decision = 'dropped-by-scanner' ORDER BY ip, identity_id, at DESC`),
  saveCredits: st('save_credits', `INSERT INTO scan_credits (identity_id, at, prev, lease_last_seen, lease_expires_at, whole)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::boolean[])
    ON CONFLICT (identity_id) DO UPDATE SET at = excluded.at, prev = excluded.prev, lease_last_seen = excluded.lease_last_seen,
      lease_expires_at = excluded.lease_expires_at, whole = excluded.whole`),
  credits: st('credits', 'SELECT * FROM scan_credits WHERE at >= $1'),
  pruneCredits: st('prune_credits', 'DELETE FROM scan_credits WHERE at < $1'),
  saveLearned: st('save_learned', `INSERT INTO learned_state (name, state, saved_at) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
    ON CONFLICT (name) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at`),
  learned: st('learned', 'SELECT name, state, saved_at FROM learned_state ORDER BY name'),
  marksOf: st('marks_of', 'SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE identity_id = ANY($1::bigint[])'),
  mark: st('mark', 'SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE identity_id = $1'),
  marksChanged: st('marks_changed', 'SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE updated_at > $1 ORDER BY updated_at'),
  marksMaxUpdated: st('marks_max_updated', 'SELECT max(updated_at) AS m FROM operator_marks'),
  pruneMarks: st('prune_marks', `DELETE FROM operator_marks WHERE (skip_until IS NULL OR skip_until <= $1)
    AND (rescan_at IS NULL OR rescan_at < $2 OR rescan_at <= (SELECT last_scanned_at FROM identities WHERE id = identity_id))`),
  rescan: st('rescan', `INSERT INTO operator_marks (identity_id, rescan_at, updated_at) VALUES ($1, $2, ${NEXT_STAMP})
    ON CONFLICT (identity_id) DO UPDATE SET rescan_at = excluded.rescan_at, updated_at = excluded.updated_at`),
  skip: st('skip', `INSERT INTO operator_marks (identity_id, skip_until, updated_at) VALUES ($1, $2, ${NEXT_STAMP})
    ON CONFLICT (identity_id) DO UPDATE SET skip_until = excluded.skip_until, updated_at = excluded.updated_at`),
};

export class PgSchedulerStore implements SchedulerStore {
  constructor(private readonly db: PgDb) {}

  async enqueue(e: Omit<QueueEntry, 'attempts' | 'notBefore' | 'intentId'>): Promise<boolean> {
    return ((await this.db.query(S.enqueue, [e.bindingId, e.ip, e.identityId, e.region, e.dueSince, e.lastSeen ?? null])).rowCount ?? 0) > 0;
  }

  async moveRegion(bindingId: number, region: string): Promise<void> {
    await this.db.query(S.moveRegion, [region, bindingId]);
  }

  async touch(bindingId: number, lastSeen: number): Promise<void> {
    await this.db.query(S.touch, [lastSeen, bindingId]);
  }

  async queued(bindingId: number): Promise<QueueEntry | undefined> {
    const r = await this.db.row(S.queued, [bindingId]);
    return r ? entry(r) : undefined;
  }

  async queuedOf(bindingIds: readonly number[]): Promise<QueueEntry[]> {
    if (!bindingIds.length) return [];
    return (await this.db.rows(S.queuedOf, [bindingIds])).map(entry);
  }

  /** One statement per kind (array parameters), in one transaction. */
  writeConsidered(w: ConsideredWrites): Promise<void> {
    return this.db.transaction(async () => {
      if (w.dequeueIfWaiting.length) await this.db.query(S.dequeueWaitingMany, [w.dequeueIfWaiting]);
      if (w.enqueue.length) {
        // a binding listed twice is inserted once (ON CONFLICT does not cover two rows of one statement)
        const seen = new Set<number>();
        const e = w.enqueue.filter((x) => !seen.has(x.bindingId) && seen.add(x.bindingId));
        await this.db.query(S.enqueueMany, [e.map((x) => x.bindingId), e.map((x) => x.ip), e.map((x) => x.identityId), e.map((x) => x.region),
          e.map((x) => x.dueSince), e.map((x) => x.lastSeen ?? null)]);
      }
      if (w.moveRegion.length) await this.db.query(S.moveRegionMany, [w.moveRegion.map((m) => m.bindingId), w.moveRegion.map((m) => m.region)]);
      if (w.touch.length) await this.db.query(S.touchMany, [w.touch.map((t) => t.bindingId), w.touch.map((t) => t.lastSeen)]);
      const d = w.decisions;
      if (d.length) {
        await this.db.query(S.decideMany, [d.map((x) => x.at), d.map((x) => x.ip), d.map((x) => x.identityId ?? null), d.map((x) => x.decision), d.map((x) => x.reason)]);
      }
    });
  }

  async queuedIds(): Promise<Set<number>> {
    return new Set((await this.db.rows<{ binding_id: number }>('SELECT binding_id FROM queue')).map((r) => r.binding_id));
  }

  async ready(region: string, now: number, limit: number): Promise<QueueEntry[]> {
    return (await this.db.rows(S.ready, [region, now, limit])).map(entry);
  }

  async readyRegions(now: number, regions: Iterable<string>): Promise<string[]> {
    const out: string[] = [];
    for (const r of regions) if (await this.db.row(S.hasReady, [r, now])) out.push(r);
    return out;
  }

  async dequeue(bindingId: number): Promise<void> {
    await this.db.query(S.dequeue, [bindingId]);
  }

  async dequeueIfWaiting(bindingId: number): Promise<void> {
    await this.db.query(S.dequeueWaiting, [bindingId]);
  }

  async holdUntil(bindingId: number, notBefore: number): Promise<void> {
    await this.db.query(S.holdUntil, [notBefore, bindingId]);
  }

  createIntent(i: Pick<Intent, 'id' | 'region' | 'appliance' | 'createdAt' | 'epoch'>, targets: IntentTarget[]): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.query(S.insertIntent, [i.id, i.region, i.appliance, i.createdAt, i.epoch ?? null]);
      for (const t of targets) {
        await this.db.query(S.insertTarget, [i.id, t.ip, t.identityId, t.bindingId]);
        await this.db.query(S.assign, [i.id, t.bindingId]);
      }
    });
  }

  async setRunning(id: string, scanRef: string, at: number): Promise<boolean> {
    return ((await this.db.query(S.setRunning, [scanRef, at, id])).rowCount ?? 0) > 0;
  }

  endIntent(id: string, state: Exclude<IntentState, 'launching' | 'running'>, at: number, error: string | null, retry?: { notBefore: number; countAttempt: boolean }): Promise<boolean> {
    return this.db.transaction(async () => {
      if (((await this.db.query(S.setEnded, [state, at, error, id])).rowCount ?? 0) === 0) return false;
      for (const q of (await this.db.rows(S.queueByIntent, [id])).map(entry)) {
        if (retry) await this.db.query(S.release, [retry.countAttempt ? 1 : 0, retry.notBefore, q.bindingId]);
        else await this.db.query(S.dequeue, [q.bindingId]);
      }
      return true;
    });
  }

  async releaseTarget(bindingId: number, retry: { notBefore: number; countAttempt: boolean }, intentId: string): Promise<boolean> {
    return ((await this.db.query(S.releaseFrom, [retry.countAttempt ? 1 : 0, retry.notBefore, bindingId, intentId])).rowCount ?? 0) > 0;
  }

  finishKeeping(id: string, at: number, keep: Set<number>): Promise<boolean> {
    return this.db.transaction(async () => {
      if (((await this.db.query(S.setEnded, ['finished', at, null, id])).rowCount ?? 0) === 0) return false;
      for (const q of (await this.db.rows(S.queueByIntent, [id])).map(entry)) if (!keep.has(q.bindingId)) await this.db.query(S.dequeue, [q.bindingId]);
      return true;
    });
  }

  async awaitingVerification(limit: number): Promise<AwaitingEntry[]> {
    return (await this.db.rows(S.awaiting, [limit]))
      .map((r) => ({ ...entry(r), scanRef: r.i_scan_ref as string, appliance: r.i_appliance as string, launchedAt: r.i_launched_at as number, endedAt: r.i_ended_at as number }));
  }

  async intent(id: string): Promise<Intent | undefined> {
    const r = await this.db.row(S.intentById, [id]);
    return r ? intent(r) : undefined;
  }

  async activeIntents(): Promise<Intent[]> {
    return (await this.db.rows(S.active)).map(intent);
  }

  async targets(intentId: string): Promise<IntentTarget[]> {
    return (await this.db.rows<{ ip: string; identity_id: number; binding_id: number }>(S.targets, [intentId]))
      .map((r) => ({ ip: r.ip, identityId: r.identity_id, bindingId: r.binding_id }));
  }

  atomically<T>(fn: () => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  async decide(d: Decision): Promise<void> {
    await this.db.query(S.decide, [d.at, d.ip, d.identityId ?? null, d.decision, d.reason]);
  }

  async recentDecisions(limit: number): Promise<Decision[]> {
    return (await this.db.rows<DecisionRow & Record<string, unknown>>(S.recent, [limit])).map(decision);
  }

  async decisionsSince(since: number): Promise<Decision[]> {
    return (await this.db.rows<DecisionRow & Record<string, unknown>>(S.decisionsSince, [since])).map(decision);
  }

  async *decisionPagesSince(since: number, pageSize = 5000): AsyncGenerator<Decision[]> {
    for (let after = 0; ;) {
      const rows = await this.db.rows<DecisionRow & { id: number }>('SELECT id, at, ip, identity_id, decision, reason FROM decisions WHERE at >= $1 AND id > $2 ORDER BY id LIMIT $3', [since, after, pageSize]);
      if (rows.length) yield rows.map(decision);
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1].id);
    }
  }

  async endedIntentCounts(): Promise<{ region: string; appliance: string; state: string; n: number }[]> {
    return this.db.rows<{ region: string; appliance: string; state: string; n: number }>(S.endedIntentCounts);
  }

  async pruneDecisions(keep: number): Promise<void> {
    await this.db.query(S.pruneDecisions, [keep]);
  }

  async allQueued(): Promise<QueueEntry[]> {
    return (await this.db.rows(S.queueAll)).map(entry);
  }

  async lastDroppedByScanner(): Promise<Map<string, { identityId?: number; at: number; reason: string }>> {
    const rows = await this.db.rows<{ ip: string; identity_id: number | null; at: number; reason: string }>(S.lastDropped);
    return new Map(rows.map((r) => [`${r.ip}|${r.identity_id ?? ''}`, { identityId: r.identity_id ?? undefined, at: r.at, reason: r.reason }]));
  }

  async recentIntents(limit: number): Promise<Intent[]> {
    return (await this.db.rows(S.intentsRecent, [limit])).map(intent);
  }

  async mark(identityId: number): Promise<OperatorMark | undefined> {
    const r = await this.db.row<MarkRow & Record<string, unknown>>(S.mark, [identityId]);
    return r && toMark(r);
  }

  async marksOf(identityIds: readonly number[]): Promise<OperatorMark[]> {
    if (!identityIds.length) return [];
    return (await this.db.rows<MarkRow & Record<string, unknown>>(S.marksOf, [identityIds])).map(toMark);
  }

  async marksChangedSince(since: number): Promise<OperatorMark[]> {
    return (await this.db.rows<MarkRow & Record<string, unknown>>(S.marksChanged, [since])).map(toMark);
  }

  async marksLastUpdate(): Promise<number> {
    return (await this.db.row<{ m: number | null }>(S.marksMaxUpdated))?.m ?? 0;
  }

  async pruneMarks(now: number, rescanTtlMs: number): Promise<number> {
    return (await this.db.query(S.pruneMarks, [now, now - rescanTtlMs])).rowCount ?? 0;
  }

  requestRescan(identityIds: number[], now: number): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.query(MARKS_LOCK);
      for (const id of identityIds) await this.db.query(S.rescan, [id, now, now]);
    });
  }

  skip(identityIds: number[], until: number, now: number): Promise<void> {
    return this.db.transaction(async () => {
      await this.db.query(MARKS_LOCK);
      for (const id of identityIds) await this.db.query(S.skip, [id, until, now]);
    });
  }

  async saveScanCredits(credits: readonly ScanCredit[]): Promise<void> {
    if (!credits.length) return;
    // one device once per statement (ON CONFLICT cannot touch a row twice): the last credit given wins
    const last = [...new Map(credits.map((c) => [c.identityId, c])).values()];
    await this.db.query(S.saveCredits, [last.map((c) => c.identityId), last.map((c) => c.at), last.map((c) => c.prev ?? null),
      last.map((c) => c.lease?.lastSeen ?? null), last.map((c) => c.lease?.expiresAt ?? null), last.map((c) => c.whole)]);
  }

  async scanCredits(since: number): Promise<ScanCredit[]> {
    return (await this.db.rows<CreditRow & Record<string, unknown>>(S.credits, [since])).map(toCredit);
  }

  async pruneScanCredits(before: number): Promise<number> {
    return (await this.db.query(S.pruneCredits, [before])).rowCount ?? 0;
  }

  async saveLearned(records: readonly LearnedRecord[]): Promise<void> {
    if (!records.length) return;
    const last = [...new Map(records.map((r) => [r.name, r])).values()]; // one row once per statement
    await this.db.query(S.saveLearned, [last.map((r) => r.name), last.map((r) => r.state), last.map((r) => r.savedAt)]);
  }

  async learned(): Promise<LearnedRecord[]> {
    return (await this.db.rows<{ name: string; state: string; saved_at: number } & Record<string, unknown>>(S.learned, [])).map(toLearned);
  }
}
