// Intent transitions are conditional, on both stores: each applies only from the states it may come
// from and reports false (nothing written) otherwise; the scheduler counts and logs a refused one and
// carries on. Intents record the lease epoch they were created under (none on a single node).
import { describe, expect, it as itAll } from 'vitest';
import { mac, setupOn } from './helpers/scheduler.js';
import { STORE_KINDS } from './helpers/stores.js';

describe.each(STORE_KINDS)('intent transitions on $name', (kind) => {
  if (kind.skip) console.log(`skip intent transitions on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('record the epoch; launching → running only from launching; ends only from active states, finished only from running', async () => {
    const { store, see, clock } = await setupOn(kind);
    const a = await see({ ip: '10.20.1.1', mac: mac(1) });
    const b = await see({ ip: '10.20.1.2', mac: mac(2) });
    const ta = { ip: '10.20.1.1', identityId: a.identityId!, bindingId: a.bindingId! };
    const tb = { ip: '10.20.1.2', identityId: b.identityId!, bindingId: b.bindingId! };
    await store.createIntent({ id: 'i-1', region: 'emea', appliance: 'emea-1', createdAt: clock.t, epoch: 7 }, [ta]);
    await store.createIntent({ id: 'i-2', region: 'emea', appliance: 'emea-1', createdAt: clock.t }, [tb]);
    expect((await store.intent('i-1'))?.epoch).toBe(7);
    expect((await store.intent('i-2'))?.epoch).toBeUndefined();

    expect(await store.endIntent('i-1', 'finished', clock.t, null)).toBe(false); // a launch never confirmed did not finish
    expect(await store.finishKeeping('i-1', clock.t, new Set())).toBe(false);
    expect((await store.intent('i-1'))?.state).toBe('launching');
    expect(await store.setRunning('i-1', 'scan/1.1', clock.t)).toBe(true);
    expect(await store.setRunning('i-1', 'scan/1.2', clock.t)).toBe(false); // a second answer does not overwrite the first
    expect((await store.intent('i-1'))?.scanRef).toBe('scan/1.1');

    // i-2 abandoned (reconcile); its target requeued; a late "launched" answer cannot bring it back
    expect(await store.endIntent('i-2', 'abandoned', clock.t, 'not found', { notBefore: clock.t, countAttempt: false })).toBe(true);
    expect(await store.setRunning('i-2', 'scan/2.1', clock.t)).toBe(false);
    expect((await store.intent('i-2'))?.state).toBe('abandoned');
    // the requeued target goes to a new intent: the ended one can no longer end or release it
    await store.createIntent({ id: 'i-3', region: 'emea', appliance: 'emea-1', createdAt: clock.t }, [tb]);
    expect(await store.endIntent('i-2', 'error', clock.t, 'late', { notBefore: clock.t + 1e6, countAttempt: true })).toBe(false);
    expect(await store.releaseTarget(tb.bindingId, { notBefore: clock.t + 1e6, countAttempt: true }, 'i-2')).toBe(false);
    expect((await store.queued(tb.bindingId))).toMatchObject({ intentId: 'i-3', attempts: 0 });
    // released from its own active intent it is
    expect(await store.releaseTarget(tb.bindingId, { notBefore: clock.t, countAttempt: true }, 'i-3')).toBe(true);
    expect((await store.queued(tb.bindingId))).toMatchObject({ intentId: undefined, attempts: 1 });

    expect(await store.endIntent('i-1', 'finished', clock.t, null)).toBe(true);
    expect(await store.endIntent('i-1', 'canceled', clock.t, 'twice')).toBe(false); // ended once
    expect((await store.intent('i-1'))?.state).toBe('finished');
    expect(await store.queued(ta.bindingId)).toBeUndefined();
  });

  it('a refused transition is counted and logged by the scheduler, not thrown: a scan that ends after its intent was ended elsewhere records nothing', async () => {
    const { store, see, sched, scanner, clock, inv } = await setupOn(kind);
    const r = await see({ ip: '10.20.1.7', mac: mac(7) });
    await sched.tick();
    const [l] = scanner.launches;
    expect((await store.intent(l.intentId))?.state).toBe('running');
    // another actor (a new leader) ends the intent while the scheduler's status call is out
    const list = scanner.listScans.bind(scanner);
    let endedElsewhere: boolean | undefined;
    scanner.listScans = async (f) => {
      const out = await list(f);
      endedElsewhere = await store.endIntent(l.intentId, 'abandoned', clock.t, 'taken over', { notBefore: clock.t + 3_600_000, countAttempt: false });
      return out;
    };
    scanner.finish(l.ref);
    clock.t += 120_000;
    await expect(sched.poll(true)).resolves.toBeUndefined();
    expect(endedElsewhere).toBe(true);
    expect(sched.counters.transitionsRefused).toBe(1);
    expect(sched.counters.finished).toBe(0);
    expect((await store.intent(l.intentId))?.state).toBe('abandoned');
    expect((await inv.identity(r.identityId!))?.lastScannedAt).toBeUndefined(); // its outcome rolled back with the refused end
    expect((await store.recentDecisions(20)).some((d) => d.decision === 'scanned')).toBe(false);
  });

  it('reconcile adopts only a scan whose title starts with our prefix: another deployment\'s scan is never taken for ours', async () => {
    const { store, see, sched, scanner, clock } = await setupOn(kind, { reconcileGraceS: 60 });
    await see({ ip: '10.20.1.8', mac: mac(8) });
    scanner.failNext = 'lost-answer';
    await sched.tick();
    const [l] = scanner.launches;
    expect((await store.intent(l.intentId))?.state).toBe('launching');
    l.title = `other-cluster ${l.intentId} emea`; // the scan in the list is not titled as ours
    clock.t += 61_000;
    await sched.reconcile();
    expect(sched.counters.reconciled).toBe(0);
    expect((await store.intent(l.intentId))?.state).toBe('abandoned');
    expect(scanner.states.get(l.ref)).toBe('running'); // and it was not touched
  });
});
