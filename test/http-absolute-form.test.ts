/**
 * Request targets in absolute form (RFC 9112 §3.2.2: `GET http://host:port/api/status HTTP/1.1`,
 * which proxies send and servers must accept) on both HTTP listeners of the real daemon in
 * process: the status listener and an HTTP input (HEC, Sighting JSON). Raw TCP sockets on
 * loopback, so the request line is exactly what is sent. Each listener routes the absolute form as
 * the origin form, checks the target's authority as it checks a Host header (the target's wins,
 * the Host header is then ignored), and asks for its token as before. A target that only looks
 * like a route (a path `//other/...`, a URL of another scheme) is not taken for one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';

const STATUS_TOKEN = 'status-token-absolute-form-3f9a';
const INPUT_TOKEN = 'input-token-absolute-form-81c2';
process.env.ONSIGHT_TEST_ABS_STATUS_TOKEN = STATUS_TOKEN;
process.env.ONSIGHT_TEST_ABS_INPUT_TOKEN = INPUT_TOKEN;

interface Raw {
  status: number;
  body: string;
}

/** one request as written, on its own connection; the status line and body of the answer */
function raw(port: number, method: string, target: string, headers: Record<string, string>, body = ''): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const head = [`${method} ${target} HTTP/1.1`, ...Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' }).map(([k, v]) => `${k}: ${v}`)];
    const c = connect(port, '127.0.0.1', () => c.write(head.join('\r\n') + '\r\n\r\n' + body));
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => (got += d));
    c.on('error', reject);
    c.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(got);
      if (!m) return reject(new Error(`no HTTP answer to ${method} ${target}: ${JSON.stringify(got.slice(0, 200))}`));
      resolve({ status: Number(m[1]), body: got.slice(got.indexOf('\r\n\r\n') + 4) });
    });
  });
}

const dhcp = (k: number) => `Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.61.0.${k} to 52:54:00:00:61:${k.toString(16).padStart(2, '0')} via eth0`;

describe('request targets in absolute form, on the status listener and an HTTP input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-absolute-form-'));
  let daemon: Daemon;
  let sp: number;
  let ip: number;
  beforeAll(async () => {
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC',
      inputs: [{ type: 'http', listen: '127.0.0.1:0', format: 'auto', allowedHosts: ['nac.corp.example'], tokens: [{ name: 'siem', env: 'ONSIGHT_TEST_ABS_INPUT_TOKEN' }] }],
      policy: { scope: ['10.61.0.0/16'] },
      regions: [{ name: 'r', cidrs: ['10.61.0.0/16'], appliances: ['a'] }],
      http: { listen: '127.0.0.1:0', allowedHosts: ['onsight.corp.example'], tokens: [{ name: 'prometheus', env: 'ONSIGHT_TEST_ABS_STATUS_TOKEN' }] },
    });
    daemon = new Daemon({ config, log: silentLogger(), tickMs: 3_600_000, sweepMs: 3_600_000 });
    await daemon.start();
    sp = Number(new URL(daemon.http!.url).port);
    ip = daemon.inputs[0].address!.port;
  }, 30_000);
  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('status listener', () => {
    const auth = { authorization: `Bearer ${STATUS_TOKEN}` };

    it('routes an absolute-form target as its origin form, with the token asked for as before', async () => {
      const origin = await raw(sp, 'GET', '/api/status', { host: `127.0.0.1:${sp}`, ...auth });
      expect(origin.status).toBe(200);
      const abs = await raw(sp, 'GET', `http://127.0.0.1:${sp}/api/status?x=1`, { host: `127.0.0.1:${sp}`, ...auth });
      expect(abs.status).toBe(200);
      expect(JSON.parse(abs.body)).toHaveProperty('version');
      expect((await raw(sp, 'GET', `HTTP://127.0.0.1:${sp}/healthz`, { host: `127.0.0.1:${sp}`, ...auth })).status).toBe(200);
      // no path: the page
      expect((await raw(sp, 'GET', `http://127.0.0.1:${sp}`, { host: `127.0.0.1:${sp}`, ...auth })).status).toBe(200);
      // no token, or a wrong one: 401 as for the origin form
      expect((await raw(sp, 'GET', `http://127.0.0.1:${sp}/api/status`, { host: `127.0.0.1:${sp}` })).status).toBe(401);
      expect((await raw(sp, 'GET', `http://127.0.0.1:${sp}/api/status`, { host: `127.0.0.1:${sp}`, authorization: `Bearer ${STATUS_TOKEN}x` })).status).toBe(401);
      expect((await raw(sp, 'GET', `http://127.0.0.1:${sp}/nothing-here`, { host: `127.0.0.1:${sp}`, ...auth })).status).toBe(404);
    });

    it("checks the target's authority, not the Host header", async () => {
      expect((await raw(sp, 'GET', `http://attacker.example:${sp}/api/status`, { host: `127.0.0.1:${sp}`, ...auth })).status).toBe(421);
      expect((await raw(sp, 'GET', `http://rebind.attacker.example/api/status`, { host: 'localhost', ...auth })).status).toBe(421);
      expect((await raw(sp, 'GET', `http://127.0.0.1:${sp}/api/status`, { host: 'attacker.example', ...auth })).status).toBe(200);
      expect((await raw(sp, 'GET', 'http://onsight.corp.example/metrics', { host: 'attacker.example', ...auth })).status).toBe(200);
      // (the origin form with that Host header: refused, as before)
      expect((await raw(sp, 'GET', '/api/status', { host: 'attacker.example', ...auth })).status).toBe(421);
    });

    it('takes a path that begins // as a path (no such page), never as an authority', async () => {
      expect((await raw(sp, 'GET', '//attacker.example/api/status', { host: `127.0.0.1:${sp}`, ...auth })).status).toBe(404);
    });
  });

  describe('HTTP input', () => {
    const auth = { authorization: `Splunk ${INPUT_TOKEN}`, 'content-type': 'application/json' };
    const event = (k: number) => JSON.stringify({ event: dhcp(k) });
    const received = () => daemon.inputs[0].counters().received;

    it('routes an absolute-form target as its origin form (HEC and Sighting JSON), the lines committed', async () => {
      const before = received();
      const origin = await raw(ip, 'POST', '/services/collector/event', { host: `127.0.0.1:${ip}`, ...auth }, event(1));
      expect(origin).toEqual({ status: 200, body: JSON.stringify({ text: 'Success', code: 0 }) });
      const abs = await raw(ip, 'POST', `http://127.0.0.1:${ip}/services/collector/event`, { host: `127.0.0.1:${ip}`, ...auth }, event(2));
      expect(abs).toEqual({ status: 200, body: JSON.stringify({ text: 'Success', code: 0 }) });
      expect((await raw(ip, 'POST', `http://127.0.0.1:${ip}/services/collector/raw/`, { host: `127.0.0.1:${ip}`, ...auth }, dhcp(3))).status).toBe(200);
      const s = await raw(ip, 'POST', `http://127.0.0.1:${ip}/api/v1/sightings`, { host: `127.0.0.1:${ip}`, authorization: `Bearer ${INPUT_TOKEN}` }, JSON.stringify({ kind: 'lease', ip: '10.61.0.4', mac: '52:54:00:00:61:04' }));
      expect(s.status).toBe(200);
      expect(JSON.parse(s.body)).toEqual({ status: 'ok', received: 1 });
      expect(received() - before).toBe(4);
      expect(JSON.parse((await raw(ip, 'GET', `http://127.0.0.1:${ip}/services/collector/health`, { host: `127.0.0.1:${ip}` })).body)).toMatchObject({ code: 17 });
    });

    it('asks for the token as for the origin form', async () => {
      const before = received();
      const none = await raw(ip, 'POST', `http://127.0.0.1:${ip}/services/collector/event`, { host: `127.0.0.1:${ip}` }, event(5));
      expect(none.status).toBe(401);
      expect(JSON.parse(none.body)).toMatchObject({ code: 2 });
      expect((await raw(ip, 'POST', `http://127.0.0.1:${ip}/services/collector/event`, { host: `127.0.0.1:${ip}`, authorization: 'Splunk wrong-token-0000' }, event(5))).status).toBe(403);
      expect((await raw(ip, 'POST', `http://127.0.0.1:${ip}/api/v1/sightings`, { host: `127.0.0.1:${ip}` }, '{}')).status).toBe(401);
      // a token in the URL's query is refused as from the origin form
      expect((await raw(ip, 'POST', `http://127.0.0.1:${ip}/services/collector/event?token=${INPUT_TOKEN}`, { host: `127.0.0.1:${ip}` }, event(5))).status).toBe(400);
      expect(received()).toBe(before);
    });

    it("checks the target's authority against allowedHosts, not the Host header", async () => {
      const before = received();
      expect((await raw(ip, 'POST', `http://attacker.example:${ip}/services/collector/event`, { host: `127.0.0.1:${ip}`, ...auth }, event(6))).status).toBe(421);
      expect((await raw(ip, 'POST', `http://attacker.example/api/v1/sightings`, { host: 'nac.corp.example', ...auth }, '{}')).status).toBe(421);
      expect(received()).toBe(before);
      expect((await raw(ip, 'POST', `http://nac.corp.example:${ip}/services/collector/event`, { host: 'attacker.example', ...auth }, event(7))).status).toBe(200);
      expect(received()).toBe(before + 1);
    });

    it('takes neither a path that begins // nor a URL of another scheme for a route (both were taken: the other name unchecked)', async () => {
      const before = received();
      // a path: //attacker.example/services/collector/event is no endpoint
      expect((await raw(ip, 'POST', '//attacker.example/services/collector/event', { host: `127.0.0.1:${ip}`, ...auth }, event(8))).status).toBe(404);
      // only http and https URLs are served (RFC 9110 §7.4): refused before its authority or token is read
      const other = await raw(ip, 'POST', 'foo://attacker.example/services/collector/event', { host: `127.0.0.1:${ip}`, ...auth }, event(9));
      expect(other.status).toBe(400);
      expect(other.body).toContain('request target');
      expect(received()).toBe(before);
    });
  });
});
