/**
 * The upgrade that brought name_holders (SQLite migration 15, PostgreSQL 8) works out the first
 * holder of each name already known from the stored sightings, on both stores: a name several hold
 * is the first carrier's only when every holder carried it in a stored sighting, else no one's.
 * Ranked by first sighting, then by a heuristic, a device known earlier under another name that had
 * renamed itself like a laptop before the upgrade became the name's first holder, and its scan was
 * credited to the laptop (fourth and fifth reviews of session 42).
 */
import { describe, expect, it as itAll } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import type { SqliteStore } from '../src/store/sqlite-store.js';
import type { PgStore } from '../src/store/postgres/store.js';
import type { Store } from '../src/store/types.js';
import { firstHolders, NO_HOLDER } from '../src/store/name-holders.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-11-23T10:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
const ms = (min: number) => T0 + min * 60_000;
const lease = (min: number, mac: string, ip: string, hostname?: string): Sighting =>
  ({ kind: 'lease', ip, mac, hostname, durationS: 86400, at: at(min), format: 'isc-dhcpd', source: 'test' });
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400, linkHostPatterns: ['lt-*'] };
const ROGUE = '02:00:00:00:02:66';
const LAPTOP = '52:54:00:00:00:42';

/** The store as before migration 15 (8): no name_holders; then migrated again. */
async function upgradeAgain(name: string, store: Store, open: () => Promise<Store>): Promise<Store> {
  if (name === 'sqlite') {
    (store as SqliteStore).db.exec('DROP TABLE name_holders; PRAGMA user_version = 14;');
    return open();
  }
  await (store as PgStore).db.query('DROP TABLE name_holders; UPDATE onsight_schema SET version = 7');
  await (store as PgStore).db.migrate();
  return store;
}

describe.each(STORE_KINDS)('name_holders at the upgrade, on $name', (kind) => {
  if (kind.skip) console.log(`skip name_holders upgrade on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('a device that renamed itself like the laptop before the upgrade (in a renewal: not stored) makes the name no one\'s: neither scan credits the other', async () => {
    const store = await kind.open(OPTS);
    const inv = store.inventory;
    const [rogue] = await inv.commitBatch([lease(0, ROGUE, '10.0.0.66', 'PRINTER-7')]);
    const [laptop] = await inv.commitBatch([lease(10, LAPTOP, '10.0.0.42', 'LT-0042')]);
    await inv.commitBatch([{ kind: 'renew', ip: '10.0.0.66', mac: ROGUE, hostname: 'LT-0042', durationS: 86400, at: at(20), format: 'isc-dhcpd', source: 'test' }]);
    await inv.commitBatch([{ kind: 'release', ip: '10.0.0.42', mac: LAPTOP, at: at(30), format: 'isc-dhcpd', source: 'test' }]);
    const again = await upgradeAgain(kind.name, store, () => kind.open(OPTS, (store as SqliteStore).db.name));
    await again.inventory.markScanned([rogue.identityId!], ms(40), 'onsight');
    expect((await again.inventory.identity(laptop.identityId!))?.lastScannedAt).toBeUndefined();
    await again.inventory.markScanned([laptop.identityId!], ms(50), 'onsight');
    expect((await again.inventory.identity(rogue.identityId!))?.lastScannedAt).toBe(ms(40));
    // a laptop's DHCP and VPN identities that both carried the name in stored lines: the first to carry it links as before
    const [vpn] = await again.inventory.commitBatch([{ kind: 'tunnel-up', ip: '10.8.0.2', user: 'alice', hostname: 'lt-0099', at: at(60), format: 'openvpn', source: 'test' }]);
    const [office] = await again.inventory.commitBatch([lease(61, '52:54:00:00:00:99', '10.0.0.99', 'LT-0099')]);
    const again2 = await upgradeAgain(kind.name, again, () => kind.open(OPTS, (store as SqliteStore).db.name));
    await again2.inventory.markScanned([vpn.identityId!], ms(70), 'onsight');
    expect((await again2.inventory.identity(office.identityId!))?.lastScannedAt).toBe(ms(70));
  });
});

describe('firstHolders', () => {
  itAll('a name one identity holds is its; several: the first carrier when all carried it in stored lines, else no one\'s; generic names left out', () => {
    const holders = [
      { id: 1, hostKey: 'lt-0042' }, // renamed itself in a renewal: no stored line carries the name
      { id: 2, hostKey: 'lt-0042' },
      { id: 3, hostKey: 'lt-0099' },
      { id: 4, hostKey: 'lt-0099' },
      { id: 5, hostKey: 'lt-0007' },
      { id: 6, hostKey: 'iphone' },
      { id: 7, hostKey: 'iphone' },
    ];
    const carried = [
      { identityId: 1, hostname: 'PRINTER-7', first: 1 },
      { identityId: 2, hostname: 'lt-0042.corp.example', first: 12 }, { identityId: 3, hostname: 'LT-0099', first: 9 },
      { identityId: 4, hostname: 'lt-0099', first: 5 }, { identityId: 4, hostname: 'LT-0099', first: 7 },
    ];
    expect([...firstHolders({ holders, carried })].sort()).toEqual([['lt-0007', 5], ['lt-0042', NO_HOLDER], ['lt-0099', 4]]);
  });
});
