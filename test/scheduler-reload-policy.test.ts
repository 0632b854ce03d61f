/**
 * A reload that narrows the policy (a new exclusion, a smaller scope) reaches scans already running:
 * one with a target the new policy refuses is canceled, however far it has gone, and its other
 * targets go out again without it (cancel.ts, checkPolicy). A reload that refuses none cancels nothing.
 */
import { describe, expect, it } from 'vitest';
import { Policy } from '../src/policy/policy.js';
import { buildSchedulerOptions, Scheduler } from '../src/scheduler/scheduler.js';
import { silentLogger } from '../src/log.js';
import { mac, setup } from './helpers/scheduler.js';

const regions = [
  { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1 },
  { name: 'amer', cidrs: ['10.30.0.0/16'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2 },
];
const policyExcluding = (exclude: string[]) => new Policy({ scope: ['10.0.0.0/8'], exclude, rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });

async function runningScanOfTwo() {
  const t = await setup();
  await t.see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
  await t.see({ ip: '10.20.1.2', mac: mac(2), durationS: 43200 });
  await t.sched.tick();
  expect(t.scanner.launches.map((l) => [...l.targets].sort())).toEqual([['10.20.1.1', '10.20.1.2']]);
  // long past any window in which the scan might not have reached its targets yet
  t.clock.t += 40 * 60_000;
  await t.sched.tick();
  const opts = buildSchedulerOptions({ regions, maxTargetsPerScan: 3, scanner: t.scanner, scheduler: { pollIntervalS: 60, applianceRefreshS: 300, retryBackoffS: 600, maxAttempts: 3, verifyResults: false } });
  return { ...t, opts };
}

describe('a reload that narrows the policy', () => {
  it('cancels a running scan with a newly excluded target and relaunches the others without it', async () => {
    const t = await runningScanOfTwo();
    const cancelsBefore = t.scanner.calls.filter((c) => c === 'cancel').length;
    t.sched.reconfigure(policyExcluding(['10.20.9.0/24', '10.20.1.1/32']), t.opts);
    await t.sched.tick();
    expect(t.scanner.calls.filter((c) => c === 'cancel').length).toBe(cancelsBefore + 1);
    t.clock.t += 15 * 60_000; // the appliance has heard of the cancel (the region drains until then)
    await t.sched.tick();
    expect(t.scanner.launches.slice(1).map((l) => [...l.targets])).toEqual([['10.20.1.2']]);
    // and never again, whatever comes later
    t.clock.t += 3600_000;
    await t.see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
    await t.sched.tick();
    expect(t.scanner.launches.flatMap((l) => [...l.targets]).filter((ip) => ip === '10.20.1.1')).toHaveLength(1);
  });

  it('a restart with a narrower policy cancels a running scan the old one launched (no reload needed)', async () => {
    const t = await runningScanOfTwo();
    const restarted = new Scheduler(t.clock, t.inv, policyExcluding(['10.20.9.0/24', '10.20.1.1/32']), t.store, t.scanner, t.opts, silentLogger());
    await restarted.tick();
    expect(t.scanner.states.get(t.scanner.launches[0].ref)).toBe('canceled');
    expect((await t.store.recentDecisions(20)).some((d) => d.ip === '10.20.1.1' && d.decision === 'canceled' && /no longer allowed by the policy/.test(d.reason))).toBe(true);
  });

  it('a cancel that fails is tried again at the next pass', async () => {
    const t = await runningScanOfTwo();
    t.scanner.failing.set('cancel', 'refused');
    t.sched.reconfigure(policyExcluding(['10.20.9.0/24', '10.20.1.1/32']), t.opts);
    await t.sched.tick();
    const tried = t.scanner.calls.filter((c) => c === 'cancel').length;
    expect(tried).toBeGreaterThan(0);
    t.scanner.failing.delete('cancel');
    t.clock.t += 60_000;
    await t.sched.tick();
    expect(t.scanner.calls.filter((c) => c === 'cancel').length).toBe(tried + 1);
    expect(t.scanner.states.get(t.scanner.launches[0].ref)).toBe('canceled');
  });

  it('a cancel that keeps failing is tried once a minute, not at every pass', async () => {
    const t = await runningScanOfTwo();
    t.scanner.failing.set('cancel', 'refused');
    t.sched.reconfigure(policyExcluding(['10.20.9.0/24', '10.20.1.1/32']), t.opts);
    for (let k = 0; k < 30; k++) {
      t.clock.t += 1000;
      await t.sched.tick();
    }
    expect(t.scanner.calls.filter((c) => c === 'cancel')).toHaveLength(1);
  });

  it('cancels nothing when the reloaded policy refuses none of its targets', async () => {
    const t = await runningScanOfTwo();
    t.sched.reconfigure(policyExcluding(['10.20.9.0/24', '10.20.2.0/24']), t.opts);
    await t.sched.tick();
    expect(t.scanner.calls).not.toContain('cancel');
    expect(t.scanner.launches).toHaveLength(1);
  });
});
