/**
 * Exactly-once over HTTP across SIGKILL: clients push sightings while the real daemon is killed
 * with SIGKILL again and again and restarted on the same state. A client retries every request
 * that got no 200 (connection refused or reset, 503), as HEC clients and scripts do. Afterwards:
 * every address sent is stored, none twice. Sighting JSON requests carry an Idempotency-Key (a
 * retry of a request committed just before the kill is answered from the store, not applied
 * again); HEC requests carry none, and must still lose nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { CLI } from './helpers/paths.js';
import { DaemonProcess, freePort } from './helpers/daemon.js';
import { sleep } from './helpers/wait.js';

const TOKEN = 'crash-test-token-5d2e';

function post(port: number, path: string, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', () => resolve(0));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** a sighting applied twice does not add a row (the inventory takes it as a renewal): count renewals per address prefix */
function renewals(state: string, prefix: string): number {
  const db = new Database(state, { readonly: true });
  try {
    return (db.prepare('SELECT coalesce(sum(renewals), 0) AS n FROM bindings WHERE ip LIKE ?').get(`${prefix}%`) as { n: number }).n;
  } finally {
    db.close();
  }
}

function rows(state: string): { ip: string; kind: string }[] {
  if (!existsSync(state)) return [];
  const db = new Database(state, { readonly: true });
  try {
    return db.prepare('SELECT ip, kind FROM sightings').all() as never;
  } catch {
    return [];
  } finally {
    db.close();
  }
}

describe('HTTP input under SIGKILL', () => {
  it('loses and duplicates nothing while the daemon is killed repeatedly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-httpcrash-'));
    const state = join(dir, 'state.db');
    const port = await freePort();
    writeFileSync(join(dir, 'onsight.yaml'), `
state: ${state}
timezone: UTC
inputs:
  - { type: http, listen: "127.0.0.1:${port}", tokens: [{ name: c, env: CRASH_TOKEN }] }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { enabled: false }
`);
    const start = () => new DaemonProcess(spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'onsight.yaml')], {
      cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1', CRASH_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'],
    }), dir);

    const N = 400; // requests per client kind, 5 sightings each
    const ip = (kind: number, i: number, k: number) => `10.${kind}.${(i * 5 + k) >> 8}.${(i * 5 + k) & 255}`;
    const mac = (kind: number, i: number, k: number) => `52:54:0${kind}:00:${(((i * 5 + k) >> 8) & 255).toString(16).padStart(2, '0')}:${((i * 5 + k) & 255).toString(16).padStart(2, '0')}`;
    let retries = 0;
    let done = false;
    const send = async (kind: number, i: number) => {
      const json = kind === 1;
      const body = json
        ? JSON.stringify([0, 1, 2, 3, 4].map((k) => ({ kind: 'lease', ip: ip(kind, i, k), mac: mac(kind, i, k) })))
        : [0, 1, 2, 3, 4].map((k) => JSON.stringify({ event: `Dec  1 10:00:00 gw dhcpd[7]: DHCPACK on ${ip(kind, i, k)} to ${mac(kind, i, k)} via eth0` })).join('\n');
      const headers: Record<string, string> = json ? { authorization: `Bearer ${TOKEN}`, 'idempotency-key': `req-${i}` } : { authorization: `Splunk ${TOKEN}` };
      for (;;) {
        const status = await post(port, json ? '/api/v1/sightings' : '/services/collector/event', body, headers);
        if (status === 200) return;
        expect([0, 503]).toContain(status);
        retries++;
        await sleep(50);
      }
    };
    const client = async (kind: number) => {
      for (let i = 0; i < N; i++) await send(kind, i);
    };
    const clients = Promise.all([client(1), client(2)]).then(() => (done = true));

    let kills = 0;
    while (!done && kills < 8) {
      const d = start();
      await sleep(400 + ((kills * 211) % 600));
      d.child.kill('SIGKILL');
      await d.exit;
      kills++;
    }
    const last = start();
    await clients;
    expect(await last.stop()).toBe(0);

    const all = rows(state);
    const count = new Map<string, number>();
    for (const r of all) count.set(r.ip, (count.get(r.ip) ?? 0) + 1);
    for (const kind of [1, 2]) {
      let lost = 0;
      let dup = 0;
      for (let i = 0; i < N; i++) for (let k = 0; k < 5; k++) {
        const c = count.get(ip(kind, i, k)) ?? 0;
        if (c === 0) lost++;
        if (c > 1) dup++;
      }
      const again = renewals(state, `10.${kind}.`);
      console.log(`${kind === 1 ? 'Sighting JSON' : 'HEC'}: ${N * 5} sent, ${lost} lost, ${dup} stored twice, ${again} applied again (renewals); ${kills} SIGKILLs, ${retries} retried requests (both clients)`);
      expect(lost).toBe(0);
      expect(dup).toBe(0);
      // with an Idempotency-Key nothing is applied twice; HEC has no such key, and the retry of a
      // request committed just before a kill is recognised as an exact repeat of its body
      expect(again).toBe(0);
    }
    expect(kills).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
