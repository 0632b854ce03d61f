/**
 * Killing the real daemon with SIGKILL while a launch is on the wire, and restarting it on the same
 * state file: what the vendors' end-to-end tests share to show that no scan is launched twice.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from '../../src/store/sqlite.js';
import { DaemonProcess } from './daemon.js';
import { udpSend } from './net.js';
import { CLI } from './paths.js';
import { until } from './wait.js';

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

export interface IntentRow {
  id: string;
  state: string;
  scan_ref: string | null;
}

/**
 * For each address: a lease, then (once its intent is recorded as launching) SIGKILL and a restart.
 * Returns the running daemon and how many kills hit a launch in flight.
 */
export async function killDuringLaunches(d: DaemonProcess, port: number, ips: string[], env: NodeJS.ProcessEnv): Promise<{ d: DaemonProcess; killedMidLaunch: number }> {
  const stateFile = join(d.dir, 'state.db');
  let killedMidLaunch = 0;
  for (const [n, ip] of ips.entries()) {
    await udpSend(port, ack(ip, `52:54:00:00:03:${String(n + 1).padStart(2, '0')}`));
    const db = new Database(stateFile, { readonly: true });
    const launching = await until(() => db.prepare(
      `SELECT i.id FROM intents i JOIN intent_targets t ON t.intent_id = i.id WHERE t.ip = ? AND i.state = 'launching'`).get(ip), 10_000, 'intent recorded', 50).catch(() => undefined);
    db.close();
    if (launching) killedMidLaunch++;
    await d.stop('SIGKILL');
    const child = spawn(process.execPath, [CLI, 'run', '--config', join(d.dir, 'onsight.yaml')], {
      cwd: d.dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    d = new DaemonProcess(child, d.dir);
    await d.waitFor((e) => e.msg.startsWith('onsight running'), 15_000);
  }
  return { d, killedMidLaunch };
}

/** Rows of one query on a daemon's SQLite state file, opened read-only for just this query (the daemon keeps writing). */
export function readState<T>(stateFile: string, sql: string): T[] {
  const db = new Database(stateFile, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

/** Waits until no intent is left unconfirmed, and returns every intent. */
export async function settledIntents(dir: string): Promise<IntentRow[]> {
  const read = <T>(sql: string) => readState<T>(join(dir, 'state.db'), sql);
  await until(() => read<{ n: number }>(`SELECT count(*) n FROM intents WHERE state = 'launching'`)[0].n === 0, 30_000, 'no intent left unconfirmed', 100);
  return read<IntentRow>('SELECT id, state, scan_ref FROM intents');
}
