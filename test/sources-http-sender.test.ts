/**
 * The HTTP input names a request's sender as the syslog inputs do: canonical. On a dual-stack
 * listener (`[::]:PORT`) an IPv4 client's address arrives as `::ffff:127.0.0.1`; as that, the cluster
 * inbox's origin (and any per-sender count) differed from a node listening on 0.0.0.0. Real listener,
 * real HTTP client, real SQLite store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpInput } from '../src/sources/index.js';
import { httpInput } from '../src/sources/http/schema.js';
import { silentLogger } from '../src/log.js';
import { STORE_KINDS } from './helpers/stores.js';
import { CollectSink } from './helpers/sink.js';
import type { RawLine } from '../src/sources/types.js';
import { until } from './helpers/wait.js';

const log = silentLogger();
const TOKEN = 'hec-token-sender-test';
process.env.ONSIGHT_TEST_SENDER_TOKEN = TOKEN;
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Can this machine listen on [::] and take IPv4 clients there (dual stack)? */
async function dualStack(): Promise<boolean> {
  const s = createServer();
  try {
    await new Promise<void>((resolve, reject) => s.once('error', reject).listen({ host: '::', port: 0, ipv6Only: false }, resolve));
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}
const hasDualStack = await dualStack();
if (!hasDualStack) console.log('skip the HTTP input sender test: this machine cannot listen on [::] (no IPv6)');

describe.skipIf(!hasDualStack)('HTTP input: the sender of a request', () => {
  it('an IPv4 client of a [::] listener is its IPv4 address, not ::ffff:', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-http-sender-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const sqlite = STORE_KINDS.find((k) => k.name === 'sqlite')!;
    const store = await sqlite.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 }, join(dir, 'state.db'));
    cleanup.push(() => store.close());
    // (the store's commit, as the ingest makes it: the request is answered once its lines are committed)
    const sink = new (class extends CollectSink {
      override push(line: RawLine): boolean {
        const more = super.push(line);
        setImmediate(() => line.group?.committed?.());
        return more;
      }
    })();
    const h = await startHttpInput(httpInput.parse({ type: 'http', listen: '[::]:0', format: 'isc-dhcpd', tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_SENDER_TOKEN' }] }), sink, store.inventory, log);
    cleanup.push(() => h.close());
    const r = await fetch(`http://127.0.0.1:${h.address!.port}/services/collector/raw`, {
      method: 'POST', headers: { authorization: `Splunk ${TOKEN}` },
      body: 'Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.6.0.1 to 52:54:00:00:06:01 via eth0\n',
    });
    expect(r.status).toBe(200);
    await until(() => sink.lines.length >= 1, 5000, 'the line');
    expect(sink.lines[0].sender).toBe('127.0.0.1');
  });
});
