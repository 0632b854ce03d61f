/**
 * Per-region option profiles and blackout dates. Profiles through the real daemon against the
 * Qualys emulator (which refuses titles it does not know and records the one each scan used);
 * blackouts in the policy (a due device waits, with why) and in `config check`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { Policy } from '../src/policy/policy.js';
import { parseBlackout } from '../src/policy/windows.js';
import { validateConfig } from '../src/config/load.js';
import type { BindingView } from '../src/inventory/inventory.js';
import { freePort, startDaemon, type DaemonProcess, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

describe('per-region option profile (Qualys emulator, real daemon)', () => {
  let emu: QualysEmulator;
  let d: DaemonProcess;
  afterAll(async () => {
    await d?.stop();
    await emu?.close();
  });

  it('each region\'s scans use its profile; a region without one uses scanner.optionProfile', async () => {
    emu = await startQualysEmulator({
      appliances: [{ name: 'lap-sa-1' }, { name: 'vpn-sa-1' }, { name: 'lan-sa-1' }], speed: 1,
      scanTiming: { submitDelaySec: 0, hostSecMin: 1, hostSecMax: 1, loadingSec: 0 },
      optionProfiles: ['Initial Options', 'Authenticated - managed laptops', 'Light - VPN'],
    });
    const port = await freePort();
    d = await startDaemon(`
${udpDaemonHead(port)}regions:
  - { name: laptops, cidrs: ["10.20.0.0/16"], appliances: [lap-sa-1], optionProfile: "Authenticated - managed laptops" }
  - { name: vpn, cidrs: ["10.30.0.0/16"], appliances: [vpn-sa-1], optionProfile: "Light - VPN" }
  - { name: lan, cidrs: ["10.40.0.0/16"], appliances: [lan-sa-1] }
scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options" }
scheduler: { pollIntervalS: 0.2, applianceRefreshS: 0.5 }
http: { enabled: false }
`, { TEST_QUALYS_PASSWORD: emu.password });
    await udpSend(port, ack('10.20.1.1', '52:54:00:00:02:01'));
    await udpSend(port, ack('10.30.1.1', '52:54:00:00:03:01'));
    await udpSend(port, ack('10.40.1.1', '52:54:00:00:04:01'));
    const scans = await until(() => (emu.state.model.scans.length >= 3 ? emu.state.model.scans : undefined), 20_000, 'three launches', 50);
    const byTarget = Object.fromEntries(scans.map((s) => [s.target, s.optionTitle]));
    expect(byTarget).toEqual({ '10.20.1.1': 'Authenticated - managed laptops', '10.30.1.1': 'Light - VPN', '10.40.1.1': 'Initial Options' });
  });
});

describe('blackout dates', () => {
  const bv = (ip: string): BindingView => ({ id: 1, ip, identityId: 1, identityKey: 'mac:x', channel: 'dhcp', format: 'x', startAt: 0, lastSeen: 0, renewals: 0 });
  const policy = new Policy({
    scope: ['10.0.0.0/8'], exclude: [], rescanAfter: 30 * 86400, rules: [], timezone: 'UTC',
    regions: [
      { name: 'emea', cidrs: ['10.20.0.0/16'], timezone: 'Europe/Berlin', blackouts: ['2026-12-24..2026-12-26', '2026-12-31T18:00..2027-01-01T06:00'], scanWindows: ['Mon-Sun 00:00-24:00'] },
      { name: 'amer', cidrs: ['10.30.0.0/16'] },
    ],
  });

  it('a due device in a blacked-out region is not due, and says why; the region\'s own time zone applies', () => {
    // 2026-12-24 00:30 in Berlin is 2026-12-23 23:30 UTC: already blacked out there
    const v = policy.evaluate(bv('10.20.1.1'), Date.parse('2026-12-23T23:30:00Z'));
    expect(v).toMatchObject({ due: false, reason: 'outside-scan-window', detail: expect.stringMatching(/region emea is in a blackout \(2026-12-24\.\.2026-12-26/) });
    expect(policy.windowOpen('emea', Date.parse('2026-12-23T23:30:00Z'))).toBe(false);
    expect(policy.evaluate(bv('10.20.1.1'), Date.parse('2026-12-23T22:30:00Z')).due).toBe(true); // 23:30 in Berlin: not yet
    expect(policy.evaluate(bv('10.20.1.1'), Date.parse('2026-12-26T22:59:00Z')).due).toBe(false); // the 26th, 23:59 in Berlin
    expect(policy.evaluate(bv('10.20.1.1'), Date.parse('2026-12-26T23:00:00Z')).due).toBe(true); // the 27th begins
    expect(policy.evaluate(bv('10.20.1.1'), Date.parse('2026-12-31T17:30:00Z')).due).toBe(false); // 18:30 on New Year's Eve
    expect(policy.evaluate(bv('10.20.1.1'), Date.parse('2027-01-01T05:00:00Z')).due).toBe(true); // 06:00 on the 1st
    expect(policy.evaluate(bv('10.30.1.1'), Date.parse('2026-12-24T12:00:00Z')).due).toBe(true); // other regions scan on
  });

  it('parses dates, spans and times; refuses typos (config check names the key)', () => {
    expect(parseBlackout('2026-12-24')).toEqual({ startLocal: Date.UTC(2026, 11, 24), endLocal: Date.UTC(2026, 11, 25) });
    for (const bad of ['2026-02-30', '2026-12-26..2026-12-24', '2026-12-24..2026-12-26T06:00', '2026-12-24T25:00..2026-12-25T01:00', '24.12.2026', '2026-12-24...2026-12-25']) {
      expect(parseBlackout(bad), bad).toBeUndefined();
    }
    const base = { policy: { scope: ['10.0.0.0/8'] }, scanner: { type: 'dry-run' } };
    expect(() => validateConfig({ ...base, regions: [{ name: 'a', cidrs: ['10.0.0.0/8'], appliances: ['x'], blackouts: ['2026-13-01'] }] }))
      .toThrow(/regions\[0\]\.blackouts\[0\]: expected a date YYYY-MM-DD/);
    expect(() => validateConfig({ ...base, regions: [{ name: 'a', cidrs: ['10.0.0.0/8'], appliances: ['x'], blackouts: ['2026-12-24'], optionProfile: 'Light' }] })).not.toThrow();
    expect(() => validateConfig({ policy: base.policy, scanner: { type: 'tenable', url: 'https://cloud.tenable.com', apiKeysEnv: 'K' }, regions: [{ name: 'a', cidrs: ['10.0.0.0/8'], appliances: ['x'], optionProfile: 'Light' }] }))
      .toThrow(/regions\[0\]\.optionProfile: a region's optionProfile is used by the qualys scanner only/);
  });
});
