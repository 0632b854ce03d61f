/**
 * Decisions are logged from every phase through `store.decide`: to tell an observer (the daemon's
 * notifications) about each without touching every phase, the phases get a view of the store whose
 * `decide` also calls the observer once the write is done. An observer that throws is not the
 * scheduler's problem: it is caught here.
 */
import type { Decision, SchedulerStore } from './queue.js';

export function observeDecisions(store: SchedulerStore, observer: (d: Decision) => void): SchedulerStore {
  const view = Object.create(store) as SchedulerStore;
  const tell = (d: Decision) => {
    try {
      observer(d);
    } catch {
      /* an observer's failure never stops the scheduler */
    }
  };
  view.decide = (d: Decision) => {
    const r = store.decide(d) as unknown;
    if (r instanceof Promise) return r.then((x) => (tell(d), x)) as never;
    tell(d);
    return r as never;
  };
  view.writeConsidered = async (w) => {
    await store.writeConsidered(w);
    for (const d of w.decisions) tell(d);
  };
  return view;
}
