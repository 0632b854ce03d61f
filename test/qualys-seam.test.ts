/**
 * The Qualys client's side of the scanner seam, against the real emulator on loopback: scan states
 * it does not know, cheap polls, host-list paging across hosts, targets Qualys refuses or drops,
 * and the mapping of every failure class onto the seam's FailureOutcome.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type EmulatorOptions, type EmScan } from '../src/emulator/qualys/index.js';
import {
  nextPageRefusal, PLATFORM_DOMAINS, QualysAuthError, QualysClient, QualysNotInSubscriptionError, QualysPagingError, type QualysClientOptions,
} from '../src/scanners/qualys/index.js';
import { addressesNamed, expandTargets } from '../src/scanners/qualys/targets.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const FAST: Partial<QualysClientOptions> = {
  optionProfile: 'Initial Options',
  reconcileDelayMs: 0,
  retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
  throttle: { concurrencyBackoffMs: 20, maxRetries: 2 },
};

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level: 'debug' }, sink) };
}

async function setup(emu: EmulatorOptions = {}, client: Partial<QualysClientOptions> = {}, log = pino({ level: 'silent' })) {
  const e = await startQualysEmulator({ speed: 1, appliances: [{ name: 'sa-1', capacity: 4 }], ...emu });
  open.push(e);
  const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, ...FAST, ...client }, { log });
  open.push(c);
  return { e, c };
}

describe('scan states Qualys may add', () => {
  it('maps a STATE it does not know to unknown, and logs it once per name', async () => {
    const { lines, log } = logSink();
    const { e, c } = await setup({}, {}, log);
    const { scanRef } = await c.launch({ intentId: 'st-1', title: 'onsight st-1', targets: ['10.1.0.1'], appliance: 'sa-1' });
    // the emulator's scan is put in a state the real service might one day report
    (e.state.model.findScan(scanRef) as EmScan).state = 'Suspended' as EmScan['state'];
    for (let i = 0; i < 3; i++) {
      const [s] = await c.listScans({ scanRefs: [scanRef] });
      expect(s).toMatchObject({ scanRef, state: 'unknown', qualysState: 'Suspended' });
    }
    const said = lines.filter((l) => l.qualysState === 'Suspended');
    expect(said).toHaveLength(1);
    expect(said[0].level).toBe(40);
  });
});

describe('polls that cost little', () => {
  it('polls several scans with one list call narrowed to API scans launched since the oldest ref, not 30 days of everything', async () => {
    let t = Date.parse('2026-11-02T08:00:00Z');
    const { e, c } = await setup({ now: () => t });
    const old = await c.launch({ intentId: 'p-0', title: 'onsight p-0', targets: ['10.1.0.9'], appliance: 'sa-1' });
    t += 3 * 86400_000;
    const a = await c.launch({ intentId: 'p-1', title: 'onsight p-1', targets: ['10.1.0.1'], appliance: 'sa-1' });
    t += 600_000;
    const b = await c.launch({ intentId: 'p-2', title: 'onsight p-2', targets: ['10.1.0.2'], appliance: 'sa-1' });
    const got = await c.listScans({ scanRefs: [b.scanRef, a.scanRef] });
    expect(got.map((s) => s.scanRef).sort()).toEqual([a.scanRef, b.scanRef].sort());
    const asked = e.state.requests.filter((r) => r.action === 'list');
    expect(asked).toHaveLength(1);
    expect(asked[0].path).toBe('/api/3.0/fo/scan/');
    expect(asked[0].params.type).toBe('API');
    const after = Date.parse(asked[0].params.launched_after_datetime);
    // a day of slack before the oldest ref's launch, and the scan of three days before is outside
    expect(after).toBe(Date.parse('2026-11-05T08:00:00Z') - 86400_000);
    expect(after).toBeGreaterThan(Number(old.scanRef.split('/')[1].split('.')[0]) * 1000);
    // one ref: asked by scan_ref, nothing else needed
    await c.listScans({ scanRefs: [a.scanRef] });
    expect(e.state.requests.at(-1)!.params).toMatchObject({ action: 'list', scan_ref: a.scanRef });
  });
});

describe('host-list paging across the platform\'s hosts', () => {
  it('follows next pages on its own origin, and refuses one that names a host off the platform, with a clear error', async () => {
    const { e, c } = await setup({ hostListTruncationLimit: 2, hosts: ['10.2.0.1', '10.2.0.2', '10.2.0.3', '10.2.0.4', '10.2.0.5'].map((ip) => ({ ip, lastScannedAt: '2026-10-01T00:00:00Z' })) });
    expect(await c.hostList({ ips: ['10.2.0.1-10.2.0.7'] })).toHaveLength(5);
    expect(e.state.requests.filter((r) => r.api === 'host').map((r) => r.path)).toEqual(Array(3).fill('/api/5.0/fo/asset/host/'));
    // the same emulator naming another origin (plain http on localhost) in its next-page URLs
    e.state.config.nextPageOrigin = e.url.replace('127.0.0.1', 'localhost');
    const err = await c.hostList({ ips: ['10.2.0.1-10.2.0.7'] }).catch((x: unknown) => x as QualysPagingError);
    expect(err).toBeInstanceOf(QualysPagingError);
    expect(err.code).toBe('ONSIGHT_QUALYS_PAGING');
    expect(err.message).toMatch(/not following the next-page URL http:\/\/localhost:\d+\/api\/5.0\/fo\/asset\/host\/ \(not https\)/);
  });

  it('allows only https hosts under the base URL\'s platform domain (the guide\'s next page names qualysapi.p01.eng.sjc01.qualys.com)', () => {
    const d = PLATFORM_DOMAINS;
    const ok = (base: string, next: string) => nextPageRefusal(new URL(base), new URL(next), d);
    expect(ok('https://qualysapi.qualys.com', 'https://qualysapi.p01.eng.sjc01.qualys.com/api/4.0/fo/asset/host/?id_min=2')).toBeUndefined();
    expect(ok('https://qualysapi.qg2.apps.qualys.eu', 'https://qualysapi.qualys.eu/api/5.0/fo/asset/host/')).toBeUndefined();
    expect(ok('https://qualysapi.qg1.apps.qualys.com.au', 'https://other.qg1.apps.qualys.com.au/x')).toBeUndefined();
    expect(ok('http://127.0.0.1:8443', 'http://127.0.0.1:8443/api/5.0/fo/asset/host/')).toBeUndefined(); // the base's own origin
    expect(ok('https://qualysapi.qualys.eu', 'http://qualysapi.qualys.eu/x')).toBe('not https');
    expect(ok('https://qualysapi.qualys.eu', 'https://qualysapi.qualys.com/x')).toMatch(/not under qualys.eu/);
    expect(ok('https://qualysapi.qualys.com', 'https://qualys.com.evil.example/x')).toMatch(/not under qualys.com/);
    expect(ok('https://qualysapi.qualys.com', 'https://evilqualys.com/x')).toMatch(/not under qualys.com/);
    expect(ok('https://qualysapi.qualys.com', 'https://u:p@qualysapi.qualys.com/x')).toBe('carries user info');
    expect(ok('https://qualysapi.qualys.com', 'https://qualysapi.qualys.com:8443/x')).toBe('names port 8443');
    expect(ok('https://qualys.corp.example', 'https://other.corp.example/x')).toMatch(/not under a known Qualys platform domain/);
    expect(nextPageRefusal(new URL('https://qualys.corp.example'), new URL('https://b.corp.example/x'), ['corp.example'])).toBeUndefined();
  });
});

describe('targets outside the subscription', () => {
  it('a refusal is a typed error carrying the refused addresses; nothing is launched', async () => {
    const { e, c } = await setup({ subscription: ['10.0.0.0/8'] });
    const err = await c.launch({ intentId: 'os-1', title: 'onsight os-1', targets: ['10.4.0.1', '192.0.2.7', '192.0.2.8'], appliance: 'sa-1' })
      .catch((x: unknown) => x as QualysNotInSubscriptionError);
    expect(err).toBeInstanceOf(QualysNotInSubscriptionError);
    expect(err.code).toBe('ONSIGHT_QUALYS_NOT_IN_SUBSCRIPTION');
    expect(err.targets).toEqual(['192.0.2.7', '192.0.2.8']);
    expect(err.message).toContain('refused 2 of 3 target(s) (192.0.2.7, 192.0.2.8)');
    expect(e.state.model.scans).toHaveLength(0);
  });

  it('a refusal whose text names ranges maps onto the addresses inside them; one naming none carries none', () => {
    expect(addressesNamed('IPs not in subscription: 192.0.2.5-192.0.2.9, 2001:db8::1', ['192.0.2.4', '192.0.2.6', '2001:db8::1', '10.0.0.1'])).toEqual(['192.0.2.6', '2001:db8::1']);
    expect(addressesNamed('No valid targets', ['10.0.0.1'])).toEqual([]);
    expect(expandTargets('10.0.0.1-10.0.0.3, 10.0.0.9,laptop.corp.example,65188eb1-02b7-405e-861c-fb44c98a20d7'))
      .toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.9', 'laptop.corp.example', '65188eb1-02b7-405e-861c-fb44c98a20d7']);
  });

  it('silently dropped targets show in the scan list: its targets are what Qualys scans, not what was sent', async () => {
    const { e, c } = await setup({ subscription: ['10.0.0.0/8'], outOfSubscription: 'drop' });
    const sent = ['10.4.0.1', '192.0.2.7', '10.4.0.2'];
    const { scanRef } = await c.launch({ intentId: 'os-2', title: 'onsight os-2', targets: sent, appliance: 'sa-1' });
    const [s] = await c.listScans({ scanRefs: [scanRef] });
    expect(s.targets).toEqual(['10.4.0.1', '10.4.0.2']);
    expect(sent.filter((t) => !s.targets!.includes(t))).toEqual(['192.0.2.7']);
    expect(e.state.model.findScan(scanRef)!.jobs.map((j) => j.ip)).toEqual(['10.4.0.1', '10.4.0.2']);
  });
});

describe('the client against the emulator\'s account problems and evaluation answers', () => {
  it('an expired, unregistered or SecureID account stops at once with the reason in words', async () => {
    for (const [account, words] of [['expired', 'the Qualys account has expired'], ['registration', 'has not completed its registration'], ['securid', 'requires SecureID']] as const) {
      const { e, c } = await setup({ account });
      const err = await c.appliances().catch((x: unknown) => x as QualysAuthError);
      expect(err, account).toBeInstanceOf(QualysAuthError);
      expect(err.message, account).toContain(words);
      expect(e.state.requests, account).toHaveLength(1); // never retried as a rate limit
      expect(c.failureOutcome(err, 'appliances'), account).toMatchObject({ next: 'stop', launched: 'no' });
    }
  });

  it('reads answers wrapped in evaluation comments', async () => {
    const { c } = await setup({ evaluation: true, hosts: [{ ip: '10.7.0.1', lastScannedAt: '2026-10-01T00:00:00Z' }] });
    const { scanRef } = await c.launch({ intentId: 'ev-1', title: 'onsight ev-1', targets: ['10.7.0.2'], appliance: 'sa-1' });
    expect((await c.listScans({ scanRefs: [scanRef] }))[0].scanRef).toBe(scanRef);
    expect(await c.lastScanned(['10.7.0.1'])).toEqual([{ ip: '10.7.0.1', lastScannedAt: '2026-10-01T00:00:00Z', via: 'vm-scan' }]);
    expect((await c.appliances()).map((a) => a.name)).toEqual(['sa-1']);
  });
});
