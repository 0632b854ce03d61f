/**
 * The cluster inbox drops a line it already holds (same origin, line and time): a sender that logs
 * to every node delivers each line to each. A tailed file is read by one node, so an identical line
 * written twice within one timestamp (ACK, RELEASE, ACK in one second) is two lines: its key carries
 * where it ends in its file. Real file input, real ingest, real inbox on PostgreSQL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ingest, type IngestedSighting } from '../src/daemon/ingest.js';
import { InboxWriter } from '../src/cluster/inbox.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startFileInput } from '../src/sources/index.js';
import type { InputHandle } from '../src/sources/types.js';
import { silentLogger } from '../src/log.js';
import { inboxStore, pgKind } from './helpers/inbox.js';
import { until } from './helpers/wait.js';

if (pgKind.skip) console.log(`skip the inbox's file-line keys: ${pgKind.skip}`);
const log = silentLogger();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe.skipIf(!!pgKind.skip)('the inbox and a tailed file (real PostgreSQL)', () => {
  it('an identical line written twice in one second is two sightings; the same lines sent again are duplicates', async () => {
    const store = await inboxStore();
    const writer = new InboxWriter(store.db.pool, 'node-a');
    const appended: IngestedSighting[][] = [];
    const results: { inserted: number; duplicates: number }[] = [];
    const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, {
      zone: 'UTC',
      append: async (entries) => {
        appended.push(entries);
        results.push(await writer.append(entries.map((e) => ({ sighting: e.sighting, raw: e.raw, origin: `node-a:${e.source}` }))));
      },
    });
    cleanup.push(() => ingest.close());
    const dir = mkdtempSync(join(tmpdir(), 'onsight-inbox-file-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const p = join(dir, 'dhcpd.log');
    const ack = 'Dec  6 10:00:00 gw dhcpd[7]: DHCPACK on 10.9.0.5 to 52:54:00:00:09:05 via eth0';
    const rel = 'Dec  6 10:00:00 gw dhcpd[7]: DHCPRELEASE of 10.9.0.5 from 52:54:00:00:09:05 via eth0 (found)';
    writeFileSync(p, `${ack}\n${rel}\n${ack}\n`);
    const h: InputHandle = await startFileInput({ path: p, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20 }, ingest, () => undefined, log);
    cleanup.push(() => h.close());
    await until(() => results.reduce((n, r) => n + r.inserted + r.duplicates, 0) >= 3, 10_000, 'three lines appended');
    expect(appended.flat().map((e) => e.sighting.kind)).toEqual(['lease', 'release', 'lease']);
    expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(3); // the second ACK is a line of its own
    // the same entries appended again (the same line delivered twice, a retried batch) are duplicates
    const again = await writer.append(appended.flat().map((e) => ({ sighting: e.sighting, raw: e.raw, origin: `node-a:${e.source}` })));
    expect(again).toEqual({ inserted: 0, duplicates: 3 });
  });
});
