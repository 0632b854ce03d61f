/**
 * The cluster inbox and a sender that logs to every node: each line reaches each node, and the
 * copies are one sighting. A line the sender really sent twice within one timestamp (ACK, RELEASE,
 * ACK in one second) is two sightings all the same: the second ACK was dropped as a duplicate of
 * the first, and the binding stayed released. Two nodes with real UDP syslog inputs, real ingest,
 * one real inbox on PostgreSQL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { Ingest } from '../src/daemon/ingest.js';
import { InboxWriter, type AppendResult } from '../src/cluster/inbox.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startSyslogInput } from '../src/sources/index.js';
import type { InputHandle } from '../src/sources/types.js';
import { silentLogger } from '../src/log.js';
import { inboxStore, pgKind } from './helpers/inbox.js';
import { until } from './helpers/wait.js';

if (pgKind.skip) console.log(`skip the inbox's network repeats: ${pgKind.skip}`);
const log = silentLogger();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe.skipIf(!!pgKind.skip)('the inbox and a sender logging to two nodes (real PostgreSQL, real UDP)', () => {
  it('each line once across the nodes; an identical line sent twice in one second twice', async () => {
    const store = await inboxStore();
    const registry = await loadRegistry();
    const results: AppendResult[] = [];
    const kinds: string[] = [];
    const node = async (name: string) => {
      const writer = new InboxWriter(store.db.pool, name);
      const ingest = new Ingest(registry, store.inventory, () => undefined, log, {
        zone: 'UTC',
        append: async (entries) => {
          kinds.push(...entries.map((e) => `${name}:${e.sighting.kind}`));
          results.push(await writer.append(entries.map((e) => ({ sighting: e.sighting, raw: e.raw, origin: e.sender ?? `${name}:${e.source}` }))));
        },
      });
      cleanup.push(() => ingest.close());
      const h: InputHandle = await startSyslogInput({ listen: 'udp://127.0.0.1:0', format: 'isc-dhcpd', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, udpRecvBufferBytes: 1 << 20 }, ingest, log);
      cleanup.push(() => h.close());
      return h.address!.port;
    };
    const ports = [await node('node-a'), await node('node-b')];
    const s = createSocket('udp4');
    cleanup.push(() => s.close());
    const ack = '<30>Dec  6 10:00:00 gw dhcpd[7]: DHCPACK on 10.9.0.5 to 52:54:00:00:09:05 via eth0';
    const rel = '<30>Dec  6 10:00:00 gw dhcpd[7]: DHCPRELEASE of 10.9.0.5 from 52:54:00:00:09:05 via eth0 (found)';
    // one sender, one socket, each line to both nodes (as `logging host` twice does)
    for (const line of [ack, rel, ack]) {
      for (const port of ports) await new Promise<void>((resolve, reject) => s.send(line, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
    await until(() => results.reduce((n, r) => n + r.inserted + r.duplicates, 0) >= 6, 10_000, 'six copies appended');
    expect(kinds.filter((k) => k.startsWith('node-a:'))).toEqual(['node-a:lease', 'node-a:release', 'node-a:lease']);
    expect(kinds.filter((k) => k.startsWith('node-b:'))).toEqual(['node-b:lease', 'node-b:release', 'node-b:lease']);
    // three lines sent, each delivered twice: three rows, three duplicates
    expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(3);
    expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(3);
    const rows = await store.db.pool.query<{ kind: string }>(`SELECT sighting->>'kind' AS kind FROM cluster_inbox ORDER BY id`);
    expect(rows.rows.map((r) => r.kind).sort()).toEqual(['lease', 'lease', 'release']);
  });
});
