/**
 * HEC /services/collector/event with a body whose every event is unreadable: strings of control
 * bytes only (JSON escapes reach them), or of bytes that were not UTF-8 only (read as U+FFFD).
 * Nothing is taken, so the answer is Splunk's Invalid data format (HTTP 400, code 6), as /raw's
 * since 58d1cd8, not Success (code 0) as it was; each such event is counted as `binary`. A body
 * with at least one readable event still succeeds, and that event is stored. Real listener, real
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
const TOKEN = 'hec-token-event-binary-test';
process.env.ONSIGHT_TEST_EVENT_BINARY_TOKEN = TOKEN;
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 };
const INVALID = { status: 400, body: { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 } };
const SUCCESS = { status: 200, body: { text: 'Success', code: 0 } };

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const dhcp = (k: number) => `Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.8.0.${k} to 52:54:00:00:08:${k.toString(16).padStart(2, '0')} via eth0`;

async function collector() {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-hec-event-binary-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = await STORE_KINDS.find((k) => k.name === 'sqlite')!.open(OPTS, join(dir, 'state.db'));
  cleanup.push(() => store.close());
  const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC' });
  cleanup.push(() => ingest.close());
  const h = await startHttpInput(httpInput.parse({ type: 'http', listen: '127.0.0.1:0', format: 'auto', tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_EVENT_BINARY_TOKEN' }] }), ingest, store.inventory, log);
  cleanup.push(() => h.close());
  const post = async (body: Buffer, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${h.address!.port}/services/collector/event`, { method: 'POST', body, headers: { authorization: `Splunk ${TOKEN}`, ...headers } });
    return { status: r.status, body: await r.json() };
  };
  return { h, ingest, store, post };
}

/** `{"event":"<bytes>"}` with the bytes put in the JSON string as they are */
const ev = (bytes: Buffer) => Buffer.concat([Buffer.from('{"event":"'), bytes, Buffer.from('"}')]);

describe('HEC /event: a body with no readable event', () => {
  it('control characters only (JSON escapes): 400 Invalid data format (code 6), each event counted as binary, nothing stored', async () => {
    const { h, ingest, post } = await collector();
    const r = await post(Buffer.from('{"event":"\\u0000\\u0001\\u0002"}{"event":"\\u0007\\u001b"}\n{"event":{"message":"\\u007f"}}'));
    expect(r).toEqual(INVALID);
    expect(h.counters().dropped.binary).toBe(3);
    expect(h.counters().received).toBe(0);
    expect(ingest.counters.lines).toBe(0);
    // the same gzipped: read, then refused alike
    const g = await post(gzipSync(Buffer.from('{"event":"\\u0000"}')), { 'content-encoding': 'gzip' });
    expect(g).toEqual(INVALID);
    expect(h.counters().dropped.binary).toBe(4);
  });

  it('strings of bytes that are not UTF-8 only: 400 code 6, counted as binary', async () => {
    const { h, ingest, post } = await collector();
    const r = await post(Buffer.concat([ev(Buffer.from([0xff, 0xfe, 0x80])), Buffer.from('\n'), ev(Buffer.from([0xc0, 0xaf, 0x20, 0xed, 0xa0, 0x80]))]));
    expect(r).toEqual(INVALID);
    expect(h.counters().dropped.binary).toBe(2);
    expect(h.counters().received).toBe(0);
    expect(ingest.counters.lines).toBe(0);
  });

  it('a body with one readable event among binary ones still succeeds; the event is stored, the others counted', async () => {
    const { h, store, post } = await collector();
    const r = await post(Buffer.concat([Buffer.from('{"event":"\\u0000\\u0001"}'), ev(Buffer.from([0xff, 0xfe])), Buffer.from(JSON.stringify({ event: dhcp(1) }))]));
    expect(r).toEqual(SUCCESS);
    expect(h.counters().dropped.binary).toBe(2);
    expect(h.counters().received).toBe(1);
    await until(async () => (await store.inventory.openBinding('10.8.0.1'))?.ip === '10.8.0.1', 5000, 'the lease stored');
    // an event with a byte that is not UTF-8 among text is still read (as U+FFFD), as before
    const latin = await post(ev(Buffer.from(`${dhcp(2)} caf\xe9`, 'latin1')));
    expect(latin).toEqual(SUCCESS);
    await until(async () => (await store.inventory.openBinding('10.8.0.2'))?.ip === '10.8.0.2', 5000, 'the second lease stored');
    expect(h.counters().dropped.binary).toBe(2);
  });

  it('an event object with no line field is well formed: still Success (counted noLine, not binary)', async () => {
    const { h, post } = await collector();
    const r = await post(Buffer.from('{"event":{"user":"alice"}}'));
    expect(r).toEqual(SUCCESS);
    expect(h.counters().dropped.noLine).toBe(1);
    expect(h.counters().dropped.binary ?? 0).toBe(0);
  });
});
