/**
 * The decision observer (the daemon's notifications, scheduler/observe.ts) hears of a decision
 * written inside a transaction only once that transaction has committed, and never when it rolls
 * back (a host-scanned event went out for a scan a refused transaction did not record). Decisions
 * written outside a transaction are told at once. A real SQLite scheduler store.
 */
import { describe, expect, it } from 'vitest';
import { observeDecisions } from '../src/scheduler/observe.js';
import { T0, setup } from './helpers/scheduler.js';

describe('decisions told to an observer', () => {
  it('after the commit of the transaction that wrote them, never after a rollback', async () => {
    const { store } = await setup();
    const told: string[] = [];
    const view = observeDecisions(store, (d) => told.push(d.reason));
    const d = (reason: string) => ({ at: T0, ip: '10.20.1.1', decision: 'scanned' as const, reason });
    await view.decide(d('outside a transaction'));
    expect(told).toEqual(['outside a transaction']);
    await expect(view.atomically(async () => {
      await view.decide(d('rolled back'));
      throw new Error('refused: the term ended');
    })).rejects.toThrow('refused');
    expect(told).toEqual(['outside a transaction']);
    await view.atomically(async () => {
      await view.decide(d('committed'));
      await view.atomically(async () => view.decide(d('nested')));
      expect(told).toEqual(['outside a transaction']); // not before the commit
    });
    expect(told).toEqual(['outside a transaction', 'committed', 'nested']);
    expect((await store.recentDecisions(10)).map((x) => x.reason).sort()).toEqual(['committed', 'nested', 'outside a transaction']);
  });
});
