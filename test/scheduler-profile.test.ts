/**
 * The option profile's hosts in parallel (profile.ts): where the scanner states it, the belief
 * starts there instead of at the configured hostsInParallel; a read that fails never stops the
 * scanner's other calls; read once a day and again after a reload.
 */
import { describe, expect, it } from 'vitest';
import { buildSchedulerOptions } from '../src/scheduler/scheduler.js';
import { mac, setup } from './helpers/scheduler.js';

const DAY = 86_400_000;

/** 35 transient devices ready in emea once its first scan ends: what the next launch carries. */
async function waveAfterBusy(state: (t: Awaited<ReturnType<typeof setup>>) => void) {
  const t = await setup({ maxTargetsPerScan: 40, hostsInParallel: 30 });
  state(t);
  await t.see({ ip: '10.20.1.1', mac: mac(1), durationS: 43200 });
  await t.sched.tick(); // the region is busy with this one
  for (let n = 2; n <= 36; n++) await t.see({ ip: `10.20.1.${n}`, mac: mac(n), durationS: 43200 }); // Wi-Fi: transient
  t.scanner.finish(t.scanner.launches[0].ref);
  t.clock.t += 61_000;
  await t.sched.tick();
  return { t, next: t.scanner.launches[1]?.targets.length };
}

describe('hosts in parallel from the option profile', () => {
  it('a profile that scans 10 at once sets the wave where 30 is configured: transient targets fill 10, not 30', async () => {
    const stated = await waveAfterBusy((t) => t.scanner.stateProfile({ title: 'Initial Options', hostsInParallel: 10, parallelScaling: false }));
    expect(stated.next).toBe(10);
    expect(stated.t.sched.hostsInParallel()).toMatchObject({ value: 10, configured: 30, start: 10, profile: { supported: true, profiles: [{ regions: ['emea', 'amer'], facts: { title: 'Initial Options', hostsInParallel: 10 } }] } });
    expect(stated.t.sched.hostsInParallel().how).toContain("the option profiles' 10");
    // the control: a scanner that states no profile, and one whose list lacks it, keep the configured 30
    const none = await waveAfterBusy(() => undefined);
    expect(none.next).toBe(30);
    expect(none.t.sched.hostsInParallel()).toMatchObject({ value: 30, configured: 30, start: 30, profile: { supported: false } });
    const unlisted = await waveAfterBusy((t) => t.scanner.stateProfile(undefined));
    expect(unlisted.next).toBe(30);
    expect(unlisted.t.sched.hostsInParallel().profile).toMatchObject({ supported: true, readAt: expect.any(Number) });
    expect(unlisted.t.sched.hostsInParallel().profile.profiles).toEqual([{ regions: ['emea', 'amer'] }]);
  });

  it('a region launching with its own profile: one read for both, the smallest figure taken (one not listed counts as the configured value)', async () => {
    const { scanner, sched, policy } = await setup({ hostsInParallel: 30 });
    scanner.stateProfile({ '': { title: 'Initial Options', hostsInParallel: 40 }, 'Light - VPN': { title: 'Light - VPN', hostsInParallel: 15 } });
    const regions = [
      { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1 },
      { name: 'amer', cidrs: ['10.30.0.0/16'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2, optionProfile: 'Light - VPN' },
    ];
    sched.reconfigure(policy, buildSchedulerOptions({ regions, maxTargetsPerScan: 3, scanner, scheduler: { hostsInParallel: 30, verifyResults: false } }));
    await sched.tick();
    expect(scanner.calls.filter((c) => c === 'scanProfiles')).toHaveLength(1);
    expect(scanner.profileNames).toEqual([undefined, 'Light - VPN']);
    expect(sched.hostsInParallel()).toMatchObject({ value: 15, start: 15, configured: 30 });
    expect(sched.hostsInParallel().profile.profiles).toEqual([
      { regions: ['emea'], facts: { title: 'Initial Options', hostsInParallel: 40 } },
      { name: 'Light - VPN', regions: ['amer'], facts: { title: 'Light - VPN', hostsInParallel: 15 } },
    ]);
    // the region's profile not listed: it counts as the configured 30, under the scanner's 40
    scanner.stateProfile({ '': { title: 'Initial Options', hostsInParallel: 40 } });
    sched.reconfigure(policy, buildSchedulerOptions({ regions, maxTargetsPerScan: 3, scanner, scheduler: { hostsInParallel: 30, verifyResults: false } }));
    await sched.tick();
    expect(sched.hostsInParallel()).toMatchObject({ value: 30, start: 30 });
  });

  it('the profile replaces the default and lowers a configured value, but never raises one set low on purpose', async () => {
    const start = async (over: { hostsInParallel?: number }) => {
      const t = await setup(over);
      t.scanner.stateProfile({ title: 'Initial Options', hostsInParallel: 30 });
      await t.sched.tick();
      return t.sched.hostsInParallel();
    };
    expect(await start({})).toMatchObject({ value: 30, start: 30, configured: 10 }); // the default 10 gives way
    const low = await start({ hostsInParallel: 5 });
    expect(low).toMatchObject({ value: 5, start: 5, configured: 5 }); // set low: kept
    expect(low.how).toMatch(/^the configured hostsInParallel: /); // and said to come from the config, not the profile
    expect(await start({ hostsInParallel: 50 })).toMatchObject({ value: 30, start: 30, configured: 50 }); // set high: lowered
  });

  it('a read the scanner holds back (a rate limit on its API) holds back nothing else: launches go on, the read waits as told', async () => {
    const { scanner, sched, see, clock } = await setup({ hostsInParallel: 30 });
    scanner.stateProfile({ title: 'Initial Options', hostsInParallel: 10 });
    scanner.failing.set('scanProfiles', 'rate-limited');
    scanner.waitUntil = clock.t + 3 * 3_600_000;
    const reads = () => scanner.calls.filter((c) => c === 'scanProfiles').length;
    await see({ ip: '10.20.1.7', mac: mac(7) });
    await sched.tick();
    expect(reads()).toBe(1);
    expect(scanner.launches).toHaveLength(1);
    expect(sched.scannerBlock().waitUntil).toBeUndefined();
    scanner.failing.delete('scanProfiles');
    clock.t += 2 * 3_600_000; // past the hour's retry, not past the wait asked for
    await sched.tick();
    expect(reads()).toBe(1);
    clock.t += 3_600_000 + 60_000;
    await sched.tick();
    expect(reads()).toBe(2);
    expect(sched.hostsInParallel()).toMatchObject({ value: 10 });
  });

  it('read at the first pass, then once a day; again after a reload', async () => {
    const { scanner, sched, clock, policy } = await setup({ hostsInParallel: 30 });
    scanner.stateProfile({ title: 'Initial Options', hostsInParallel: 10 });
    const reads = () => scanner.calls.filter((c) => c === 'scanProfiles').length;
    await sched.tick();
    expect(reads()).toBe(1);
    clock.t += DAY - 60_000;
    await sched.tick();
    expect(reads()).toBe(1);
    clock.t += 120_000;
    await sched.tick();
    expect(reads()).toBe(2);
    sched.reconfigure(policy, buildSchedulerOptions({ regions: [], maxTargetsPerScan: 3, scanner, scheduler: { hostsInParallel: 30 } }));
    await sched.tick();
    expect(reads()).toBe(3);
  });

  it('a read the scanner refuses for good (a path or a permission) stops nothing: launches go on, the configured value holds, tried again in an hour', async () => {
    const { scanner, sched, see, clock } = await setup({ hostsInParallel: 30 });
    scanner.stateProfile({ title: 'Initial Options', hostsInParallel: 10 });
    scanner.failing.set('scanProfiles', 'denied'); // a 'stop' failure on any other call stops every call
    const reads = () => scanner.calls.filter((c) => c === 'scanProfiles').length;
    await see({ ip: '10.20.1.7', mac: mac(7) });
    await sched.tick();
    expect(reads()).toBe(1);
    expect(scanner.launches).toHaveLength(1);
    expect(sched.scannerBlock().stopped).toBeUndefined();
    expect(sched.hostsInParallel()).toMatchObject({ value: 30, start: 30, profile: { supported: true, error: expect.stringContaining('account disabled') } });
    clock.t += 59 * 60_000;
    await sched.tick();
    expect(reads()).toBe(1);
    scanner.failing.delete('scanProfiles');
    clock.t += 2 * 60_000;
    await sched.tick();
    expect(reads()).toBe(2);
    expect(sched.hostsInParallel()).toMatchObject({ value: 10, start: 10 });
    expect(sched.hostsInParallel().profile.error).toBeUndefined();
    // the control: the same failure on a call the scheduler needs does stop it
    scanner.failNext = 'denied';
    await see({ ip: '10.30.1.8', mac: mac(8) });
    await sched.tick();
    expect(scanner.calls.at(-1)).toBe('launch');
    expect(sched.scannerBlock().stopped).toBeDefined();
  });
});
