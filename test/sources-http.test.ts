/**
 * The HTTP input through the real daemon: Splunk HEC (/services/collector/event, /raw) and Sighting
 * JSON (/api/v1/sightings), with real clients — curl, and Splunk's own HEC client from npm
 * (splunk-logging) — and hostile requests: wrong tokens, malformed JSON, oversized bodies, gzip
 * bombs, a token sending outside its allow-list, more requests than the input takes at once. Each
 * refusal gets HEC's answer (or a clear JSON error) and is counted on /metrics; nothing refused
 * reaches the state.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { freePort, startDaemon, type DaemonProcess } from './helpers/daemon.js';
import { until } from './helpers/wait.js';

const hasCurl = spawnSync('curl', ['--version']).status === 0;
if (!hasCurl) console.log('SKIP curl cases: `curl` not found (Debian package curl)');

const HEC_TOKEN = 'hec-token-7f1c2b9e-test';
const NAC_TOKEN = 'nac-token-31d0a5-test';

/** an ISC dhcpd line as a SIEM holds it (_raw without the syslog PRI) */
const dhcp = (i: number) => `Dec  1 10:00:00 gw dhcpd[7]: DHCPACK on 10.9.${i >> 8}.${i & 255} to 52:54:00:aa:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0`;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(port: number, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function stored(state: string, where = '1'): { ip: string; kind: string; source: string }[] {
  const db = new Database(state, { readonly: true });
  try {
    return db.prepare(`SELECT ip, kind, source FROM sightings WHERE ${where} ORDER BY id`).all() as never;
  } finally {
    db.close();
  }
}

async function metric(httpPort: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(name + '{') && want.every((w) => l.includes(w)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('HTTP input through the real daemon', () => {
  let d: DaemonProcess;
  let port: number;
  let httpPort: number;
  let state: string;
  const dir = mkdtempSync(join(tmpdir(), 'onsight-httpin-'));

  beforeAll(async () => {
    port = await freePort();
    httpPort = await freePort();
    writeFileSync(join(dir, 'nac.token'), NAC_TOKEN + '\n');
    d = await startDaemon(`
state: STATE
timezone: UTC
inputs:
  - type: http
    listen: "127.0.0.1:${port}"
    format: auto
    maxBodyBytes: 65536
    tokens:
      - { name: siem, env: TEST_HEC_TOKEN }
      - { name: nac, file: ${join(dir, 'nac.token')}, allow: { endpoints: [sightings], cidrs: ["10.20.0.0/16"] } }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
scanner: { type: dry-run }
http: { listen: "127.0.0.1:${httpPort}" }
`, { TEST_HEC_TOKEN: HEC_TOKEN });
    state = join(d.dir, 'state.db');
  }, 30_000);

  afterAll(async () => {
    expect(await d.stop()).toBe(0);
    // the tokens never reach the log
    const all = JSON.stringify(d.logs) + d.stderr;
    expect(all).not.toContain(HEC_TOKEN);
    expect(all).not.toContain(NAC_TOKEN);
  });

  it('HEC /event: batched events (string, object with message, Sighting JSON) are committed before the 200', async () => {
    const body = [
      { time: 1764583200, host: 'gw', sourcetype: 'syslog', event: dhcp(1) },
      { event: { message: dhcp(2), severity: 'info' } },
      { event: { kind: 'lease', ip: '10.9.0.3', mac: '52:54:00:aa:00:03', durationS: 600 } },
    ].map((e) => JSON.stringify(e)).join('\n');
    const r = await post(port, '/services/collector/event', body, { authorization: `Splunk ${HEC_TOKEN}` });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ text: 'Success', code: 0 });
    // committed before the answer: no waiting here
    expect(stored(state, "ip LIKE '10.9.0.%'").map((s) => s.ip).sort()).toEqual(['10.9.0.1', '10.9.0.2', '10.9.0.3']);
    expect(stored(state, "ip = '10.9.0.1'")[0].source).toBe(`http:${port}:siem`);
  });

  it('HEC: an event time more than a day ahead, or one no Date can hold, is the receive time (a sighting dated in year 128724 held its address for ever; 1e20 answered 500)', async () => {
    const before = Date.now();
    const body = [
      { time: 4e12, event: dhcp(40) },
      { time: 1e20, event: { kind: 'lease', ip: '10.9.0.41', mac: '52:54:00:aa:00:29' } },
      { time: '99999999999999999999', event: dhcp(42) },
    ].map((e) => JSON.stringify(e)).join('');
    const r = await post(port, '/services/collector/event', body, { authorization: `Splunk ${HEC_TOKEN}` });
    expect(r.status).toBe(200);
    const db = new Database(state, { readonly: true });
    try {
      const rows = db.prepare("SELECT ip, at FROM sightings WHERE ip IN ('10.9.0.40', '10.9.0.41', '10.9.0.42') ORDER BY ip").all() as { ip: string; at: number }[];
      expect(rows.map((x) => x.ip)).toEqual(['10.9.0.40', '10.9.0.41', '10.9.0.42']);
      // the lines keep their own header time (Dec 1, its year resolved against the receipt); the sighting without `at` is the receipt
      for (const x of rows) expect(x.at, x.ip).toBeLessThanOrEqual(Date.now() + 86_400_000);
      for (const x of rows) expect(x.at, x.ip).toBeGreaterThan(before - 367 * 86_400_000);
      expect(rows[1].at).toBeGreaterThanOrEqual(before - 1000);
      expect(rows[1].at).toBeLessThanOrEqual(Date.now() + 1000);
    } finally {
      db.close();
    }
  });

  it('HEC: an event time hours ahead is the receive time (a forged stamp made the address\'s genuine lines look older than what was known of it)', async () => {
    const before = Date.now();
    const body = JSON.stringify({ time: (Date.now() + 2 * 3_600_000) / 1000, event: { kind: 'lease', ip: '10.9.0.47', mac: '52:54:00:aa:00:2f' } });
    const r = await post(port, '/services/collector/event', body, { authorization: `Splunk ${HEC_TOKEN}` });
    expect(r.status).toBe(200);
    const db = new Database(state, { readonly: true });
    try {
      const [row] = db.prepare("SELECT at FROM sightings WHERE ip = '10.9.0.47'").all() as { at: number }[];
      expect(row.at).toBeGreaterThanOrEqual(before - 1000);
      expect(row.at).toBeLessThanOrEqual(Date.now() + 1000);
    } finally {
      db.close();
    }
  });

  it('HEC /raw with gzip, and curl as the client', async () => {
    const raw = gzipSync(Buffer.from(`${dhcp(4)}\r\n${dhcp(5)}\n\n`));
    const r = await post(port, '/services/collector/raw?channel=00872DC6-AC83-4EDE-8AFE-8413C3825C4C', raw, { authorization: `Splunk ${HEC_TOKEN}`, 'content-encoding': 'gzip' });
    expect(r.status).toBe(200);
    expect(stored(state, "ip IN ('10.9.0.4', '10.9.0.5')")).toHaveLength(2);
    if (!hasCurl) return;
    const out = execFileSync('curl', ['-sS', '-w', '\n%{http_code}', '-H', `Authorization: Splunk ${HEC_TOKEN}`, '--data-binary', JSON.stringify({ event: dhcp(6) }),
      `http://127.0.0.1:${port}/services/collector/event`], { encoding: 'utf8' });
    expect(out.trim().split('\n')).toEqual(['{"text":"Success","code":0}', '200']);
    expect(stored(state, "ip = '10.9.0.6'")).toHaveLength(1);
  });

  it('HEC has no idempotency key: an exact repeat of a body (a retry) gets the first answer and is not applied twice', async () => {
    const body = JSON.stringify({ event: dhcp(300) });
    const h = { authorization: `Splunk ${HEC_TOKEN}` };
    const r1 = await post(port, '/services/collector/event', body, h);
    expect(r1.status).toBe(200);
    const r2 = await post(port, '/services/collector/event', body, h);
    expect(r2.status).toBe(200);
    expect(JSON.parse(r2.body)).toEqual({ text: 'Success', code: 0 });
    expect(r2.headers['idempotent-replayed']).toBe('true');
    expect(stored(state, "ip = '10.9.1.44'")).toHaveLength(1);
    // a different body is new data
    const r3 = await post(port, '/services/collector/event', JSON.stringify({ event: dhcp(300), time: 1764583260 }), h);
    expect(r3.status).toBe(200);
    expect(r3.headers['idempotent-replayed']).toBeUndefined();
  });

  it('HEC: a repeat with another body from the token in between is news, not a retry: tunnel-up, tunnel-down, tunnel-up without times all land (the third was answered 200 and dropped)', async () => {
    const h = { authorization: `Splunk ${HEC_TOKEN}` };
    const up = JSON.stringify({ event: { kind: 'tunnel-up', ip: '10.9.3.3', user: 'dave' } });
    const down = JSON.stringify({ event: { kind: 'tunnel-down', ip: '10.9.3.3', user: 'dave' } });
    const answers: (string | undefined)[] = [];
    for (const b of [up, down, up]) {
      const r = await post(port, '/services/collector/event', b, h);
      expect(r.status).toBe(200);
      answers.push(r.headers['idempotent-replayed'] as string | undefined);
    }
    expect(answers).toEqual([undefined, undefined, undefined]);
    expect(stored(state, "ip = '10.9.3.3'").map((x) => x.kind)).toEqual(['tunnel-up', 'tunnel-down', 'tunnel-up']);
    // the same on /raw: a timeless ACK, its RELEASE, the same ACK again
    const ack = 'dhcpd[7]: DHCPACK on 10.9.3.4 to 52:54:00:aa:03:04 via eth0\n';
    const rel = 'dhcpd[7]: DHCPRELEASE of 10.9.3.4 from 52:54:00:aa:03:04 via eth0\n';
    for (const b of [ack, rel, ack]) expect((await post(port, '/services/collector/raw', b, h)).headers['idempotent-replayed']).toBeUndefined();
    expect(stored(state, "ip = '10.9.3.4'").map((x) => x.kind)).toEqual(['lease', 'release', 'lease']);
    // and a retry straight after its body is still one
    const again = await post(port, '/services/collector/raw', ack, h);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(stored(state, "ip = '10.9.3.4'")).toHaveLength(3);
  });

  it("Splunk's HEC client (splunk-logging) sends batches that land", async () => {
    const require = createRequire(import.meta.url);
    const { Logger } = require('splunk-logging') as { Logger: new (c: object) => { send(p: object, cb: (err: Error | null, resp: { statusCode: number }, body: unknown) => void): void; flush(cb: (err: Error | null, resp: { statusCode: number }, body: unknown) => void): void } };
    const logger = new Logger({ token: HEC_TOKEN, url: `http://127.0.0.1:${port}`, maxBatchCount: 0 });
    for (let i = 10; i < 15; i++) logger.send({ message: dhcp(i) }, () => undefined);
    const res = await new Promise<{ status: number; body: unknown }>((resolve, reject) => logger.flush((err, resp, body) => (err ? reject(err) : resolve({ status: resp.statusCode, body }))));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ text: 'Success', code: 0 });
    expect(stored(state, "ip BETWEEN '10.9.0.10' AND '10.9.0.14'")).toHaveLength(5);
  });

  it('Sighting JSON: array and JSON Lines; the Idempotency-Key replays the answer without applying twice', async () => {
    const items = [{ kind: 'lease', ip: '10.20.0.7', mac: '52:54:00:bb:00:07', hostname: 'nac-seen' }, { kind: 'lease', ip: '10.20.0.8', mac: '52:54:00:bb:00:08' }];
    const h = { authorization: `Bearer ${NAC_TOKEN}`, 'idempotency-key': 'batch-0001', 'content-type': 'application/json' };
    const r1 = await post(port, '/api/v1/sightings', JSON.stringify(items), h);
    expect(r1.status).toBe(200);
    expect(JSON.parse(r1.body)).toEqual({ status: 'ok', received: 2 });
    const r2 = await post(port, '/api/v1/sightings', JSON.stringify(items), h);
    expect(r2.status).toBe(200);
    expect(r2.headers['idempotent-replayed']).toBe('true');
    expect(stored(state, "ip IN ('10.20.0.7', '10.20.0.8')")).toHaveLength(2);
    const r3 = await post(port, '/api/v1/sightings', '{"kind":"release","ip":"10.20.0.8","mac":"52:54:00:bb:00:08"}\n', { authorization: `Bearer ${NAC_TOKEN}` });
    expect(r3.status).toBe(200);
    expect(stored(state, "ip = '10.20.0.8' AND kind = 'release'")).toHaveLength(1);
  });

  it('refuses wrong, missing and malformed tokens with HEC answers, and counts them', async () => {
    const body = JSON.stringify({ event: dhcp(300) });
    const none = await post(port, '/services/collector/event', body);
    expect([none.status, JSON.parse(none.body)]).toEqual([401, { text: 'Token is required', code: 2 }]);
    const bad = await post(port, '/services/collector/event', body, { authorization: `Splunk ${HEC_TOKEN}x` });
    expect([bad.status, JSON.parse(bad.body)]).toEqual([403, { text: 'Invalid token', code: 4 }]);
    const malformed = await post(port, '/services/collector/event', body, { authorization: HEC_TOKEN });
    expect([malformed.status, JSON.parse(malformed.body)]).toEqual([401, { text: 'Invalid authorization', code: 3 }]);
    const inUrl = await post(port, `/services/collector/event?token=${HEC_TOKEN}`, body);
    expect([inUrl.status, JSON.parse(inUrl.body).code]).toEqual([400, 16]);
    const jsonBad = await post(port, '/api/v1/sightings', '{}', { authorization: 'Bearer nope' });
    expect(jsonBad.status).toBe(403);
    expect(stored(state, "ip = '10.9.0.20'")).toHaveLength(0);
    expect(await metric(httpPort, 'onsight_input_lines_dropped_total', { input: `http:${port}`, reason: 'auth' })).toBe(5);
    // a token kept out of the HEC endpoints
    const nac = await post(port, '/services/collector/event', body, { authorization: `Splunk ${NAC_TOKEN}` });
    expect(nac.status).toBe(403);
  });

  it('refuses malformed JSON, missing events, bad sightings, oversized bodies and gzip bombs; nothing of them is stored', async () => {
    const auth = { authorization: `Splunk ${HEC_TOKEN}` };
    const broken = await post(port, '/services/collector/event', `{"event":"${dhcp(30)}"}{"event": "x"`, auth);
    expect([broken.status, JSON.parse(broken.body)]).toEqual([400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 1 }]);
    const noEvent = await post(port, '/services/collector/event', `{"event":"${dhcp(31)}"}\n{"time":1}`, auth);
    expect([noEvent.status, JSON.parse(noEvent.body)]).toEqual([400, { text: 'Event field is required', code: 12, 'invalid-event-number': 1 }]);
    const blank = await post(port, '/services/collector/event', '{"event":""}', auth);
    expect(JSON.parse(blank.body).code).toBe(13);
    const empty = await post(port, '/services/collector/event', '', auth);
    expect([empty.status, JSON.parse(empty.body)]).toEqual([400, { text: 'No data', code: 5 }]);
    const badSighting = await post(port, '/api/v1/sightings', JSON.stringify([{ kind: 'lease', ip: '10.20.0.9' }, { kind: 'lease', ip: '10.20.0.300' }]), { authorization: `Bearer ${NAC_TOKEN}` });
    expect(badSighting.status).toBe(400);
    expect(JSON.parse(badSighting.body).error).toMatch(/item 1: ip/);
    const notJson = await post(port, '/api/v1/sightings', '{"kind": lease}', { authorization: `Bearer ${NAC_TOKEN}` });
    expect([notJson.status, JSON.parse(notJson.body).error]).toEqual([400, expect.stringMatching(/malformed JSON/)]);
    // a Latin-1 name on line 2 of JSON Lines: refused naming the line (it was stored as U+FFFD)
    const latin1 = Buffer.concat([Buffer.from('{"kind":"lease","ip":"10.20.0.10","hostname":"ok"}\n{"kind":"lease","ip":"10.20.0.11","hostname":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    const notUtf8 = await post(port, '/api/v1/sightings', latin1, { authorization: `Bearer ${NAC_TOKEN}` });
    expect([notUtf8.status, JSON.parse(notUtf8.body).error]).toEqual([400, 'line 2: not UTF-8 (JSON is UTF-8, RFC 8259 §8.1)']);
    const big = await post(port, '/services/collector/raw', `${dhcp(32)}\n`.repeat(2000), auth);
    expect(big.status).toBe(413);
    // 64 MiB of zeros in 64 KiB of gzip: cut off at the 64 KiB limit after inflation
    const bomb = gzipSync(Buffer.alloc(64 << 20));
    expect(bomb.length).toBeLessThan(65536);
    const b = await post(port, '/services/collector/raw', bomb, { ...auth, 'content-encoding': 'gzip' });
    expect([b.status, JSON.parse(b.body).text]).toEqual([413, expect.stringMatching(/after decompression/)]);
    const notGzip = await post(port, '/services/collector/raw', 'plain text', { ...auth, 'content-encoding': 'gzip' });
    expect([notGzip.status, JSON.parse(notGzip.body).code]).toEqual([400, 6]);
    expect(stored(state, "ip IN ('10.9.0.30', '10.9.0.31', '10.9.0.32', '10.20.0.9', '10.20.0.10', '10.20.0.11')")).toHaveLength(0);
    const m = (reason: string) => metric(httpPort, 'onsight_input_lines_dropped_total', { input: `http:${port}`, reason });
    // broken, no event, blank event (HEC), not JSON and not UTF-8 (Sighting JSON)
    expect(await m('badJson')).toBe(5);
    expect(await m('empty')).toBe(1);
    expect(await m('badSighting')).toBe(1);
    expect(await m('tooLarge')).toBe(2);
    expect(await m('badGzip')).toBe(1);
  });

  it('HEC: an event time before 2000 (a forwarder whose clock was never set) is the receive time, counted; a Sighting JSON at before 2000 is refused naming the field', async () => {
    const before = Date.now();
    const m = () => metric(httpPort, 'onsight_input_events_total', { input: `http:${port}`, event: 'clockUnset' });
    const counted = await m();
    const r = await post(port, '/services/collector/event', JSON.stringify({ time: 300, event: { kind: 'lease', ip: '10.9.0.43', mac: '52:54:00:aa:00:2b' } }), { authorization: `Splunk ${HEC_TOKEN}` });
    expect(r.status).toBe(200);
    const db = new Database(state, { readonly: true });
    try {
      const row = db.prepare("SELECT at FROM sightings WHERE ip = '10.9.0.43'").get() as { at: number };
      expect(row.at).toBeGreaterThanOrEqual(before - 1000);
      expect(row.at).toBeLessThanOrEqual(Date.now() + 1000);
    } finally {
      db.close();
    }
    expect(await m()).toBe(counted + 1);
    const j = await post(port, '/api/v1/sightings', JSON.stringify({ kind: 'lease', ip: '10.20.7.3', mac: '52:54:00:bb:07:03', at: '1970-01-01T00:05:00Z' }), { authorization: `Bearer ${NAC_TOKEN}` });
    expect([j.status, JSON.parse(j.body).error]).toEqual([400, 'item 0: at: before 2000 (a clock never set?): send the time of the event, or no at for the time of receipt']);
    expect(stored(state, "ip = '10.20.7.3'")).toHaveLength(0);
  });

  it("drops and counts sightings outside a token's allow-list (addresses), keeps the rest", async () => {
    const r = await post(port, '/api/v1/sightings', JSON.stringify([{ kind: 'lease', ip: '10.20.1.1', mac: '52:54:00:bb:01:01' }, { kind: 'lease', ip: '10.30.0.1', mac: '52:54:00:bb:01:02' }]), { authorization: `Bearer ${NAC_TOKEN}` });
    expect(r.status).toBe(200);
    // the answer says one of the two was left out (before, `received: 2` and nothing else)
    expect(JSON.parse(r.body)).toEqual({ status: 'ok', received: 2, notAllowed: 1 });
    expect(stored(state, "ip IN ('10.20.1.1', '10.30.0.1')").map((s) => s.ip)).toEqual(['10.20.1.1']);
    expect(await metric(httpPort, 'onsight_input_lines_dropped_total', { input: `http:${port}`, reason: 'notAllowed' })).toBeGreaterThanOrEqual(1);
  });

  it('an Idempotency-Key sent again with another body is refused (422), not answered as a replay while its data is lost', async () => {
    const h = { authorization: `Bearer ${NAC_TOKEN}`, 'idempotency-key': 'batch-reused', 'content-type': 'application/json' };
    const first = await post(port, '/api/v1/sightings', '{"kind":"lease","ip":"10.20.6.1","mac":"52:54:00:bb:06:01"}', h);
    expect(first.status).toBe(200);
    const other = await post(port, '/api/v1/sightings', '{"kind":"lease","ip":"10.20.6.2","mac":"52:54:00:bb:06:02"}', h);
    expect([other.status, JSON.parse(other.body).error]).toEqual([422, expect.stringMatching(/another body/)]);
    expect(other.headers['idempotent-replayed']).toBeUndefined();
    // the same body again is still a replay
    const again = await post(port, '/api/v1/sightings', '{"kind":"lease","ip":"10.20.6.1","mac":"52:54:00:bb:06:01"}', h);
    expect([again.status, again.headers['idempotent-replayed']]).toEqual([200, 'true']);
    // a body that cannot be read is answered as without the key (it was replayed 200, its data lost)
    const big = await post(port, '/api/v1/sightings', `[${'{"kind":"lease","ip":"10.20.6.3"},'.repeat(3000)}{"kind":"lease","ip":"10.20.6.3"}]`, h);
    expect([big.status, big.headers['idempotent-replayed']]).toEqual([413, undefined]);
    // the key is the endpoint's: the same key and body to HEC is another request (it replayed the first answer)
    const siem = { authorization: `Splunk ${HEC_TOKEN}`, 'idempotency-key': 'batch-ep' };
    const viaJson = await post(port, '/api/v1/sightings', '{"kind":"lease","ip":"10.20.6.5","mac":"52:54:00:bb:06:05"}', siem);
    expect(viaJson.status).toBe(200);
    const viaHec = await post(port, '/services/collector/event', '{"kind":"lease","ip":"10.20.6.5","mac":"52:54:00:bb:06:05"}', siem);
    expect([viaHec.status, viaHec.headers['idempotent-replayed']]).toEqual([422, undefined]);
    // a key in the HEC digests' namespace is refused, not answered from it
    const reserved = await post(port, '/api/v1/sightings', '{"kind":"lease","ip":"10.20.6.4"}', { ...h, 'idempotency-key': 'hec-sha256:00' });
    expect([reserved.status, JSON.parse(reserved.body).error]).toEqual([400, expect.stringMatching(/reserved/)]);
    expect(stored(state, "ip IN ('10.20.6.1', '10.20.6.2')").map((x) => x.ip)).toEqual(['10.20.6.1']);
    expect(await metric(httpPort, 'onsight_input_lines_dropped_total', { input: `http:${port}`, reason: 'keyReused' })).toBe(2);
  });

  it('refuses a time no calendar has (2026-02-30 was stored as 2026-03-02) and an offset past 23:59', async () => {
    const auth = { authorization: `Bearer ${NAC_TOKEN}` };
    for (const [field, value] of [['at', '2026-02-30T10:00:00Z'], ['at', '2025-02-29T10:00:00Z'], ['expiresAt', '2026-04-31T00:00:00Z'], ['at', '2026-01-01T24:00:00Z'], ['at', '2026-01-01T10:00:00+25:00']]) {
      const r = await post(port, '/api/v1/sightings', JSON.stringify({ kind: 'lease', ip: '10.20.7.1', mac: '52:54:00:bb:07:01', [field]: value }), auth);
      expect([r.status, JSON.parse(r.body).error], value).toEqual([400, `item 0: ${field}: not a valid time (${value})`]);
    }
    const leap = await post(port, '/api/v1/sightings', JSON.stringify({ kind: 'lease', ip: '10.20.7.2', mac: '52:54:00:bb:07:02', at: '2024-02-29T10:00:00+01:00' }), auth);
    expect(leap.status).toBe(200);
    expect(stored(state, "ip IN ('10.20.7.1', '10.20.7.2')").map((x) => x.ip)).toEqual(['10.20.7.2']);
  });

  it('a request target that is no URL, or more headers than it takes, gets 400 / 431 and is counted, before any token is asked (it answered 500 and logged an error each time)', async () => {
    const raw = (text: string) => new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => sock.end(text));
      let got = '';
      sock.setEncoding('utf8').on('data', (x: string) => (got += x)).on('end', () => resolve(got)).on('error', reject);
    });
    const before = await metric(httpPort, 'onsight_input_lines_dropped_total', { input: `http:${port}`, reason: 'badRequest' });
    const errorsBefore = d.logs.filter((l) => l.level >= 50).length;
    for (let k = 0; k < 3; k++) expect(await raw('GET http://[x/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 .*malformed request target/s);
    // a valid token after 70 other headers: refused as too many, not as a missing token
    const many = Array.from({ length: 70 }, (_, k) => `X-Pad-${k}: ${k}\r\n`).join('');
    const body = '{"kind":"lease","ip":"10.20.8.1","mac":"52:54:00:bb:08:01"}';
    const answer = await raw(`POST /api/v1/sightings HTTP/1.1\r\nHost: x\r\n${many}Authorization: Bearer ${NAC_TOKEN}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 .*more than 64 headers/s);
    expect(await metric(httpPort, 'onsight_input_lines_dropped_total', { input: `http:${port}`, reason: 'badRequest' })).toBe(before + 4);
    expect(stored(state, "ip = '10.20.8.1'")).toHaveLength(0);
    expect(d.logs.filter((l) => l.level >= 50).length).toBe(errorsBefore);
  });

  it('a client that half-closes after its request (shutdown of its sending side) still gets its answer (it got none, its data committed)', async () => {
    const body = '{"kind":"lease","ip":"10.20.8.2","mac":"52:54:00:bb:08:02"}';
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => sock.end(`POST /api/v1/sightings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${NAC_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
      let got = '';
      sock.setEncoding('utf8').on('data', (x: string) => (got += x)).on('close', () => resolve(got)).on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 .*"received":1/s);
    expect(stored(state, "ip = '10.20.8.2'")).toHaveLength(1);
  });

  it('an empty array is received as nothing (it counted a line received)', async () => {
    const m = () => metric(httpPort, 'onsight_input_lines_received_total', { input: `http:${port}` });
    const before = await m();
    const r = await post(port, '/api/v1/sightings', '[]', { authorization: `Bearer ${NAC_TOKEN}` });
    expect([r.status, JSON.parse(r.body)]).toEqual([200, { status: 'ok', received: 0 }]);
    expect(await m()).toBe(before);
  });

  it('HEC health and ack answer as Splunk does', async () => {
    const h = await fetch(`http://127.0.0.1:${port}/services/collector/health`);
    expect([h.status, await h.json()]).toEqual([200, { text: 'HEC is healthy', code: 17 }]);
    const a = await post(port, '/services/collector/ack', '{"acks":[0]}', { authorization: `Splunk ${HEC_TOKEN}` });
    expect([a.status, JSON.parse(a.body)]).toEqual([400, { text: 'ACK is disabled', code: 14 }]);
  });
});

describe('HTTP input backpressure', () => {
  it('answers 503 with Retry-After beyond maxPendingRequests, before reading the body', async () => {
    const port = await freePort();
    const d = await startDaemon(`
state: STATE
inputs:
  - { type: http, listen: "127.0.0.1:${port}", maxPendingRequests: 1, retryAfterS: 7, tokens: [{ name: siem, env: TEST_HEC_TOKEN }] }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { enabled: false }
`, { TEST_HEC_TOKEN: HEC_TOKEN });
    try {
      // a request with a key, committed: its repeats are read (to compare bodies), so they wait their turn too
      const keyed = { authorization: `Splunk ${HEC_TOKEN}`, 'idempotency-key': 'k-busy' };
      expect((await post(port, '/services/collector/event', JSON.stringify({ event: dhcp(39) }), keyed)).status).toBe(200);
      // a slow client: headers and half a body, then nothing
      const slow = request({ host: '127.0.0.1', port, path: '/services/collector/raw', method: 'POST', headers: { authorization: `Splunk ${HEC_TOKEN}`, 'content-length': 1000 } });
      slow.on('error', () => undefined);
      slow.write(dhcp(40));
      await until(async () => {
        const r = await post(port, '/services/collector/event', JSON.stringify({ event: dhcp(41) }), { authorization: `Splunk ${HEC_TOKEN}` });
        return r.status === 503 ? r : undefined;
      }, 5000, 'a 503').then((r) => {
        expect(JSON.parse(r.body)).toEqual({ text: 'Server is busy', code: 9 });
        expect(r.headers['retry-after']).toBe('7');
      });
      const health = await fetch(`http://127.0.0.1:${port}/services/collector/health`);
      expect([health.status, (await health.json() as { code: number }).code]).toEqual([503, 18]);
      // (before, a repeat's body was read whatever the load: forty 7 MB repeats held 294 MB)
      expect((await post(port, '/services/collector/event', JSON.stringify({ event: dhcp(39) }), keyed)).status).toBe(503);
      slow.destroy();
      await until(async () => (await post(port, '/services/collector/event', JSON.stringify({ event: dhcp(42) }), { authorization: `Splunk ${HEC_TOKEN}` })).status === 200, 5000, 'accepting again');
    } finally {
      expect(await d.stop()).toBe(0);
    }
  }, 30_000);
});
