/**
 * Signals on the real CLI (`node bin/onsight.js run --config X`, built by tsc before the tests):
 * SIGHUP reloads the config (policy, regions, scheduler) without dropping a TCP connection;
 * SIGTERM drains, commits and closes with exit code 0, every line sent before it in SQLite —
 * including a log file read from the start (catch-up).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../src/store/sqlite.js';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';

interface Entry {
  msg?: string;
  level?: number | string;
  input?: string;
  url?: string;
  [k: string]: unknown;
}

class Child {
  entries: Entry[] = [];
  stderr = '';
  exit: Promise<number | null>;
  private buf = '';
  constructor(readonly p: ChildProcess) {
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        try {
          this.entries.push(JSON.parse(l) as Entry);
        } catch {
          this.entries.push({ msg: l });
        }
      }
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exit = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
  }
  async waitFor(pred: (e: Entry) => boolean, ms = 15_000, what = 'log line'): Promise<Entry> {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.entries.find(pred);
      if (e) return e;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log:\n${this.entries.map((x) => x.msg).join('\n')}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function start(configPath: string, cwd: string): Child {
  return new Child(spawn(process.execPath, [CLI, 'run', '--config', configPath], {
    cwd, env: { ...process.env, ONSIGHT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  }));
}

const ack = (i: number) => `dhcpd[7]: DHCPACK on 10.20.${i >> 8}.${i & 255} to 52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0`;

function udpSend(port: number, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let left = lines.length;
    for (const l of lines) s.send(l, port, '127.0.0.1', (err) => {
      if (err) reject(err);
      if (--left === 0) {
        s.close();
        resolve();
      }
    });
  });
}

describe('signals on `onsight run`', () => {
  it('SIGHUP keeps TCP connections and applies policy changes; SIGTERM drains, commits, exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-signals-'));
    dirs.push(dir);
    const logFile = join(dir, 'dhcpd.log');
    // a log file to catch up on: 3000 leases already there when the daemon starts
    writeFileSync(logFile, Array.from({ length: 3000 }, (_, i) => `Nov 22 19:54:11 dhcp1 ${ack(1000 + i)}\n`).join(''));
    const cfgPath = join(dir, 'onsight.yaml');
    const cfg = `
state: ${join(dir, 'state', 'onsight.db')}
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:0" }
  - { type: syslog, listen: "tcp://127.0.0.1:0" }
  - { type: file, path: ${logFile}, format: isc-dhcpd }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run, scanDurationS: 0 }
http: { listen: "127.0.0.1:0" }
`;
    writeFileSync(cfgPath, cfg);
    const d = start(cfgPath, dir);
    const udp = await d.waitFor((e) => e.msg === 'syslog UDP listening', 15_000, 'UDP listening');
    const tcp = await d.waitFor((e) => e.msg === 'syslog TCP listening', 15_000, 'TCP listening');
    const http = await d.waitFor((e) => typeof e.url === 'string' && String(e.msg).startsWith('status page'), 15_000, 'http listening');
    await d.waitFor((e) => String(e.msg).startsWith('onsight running'), 15_000, 'running');
    const udpPort = Number(String(udp.input).split(':')[1]);
    const tcpPort = Number(String(tcp.input).split(':')[1]);

    // one TCP connection across SIGHUP
    const sock: Socket = await new Promise((resolve, reject) => {
      const s = connect(tcpPort, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });
    sock.write(ack(1) + '\n');
    await d.waitFor((e) => (e.sighting as { ip?: string } | undefined)?.ip === '10.20.0.1', 10_000, 'sighting over TCP');
    writeFileSync(cfgPath, cfg.replace('policy: { scope: ["10.0.0.0/8"] }', 'policy: { scope: ["10.0.0.0/8"], rescanAfter: 7d }'));
    d.p.kill('SIGHUP');
    // the policy change applies live (no restart needed, so no warning)
    await d.waitFor((e) => /reloaded: policy, regions, scheduler and inventory settings applied/.test(String(e.msg)), 10_000, 'reload line');
    sock.write(ack(2) + '\n');
    await d.waitFor((e) => (e.sighting as { ip?: string } | undefined)?.ip === '10.20.0.2', 10_000, 'sighting on the same connection after SIGHUP');
    expect(sock.destroyed).toBe(false);
    expect((await fetch(`${http.url}/healthz`)).status).toBe(200);

    // a burst, then SIGTERM at once: what was received is committed before exit
    const burst = Array.from({ length: 500 }, (_, i) => ack(100 + i));
    await new Promise<void>((resolve) => sock.end(burst.join('\n') + '\n', () => resolve()));
    await new Promise<void>((resolve) => sock.on('close', () => resolve()));
    await udpSend(udpPort, [ack(700), ack(701), ack(702)]);
    appendFileSync(logFile, `Nov 22 19:55:00 dhcp1 ${ack(4000)}\n`);
    await new Promise((r) => setTimeout(r, 300));
    d.p.kill('SIGTERM');
    const code = await d.exit;
    expect(code, d.stderr).toBe(0);
    expect(d.entries.some((e) => e.msg === 'SIGTERM: draining and stopping')).toBe(true);
    expect(d.entries.at(-1)?.msg).toBe('onsight stopped');

    const db = new Database(join(dir, 'state', 'onsight.db'), { readonly: true });
    try {
      const ips = new Set((db.prepare('SELECT DISTINCT ip FROM sightings').all() as { ip: string }[]).map((r) => r.ip));
      const want = [1, 2, ...burst.map((_, i) => 100 + i), 700, 701, 702, ...Array.from({ length: 3000 }, (_, i) => 1000 + i), 4000]
        .map((i) => `10.20.${i >> 8}.${i & 255}`);
      const missing = want.filter((ip) => !ips.has(ip));
      expect(missing).toEqual([]);
      const n = (db.prepare('SELECT count(*) n FROM sightings').get() as { n: number }).n;
      expect(n).toBe(want.length);
      const cp = db.prepare('SELECT offset FROM checkpoints WHERE path = ?').get(logFile) as { offset: number } | undefined;
      expect(cp?.offset).toBe(readFileSync(logFile).length);
      console.log(`SIGTERM after ${want.length} lines (TCP burst, UDP, file catch-up): exit ${code}, ${n} sightings in SQLite, file checkpoint at ${cp?.offset} bytes`);
    } finally {
      db.close();
    }
  }, 60_000);
});
