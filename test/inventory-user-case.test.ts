/**
 * VPN user names fold case in identity keys, on both stores: Bob's and bob's sessions are one
 * device (its session renewed, not reassigned; one scan). The migration folds the keys already
 * stored: ASCII ones whose folded key is free, the last seen of those that fold alike.
 */
import { describe, expect, it as itAll } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import type { SqliteStore } from '../src/store/sqlite-store.js';
import type { PgStore } from '../src/store/postgres/store.js';
import type { Store } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-11-30T08:00:00Z');
const up = (user: string, ip: string, min: number, hostname?: string): Sighting =>
  ({ kind: 'tunnel-up', ip, user, hostname, at: new Date(T0 + min * 60_000).toISOString(), format: 'openvpn', source: 'test' });
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 };

/** Rows as an older onsight stored them (keys with the user's case), then the schema set back one step and migrated again. */
async function legacyThenMigrate(kind: (typeof STORE_KINDS)[number], rows: [string, number][]): Promise<Map<string, number>> {
  const store: Store = await kind.open(OPTS);
  const ids = new Map<string, number>();
  if (kind.name === 'sqlite') {
    const db = (store as SqliteStore).db;
    for (const [key, seen] of rows) ids.set(key, Number(db.prepare('INSERT INTO identities (key, user, first_seen, last_seen) VALUES (?, ?, ?, ?)').run(key, key.slice(5), seen, seen).lastInsertRowid));
    // (back before migration 13: 14's to 16's columns and index go too, or they would be added again)
    db.exec('DROP INDEX bindings_open_vpn_session; ALTER TABLE bindings DROP COLUMN vpn_user; ALTER TABLE bindings DROP COLUMN remote_ip; DROP TABLE name_holders; PRAGMA user_version = 12;');
    const { openDatabase } = await import('../src/store/db.js');
    const again = openDatabase(db.name);
    for (const [key, id] of ids) ids.set(key, id);
    const out = new Map((again.prepare('SELECT key, id FROM identities').all() as { key: string; id: number }[]).map((r) => [r.key, r.id]));
    again.close();
    return out;
  }
  const db = (store as PgStore).db;
  for (const [key, seen] of rows) await db.query('INSERT INTO identities (key, "user", first_seen, last_seen) VALUES ($1, $2, $3, $3)', [key, key.slice(5), seen]);
  // (back before migration 6: 7's to 9's columns and index go too)
  await db.query('DROP INDEX bindings_open_vpn_session; ALTER TABLE bindings DROP COLUMN vpn_user; ALTER TABLE bindings DROP COLUMN remote_ip; DROP TABLE name_holders; UPDATE onsight_schema SET version = 5');
  await db.migrate();
  return new Map((await db.rows<{ key: string; id: number }>('SELECT key, id FROM identities')).map((r) => [r.key, Number(r.id)]));
}

describe.each(STORE_KINDS)('user names fold case on $name', (kind) => {
  if (kind.skip) console.log(`skip user-name case on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('Bob and bob are one device: the session renews, one identity, the scan is shared', async () => {
    const { inventory: inv } = await kind.open(OPTS);
    const [a] = await inv.commitBatch([up('Bob', '10.8.0.5', 0)]);
    await inv.markScanned([a.identityId!], T0 + 60_000, 'onsight');
    const [b] = await inv.commitBatch([up('bob', '10.8.0.5', 5)]);
    expect(b).toMatchObject({ change: 'renewed', bindingId: a.bindingId, identityId: a.identityId });
    const [c] = await inv.commitBatch([up('BOB', '10.8.0.9', 600, 'LT-0042')]);
    const [d] = await inv.commitBatch([up('bob', '10.8.0.9', 605, 'lt-0042')]);
    expect(d).toMatchObject({ change: 'renewed', bindingId: c.bindingId, identityId: c.identityId });
    expect((await inv.identity(a.identityId!))).toMatchObject({ key: 'user:bob', lastScannedAt: T0 + 60_000 });
    expect((await inv.identity(c.identityId!))?.key).toBe('user:bob|lt-0042');
    expect((await inv.counts(T0 + 610 * 60_000)).identities).toBe(2);
  });

  it('an operator names the device by its user in any case (onsight skip bob finds the session that came in as Bob)', async () => {
    const store = await kind.open(OPTS);
    const [a] = await store.inventory.commitBatch([up('bob', '10.8.0.5', 0, 'lt-7')]);
    await store.inventory.commitBatch([up('Bob', '10.8.0.5', 5, 'lt-7')]); // the user column now says Bob
    for (const name of ['bob', 'BOB', 'Bob']) expect(await store.history.identitiesNamed({ kind: 'user', value: name })).toEqual([a.identityId]);
    expect(await store.history.identitiesNamed({ kind: 'user', value: 'bob' }, T0 + 6 * 60_000)).toEqual([a.identityId]);
    expect(await store.history.identitiesNamed({ kind: 'user', value: 'bo_' })).toEqual([]); // a LIKE wildcard is a character
  });

  it('the migration folds stored keys: free ones, the last seen of those folding alike; a folded key already there and non-ASCII names stay', async () => {
    const keys = await legacyThenMigrate(kind, [
      ['user:Alice|LT-1', 1], ['user:ALICE|lt-1', 5], ['user:alice|lt-2', 1], // the last seen of the first two takes user:alice|lt-1
      ['user:Carol', 3], ['user:carol', 2], // the folded key exists: Carol stays as it was
      ['user:Dave', 1], // folded
      ['user:JÖRG', 1], // not ASCII: left
      ['mac:52:54:00:AA:00:01', 1], // not a user key
    ]);
    expect([...keys.keys()].sort()).toEqual(['mac:52:54:00:AA:00:01', 'user:Alice|LT-1', 'user:Carol', 'user:JÖRG', 'user:alice|lt-1', 'user:alice|lt-2', 'user:carol', 'user:dave']);
  });
});
