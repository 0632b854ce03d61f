/** Shared by the tests that run ../shared/realworld/ scripts: finding binaries, running a script, reading the clients' ground truth. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function which(bin: string): boolean {
  const path = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
  return path.split(':').some((d) => d && existsSync(join(d, bin)));
}

export interface Truth {
  bindings: Set<string>;
  bound: Set<string>;
  renewed: Set<string>;
  released: Set<string>;
}

/** `time client mac reason ip lease_s server old_ip` — the clients' own record of their states. */
export function groundTruth(file: string): Truth {
  const t: Truth = { bindings: new Set(), bound: new Set(), renewed: new Set(), released: new Set() };
  const rows = readFileSync(file, 'utf8').split('\n').slice(1).filter((l) => l.trim());
  for (const row of rows) {
    const [, , mac, reason, ip, , , oldIp] = row.split('\t');
    const m = mac?.toLowerCase();
    if (['BOUND', 'RENEW', 'REBIND', 'REBOOT'].includes(reason) && ip) {
      t.bindings.add(`${m} ${ip}`);
      (reason === 'BOUND' || reason === 'REBOOT' ? t.bound : t.renewed).add(`${m} ${ip}`);
    }
    if (reason === 'RELEASE' && oldIp) t.released.add(`${m} ${oldIp}`);
  }
  return t;
}

/** Run a script without blocking the worker (vitest's RPC times out if the event loop stalls for 40 s). */
export function runScript(file: string, args: string[], timeoutMs: number): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: null, output: output + String(err) });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}
