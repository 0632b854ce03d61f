/**
 * Decisions are logged from every phase through `store.decide`: to tell an observer (the daemon's
 * notifications) about each without touching every phase, the phases get a view of the store whose
 * `decide` also calls the observer once the write is done. A decision written inside a transaction
 * (`atomically`) is told once that transaction has committed, and never if it rolls back: a
 * `host-scanned` event went out for a scan a refused transaction then did not record (a cluster
 * leader's fenced write after its term ended), and the next leader sent it again. An observer that
 * throws is not the scheduler's problem: it is caught here.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Decision, SchedulerStore } from './queue.js';

export function observeDecisions(store: SchedulerStore, observer: (d: Decision) => void): SchedulerStore {
  const view = Object.create(store) as SchedulerStore;
  /** the decisions written inside the transaction this call runs in (held until it commits) */
  const held = new AsyncLocalStorage<Decision[]>();
  const tell = (d: Decision) => {
    try {
      observer(d);
    } catch {
      /* an observer's failure never stops the scheduler */
    }
  };
  const told = (d: Decision) => {
    const inside = held.getStore();
    if (inside) inside.push(d);
    else tell(d);
  };
  view.atomically = async <T>(fn: () => Promise<T>): Promise<T> => {
    // (a nested transaction's decisions wait for the outermost one)
    if (held.getStore()) return store.atomically(fn);
    const buffer: Decision[] = [];
    const r = await held.run(buffer, () => store.atomically(fn));
    for (const d of buffer) tell(d);
    return r;
  };
  view.decide = (d: Decision) => {
    const r = store.decide(d) as unknown;
    if (r instanceof Promise) return r.then((x) => (told(d), x)) as never;
    told(d);
    return r as never;
  };
  view.writeConsidered = async (w) => {
    await store.writeConsidered(w);
    for (const d of w.decisions) told(d);
  };
  return view;
}
