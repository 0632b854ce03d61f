/** Runs the real daemon as a child process (`node bin/onsight.js run --config X`) and reads its JSON log. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './paths.js';

/** A port that is free on 127.0.0.1 for both TCP and UDP right now. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

export interface LogEntry {
  level: number;
  time: string;
  msg: string;
  [k: string]: unknown;
}

export class DaemonProcess {
  readonly logs: LogEntry[] = [];
  stderr = '';
  private waiters: { pred: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  exit: Promise<number | null>;

  constructor(readonly child: ChildProcess, readonly dir: string) {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let e: LogEntry;
        try {
          e = JSON.parse(line) as LogEntry;
        } catch {
          e = { level: 30, time: '', msg: line };
        }
        e.receivedAtMs = Date.now();
        this.logs.push(e);
        this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  waitFor(pred: (e: LogEntry) => boolean, timeoutMs = 10_000): Promise<LogEntry> {
    const found = this.logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for a log entry; stderr: ${this.stderr.slice(-2000)}; last logs: ${this.logs.slice(-5).map((l) => l.msg).join(' | ')}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (e) => { clearTimeout(t); resolve(e); } });
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill(signal);
    return this.exit;
  }
}

/**
 * The head of a config most daemon tests share: the `STATE` placeholder, UTC, one UDP syslog
 * input on loopback `port` with auto-detection, and the policy (scope 10.0.0.0/8, optionally an
 * excluded range). The test appends its regions, scanner and the rest.
 */
export function udpDaemonHead(port: number, exclude?: string): string {
  return `state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"]${exclude ? `, exclude: ["${exclude}"]` : ''} }
`;
}

/**
 * Write `configYaml` (with `STATE` replaced by a temp state path) and start the daemon on it;
 * `dir`: an earlier daemon's folder (its state file: a restart).
 */
export async function startDaemon(configYaml: string, env: NodeJS.ProcessEnv = {}, dir = mkdtempSync(join(tmpdir(), 'onsight-d-'))): Promise<DaemonProcess> {
  const cfg = join(dir, 'onsight.yaml');
  writeFileSync(cfg, configYaml.replaceAll('STATE', join(dir, 'state.db')));
  const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const d = new DaemonProcess(child, dir);
  await Promise.race([
    // generous: several daemons and real DHCP servers starting at once on a loaded 2-core machine take seconds
    d.waitFor((e) => e.msg.startsWith('onsight running'), 45_000),
    d.exit.then((code) => { throw new Error(`daemon exited early with ${code}: ${d.stderr}`); }),
  ]);
  return d;
}
