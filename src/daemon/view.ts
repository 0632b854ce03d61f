/**
 * The daemon as the HTTP listener sees it (src/http/view.ts): read-only named queries over the
 * running parts, so the listener needs neither the daemon nor SQL of its own.
 */
import type { DaemonView, EndedBinding } from '../http/view.js';
import type { Config } from '../config/schema.js';
import type { DB } from '../store/db.js';
import type { BindingView, Inventory } from '../inventory/inventory.js';
import type { Policy } from '../policy/policy.js';
import type { Scanner } from '../scanners/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { InputHandle } from '../sources/types.js';
import type { Ingest } from './ingest.js';
import type { StoreHealth } from '../store/health.js';

/** The running parts the view reads (the Daemon has them; read afresh at each query: a reload replaces the policy). */
export interface ViewedParts {
  readonly startedAt: number;
  readonly config: Config;
  readonly db: DB;
  readonly inventory: Inventory;
  readonly policy: Policy;
  readonly scheduler: Scheduler;
  readonly scanner: Scanner;
  readonly ingest: Ingest;
  readonly inputs: InputHandle[];
  readonly storeHealth?: StoreHealth;
}

interface EndedRow {
  id: number; ip: string; identity_id: number; start_at: number; end_at: number; end_reason: string | null;
  last_scanned_at: number | null; last_scanned_via: string | null; present_elsewhere: number;
}

export function daemonView(d: ViewedParts): DaemonView {
  let ended: ReturnType<DB['prepare']> | undefined;
  return {
    startedAt: d.startedAt,
    config: () => d.config,
    inputs: () => d.inputs,
    ingestCounters: () => d.ingest.counters,
    decoderCounters: () => d.ingest.decoderCounters(),
    scanner: () => ({ kind: d.scanner.kind, allowance: d.scanner.allowance(), block: d.scheduler.scannerBlock() }),
    schedulerCounters: () => d.scheduler.counters,
    applianceLoad: (name) => d.scheduler.applianceLoad(name),
    activeIntents: () => d.scheduler.store.activeIntents(),
    queue: () => d.scheduler.store.allQueued(),
    recentDecisions: (limit) => d.scheduler.store.recentDecisions(limit),
    decisionsSince: (since) => d.scheduler.store.decisionsSince(since),
    recentIntents: (limit) => d.scheduler.store.recentIntents(limit).map((i) => ({ ...i, targets: d.scheduler.store.targets(i.id).length })),
    endedIntentCounts: () => d.scheduler.store.endedIntentCounts(),
    *presentBindings(now) {
      for (const page of d.inventory.presentBindingPages(now)) yield* page;
    },
    endedBindings(since, now): EndedBinding[] {
      ended ??= d.db.prepare(`SELECT b.id, b.ip, b.identity_id, b.start_at, b.end_at, b.end_reason, i.last_scanned_at, i.last_scanned_via,
          EXISTS (SELECT 1 FROM bindings o WHERE o.identity_id = b.identity_id AND o.end_at IS NULL AND (o.expires_at IS NULL OR o.expires_at >= @now)) AS present_elsewhere
        FROM bindings b JOIN identities i ON i.id = b.identity_id
        WHERE b.end_at IS NOT NULL AND b.end_at >= @since ORDER BY b.end_at DESC LIMIT 20000`);
      return (ended.all({ now, since }) as EndedRow[]).map((e) => ({
        view: {
          id: e.id, ip: e.ip, identityId: e.identity_id, startAt: e.start_at, lastSeen: e.end_at,
          lastScannedAt: e.last_scanned_at ?? undefined, lastScannedVia: e.last_scanned_via ?? undefined,
        } as BindingView,
        endAt: e.end_at,
        presentElsewhere: e.present_elsewhere !== 0,
      }));
    },
    inventoryCounts: (now) => d.inventory.counts(now),
    evaluate: (b, at) => d.policy.evaluate(b, at),
    regionOf: (ip) => d.policy.regions.lookup(ip)?.region.name,
    storeHealth: () => ({ writeErrors: d.storeHealth?.writeErrors ?? 0, problem: d.storeHealth?.problem() }),
    ping() {
      if (!d.db) throw new Error('not started');
      d.db.prepare('SELECT 1 AS ok').get();
      const problem = d.storeHealth?.problem(); // failing writes, a full disk
      if (problem) throw new Error(problem.replace(/^state database: /, ''));
    },
  };
}
