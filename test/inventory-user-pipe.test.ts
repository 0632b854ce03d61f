/**
 * VPN user names with a '|' in identity keys, on both stores. Keys were `user:NAME|HOST`, so user
 * `a|b` on host `c` and user `a` on host `b|c` both read `user:a|b|c` (and `a|b` with no host name
 * read as `a` on host `b`): two people's laptops were one device, one scan crediting both. A name
 * with a '|' now has a key of its own (`user:|` and the name percent-encoded); every other key is as
 * it was, so stored state needs no migration. The operator's names (`onsight why|skip <name|key>`)
 * follow: a printed key names its device again, a user name names that user's devices only, as
 * the real CLI shows on a real SQLite state file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it as itAll } from 'vitest';
import { parseTarget } from '../src/cli/target.js';
import { parseUserKey, userKey } from '../src/inventory/apply.js';
import type { Sighting } from '../src/sighting.js';
import type { Store } from '../src/store/types.js';
import { CLI } from './helpers/paths.js';
import { STORE_KINDS } from './helpers/stores.js';

const T0 = Date.parse('2026-11-30T08:00:00Z');
const up = (user: string, ip: string, min: number, hostname?: string): Sighting =>
  ({ kind: 'tunnel-up', ip, user, hostname, at: new Date(T0 + min * 60_000).toISOString(), format: 'openvpn', source: 'test' });
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 };

/** the identity ids the name or key names, as `onsight why|skip` reads it */
const named = (store: Store, text: string) => store.history.identitiesNamed(parseTarget(text));

describe('user keys', () => {
  itAll('keys of names without a "|" are as they were; one with a "|" gets its own, and reads back', () => {
    expect(userKey('Bob', 'LT-0042')).toBe('user:bob|lt-0042');
    expect(userKey('bob')).toBe('user:bob');
    expect(userKey('a', 'b|c')).toBe('user:a|b|c');
    expect(userKey('50%OFF', 'x')).toBe('user:50%off|x');
    expect(userKey('A|B', 'C')).toBe('user:|a%7cb|c');
    expect(userKey('a|b')).toBe('user:|a%7cb');
    // ('%' encoded too: a name that holds "%7c" is not the one with a '|' there)
    expect(userKey('p|%7c')).toBe('user:|p%7c%257c');
    expect(userKey('p||')).toBe('user:|p%7c%7c');
    for (const [u, h] of [['a|b', 'c'], ['a', 'b|c'], ['p|%7c', undefined], ['|', 'x|y'], ['bob', undefined], ['50%', 'h']] as const) {
      expect(parseUserKey(userKey(u, h))).toEqual({ user: u, hostname: h });
    }
    // a `user:|` key userKey would not write (stored before, for a name starting with '|'): none
    expect(parseUserKey('user:|ab|c')).toBeUndefined();
    expect(parseUserKey('user:|a%7zb')).toBeUndefined();
  });

  itAll('a printed key is taken back as it was printed: user:NAME names the user, with a host the one device', () => {
    expect(parseTarget('user:|a%7cb')).toEqual({ kind: 'user', value: 'a|b' });
    expect(parseTarget('user:|A%7CB|C')).toEqual({ kind: 'key', value: 'user:|a%7cb|c' });
    expect(parseTarget('user:a|b|c')).toEqual({ kind: 'key', value: 'user:a|b|c' });
    expect(parseTarget('user:bob')).toEqual({ kind: 'user', value: 'bob' });
    expect(parseTarget('a|b')).toEqual({ kind: 'user', value: 'a|b' });
    // a stored key of the old form for a name starting with '|': matched as the key it is
    expect(parseTarget('user:|ab|c')).toEqual({ kind: 'key', value: 'user:|ab|c' });
  });
});

describe.each(STORE_KINDS)('VPN user names with a "|" on $name', (kind) => {
  if (kind.skip) console.log(`skip user names with a "|" on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('a|b on c and a on b|c are two devices, and so are a|b with no host name and a on b; each scanned on its own', async () => {
    const store = await kind.open(OPTS);
    const inv = store.inventory;
    const [x] = await inv.commitBatch([up('a|b', '10.8.0.5', 0, 'c')]);
    const [y] = await inv.commitBatch([up('a', '10.8.0.6', 1, 'b|c')]);
    const [z] = await inv.commitBatch([up('a|b', '10.8.0.7', 2)]);
    const [w] = await inv.commitBatch([up('a', '10.8.0.8', 3, 'b')]);
    expect(new Set([x, y, z, w].map((r) => r.identityId)).size).toBe(4);
    expect([x, y, z, w].map((r) => r.change)).toEqual(['new', 'new', 'new', 'new']);
    expect(await Promise.all([x, y, z, w].map(async (r) => (await inv.identity(r.identityId!))?.key)))
      .toEqual(['user:|a%7cb|c', 'user:a|b|c', 'user:|a%7cb', 'user:a|b']);
    expect((await inv.counts(T0 + 4 * 60_000)).identities).toBe(4);
    await inv.markScanned([x.identityId!], T0 + 4 * 60_000, 'onsight');
    expect((await inv.identity(y.identityId!))?.lastScannedAt).toBeUndefined();
    expect((await inv.identity(x.identityId!))?.lastScannedAt).toBe(T0 + 4 * 60_000);
    // the same user again, in another case, on the same host: the same device, its session renewed
    const [again] = await inv.commitBatch([up('A|B', '10.8.0.5', 10, 'C')]);
    expect(again).toMatchObject({ change: 'renewed', identityId: x.identityId, bindingId: x.bindingId });
  });

  it("the operator's names: a user name names that user's devices only, a printed key its device", async () => {
    const store = await kind.open(OPTS);
    const inv = store.inventory;
    const [x] = await inv.commitBatch([up('a|b', '10.8.0.5', 0, 'c')]);
    const [y] = await inv.commitBatch([up('a', '10.8.0.6', 1, 'b|c')]);
    const [z] = await inv.commitBatch([up('a|b', '10.8.0.7', 2)]);
    const [w] = await inv.commitBatch([up('a', '10.8.0.8', 3, 'b')]);
    const sorted = (...ids: (number | null)[]) => ids.map(Number).sort((p, q) => p - q);
    expect(await named(store, 'a')).toEqual(sorted(y.identityId, w.identityId));
    expect(await named(store, 'a|b')).toEqual(sorted(x.identityId, z.identityId));
    expect(await named(store, 'A|B')).toEqual(sorted(x.identityId, z.identityId));
    expect(await named(store, 'user:|a%7cb')).toEqual(sorted(x.identityId, z.identityId));
    expect(await named(store, 'user:|a%7cb|c')).toEqual([x.identityId]);
    expect(await named(store, 'user:a|b|c')).toEqual([y.identityId]);
    expect(await named(store, 'user:a|b')).toEqual([w.identityId]);
    expect(await named(store, 'user:a')).toEqual(sorted(y.identityId, w.identityId));
    // present now: as skip reads a user
    expect(await store.history.identitiesNamed(parseTarget('a|b'), T0 + 4 * 60_000)).toEqual(sorted(x.identityId, z.identityId));
  });
});

describe('onsight why, the real CLI on a real SQLite state file', () => {
  itAll('names the device of the key it printed, and the user of a name with a "|" only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-user-pipe-'));
    const state = join(dir, 'state.db');
    const cfg = join(dir, 'onsight.yaml');
    writeFileSync(cfg, `state: ${state}\ntimezone: UTC\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\nhttp: { enabled: false }\n`);
    const store = await STORE_KINDS[0].open(OPTS, state);
    await store.inventory.commitBatch([up('a|b', '10.8.0.5', 0, 'c'), up('a', '10.8.0.6', 1, 'b|c'), up('a|b', '10.8.0.7', 2), up('a', '10.8.0.8', 3, 'b')]);
    await store.close();
    const why = (target: string) => {
      const r = spawnSync('node', [CLI, 'why', target, '--json', '--config', cfg], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return (JSON.parse(r.stdout) as { devices: { identity: string }[] }).devices.map((d) => d.identity).sort();
    };
    const keys = why('a|b');
    expect(keys).toEqual(['user:|a%7cb', 'user:|a%7cb|c']);
    expect(why(keys[1])).toEqual(['user:|a%7cb|c']);
    expect(why(keys[0])).toEqual(['user:|a%7cb', 'user:|a%7cb|c']);
    expect(why('a')).toEqual(['user:a|b', 'user:a|b|c']);
    expect(why('user:a|b|c')).toEqual(['user:a|b|c']);
  }, 30_000);
});
