/**
 * The state file under stress, with the real daemon (`onsight run`) and real faults: a second
 * daemon on the same file, a full file system (a real tmpfs; needs root to mount), a write lock
 * held by another process for longer than the busy timeout. Nothing accepted may be lost, and the
 * daemon must say what is wrong (/healthz, a metric, a log line) instead of crashing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { CLI } from './helpers/paths.js';
import { DaemonProcess, freePort } from './helpers/daemon.js';
import { sleep, until } from './helpers/wait.js';

const cleanup: (() => void)[] = [];
afterAll(() => {
  for (const f of cleanup.reverse()) f();
});

function start(dir: string): DaemonProcess {
  const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'onsight.yaml')], {
    cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new DaemonProcess(child, dir);
}

async function config(dir: string, state: string): Promise<{ udp: number; http: number }> {
  const udp = await freePort();
  const http = await freePort();
  writeFileSync(join(dir, 'onsight.yaml'), `
state: ${state}
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${udp}", format: isc-dhcpd }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
scanner: { type: dry-run }
http: { listen: "127.0.0.1:${http}" }
`);
  return { udp, http };
}

const line = (i: number) => `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.1.${(i >> 8) & 255}.${i & 255} to 52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0`;

async function sendLines(port: number, from: number, to: number): Promise<void> {
  const s = createSocket('udp4');
  for (let i = from; i < to; i++) {
    await new Promise<void>((resolve, reject) => s.send(line(i), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    if (i % 50 === 0) await sleep(5);
  }
  s.close();
}

function storedCount(state: string): number {
  const db = new Database(state, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return (db.prepare('SELECT count(*) AS n FROM sightings').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function healthz(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: r.status, body: await r.text() };
}
async function metrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

describe('state file', () => {
  it('a second daemon on the same state file refuses with a clear error; after a SIGKILL of the first, a new one starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-lock-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state.db');
    await config(dir, state);
    const first = start(dir);
    await first.waitFor((e) => /onsight running/.test(e.msg), 15_000);
    // the second run needs other ports, or it would fail on those first
    const dir2 = mkdtempSync(join(tmpdir(), 'onsight-lock2-'));
    cleanup.push(() => rmSync(dir2, { recursive: true, force: true }));
    await config(dir2, state);
    const second = spawnSync(process.execPath, [CLI, 'run', '--config', join(dir2, 'onsight.yaml')], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, ONSIGHT_LOG_JSON: '1' } });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/another onsight daemon is using .*state\.db/);
    expect(first.child.exitCode).toBe(null);
    first.child.kill('SIGKILL');
    await first.exit;
    const third = start(dir2);
    await third.waitFor((e) => /onsight running/.test(e.msg), 15_000);
    expect(await third.stop()).toBe(0);
  });

  it('a write lock held by another process for 8 s: the daemon stays up, says so, and loses no accepted line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-busy-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state.db');
    const { udp, http } = await config(dir, state);
    const d = start(dir);
    await d.waitFor((e) => /onsight running/.test(e.msg), 15_000);
    await sendLines(udp, 0, 100);
    await until(() => storedCount(state) === 100, 10_000, 'first 100 lines stored');
    // another process takes the write lock and keeps it for 8 s (longer than the 5 s busy timeout)
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      const { default: Database } = await import(${JSON.stringify(join(process.cwd(), 'dist', 'src', 'store', 'sqlite.js'))});
      const db = new Database(${JSON.stringify(state)});
      db.exec('BEGIN IMMEDIATE');
      console.log('locked');
      setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, 8000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    await sendLines(udp, 100, 600);
    await d.waitFor((e) => /state database/.test(e.msg) && e.level >= 50, 15_000);
    const h = await healthz(http);
    expect(h.status).toBe(503);
    expect(h.body).toMatch(/state database/);
    expect(await metrics(http)).toMatch(/^onsight_store_write_errors_total \d*[1-9]/m);
    await new Promise((resolve) => holder.on('exit', resolve));
    await until(() => storedCount(state) === 600, 20_000, 'all 600 lines stored after the lock is released');
    await until(async () => (await healthz(http)).status === 200, 10_000, '/healthz ok again');
    expect(d.child.exitCode).toBe(null);
    expect(await d.stop()).toBe(0);
  }, 60_000);
});

const tmpfsProbe = (() => {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a small tmpfs to fill';
  const m = mkdtempSync(join(tmpdir(), 'onsight-tmpfs-probe-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', m], { encoding: 'utf8' });
  if (r.status !== 0) return `mount -t tmpfs failed: ${r.stderr.trim()}`;
  spawnSync('umount', [m]);
  rmSync(m, { recursive: true, force: true });
  return undefined;
})();
if (tmpfsProbe) console.log(`SKIP full-disk test: ${tmpfsProbe}`);

describe.skipIf(tmpfsProbe !== undefined)('full file system', () => {
  it('the disk fills while lines arrive: the daemon stays up, /healthz says so, and nothing accepted is lost once space is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-full-'));
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]).status).toBe(0);
    cleanup.push(() => {
      spawnSync('umount', ['-l', mnt]);
      rmSync(dir, { recursive: true, force: true });
    });
    const state = join(mnt, 'state.db');
    const { udp, http } = await config(dir, state);
    const d = start(dir);
    await d.waitFor((e) => /onsight running/.test(e.msg), 15_000);
    await sendLines(udp, 0, 50);
    await until(() => storedCount(state) === 50, 10_000, 'first lines stored');
    // fill the file system
    spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
    await sendLines(udp, 50, 1500);
    // (the tmpfs is 16 MiB: the WAL must have room for the whole backlog once the filler goes)
    await d.waitFor((e) => /state database/.test(e.msg) && e.level >= 50, 20_000);
    const h = await healthz(http);
    expect(h.status).toBe(503);
    expect(h.body).toMatch(/state database|disk|space/i);
    expect(await metrics(http)).toMatch(/^onsight_store_write_errors_total \d*[1-9]/m);
    expect(d.child.exitCode).toBe(null);
    rmSync(join(mnt, 'filler'));
    try {
      await until(() => storedCount(state) === 1500, 30_000, 'every line stored once space is back');
    } catch (err) {
      console.log(`stored ${storedCount(state)}; /healthz ${(await healthz(http)).body}; daemon warnings: ${d.logs.filter((l) => l.level >= 40).map((l) => l.msg).join(' | ')}`);
      throw err;
    }
    await until(async () => (await healthz(http)).status === 200, 10_000, '/healthz ok again');
    expect(await d.stop()).toBe(0);
  }, 90_000);
});
