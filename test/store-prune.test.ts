/**
 * The hourly prune on both stores: ended scans older than the retention go, their counts kept (so
 * onsight_appliance_scans_total never goes down); sightings and ended bindings as before; devices
 * neither seen nor scanned for forgetAfterS go once no row names them, and not before.
 */
import { describe, expect, it as itAll } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import { inventoryOptions } from '../src/config/derive.js';
import { validateConfig } from '../src/config/load.js';
import { SKIP_FOREVER } from '../src/scheduler/marks.js';
import { STORE_KINDS } from './helpers/stores.js';

const DAY = 86400_000;
const T0 = Date.parse('2026-06-01T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const lease = (ip: string, mac: string, at: number): Sighting => ({ kind: 'lease', ip, mac, at: iso(at), durationS: 3600, format: 'isc-dhcpd', source: 'test' });
const release = (ip: string, mac: string, at: number): Sighting => ({ kind: 'release', ip, mac, at: iso(at), format: 'isc-dhcpd', source: 'test' });
const mac = (n: number) => `52:54:00:00:09:${n.toString(16).padStart(2, '0')}`;

describe('forgetAfterS from the config: the longest rescan window, never below the retention', () => {
  itAll('policy, rules and regions', () => {
    const { config } = validateConfig({
      timezone: 'UTC', inventory: { retention: '30d' }, scanner: { type: 'dry-run' },
      policy: { rescanAfter: '7d', scope: ['10.0.0.0/8'], rules: [{ cidrs: ['10.1.0.0/16'], rescanAfter: '120d' }] },
      regions: [{ name: 'r', cidrs: ['10.0.0.0/8'], appliances: ['a'], rescanAfter: '60d' }],
    });
    expect(inventoryOptions(config)).toMatchObject({ retentionS: 30 * 86400, forgetAfterS: 120 * 86400 });
  });
});

describe.each(STORE_KINDS)('prune on $name', (kind) => {
  if (kind.skip) console.log(`skip prune on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('ended scans go after the retention with their counts kept; devices long gone go once nothing names them', async () => {
    const store = await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 10 * 86400, forgetAfterS: 20 * 86400 });
    const { inventory: inv, scheduler: sch } = store;
    // six devices, each leaving at once (released): 1 scanned long ago, 2 scanned lately, 3 skipped by an operator,
    // 4 queued, 5 a target of an old finished scan, 6 the newest (seen long ago too)
    const r = [];
    for (let n = 1; n <= 6; n++) r.push((await inv.commitBatch([lease(`10.0.0.${n}`, mac(n), T0 + n * 1000)]))[0]);
    for (let n = 1; n <= 6; n++) await inv.commitBatch([release(`10.0.0.${n}`, mac(n), T0 + 60_000 + n * 1000)]);
    await inv.markScanned([r[0].identityId!], T0, 'onsight');
    await inv.markScanned([r[1].identityId!], T0 + 25 * DAY, 'scanner'); // a scan dated later (a range run found it elsewhere)
    await sch.skip([r[2].identityId!], SKIP_FOREVER, T0);
    await sch.enqueue({ bindingId: r[3].bindingId!, ip: '10.0.0.4', identityId: r[3].identityId!, region: 'r', dueSince: T0, lastSeen: T0 });
    // scans: old finished (device 5), old finished whose result device 4's queue entry still awaits, old running, recent canceled
    const intent = async (id: string, at: number, targets: number[], end?: 'finished' | 'canceled' | 'awaited') => {
      await sch.createIntent({ id, region: 'r', appliance: 'a1', createdAt: at }, targets.map((k) => ({ ip: `10.0.0.${k + 1}`, identityId: r[k].identityId!, bindingId: r[k].bindingId! })));
      await sch.setRunning(id, `scan/${id}`, at + 1000);
      if (end === 'awaited') expect(await sch.finishKeeping(id, at + 60_000, new Set(targets.map((k) => r[k].bindingId!)))).toBe(true);
      else if (end) await sch.endIntent(id, end, at + 60_000, null);
    };
    await intent('old-done', T0 + 1000, [4], 'finished');
    await intent('old-queued', T0 + 2000, [3], 'awaited');
    await intent('old-running', T0 + 3000, []);
    await intent('new-done', T0 + 29 * DAY, [], 'canceled');
    const before = await sch.endedIntentCounts();
    expect(before).toEqual([{ region: 'r', appliance: 'a1', state: 'canceled', n: 1 }, { region: 'r', appliance: 'a1', state: 'finished', n: 2 }]);
    expect((await sch.awaitingVerification(10)).map((a) => a.bindingId)).toEqual([r[3].bindingId]);

    const now = T0 + 30 * DAY;
    const n = await inv.prune(now);
    expect(n.intents).toBe(1); // old-done: old-queued is named by the queue, old-running is not ended, new-done is recent
    expect(await sch.intent('old-done')).toBeUndefined();
    expect(await sch.targets('old-done')).toEqual([]);
    for (const id of ['old-queued', 'old-running', 'new-done']) expect(await sch.intent(id)).toBeDefined();
    expect(await sch.endedIntentCounts()).toEqual(before); // the counter does not go down
    expect(n.sightings).toBe(12);
    // bindings: 1, 2, 3 and 5 and 6 ended long ago; 4 is queued (and a target of old-queued)
    expect(n.bindings).toBe(5);
    expect(await inv.binding(r[3].bindingId!)).toBeDefined();
    // devices: 1 (scanned long ago) and 5 (its scan pruned) go; 2 was scanned 5 days ago, 3 has a mark, 4 a binding, 6 is the newest
    expect(n.identities).toBe(2);
    expect(await inv.identity(r[0].identityId!)).toBeUndefined();
    expect(await inv.identity(r[4].identityId!)).toBeUndefined();
    for (const k of [1, 2, 3, 5]) expect(await inv.identity(r[k].identityId!)).toBeDefined();
    expect((await inv.counts(now)).identities).toBe(4);

    // a second prune finds nothing; a later one, once old-queued leaves the queue, takes it and counts it
    expect(await inv.prune(now)).toEqual({ sightings: 0, bindings: 0, intents: 0, identities: 0 });
    await sch.dequeue(r[3].bindingId!);
    const later = await inv.prune(now + DAY);
    expect(later).toMatchObject({ intents: 1, bindings: 1 });
    expect(await sch.endedIntentCounts()).toEqual(before);
    // device 4's identity: its binding and scan gone, seen 31 days ago (over forgetAfterS), never scanned
    expect(later.identities).toBe(1);
    expect(await inv.identity(r[3].identityId!)).toBeUndefined();

    // a device that comes back after being forgotten is a new device (due again), and keeps working
    const [back] = await inv.commitBatch([lease('10.0.0.1', mac(1), now + 2 * DAY)]);
    expect(back.change).toBe('new');
    expect((await inv.identity(back.identityId!))?.lastScannedAt).toBeUndefined();
  });

  it('a prune larger than a chunk takes it all, a chunk per transaction', async () => {
    const store = await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 });
    const batch: Sighting[] = [];
    for (let n = 0; n < 12_000; n++) batch.push(lease(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, mac(1), T0 + n));
    await store.inventory.commitBatch(batch);
    const n = await store.inventory.prune(T0 + 3 * 86400_000);
    // 12,000 leases of one device moving: 11,999 bindings ended by the next move (the last still open, past its expiry but not ended)
    expect(n).toMatchObject({ sightings: 12_000, bindings: 11_999 });
    expect((await store.inventory.counts(T0 + 3 * 86400_000)).sightings).toBe(0);
  });
});
