// The batched PostgreSQL apply (src/store/postgres/batch.ts) against SQLite and against PostgreSQL
// one sighting at a time: the same randomized stream (few addresses, devices and users, so batches
// repeat them; out-of-order times; releases, moves, VPN sessions (public addresses, non-ASCII users, a MAC on some), 0.0.0.0 tunnel-downs, hostname
// linking with scans between batches, expiry) must give the same results and the same inventory,
// row for row (ids compared as the order rows were created in).
import { describe, expect, it } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import type { PgStore } from '../src/store/postgres/store.js';
import type { ApplyResult, InventoryOptions } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';
import { seededRng } from '../src/emulator/qualys/rng.js';
import { all, dump } from './helpers/inventory-dump.js';

const OPTS: InventoryOptions = { defaultLeaseS: 1800, maxSessionS: 7200, retentionS: 30 * 86400, linkHostPatterns: ['lt-*'] };
const T0 = Date.parse('2026-11-23T08:00:00Z');
const pg = STORE_KINDS.find((k) => k.name === 'postgres')!;
const sqlite = STORE_KINDS.find((k) => k.name === 'sqlite')!;
if (pg.skip) console.log(`skip the batched-apply comparison: ${pg.skip}`);

/** a seeded generator (mulberry32), so a failing stream can be replayed */
const rng = seededRng;

function stream(seed: number, n: number): Sighting[][] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const macs = Array.from({ length: 8 }, (_, i) => `52:54:00:00:00:0${i}`);
  const v4 = Array.from({ length: 7 }, (_, i) => `10.0.0.${i + 1}`);
  const v6 = ['fd00::1', 'fd00::2', 'fd00::3'];
  const vpn = ['10.8.0.1', '10.8.0.2', '10.8.0.3'];
  const names = ['lt-0001', 'LT-0001.corp.example', 'lt-0002', 'iphone', 'desk-7', 'printer-3', undefined, undefined];
  const users = ['alice', 'ALICE', 'bob', 'carol', 'JÖRG', 'jörg'];
  const pubs = ['203.0.113.1', '203.0.113.2', '198.51.100.3'];
  let t = T0;
  const out: Sighting[] = [];
  for (let i = 0; i < n; i++) {
    t += Math.floor(r() * 90_000);
    const at = new Date(r() < 0.1 ? t - Math.floor(r() * 600_000) : t).toISOString();
    const k = r();
    let s: Sighting;
    if (k < 0.45) {
      const who = r();
      s = {
        kind: pick(['lease', 'lease', 'renew'] as const), ip: r() < 0.8 ? pick(v4) : pick(v6), at, format: 'isc-dhcpd', source: 'test',
        ...(who < 0.8 ? { mac: pick(macs) } : who < 0.9 ? { duid: pick(['00:01:aa', '00:01:AA', '00:01:bb']) } : {}),
        hostname: pick(names), durationS: pick([600, 3600, undefined]),
      };
      if (r() < 0.1) s.expiresAt = new Date(Date.parse(at) + 1_200_000).toISOString();
    } else if (k < 0.6) {
      s = { kind: pick(['release', 'expire'] as const), ip: r() < 0.8 ? pick(v4) : pick(v6), at, format: 'isc-dhcpd', source: 'test', ...(r() < 0.85 ? { mac: pick(macs) } : {}) };
    } else if (k < 0.8) {
      // (now and then a VPN line of a LAN device, by its MAC: it renews that device's DHCP lease)
      const onLan = r() < 0.15;
      s = { kind: 'tunnel-up', ip: onLan ? pick(v4) : pick(vpn), user: pick(users), hostname: pick(names), at, format: 'globalprotect', source: 'test', ...(r() < 0.7 ? { remoteIp: pick(pubs) } : {}), ...(onLan || r() < 0.1 ? { mac: pick(macs) } : {}) };
    } else if (k < 0.93) {
      s = { kind: 'tunnel-down', ip: pick(vpn), user: pick(users), at, format: 'globalprotect', source: 'test' };
    } else {
      s = { kind: 'tunnel-down', ip: '0.0.0.0', user: pick(users), at, format: 'cisco-asa', source: 'test', ...(r() < 0.8 ? { remoteIp: pick(pubs) } : {}) };
    }
    out.push(s);
  }
  // batches of 1..40: a key often repeats within one
  const batches: Sighting[][] = [];
  for (let i = 0; i < out.length;) {
    const m = 1 + Math.floor(r() * 40);
    batches.push(out.slice(i, i + m));
    i += m;
  }
  return batches;
}

describe.skipIf(!!pg.skip)('batched PostgreSQL apply = SQLite = PostgreSQL one at a time', () => {
  // (seed 3's stream credits no device by a link under the names' first holders: the check below that
  // each rule was exercised would fail for the stream, not the code)
  it.each([1, 2, 4, 5, 6])('randomized stream, seed %i', async (seed) => {
    const stores = [await sqlite.open(OPTS), await pg.open(OPTS), await pg.open(OPTS)];
    ((stores[2] as PgStore).inventory).batched = false;
    const results: ApplyResult[][] = [[], [], []];
    const batches = stream(seed, 500);
    const r = rng(seed * 7919);
    let now = T0;
    for (const batch of batches) {
      for (let k = 0; k < 3; k++) results[k].push(...await stores[k].inventory.commitBatch(batch));
      now = Math.max(now, ...batch.map((s) => Date.parse(s.at)));
      // now and then a scan of one device (credit spreads by hostname), or leases that ran out end
      if (r() < 0.3) {
        const keys = (await all(stores[0], 'SELECT key FROM identities ORDER BY id')).map((i) => i.key as string);
        const chosen = keys[Math.floor(r() * keys.length)];
        for (const st of stores) {
          const [{ id }] = await all(st, 'SELECT id FROM identities WHERE key = $1', chosen);
          await st.inventory.markScanned([Number(id)], now, 'test');
        }
      }
      if (r() < 0.1) for (const st of stores) await st.inventory.expireStale(now);
    }
    const [lite, batched, each] = await Promise.all(stores.map(dump));
    expect(batched.identities).toEqual(lite.identities);
    expect(batched.holders).toEqual(lite.holders);
    expect(each.holders).toEqual(lite.holders);
    expect(batched.bindings).toEqual(lite.bindings);
    expect(batched.sightings).toEqual(lite.sightings);
    expect(batched.named(results[1])).toEqual(lite.named(results[0]));
    expect(each.identities).toEqual(lite.identities);
    expect(each.bindings).toEqual(lite.bindings);
    expect(each.named(results[2])).toEqual(lite.named(results[0]));
    // the stream exercised every rule: each kind of change, each way a binding ends, linked credit
    const changes = new Set(results[0].map((x) => x.change));
    expect([...changes].sort()).toEqual(['ended', 'ignored', 'new', 'reassigned', 'renewed']);
    const reasons = new Set(lite.bindings.map((b) => b.end_reason));
    for (const why of ['reassigned', 'moved', 'released', 'expired', 'tunnel-down', 'lease-ran-out']) expect(reasons).toContain(why);
    expect(lite.identities.some((i) => String(i.last_scanned_via).includes('linked from'))).toBe(true);
    expect(results[0].some((x, i) => x.change === 'ended' && batches.flat()[i].ip === '0.0.0.0')).toBe(true);
    // an address-less end closes VPN sessions only (seeds 2 and 4 have DHCP leases a VPN line of their
    // device renewed, which carry a session user); sessions keep their public address
    if (seed === 2 || seed === 4) expect(lite.bindings.some((b) => b.channel === 'dhcp' && b.vpn_user !== null)).toBe(true);
    expect(lite.bindings.filter((b) => b.channel === 'dhcp' && b.end_reason === 'tunnel-down')).toEqual([]);
    expect(lite.bindings.some((b) => b.remote_ip !== null)).toBe(true);
  }, 60_000);
});
