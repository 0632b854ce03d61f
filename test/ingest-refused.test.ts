/**
 * A value the store cannot hold must not stop ingestion. PostgreSQL's text and jsonb refuse NUL
 * (\u0000) and lone surrogates, and one such value used to make the whole batch fail and be retried
 * every second for ever, holding every input behind it. On SQLite (a real file) and PostgreSQL (a
 * real server; skipped with a printed reason where absent):
 * - the decoder replaces such characters in a parsed field: a file line with a NUL in the hostname
 *   commits, with the other lines of its batch;
 * - HEC event strings and /raw lines with control characters are dropped and counted as `binary`;
 * - the ingest's safety net: a batch refused for its content (SQLSTATE class 22) is split, the line
 *   at fault dropped and counted, the rest committed, and the file checkpoint still moves.
 */
import { afterEach, beforeEach, describe, expect, it as itAll } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ingest } from '../src/daemon/ingest.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { storableText } from '../src/util/text.js';
import { checkSighting } from '../src/sources/http/sightings.js';
import { startFileInput, startHttpInput } from '../src/sources/index.js';
import type { InputHandle, RawLine } from '../src/sources/types.js';
import type { Store } from '../src/store/types.js';
import { httpInput } from '../src/sources/http/schema.js';
import { silentLogger } from '../src/log.js';
import { STORE_KINDS } from './helpers/stores.js';
import { until } from './helpers/wait.js';

const log = silentLogger();
const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 };
const dhcp = (ip: string, mac: string, host?: string) => `Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on ${ip} to ${mac}${host !== undefined ? ` (${host})` : ''} via eth0`;

let dir: string;
const handles: InputHandle[] = [];
const ingests: Ingest[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-refused-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  for (const i of ingests.splice(0)) await i.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ingestOn(store: Store): Promise<Ingest> {
  const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC' });
  ingests.push(ingest);
  return ingest;
}

describe('storableText', () => {
  itAll('replaces C0 controls but TAB, DEL and lone surrogates with U+FFFD; keeps whole pairs', () => {
    expect(storableText('plain-host')).toBe('plain-host');
    expect(storableText('a\u0000b\tc\u007f\nd')).toBe('a\ufffdb\tc\ufffd\ufffdd');
    expect(storableText('x\ud800y\udc00z')).toBe('x\ufffdy\ufffdz');
    expect(storableText('laptop-\ud83d\ude00')).toBe('laptop-\ud83d\ude00');
    expect(storableText('end\ud83d')).toBe('end\ufffd');
  });

  itAll('Sighting JSON (HTTP) refuses a lone surrogate in a text field as it refuses control characters', () => {
    const at = new Date();
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.1', hostname: 'a\ud800b' }, 'http:1:nac', at)).toMatchObject({ ok: false, error: expect.stringContaining('hostname') });
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.1', hostname: 'laptop-\ud83d\ude00' }, 'http:1:nac', at)).toMatchObject({ ok: true });
  });
});

describe.each(STORE_KINDS)('refused values on $name', (kind) => {
  if (kind.skip) console.log(`skip refused values on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('a file line with a NUL in the hostname commits, and so do the other lines of its batch', async () => {
    const store = await kind.open(OPTS, join(dir, 'state.db'));
    const ingest = await ingestOn(store);
    const p = join(dir, 'dhcpd.log');
    writeFileSync(p, [
      dhcp('10.7.0.1', '52:54:00:00:07:01', 'one'),
      dhcp('10.7.0.2', '52:54:00:00:07:02', 'bad\u0000host'),
      dhcp('10.7.0.3', '52:54:00:00:07:03', 'three'),
    ].join('\n') + '\n');
    handles.push(await startFileInput({ path: p, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20 }, ingest, (path) => store.inventory.checkpoint(path), log));
    await until(async () => (await store.inventory.checkpoint(p))?.offset === statSync(p).size, 10_000, 'the checkpoint at the end of the file');
    expect((await store.inventory.openBinding('10.7.0.1'))?.hostname).toBe('one');
    expect((await store.inventory.openBinding('10.7.0.2'))?.hostname).toBe('bad\ufffdhost');
    expect((await store.inventory.openBinding('10.7.0.3'))?.hostname).toBe('three');
    expect(ingest.counters).toMatchObject({ lines: 3, sightings: 3, refusedLines: 0 });
  }, 30_000);

  it('HEC: an event or /raw line with a NUL is dropped and counted as binary; the rest of the request commits', async () => {
    const store = await kind.open(OPTS, join(dir, 'state.db'));
    const ingest = await ingestOn(store);
    process.env.ONSIGHT_TEST_REFUSED_TOKEN = 'hec-token-refused-test';
    const cfg = httpInput.parse({ type: 'http', listen: '127.0.0.1:0', format: 'isc-dhcpd', tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_REFUSED_TOKEN' }] });
    const h = await startHttpInput(cfg, ingest, store.inventory, log);
    handles.push(h);
    const post = (path: string, body: string) => fetch(`http://127.0.0.1:${h.address!.port}${path}`, { method: 'POST', body, headers: { authorization: 'Splunk hec-token-refused-test' } });
    const ev = [
      { event: dhcp('10.8.0.1', '52:54:00:00:08:01', 'ok1') },
      { event: dhcp('10.8.0.2', '52:54:00:00:08:02', 'nul\u0000here') },
      { event: dhcp('10.8.0.3', '52:54:00:00:08:03', 'ok3') },
    ].map((e) => JSON.stringify(e)).join('\n');
    const r1 = await post('/services/collector/event', ev);
    expect(r1.status).toBe(200);
    const r2 = await post('/services/collector/raw', `${dhcp('10.8.0.4', '52:54:00:00:08:04', 'ok4')}\n${dhcp('10.8.0.5', '52:54:00:00:08:05', 'n\u0000l')}\n`);
    expect(r2.status).toBe(200);
    expect(h.counters().dropped.binary).toBe(2);
    for (const [ip, host] of [['10.8.0.1', 'ok1'], ['10.8.0.3', 'ok3'], ['10.8.0.4', 'ok4']]) expect((await store.inventory.openBinding(ip))?.hostname).toBe(host);
    expect(await store.inventory.openBinding('10.8.0.2')).toBeUndefined();
    expect(await store.inventory.openBinding('10.8.0.5')).toBeUndefined();
  }, 30_000);

  it('a batch the store refuses for one sighting is split: that line is dropped and counted, the others and the checkpoint commit', async () => {
    const store = await kind.open(OPTS, join(dir, 'state.db'));
    const ingest = await ingestOn(store);
    const cp = (offset: number) => ({ path: '/var/log/x.log', dev: 1, ino: 2, offset, fingerprint: 'f'.repeat(64), tailFingerprint: 'e'.repeat(64) });
    const at = new Date().toISOString();
    // sightings a source decoded itself (as a lease file's) skip the decoder: the store sees the NUL as it is
    const line = (n: number, hostname: string): RawLine => ({
      text: `line ${n}`, receivedAt: new Date(), source: 'file:/var/log/x.log', line: n, checkpoint: cp(n * 10),
      sightings: [{ kind: 'lease', ip: `10.9.0.${n}`, mac: `52:54:00:00:09:0${n}`, hostname, at, format: 'test', source: 'file:/var/log/x.log', line: n }],
    });
    for (let n = 1; n <= 6; n++) ingest.push(line(n, n === 4 ? 'evil\u0000name' : `host${n}`));
    await until(async () => (await store.inventory.checkpoint('/var/log/x.log'))?.offset === 60, 10_000, 'the last checkpoint');
    for (const n of [1, 2, 3, 5, 6]) expect((await store.inventory.openBinding(`10.9.0.${n}`))?.hostname).toBe(`host${n}`);
    if (kind.name === 'postgres') {
      // PostgreSQL refuses the NUL: that one line, counted; nothing retried for ever
      expect(await store.inventory.openBinding('10.9.0.4')).toBeUndefined();
      expect(ingest.counters.refusedLines).toBe(1);
    } else {
      // SQLite stores it as it is
      expect((await store.inventory.openBinding('10.9.0.4'))?.hostname).toBe('evil\u0000name');
      expect(ingest.counters.refusedLines).toBe(0);
    }
    expect(ingest.counters.lines).toBe(6);
  }, 30_000);
});
