/**
 * A token is revoked by deleting or emptying its file, then SIGHUP (review: one missing file kept
 * every old token of the listener valid, the status listener's and an HTTP input's alike). Tokens
 * are re-read one by one: the revoked one is refused and logged by name, the others keep working;
 * a listener whose every token is revoked refuses every request (it must not turn open). The real
 * daemon, real loopback listeners, real files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startDaemon, type DaemonProcess } from './helpers/daemon.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOKENS = {
  ops: 'ops-aaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  prom: 'prom-bbbbbbbbbbbbbbbbbbbbbbbbbbb',
  fw: 'fw-cccccccccccccccccccccccccccccc',
  old: 'old-ddddddddddddddddddddddddddddd',
};

/** the status listener's answer to GET path (with `Bearer token`, or no Authorization at all) */
const status = async (port: number, path: string, token?: string) =>
  (await fetch(`http://127.0.0.1:${port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;
/** the HTTP input's answer to a HEC raw POST with `Splunk token` */
const hec = async (port: number, token: string) =>
  (await fetch(`http://127.0.0.1:${port}/services/collector/raw`, { method: 'POST', headers: { authorization: `Splunk ${token}` }, body: 'x' })).status;

async function daemonWith(tokens: { status: (keyof typeof TOKENS)[]; input: (keyof typeof TOKENS)[] }): Promise<{ d: DaemonProcess; dir: string; statusPort: number; hecPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-revoke-'));
  dirs.push(dir);
  for (const [name, value] of Object.entries(TOKENS)) writeFileSync(join(dir, name), `${value}\n`, { mode: 0o600 });
  const list = (names: string[]) => `[${names.map((n) => `{ name: ${n}, file: ${join(dir, n)} }`).join(', ')}]`;
  const [statusPort, hecPort] = [await freePort(), await freePort()];
  const d = await startDaemon(`state: STATE
inputs:
  - { type: http, listen: "127.0.0.1:${hecPort}", tokens: ${list(tokens.input)} }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: r1, cidrs: ["10.0.0.0/8"], appliances: [a1] }]
scanner: { type: dry-run }
http: { listen: "127.0.0.1:${statusPort}", tokens: ${list(tokens.status)} }
`);
  return { d, dir, statusPort, hecPort };
}

/** SIGHUP, then wait until the reload went through (its config part is logged last) */
async function reload(d: DaemonProcess): Promise<void> {
  const before = d.logs.length;
  d.child.kill('SIGHUP');
  await d.waitFor((e) => d.logs.indexOf(e) >= before && /reloaded: policy|SIGHUP: reload failed/.test(e.msg));
}

describe('tokens revoked by their files at SIGHUP', () => {
  it('a deleted and an emptied token file: those tokens are refused from then on, logged by name; the others still work; a file back brings its token back', async () => {
    const { d, dir, statusPort, hecPort } = await daemonWith({ status: ['ops', 'prom'], input: ['fw', 'old'] });
    try {
      expect(await status(statusPort, '/api/status', TOKENS.prom)).toBe(200);
      expect(await hec(hecPort, TOKENS.old)).toBe(200);
      rmSync(join(dir, 'prom'));
      writeFileSync(join(dir, 'old'), '');
      await reload(d);
      expect(await status(statusPort, '/api/status', TOKENS.prom), 'revoked status token still accepted').toBe(401);
      expect(await status(statusPort, '/api/status', TOKENS.ops)).toBe(200);
      expect(await hec(hecPort, TOKENS.old), 'revoked HEC token still accepted').toBe(403);
      expect(await hec(hecPort, TOKENS.fw)).toBe(200);
      const said = d.logs.map((e) => e.msg);
      expect(said).toContain('http.tokens: token "prom" revoked: its file is gone; refused from now on');
      expect(said).toContain(`HTTP input on 127.0.0.1:${hecPort}: token "old" revoked: its file is empty; refused from now on`);
      // a revocation is no failure: nothing is said to be kept
      expect(said.some((m) => m.includes('reload of its certificate or tokens failed'))).toBe(false);

      // a new token in the deleted file: taken at the next reload (and the revoked value stays refused)
      writeFileSync(join(dir, 'prom'), 'prom-new-eeeeeeeeeeeeeeeeeeeeeeeee\n', { mode: 0o600 });
      await reload(d);
      expect(await status(statusPort, '/api/status', 'prom-new-eeeeeeeeeeeeeeeeeeeeeeeee')).toBe(200);
      expect(await status(statusPort, '/api/status', TOKENS.prom)).toBe(401);
      expect(await hec(hecPort, TOKENS.old)).toBe(403);
      // no token's value in any log line, only names
      expect(d.logs.some((e) => /-(a|b|c|d|e){20}/.test(JSON.stringify(e)))).toBe(false);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  }, 60_000);

  it('every token of a listener revoked: it refuses every request (the status listener does not turn open), and says so', async () => {
    const { d, dir, statusPort, hecPort } = await daemonWith({ status: ['ops'], input: ['fw'] });
    try {
      expect(await status(statusPort, '/api/status')).toBe(401);
      expect(await status(statusPort, '/api/status', TOKENS.ops)).toBe(200);
      rmSync(join(dir, 'ops'));
      writeFileSync(join(dir, 'fw'), '\n');
      await reload(d);
      for (const path of ['/api/status', '/metrics', '/healthz', '/']) {
        expect(await status(statusPort, path), `${path} without a token`).toBe(401);
        expect(await status(statusPort, path, TOKENS.ops), `${path} with the revoked token`).toBe(401);
      }
      expect(await hec(hecPort, TOKENS.fw)).toBe(403);
      const said = d.logs.map((e) => e.msg);
      expect(said).toContain('http.tokens: every token is revoked: every request is refused until a token file is back and onsight is reloaded');
      expect(said).toContain(`HTTP input on 127.0.0.1:${hecPort}: every token is revoked: every request is refused until a token file is back and onsight is reloaded`);
      // still so after another reload with the files still gone (and said once)
      await reload(d);
      expect(await status(statusPort, '/api/status')).toBe(401);
      expect(d.logs.filter((e) => e.msg.startsWith('http.tokens: every token is revoked')).length).toBe(1);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  }, 60_000);
});
