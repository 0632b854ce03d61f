/**
 * A queued device keeps no stale region: after a reload (SIGHUP) or a restart with regions that
 * map its address elsewhere, it waits, and is launched, under its new region and that region's
 * appliances; one whose new region is gone leaves the queue instead of waiting for ever.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Policy } from '../src/policy/policy.js';
import { Scheduler, buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { silentLogger } from '../src/log.js';
import { mac, setup } from './helpers/scheduler.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-region-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** the harness's regions, with 10.20.0.0/16 handed to amer (emea keeps another network) */
const moved = [
  { name: 'emea', cidrs: ['10.21.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1 },
  { name: 'amer', cidrs: ['10.30.0.0/16', '10.20.0.0/16'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2 },
];
const policyFor = (regions: typeof moved) => new Policy({ scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });

describe('a queued device follows its address to its region', () => {
  it('after a reload: moved while waiting, launched on the new region\'s appliance', async () => {
    const { sched, see, store, scanner } = await setup();
    await see({ ip: '10.20.1.5', mac: mac(5) });
    expect((await store.allQueued()).map((q) => q.region)).toEqual(['emea']);
    sched.reconfigure(policyFor(moved), buildSchedulerOptions({ regions: moved, maxTargetsPerScan: 3, scanner, scheduler: { pollIntervalS: 60, verifyResults: false } }));
    await sched.sweep();
    expect((await store.allQueued()).map((q) => q.region)).toEqual(['amer']);
    expect((await store.recentDecisions(1))[0]).toMatchObject({ decision: 'due', reason: expect.stringMatching(/now in region amer .*was queued under emea/) });
    await sched.tick();
    expect(scanner.launches.map((l) => l.appliance)).toEqual(['amer-1']);
  });

  it('after a restart on the same state file with new regions: the first sweep moves it', async () => {
    const state = join(dir, 'restart.db');
    const first = await setup({}, {}, state);
    await first.see({ ip: '10.20.1.6', mac: mac(6) });
    expect((await first.store.allQueued()).map((q) => q.region)).toEqual(['emea']);
    first.db.close();
    // a new process: same state, new config
    const st = openSqliteStore(state, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 });
    const store = st.scheduler;
    const sched = new Scheduler(first.clock, st.inventory, policyFor(moved), store, first.scanner,
      buildSchedulerOptions({ regions: moved, maxTargetsPerScan: 3, scanner: first.scanner, scheduler: { pollIntervalS: 60, verifyResults: false } }), silentLogger());
    await sched.sweep();
    expect((await store.allQueued()).map((q) => q.region)).toEqual(['amer']);
    await sched.tick();
    expect(first.scanner.launches.map((l) => l.appliance)).toEqual(['amer-1']);
    await st.close();
  });

  it('a waiting device whose address left every region leaves the queue (not stranded under a region that is gone)', async () => {
    const { sched, see, store, scanner } = await setup();
    await see({ ip: '10.20.1.7', mac: mac(7) });
    const only = [moved[1]].map((r) => ({ ...r, cidrs: ['10.30.0.0/16'] }));
    sched.reconfigure(policyFor(only), buildSchedulerOptions({ regions: only, maxTargetsPerScan: 3, scanner, scheduler: { pollIntervalS: 60, verifyResults: false } }));
    await sched.sweep();
    expect(await store.allQueued()).toEqual([]);
    expect((await store.recentDecisions(1))[0]).toMatchObject({ ip: '10.20.1.7', decision: 'not-due', reason: expect.stringMatching(/^no-region/) });
  });
});
