/**
 * HEC /services/collector/raw with a body that holds no readable line: control bytes only, or
 * bytes that are not UTF-8 only. Nothing is taken, so the answer is Splunk's Invalid data format
 * (HTTP 400, code 6), not Success (code 0) as it was; each such line is counted as `binary`. A body
 * with at least one readable line still succeeds, and that line is stored. Real listener, real
 * HTTP client on loopback, the real ingest and a real SQLite state file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Ingest } from '../src/daemon/ingest.js';
import { silentLogger } from '../src/log.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startHttpInput } from '../src/sources/index.js';
import { httpInput } from '../src/sources/http/schema.js';
import { STORE_KINDS } from './helpers/stores.js';
import { until } from './helpers/wait.js';

const log = silentLogger();
const TOKEN = 'hec-token-binary-body-test';
process.env.ONSIGHT_TEST_BINARY_TOKEN = TOKEN;
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 };

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const dhcp = (k: number) => `Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.7.0.${k} to 52:54:00:00:07:${k.toString(16).padStart(2, '0')} via eth0`;

async function collector() {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-hec-binary-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await STORE_KINDS.find((k) => k.name === 'sqlite')!.open(OPTS, join(dir, 'state.db'));
  cleanup.push(() => store.close());
  const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC' });
  cleanup.push(() => ingest.close());
  const h = await startHttpInput(httpInput.parse({ type: 'http', listen: '127.0.0.1:0', format: 'auto', tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_BINARY_TOKEN' }] }), ingest, store.inventory, log);
  cleanup.push(() => h.close());
  const raw = async (body: Buffer, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${h.address!.port}/services/collector/raw`, { method: 'POST', body, headers: { authorization: `Splunk ${TOKEN}`, ...headers } });
    return { status: r.status, body: await r.json() };
  };
  return { h, ingest, store, raw };
}

describe('HEC /raw: a body with no readable line', () => {
  it('control bytes only (0x00-0x08): 400 Invalid data format (code 6), each line counted as binary, nothing stored', async () => {
    const { h, ingest, raw } = await collector();
    const r = await raw(Buffer.from([0x00, 0x01, 0x02, 0x03, 0x0a, 0x04, 0x05, 0x06, 0x07, 0x08]));
    expect(r).toEqual({ status: 400, body: { text: 'Invalid data format', code: 6 } });
    expect(h.counters().dropped.binary).toBe(2);
    expect(h.counters().received).toBe(0);
    expect(ingest.counters.lines).toBe(0);
    // the same gzipped: read, then refused alike
    const g = await raw(gzipSync(Buffer.from([0x01, 0x02, 0x7f, 0x00])), { 'content-encoding': 'gzip' });
    expect(g).toEqual({ status: 400, body: { text: 'Invalid data format', code: 6 } });
    expect(h.counters().dropped.binary).toBe(3);
  });

  it('bytes that are not UTF-8 only: 400 code 6, counted as binary', async () => {
    const { h, ingest, raw } = await collector();
    const r = await raw(Buffer.from([0xff, 0xfe, 0x80, 0x0d, 0x0a, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x0a]));
    expect(r).toEqual({ status: 400, body: { text: 'Invalid data format', code: 6 } });
    expect(h.counters().dropped.binary).toBe(2);
    expect(ingest.counters.lines).toBe(0);
  });

  it('a body with one readable line among binary ones still succeeds; the line is stored, the others counted', async () => {
    const { h, store, raw } = await collector();
    const body = Buffer.concat([Buffer.from([0x00, 0x01, 0x0a, 0xff, 0xfe, 0x0a]), Buffer.from(`${dhcp(1)}\n`)]);
    const r = await raw(body);
    expect(r).toEqual({ status: 200, body: { text: 'Success', code: 0 } });
    expect(h.counters().dropped.binary).toBe(2);
    expect(h.counters().received).toBe(1);
    await until(async () => (await store.inventory.openBinding('10.7.0.1'))?.ip === '10.7.0.1', 5000, 'the lease stored');
    // a line with a byte that is not UTF-8 among text is still read (as U+FFFD), as before
    const latin = await raw(Buffer.concat([Buffer.from(`${dhcp(2)} caf`), Buffer.from([0xe9, 0x0a])]));
    expect(latin).toEqual({ status: 200, body: { text: 'Success', code: 0 } });
    await until(async () => (await store.inventory.openBinding('10.7.0.2'))?.ip === '10.7.0.2', 5000, 'the second lease stored');
    expect(h.counters().dropped.binary).toBe(2);
  });
});
