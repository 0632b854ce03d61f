/**
 * The durable part of the scheduler: the queue of due bindings, scan intents and their targets,
 * and the decision log, all in SQLite so that a crash loses nothing and launches nothing twice.
 * The interface is in store/types.ts; this is its SQLite implementation (synchronous
 * better-sqlite3 underneath, behind the async gate of its connection: store/gate.ts).
 */
import type { DB } from '../store/db.js';
import { gateOf, type SqliteGate } from '../store/gate.js';
import type { AwaitingEntry, ConsideredWrites, Decision, DecisionKind, Intent, IntentState, IntentTarget, OperatorMark, LearnedRecord, QueueEntry, ScanCredit, SchedulerStore } from '../store/types.js';

export type { SchedulerStore, QueueEntry, IntentState, Intent, IntentTarget, DecisionKind, Decision, OperatorMark, AwaitingEntry, ConsideredWrites } from '../store/types.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export function entry(r: any): QueueEntry {
  return {
    bindingId: r.binding_id, ip: r.ip, identityId: r.identity_id, region: r.region, dueSince: r.due_since,
    lastSeen: r.last_seen ?? undefined, attempts: r.attempts, notBefore: r.not_before, intentId: r.intent_id ?? undefined,
  };
}

export function intent(r: any): Intent {
  return {
    id: r.id, region: r.region, appliance: r.appliance, state: r.state, scanRef: r.scan_ref ?? undefined,
    createdAt: r.created_at, launchedAt: r.launched_at ?? undefined, endedAt: r.ended_at ?? undefined, error: r.error ?? undefined,
    epoch: r.epoch ?? undefined,
  };
}

/** the states an intent is in while its scan may be in flight */
export const ACTIVE = "('launching', 'running')";
/** an intent may end only from an active state, and as `finished` only once its scan ran (param: the new state) */
export const ENDS_FROM = (state: string) => `(state = 'running' OR (state = 'launching' AND ${state} <> 'finished'))`;

/** strictly after every earlier mark (two in the same millisecond stay apart): the daemon reads marks newer than the last it saw */
const NEXT_STAMP = 'max(?, coalesce((SELECT max(updated_at) FROM operator_marks), 0) + 1)';

export interface MarkRow { identity_id: number; rescan_at: number | null; skip_until: number | null; updated_at: number }

export const toMark = (r: MarkRow): OperatorMark => ({ identityId: r.identity_id, rescanAt: r.rescan_at ?? undefined, skipUntil: r.skip_until ?? undefined, updatedAt: r.updated_at });

export interface CreditRow { identity_id: number; at: number; prev: number | null; lease_last_seen: number | null; lease_expires_at: number | null; whole: number | boolean }

export const toCredit = (r: CreditRow): ScanCredit => ({
  identityId: r.identity_id, at: r.at, ...(r.prev === null ? {} : { prev: r.prev }),
  ...(r.lease_last_seen === null || r.lease_expires_at === null ? {} : { lease: { lastSeen: r.lease_last_seen, expiresAt: r.lease_expires_at } }),
  whole: !!r.whole,
});

export const toLearned = (r: { name: string; state: string; saved_at: number | string }): LearnedRecord => ({ name: r.name, state: r.state, savedAt: Number(r.saved_at) });

export interface DecisionRow { at: number; ip: string; identity_id: number | null; decision: DecisionKind; reason: string }

export const decision = (r: DecisionRow): Decision => ({ at: r.at, ip: r.ip, identityId: r.identity_id ?? undefined, decision: r.decision, reason: r.reason });

export class SqliteSchedulerStore implements SchedulerStore {
  private readonly s;
  private readonly gate: SqliteGate;

  constructor(readonly db: DB) {
    this.gate = gateOf(db);
    this.s = {
      enqueue: db.prepare(`INSERT INTO queue (binding_id, ip, identity_id, region, due_since, last_seen) VALUES (@bindingId, @ip, @identityId, @region, @dueSince, @lastSeen)
        ON CONFLICT(binding_id) DO NOTHING`),
      queued: db.prepare('SELECT * FROM queue WHERE binding_id = ?'),
      moveRegion: db.prepare('UPDATE queue SET region = ? WHERE binding_id = ? AND intent_id IS NULL'),
      touch: db.prepare('UPDATE queue SET last_seen = ? WHERE binding_id = ? AND intent_id IS NULL'),
      queuedIds: db.prepare('SELECT binding_id FROM queue').pluck(),
      ready: db.prepare(`SELECT * FROM queue WHERE region = ? AND intent_id IS NULL AND not_before <= ?
        ORDER BY last_seen IS NULL, last_seen DESC, due_since LIMIT ?`),
      hasReady: db.prepare('SELECT 1 FROM queue WHERE region = ? AND intent_id IS NULL AND not_before <= ? LIMIT 1').pluck(),
      dequeue: db.prepare('DELETE FROM queue WHERE binding_id = ?'),
      dequeueWaiting: db.prepare('DELETE FROM queue WHERE binding_id = ? AND intent_id IS NULL'),
      holdUntil: db.prepare('UPDATE queue SET not_before = max(not_before, ?) WHERE binding_id = ? AND intent_id IS NULL'),
      assign: db.prepare('UPDATE queue SET intent_id = ? WHERE binding_id = ?'),
      release: db.prepare('UPDATE queue SET intent_id = NULL, attempts = attempts + @inc, not_before = @notBefore WHERE binding_id = @bindingId'),
      releaseFrom: db.prepare(`UPDATE queue SET intent_id = NULL, attempts = attempts + @inc, not_before = @notBefore WHERE binding_id = @bindingId AND intent_id = @intentId
        AND EXISTS (SELECT 1 FROM intents WHERE id = @intentId AND state IN ${ACTIVE})`),
      insertIntent: db.prepare(`INSERT INTO intents (id, region, appliance, state, created_at, epoch) VALUES (@id, @region, @appliance, 'launching', @createdAt, @epoch)`),
      insertTarget: db.prepare('INSERT INTO intent_targets (intent_id, ip, identity_id, binding_id) VALUES (?, ?, ?, ?)'),
      setRunning: db.prepare(`UPDATE intents SET state = 'running', scan_ref = ?, launched_at = ? WHERE id = ? AND state = 'launching'`),
      setEnded: db.prepare(`UPDATE intents SET state = @state, ended_at = @at, error = @error WHERE id = @id AND ${ENDS_FROM('@state')}`),
      intentById: db.prepare('SELECT * FROM intents WHERE id = ?'),
      active: db.prepare(`SELECT * FROM intents WHERE state IN ('launching', 'running') ORDER BY created_at`),
      targets: db.prepare('SELECT ip, identity_id, binding_id FROM intent_targets WHERE intent_id = ?'),
      queueByIntent: db.prepare('SELECT * FROM queue WHERE intent_id = ?'),
      awaiting: db.prepare(`SELECT q.*, i.scan_ref AS i_scan_ref, i.appliance AS i_appliance, i.launched_at AS i_launched_at, i.ended_at AS i_ended_at
        FROM queue q JOIN intents i ON i.id = q.intent_id WHERE i.state = 'finished' ORDER BY i.ended_at LIMIT ?`),
      decide: db.prepare('INSERT INTO decisions (at, ip, identity_id, decision, reason) VALUES (@at, @ip, @identityId, @decision, @reason)'),
      recent: db.prepare('SELECT at, ip, identity_id, decision, reason FROM decisions ORDER BY id DESC LIMIT ?'),
      pruneDecisions: db.prepare('DELETE FROM decisions WHERE id <= (SELECT max(id) FROM decisions) - ?'),
      queueAll: db.prepare('SELECT * FROM queue ORDER BY region, last_seen IS NULL, last_seen DESC, due_since'),
      intentsRecent: db.prepare('SELECT * FROM intents ORDER BY created_at DESC LIMIT ?'),
      decisionsSince: db.prepare('SELECT at, ip, identity_id, decision, reason FROM decisions WHERE at >= ? ORDER BY id'),
      // with the scans pruned after the retention (their counts kept): the counter never goes down
      endedIntentCounts: db.prepare(`SELECT region, appliance, state, sum(n) AS n FROM (
          SELECT region, appliance, state, count(*) AS n FROM intents WHERE state NOT IN ('launching', 'running') GROUP BY region, appliance, state
          UNION ALL SELECT region, appliance, state, n FROM pruned_intent_counts)
        GROUP BY region, appliance, state ORDER BY region, appliance, state`),
      lastDropped: db.prepare(`SELECT ip, identity_id, max(at) AS at, reason FROM decisions WHERE decision = 'dropped-by-scanner' GROUP BY ip, identity_id`),
      mark: db.prepare('SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE identity_id = ?'),
      marksChanged: db.prepare('SELECT identity_id, rescan_at, skip_until, updated_at FROM operator_marks WHERE updated_at > ? ORDER BY updated_at'),
      marksMaxUpdated: db.prepare('SELECT max(updated_at) AS m FROM operator_marks'),
      saveCredit: db.prepare(`INSERT INTO scan_credits (identity_id, at, prev, lease_last_seen, lease_expires_at, whole) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(identity_id) DO UPDATE SET at = excluded.at, prev = excluded.prev, lease_last_seen = excluded.lease_last_seen,
          lease_expires_at = excluded.lease_expires_at, whole = excluded.whole`),
      credits: db.prepare('SELECT * FROM scan_credits WHERE at >= ?'),
      pruneCredits: db.prepare('DELETE FROM scan_credits WHERE at < ?'),
      saveLearned: db.prepare(`INSERT INTO learned_state (name, state, saved_at) VALUES (?, ?, ?)
        ON CONFLICT(name) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at`),
      learned: db.prepare('SELECT name, state, saved_at FROM learned_state ORDER BY name'),
    };
  }

  enqueue(e: Omit<QueueEntry, 'attempts' | 'notBefore' | 'intentId'>): Promise<boolean> {
    return this.gate.run(() => this.s.enqueue.run({ ...e, lastSeen: e.lastSeen ?? null }).changes > 0);
  }

  moveRegion(bindingId: number, region: string): Promise<void> {
    return this.gate.run(() => void this.s.moveRegion.run(region, bindingId));
  }

  touch(bindingId: number, lastSeen: number): Promise<void> {
    return this.gate.run(() => void this.s.touch.run(lastSeen, bindingId));
  }

  queued(bindingId: number): Promise<QueueEntry | undefined> {
    return this.gate.run(() => {
      const r = this.s.queued.get(bindingId);
      return r ? entry(r) : undefined;
    });
  }

  queuedOf(bindingIds: readonly number[]): Promise<QueueEntry[]> {
    return this.gate.run(() => {
      const out: QueueEntry[] = [];
      for (const id of bindingIds) {
        const r = this.s.queued.get(id);
        if (r) out.push(entry(r));
      }
      return out;
    });
  }

  writeConsidered(w: ConsideredWrites): Promise<void> {
    return this.gate.run(this.db.transaction(() => {
      for (const id of w.dequeueIfWaiting) this.s.dequeueWaiting.run(id);
      for (const e of w.enqueue) this.s.enqueue.run({ ...e, lastSeen: e.lastSeen ?? null });
      for (const m of w.moveRegion) this.s.moveRegion.run(m.region, m.bindingId);
      for (const t of w.touch) this.s.touch.run(t.lastSeen, t.bindingId);
      for (const d of w.decisions) this.s.decide.run({ ...d, identityId: d.identityId ?? null });
    }));
  }

  queuedIds(): Promise<Set<number>> {
    return this.gate.run(() => new Set(this.s.queuedIds.all() as number[]));
  }

  ready(region: string, now: number, limit: number): Promise<QueueEntry[]> {
    return this.gate.run(() => this.s.ready.all(region, now, limit).map(entry));
  }

  readyRegions(now: number, regions: Iterable<string>): Promise<string[]> {
    return this.gate.run(() => {
      const out: string[] = [];
      for (const r of regions) if (this.s.hasReady.get(r, now) !== undefined) out.push(r);
      return out;
    });
  }

  dequeue(bindingId: number): Promise<void> {
    return this.gate.run(() => void this.s.dequeue.run(bindingId));
  }

  dequeueIfWaiting(bindingId: number): Promise<void> {
    return this.gate.run(() => void this.s.dequeueWaiting.run(bindingId));
  }

  holdUntil(bindingId: number, notBefore: number): Promise<void> {
    return this.gate.run(() => void this.s.holdUntil.run(notBefore, bindingId));
  }

  createIntent(i: Pick<Intent, 'id' | 'region' | 'appliance' | 'createdAt' | 'epoch'>, targets: IntentTarget[]): Promise<void> {
    return this.gate.run(this.db.transaction(() => {
      this.s.insertIntent.run({ id: i.id, region: i.region, appliance: i.appliance, createdAt: i.createdAt, epoch: i.epoch ?? null });
      for (const t of targets) {
        this.s.insertTarget.run(i.id, t.ip, t.identityId, t.bindingId);
        this.s.assign.run(i.id, t.bindingId);
      }
    }));
  }

  setRunning(id: string, scanRef: string, at: number): Promise<boolean> {
    return this.gate.run(() => this.s.setRunning.run(scanRef, at, id).changes > 0);
  }

  endIntent(id: string, state: Exclude<IntentState, 'launching' | 'running'>, at: number, error: string | null, retry?: { notBefore: number; countAttempt: boolean }): Promise<boolean> {
    return this.gate.run(this.db.transaction(() => {
      if (this.s.setEnded.run({ state, at, error, id }).changes === 0) return false;
      for (const q of this.s.queueByIntent.all(id).map(entry)) {
        if (retry) this.s.release.run({ bindingId: q.bindingId, inc: retry.countAttempt ? 1 : 0, notBefore: retry.notBefore });
        else this.s.dequeue.run(q.bindingId);
      }
      return true;
    }));
  }

  releaseTarget(bindingId: number, retry: { notBefore: number; countAttempt: boolean }, intentId: string): Promise<boolean> {
    return this.gate.run(() => this.s.releaseFrom.run({ bindingId, intentId, inc: retry.countAttempt ? 1 : 0, notBefore: retry.notBefore }).changes > 0);
  }

  finishKeeping(id: string, at: number, keep: Set<number>): Promise<boolean> {
    return this.gate.run(this.db.transaction(() => {
      if (this.s.setEnded.run({ state: 'finished', at, error: null, id }).changes === 0) return false;
      for (const q of this.s.queueByIntent.all(id).map(entry)) if (!keep.has(q.bindingId)) this.s.dequeue.run(q.bindingId);
      return true;
    }));
  }

  awaitingVerification(limit: number): Promise<AwaitingEntry[]> {
    return this.gate.run(() => this.s.awaiting.all(limit).map((r: any) => ({ ...entry(r), scanRef: r.i_scan_ref, appliance: r.i_appliance, launchedAt: r.i_launched_at, endedAt: r.i_ended_at })));
  }

  intent(id: string): Promise<Intent | undefined> {
    return this.gate.run(() => {
      const r = this.s.intentById.get(id);
      return r ? intent(r) : undefined;
    });
  }

  activeIntents(): Promise<Intent[]> {
    return this.gate.run(() => this.s.active.all().map(intent));
  }

  targets(intentId: string): Promise<IntentTarget[]> {
    return this.gate.run(() => (this.s.targets.all(intentId) as { ip: string; identity_id: number; binding_id: number }[])
      .map((r) => ({ ip: r.ip, identityId: r.identity_id, bindingId: r.binding_id })));
  }

  atomically<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate.transaction(fn);
  }

  decide(d: Decision): Promise<void> {
    return this.gate.run(() => void this.s.decide.run({ ...d, identityId: d.identityId ?? null }));
  }

  recentDecisions(limit: number): Promise<Decision[]> {
    return this.gate.run(() => (this.s.recent.all(limit) as DecisionRow[]).map(decision));
  }

  decisionsSince(since: number): Promise<Decision[]> {
    return this.gate.run(() => (this.s.decisionsSince.all(since) as DecisionRow[]).map(decision));
  }

  async *decisionPagesSince(since: number, pageSize = 5000): AsyncGenerator<Decision[]> {
    const page = this.db.prepare('SELECT id, at, ip, identity_id, decision, reason FROM decisions WHERE at >= ? AND id > ? ORDER BY id LIMIT ?');
    for (let after = 0; ;) {
      // between pages the event loop turns (sockets, timers)
      if (after) await new Promise((r) => setImmediate(r));
      const from = after;
      const rows = await this.gate.run(() => page.all(since, from, pageSize) as (DecisionRow & { id: number })[]);
      if (rows.length) yield rows.map(decision);
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1].id;
    }
  }

  endedIntentCounts(): Promise<{ region: string; appliance: string; state: string; n: number }[]> {
    return this.gate.run(() => this.s.endedIntentCounts.all() as { region: string; appliance: string; state: string; n: number }[]);
  }

  pruneDecisions(keep: number): Promise<void> {
    return this.gate.run(() => void this.s.pruneDecisions.run(keep));
  }

  allQueued(): Promise<QueueEntry[]> {
    return this.gate.run(() => this.s.queueAll.all().map(entry));
  }

  lastDroppedByScanner(): Promise<Map<string, { identityId?: number; at: number; reason: string }>> {
    return this.gate.run(() => {
      const rows = this.s.lastDropped.all() as { ip: string; identity_id: number | null; at: number; reason: string }[];
      return new Map(rows.map((r) => [`${r.ip}|${r.identity_id ?? ''}`, { identityId: r.identity_id ?? undefined, at: r.at, reason: r.reason }]));
    });
  }

  recentIntents(limit: number): Promise<Intent[]> {
    return this.gate.run(() => this.s.intentsRecent.all(limit).map(intent));
  }

  mark(identityId: number): Promise<OperatorMark | undefined> {
    return this.gate.run(() => {
      const r = this.s.mark.get(identityId) as MarkRow | undefined;
      return r && toMark(r);
    });
  }

  marksOf(identityIds: readonly number[]): Promise<OperatorMark[]> {
    return this.gate.run(() => {
      const out: OperatorMark[] = [];
      for (const id of identityIds) {
        const r = this.s.mark.get(id) as MarkRow | undefined;
        if (r) out.push(toMark(r));
      }
      return out;
    });
  }

  marksChangedSince(since: number): Promise<OperatorMark[]> {
    return this.gate.run(() => (this.s.marksChanged.all(since) as MarkRow[]).map(toMark));
  }

  marksLastUpdate(): Promise<number> {
    return this.gate.run(() => (this.s.marksMaxUpdated.get() as { m: number | null }).m ?? 0);
  }

  pruneMarks(now: number, rescanTtlMs: number): Promise<number> {
    return this.gate.run(() => this.db.prepare(`DELETE FROM operator_marks WHERE (skip_until IS NULL OR skip_until <= ?)
      AND (rescan_at IS NULL OR rescan_at < ? OR rescan_at <= (SELECT last_scanned_at FROM identities WHERE id = identity_id))`).run(now, now - rescanTtlMs).changes);
  }

  requestRescan(identityIds: number[], now: number): Promise<void> {
    return this.gate.run(() => {
      const up = this.db.prepare(`INSERT INTO operator_marks (identity_id, rescan_at, updated_at) VALUES (?, ?, ${NEXT_STAMP})
        ON CONFLICT(identity_id) DO UPDATE SET rescan_at = excluded.rescan_at, updated_at = excluded.updated_at`);
      this.db.transaction(() => { for (const id of identityIds) up.run(id, now, now); })();
    });
  }

  skip(identityIds: number[], until: number, now: number): Promise<void> {
    return this.gate.run(() => {
      const up = this.db.prepare(`INSERT INTO operator_marks (identity_id, skip_until, updated_at) VALUES (?, ?, ${NEXT_STAMP})
        ON CONFLICT(identity_id) DO UPDATE SET skip_until = excluded.skip_until, updated_at = excluded.updated_at`);
      this.db.transaction(() => { for (const id of identityIds) up.run(id, until, now); })();
    });
  }

  saveScanCredits(credits: readonly ScanCredit[]): Promise<void> {
    if (!credits.length) return Promise.resolve();
    return this.gate.run(() => {
      this.db.transaction(() => {
        for (const c of credits) this.s.saveCredit.run(c.identityId, c.at, c.prev ?? null, c.lease?.lastSeen ?? null, c.lease?.expiresAt ?? null, c.whole ? 1 : 0);
      })();
    });
  }

  scanCredits(since: number): Promise<ScanCredit[]> {
    return this.gate.run(() => (this.s.credits.all(since) as CreditRow[]).map(toCredit));
  }

  pruneScanCredits(before: number): Promise<number> {
    return this.gate.run(() => this.s.pruneCredits.run(before).changes);
  }

  saveLearned(records: readonly LearnedRecord[]): Promise<void> {
    if (!records.length) return Promise.resolve();
    return this.gate.run(() => {
      this.db.transaction(() => {
        for (const r of records) this.s.saveLearned.run(r.name, r.state, r.savedAt);
      })();
    });
  }

  learned(): Promise<LearnedRecord[]> {
    return this.gate.run(() => (this.s.learned.all() as { name: string; state: string; saved_at: number }[]).map(toLearned));
  }
}
