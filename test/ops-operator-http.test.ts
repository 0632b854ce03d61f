/**
 * The operator API through the real daemon's status listener: POST /api/rescan and /api/skip need
 * a token (401 without, 403 when no tokens are configured at all), a JSON body of at most 4 KiB,
 * and a target; they do what the CLI does (the daemon launches a rescanned device again). GET
 * /api/why returns a device's history. Hostile input gets 4xx, never a crash.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startDaemon, type DaemonProcess, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { dhcpAck } from './helpers/syslog-lines.js';

const TOKEN = 'ops-token-5d2e';

function call(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; allow?: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve({ status: res.statusCode!, body: b, allow: res.headers.allow, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const launchOf = (ip: string) => (e: { launch?: { targets?: { ip: string }[] } }) => !!e.launch?.targets?.some((t) => t.ip === ip);

const config = (port: number, httpPort: number, tokens: boolean) => `
${udpDaemonHead(port)}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1], maxConcurrentScans: 2 }
scanner: { type: dry-run, scanDurationS: 1 }
http: { listen: "127.0.0.1:${httpPort}"${tokens ? ', tokens: [{ name: ops, credential: ops-token }]' : ''} }
`;

describe('operator API with tokens', () => {
  let d: DaemonProcess;
  let port: number;
  let httpPort: number;
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

  beforeAll(async () => {
    const creds = mkdtempSync(join(tmpdir(), 'onsight-creds-'));
    writeFileSync(join(creds, 'ops-token'), TOKEN + '\n');
    port = await freePort();
    httpPort = await freePort();
    d = await startDaemon(config(port, httpPort, true), { CREDENTIALS_DIRECTORY: creds });
  }, 30_000);
  afterAll(async () => {
    expect(await d.stop()).toBe(0);
    expect(JSON.stringify(d.logs) + d.stderr).not.toContain(TOKEN);
  });

  it('POST /api/rescan launches a device scanned moments ago again; GET /api/why shows it', async () => {
    await udpSend(port, dhcpAck('10.20.3.3', '52:54:00:bb:00:03', 'desk-3'));
    await d.waitFor(launchOf('10.20.3.3'));
    for (let i = 0; i < 75; i++) {
      const w = JSON.parse((await call(httpPort, 'GET', '/api/why?target=10.20.3.3', undefined, auth)).body) as { scans: { state: string }[] };
      if (w.scans.some((s) => s.state === 'finished')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const r = await call(httpPort, 'POST', '/api/rescan', JSON.stringify({ target: '52:54:00:bb:00:03' }), auth);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ action: 'rescan', devices: ['mac:52:54:00:bb:00:03'] });
    await d.waitFor((e) => d.logs.filter(launchOf('10.20.3.3')).length === 2 && launchOf('10.20.3.3')(e), 15_000);
    const why = await call(httpPort, 'GET', '/api/why?target=52:54:00:bb:00:03', undefined, auth);
    expect(why.status).toBe(200);
    const h = JSON.parse(why.body) as { devices: { hostname: string }[]; decisions: { reason: string }[] };
    expect(h.devices[0].hostname).toBe('desk-3');
    expect(h.decisions.some((x) => x.reason.includes('an operator asked for a rescan'))).toBe(true);
    const skip = await call(httpPort, 'POST', '/api/skip', JSON.stringify({ target: '10.20.3.3', until: '1h' }), auth);
    expect(skip.status).toBe(200);
    expect(JSON.parse(skip.body).until).toMatch(/^\d{4}-/);
    // who changed what, in the log: the token's name (the decision log says only "an operator asked")
    const said = await d.waitFor((e) => String(e.msg).startsWith('operator API: skip of ip 10.20.3.3'));
    expect(said).toMatchObject({ operator: 'ops', action: 'skip', target: '10.20.3.3' });
    expect(d.logs.some((e) => String(e.msg) === 'operator API: rescan of mac 52:54:00:bb:00:03 by token "ops"')).toBe(true);
  }, 40_000);

  it('hostile requests: no or wrong token 401, wrong type 415, oversized 413/400, bad JSON or target 400, unknown device 404, GET 405', async () => {
    const body = JSON.stringify({ target: '10.20.3.3' });
    expect((await call(httpPort, 'POST', '/api/rescan', body, { 'content-type': 'application/json' })).status).toBe(401);
    expect((await call(httpPort, 'POST', '/api/rescan', body, { ...auth, authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await call(httpPort, 'POST', '/api/rescan', body, { authorization: auth.authorization, 'content-type': 'text/plain' })).status).toBe(415);
    // a body labelled compressed is refused by name (it was taken as plain JSON whatever the label said)
    const gz = await call(httpPort, 'POST', '/api/rescan', body, { ...auth, 'content-encoding': 'gzip' });
    expect([gz.status, gz.headers['accept-encoding'], JSON.parse(gz.body).error]).toEqual([415, 'identity', expect.stringMatching(/^content-encoding gzip is not taken/)]);
    expect((await call(httpPort, 'POST', '/api/rescan', body, { ...auth, 'content-encoding': 'identity' })).status).not.toBe(415);
    expect((await call(httpPort, 'POST', '/api/rescan', JSON.stringify({ target: 'x'.repeat(10_000) }), auth)).status).toBe(413);
    for (const bad of ['{', '[]', '{"target": 5}', '{"target": "a\\u001bb"}', '{"target": "10.20.3.3", "until": "soon"}']) {
      const r = await call(httpPort, 'POST', bad.includes('until') ? '/api/skip' : '/api/rescan', bad, auth);
      expect(r.status, bad).toBe(400);
      expect(JSON.parse(r.body).error).toBeTruthy();
    }
    expect((await call(httpPort, 'POST', '/api/rescan', JSON.stringify({ target: '10.20.200.1' }), auth)).status).toBe(404);
    // a 405 says what is allowed (RFC 9110 §15.5.6: it had no Allow); HEAD is a GET without the body
    expect(await call(httpPort, 'GET', '/api/rescan', undefined, auth)).toMatchObject({ status: 405, allow: 'POST' });
    expect(await call(httpPort, 'DELETE', '/api/why?target=10.20.1.1', undefined, auth)).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    expect(await call(httpPort, 'HEAD', '/api/why?target=10.20.1.1', undefined, auth)).toMatchObject({ status: 200, body: '' });
    expect((await call(httpPort, 'GET', '/api/why', undefined, auth)).status).toBe(400);
    expect(d.child.exitCode).toBeNull();
  });
});

describe('operator API without tokens', () => {
  it('refuses rescan and skip with 403 (they change the state), serves why', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const d = await startDaemon(config(port, httpPort, false));
    try {
      const r = await call(httpPort, 'POST', '/api/skip', JSON.stringify({ target: '10.20.3.3' }), { 'content-type': 'application/json' });
      expect(r.status).toBe(403);
      expect(r.body).toContain('http.tokens');
      expect((await call(httpPort, 'GET', '/api/why?target=10.20.3.3')).status).toBe(200);
    } finally {
      await d.stop();
    }
  }, 30_000);
});
