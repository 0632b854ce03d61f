/**
 * A launch checks its targets against the policy before its first call, then may wait before the
 * launch itself is sent (Qualys: the rate-limit gate or a 409's wait; Tenable: a 429's Retry-After
 * on the calls before its launch). A reload that excludes a target during that wait must stop the
 * launch: the targets are checked again right before each send. Real clients against their
 * emulators on loopback; the policy swapped as a SIGHUP reload swaps it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator } from '../src/emulator/qualys/index.js';
import { startTenableEmulator } from '../src/emulator/tenable/index.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { TenableClient } from '../src/scanners/tenable/index.js';
import { Policy } from '../src/policy/policy.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const policyExcluding = (exclude: string[]) => new Policy({ scope: ['10.0.0.0/8'], exclude, rescanAfter: 86400, rules: [], regions: [], timezone: 'UTC' });

describe('a launch whose targets are excluded while it waits', () => {
  it('qualys: an exclusion during the rate-limit wait stops the launch; the next launch without it goes out', async () => {
    const e = await startQualysEmulator({ seed: 1, appliances: [{ name: 'sa-1', capacity: 8 }], limits: { default: { limit: 1, windowSec: 2, concurrency: 5 } } });
    open.push(e);
    let policy = policyExcluding([]);
    const c = new QualysClient({
      baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
      allowTarget: (ip) => policy.allowed(ip), throttle: { maxWaitSec: 30 },
    });
    open.push(c);
    await c.listScans({}); // spends the window's one call: the launch waits at the gate
    const launching = c.launch({ intentId: 'intent-1', title: 'onsight intent-1 emea', targets: ['10.50.0.1', '10.50.0.2'], appliance: 'sa-1' });
    setTimeout(() => { policy = policyExcluding(['10.50.0.2']); }, 300);
    const err = await launching.then(() => undefined, (x: Error & { code?: string }) => x);
    expect(err?.code).toBe('ONSIGHT_SCOPE_VIOLATION');
    expect(e.state.model.scans.filter((s) => s.title.includes('intent-1'))).toHaveLength(0);
    // what the scheduler does next (targets checked again at launch): the allowed one alone goes out
    const { scanRef } = await c.launch({ intentId: 'intent-2', title: 'onsight intent-2 emea', targets: ['10.50.0.1'], appliance: 'sa-1' });
    expect(scanRef).toBeTruthy();
  }, 30_000);

  it('tenable: an exclusion during a 429 wait before the launch call stops the launch, and its copy is not left launched', async () => {
    const emu = await startTenableEmulator({ seed: 3, scanners: [{ name: 'tn-1' }], scanTiming: { pickupSec: 1, hostSec: 60 }, ratePerMinute: 6, rateWindowSec: 3 });
    open.push(emu);
    let policy = policyExcluding([]);
    const c = new TenableClient({
      baseUrl: emu.url, apiKeys: emu.apiKeys, template: 'basic', reconcileDelayMs: 0, maxAttempts: 3, baseDelayMs: 5, appliances: ['tn-1'],
      allowTarget: (ip) => policy.allowed(ip),
    });
    open.push(c);
    for (let i = 0; i < 6; i++) await c.listScans({}); // spends the window's calls: the next call meets a 429 and waits as told (the launch's own calls then fit the next window)
    const launching = c.launch({ intentId: 'tn-intent-1', title: 'onsight tn-intent-1', targets: ['10.50.0.1', '10.50.0.2'], appliance: 'tn-1' });
    setTimeout(() => { policy = policyExcluding(['10.50.0.2']); }, 300);
    const err = await launching.then(() => undefined, (x: Error & { code?: string }) => x);
    expect(emu.requests.some((r) => r.status === 429)).toBe(true);
    expect(err?.code).toBe('ONSIGHT_SCOPE_VIOLATION');
    const runs = emu.model.scans.filter((s) => s.name.includes('tn-intent-1')).flatMap((s) => s.runs);
    expect(runs).toHaveLength(0);
  }, 30_000);
});
