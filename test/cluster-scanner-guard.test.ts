// The scanner transport's cluster guard: the real Qualys client against the Qualys emulator, with the
// send guard of a real lease on a real PostgreSQL. The leader launches; once it stepped down nothing is
// sent; a launch waiting at the allowance gate is aborted when leadership ends, not sent later.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { QualysAllowance, QualysClient } from '../src/scanners/qualys/index.js';
import { Lease, leaseSendGuard, termScanner } from '../src/cluster/lease.js';
import { migrateCluster } from '../src/cluster/schema.js';
import { FencedError } from '../src/errors.js';
import { startTenableEmulator } from '../src/emulator/tenable/index.js';
import { TenableClient } from '../src/scanners/tenable/client.js';

const why = pgUnavailable();
if (why) console.log(`skip cluster scanner guard: ${why}`);

describe.skipIf(!!why)('cluster send guard on the Qualys transport (real PostgreSQL, Qualys emulator)', () => {
  let server: PgServer;
  let db: pg.Client;
  let emu: QualysEmulator;
  const closers: { close?(): Promise<void>; stop?(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = startPostgres();
    db = new pg.Client(server.connection);
    await db.connect();
    await migrateCluster(db);
    emu = await startQualysEmulator({ speed: 1000, appliances: [{ name: 'sa-1', capacity: 4 }] });
  });
  afterAll(async () => {
    for (const c of closers) await (c.close?.() ?? c.stop?.())?.catch(() => undefined);
    await emu?.close();
    await db?.end().catch(() => undefined);
    server?.destroy();
  });

  const client = async (name: string) => {
    const lease = new Lease({ connection: server.connection, node: name, ttlMs: 6000, pollMs: 200 });
    closers.push(lease);
    await lease.start();
    const allowance = new QualysAllowance();
    const c = new QualysClient(
      { baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, throttle: { maxWaitSec: 600 } },
      { log: pino({ level: 'silent' }), allowance, sendGuard: leaseSendGuard(lease) },
    );
    closers.push(c);
    return { lease, c, allowance };
  };
  const scans = async (c: QualysClient) => (await c.listScans({})).length;

  it('the leader sends; after stepping down it sends nothing', async () => {
    const { lease, c } = await client('g-a');
    expect(lease.isLeader()).toBe(true);
    await c.launch({ intentId: 'int-g1', title: 'onsight int-g1', targets: ['10.1.0.1'], appliance: 'sa-1' });
    expect(await scans(c)).toBe(1);
    const pid = (await db.query('SELECT holder_pid FROM cluster_lease')).rows[0].holder_pid;
    const down = new Promise((r) => lease.once('follower', r));
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    await down;
    const err = await c.launch({ intentId: 'int-g2', title: 'onsight int-g2', targets: ['10.1.0.2'], appliance: 'sa-1' }).catch((e) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(err.message).toMatch(/node g-a is not the leader/);
    const reader = new QualysClient({ baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options' }, { log: pino({ level: 'silent' }) });
    closers.push(reader);
    expect(await scans(reader)).toBe(1); // int-g2 never reached the scanner
    await lease.stop();
  });

  it('a launch waiting at the allowance gate is aborted when leadership ends', async () => {
    await db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second'");
    const { lease, c, allowance } = await client('g-b');
    expect(lease.isLeader()).toBe(true);
    allowance.block('scan', 300); // Qualys said: no scan API calls for 5 minutes
    const t0 = performance.now();
    const pending = c.launch({ intentId: 'int-g3', title: 'onsight int-g3', targets: ['10.1.0.3'], appliance: 'sa-1' }).then(() => 'sent', (e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));
    const pid = (await db.query('SELECT holder_pid FROM cluster_lease')).rows[0].holder_pid;
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    const out = await pending;
    const ms = performance.now() - t0;
    console.log(`cluster send guard: a launch waiting at the allowance gate ended ${Math.round(ms)} ms after it began (leadership ended at ~300 ms)`);
    expect(out).toBeInstanceOf(FencedError);
    expect(ms).toBeLessThan(5000);
    const reader = new QualysClient({ baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options' }, { log: pino({ level: 'silent' }) });
    closers.push(reader);
    expect((await reader.listScans({})).some((s) => s.title.includes('int-g3'))).toBe(false);
  });

  it('the Tenable transport (shared JSON transport) sends nothing once leadership ended', async () => {
    await db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second'");
    const lease = new Lease({ connection: server.connection, node: 'g-t', ttlMs: 6000, pollMs: 200 });
    closers.push(lease);
    await lease.start();
    expect(lease.isLeader()).toBe(true);
    const e = await startTenableEmulator({ seed: 7, scanners: [{ name: 'tn-1' }] });
    closers.push(e);
    const c = new TenableClient({ baseUrl: e.url, apiKeys: e.apiKeys, template: 'Basic Network Scan', reconcileDelayMs: 0, maxAttempts: 2, baseDelayMs: 5, maxRetryAfterS: 0, appliances: ['tn-1'], sendGuard: leaseSendGuard(lease) });
    await c.launch({ intentId: 'int-t1', title: 'onsight int-t1', targets: ['10.1.0.9'], appliance: 'tn-1' });
    const sent = e.requests.length;
    expect(sent).toBeGreaterThan(0);
    const pid = (await db.query('SELECT holder_pid FROM cluster_lease')).rows[0].holder_pid;
    const down = new Promise((r) => lease.once('follower', r));
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    await down;
    const err = await c.launch({ intentId: 'int-t2', title: 'onsight int-t2', targets: ['10.1.0.10'], appliance: 'tn-1' }).catch((x) => x);
    expect(err).toBeInstanceOf(FencedError);
    expect(e.requests.length).toBe(sent); // not one request reached the scanner
  });

  it('a call of an earlier term is refused once the node leads again under a new epoch; the new term\'s goes', async () => {
    for (const x of closers) if (x instanceof Lease) await x.stop(); // (the earlier tests' nodes: none may take the lease over)
    await db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second'");
    const { lease, c, allowance } = await client('g-e');
    expect(lease.isLeader()).toBe(true);
    const first = lease.currentEpoch()!;
    const oldTerm = termScanner(c, first);
    await oldTerm.launch({ intentId: 'int-e1', title: 'onsight int-e1', targets: ['10.1.0.21'], appliance: 'sa-1' });
    // the lease is lost (its session killed) and won back by the same node: a new epoch
    const back = new Promise<{ epoch: number }>((r) => lease.once('leader', r));
    const pid = (await db.query('SELECT holder_pid FROM cluster_lease')).rows[0].holder_pid;
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    const { epoch } = await back;
    expect(epoch).toBeGreaterThan(first);
    expect(lease.isLeader()).toBe(true);
    // the old term's pass goes on with a launch it decided before: refused (before: sent, the node leads),
    // at once, not after waiting at the allowance gate
    allowance.block('scan', 8);
    const t0 = performance.now();
    const err = await oldTerm.launch({ intentId: 'int-e2', title: 'onsight int-e2', targets: ['10.1.0.22'], appliance: 'sa-1' }).catch((x) => x);
    expect(err).toBeInstanceOf(FencedError);
    expect(performance.now() - t0).toBeLessThan(4000); // (before: the 8 s wait, then refused)
    expect(err.message).toMatch(new RegExp(`decided under epoch ${first}, node g-e now leads epoch ${epoch}`));
    await termScanner(c, epoch).launch({ intentId: 'int-e3', title: 'onsight int-e3', targets: ['10.1.0.23'], appliance: 'sa-1' });
    const titles = (await c.listScans({})).map((x) => x.title);
    expect(titles.filter((t) => /int-e[123]/.test(t)).sort()).toEqual(['onsight int-e1', 'onsight int-e3']);
    await lease.stop();
  });
});
