/**
 * The operator's side on both stores (issue 17): the views (`hosts`, `queue`, `scans`, `decisions`
 * and its filters, `why`), `report`, and `rescan`/`skip` on a real SQLite file and on a real
 * PostgreSQL with the same assertions, and the same output byte for byte; a view never writes
 * (SQLite read-only, PostgreSQL read-only session). Then `onsight state copy --to postgres`: a
 * SQLite install copied, verified, refused when the target is not empty or a daemon holds the
 * file, and a daemon on the copy sees the same hosts and last scans (it launches only the device
 * that was due). Then a cluster of two daemons: a rescan written through the follower's API, or
 * by the CLI on the PostgreSQL config, is honoured by the leader; the follower's /api/status and
 * page name the leader, its epoch and since when.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { types } from 'node:util';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { hostsView, queueView, scansView, decisionsView, withStateView } from '../src/cli/views.js';
import { filteredDecisionsView, whyView } from '../src/cli/why.js';
import { buildReport, renderReport } from '../src/cli/report.js';
import { runOperatorAction } from '../src/cli/operator.js';
import { copyStateToPostgres } from '../src/store/copy.js';
import { lockStateFile } from '../src/store/lock.js';
import { SKIP_FOREVER } from '../src/scheduler/marks.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { PgStore } from '../src/store/postgres/store.js';
import { PgDb } from '../src/store/postgres/db.js';
import type { Store } from '../src/store/types.js';
import { STORE_KINDS } from './helpers/stores.js';
import { CLI } from './helpers/paths.js';
import { udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);

const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 90 };
const BASE = {
  timezone: 'UTC', inputs: [], policy: { rescanAfter: '30d', scope: ['10.0.0.0/8'] },
  regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'], maxConcurrentScans: 2 }],
  scanner: { type: 'dry-run', scanDurationS: 1 }, http: { enabled: false },
};
const A = '52:54:00:00:01:05', C = '52:54:00:00:01:07', D = '52:54:00:00:01:08';

/** the state: postgres form of a test server's database (no password: the test server trusts its socket) */
function pgState(store: Store): { postgres: string } {
  const o = (store as PgStore).db.pool.options as { host: string; port: number; user: string; database: string };
  return { postgres: `postgres://${o.user}@/${o.database}?host=${o.host}&port=${o.port}` };
}

function configFor(state: string | { postgres: string }, extra: Record<string, unknown> = {}): Config {
  return validateConfig({ ...BASE, state, ...extra }).config;
}

function yamlFile(config: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'onsight-vs-')), 'onsight.yaml');
  writeFileSync(file, JSON.stringify(config)); // JSON is YAML
  return file;
}

/**
 * Four devices: A (DHCP, scanned 15 min ago by a finished scan), bob (VPN, queued), C (DHCP,
 * skipped by an operator), D (left: released). Decisions, a checkpoint and a source position.
 */
async function populate(store: Store, t: number): Promise<void> {
  const at = (ms: number) => new Date(ms).toISOString();
  const s = (x: Record<string, unknown>) => ({ format: 'isc-dhcpd', source: 'test', durationS: 7200, ...x }) as never;
  const r = await store.inventory.commitBatch([
    s({ kind: 'lease', ip: '10.20.1.5', mac: A, hostname: 'lt-ann', at: at(t) }),
    s({ kind: 'tunnel-up', ip: '10.20.1.6', user: 'bob', format: 'openvpn', at: at(t + 1000) }),
    s({ kind: 'lease', ip: '10.20.1.7', mac: C, at: at(t + 2000) }),
    s({ kind: 'lease', ip: '10.20.1.8', mac: D, at: at(t + 3000) }),
    s({ kind: 'release', ip: '10.20.1.8', mac: D, at: at(t + 60_000) }),
  ], [{ path: '/var/log/dhcpd.log', dev: 1, ino: 2, offset: 4096, fingerprint: 'ab12' }], t + 60_000, [{ key: 'http:ack', value: { seq: 7 } }]);
  const [a, bob, c, d] = r;
  const sch = store.scheduler;
  await sch.createIntent({ id: 'i-0001', region: 'emea', appliance: 'emea-sa-1', createdAt: t + 240_000 }, [{ ip: '10.20.1.5', identityId: a.identityId!, bindingId: a.bindingId! }]);
  await sch.setRunning('i-0001', 'scan/1', t + 241_000);
  await sch.endIntent('i-0001', 'finished', t + 300_000, null);
  await store.inventory.markScanned([a.identityId!], t + 300_000, 'onsight');
  await sch.saveScanCredits([{ identityId: a.identityId!, at: t + 300_000, lease: { lastSeen: t, expiresAt: t + 7_200_000 }, whole: false }]);
  await sch.saveLearned([{ name: 'appliances', state: '{"slots":{"emea-sa-1":{"seen":2}},"othersSince":{}}', savedAt: t + 300_000 }]);
  await sch.enqueue({ bindingId: r[1].bindingId!, ip: '10.20.1.6', identityId: bob.identityId!, region: 'emea', dueSince: t + 1000, lastSeen: t + 1000 });
  await sch.skip([c.identityId!], SKIP_FOREVER, t + 360_000);
  for (const [i, x] of [
    [a, 'due', 'never scanned'], [a, 'launched', 'scan i-0001'], [a, 'scanned', 'scan i-0001 finished'],
    [bob, 'due', 'never scanned'], [c, 'not-due', 'skipped: an operator skipped this device'], [d, 'not-due', 'out of scope? no: left'],
  ].entries()) {
    const ip = ['10.20.1.5', '10.20.1.5', '10.20.1.5', '10.20.1.6', '10.20.1.7', '10.20.1.8'][i];
    await sch.decide({ at: t + 10_000 * (i + 1), ip, identityId: (x[0] as typeof a).identityId, decision: x[1] as never, reason: x[2] as string });
  }
}

const T = Math.floor(Date.now() / 1000) * 1000 - 20 * 60_000;
const NOW = T + 20 * 60_000;
const outputs: Record<string, Record<string, string>> = {};

for (const kind of STORE_KINDS) {
  describe.skipIf(!!kind.skip)(`operator views on ${kind.name}`, () => {
    it('hosts, queue, scans, decisions (filtered), why, report; rescan and skip write marks; a view cannot write', async () => {
      const file = join(mkdtempSync(join(tmpdir(), 'onsight-vs-')), 'state.db');
      const store = await kind.open(OPTS, file);
      await populate(store, T);
      const config = configFor(kind.name === 'sqlite' ? file : pgState(store));
      const out: Record<string, string> = {};
      const ctx = { config, now: NOW };
      for (const json of [false, true]) {
        out[`hosts${json}`] = await hostsView(ctx, json);
        out[`queue${json}`] = await queueView(ctx, json);
        out[`scans${json}`] = await scansView(ctx, json);
        out[`decisions${json}`] = await decisionsView(ctx, json);
        for (const who of ['10.20.1.5', A, 'bob', '10.20.1.8', 'nobody']) out[`why ${who}${json}`] = await whyView(config, who, json);
        out[`decisions --mac${json}`] = await filteredDecisionsView(config, { mac: A }, json);
        out[`decisions --ip --since${json}`] = await filteredDecisionsView(config, { ip: '10.20.1.5', since: T + 20_000 }, json);
      }
      const report = await buildReport(config, T - 3600_000, NOW);
      out.report = renderReport(report, 'table');
      out.reportCsv = renderReport(report, 'csv');

      const hosts = JSON.parse(out.hoststrue) as { ip: string; status: string; lastScanned: string }[];
      expect(hosts.map((h) => [h.ip, h.status])).toEqual([['10.20.1.5', 'scanned-recently'], ['10.20.1.6', 'queued'], ['10.20.1.7', 'skipped']]);
      expect(hosts[0].lastScanned).toBe(new Date(T + 300_000).toISOString().replace('.000Z', 'Z'));
      expect(JSON.parse(out.queuetrue)).toMatchObject([{ ip: '10.20.1.6', region: 'emea', attempts: 0 }]);
      expect(JSON.parse(out.scanstrue)).toMatchObject([{ intent: 'i-0001', state: 'finished', scanRef: 'scan/1', targets: ['10.20.1.5'] }]);
      expect((JSON.parse(out.decisionstrue) as unknown[]).length).toBe(6);
      const whyA = JSON.parse(out[`why ${A}true`]) as { devices: { identity: string; via: string }[]; sightings: unknown[]; decisions: unknown[]; scans: { intent: string; ip: string }[] };
      expect(whyA.devices).toMatchObject([{ identity: `mac:${A}`, via: 'onsight' }]);
      expect([whyA.sightings.length, whyA.decisions.length, whyA.scans]).toEqual([1, 3, [expect.objectContaining({ intent: 'i-0001', ip: '10.20.1.5' })]]);
      expect(JSON.parse(out['why bobtrue'])).toMatchObject({ target: { kind: 'user', value: 'bob' }, devices: [{ identity: 'user:bob' }] });
      expect((JSON.parse(out['why 10.20.1.8true']) as { sightings: { kind: string }[] }).sightings.map((x) => x.kind)).toEqual(['release', 'lease']);
      expect(out['why nobodyfalse']).toBe('nothing known about nobody (user or host name)\n');
      expect((JSON.parse(out['decisions --mactrue']) as { decision: string }[]).map((x) => x.decision)).toEqual(['scanned', 'launched', 'due']);
      expect((JSON.parse(out['decisions --ip --sincetrue']) as { decision: string }[]).map((x) => x.decision)).toEqual(['scanned', 'launched']);
      expect(report.regions).toMatchObject([{ region: 'emea', seen: 4, scanned: 1, pending: 1, skipped: 1, missed: 1 }]);

      // a view's session cannot write, on either engine
      await expect(withStateView(config, 'test', (ro) => ro.scheduler.decide({ at: NOW, ip: '10.20.1.5', decision: 'due', reason: 'x' }))).rejects.toThrow(/read-?only/i);

      // rescan and skip: the marks land in the store the daemon reads
      expect(await runOperatorAction(config, { kind: 'ip', value: '10.20.1.5' }, { kind: 'rescan' }, NOW)).toBe(`rescan requested for mac:${A}: the running daemon makes it due now (its region's scan windows still apply)\n`);
      expect(await runOperatorAction(config, { kind: 'user', value: 'bob' }, { kind: 'skip', until: NOW + 7200_000 }, NOW))
        .toBe(`skipped user:bob until ${new Date(NOW + 7200_000).toISOString()}: not queued or launched before then (a scan already running is not cancelled)\n`);
      await expect(runOperatorAction(config, { kind: 'ip', value: '10.20.1.8' }, { kind: 'rescan' }, NOW)).rejects.toThrow('no device present under ip 10.20.1.8');
      const after = JSON.parse(await hostsView(ctx, true)) as { ip: string; status: string }[];
      expect(after.map((h) => h.status)).toEqual(['due', 'queued', 'skipped']); // bob's queue entry shows until the daemon drops it
      const marks = await store.scheduler.marksChangedSince(0);
      expect(marks.map((m) => [m.rescanAt !== undefined, m.skipUntil !== undefined])).toEqual([[false, true], [true, false], [false, true]]);
      out.after = await hostsView(ctx, false);
      outputs[kind.name] = out;
    }, 60_000);

    it('scan credits: written, replaced per device (the last of a batch wins), read since a time, pruned', async () => {
      const store = await kind.open(OPTS);
      const r = await store.inventory.commitBatch([1, 2, 3].map((i) => ({
        kind: 'lease', ip: `10.20.3.${i}`, mac: `52:54:00:00:03:0${i}`, at: new Date(NOW).toISOString(), format: 'isc-dhcpd', source: 'test',
      }) as never), [], NOW);
      const [a, b, c] = r.map((x) => x.identityId!);
      const sch = store.scheduler;
      await sch.saveScanCredits([]);
      await sch.saveScanCredits([
        { identityId: a, at: 1000, whole: false },
        { identityId: b, at: 2000, prev: 500, lease: { lastSeen: 1500, expiresAt: 5100 }, whole: true },
        { identityId: a, at: 3000, prev: 1000, whole: false }, // the same device twice in one batch
      ]);
      await sch.saveScanCredits([{ identityId: c, at: 4000, whole: false }]);
      const byId = (l: Awaited<ReturnType<typeof sch.scanCredits>>) => [...l].sort((x, y) => x.identityId - y.identityId);
      expect(byId(await sch.scanCredits(0))).toEqual([
        { identityId: a, at: 3000, prev: 1000, whole: false },
        { identityId: b, at: 2000, prev: 500, lease: { lastSeen: 1500, expiresAt: 5100 }, whole: true },
        { identityId: c, at: 4000, whole: false },
      ]);
      expect(byId(await sch.scanCredits(3000)).map((x) => x.identityId)).toEqual([a, c]);
      expect(await sch.pruneScanCredits(3500)).toBe(2);
      expect((await sch.scanCredits(0)).map((x) => x.identityId)).toEqual([c]);
      await store.close();
    });

    it('marks written at once over two connections (CLI and an API, two nodes) get distinct stamps: the daemon reading "newer than the last" misses none', async () => {
      const file = join(mkdtempSync(join(tmpdir(), 'onsight-vs-')), 'state.db');
      const s1 = await kind.open(OPTS, file);
      const s2 = kind.name === 'sqlite' ? await kind.open(OPTS, file) : new PgStore(new PgDb({ ...(s1 as PgStore).db.pool.options, max: 2 }), OPTS);
      try {
        const r = await s1.inventory.commitBatch(Array.from({ length: 40 }, (_, i) => ({
          kind: 'lease', ip: `10.20.2.${i + 1}`, mac: `52:54:00:00:02:${(i + 1).toString(16).padStart(2, '0')}`, at: new Date(NOW).toISOString(), format: 'isc-dhcpd', source: 'test',
        }) as never), [], NOW);
        const seen = await s1.scheduler.marksLastUpdate();
        await Promise.all(r.map((x, i) => (i % 2 ? s1 : s2).scheduler.requestRescan([x.identityId!], NOW)));
        const stamps = (await s1.scheduler.marksChangedSince(seen)).map((m) => m.updatedAt);
        expect(stamps.length).toBe(40);
        expect(new Set(stamps).size).toBe(40);
      } finally {
        if (kind.name === 'postgres') await s2.close();
      }
    }, 30_000);
  });
}

const pgKind = STORE_KINDS.find((k) => k.name === 'postgres')!;

describe.skipIf(!!pgKind.skip)('the same output on SQLite and PostgreSQL', () => {
  it('every view, why, the report and the hosts after rescan/skip print the same bytes', () => {
    expect(Object.keys(outputs.postgres ?? {}).length).toBeGreaterThan(20);
    for (const k of Object.keys(outputs.sqlite)) expect({ k, out: outputs.postgres[k] }).toEqual({ k, out: outputs.sqlite[k] });
  });
});

describe.skipIf(!!pgKind.skip)('onsight state copy --to postgres', () => {
  const daemons: Daemon[] = [];
  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => undefined);
  });

  it('copies and verifies; refuses a non-empty target and a file a daemon holds; a daemon on the copy sees the same hosts and last scans', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-copy-')), 'state.db');
    const sqlite = await STORE_KINDS[0].open(OPTS, file);
    await populate(sqlite, T);
    await sqlite.close();
    // a brand-new database on the test server: no onsight schema at all
    const admin = await pgKind.open(OPTS);
    const name = `onsight_copy_${process.pid}`;
    await (admin as PgStore).db.query(`CREATE DATABASE ${name}`);
    const state = { postgres: pgState(admin).postgres.replace(/\/\w+\?/, `/${name}?`) };
    const pgYaml = yamlFile({ ...BASE, state });
    // a view refuses an empty database and creates nothing there
    await expect(hostsView({ config: configFor(state), now: NOW }, false)).rejects.toThrow(/no onsight state in postgresql .*: the daemon has not run with this config yet/);
    const probe = new PgDb({ ...(admin as PgStore).db.pool.options, database: name, max: 1 });
    expect(await probe.row("SELECT to_regclass('onsight_schema')::text AS t")).toEqual({ t: null });
    await probe.close();

    // a daemon holds the SQLite file: refused, nothing copied
    const lock = lockStateFile(file);
    await expect(copyStateToPostgres(configFor(state), { from: file })).rejects.toThrow(/another onsight daemon is using/);
    lock.release();

    const run = spawnSync(process.execPath, [CLI, 'state', 'copy', '--to', 'postgres', '--from', file, '--config', pgYaml], { encoding: 'utf8' });
    expect(run.stderr).toContain('identities: 4 rows');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/copied .* to postgresql .*: 28 rows, counts verified/);
    for (const [table, n] of [['identities', 4], ['name_holders', 1], ['bindings', 4], ['sightings', 5], ['checkpoints', 1], ['positions', 1], ['queue', 1], ['intents', 1], ['intent_targets', 1], ['decisions', 6], ['operator_marks', 1], ['scan_credits', 1], ['learned_state', 1]] as const) {
      expect(run.stdout).toMatch(new RegExp(`\\n  ${table} +${n}\\n`));
    }
    const target = new PgStore(new PgDb({ ...(admin as PgStore).db.pool.options, database: name, max: 2 }), OPTS);
    const again = spawnSync(process.execPath, [CLI, 'state', 'copy', '--to', 'postgres', '--from', file, '--config', pgYaml], { encoding: 'utf8' });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/is not empty \(identities 4, name_holders 1, bindings 4, .*\): copy into an empty database, or pass --force/);

    // the views print the same from either state
    const sqliteCfg = configFor(file), pgCfg = configFor(state);
    expect(await hostsView({ config: pgCfg, now: NOW }, false)).toBe(await hostsView({ config: sqliteCfg, now: NOW }, false));
    expect(await whyView(pgCfg, A, true)).toBe(await whyView(sqliteCfg, A, true));

    // --force into a cluster node's config: the checkpoint and position become that node's; new ids continue past the copied ones
    const r = await copyStateToPostgres(configFor(state, { cluster: { node: 'n1' } }), { from: file, force: true });
    expect(r).toMatchObject({ node: 'n1', counts: { identities: 4, checkpoints: 1, positions: 1 } });
    expect(await target.inventory.checkpoint('n1:/var/log/dhcpd.log')).toMatchObject({ offset: 4096, fingerprint: 'ab12' });
    expect(await target.inventory.position('n1:http:ack')).toEqual({ seq: 7 });
    // the scan credit (second looks after a restart): the same row, the 0/1 flag a boolean
    expect(await target.scheduler.scanCredits(0)).toEqual([{ identityId: 1, at: T + 300_000, lease: { lastSeen: T, expiresAt: T + 7_200_000 }, whole: false }]);
    // what the scheduler learned (memory.ts): the same JSON, for the first leader to read back
    expect(await target.scheduler.learned()).toEqual([{ name: 'appliances', state: '{"slots":{"emea-sa-1":{"seen":2}},"othersSince":{}}', savedAt: T + 300_000 }]);
    const fresh = await target.inventory.commitBatch([{ kind: 'lease', ip: '10.20.1.99', mac: '52:54:00:00:01:99', at: new Date(NOW).toISOString(), format: 'isc-dhcpd', source: 'test' }]);
    expect(fresh[0].identityId).toBe(5);
    await copyStateToPostgres(pgCfg, { from: file, force: true }); // back to the plain copy

    // a daemon on the copy: A was scanned 15 min ago (not due), C is skipped, D left: only bob (queued) is launched
    await target.close();
    const d = new Daemon({ config: pgCfg, log: silentLogger(), tickMs: 100 });
    daemons.push(d);
    await d.start();
    expect(types.isProxy((d.scheduler as unknown as { core: { scanner: object } }).core.scanner)).toBe(false); // (no cluster: no term)
    const launched = await until(async () => (await d.scheduler.store.recentIntents(10)).filter((i) => i.id !== 'i-0001'), 15_000, 'a launch on the copy', 100)
      .then(async () => {
        await sleep(1000); // a few more ticks: nothing else becomes due
        const ips = [];
        for (const i of await d.scheduler.store.recentIntents(10)) if (i.id !== 'i-0001') ips.push(...(await d.scheduler.store.targets(i.id)).map((x) => x.ip));
        return ips;
      });
    expect(launched).toEqual(['10.20.1.6']);
    const a = await d.inventory.openBinding('10.20.1.5');
    expect(a).toMatchObject({ identityKey: `mac:${A}`, lastScannedAt: T + 300_000, lastScannedVia: 'onsight' });
    // with that daemon connected, even --force refuses
    await expect(copyStateToPostgres(pgCfg, { from: file, force: true })).rejects.toThrow(/an onsight daemon is connected to postgresql .*: stop it first/);
  }, 90_000);
});

describe.skipIf(!!pgKind.skip)('a cluster: marks through a follower, and the follower names the leader', () => {
  const daemons: Daemon[] = [];
  afterAll(async () => {
    for (const d of daemons.reverse()) await d.stop().catch(() => undefined);
  });

  it("a rescan through the follower's API or the CLI is honoured by the leader; /api/status and the page show role, leader, epoch and since", async () => {
    const db = await pgKind.open(OPTS);
    const state = pgState(db);
    process.env.TEST_OPS_TOKEN = 'pgviews-ops-token';
    const node = (name: string) => configFor(state, {
      cluster: { name: 'lab', node: name, leaseTtlS: 10, pollS: 0.25 }, // no failover wanted here, even on a loaded machine
      inputs: [{ type: 'syslog', listen: 'udp://127.0.0.1:0', format: 'isc-dhcpd' }],
      http: { listen: '127.0.0.1:0', tokens: [{ name: 'ops', env: 'TEST_OPS_TOKEN' }] },
    });
    const n1 = new Daemon({ config: node('n1'), log: silentLogger(), tickMs: 100 });
    daemons.push(n1);
    await n1.start();
    await until(() => n1.lease!.isLeader(), 10_000, 'n1 to lead', 50);
    const n2 = new Daemon({ config: node('n2'), log: silentLogger(), tickMs: 100 });
    daemons.push(n2);
    await n2.start();
    const auth = { authorization: 'Bearer pgviews-ops-token' };

    // a line reaches the follower only: the leader applies it and launches
    await udpSend(n2.inputs[0].address!.port, `<30>${new Date().toISOString()} gw dhcpd[7]: DHCPACK on 10.20.1.9 to 52:54:00:00:01:09 via eth0`);
    const finished = (n: number) => until(async () => {
      const scans = await db.history.scansTargeting({ ips: ['10.20.1.9'], identityIds: [] }, 10);
      return scans.length === n && scans.every((s) => s.state === 'finished') ? scans : undefined;
    }, 20_000, `${n} finished scan(s) of 10.20.1.9`, 100);
    await finished(1);

    const post = await fetch(`${n2.http!.url}/api/rescan`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ target: '10.20.1.9' }) });
    expect(post.status).toBe(200);
    expect(await post.json()).toMatchObject({ action: 'rescan', devices: ['mac:52:54:00:00:01:09'] });
    await finished(2);

    const yaml = yamlFile({ ...BASE, state });
    const cli = spawnSync(process.execPath, [CLI, 'rescan', '52:54:00:00:01:09', '--config', yaml], { encoding: 'utf8' });
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toContain('rescan requested for mac:52:54:00:00:01:09');
    await finished(3);
    // the leader's scheduler calls the scanner as its term's (termScanner: refused once n1 leads another
    // term); a single node's calls it plainly (below)
    const schedScanner = (d: Daemon) => (d.scheduler as unknown as { core: { scanner: object } }).core.scanner;
    expect(types.isProxy(schedScanner(n1))).toBe(true);
    // n1 led throughout (no step-down, no takeover) and launched all three
    expect({ n1: n1.lease!.metrics(), n2: n2.lease!.metrics() }).toMatchObject({ n1: { leader: 1, acquisitions: 1, stepDowns: 0 }, n2: { leader: 0, acquisitions: 0 } });
    expect([n1.scheduler.counters.launches, n2.scheduler.counters.launches]).toEqual([3, 0]);

    const why = await (await fetch(`${n2.http!.url}/api/why?target=10.20.1.9`, { headers: auth })).json() as { scans: unknown[]; decisions: { reason: string }[] };
    expect(why.scans.length).toBe(3);
    expect(why.decisions.some((x) => x.reason.includes('an operator asked for a rescan'))).toBe(true);

    const epoch = n1.lease!.currentEpoch();
    const s2 = await (await fetch(`${n2.http!.url}/api/status`, { headers: auth })).json() as { cluster: Record<string, unknown> };
    expect(s2.cluster).toMatchObject({ name: 'lab', node: 'n2', role: 'scheduler', state: 'follower', leader: 'n1', epoch });
    const since = Date.parse(s2.cluster.leaderSince as string);
    expect(Math.abs(since - Date.now())).toBeLessThan(120_000);
    const s1 = await (await fetch(`${n1.http!.url}/api/status`, { headers: auth })).json() as { cluster: Record<string, unknown> };
    expect(s1.cluster).toMatchObject({ node: 'n1', state: 'leader', leader: 'n1', epoch, leaderSince: s2.cluster.leaderSince });
    // state copy refuses a database whose cluster is running, even with --force
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-copy-')), 'state.db');
    await (await STORE_KINDS[0].open(OPTS, file)).close();
    await expect(copyStateToPostgres(configFor(state), { from: file, force: true })).rejects.toThrow(/cluster nodes are running on postgresql .*\(n1, n2\): stop every node first/);

    if (!hasChromium) return console.log(`SKIP the follower's status page in Chromium: ${CHROMIUM} is missing (apt-get install chromium)`);
    // the follower's page, rendered by a real browser, names the leader in its header
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage({ extraHTTPHeaders: auth });
      await page.goto(`${n2.http!.url}/`);
      const header = page.locator('#cluster');
      await until(async () => /epoch/.test((await header.textContent()) ?? ''), 10_000, 'the cluster line on the page', 100);
      expect(await header.textContent()).toMatch(new RegExp(`^node n2 · follower · leader n1 since .+ · epoch ${epoch}$`));
    } finally {
      await browser.close();
    }
  }, 120_000);
});

describe('table views at scale', () => {
  it('a table of 300,000 rows prints (some 125,000 overflowed the stack: "Maximum call stack size exceeded")', async () => {
    const { table } = await import('../src/cli/views.js');
    const rows = Array.from({ length: 300_000 }, (_, i) => [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `mac:02:00:00:${i}`]);
    rows[123_456][1] = 'mac:the-longest-value-of-all';
    const text = table(['ip', 'device'], rows);
    const lines = text.split('\n');
    expect(lines).toHaveLength(300_003); // headers, rule, rows, the final newline
    expect(lines[1]).toBe(`${'-'.repeat('10.4.147.224'.length)}  ${'-'.repeat('mac:the-longest-value-of-all'.length)}`);
  });
});
