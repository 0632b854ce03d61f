/**
 * The daemon as the HTTP listener sees it (src/http/view.ts): read-only named queries over the
 * running parts, so the listener needs neither the daemon nor SQL of its own.
 */
import type { DaemonView, EndedBinding } from '../http/view.js';
import type { Config } from '../config/schema.js';
import type { BindingView, Inventory, Store } from '../store/types.js';
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
  readonly store: Store;
  readonly inventory: Inventory;
  readonly policy: Policy;
  readonly scheduler: Scheduler;
  readonly scanner: Scanner;
  readonly ingest: Ingest;
  readonly inputs: InputHandle[];
  readonly storeHealth?: StoreHealth;
}

export function daemonView(d: ViewedParts): DaemonView {
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
    async recentIntents(limit) {
      const out = [];
      for (const i of await d.scheduler.store.recentIntents(limit)) out.push({ ...i, targets: (await d.scheduler.store.targets(i.id)).length });
      return out;
    },
    endedIntentCounts: () => d.scheduler.store.endedIntentCounts(),
    presentBindingPages: (now) => d.inventory.presentBindingPages(now),
    async endedBindings(since, now): Promise<EndedBinding[]> {
      return (await d.inventory.endedBindings(since, now)).map((e) => ({
        view: {
          id: e.id, ip: e.ip, identityId: e.identityId, startAt: e.startAt, lastSeen: e.endAt,
          lastScannedAt: e.lastScannedAt, lastScannedVia: e.lastScannedVia,
        } as BindingView,
        endAt: e.endAt,
        presentElsewhere: e.presentElsewhere,
      }));
    },
    inventoryCounts: (now) => d.inventory.counts(now),
    evaluate: (b, at) => d.policy.evaluate(b, at),
    regionOf: (ip) => d.policy.regions.lookup(ip)?.region.name,
    storeHealth: () => ({ writeErrors: d.storeHealth?.writeErrors ?? 0, problem: d.storeHealth?.problem() }),
    async ping() {
      if (!d.store) throw new Error('not started');
      await d.store.ping();
      const problem = d.storeHealth?.problem(); // failing writes, a full disk
      if (problem) throw new Error(problem.replace(/^state database: /, ''));
    },
  };
}
