// A leader whose clock runs 15 min ahead of the scanner's (cluster probe F2, session 41), with the
// real scheduler, the real Qualys client against the Qualys emulator (on real time) and the store
// and lease on a real PostgreSQL. A cluster's polls list scans by launch time, reaching back 10 min
// before our launch by our clock: the scanner had launched ours 15 min before that by its own, so
// the running scan was "no longer listed" after three polls, ended as an error and relaunched.
// Now a scan of ours a list leaves out is looked up by its reference first, the skew is learned
// from it, and later lists reach back by it.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { pgUnavailable } from './helpers/postgres.js';
import { clusterLab } from './helpers/cluster-lab.js';
import { QualysAllowance, QualysClient } from '../src/scanners/qualys/index.js';
import { Lease, leaseSendGuard } from '../src/cluster/lease.js';
import { openPostgresStore } from '../src/store/postgres/store.js';
import { fencedSchedulerStore } from '../src/daemon/cluster.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import type { SchedulerCore } from '../src/scheduler/core.js';
import { Policy } from '../src/policy/policy.js';
import type { Sighting } from '../src/sighting.js';

const why = pgUnavailable();
if (why) console.log(`skip cluster clock skew: ${why}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const regions = [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-sa-1', maxScans: 4 }], maxConcurrentScans: 4 }];
const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });
const AHEAD_MS = 15 * 60_000;

describe.skipIf(!!why)('a leader whose clock runs ahead of the scanner\'s (real PostgreSQL, Qualys emulator)', () => {
  // a host takes 10-20 min: the scan runs for the whole test
  const lab = clusterLab({ appliances: [{ name: 'emea-sa-1', capacity: 4 }], scanTiming: { submitDelaySec: 0, hostSecMin: 600, hostSecMax: 1200 } });

  it('its running scan is looked up by reference, not relaunched; the skew is learned and later polls need one list', async () => {
    const lease = new Lease({ connection: lab.server.connection, node: 'ahead', ttlMs: 20_000, pollMs: 100 });
    lab.closers.push(() => lease.stop());
    const store = await openPostgresStore({ ...lab.server.connection, max: 4 }, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 });
    lab.closers.push(() => store.close());
    const client = new QualysClient(
      { baseUrl: lab.emu.url, username: lab.emu.username, password: lab.emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0, retry: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 20 } },
      { log: pino({ level: 'silent' }), allowance: new QualysAllowance({ initialConcurrency: 1 }), sendGuard: leaseSendGuard(lease) },
    );
    lab.closers.push(() => client.close());
    await lease.start();
    const clock = { now: () => Date.now() + AHEAD_MS };
    const sched = new Scheduler(clock, store.inventory, policy, fencedSchedulerStore(store, lease, lease.currentEpoch()!), client,
      buildSchedulerOptions({
        regions, maxTargetsPerScan: 5, scanner: client, titlePrefix: 'lab', node: 'ahead', internal: { adaptivePolling: false },
        scheduler: { pollIntervalS: 0.2, applianceRefreshS: 60, verifyResults: false },
      }), pino({ level: 'silent' }));
    const [r] = await store.inventory.commitBatch([{ kind: 'lease', at: new Date(clock.now()).toISOString(), format: 'isc-dhcpd', source: 't', durationS: 7200, ip: '10.20.0.5', mac: '52:54:00:00:02:05' } as Sighting]);
    await sched.consider([r.bindingId!]);
    await sched.tick();
    expect(sched.counters.launches).toBe(1);
    // ten polls (three in a row without it ended the scan before)
    for (let k = 0; k < 10; k++) {
      await sleep(250);
      await sched.tick();
    }
    const scans = lab.emu.state.model.scans;
    const rows = (await lab.db.query("SELECT state FROM intents")).rows.map((x) => x.state);
    const ahead = (sched as unknown as { core: Partial<SchedulerCore> }).core.scannerClock?.aheadMs() ?? 0;
    console.log(`cluster clock skew: leader ${AHEAD_MS / 60_000} min ahead; learned ${(ahead / 60_000).toFixed(2)} min; launches ${sched.counters.launches}; scans on the platform ${scans.length}; intents ${rows.join(',')}`);
    expect(sched.counters.launches).toBe(1);
    expect(scans).toHaveLength(1);
    expect(rows).toEqual(['running']);
    expect(ahead).toBeGreaterThanOrEqual(AHEAD_MS - 5_000);
    expect(ahead).toBeLessThanOrEqual(AHEAD_MS + 5_000);
    // the skew learned: a poll's list by launch time finds the scan, with no look-up by reference after it
    const from = lab.emu.state.requests.length;
    await sleep(250);
    await sched.tick();
    const lists = lab.emu.state.requests.slice(from).filter((q) => q.api === 'scan' && q.action === 'list');
    expect(lists).toHaveLength(1);
    expect(lists[0].params.launched_after_datetime).toBeDefined();
    expect(lists[0].params.scan_ref).toBeUndefined();
    // a restart (or the next term) takes the skew back before its first list: reconcile reaches back by it
    await sched.saveLearned();
    const termOf = (node: string) => new Scheduler(clock, store.inventory, policy, fencedSchedulerStore(store, lease, lease.currentEpoch()!), client,
      buildSchedulerOptions({ regions, maxTargetsPerScan: 5, scanner: client, titlePrefix: 'lab', node, scheduler: { pollIntervalS: 0.2, verifyResults: false } }), pino({ level: 'silent' }));
    const next = termOf('ahead');
    await next.consider([]);
    expect((next as unknown as { core: SchedulerCore }).core.scannerClock.aheadMs()).toBe(ahead);
    // another node's term does not: its clock is not this one's (it took all 15 samples, and reached
    // back by none of its own skew until eight scans of its own)
    const other = termOf('behind');
    await other.consider([]);
    expect((other as unknown as { core: SchedulerCore }).core.scannerClock.aheadMs()).toBe(0);
    expect(other.learnedState().how).toMatch(/scanner-clock: learned by node ahead, not this node behind/);
    await lease.stop();
  }, 30_000);
});
