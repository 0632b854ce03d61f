/**
 * The clock skew learned (skew.ts) belongs to the node whose clock recorded the launch times. The
 * samples are kept across restarts through the store, which a cluster shares: a new leader whose
 * clock was right took the old leader's 15 min ahead, until 15 scans of its own replaced them, and
 * its polls of the old leader's scans added more of the old leader's clock to its own. With the
 * real scheduler, the real Qualys client against the Qualys emulator (on real time), the store and
 * the leases on a real PostgreSQL. Then the saved state's forms, on a single node and in a cluster.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { pgUnavailable } from './helpers/postgres.js';
import { clusterLab } from './helpers/cluster-lab.js';
import { QualysAllowance, QualysClient } from '../src/scanners/qualys/index.js';
import { Lease, leaseSendGuard } from '../src/cluster/lease.js';
import { openPostgresStore, type PgStore } from '../src/store/postgres/store.js';
import { fencedSchedulerStore } from '../src/daemon/cluster.js';
import { Scheduler, buildSchedulerOptions, type Clock } from '../src/scheduler/scheduler.js';
import type { SchedulerCore } from '../src/scheduler/core.js';
import { ScannerClock } from '../src/scheduler/skew.js';
import { Refused } from '../src/scheduler/memory.js';
import { Policy } from '../src/policy/policy.js';
import type { Sighting } from '../src/sighting.js';
import { T0, mac, setup } from './helpers/scheduler.js';

const why = pgUnavailable();
if (why) console.log(`skip clock skew per node: ${why}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const regions = [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-sa-1', maxScans: 4 }], maxConcurrentScans: 4 }];
const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });
const AHEAD_MS = 15 * 60_000;
const aheadOf = (s: Scheduler) => (s as unknown as { core: SchedulerCore }).core.scannerClock.aheadMs();

describe.skipIf(!!why)('a new leader whose clock differs from the old leader\'s (real PostgreSQL, Qualys emulator)', () => {
  // real time, moved on by the test (`later`): the platform's clock, and the nodes' (a's 15 min ahead of it)
  let shift = 0;
  const real = () => Date.now() + shift;
  // a host takes 2-3 h: the scans run for the whole test
  const lab = clusterLab({ appliances: [{ name: 'emea-sa-1', capacity: 4 }], scanTiming: { submitDelaySec: 0, hostSecMin: 7200, hostSecMax: 10800 }, now: real });

  /** one cluster member: its lease, its pool on the shared database, its scanner client, its clock */
  const member = async (node: string, clock: Clock) => {
    const lease = new Lease({ connection: lab.server.connection, node, ttlMs: 20_000, pollMs: 100 });
    lab.closers.push(() => lease.stop());
    const store = await openPostgresStore({ ...lab.server.connection, max: 4 }, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 });
    lab.closers.push(() => store.close());
    const client = new QualysClient(
      { baseUrl: lab.emu.url, username: lab.emu.username, password: lab.emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 20 } },
      { log: pino({ level: 'silent' }), allowance: new QualysAllowance({ initialConcurrency: 1 }), sendGuard: leaseSendGuard(lease) },
    );
    lab.closers.push(() => client.close());
    /** this node's scheduler for the term it leads now */
    const term = () => new Scheduler(clock, store.inventory, policy, fencedSchedulerStore(store, lease, lease.currentEpoch()!), client,
      buildSchedulerOptions({
        regions, maxTargetsPerScan: 5, scanner: client, titlePrefix: 'lab', internal: { adaptivePolling: false },
        scheduler: { pollIntervalS: 0.2, applianceRefreshS: 60, verifyResults: false },
      }), pino({ level: 'silent' }));
    return { lease, store, term, clock };
  };
  const see = async (m: { store: PgStore; clock: Clock }, sched: Scheduler, ip: string, n: number) => {
    const [r] = await m.store.inventory.commitBatch([{ kind: 'lease', at: new Date(m.clock.now()).toISOString(), format: 'isc-dhcpd', source: 't', durationS: 7200, ip, mac: mac(n) } as Sighting]);
    await sched.consider([r.bindingId!]);
  };
  const polls = async (sched: Scheduler, n: number) => {
    for (let k = 0; k < n; k++) {
      await sleep(250);
      await sched.tick();
    }
  };
  const saved = async () => JSON.parse((await lab.db.query("SELECT state FROM learned_state WHERE name = 'scanner-clock'")).rows[0].state) as { nodes: Record<string, { samples: number[]; terms: number[] }> };

  it('the old leader\'s skew is not the new leader\'s, nor are its polls of the old leader\'s scans; the old leader, leading again, has its own back', async () => {
    // a: 15 min ahead of the platform; launches a scan, learns the skew, stops (writing what it learned)
    const a = await member('node-a', { now: () => real() + AHEAD_MS });
    await a.lease.start();
    const epochA = a.lease.currentEpoch()!;
    const schedA = a.term();
    await see(a, schedA, '10.20.0.5', 5);
    await schedA.tick();
    expect(schedA.counters.launches).toBe(1);
    await polls(schedA, 4);
    expect(aheadOf(schedA)).toBeGreaterThanOrEqual(AHEAD_MS - 5_000);
    expect(aheadOf(schedA)).toBeLessThanOrEqual(AHEAD_MS + 5_000);
    await schedA.saveLearned();
    await a.lease.stop();

    // b: its clock right; takes over with a's scan still running
    const b = await member('node-b', { now: real });
    await b.lease.start();
    const epochB = b.lease.currentEpoch()!;
    expect(epochB).toBeGreaterThan(epochA);
    const schedB = b.term();
    await schedB.consider([]); // what was learned is read back before anything else
    expect(aheadOf(schedB)).toBe(0);
    expect(schedB.learnedState().restored.find((x) => x.startsWith('clock'))).toMatch(/^clock 0 s ahead of the scanner's \(0 scans of this node's; 1 of 1 other node\(s\) kept, not used\)$/);
    // its polls sample a's scan (a's clock recorded its launch): a's clock, not b's
    await polls(schedB, 3);
    expect(aheadOf(schedB)).toBe(0);
    // 20 min into b's term (its lists no longer reach back to its start): a's running scan, dated
    // by a's clock, is put on the scanner's by a's skew, so the lists by launch time find it with
    // no look-up by reference (one more call a poll), and it is not relaunched
    shift += 20 * 60_000;
    const from = lab.emu.state.requests.length;
    await polls(schedB, 4);
    const lists = lab.emu.state.requests.slice(from).filter((q) => q.api === 'scan' && q.action === 'list');
    expect(lists.length).toBeGreaterThanOrEqual(3);
    expect(lists.filter((q) => q.params.scan_ref !== undefined)).toEqual([]);
    expect(lab.emu.state.model.scans).toHaveLength(1);
    // b's own scan: its own clock's sample
    await see(b, schedB, '10.20.0.6', 6);
    await schedB.tick();
    expect(schedB.counters.launches).toBe(1);
    await polls(schedB, 4);
    expect(aheadOf(schedB)).toBeLessThan(5_000);
    await schedB.saveLearned();
    const state = await saved();
    expect(Object.keys(state.nodes).sort()).toEqual(['node-a', 'node-b']);
    expect(state.nodes['node-b'].terms).toEqual([epochB]);
    expect(state.nodes['node-b'].samples).toHaveLength(1);
    expect(Math.abs(state.nodes['node-b'].samples[0])).toBeLessThan(5_000);
    // a's scan, sampled by b, is a's clock: two samples of a's now, both 15 min
    expect(state.nodes['node-a'].terms).toEqual([epochA]);
    expect(state.nodes['node-a'].samples).toHaveLength(2);
    for (const s of state.nodes['node-a'].samples) expect(Math.abs(s - AHEAD_MS)).toBeLessThan(5_000);
    console.log(`clock skew per node: a ${AHEAD_MS / 60_000} min ahead, b right; b learned ${(aheadOf(schedB) / 1000).toFixed(1)} s; a's samples ${state.nodes['node-a'].samples.map((s) => (s / 60_000).toFixed(2)).join(', ')} min`);
    await b.lease.stop();

    // a leads again (a new term): its own skew comes back before its first list
    const a2 = await member('node-a', a.clock);
    await a2.lease.start();
    const schedA2 = a2.term();
    await schedA2.consider([]);
    expect(aheadOf(schedA2)).toBeGreaterThanOrEqual(AHEAD_MS - 5_000);
    expect(aheadOf(schedA2)).toBeLessThanOrEqual(AHEAD_MS + 5_000);
    await a2.lease.stop();
  }, 30_000);
});

describe('the clock skew\'s saved state: whose samples', () => {
  const viaJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
  const iso = (ms: number) => new Date(ms).toISOString();

  it('a single node: every sample its own, saved as before; an earlier version\'s samples taken back', () => {
    const c = new ScannerClock();
    c.note('s1', T0 + 60_000, iso(T0));
    c.note('s2', T0 + 60_000, iso(T0), 4); // (a cluster term's scan in a single node's store: not its clock)
    expect(c.snapshot()).toEqual({ samples: [60_000] });
    const again = new ScannerClock();
    expect(again.merge(viaJson({ samples: [60_000, 70_000, 80_000] }))).toBe('clock 70 s ahead of the scanner\'s (3 scans)');
    expect(again.aheadMs()).toBe(70_000);
    expect(again.merge({ nodes: { a: { samples: [1], terms: [1] } } })).toEqual(new Refused('samples of a cluster\'s nodes: a single node cannot tell which were its own clock\'s'));
  });

  it('a cluster node: samples without a node are not taken; others\' are kept and written back; a term\'s scans are its leader\'s', () => {
    const b = new ScannerClock('b', 5);
    const old = b.merge(viaJson({ samples: [900_000, 900_000] }));
    expect(old).toBeInstanceOf(Refused);
    expect((old as Refused).why).toMatch(/^2 sample\(s\) not attributed to a node/);
    expect(b.aheadMs()).toBe(0);
    expect(b.merge(viaJson({ nodes: { a: { samples: [900_000], terms: [3, 4] }, b: { samples: [1_000], terms: [2] } } }))).toBe('clock 1 s ahead of the scanner\'s (1 scans of this node\'s; 1 of 1 other node(s) kept, not used)');
    b.note('of-a', T0 + 900_000, iso(T0), 4); // a's scan, polled by b
    b.note('of-b-before', T0 + 2_000, iso(T0), 2); // b's own earlier term's
    b.note('of-b', T0 + 3_000, iso(T0), 5); // this term's
    b.note('of-nobody-known', T0 + 500_000, iso(T0), 1); // a term nobody's saved state names
    expect(b.snapshot()).toEqual({ nodes: { b: { samples: [1_000, 2_000, 3_000], terms: [2, 5] }, a: { samples: [900_000, 900_000], terms: [3, 4] } } });
    expect(b.aheadMs()).toBe(2_000);
    // a time a's term recorded is put on the scanner's clock by a's skew; this node's terms, and a term nobody is known to have led, by its own
    expect([b.aheadMsOf(4), b.aheadMsOf(3), b.aheadMsOf(5), b.aheadMsOf(2), b.aheadMsOf(1)]).toEqual([900_000, 900_000, 2_000, 2_000, 2_000]);
    // strict: a term two nodes claim, a bad sample, a node without terms
    for (const [bad, why] of [
      [{ nodes: { a: { samples: [], terms: [3] }, c: { samples: [], terms: [3] } } }, 'term 3 led by both a and c'],
      [{ nodes: { a: { samples: [2 * 86_400_000], terms: [3] } } }, 'node a: samples not up to 15 skews of at most a day'],
      [{ nodes: { a: { samples: [] } } }, 'node a: not { samples, terms }'],
      [{ nodes: { a: { samples: [], terms: [0] } } }, 'node a: terms not up to 8 lease epochs'],
    ] as const) expect(new ScannerClock('b', 5).merge(bad)).toEqual(new Refused(why));
  });

  it('a single node\'s scheduler takes back its skew from a store an earlier version wrote', async () => {
    const t = await setup();
    await t.sched.tick();
    await t.store.saveLearned([{ name: 'scanner-clock', state: '{"samples":[120000,120000,120000]}', savedAt: t.clock.t }]);
    const again = t.restart();
    await again.tick();
    expect(again.learnedState().restored).toContain('clock 120 s ahead of the scanner\'s (3 scans)');
    expect(aheadOf(again)).toBe(120_000);
  });
});
