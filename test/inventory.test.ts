import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it as itAll } from 'vitest';
import { openDatabase, schemaVersion } from '../src/store/db.js';
import { SqliteInventory } from '../src/inventory/inventory.js';
import type { Sighting } from '../src/sighting.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
const s = (p: Partial<Sighting> & Pick<Sighting, 'kind' | 'ip'>): Sighting => ({ at: at(0), format: 'isc-dhcpd', source: 'test', ...p });

function fresh() {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-inv-'));
  const file = join(dir, 'state.db');
  const db = openDatabase(file);
  return { db, file, inv: new SqliteInventory(db, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 }) };
}

describe('inventory (SQLite file)', () => {
  itAll('a real SQLite file in WAL mode with the schema migrated, and re-opening is a no-op', async () => {
    const { db, file } = fresh();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(schemaVersion(db)).toBe(17);
    db.close();
    const again = openDatabase(file);
    expect(schemaVersion(again)).toBe(17);
    again.close();
  });
});

describe.each(STORE_KINDS)('inventory on $name', (kind) => {
  if (kind.skip) console.log(`skip inventory on ${kind.name}: ${kind.skip}`);
  const fresh = async () => ({ inv: (await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 })).inventory });
  const it = kind.skip ? itAll.skip : itAll;

  it('a lease binds the IP to the MAC; renewals merge into it', async () => {
    const { inv } = await fresh();
    const [r1] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01', hostname: 'lap', durationS: 600, at: at(0) })]);
    expect(r1.change).toBe('new');
    const [r2] = await inv.commitBatch([s({ kind: 'renew', ip: '10.0.0.5', mac: '52:54:00:00:00:01', durationS: 600, at: at(5) })]);
    expect(r2).toMatchObject({ change: 'renewed', bindingId: r1.bindingId });
    const b = (await inv.binding(r1.bindingId!))!;
    expect(b.renewals).toBe(1);
    expect(b.expiresAt).toBe(T0 + 15 * 60_000);
    expect(b.hostname).toBe('lap');
    expect((await inv.counts(T0)).sightings).toBe(1); // the renewal was merged, not stored again
  });

  it('IP reuse ends the old binding at once; a stale release from the old device does not end the new one', async () => {
    const { inv } = await fresh();
    const [a] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01', at: at(0) })]);
    const [b] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:02', at: at(10) })]);
    expect(b.change).toBe('reassigned');
    expect(await inv.binding(a.bindingId!)).toMatchObject({ endAt: T0 + 10 * 60_000, endReason: 'reassigned' });
    const [rel] = await inv.commitBatch([s({ kind: 'release', ip: '10.0.0.5', mac: '52:54:00:00:00:01', at: at(11) })]);
    expect(rel.change).toBe('ignored');
    expect((await inv.openBinding('10.0.0.5'))?.mac).toBe('52:54:00:00:00:02');
  });

  it('a delayed line older than what is known changes nothing: not another device\'s binding, not a move, not a release after a renewal, not the names', async () => {
    const { inv } = await fresh();
    // reassign: A holds .5 from 10:10; a line says B took it at 10:05
    const [a] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01', hostname: 'alpha', at: at(10) })]);
    const [b] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:02', at: at(5) })]);
    expect(b.change).toBe('ignored');
    expect((await inv.openBinding('10.0.0.5'))?.mac).toBe('52:54:00:00:00:01');
    // names: an older line of A's own (another hostname) neither renews nor renames
    const [old] = await inv.commitBatch([s({ kind: 'renew', ip: '10.0.0.5', mac: '52:54:00:00:00:01', hostname: 'stale-name', at: at(8) })]);
    expect(old).toMatchObject({ change: 'ignored', identityId: a.identityId });
    expect((await inv.binding(a.bindingId!))?.hostname).toBe('alpha');
    // move: A on .20 from 10:50; an older line puts it on .21 at 10:40
    const [m] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.20', mac: '52:54:00:00:00:01', at: at(50) })]);
    const [back] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.21', mac: '52:54:00:00:00:01', at: at(40) })]);
    expect(back.change).toBe('ignored');
    expect((await inv.binding(m.bindingId!))?.endAt).toBeUndefined();
    expect(await inv.openBinding('10.0.0.21')).toBeUndefined();
    // release: renewed at 11:30, a release stamped 11:20 arrives after
    await inv.commitBatch([s({ kind: 'renew', ip: '10.0.0.20', mac: '52:54:00:00:00:01', at: at(90) })]);
    const [rel] = await inv.commitBatch([s({ kind: 'release', ip: '10.0.0.20', mac: '52:54:00:00:00:01', at: at(80) })]);
    expect(rel.change).toBe('ignored');
    expect((await inv.openBinding('10.0.0.20'))?.id).toBe(m.bindingId);
    // the control: lines in order still reassign, move and release
    expect((await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.20', mac: '52:54:00:00:00:03', at: at(95) })]))[0].change).toBe('reassigned');
    expect((await inv.commitBatch([s({ kind: 'release', ip: '10.0.0.20', mac: '52:54:00:00:00:03', at: at(96) })]))[0].change).toBe('ended');
  });

  it('a tunnel-down without an address finds the user\'s session whatever the case, beyond ASCII too (SQLite\'s lower() folds ASCII only)', async () => {
    const { inv } = await fresh();
    const [v] = await inv.commitBatch([s({ kind: 'tunnel-up', ip: '10.8.0.9', user: 'JÖRG', format: 'openvpn', at: at(1) })]);
    const [d] = await inv.commitBatch([s({ kind: 'tunnel-down', ip: '0.0.0.0', user: 'jörg', format: 'cisco-asa', at: at(20) })]);
    expect(d).toMatchObject({ change: 'ended', bindingId: v.bindingId });
  });

  it('a lease or expiry far off is held ten years at most (1e23 ms fits no column; it stalled PostgreSQL commits)', async () => {
    const { inv } = await fresh();
    const ten = 10 * 365 * 86_400_000;
    const [a] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.30', mac: '52:54:00:00:00:30', durationS: 1e20, at: at(0) })]);
    expect((await inv.binding(a.bindingId!))?.expiresAt).toBe(T0 + ten);
    const [b] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.31', mac: '52:54:00:00:00:31', expiresAt: '+275000-01-01T00:00:00.000Z', at: at(0) })]);
    expect((await inv.binding(b.bindingId!))?.expiresAt).toBe(T0 + ten);
  });

  it('a device moving to a new address leaves the old one; VPN sessions end on tunnel-down', async () => {
    const { inv } = await fresh();
    const [a] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01' })]);
    await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.9', mac: '52:54:00:00:00:01', at: at(1) })]);
    expect((await inv.binding(a.bindingId!))?.endReason).toBe('moved');
    const [v] = await inv.commitBatch([s({ kind: 'tunnel-up', ip: '10.8.0.2', user: 'jdoe', format: 'openvpn', at: at(2) })]);
    expect(await inv.binding(v.bindingId!)).toMatchObject({ channel: 'vpn', identityKey: 'user:jdoe', expiresAt: T0 + 2 * 60_000 + 86400_000 });
    const [d] = await inv.commitBatch([s({ kind: 'tunnel-down', ip: '10.8.0.2', user: 'jdoe', format: 'openvpn', at: at(30) })]);
    expect(d.change).toBe('ended');
    expect(inv.isPresent((await inv.binding(v.bindingId!))!, T0 + 31 * 60_000)).toBe(false);
  });

  it('a tunnel-down without an inner address (ip 0.0.0.0) ends the user\'s one open session, and nothing else', async () => {
    const { inv } = await fresh();
    const [v] = await inv.commitBatch([s({ kind: 'tunnel-up', ip: '10.8.0.2', user: 'jdoe', format: 'cisco-asa' })]);
    expect((await inv.commitBatch([s({ kind: 'tunnel-down', ip: '0.0.0.0', user: 'someone-else', format: 'cisco-asa', at: at(5) })]))[0].change).toBe('ignored');
    expect((await inv.commitBatch([s({ kind: 'tunnel-up', ip: '0.0.0.0', user: 'jdoe', format: 'cisco-asa', at: at(5) })]))[0].change).toBe('ignored');
    expect((await inv.commitBatch([s({ kind: 'tunnel-down', ip: '0.0.0.0', user: 'JDOE', format: 'cisco-asa', at: at(9) })]))[0]).toMatchObject({ change: 'ended', bindingId: v.bindingId });
    expect((await inv.binding(v.bindingId!))?.endAt).toBe(T0 + 9 * 60_000);
    expect(await inv.openBinding('0.0.0.0')).toBeUndefined();
  });

  it('leases that run out end on expireStale; prune drops old history', async () => {
    const { inv } = await fresh();
    const [a] = await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01', durationS: 60 })]);
    expect((await inv.presentBindings(T0 + 30_000)).length).toBe(1);
    expect(await inv.expireStale(T0 + 120_000)).toEqual([a.bindingId]);
    expect((await inv.binding(a.bindingId!))?.endAt).toBe(T0 + 60_000);
    expect(await inv.prune(T0 + 3 * 86400_000)).toEqual({ sightings: 1, bindings: 1, intents: 0, identities: 0 });
  });

  it('bindingPagesBetween: the bindings of a period a page at a time, by device then binding, every field of each', async () => {
    const { inv } = await fresh();
    // device 1 moves (two bindings), device 2 and 3 lease once; device 3 only after the period
    await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01', at: at(0) })]);
    await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.6', mac: '52:54:00:00:00:02', at: at(1) })]);
    await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.7', mac: '52:54:00:00:00:01', at: at(2) })]);
    await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.8', mac: '52:54:00:00:00:03', at: at(90) })]);
    const [from, to, now] = [T0, T0 + 60 * 60_000, T0 + 100 * 60_000];
    const pages: number[][] = [];
    const rows = [];
    for await (const page of inv.bindingPagesBetween(from, to, now, 2)) {
      pages.push(page.map((b) => b.identityId));
      rows.push(...page);
    }
    expect(pages.map((p) => p.length)).toEqual([2, 1]);
    expect(rows.map((b) => b.ip)).toEqual(['10.0.0.5', '10.0.0.7', '10.0.0.6']);
    // device 1's first binding ended when it moved; leases run the default hour
    const lease = (id: number, ip: string, identityId: number, min: number, endMin?: number) => ({
      id, ip, identityId, channel: 'dhcp', startAt: T0 + min * 60_000, expiresAt: T0 + min * 60_000 + 3600_000, ...(endMin !== undefined ? { endAt: T0 + endMin * 60_000 } : {}),
    });
    expect(rows).toEqual([lease(1, '10.0.0.5', 1, 0, 2), lease(3, '10.0.0.7', 1, 2), lease(2, '10.0.0.6', 2, 1)]);
  });

  it('sightings and file checkpoints commit in one transaction: all or nothing', async () => {
    const { inv } = await fresh();
    const cp = { path: '/var/log/x', dev: 1, ino: 2, offset: 100, fingerprint: 'ab', tailFingerprint: 'cd' };
    await inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.5', mac: '52:54:00:00:00:01' })], [cp]);
    expect(await inv.checkpoint('/var/log/x')).toEqual(cp);
    // a batch that fails half-way leaves neither its sightings nor its checkpoint behind
    const bad = s({ kind: 'lease', ip: '10.0.0.6', mac: '52:54:00:00:00:02' });
    Object.defineProperty(bad, 'at', { get: () => { throw new Error('boom'); } });
    await expect(inv.commitBatch([s({ kind: 'lease', ip: '10.0.0.7', mac: '52:54:00:00:00:03' }), bad], [{ ...cp, offset: 200 }])).rejects.toThrow('boom');
    expect((await inv.checkpoint('/var/log/x'))?.offset).toBe(100);
    expect(await inv.openBinding('10.0.0.7')).toBeUndefined();
    expect((await inv.counts(T0)).bindings).toBe(1);
  });
});
