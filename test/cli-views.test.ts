/**
 * The read-only views (`onsight hosts`, `decisions`) on a real state file: names from log lines
 * are attacker-controlled, so escape codes, CR and LF must reach the terminal escaped, and stored
 * names are capped. Output piped into a slow reader arrives whole.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/db.js';
import { SqliteInventory } from '../src/inventory/inventory.js';
import { SqliteSchedulerStore } from '../src/scheduler/queue.js';
import type { Sighting } from '../src/sighting.js';
import { CLI } from './helpers/paths.js';

function setup(): { dir: string; cfg: string; state: string } {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-views-'));
  const state = join(dir, 'state.db');
  const cfg = join(dir, 'onsight.yaml');
  writeFileSync(cfg, `state: ${state}\ntimezone: UTC\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\nhttp: { enabled: false }\n`);
  return { dir, cfg, state };
}

const sighting = (ip: string, extra: Partial<Sighting>): Sighting =>
  ({ kind: 'lease', ip, at: new Date().toISOString(), format: 'isc-dhcpd', source: 'test', ...extra }) as Sighting;

const inventory = (state: string) => new SqliteInventory(openDatabase(state), { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 90 });

describe('views escape what log lines put in names', () => {
  it('escape codes, CR and LF in host and user names are printed escaped; stored names are capped', async () => {
    const { cfg, state } = setup();
    const inv = inventory(state);
    const evilHost = 'laptop\x1b[2J\x1b[31mOWNED\rfake\nline\u009b31m\u202egnp.exe';
    await inv.commitBatch([
      sighting('10.0.0.5', { mac: '52:54:00:00:00:05', hostname: evilHost }),
      sighting('10.0.0.6', { kind: 'tunnel-up', user: 'bob\x1b]0;title\x07\r\nroot', hostname: 'x'.repeat(5000) }),
    ]);
    await new SqliteSchedulerStore(openDatabase(state)).decide({ at: Date.now(), ip: '10.0.0.5', decision: 'not-due', reason: `name ${evilHost}` });
    const stored = openDatabase(state).prepare('SELECT max(length(hostname)) AS n FROM identities').get() as { n: number };
    expect(stored.n).toBeLessThanOrEqual(253);
    for (const view of ['hosts', 'decisions']) {
      for (const json of [false, true]) {
        const r = spawnSync('node', [CLI, view, '--config', cfg, ...(json ? ['--json'] : [])], { encoding: 'utf8' });
        expect(r.status).toBe(0);
        // eslint-disable-next-line no-control-regex
        expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
        if (!json) {
          // one line per row: header, rule, rows
          expect(r.stdout.trimEnd().split('\n').length).toBe(view === 'hosts' ? 4 : 3);
          expect(r.stdout).toContain('laptop\\x1b[2J\\x1b[31mOWNED\\rfake\\nline');
        } else {
          const rows = JSON.parse(r.stdout) as Record<string, string>[];
          if (view === 'hosts') expect(rows.find((x) => x.ip === '10.0.0.5')!.hostname).toBe(evilHost);
        }
      }
    }
  });
});

describe('hosts says when a credit came from a link', () => {
  it('a VPN identity credited through its laptop name shows "linked from" in WHY', async () => {
    const { cfg, state } = setup();
    writeFileSync(cfg, `${readFileSync(cfg, 'utf8')}inventory: { linkHostPatterns: ["lt-*"] }\n`);
    const inv = new SqliteInventory(openDatabase(state), { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 90, linkHostPatterns: ['lt-*'] });
    const d = (await inv.commitBatch([sighting('10.0.0.5', { mac: '52:54:00:00:00:05', hostname: 'LT-0042' })]))[0];
    await inv.markScanned([d.identityId!], Date.now() - 60_000, 'onsight');
    await inv.commitBatch([sighting('10.0.0.6', { kind: 'tunnel-up', user: 'alice', hostname: 'lt-0042.corp.example' })]);
    const rows = JSON.parse(spawnSync('node', [CLI, 'hosts', '--json', '--config', cfg], { encoding: 'utf8' }).stdout) as { ip: string; why: string }[];
    expect(rows.find((r) => r.ip === '10.0.0.6')!.why).toMatch(/\(onsight, linked from mac:52:54:00:00:00:05\)/);
    expect(rows.find((r) => r.ip === '10.0.0.5')!.why).not.toMatch(/linked/);
  });
});

describe('hosts while a finished scan waits for the host list', () => {
  it('says "confirming", not "scanning", once its scan has ended and the host list is awaited (probe: it read as still scanning)', async () => {
    const { cfg, state } = setup();
    const inv = inventory(state);
    const [a, b] = await inv.commitBatch([sighting('10.0.0.7', { mac: '52:54:00:00:00:07' }), sighting('10.0.0.8', { mac: '52:54:00:00:00:08' })]);
    const store = new SqliteSchedulerStore(openDatabase(state));
    const now = Date.now();
    for (const [r, ip, id] of [[a, '10.0.0.7', 'i-ended'], [b, '10.0.0.8', 'i-running']] as const) {
      await store.enqueue({ bindingId: r.bindingId!, ip, identityId: r.identityId!, region: 'r', dueSince: now - 60_000 });
      await store.createIntent({ id, region: 'r', appliance: 'a', createdAt: now - 50_000, epoch: 0 }, [{ ip, identityId: r.identityId!, bindingId: r.bindingId! }]);
      expect(await store.setRunning(id, `scan/${id}`, now - 40_000)).toBe(true);
    }
    // the first scan ended; its target is kept queued until the host list confirms it (results.ts, verifyResults)
    expect(await store.finishKeeping('i-ended', now - 10_000, new Set([a.bindingId!]))).toBe(true);
    const r = spawnSync('node', [CLI, 'hosts', '--config', cfg, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { ip: string; status: string; why: string }[];
    const byIp = Object.fromEntries(rows.map((x) => [x.ip, x]));
    expect(byIp['10.0.0.7'].status).toBe('confirming');
    expect(byIp['10.0.0.7'].why).toMatch(/^its scan ended; waiting for the scanner's host list/);
    expect(byIp['10.0.0.8'].status).toBe('scanning');
  });
});

describe('read-only views', () => {
  it('never create state: without a state file they refuse; ONSIGHT_CONFIG is honoured; an existing file is not migrated', async () => {
    const { dir, cfg, state } = setup();
    const cwdState = join(dir, 'data', 'onsight.db');
    for (const view of ['hosts', 'queue', 'scans', 'decisions']) {
      const r = spawnSync('node', [CLI, view, '--config', cfg], { encoding: 'utf8', cwd: dir });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/no state database at .*state\.db/);
      expect(existsSync(state)).toBe(false);
      // without --config: the embedded default's ./data/onsight.db is not created either
      const d = spawnSync('node', [CLI, view], { encoding: 'utf8', cwd: dir, env: { ...process.env, ONSIGHT_CONFIG: '' } });
      expect(d.status).toBe(1);
      expect(existsSync(cwdState)).toBe(false);
    }
    inventory(state).commitBatch([sighting('10.0.0.5', { mac: '52:54:00:00:00:05', hostname: 'via-env' })]);
    const r = spawnSync('node', [CLI, 'hosts'], { encoding: 'utf8', cwd: dir, env: { ...process.env, ONSIGHT_CONFIG: cfg } });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('via-env');
    // an older schema is reported, not upgraded behind the daemon's back
    const db = openDatabase(state);
    db.pragma('user_version = 5');
    db.close();
    const old = spawnSync('node', [CLI, 'hosts', '--config', cfg], { encoding: 'utf8' });
    expect(old.status).toBe(1);
    expect(old.stderr).toMatch(/schema 5/);
  }, 90_000); // ten CLI runs: 29-38 s on a 2-core machine at load 14
});

describe('piped output arrives whole', () => {
  it('`onsight hosts | slow reader` and `onsight parse | slow reader`: every line, exit 0', async () => {
    const { dir, cfg, state } = setup();
    const inv = inventory(state);
    const n = 20_000;
    const batch: Sighting[] = [];
    for (let i = 0; i < n; i++) batch.push(sighting(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { mac: `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` }));
    await inv.commitBatch(batch);
    const log = join(dir, 'dhcpd.log');
    let text = '';
    for (let i = 0; i < n; i++) text += `Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.1.${(i >> 8) & 255}.${i & 255} to 52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0\n`;
    writeFileSync(log, text);
    // a reader that waits before reading, so the pipe fills and the writer must wait for it
    const slow = `let n = 0; let buf = ''; setTimeout(() => process.stdin.on('data', (d) => { buf += d; }).on('end', () => console.log(buf.split('\\n').filter(Boolean).length)), 1500);`;
    for (const args of [['hosts', '--config', cfg], ['parse', '--format', 'isc-dhcpd', '--zone', 'UTC', log]]) {
      const got = await new Promise<{ lines: number; status: number | null }>((resolve) => {
        const writer = spawn('node', [CLI, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
        const reader = spawn('node', ['-e', slow], { stdio: ['pipe', 'pipe', 'inherit'] });
        writer.stdout.pipe(reader.stdin);
        let out = '';
        reader.stdout.on('data', (d) => (out += d));
        let status: number | null = null;
        writer.on('exit', (c) => (status = c));
        reader.on('exit', () => resolve({ lines: Number(out.trim()), status }));
      });
      expect({ cmd: args[0], ...got }).toEqual({ cmd: args[0], lines: args[0] === 'hosts' ? n + 2 : n, status: 0 });
    }
  }, 120_000);
});

describe('views that print the newest rows', () => {
  it('say on stderr when more are recorded, and --limit shows more (100 of 130 decisions were printed silently)', async () => {
    const { cfg, state } = setup();
    const store = new SqliteSchedulerStore(openDatabase(state));
    const now = Date.now();
    for (let k = 0; k < 130; k++) await store.decide({ at: now - k * 1000, ip: '10.0.0.7', decision: 'not-due', reason: `row ${k}` });
    const run = (...args: string[]) => spawnSync('node', [CLI, ...args, '--config', cfg], { encoding: 'utf8' });
    const cut = run('decisions', '--json');
    expect(cut.status).toBe(0);
    expect((JSON.parse(cut.stdout) as unknown[]).length).toBe(100);
    expect(cut.stderr).toBe('onsight: the newest 100 decisions shown, more are recorded (--limit N shows more)\n');
    const all = run('decisions', '--json', '--limit', '500');
    expect([(JSON.parse(all.stdout) as unknown[]).length, all.stderr]).toEqual([130, '']);
    const why = run('why', '10.0.0.7', '--limit', '20', '--json');
    expect((JSON.parse(why.stdout) as { decisions: unknown[] }).decisions.length).toBe(20);
    expect(why.stderr).toContain('the newest 20 decisions shown');
    const filtered = run('decisions', '--ip', '10.0.0.7', '--limit', '10');
    expect(filtered.stdout.trimEnd().split('\n').length).toBe(12); // header, rule, 10 rows
    expect(run('decisions', '--limit', '0').status).toBe(2);
  });
});
