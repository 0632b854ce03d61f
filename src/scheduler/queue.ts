/**
 * The durable part of the scheduler: the queue of due bindings, scan intents and their targets,
 * and the decision log, all in SQLite so that a crash loses nothing and launches nothing twice.
 */
import type { DB } from '../store/db.js';

export interface QueueEntry {
  bindingId: number;
  ip: string;
  identityId: number;
  region: string;
  dueSince: number;
  /** the device's last sighting (ms): the most recently seen go first */
  lastSeen?: number;
  attempts: number;
  notBefore: number;
  intentId?: string;
}

export type IntentState = 'launching' | 'running' | 'finished' | 'error' | 'canceled' | 'abandoned';

export interface Intent {
  id: string;
  region: string;
  appliance: string;
  state: IntentState;
  scanRef?: string;
  createdAt: number;
  launchedAt?: number;
  endedAt?: number;
  error?: string;
}

export interface IntentTarget {
  ip: string;
  identityId: number;
  bindingId: number;
}

/**
 * What the scheduler decided about an address, as logged (the decision log, `onsight hosts`, the
 * status page): `due` queued; `not-due` not queued (the reason says why); `dropped` taken out of
 * the queue at launch time (re-check failed); `launched`; `scanned` recorded as scanned;
 * `not-scanned` a scan ended without a result for it; `dropped-by-scanner` the scanner left it out
 * of the scan it launched (outside its subscription, say); `canceled` its scan was canceled;
 * `failed` given up after too many failed scans.
 */
export type DecisionKind = 'due' | 'not-due' | 'dropped' | 'launched' | 'scanned' | 'not-scanned' | 'dropped-by-scanner' | 'canceled' | 'failed';

export interface Decision {
  at: number;
  ip: string;
  identityId?: number;
  decision: DecisionKind;
  reason: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function entry(r: any): QueueEntry {
  return {
    bindingId: r.binding_id, ip: r.ip, identityId: r.identity_id, region: r.region, dueSince: r.due_since,
    lastSeen: r.last_seen ?? undefined, attempts: r.attempts, notBefore: r.not_before, intentId: r.intent_id ?? undefined,
  };
}

function intent(r: any): Intent {
  return {
    id: r.id, region: r.region, appliance: r.appliance, state: r.state, scanRef: r.scan_ref ?? undefined,
    createdAt: r.created_at, launchedAt: r.launched_at ?? undefined, endedAt: r.ended_at ?? undefined, error: r.error ?? undefined,
  };
}

export class SchedulerStore {
  private readonly s;

  constructor(readonly db: DB) {
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
      assign: db.prepare('UPDATE queue SET intent_id = ? WHERE binding_id = ?'),
      release: db.prepare('UPDATE queue SET intent_id = NULL, attempts = attempts + @inc, not_before = @notBefore WHERE binding_id = @bindingId'),
      insertIntent: db.prepare(`INSERT INTO intents (id, region, appliance, state, created_at) VALUES (@id, @region, @appliance, 'launching', @createdAt)`),
      insertTarget: db.prepare('INSERT INTO intent_targets (intent_id, ip, identity_id, binding_id) VALUES (?, ?, ?, ?)'),
      setRunning: db.prepare(`UPDATE intents SET state = 'running', scan_ref = ?, launched_at = ? WHERE id = ?`),
      setEnded: db.prepare('UPDATE intents SET state = ?, ended_at = ?, error = ? WHERE id = ?'),
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
      endedIntentCounts: db.prepare(`SELECT region, appliance, state, count(*) AS n FROM intents WHERE state NOT IN ('launching', 'running')
        GROUP BY region, appliance, state ORDER BY region, appliance, state`),
      lastDropped: db.prepare(`SELECT ip, identity_id, max(at) AS at, reason FROM decisions WHERE decision = 'dropped-by-scanner' GROUP BY ip, identity_id`),
    };
  }

  enqueue(e: Omit<QueueEntry, 'attempts' | 'notBefore' | 'intentId'>): boolean {
    return this.s.enqueue.run({ ...e, lastSeen: e.lastSeen ?? null }).changes > 0;
  }

  /** A waiting entry moves to the region its address maps to now. */
  moveRegion(bindingId: number, region: string): void {
    this.s.moveRegion.run(region, bindingId);
  }

  /** A queued device seen again moves up the queue. */
  touch(bindingId: number, lastSeen: number): void {
    this.s.touch.run(lastSeen, bindingId);
  }

  queued(bindingId: number): QueueEntry | undefined {
    const r = this.s.queued.get(bindingId);
    return r ? entry(r) : undefined;
  }

  /** binding ids of every queue entry */
  queuedIds(): Set<number> {
    return new Set(this.s.queuedIds.all() as number[]);
  }

  ready(region: string, now: number, limit: number): QueueEntry[] {
    return this.s.ready.all(region, now, limit).map(entry);
  }

  /** Those of `regions` with a queue entry ready to launch (one indexed probe per region, not a queue scan). */
  readyRegions(now: number, regions: Iterable<string>): string[] {
    const out: string[] = [];
    for (const r of regions) if (this.s.hasReady.get(r, now) !== undefined) out.push(r);
    return out;
  }

  dequeue(bindingId: number): void {
    this.s.dequeue.run(bindingId);
  }

  /** Leave the queue unless a scan for it is in flight (an operator's skip does not cancel a running scan). */
  dequeueIfWaiting(bindingId: number): void {
    this.s.dequeueWaiting.run(bindingId);
  }

  /** Record the intent and its targets before the launch call: the crash-safety anchor. */
  createIntent(i: Pick<Intent, 'id' | 'region' | 'appliance' | 'createdAt'>, targets: IntentTarget[]): void {
    this.db.transaction(() => {
      this.s.insertIntent.run(i);
      for (const t of targets) {
        this.s.insertTarget.run(i.id, t.ip, t.identityId, t.bindingId);
        this.s.assign.run(i.id, t.bindingId);
      }
    })();
  }

  setRunning(id: string, scanRef: string, at: number): void {
    this.s.setRunning.run(scanRef, at, id);
  }

  /** End an intent; its queue entries are removed (finished) or released for a retry later. */
  endIntent(id: string, state: Exclude<IntentState, 'launching' | 'running'>, at: number, error: string | null, retry?: { notBefore: number; countAttempt: boolean }): void {
    this.db.transaction(() => {
      this.s.setEnded.run(state, at, error, id);
      for (const q of this.s.queueByIntent.all(id).map(entry)) {
        if (retry) this.s.release.run({ bindingId: q.bindingId, inc: retry.countAttempt ? 1 : 0, notBefore: retry.notBefore });
        else this.s.dequeue.run(q.bindingId);
      }
    })();
  }

  /** Take one target out of its intent, back to the queue (the rest of the intent is ended later). */
  releaseTarget(bindingId: number, retry: { notBefore: number; countAttempt: boolean }): void {
    this.s.release.run({ bindingId, inc: retry.countAttempt ? 1 : 0, notBefore: retry.notBefore });
  }

  /**
   * End a finished intent but keep the queue entries of `keep` assigned to it: their result is
   * yet to be confirmed by the scanner (awaitingVerification); the others leave the queue.
   */
  finishKeeping(id: string, at: number, keep: Set<number>): void {
    this.db.transaction(() => {
      this.s.setEnded.run('finished', at, null, id);
      for (const q of this.s.queueByIntent.all(id).map(entry)) if (!keep.has(q.bindingId)) this.s.dequeue.run(q.bindingId);
    })();
  }

  /** Queue entries of finished scans whose result is not confirmed yet, oldest scan first. */
  awaitingVerification(limit: number): (QueueEntry & { scanRef: string; appliance: string; launchedAt: number; endedAt: number })[] {
    return this.s.awaiting.all(limit).map((r: any) => ({ ...entry(r), scanRef: r.i_scan_ref, appliance: r.i_appliance, launchedAt: r.i_launched_at, endedAt: r.i_ended_at }));
  }

  intent(id: string): Intent | undefined {
    const r = this.s.intentById.get(id);
    return r ? intent(r) : undefined;
  }

  activeIntents(): Intent[] {
    return this.s.active.all().map(intent);
  }

  targets(intentId: string): IntentTarget[] {
    return (this.s.targets.all(intentId) as { ip: string; identity_id: number; binding_id: number }[])
      .map((r) => ({ ip: r.ip, identityId: r.identity_id, bindingId: r.binding_id }));
  }

  /** Run `fn` as one transaction: the many small writes of one pass commit once instead of each on its own. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  decide(d: Decision): void {
    this.s.decide.run({ ...d, identityId: d.identityId ?? null });
  }

  recentDecisions(limit: number): Decision[] {
    return (this.s.recent.all(limit) as { at: number; ip: string; identity_id: number | null; decision: DecisionKind; reason: string }[])
      .map((r) => ({ at: r.at, ip: r.ip, identityId: r.identity_id ?? undefined, decision: r.decision, reason: r.reason }));
  }

  /** Decisions logged since `since` (ms), oldest first. */
  decisionsSince(since: number): Decision[] {
    return (this.s.decisionsSince.all(since) as { at: number; ip: string; identity_id: number | null; decision: DecisionKind; reason: string }[])
      .map((r) => ({ at: r.at, ip: r.ip, identityId: r.identity_id ?? undefined, decision: r.decision, reason: r.reason }));
  }

  /** Ended intents by region, appliance and final state (durable counts for /metrics). */
  endedIntentCounts(): { region: string; appliance: string; state: string; n: number }[] {
    return this.s.endedIntentCounts.all() as { region: string; appliance: string; state: string; n: number }[];
  }

  pruneDecisions(keep: number): void {
    this.s.pruneDecisions.run(keep);
  }

  allQueued(): QueueEntry[] {
    return this.s.queueAll.all().map(entry);
  }

  /** The last time the scanner dropped each (address, device) from a scan, and why (`onsight hosts`). */
  lastDroppedByScanner(): Map<string, { identityId?: number; at: number; reason: string }> {
    const rows = this.s.lastDropped.all() as { ip: string; identity_id: number | null; at: number; reason: string }[];
    return new Map(rows.map((r) => [`${r.ip}|${r.identity_id ?? ''}`, { identityId: r.identity_id ?? undefined, at: r.at, reason: r.reason }]));
  }

  recentIntents(limit: number): Intent[] {
    return this.s.intentsRecent.all(limit).map(intent);
  }
}
