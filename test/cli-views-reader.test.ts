/**
 * The views run by a user who may read the state but not write its folder (a group given read
 * access to /var/lib/onsight): a stopped daemon's state has no -shm, which such a user cannot make,
 * so SQLite refused every read ("attempt to write a readonly database"). Run as nobody (uid 65534)
 * through setpriv, as root; skipped with the reason printed otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/db.js';
import { daemonHoldsLock, lockStateFile } from '../src/store/lock.js';
import { SqliteInventory } from '../src/inventory/inventory.js';
import type { Sighting } from '../src/sighting.js';
import { CLI, REPO } from './helpers/paths.js';

const NOBODY = 65534;

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root: cannot run a view as another user';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is missing';
  // the checkout and this node must be open to nobody (a temporary Node 26 folder may not be)
  const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e',
    `require('fs').accessSync(${JSON.stringify(CLI)}, require('fs').constants.R_OK)`], { encoding: 'utf8' });
  if (r.status !== 0) return `nobody cannot run ${process.execPath} on ${CLI}: ${(r.stderr || r.error?.message || '').split('\n')[0]}`;
  return undefined;
}

const skip = whyNot();
if (skip) console.log(`SKIP views by a reading user: ${skip}`);

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** a state written and closed cleanly (no -wal, no -shm), in a folder nobody may read, not write */
async function stoppedState(): Promise<{ dir: string; cfg: string; state: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-reader-'));
  dirs.push(dir);
  const state = join(dir, 'state.db');
  const cfg = join(dir, 'onsight.yaml');
  writeFileSync(cfg, `state: ${state}\ntimezone: UTC\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\nhttp: { enabled: false }\n`);
  const db = openDatabase(state);
  const at = new Date().toISOString();
  await new SqliteInventory(db, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 90 })
    .commitBatch([{ kind: 'lease', ip: '10.0.0.5', at, format: 'isc-dhcpd', source: 'test', mac: '52:54:00:00:00:05', hostname: 'lap5' } as Sighting]);
  db.close();
  expect(readdirSync(dir).sort()).toEqual(['onsight.yaml', 'state.db']);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  chmodSync(dir, 0o755);
  return { dir, cfg, state };
}

/** a crash's leftover -wal for `state`: the writes of a connection still open (on a copy), without its -shm */
function crashWal(dir: string, state: string): Buffer {
  const live = mkdtempSync(join(dir, 'live-'));
  copyFileSync(state, join(live, 'state.db'));
  const db = openDatabase(join(live, 'state.db'));
  db.prepare("UPDATE identities SET hostname = 'renamed'").run();
  const wal = readFileSync(join(live, 'state.db-wal'));
  db.close();
  return wal;
}

const asNobody = (args: string[], cwd: string) => spawnSync('setpriv',
  [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 60_000, cwd });

describe.skipIf(skip !== undefined)('views by a user who may read the state but not write its folder', () => {
  it('read a stopped daemon\'s state, and leave nothing beside it', async () => {
    const { dir, cfg } = await stoppedState();
    for (const view of [['hosts', '--json'], ['report', '--json']]) {
      const r = asNobody([...view, '--config', cfg], dir);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      if (view[0] === 'hosts') expect((JSON.parse(r.stdout) as { ip: string; hostname: string }[]).map((h) => [h.ip, h.hostname])).toEqual([['10.0.0.5', 'lap5']]);
      else expect((JSON.parse(r.stdout) as { total: { seen: number } }).total.seen).toBe(1);
    }
    expect(readdirSync(dir).sort()).toEqual(['onsight.yaml', 'state.db']);
  }, 60_000);

  it('read through a symlink to the state: a leftover -wal beside the file it leads to is seen, not skipped', async () => {
    const { dir, cfg, state } = await stoppedState();
    const linked = join(dir, 'linked');
    mkdirSync(linked);
    chmodSync(linked, 0o755);
    symlinkSync(state, join(linked, 'state.db'));
    writeFileSync(join(linked, 'onsight.yaml'), readFileSync(cfg, 'utf8').replace(state, join(linked, 'state.db')));
    chmodSync(join(linked, 'onsight.yaml'), 0o644);
    expect(asNobody(['hosts', '--config', join(linked, 'onsight.yaml')], dir).status).toBe(0);
    writeFileSync(`${state}-wal`, crashWal(dir, state));
    chmodSync(`${state}-wal`, 0o644);
    const r = asNobody(['hosts', '--config', join(linked, 'onsight.yaml')], dir);
    expect(r.stderr).toContain(`${state}-wal holds writes not yet merged`);
    expect(r.status).toBe(1);
  }, 60_000);

  it('a state written while read as it stands (onsight skip on a stopped daemon) is read again', async () => {
    const { dir, cfg, state } = await stoppedState();
    // a view whose reads wait for the test to write the state between them (the writer is root)
    const script = join(dir, 'view.mjs');
    writeFileSync(script, `
      import { createInterface } from 'node:readline';
      const { withStateView } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'dist', 'src', 'cli', 'views.js')).href)});
      const { loadConfig } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'dist', 'src', 'config', 'load.js')).href)});
      const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      let attempts = 0;
      const names = await withStateView(loadConfig(${JSON.stringify(cfg)}).config, 'test', async ({ inventory }) => {
        attempts++;
        const before = (await inventory.presentBindings(Date.now())).map((b) => b.hostname);
        console.log('read');
        await lines.next();
        return before;
      });
      console.log(JSON.stringify({ attempts, names }));
      process.exit(0);
    `);
    chmodSync(script, 0o644);
    const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, script], { cwd: dir });
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const reads = () => out.split('\n').filter((l) => l === 'read').length;
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    const until = async (n: number) => { for (let i = 0; i < 400 && reads() < n; i++) await new Promise((r) => setTimeout(r, 25)); expect(reads(), err).toBe(n); };
    await until(1);
    // a write by another process between the view's reads: a new hostname, merged into the file at its close
    const db = openDatabase(state);
    db.prepare("UPDATE identities SET hostname = 'renamed'").run();
    db.close();
    child.stdin.write('go\n');
    await until(2);
    child.stdin.write('go\n');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code, err).toBe(0);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ attempts: 2, names: ['renamed'] });
  }, 60_000);

  it('say why they cannot read writes not yet merged (a -wal left by a crash), or a daemon that holds the lock', async () => {
    const { dir, cfg, state } = await stoppedState();
    writeFileSync(`${state}-wal`, crashWal(dir, state));
    chmodSync(`${state}-wal`, 0o644);
    expect(statSync(`${state}-wal`).size).toBeGreaterThan(0);
    let r = asNobody(['hosts', '--config', cfg], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${state}-wal holds writes not yet merged (the daemon stopped uncleanly) and this user may not create ${state}-shm in ${dir}`);
    rmSync(`${state}-wal`);

    expect(daemonHoldsLock(state)).toBe(false);
    const lock = lockStateFile(state);
    try {
      expect(daemonHoldsLock(state)).toBe(true);
      for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o755);
      r = asNobody(['hosts', '--config', cfg], dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`cannot read the state database ${state}: the daemon is running (or its lock cannot be read) and this user may not create`);
    } finally {
      lock.release();
    }
    expect(daemonHoldsLock(state)).toBe(false);
    expect(existsSync(`${state}-shm`)).toBe(false);
  }, 60_000);
});
