import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it as itAll } from 'vitest';
import { openDatabase, schemaVersion, type DB } from '../src/store/db.js';
import { SqliteInventory, type Inventory, type InventoryOptions } from '../src/inventory/inventory.js';
import { parseConfigText } from '../src/config/load.js';
import type { Sighting } from '../src/sighting.js';
import { REPO } from './helpers/paths.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
const ms = (min: number) => T0 + min * 60_000;
const s = (p: Partial<Sighting> & Pick<Sighting, 'kind' | 'ip'>): Sighting => ({ at: at(0), format: 'isc-dhcpd', source: 'test', ...p });
const M = '52:54:00:00:00:42';
const lease = (min: number, hostname?: string, mac = M, ip = '10.0.0.42') => s({ kind: 'lease', ip, mac, hostname, durationS: 86400, at: at(min) });
const tunnel = (min: number, user: string, hostname?: string, ip = '10.8.0.2') => s({ kind: 'tunnel-up', ip, user, hostname, format: 'globalprotect', at: at(min) });

/** the operator vouches for the laptops' naming scheme (lt-NNNN, handed out centrally) */
const BASE: InventoryOptions = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400, linkHostPatterns: ['lt-*'] };

function fresh(opts: Partial<InventoryOptions> = {}) {
  const db = openDatabase(':memory:');
  return { db, inv: new SqliteInventory(db, { ...BASE, ...opts }) };
}

/** apply one sighting; its result */
const one = async (inv: Inventory, x: Sighting) => (await inv.commitBatch([x]))[0];

describe.each(STORE_KINDS)('inventory on $name: hostname linking (one laptop on DHCP and VPN)', (kind) => {
  if (kind.skip) console.log(`skip hostname linking on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;
  const fresh = async (opts: Partial<InventoryOptions> = {}) => ({ inv: (await kind.open({ ...BASE, ...opts })).inventory });
  it('a DHCP identity scanned, then the VPN identity of the same hostname appears: it is credited', async () => {
    const { inv } = await fresh();
    const d = await one(inv, lease(0, 'LT-0042'));
    await inv.markScanned([d.identityId!], ms(10), 'onsight');
    const v = await one(inv, tunnel(60, 'alice', 'lt-0042.corp.example'));
    expect(v.identityId).not.toBe(d.identityId); // not merged
    expect(await inv.binding(v.bindingId!)).toMatchObject({ identityKey: 'user:alice|lt-0042.corp.example', lastScannedAt: ms(10), lastScannedVia: `onsight, linked from mac:${M}` });
  });

  it('the reverse order: the VPN identity scanned first, the DHCP identity created later is credited', async () => {
    const { inv } = await fresh();
    const v = await one(inv, tunnel(0, 'alice', 'lt-0042.corp.example'));
    await inv.markScanned([v.identityId!], ms(10), 'scanner:vm-scan');
    const d = await one(inv, lease(60, 'LT-0042'));
    expect(await inv.binding(d.bindingId!)).toMatchObject({ identityKey: `mac:${M}`, lastScannedAt: ms(10), lastScannedVia: 'scanner:vm-scan, linked from user:alice|lt-0042.corp.example' });
  });

  it('on the pattern alone the name\'s first holder\'s scan credits the others, theirs credit nothing; the same user\'s credits whenever; only forward in time', async () => {
    const { inv } = await fresh();
    const d = await one(inv, lease(0, 'LT-0042'));
    const v = await one(inv, tunnel(1, 'alice', 'lt-0042.corp.example'));
    const w = await one(inv, tunnel(2, 'alice-admin', 'LT-0042', '10.8.0.3'));
    // (its session over: two VPN sessions at once under one name are two devices, see below)
    await one(inv, s({ kind: 'tunnel-down', ip: '10.8.0.3', user: 'alice-admin', format: 'globalprotect', at: at(3) }));
    await inv.markScanned([w.identityId!], ms(500), 'onsight'); // not the first holder: credits none
    expect((await inv.identity(v.identityId!))?.lastScannedAt).toBeUndefined();
    expect((await inv.identity(d.identityId!))?.lastScannedAt).toBeUndefined();
    await inv.markScanned([d.identityId!], ms(100), 'onsight'); // the first holder: credits both, w only forward in time
    expect(await inv.identity(v.identityId!)).toMatchObject({ lastScannedAt: ms(100) });
    expect(await inv.identity(w.identityId!)).toMatchObject({ lastScannedAt: ms(500) });
    await inv.markScanned([v.identityId!], ms(900), 'dry-run');
    expect((await inv.identity(w.identityId!))?.lastScannedAt).toBe(ms(500));
    expect((await inv.identity(d.identityId!))?.lastScannedAt).toBe(ms(100));
    await inv.markScanned([d.identityId!], ms(950), 'dry-run');
    for (const r of [v, w]) expect(await inv.identity(r.identityId!)).toMatchObject({ lastScannedAt: ms(950), lastScannedVia: `dry-run, linked from mac:${M}` });
    // the same user vouches both ways: alice's second profile gives its scan back to v
    const v2 = await one(inv, tunnel(960, 'Alice', 'LT-0042', '10.8.0.8'));
    await one(inv, s({ kind: 'tunnel-down', ip: '10.8.0.2', user: 'alice', format: 'globalprotect', at: at(961) }));
    await inv.markScanned([v2.identityId!], ms(1000), 'onsight');
    expect((await inv.identity(v.identityId!))?.lastScannedAt).toBe(ms(1000));
  });

  it('a name the pattern vouches for gives credit from its first holder only, and not between two devices on one network at once (identity probe: a rogue "LT-0042.x" gave the laptop its scan; reviews: by renaming itself, or to a later identity of the laptop)', async () => {
    const { inv } = await fresh();
    const laptop = await one(inv, lease(0, 'lt-0042')); // the name's first holder
    const rogue = await one(inv, lease(1, 'LT-0042.x', '02:00:00:00:02:66', '10.0.0.66'));
    await inv.markScanned([rogue.identityId!], ms(10), 'onsight'); // while the laptop waits in the queue
    expect((await inv.identity(laptop.identityId!))?.lastScannedAt).toBeUndefined();
    await inv.markScanned([laptop.identityId!], ms(20), 'onsight');
    expect((await inv.identity(rogue.identityId!))?.lastScannedAt).toBe(ms(10)); // on the LAN with it: apart
    const other = await one(inv, lease(30, 'lt-0042', '02:00:00:00:02:67', '10.0.0.67'));
    expect((await inv.identity(other.identityId!))?.lastScannedAt).toBeUndefined();
    // across networks the name links: the laptop's VPN session (its office lease still open) is credited
    const vpn = await one(inv, tunnel(60, 'alice', 'lt-0042.corp.example'));
    expect((await inv.identity(vpn.identityId!))?.lastScannedAt).toBe(ms(20));
    // a device known before under another name renames itself LT-0042 and is scanned: it credits neither
    const printer = await one(inv, s({ kind: 'lease', ip: '10.0.0.70', mac: '02:00:00:00:02:70', hostname: 'printer-7', durationS: 86400, at: at(0) }));
    expect((await one(inv, s({ kind: 'renew', ip: '10.0.0.70', mac: '02:00:00:00:02:70', hostname: 'LT-0042', durationS: 86400, at: at(62) }))).change).toBe('renewed');
    await inv.markScanned([printer.identityId!], ms(66), 'onsight');
    for (const id of [laptop.identityId!, vpn.identityId!]) expect((await inv.identity(id))?.lastScannedAt).toBe(ms(20));
    // a line stamped long ago does not make its device the name's first holder
    const backdated = await one(inv, s({ kind: 'lease', ip: '10.0.0.71', mac: '02:00:00:00:02:71', hostname: 'lt-0042', durationS: 86400, at: new Date(T0 - 86_400_000).toISOString() }));
    await inv.markScanned([backdated.identityId!], ms(67), 'onsight');
    expect((await inv.identity(vpn.identityId!))?.lastScannedAt).toBe(ms(20));
    // the laptop's office MAC renamed away for a moment (a forged line, a spoofed DHCP request): the rogue
    // does not become the first holder, and the laptop is the first holder again once back (review, session 42)
    await one(inv, s({ kind: 'renew', ip: '10.0.0.42', mac: M, hostname: 'not-a-laptop', durationS: 86400, at: at(68) }));
    const rogue3 = await one(inv, lease(68, 'LT-0042', '02:00:00:00:02:72', '10.0.0.72'));
    await inv.markScanned([rogue3.identityId!], ms(68.5), 'onsight');
    expect((await inv.identity(vpn.identityId!))?.lastScannedAt).toBe(ms(20));
    await one(inv, s({ kind: 'renew', ip: '10.0.0.42', mac: M, hostname: 'lt-0042', durationS: 86400, at: at(69) }));
    await one(inv, s({ kind: 'release', ip: '10.0.0.72', mac: '02:00:00:00:02:72', at: at(69) }));
    // the laptop's later identities take the first holder's credit, never a rogue's
    for (const [ip, mac] of [['10.0.0.66', '02:00:00:00:02:66'], ['10.0.0.67', '02:00:00:00:02:67'], ['10.0.0.70', '02:00:00:00:02:70'], ['10.0.0.71', '02:00:00:00:02:71'], ['10.0.0.42', M]]) {
      await one(inv, s({ kind: 'release', ip, mac, at: at(70) }));
    }
    const wifi = await one(inv, lease(80, 'lt-0042', '52:54:00:00:00:43', '10.0.0.43'));
    expect((await inv.identity(wifi.identityId!))?.lastScannedAt).toBe(ms(20));
    const vpn2 = await one(inv, tunnel(90, 'alice', 'LT-0042', '10.8.0.9'));
    expect((await inv.identity(vpn2.identityId!))?.lastScannedAt).toBe(ms(20));
  });

  it('a name whose first holder the prune forgot is no one\'s: the next identity to take it holds it first (review: kept for ever, it blocked the name)', async () => {
    const { inv } = await fresh({ retentionS: 86400, forgetAfterS: 86400 });
    const gone = await one(inv, lease(0, 'lt-0042'));
    await one(inv, s({ kind: 'release', ip: '10.0.0.42', mac: M, at: at(1) }));
    await one(inv, lease(2, undefined, '52:54:00:00:00:51', '10.0.0.51')); // (the prune never forgets the newest identity)
    const day = 1440;
    await inv.prune(ms(3 * day));
    expect(await inv.identity(gone.identityId!)).toBeUndefined();
    const a = await one(inv, lease(3 * day + 10, 'lt-0042', '52:54:00:00:00:50', '10.0.0.50'));
    const b = await one(inv, tunnel(3 * day + 11, 'zed', 'lt-0042'));
    await inv.markScanned([a.identityId!], ms(3 * day + 20), 'onsight');
    expect((await inv.identity(b.identityId!))?.lastScannedAt).toBe(ms(3 * day + 20));
  });

  it('a name still held when its first holder is forgotten stays blocked: a LAN device does not take the name of a laptop working over the VPN (review: it did)', async () => {
    const { inv } = await fresh({ retentionS: 86400, forgetAfterS: 86400 });
    const office = await one(inv, lease(0, 'lt-0042'));
    await one(inv, s({ kind: 'release', ip: '10.0.0.42', mac: M, at: at(1) }));
    const day = 1440;
    const vpn = await one(inv, tunnel(2 * day, 'alice', 'LT-0042'));
    await inv.prune(ms(3 * day)); // the office MAC is forgotten; the VPN identity, seen lately, is not
    expect(await inv.identity(office.identityId!)).toBeUndefined();
    expect(await inv.identity(vpn.identityId!)).toBeDefined();
    const rogue = await one(inv, lease(3 * day + 10, 'LT-0042', '02:00:00:00:02:66', '10.0.0.66'));
    await inv.markScanned([rogue.identityId!], ms(3 * day + 20), 'onsight');
    expect((await inv.identity(vpn.identityId!))?.lastScannedAt).toBeUndefined();
  });

  it('a LAN device that names itself like a scanned laptop does not inherit its scan without corroboration', async () => {
    // no pattern vouches for "ws-0042": the name alone is not enough
    const { inv } = await fresh({ linkHostPatterns: [] });
    const v = await one(inv, tunnel(0, 'alice', 'ws-0042.corp.example'));
    await inv.markScanned([v.identityId!], ms(10), 'onsight');
    const evil = await one(inv, lease(60, 'WS-0042', '52:54:00:66:66:66', '10.0.0.66'));
    expect((await inv.binding(evil.bindingId!))?.lastScannedAt).toBeUndefined();
    await inv.markScanned([v.identityId!], ms(90), 'onsight');
    expect((await inv.identity(evil.identityId!))?.lastScannedAt).toBeUndefined();
    // the same user on both sides corroborates (alice's second VPN profile)
    const v2 = await one(inv, tunnel(100, 'Alice', 'WS-0042', '10.8.0.7'));
    expect(await inv.binding(v2.bindingId!)).toMatchObject({ lastScannedAt: ms(90), lastScannedVia: 'onsight, linked from user:alice|ws-0042.corp.example' });
    expect((await inv.identity(evil.identityId!))?.lastScannedAt).toBeUndefined();
  });

  it('generic hostnames ("iPhone", "localhost") never link', async () => {
    const { inv } = await fresh();
    for (const [i, name] of ['iPhone', 'localhost'].entries()) {
      const mac = `52:54:00:00:01:0${i}`;
      const d = await one(inv, lease(0, name, mac, `10.0.1.${i}`));
      await inv.markScanned([d.identityId!], ms(10), 'onsight');
      const v = await one(inv, tunnel(60, `user${i}`, name.toUpperCase(), `10.8.1.${i}`));
      expect((await inv.binding(v.bindingId!))?.lastScannedAt, name).toBeUndefined();
      await inv.markScanned([v.identityId!], ms(120), 'onsight');
      expect((await inv.identity(d.identityId!))?.lastScannedAt, name).toBe(ms(10));
    }
  });

  it('linkHostnames: false: no link either way, as before; setOptions (reload) turns it on', async () => {
    const { inv } = await fresh({ linkHostnames: false });
    const d = await one(inv, lease(0, 'LT-0042'));
    await inv.markScanned([d.identityId!], ms(10), 'onsight');
    const v = await one(inv, tunnel(60, 'alice', 'lt-0042.corp.example'));
    expect((await inv.binding(v.bindingId!))?.lastScannedAt).toBeUndefined();
    await inv.markScanned([v.identityId!], ms(70), 'onsight');
    expect((await inv.identity(d.identityId!))?.lastScannedAt).toBe(ms(10));
    inv.setOptions({ ...BASE, linkHostnames: true });
    await inv.markScanned([d.identityId!], ms(80), 'onsight');
    expect((await inv.identity(v.identityId!))?.lastScannedAt).toBe(ms(80));
    inv.setOptions({ ...BASE, linkHostnames: false });
    await inv.markScanned([d.identityId!], ms(90), 'onsight');
    expect((await inv.identity(v.identityId!))?.lastScannedAt).toBe(ms(80));
  });

  it('a hostname change moves the identity to the new name: it takes that name\'s credit and leaves the old one', async () => {
    const { inv } = await fresh();
    const neu = await one(inv, tunnel(0, 'bob', 'LT-0099', '10.8.0.9'));
    await inv.markScanned([neu.identityId!], ms(5), 'onsight');
    const d = await one(inv, lease(1, 'LT-0042'));
    const old = await one(inv, tunnel(2, 'alice', 'lt-0042.corp.example'));
    // renamed: the renewal carries the new name and inherits LT-0099's scan (known before it)
    expect((await one(inv, s({ kind: 'renew', ip: '10.0.0.42', mac: M, hostname: 'lt-0099.corp.example', at: at(10) }))).change).toBe('renewed');
    expect(await inv.identity(d.identityId!)).toMatchObject({ hostname: 'lt-0099.corp.example', lastScannedAt: ms(5) });
    // a renewal without a name keeps it
    await one(inv, s({ kind: 'renew', ip: '10.0.0.42', mac: M, at: at(11) }));
    await inv.markScanned([old.identityId!], ms(20), 'onsight');
    expect((await inv.identity(d.identityId!))?.lastScannedAt).toBe(ms(5)); // no longer linked to LT-0042
    await inv.markScanned([d.identityId!], ms(30), 'onsight');
    expect((await inv.identity(old.identityId!))?.lastScannedAt).toBe(ms(20));
    expect((await inv.identity(neu.identityId!))?.lastScannedAt).toBe(ms(5)); // known before d: the pattern alone gives it nothing
  });

});

describe('inventory in SQLite: schema and plans', () => {
  const it = itAll;
  itAll('migration 4 adds host_key and fills it from the hostnames already stored', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-link-')), 'state.db');
    const db = openDatabase(file);
    // back to schema 3, with identities written by an older onsight
    db.exec('DROP INDEX identities_host_key; DROP INDEX bindings_ip_start; ALTER TABLE identities DROP COLUMN host_key; ALTER TABLE queue RENAME COLUMN last_seen TO leave_by; DROP TABLE positions; DROP TABLE operator_marks; ALTER TABLE intents DROP COLUMN epoch; DROP TABLE scan_credits; DROP TABLE learned_state; DROP TABLE pruned_intent_counts; DROP INDEX intent_targets_identity; DROP INDEX queue_identity; DROP INDEX queue_intent; DROP INDEX bindings_open_vpn_session; ALTER TABLE bindings DROP COLUMN vpn_user; ALTER TABLE bindings DROP COLUMN remote_ip; DROP TABLE name_holders; PRAGMA user_version = 3;');
    const ins = db.prepare('INSERT INTO identities (key, hostname, first_seen, last_seen, last_scanned_at) VALUES (?, ?, 0, 0, ?)');
    ins.run(`mac:${M}`, ' LT-0042.corp.example', 1000);
    ins.run('user:bob', null, null);
    ins.run('mac:52:54:00:00:00:01', 'iPhone', null);
    db.close();
    const again = openDatabase(file);
    expect(schemaVersion(again)).toBe(17);
    expect(again.prepare('SELECT key, host_key FROM identities ORDER BY id').all()).toEqual([
      { key: `mac:${M}`, host_key: 'lt-0042' }, { key: 'user:bob', host_key: null }, { key: 'mac:52:54:00:00:00:01', host_key: 'iphone' },
    ]);
    const inv = new SqliteInventory(again, BASE);
    const v = await one(inv, tunnel(0, 'alice', 'LT-0042'));
    expect((await inv.binding(v.bindingId!))?.lastScannedAt).toBe(1000);
    again.close();
  });

  it('the host-key lookups use the host_key index (EXPLAIN QUERY PLAN)', async () => {
    const { db, inv } = fresh();
    const stmt = (inv as unknown as { stmt: Record<string, { source: string }> }).stmt;
    const plan = (sql: string, params: Record<string, unknown> | unknown[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(Array.isArray(params) ? params : [params])) as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan(stmt.scannedByHost.source, ['lt-0042'])).toMatch(/USING (COVERING )?INDEX identities_host_key \(host_key=\?/);
    expect(plan(stmt.scannedByHost.source, ['lt-0042'])).not.toMatch(/TEMP B-TREE/);
    expect(plan(stmt.byHost.source, ['lt-0042'])).toMatch(/USING (COVERING )?INDEX identities_host_key \(host_key=\?/);
    expect(plan(stmt.linkFacts.source, [1])).toMatch(/INTEGER PRIMARY KEY \(rowid=\?\)/);
    expect(plan(stmt.identityByKey.source, ['mac:x'])).toMatch(/USING INDEX sqlite_autoindex_identities_1/);
  });

  it('config: inventory.linkHostnames defaults to true, can be turned off, and the example shows it', async () => {
    const base = 'policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n';
    expect(parseConfigText(base, 't.yaml').config.inventory.linkHostnames).toBe(true);
    expect(parseConfigText(`${base}inventory: {defaultLeaseS: 1h}\n`, 't.yaml').config.inventory.linkHostnames).toBe(true);
    expect(parseConfigText(`${base}inventory: {linkHostnames: false}\n`, 't.yaml').config.inventory.linkHostnames).toBe(false);
    expect(readFileSync(join(REPO, 'config/onsight.example.yaml'), 'utf8')).toMatch(/^ {2}linkHostnames: true$/m);
  });
});
