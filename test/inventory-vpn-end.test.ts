/**
 * A VPN session end that names no inner address (ASA 113019: user and public address only) on both
 * stores. It ends the user's one session from the public address it names: a peer elsewhere that
 * logs in under the same user name ended another's session before (found by the identity probe of
 * session 41). The user's sessions are found by an index, not by reading every open session, and
 * sessions open before the upgrade are found after it.
 */
import { describe, expect, it as itAll } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import type { SqliteStore } from '../src/store/sqlite-store.js';
import type { PgStore } from '../src/store/postgres/store.js';
import type { PgInventory } from '../src/store/postgres/inventory.js';
import type { Store } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-12-07T08:00:00Z');
const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
/** 722051: Group <RA> User <user> IP <public> IPv4 Address <inner> assigned to session */
const up = (user: string, remoteIp: string, ip: string, min: number): Sighting => ({ kind: 'tunnel-up', ip, user, remoteIp, at: at(min), format: 'cisco-asa', source: 'test' });
/** 113019: Group = RA, Username = user, IP = public, Session disconnected (no inner address) */
const down = (user: string, remoteIp: string | undefined, min: number): Sighting =>
  ({ kind: 'tunnel-down', ip: '0.0.0.0', user, ...(remoteIp ? { remoteIp } : {}), at: at(min), format: 'cisco-asa', source: 'test' });
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 };

// (PostgreSQL applies in batches, and one at a time where a test asks: both apply the same rules)
const CASES = STORE_KINDS.flatMap((kind) => (kind.name === 'postgres' ? [{ kind, batched: true }, { kind, batched: false }] : [{ kind, batched: true }]));

describe.each(CASES)('address-less VPN session ends on $kind.name (batched: $batched)', ({ kind: base, batched }) => {
  if (base.skip) console.log(`skip address-less VPN ends on ${base.name}: ${base.skip}`);
  const it = base.skip ? itAll.skip : itAll;
  const kind = {
    ...base,
    async open(opts: typeof OPTS, file?: string): Promise<Store> {
      const st = await base.open(opts, file);
      if (base.name === 'postgres') (st.inventory as PgInventory).batched = batched;
      return st;
    },
  };

  it("a peer at another public address that logs in as BOB does not end bob's session; bob's own end does", async () => {
    const { inventory: inv } = await kind.open(OPTS);
    const [bob] = await inv.commitBatch([up('bob', '203.0.113.7', '10.50.0.17', 0)]);
    const [forged] = await inv.commitBatch([down('BOB', '198.51.100.99', 1)]);
    expect(forged).toMatchObject({ change: 'ignored', note: 'no open session of user BOB from 198.51.100.99 (its session is from 203.0.113.7)', refusedEnd: true });
    expect((await inv.openBinding('10.50.0.17'))?.id).toBe(bob.bindingId);
    const [own] = await inv.commitBatch([down('Bob', '203.0.113.7', 2)]);
    expect(own).toMatchObject({ change: 'ended', bindingId: bob.bindingId });
    expect(await inv.openBinding('10.50.0.17')).toBeUndefined();
  });

  it('of two sessions of one user, the end names the one from its public address (both were left open: "2 open sessions")', async () => {
    const { inventory: inv } = await kind.open(OPTS);
    const [home, hotel] = await inv.commitBatch([up('carol', '203.0.113.20', '10.50.0.20', 0), up('carol', '192.0.2.44', '10.50.0.21', 1)]);
    const [end] = await inv.commitBatch([down('carol', '192.0.2.44', 3)]);
    expect(end).toMatchObject({ change: 'ended', bindingId: hotel.bindingId });
    expect((await inv.openBinding('10.50.0.20'))?.id).toBe(home.bindingId);
    // a line without a public address (an OpenVPN exit the parser had no state for) still needs one session
    const [bare] = await inv.commitBatch([down('carol', undefined, 4)]);
    expect(bare).toMatchObject({ change: 'ended', bindingId: home.bindingId });
  });

  it('a renewal from a new public address moves the session there; in one batch as one at a time', async () => {
    const { inventory: inv } = await kind.open(OPTS);
    const results = await inv.commitBatch([
      up('dave', '203.0.113.30', '10.50.0.30', 0),
      up('dave', '198.51.100.31', '10.50.0.30', 5), // the same session, the client behind a new NAT address
      down('dave', '203.0.113.30', 6), // the old address: not this session's any more
      down('dave', '198.51.100.31', 7),
    ]);
    expect(results.map((r) => r.change)).toEqual(['new', 'renewed', 'ignored', 'ended']);
    const [again] = await inv.commitBatch([up('erin', '203.0.113.40', '10.50.0.40', 8)]);
    await inv.commitBatch([up('erin', '198.51.100.41', '10.50.0.40', 9)]);
    const [late] = await inv.commitBatch([down('erin', '198.51.100.41', 10)]);
    expect(late).toMatchObject({ change: 'ended', bindingId: again.bindingId });
  });

  it('a line from the named public address wins over a session whose public address is not known; such a session is ended by the user alone, as before', async () => {
    const { inventory: inv } = await kind.open(OPTS);
    const bare: Sighting = { kind: 'tunnel-up', ip: '10.50.0.60', user: 'frank', at: at(0), format: 'cisco-asa', source: 'test' }; // (746012: no public address)
    const [unknown, known] = await inv.commitBatch([bare, up('frank', '203.0.113.61', '10.50.0.61', 1)]);
    const [a] = await inv.commitBatch([down('frank', '203.0.113.61', 2)]);
    expect(a).toMatchObject({ change: 'ended', bindingId: known.bindingId });
    const [b] = await inv.commitBatch([down('frank', '198.51.100.99', 3)]);
    expect(b).toMatchObject({ change: 'ended', bindingId: unknown.bindingId });
  });

  it('a DHCP lease is never ended by an address-less session end, even when a VPN line of its device renewed it', async () => {
    const { inventory: inv } = await kind.open(OPTS);
    const mac = '52:54:00:00:07:01';
    const [lease] = await inv.commitBatch([{ kind: 'lease', ip: '10.20.7.1', mac, at: at(0), durationS: 3600, format: 'isc-dhcpd', source: 'test' }]);
    const [renewed] = await inv.commitBatch([{ kind: 'tunnel-up', ip: '10.20.7.1', mac, user: 'gina', remoteIp: '203.0.113.70', at: at(1), format: 'http', source: 'test' }]);
    expect(renewed).toMatchObject({ change: 'renewed', bindingId: lease.bindingId });
    const [end] = await inv.commitBatch([down('gina', '203.0.113.70', 2)]);
    expect(end).toMatchObject({ change: 'ignored' });
    expect((await inv.openBinding('10.20.7.1'))?.id).toBe(lease.bindingId);
  });

  it('sessions open before the upgrade are found by their user after it, a non-ASCII name too', async () => {
    const store = await kind.open(OPTS);
    const [jorg, ann] = await store.inventory.commitBatch([up('JÖRG', '203.0.113.50', '10.50.0.50', 0), up('Ann', '203.0.113.51', '10.50.0.51', 0)]);
    await backBeforeSessionColumns(kind.name, store);
    const reopened = kind.name === 'sqlite' ? await kind.open(OPTS, (store as SqliteStore).db.name) : store;
    if (kind.name === 'postgres') await (store as PgStore).db.migrate();
    // the public address was not stored before: the stored session is any address's
    const [a] = await reopened.inventory.commitBatch([down('jörg', '198.51.100.99', 1)]);
    expect(a).toMatchObject({ change: 'ended', bindingId: jorg.bindingId });
    const [b] = await reopened.inventory.commitBatch([down('ANN', '203.0.113.51', 1)]);
    expect(b).toMatchObject({ change: 'ended', bindingId: ann.bindingId });
  });
});

describe('the user\'s sessions are found by an index (SQLite)', () => {
  itAll('with 20,000 other sessions open, the query reads the index on the folded user and public address, not every open session', async () => {
    const store = (await STORE_KINDS[0].open(OPTS)) as SqliteStore;
    const many: Sighting[] = [];
    for (let k = 0; k < 20_000; k++) many.push(up(`user${k}`, '203.0.113.9', `10.60.${k >> 8}.${k & 255}`, 0));
    await store.inventory.commitBatch(many);
    // (the daemon's statements name the index; the planner takes it unasked too)
    const plan = store.db.prepare(`EXPLAIN QUERY PLAN SELECT id, identity_id, start_at, remote_ip FROM bindings
      WHERE vpn_user = ? AND remote_ip = ? AND end_at IS NULL AND channel = 'vpn' LIMIT 2`).all('user7', '203.0.113.9') as { detail: string }[];
    expect(plan.map((p) => p.detail).join('; ')).toMatch(/SEARCH bindings USING INDEX bindings_open_vpn_session \(vpn_user=\? AND remote_ip=\?\)/);
    const [r] = await store.inventory.commitBatch([down('USER7', '203.0.113.9', 1)]);
    expect(r).toMatchObject({ change: 'ended' });
    expect(await store.inventory.openBinding('10.60.0.7')).toBeUndefined();
    expect((await store.inventory.openBinding('10.60.0.8'))?.user).toBe('user8');
  });
});

/** The store as an onsight before the session columns left it (SQLite 13, PostgreSQL 6): those columns, the index and the later name_holders gone. */
async function backBeforeSessionColumns(name: string, store: Store): Promise<void> {
  const undo = 'DROP INDEX bindings_open_vpn_session; ALTER TABLE bindings DROP COLUMN vpn_user; ALTER TABLE bindings DROP COLUMN remote_ip; DROP TABLE name_holders;';
  if (name === 'sqlite') {
    (store as SqliteStore).db.exec(`${undo} PRAGMA user_version = 13;`);
    return;
  }
  await (store as PgStore).db.query(`${undo} UPDATE onsight_schema SET version = 6`);
}
