/**
 * host-missed events across leaders: the event id names the binding and when it ended, so the
 * same miss reported again (a new cluster leader, a restart) is the same event to a receiver that
 * drops repeated ids; and a node that starts to lead looks back from then (less the takeover's
 * lookback), not from its own start days ago.
 */
import { describe, expect, it } from 'vitest';
import { factId } from '../src/notify/events.js';
import { Notifier, type NotifyContext } from '../src/notify/notifier.js';
import { silentLogger } from '../src/log.js';

describe('host-missed across leaders', () => {
  it('ids name the fact: the same key gives the same UUID-shaped id, another key another', () => {
    const a = factId('host-missed 41 1796200000000');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(factId('host-missed 41 1796200000000')).toBe(a);
    expect(factId('host-missed 42 1796200000000')).not.toBe(a);
  });

  it('a node that starts to lead looks back from then, not from its own start', async () => {
    const started = Date.parse('2026-12-01T00:00:00Z');
    const sinces: number[] = [];
    const ctx: NotifyContext = {
      identity: () => undefined, regionOf: () => undefined,
      endedBindings: (since) => (sinces.push(since), []),
      decisionPagesSince: async function* () { /* none */ },
      evaluator: () => () => ({ due: false }) as never,
    };
    const cfg = { webhook: { url: 'http://127.0.0.1:9/', secret: { env: 'S' }, events: ['host-missed' as const], timeoutS: 1, maxAttempts: 1, backoffS: 0.05, maxBackoffS: 1, maxQueue: 10 } };
    const n = new Notifier(cfg as never, ctx, silentLogger(), started, { S: 'secret-0123456789' });
    const lead = started + 3 * 86_400_000;
    n.leading(lead);
    await n.checkMissed(lead + 1000);
    expect(sinces).toEqual([lead - 15 * 60_000]);
  });
});
