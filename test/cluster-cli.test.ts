// Cluster config and CLI through the real `onsight` binary: `config check` refuses a cluster without
// PostgreSQL and a password in the URL (naming the field); `onsight cluster status` and `onsight doctor`
// against a real PostgreSQL with password authentication (the password from a file, never printed).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { CLI } from './helpers/paths.js';
import { freePort, startDaemon } from './helpers/daemon.js';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { Lease } from '../src/cluster/lease.js';
import { InboxWriter } from '../src/cluster/inbox.js';
import { parseConfigText } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { startQualysEmulator } from '../src/emulator/qualys/index.js';

const BASE = ['policy:', '  scope: ["10.0.0.0/8"]', 'regions:', '  - name: r', '    cidrs: ["10.0.0.0/8"]', '    appliances: [a1]'];
const dir = mkdtempSync(join(tmpdir(), 'onsight-cluster-cli-'));
const write = (name: string, lines: string[]) => {
  const p = join(dir, name);
  writeFileSync(p, [...lines, ...BASE].join('\n') + '\n');
  return p;
};
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ONSIGHT_CONFIG: '', ...env }, timeout: 30_000 });

describe('cluster config (schema and config check)', () => {
  it('a plain path stays SQLite; a PostgreSQL state and a cluster block parse with their defaults', () => {
    const { config } = parseConfigText([
      'state:', '  postgres: "postgres://onsight@db.example.net:5432/onsight?sslmode=verify-full"', '  credential: onsight-pg',
      'cluster:', '  node: onsight-a', ...BASE].join('\n'), 't.yaml');
    expect(config.state).toEqual({ postgres: 'postgres://onsight@db.example.net:5432/onsight?sslmode=verify-full', credential: 'onsight-pg', poolSize: 10, connectTimeoutS: 10 });
    expect(config.cluster).toEqual({ name: 'onsight', node: 'onsight-a', role: 'scheduler', leaseTtlS: 15, pollS: 1, fastTakeover: true, dedupWindowS: 600 });
  });

  it('config check refuses a cluster without PostgreSQL, naming the field and line', () => {
    const p = write('sqlite-cluster.yaml', ['state: ./x.db', 'cluster:', '  node: a']);
    const r = cli(['config', 'check', '--config', p]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${p}:3: cluster: cluster mode needs a PostgreSQL state`);
  });

  it('config check refuses a password in the URL without echoing it', () => {
    const p = write('pw-url.yaml', ['state:', '  postgres: "postgres://onsight:hunter2secret@db:5432/onsight"']);
    const r = cli(['config', 'check', '--config', p]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('state.postgres: credentials in the URL (a password before @) are refused');
    expect(r.stderr + r.stdout).not.toContain('hunter2secret');
    const q = write('pw-query.yaml', ['state:', '  postgres: "postgres://onsight@db/onsight?password=hunter2secret"']);
    const rq = cli(['config', 'check', '--config', q]);
    expect(rq.status).toBe(2);
    expect(rq.stderr).toContain('query parameter password');
    expect(rq.stderr + rq.stdout).not.toContain('hunter2secret');
  });

  it('bad cluster and state fields are named', () => {
    const issues = (text: string[]) => {
      try {
        parseConfigText([...text, ...BASE].join('\n'), 't.yaml');
      } catch (err) {
        return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
      }
      return [];
    };
    expect(issues(['state:', '  postgres: "postgres://a@b/c"', '  cluster:', 'cluster:', '  role: boss'])).toEqual(expect.arrayContaining([expect.stringMatching(/^cluster\.role: /)]));
    expect(issues(['state:', '  postgres: "postgres://a@b/c"', '  passwordFile: /x', '  passwordEnv: Y']).join('\n')).toMatch(/^state: .*at most one of passwordFile, passwordEnv and credential/);
    expect(issues(['state:', '  postgres: "mysql://a@b/c"']).join('\n')).toMatch(/state\.postgres: expected a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(issues(['state:', '  postgres: "postgres://a@b/c"', 'cluster:', '  node: "has space"']).join('\n')).toMatch(/cluster\.node: letters, digits/);
    // (a node's heartbeat comes with its poll: polled slower than a third of the ttl, it looked gone to its peers between beats, its exclusions coming and going)
    expect(issues(['state:', '  postgres: "postgres://a@b/c"', 'cluster:', '  leaseTtlS: 3', '  pollS: 10']).join('\n')).toMatch(/cluster\.pollS: 10 s is more than a third of leaseTtlS \(3 s\)/);
    expect(issues(['state:', '  postgres: "postgres://a@b/c"', 'cluster:', '  leaseTtlS: 3', '  pollS: 1'])).toEqual([]);
  });
});

const why = pgUnavailable();
if (why) console.log(`skip cluster CLI against PostgreSQL: ${why}`);

describe.skipIf(!!why)('onsight cluster status / doctor against a real PostgreSQL', () => {
  let server: PgServer;
  let admin: pg.Client;
  let cfg: string;
  const PASSWORD = 's3cret-from-a-file';
  let lease: Lease | undefined;

  beforeAll(async () => {
    server = startPostgres();
    admin = new pg.Client(server.connection);
    await admin.connect();
    await admin.query(`CREATE ROLE onsight LOGIN PASSWORD '${PASSWORD}'`);
    await admin.query('GRANT CREATE ON SCHEMA public TO onsight');
    // password authentication for that role on the socket (the harness trusts everyone else)
    const hba = join(server.dataDir, 'pg_hba.conf');
    writeFileSync(hba, `local all onsight scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    await admin.query('SELECT pg_reload_conf()');
    writeFileSync(join(dir, 'pg.pass'), PASSWORD + '\n', { mode: 0o600 });
    cfg = write('pg.yaml', [
      'state:', `  postgres: "postgresql://onsight@/${server.database}?host=${encodeURIComponent(server.socketDir)}&port=${server.port}"`, `  passwordFile: ${join(dir, 'pg.pass')}`,
      'cluster:', '  node: cli-a']);
  });
  afterAll(async () => {
    await lease?.stop().catch(() => undefined);
    await admin?.end().catch(() => undefined);
    server?.destroy();
  });

  it('before any node: says so; a wrong password is refused and never printed', () => {
    const r = cli(['cluster', 'status', '--config', cfg]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('no cluster yet');
    expect(r.stdout).toContain(`postgresql onsight@`);
    writeFileSync(join(dir, 'bad.pass'), 'not-the-password\n');
    const bad = write('bad.yaml', ['state:', `  postgres: "postgresql://onsight@/${server.database}?host=${encodeURIComponent(server.socketDir)}&port=${server.port}"`, `  passwordFile: ${join(dir, 'bad.pass')}`]);
    const rb = cli(['cluster', 'status', '--config', bad]);
    expect(rb.status).toBe(1);
    expect(rb.stderr).toMatch(/cannot connect to postgresql onsight@.*password authentication failed/);
    expect(rb.stderr + rb.stdout).not.toContain('not-the-password');
  });

  it('with a leader and inbox rows: leader, epoch, expiry, members, backlog (text and JSON)', async () => {
    const conn = { ...server.connection, user: 'onsight', password: PASSWORD };
    lease = new Lease({ connection: conn, node: 'cli-a', ttlMs: 15_000, version: '0.1.0' });
    await lease.start();
    expect(lease.isLeader()).toBe(true);
    const pool = new pg.Pool({ ...conn, max: 2 });
    const w = new InboxWriter(pool, 'cli-a');
    const s = (i: number) => ({ origin: '10.0.0.1', raw: `line ${i}`, sighting: { kind: 'lease' as const, ip: `10.0.0.${i}`, at: '2026-12-01T00:00:00.000Z', format: 'isc-dhcpd', source: 'tcp:601' } });
    await w.append([s(1), s(2), s(3), s(3)]);
    await pool.end();
    const r = cli(['cluster', 'status', '--config', cfg]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/leader {5}cli-a \(epoch 1, lease expires in 1[0-5](\.\d)? s at /);
    expect(r.stdout).toContain('inbox      3 waiting, 0 applied');
    expect(r.stdout).toMatch(/cli-a\s+scheduler\s+leader\s+\S+\s+0\.1\.0\s+\d+(\.\d)? s ago/);
    const j = JSON.parse(cli(['cluster', 'status', '--json', '--config', cfg]).stdout);
    expect(j.leader).toMatchObject({ holder: 'cli-a', epoch: 1 });
    expect(j.members.map((m: { name: string; leader: boolean }) => [m.name, m.leader])).toEqual([['cli-a', true]]);
    expect(j.inbox.backlog).toBe(3);
  });

  it('doctor checks the server: version, privileges, synchronous commit, replication, leader, inbox', () => {
    const r = cli(['doctor', '--config', cfg]);
    const out = r.stdout;
    expect(out).toMatch(/✓ postgresql version: \d+\.\d+.* \(database postgres as onsight\)/);
    expect(out).toContain('✓ postgresql privileges: read and write on the cluster tables');
    expect(out).toContain('! synchronous commit: synchronous_commit = on but no synchronous standby');
    expect(out).toContain('! replication: no standby visible from here');
    expect(out).toContain('✓ cluster leader: cli-a epoch 1');
    expect(out).toContain('✓ inbox: 3 waiting, 0 applied');
    expect(out).not.toContain(PASSWORD);
    expect(r.status).toBe(0);
  });

  it('a missing privilege is a failure, named', async () => {
    await admin.query('REVOKE DELETE ON cluster_inbox FROM onsight');
    const r = cli(['doctor', '--config', cfg]);
    expect(r.stdout).toContain('✗ postgresql privileges: missing on existing tables: cluster_inbox:DELETE');
    expect(r.status).toBe(1);
  });

  it('run on a PostgreSQL state: password from its file, joins the cluster, serves the status page and cluster metrics, stops cleanly; the password never printed', async () => {
    await admin.query('GRANT DELETE ON cluster_inbox TO onsight');
    const port = await freePort();
    const d = await startDaemon([
      'state:', `  postgres: "postgresql://onsight@/${server.database}?host=${encodeURIComponent(server.socketDir)}&port=${server.port}"`, `  passwordFile: ${join(dir, 'pg.pass')}`,
      'cluster: { node: cli-b, pollS: 0.2 }',
      'inputs:', `  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }`,
      'policy: { scope: ["10.0.0.0/8"] }', 'regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [a] }]',
      'scanner: { type: dry-run }', 'http: { listen: "127.0.0.1:0" }', ''].join('\n'));
    try {
      expect(d.logs.find((e) => e.msg.startsWith('onsight running'))!.msg).toMatch(/state postgresql onsight@.*; cluster onsight node cli-b \(scheduler\)$/);
      const st = JSON.parse(cli(['cluster', 'status', '--json', '--config', cfg]).stdout);
      // usually the lease of the test above still leads; this process blocks in spawnSync, so it may have lapsed and cli-b taken over
      const leads = st.leader.holder === 'cli-b';
      expect(st.members.map((m: { name: string }) => m.name).sort()).toEqual(['cli-a', 'cli-b']);
      expect(d.logs.some((e) => e.msg.startsWith('leader: cli-b'))).toBe(leads);
      // the status page, health and the operator API answer from the PostgreSQL store
      const url = (await d.waitFor((e) => e.msg.startsWith('status page'))).url as string;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(((await (await fetch(`${url}/api/status`)).json()) as { totals: { identities: number } }).totals.identities).toBe(0);
      // cluster metrics agree with the lease row
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^onsight_cluster_leader\\{node="cli-b"\\} ${leads ? 1 : 0}$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^onsight_cluster_acquisitions_total ${leads ? 1 : 0}$`, 'm'));
      expect(metrics).toMatch(/^onsight_inbox_backlog \d+$/m);
      const op = await fetch(`${url}/api/why?target=10.20.0.1`);
      expect(op.status).toBe(200);
      expect(await op.json()).toMatchObject({ target: { kind: 'ip', value: '10.20.0.1' }, devices: [], sightings: [], scans: [] });
      // and so do the views, with the password from its file
      const hosts = cli(['hosts', '--json', '--config', cfg]);
      expect(hosts.stderr).toBe('');
      expect(JSON.parse(hosts.stdout)).toEqual([]);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    expect(JSON.stringify(d.logs) + d.stderr).not.toContain(PASSWORD);
  });

  it('doctor counts our scans by the cluster\'s title prefix (cluster.name), as the daemon launches them', async () => {
    const e = await startQualysEmulator({ appliances: [{ name: 'emea-sa-1' }] });
    try {
      // two scans of this deployment, one of another deployment left at the default prefix, one whose first word only starts like ours, one by hand
      for (const title of ['acme i-1 emea', 'acme i-2 emea', 'onsight i-3 emea', 'acmex i-4 emea', 'weekly by hand']) {
        e.state.model.launch({ title, targets: ['10.20.0.1'], appliances: ['emea-sa-1'], priority: 0, userLogin: e.username });
      }
      const cfgQ = join(dir, 'pg-qualys.yaml');
      writeFileSync(cfgQ, [
        'state:', `  postgres: "postgresql://onsight@/${server.database}?host=${encodeURIComponent(server.socketDir)}&port=${server.port}"`, `  passwordFile: ${join(dir, 'pg.pass')}`,
        'cluster: { name: acme, node: cli-c }', 'inputs: []', 'http: { enabled: false }',
        'policy: { scope: ["10.0.0.0/8"] }', 'regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]',
        `scanner: { type: qualys, url: "${e.url}", username: ${e.username}, passwordEnv: QDOCTOR_PW, optionProfile: "Initial Options" }`, ''].join('\n'));
      // asynchronously: the emulator answers from this process
      const r = await new Promise<{ stdout: string; stderr: string }>((res) => execFile(process.execPath, [CLI, 'doctor', '--config', cfgQ], {
        encoding: 'utf8', env: { ...process.env, ONSIGHT_CONFIG: '', QDOCTOR_PW: e.password }, timeout: 30_000,
      }, (_err, stdout, stderr) => res({ stdout, stderr })));
      expect(r.stdout).toMatch(/^✓ scans: 5 launched in the last 24 h \(2 by onsight, titled "acme …"\), 5 running or queued now$/m);
      expect(r.stdout + r.stderr).not.toContain(e.password);
    } finally {
      await e.close();
    }
  });
});
