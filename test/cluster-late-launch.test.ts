// Fencing across a takeover, with the real scheduler, the real Qualys client against the Qualys
// emulator (every launch answered 2.5 s late, so a launch is in flight when the leader is deposed)
// and two nodes' stores and leases on a real PostgreSQL:
// - the deposed leader's launching → running is refused (it still believes it leads; the database
//   refuses), counted and not thrown; the new leader adopts the old epoch's scan by its intent id;
// - a launch that lands after the new leader abandoned its intent and relaunched the targets (a late
//   launch) is canceled in the new leader's next poll of the scan list, counted, logged and decided;
// - scans of another deployment (another cluster name as title prefix) are never touched, nor a scan of
//   ours whose intent we do not know and that duplicates nothing; one that duplicates an active scan is.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { pgUnavailable } from './helpers/postgres.js';
import { clusterLab } from './helpers/cluster-lab.js';
import { QualysAllowance, QualysClient } from '../src/scanners/qualys/index.js';
import { Lease, leaseSendGuard } from '../src/cluster/lease.js';
import type { FenceHolder } from '../src/cluster/fence.js';
import { openPostgresStore, type PgStore } from '../src/store/postgres/store.js';
import { fencedSchedulerStore } from '../src/daemon/cluster.js';
import { Scheduler, buildSchedulerOptions, newIntentId, systemClock } from '../src/scheduler/scheduler.js';
import { Policy } from '../src/policy/policy.js';
import { MetricsRegistry } from '../src/http/prom.js';
import { writeClusterMetrics } from '../src/cluster/metrics.js';
import type { Sighting } from '../src/sighting.js';

const why = pgUnavailable();
if (why) console.log(`skip cluster late launches: ${why}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const regions = [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-sa-1', maxScans: 8 }], maxConcurrentScans: 8 }];
const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });

describe.skipIf(!!why)('late launches and cross-epoch reconcile (real PostgreSQL, Qualys emulator)', () => {
  const lab = clusterLab({
    appliances: [{ name: 'emea-sa-1', capacity: 8 }],
    // scans stay running for minutes; every launch answer comes 2.5 s late (the scan is created then)
    faults: { slowShare: 1, slowMs: 2500, actions: ['launch'] },
    limits: { default: { limit: 300, windowSec: 3600, concurrency: 8 } },
  });

  const qualys = (opts: { lease?: Lease; concurrency?: number } = {}) => {
    const c = new QualysClient(
      { baseUrl: lab.emu.url, username: lab.emu.username, password: lab.emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 20 } },
      { log: pino({ level: 'silent' }), allowance: new QualysAllowance({ initialConcurrency: opts.concurrency ?? 1 }), sendGuard: opts.lease ? leaseSendGuard(opts.lease) : undefined },
    );
    lab.closers.push(() => c.close());
    return c;
  };

  /** one cluster member: its lease, its own pool on the shared database, its scanner client, and a scheduler per term */
  const member = async (node: string, ttlMs: number, reconcileGraceS: number) => {
    const lease = new Lease({ connection: lab.server.connection, node, ttlMs, pollMs: 100 });
    lab.closers.push(() => lease.stop());
    const store = await openPostgresStore({ ...lab.server.connection, max: 4 }, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 });
    lab.closers.push(() => store.close());
    const client = qualys({ lease });
    const logs: { msg: string; [k: string]: unknown }[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
    const scheduler = (epoch: number) => new Scheduler(systemClock, store.inventory, policy, fencedSchedulerStore(store, lease, epoch), client,
      buildSchedulerOptions({
        regions, maxTargetsPerScan: 5, scanner: client, titlePrefix: 'lab',
        scheduler: { pollIntervalS: 0.2, applianceRefreshS: 0.2, reconcileGraceS, verifyResults: false },
      }), log);
    return { lease, store, client, logs, scheduler };
  };

  const see = async (store: PgStore, sched: Scheduler, ip: string, n: number) => {
    const [r] = await store.inventory.commitBatch([{ kind: 'lease', at: new Date().toISOString(), format: 'isc-dhcpd', source: 't', durationS: 3600, ip, mac: `52:54:00:00:01:${n.toString(16).padStart(2, '0')}` } as Sighting]);
    await sched.consider([r.bindingId!]);
    return r;
  };
  const intentRow = async (where: string) => (await lab.db.query(`SELECT id, state, epoch::int AS epoch, scan_ref FROM intents WHERE ${where}`)).rows;
  const until = async (what: string, f: () => Promise<boolean>, ms = 5000) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (await f()) return;
    throw new Error(`timed out waiting for ${what}`);
  };
  /** depose the holder behind its back (as a takeover after a pause does): it still believes it leads */
  const expireLease = () => lab.db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second' WHERE name = 'scheduler'");

  it('a deposed leader\'s launching → running is refused by the database; the new leader adopts the old epoch\'s scan by its intent id', async () => {
    const a = await member('la', 20_000, 60);
    await a.lease.start();
    const epochA = a.lease.currentEpoch()!;
    const schedA = a.scheduler(epochA);
    await see(a.store, schedA, '10.20.0.11', 1);
    const launching = schedA.tick(); // the launch call is out for 2.5 s
    await until('the intent of epoch A', async () => (await intentRow(`epoch = ${epochA}`)).length === 1);
    const [{ id }] = await intentRow(`epoch = ${epochA}`);
    await expireLease();
    const b = await member('lb', 3000, 2);
    await b.lease.start();
    const epochB = b.lease.currentEpoch()!;
    expect(epochB).toBe(epochA + 1);
    expect(a.lease.isLeader()).toBe(true); // a has not noticed: only the database can refuse it
    await expect(launching).resolves.toBeUndefined(); // the scan exists now; recording it is refused, not thrown
    expect(schedA.counters.transitionsRefused).toBe(1);
    expect(schedA.counters.launches).toBe(0);
    expect(a.logs.some((l) => l.msg.includes(`scan intent ${id}`) && l.msg.includes('refused'))).toBe(true);
    expect(await intentRow(`id = '${id}'`)).toEqual([{ id, state: 'launching', epoch: epochA, scan_ref: null }]);

    // any later write of a's term is refused too, even with its lease still unexpired in its own view
    const stale: FenceHolder = { node: 'la', leaseName: 'scheduler', currentEpoch: () => epochA, assertLeader: () => undefined, remainingMs: () => 5000 };
    expect(await fencedSchedulerStore(a.store, stale, epochA).endIntent(id, 'abandoned', Date.now(), 'stale', { notBefore: 0, countAttempt: false })).toBe(false);

    // b's reconcile waits for the old epoch's intent to ripen (its grace since b's term began): at the
    // takeover it reads nothing; then one list finds the scan by the intent id in its title and adopts it
    const calls = lab.emu.state.requests.length;
    const schedB = b.scheduler(epochB); // its term's scheduler (the daemon builds it at the takeover)
    await schedB.reconcile();
    expect(lab.emu.state.requests.slice(calls).map((r) => `${r.api} ${r.action ?? ''}`)).toEqual([]);
    expect(await intentRow(`id = '${id}'`)).toEqual([{ id, state: 'launching', epoch: epochA, scan_ref: null }]);
    await sleep(2100);
    await schedB.reconcile();
    const [row] = await intentRow(`id = '${id}'`);
    expect(row).toMatchObject({ state: 'running', epoch: epochA });
    expect(row.scan_ref).toMatch(/^scan\//);
    expect(schedB.counters.adoptedAcrossEpochs).toBe(1);
    expect(schedB.counters.lateLaunchesCanceled).toBe(0); // the adopted scan is not a late one
    expect(b.logs.some((l) => l.msg.includes(`taking over 1 unconfirmed`))).toBe(true);
    const spent = lab.emu.state.requests.slice(calls).filter((r) => r.api !== 'session').length;
    console.log(`cluster late launch: the new leader adopted the old epoch's in-flight launch with ${spent} API call(s) besides its session login`);
    expect(spent).toBe(1);
    await a.lease.stop();
    await b.lease.stop();
  }, 20_000);

  it('a late launch after the new leader relaunched its targets is canceled within one poll and counted; another cluster\'s scans are left alone', async () => {
    await expireLease();
    const a = await member('ma', 20_000, 0.3);
    await a.lease.start();
    const epochA = a.lease.currentEpoch()!;
    const schedA = a.scheduler(epochA);
    const ip = '10.20.0.21';
    await see(a.store, schedA, ip, 2);
    const launching = schedA.tick();
    await until('the intent of epoch A', async () => (await intentRow(`epoch = ${epochA}`)).length === 1);
    const [{ id: late }] = await intentRow(`epoch = ${epochA}`);
    await expireLease();
    const b = await member('mb', 3000, 0.3);
    await b.lease.start();
    const schedB = b.scheduler(b.lease.currentEpoch()!);
    await sleep(350); // past the grace since b's term began: a's launch has not landed yet, so b abandons it
    const relaunch = schedB.tick();
    await until('a\'s intent abandoned', async () => (await intentRow(`id = '${late}'`))[0].state === 'abandoned');
    // meanwhile (their launches are out while b's relaunch is): a scan of another deployment on the same
    // address, one of ours we do not know that duplicates b's scan, and one of ours we do not know that duplicates nothing
    const other = qualys({ concurrency: 3 });
    const others = Promise.all([
      other.launch({ intentId: newIntentId(Date.now()), title: `lab2 ${newIntentId(Date.now())} emea`, targets: [ip], appliance: 'emea-sa-1' }),
      other.launch({ intentId: newIntentId(Date.now()), title: `lab ${newIntentId(Date.now())} emea`, targets: [ip], appliance: 'emea-sa-1' }),
      other.launch({ intentId: newIntentId(Date.now()), title: `lab ${newIntentId(Date.now())} emea`, targets: ['10.20.0.99'], appliance: 'emea-sa-1' }),
    ]);
    await launching; // a's launch lands now, after its intent was abandoned: a late launch
    expect(schedA.counters.transitionsRefused).toBe(1);
    await relaunch; // b relaunched the same target
    const [mine] = await intentRow(`epoch = ${b.lease.currentEpoch()} AND state = 'running'`);
    expect(mine).toBeDefined();
    expect(schedB.counters.abandoned).toBe(1);
    const [foreign, dup, orphan] = await others;
    const scansBefore = await other.listScans({});
    const lateScan = scansBefore.find((s) => s.title.includes(late))!;
    expect(lateScan).toBeDefined();

    // b's next pass: one list of the scans finds the late launch and the duplicate
    const from = lab.emu.state.requests.length;
    const t0 = Date.now();
    await schedB.tick();
    const ms = Date.now() - t0;
    const calls = lab.emu.state.requests.slice(from).filter((r) => r.api === 'scan');
    const lists = calls.filter((r) => r.action === 'list').length;
    const cancels = calls.filter((r) => r.action === 'cancel').map((r) => r.params.scan_ref);
    const state = async (ref: string) => (await other.listScans({ scanRefs: [ref] }))[0]?.state;
    console.log(`cluster late launch: the new leader's first pass after the late launch landed canceled ${cancels.length} scan(s) (the late launch and a duplicate) with ${lists} list call(s) in ${ms} ms; late launches counted: ${schedB.counters.lateLaunchesCanceled}; another cluster's scan and an unmatched one left alone`);
    expect(lists).toBe(1);
    expect(cancels.sort()).toEqual([lateScan.scanRef, dup.scanRef].sort());
    expect(await state(lateScan.scanRef)).toBe('canceled');
    expect(await state(dup.scanRef)).toBe('canceled');
    expect(await state(foreign.scanRef)).not.toBe('canceled'); // another cluster's: never touched
    expect(await state(orphan.scanRef)).not.toBe('canceled');
    expect(await state(mine.scan_ref)).not.toBe('canceled');
    expect(schedB.counters.lateLaunchesCanceled).toBe(2);
    expect(b.logs.filter((l) => l.msg.startsWith('late launch canceled')).length).toBe(2);
    const decisions = (await lab.db.query("SELECT ip, reason FROM decisions WHERE decision = 'canceled'")).rows;
    expect(decisions).toEqual(expect.arrayContaining([expect.objectContaining({ ip, reason: expect.stringContaining(`late launch canceled: scan ${lateScan.scanRef}`) })]));

    // the next pass does not cancel them again
    await sleep(250);
    await schedB.tick();
    expect(schedB.counters.lateLaunchesCanceled).toBe(2);

    const w = new MetricsRegistry({ processMetrics: false });
    writeClusterMetrics(w, { node: 'mb', lease: b.lease.metrics(), fencing: { ...schedB.counters } });
    expect(await w.render()).toContain('onsight_cluster_late_launches_canceled_total 2');
    await a.lease.stop();
    await b.lease.stop();
  }, 20_000);

  it('with no scan of its own running (no poll to make), the leader still reads the scan list within a poll interval and cancels a late launch', async () => {
    await expireLease();
    await lab.db.query('TRUNCATE intent_targets, queue, intents'); // the scans of the tests above are no longer ours to follow
    const c = await member('wc', 3000, 60);
    await c.lease.start();
    const sched = c.scheduler(c.lease.currentEpoch()!);
    await sched.tick(); // start-up pass: nothing in flight
    // nothing given up or adopted lately: no late launch can be on its way, and no list is read (the idle pace is 60 polls)
    const quiet = lab.emu.state.requests.length;
    await sleep(250);
    await sched.tick();
    expect(lab.emu.state.requests.slice(quiet).filter((q) => q.action === 'list')).toHaveLength(0);
    // an earlier epoch's intent, abandoned; its deposed leader's launch lands only now
    const r = await see(c.store, sched, '10.20.0.31', 3);
    const id = newIntentId(Date.now());
    await c.store.scheduler.createIntent({ id, region: 'emea', appliance: 'emea-sa-1', createdAt: Date.now(), epoch: c.lease.currentEpoch()! - 1 },
      [{ ip: '10.20.0.31', identityId: r.identityId!, bindingId: r.bindingId! }]);
    await c.store.scheduler.endIntent(id, 'abandoned', Date.now(), 'not found', { notBefore: Date.now() + 3_600_000, countAttempt: false });
    const late = await qualys().launch({ intentId: id, title: `lab ${id} emea`, targets: ['10.20.0.31'], appliance: 'emea-sa-1' });
    expect((await c.store.scheduler.activeIntents())).toHaveLength(0);
    await sleep(250); // one pollIntervalS (0.2 s) since the last look
    const from = lab.emu.state.requests.length;
    await sched.tick();
    const calls = lab.emu.state.requests.slice(from).filter((q) => q.api === 'scan');
    expect(calls.filter((q) => q.action === 'list')).toHaveLength(1);
    expect(calls.filter((q) => q.action === 'cancel').map((q) => q.params.scan_ref)).toEqual([late.scanRef]);
    expect(sched.counters.lateLaunchesCanceled).toBe(1);
    await c.lease.stop();
  }, 20_000);
});
