/**
 * The real Qualys client against the real emulator over loopback sockets: launch, list,
 * cancel, appliances, host list pagination, 409 waits, 5xx retries, malformed XML, auth
 * failures, the scope guard, credentials, and a password that never reaches a log line.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type EmulatorOptions, type QualysEmulator } from '../src/emulator/qualys/index.js';
import {
  createQualysScanner, loadPassword, QualysAuthError, QualysClient, QualysNetworkError, QualysNotInSubscriptionError,
  QualysRateLimitError, QualysXmlError, ScopeViolationError, type QualysClientOptions,
} from '../src/scanners/qualys/index.js';
import { Budget } from '../src/scheduler/budget.js';
import { QualysAllowance } from '../src/scanners/qualys/allowance.js';
import { qualysDoctor } from '../src/scanners/qualys/doctor.js';
import { sleep } from './helpers/wait.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const FAST: Partial<QualysClientOptions> = {
  optionProfile: 'Initial Options',
  reconcileDelayMs: 0,
  retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 40 },
  throttle: { concurrencyBackoffMs: 20 },
};

async function setup(emu: EmulatorOptions = {}, client: Partial<QualysClientOptions> = {}, log = pino({ level: 'silent' })) {
  const e = await startQualysEmulator({ speed: 1000, appliances: [{ name: 'sa-1', capacity: 4 }, { name: 'sa-2', capacity: 2 }], ...emu });
  open.push(e);
  const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, ...FAST, ...client }, { log });
  open.push(c);
  return { e, c };
}


describe('qualys client against the emulator', () => {
  it('launches, lists by ref/state/date, finds by title, and sees the scan finish', async () => {
    const { e, c } = await setup();
    const before = new Date(Date.now() - 1000);
    const { scanRef } = await c.launch({ intentId: 'int-1', title: 'onsight int-1', targets: ['10.1.0.1', '10.1.0.2'], appliance: 'sa-1' });
    expect(scanRef).toMatch(/^scan\/\d+\.\d+$/);
    const [s] = await c.listScans({ scanRefs: [scanRef] });
    expect(s).toMatchObject({ scanRef, title: 'onsight int-1', targets: ['10.1.0.1', '10.1.0.2'], type: 'API' });
    expect(['submitted', 'queued', 'running']).toContain(s.state);
    expect(await c.listScans({ launchedAfter: before })).toHaveLength(1);
    expect(await c.findScansByTitle('int-1')).toHaveLength(1);
    expect(await c.findScansForIntent('int')).toHaveLength(0); // whole-token match only
    // 2 hosts of 60-180 s, 5 s submit, 10 s loading at speed 1000: finished within a second
    await sleep(600);
    const done = await c.listScans({ states: ['finished'] });
    expect(done.map((x) => x.scanRef)).toEqual([scanRef]);
    expect(done[0].processed).toBe(true);
    expect(done[0].endedAt).toBeDefined();
    expect(e.state.model.scans).toHaveLength(1);
  });

  it('sends the option profile by id, several appliances, and the title always carries the intent id', async () => {
    const { e, c } = await setup({ optionProfiles: ['Initial Options', 'Light'] });
    await c.launch({ intentId: 'int-2', title: 'no id here', targets: ['10.1.0.3'], appliance: 'sa-1', optionProfile: 'Light' });
    const s = e.state.model.scans[0];
    expect(s.title).toBe('no id here [int-2]');
    expect(s.optionTitle).toBe('Light');
    const c2 = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, ...FAST, optionProfile: { id: 2 } });
    open.push(c2);
    await c2.launch({ intentId: 'int-3', title: 'onsight int-3', targets: ['10.1.0.4'], appliance: 'sa-1,sa-2' });
    expect(e.state.model.scans[1]).toMatchObject({ optionTitle: 'Light', appliances: ['sa-1', 'sa-2'] });
  });

  it('cancels a running scan; cancelling it again is done, cancelling a finished scan says it had ended', async () => {
    const { e, c } = await setup({ speed: 1 });
    const { scanRef } = await c.launch({ intentId: 'int-4', title: 'onsight int-4', targets: ['10.1.0.5'], appliance: 'sa-1' });
    await c.cancel(scanRef);
    expect(e.state.model.findScan(scanRef)?.state).toBe('Canceled');
    const [s] = await c.listScans({ scanRefs: [scanRef] });
    expect(s.state).toBe('canceled');
    await c.cancel(scanRef); // canceled already: done
    // a finished scan is not canceled: its end and result are the poll's to record
    const done = await c.launch({ intentId: 'int-4b', title: 'onsight int-4b', targets: ['10.1.0.15'], appliance: 'sa-1' });
    e.state.model.findScan(done.scanRef)!.state = 'Finished';
    await expect(c.cancel(done.scanRef)).rejects.toMatchObject({ name: 'ScanEndedBeforeCancel', state: 'finished' });
    await expect(c.cancel('scan/1.1')).rejects.toMatchObject({ code: 'ONSIGHT_QUALYS_API', qualysCode: 1905 });
  });

  it('reads appliances with load, capacity and running scans', async () => {
    const { c } = await setup({ speed: 1, scanTiming: { submitDelaySec: 0, hostSecMin: 600, hostSecMax: 600, loadingSec: 0 } });
    const { scanRef } = await c.launch({ intentId: 'int-5', title: 'onsight int-5', targets: ['10.1.0.6', '10.1.0.7', '10.1.0.8'], appliance: 'sa-2' });
    const list = await c.appliances();
    const sa2 = list.find((a) => a.name === 'sa-2')!;
    expect(sa2).toMatchObject({ online: true, runningScans: 1, runningSlices: 2, maxCapacityUnits: 2, heartbeatsMissed: 0, runningScanRefs: [scanRef] });
    expect(list.find((a) => a.name === 'sa-1')).toMatchObject({ runningScans: 0, runningScanRefs: [] });
  });

  it('reads last-scan dates in batches and follows truncated host lists (WARNING 1980)', async () => {
    const hosts = Array.from({ length: 25 }, (_, i) => ({ ip: `10.2.0.${i + 1}`, lastScannedAt: `2026-01-${String(i + 1).padStart(2, '0')}T00:00:00Z` }));
    const { e, c } = await setup({ hosts, hostListTruncationLimit: 4 }, { hostListBatchSize: 10 });
    const ips = [...hosts.map((h) => h.ip), '10.2.1.1'];
    const got = await c.lastScanned(ips);
    expect(got).toHaveLength(26);
    expect(got[0]).toEqual({ ip: '10.2.0.1', lastScannedAt: '2026-01-01T00:00:00Z', via: 'vm-scan' });
    expect(got[24].lastScannedAt).toBe('2026-01-25T00:00:00Z');
    expect(got[25]).toEqual({ ip: '10.2.1.1' });
    // 3 batches (10, 10, 6 IPs), pages of 4: 3 + 3 + 2 = 8 calls
    expect(e.state.requests.filter((r) => r.api === 'host')).toHaveLength(8);
    const stale = await c.hostList({ ips: hosts.map((h) => h.ip), noVmScanSince: new Date('2026-01-10T00:00:00Z') });
    expect(stale.map((h) => h.ip)).toEqual(hosts.slice(0, 9).map((h) => h.ip));
  });

  it('reads IPv6 hosts\' dates: IPv6 addresses asked in ipv6, listed under IPV6 (an IPv6 value in ips failed the whole call)', async () => {
    const hosts = [{ ip: '10.2.0.1', lastScannedAt: '2026-01-01T00:00:00Z' }, { ip: '2001:db8::5', lastScannedAt: '2026-02-01T00:00:00Z' }];
    const { e, c } = await setup({ hosts });
    const got = await c.lastScanned(['10.2.0.1', '2001:DB8:0::5', '2001:db8::6']);
    expect(got).toEqual([
      { ip: '10.2.0.1', lastScannedAt: '2026-01-01T00:00:00Z', via: 'vm-scan' },
      { ip: '2001:DB8:0::5', lastScannedAt: '2026-02-01T00:00:00Z', via: 'vm-scan' },
      { ip: '2001:db8::6' },
    ]);
    const asked = e.state.requests.filter((r) => r.api === 'host').map((r) => [r.params?.ips, r.params?.ipv6]);
    expect(asked).toEqual([['10.2.0.1', undefined], [undefined, '2001:db8::5,2001:db8::6']]);
  });

  it('the scheduler\'s budget counts a host list as the calls the client sends: one per batch', async () => {
    const hosts = Array.from({ length: 20 }, (_, i) => ({ ip: `10.2.0.${i + 1}`, lastScannedAt: '2026-01-01T00:00:00Z' }));
    const { e, c } = await setup({ hosts }, { hostListBatchSize: 10 });
    const counters = { launches: 0, apiCalls: 0 };
    const budget = new Budget({ clock: { now: () => Date.now() }, scanner: c, counters, opts: { reserveCalls: 0 }, log: pino({ level: 'silent' }) } as never);
    expect(budget.hostListCalls(21)).toBe(3);
    const got = await budget.hostList('test', [...hosts.map((h) => h.ip), hosts[0].ip]); // each address once: 20, two batches
    expect(got).toHaveLength(20);
    const sent = e.state.requests.filter((r) => r.api === 'host').length;
    expect(sent).toBe(2);
    expect(counters.apiCalls).toBe(sent);
  });

  it('maps "not in subscription", and adds the IPs first when configured', async () => {
    const { e, c } = await setup({ subscription: ['10.1.0.0/24'] });
    await expect(c.launch({ intentId: 'int-6', title: 'onsight int-6', targets: ['10.9.0.1'], appliance: 'sa-1' }))
      .rejects.toBeInstanceOf(QualysNotInSubscriptionError);
    const adding = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, ...FAST, addToSubscription: true, trackingMethod: 'DNS' });
    open.push(adding);
    const { scanRef } = await adding.launch({ intentId: 'int-7', title: 'onsight int-7', targets: ['10.9.0.1'], appliance: 'sa-1' });
    expect(scanRef).toBeTruthy();
    expect(e.state.model.subscription.has('10.9.0.1')).toBe(true);
    expect(e.state.model.tracking.get('10.9.0.1')).toBe('DNS');
  });

  it('refuses out-of-scope targets without sending anything', async () => {
    const { e, c } = await setup({}, { allowTarget: (ip) => ip.startsWith('10.1.'), maxTargetsPerScan: 3 });
    await expect(c.launch({ intentId: 'int-8', title: 'onsight int-8', targets: ['10.1.0.1', '10.200.0.1'], appliance: 'sa-1' }))
      .rejects.toBeInstanceOf(ScopeViolationError);
    await expect(c.launch({ intentId: 'int-8', title: 'onsight int-8', targets: ['not-an-ip'], appliance: 'sa-1' }))
      .rejects.toMatchObject({ code: 'ONSIGHT_SCOPE_VIOLATION' });
    await expect(c.launch({ intentId: 'int-8', title: 'onsight int-8', targets: ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4'], appliance: 'sa-1' }))
      .rejects.toMatchObject({ code: 'ONSIGHT_SCANNER' });
    expect(e.state.requests).toHaveLength(0);
  });

  it('waits out 409 rate limits (ToWait-Sec) and keeps to the window', async () => {
    const { e, c } = await setup({ limits: { default: { limit: 3, windowSec: 1, concurrency: 2 } } });
    const t0 = Date.now();
    for (let i = 0; i < 7; i++) await c.listScans({});
    const took = Date.now() - t0;
    const st = e.state.stats('scan');
    expect(st.accepted).toBe(7);
    expect(st.maxAcceptedInWindow).toBeLessThanOrEqual(3);
    expect(took).toBeGreaterThanOrEqual(1000); // 7 calls at 3 per second need two more windows
    const a = c.allowance();
    expect(a).toMatchObject({ limit: 3, windowSec: 1, concurrencyLimit: 2 });
  });

  it('a spent count says nothing once its window has passed, or a block set since has ended: the scheduler calls again', async () => {
    const { c } = await setup({ limits: { default: { limit: 2, windowSec: 2, concurrency: 2 } } });
    const budget = new Budget({ clock: { now: () => Date.now() }, scanner: c, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 }, log: pino({ level: 'silent' }) } as never);
    await c.listScans({});
    await c.listScans({});
    expect(c.allowance().remaining).toBe(0);
    expect(budget.canSpend(true)).toBe(true); // the probe rule lets one essential call try
    expect(budget.canSpend(false)).toBe(false);
    await sleep(2100); // the window has turned over: every counted call aged out
    expect(c.allowance().remaining).toBeUndefined();
    expect(budget.canSpend(false)).toBe(true);
    await c.listScans({}); // and the answer reports the count again
    expect(c.allowance().remaining).toBe(1);

    // a 409's ToWait: once the wait is over, the count of 0 read with it is forgotten (it held every call for good)
    let now = 1_000_000;
    const a = new QualysAllowance({ now: () => now });
    a.update('scan', { 'x-ratelimit-limit': '300', 'x-ratelimit-window-sec': '3600', 'x-ratelimit-remaining': '0', 'x-ratelimit-towait-sec': '181' });
    expect(a.snapshot('scan')).toMatchObject({ remaining: 0, waitSec: 181 });
    now += 180_000;
    expect(a.snapshot('scan').remaining).toBe(0);
    now += 1_000;
    expect(a.snapshot('scan')).toMatchObject({ remaining: undefined, waitSec: 0 });
  });

  it('a host-list API spent for an hour holds back host lists only: polls, launches and cancels on the scan API go on', async () => {
    const { e, c } = await setup({ limits: { default: { limit: 300, windowSec: 3600, concurrency: 2 }, host: { limit: 1, windowSec: 3600, concurrency: 2 } } }, { throttle: { maxWaitSec: 2 } });
    const log = pino({ level: 'silent' });
    const budget = new Budget({ clock: { now: () => Date.now() }, scanner: c, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 }, log } as never);
    expect(await budget.hostList('verify', ['10.2.0.1'])).toEqual([{ ip: '10.2.0.1' }]); // not in the host list: no date
    const err = await budget.hostList('verify', ['10.2.0.1']).catch((x) => x);
    expect(err.outcome).toMatchObject({ next: 'wait', holds: 'call', code: 'ONSIGHT_QUALYS_RATE_LIMIT' });
    expect(budget.block().waitUntil).toBeUndefined();
    expect(budget.canSpend(false) && budget.canLaunch()).toBe(true);
    const { scanRef } = await budget.call('launch scan', 'launch', () => c.launch({ intentId: 'h-1', title: 'onsight h-1', targets: ['10.1.0.9'], appliance: 'sa-1' }));
    expect(await budget.call('list scans (poll)', 'listScans', () => c.listScans({ scanRefs: [scanRef] }))).toHaveLength(1);
    await budget.call('cancel scan', 'cancel', () => c.cancel(scanRef));
    // the next host list is refused here, not sent
    const sent = e.state.requests.filter((r) => r.api === 'host').length;
    await expect(budget.hostList('verify', ['10.2.0.1'])).rejects.toMatchObject({ outcome: { holds: 'call' } });
    expect(e.state.requests.filter((r) => r.api === 'host').length).toBe(sent);
  });

  it('gives up with QualysRateLimitError when Qualys asks for a longer wait than allowed', async () => {
    const { c } = await setup({ limits: { default: { limit: 1, windowSec: 30, concurrency: 2 } } }, { throttle: { maxWaitSec: 2 } });
    await c.listScans({});
    const err = await c.listScans({}).catch((x) => x);
    expect(err).toBeInstanceOf(QualysRateLimitError);
    expect(err.waitSec).toBeGreaterThan(2);
    expect(c.allowance().waitSec).toBeGreaterThan(2);
  });

  it('waits on injected 409s (1960 and 1965) and retries 5xx, within the caps', async () => {
    const { e, c } = await setup({ seed: 7, faults: { conflictShare: 0.3, conflictToWaitSec: 1, serverErrorShare: 0.3, apis: ['scan'] } });
    for (let i = 0; i < 8; i++) await c.listScans({});
    expect((e.state.faults['conflict-1960'] ?? 0) + (e.state.faults['conflict-1965'] ?? 0)).toBeGreaterThan(0);
    expect((e.state.faults['server-500'] ?? 0) + (e.state.faults['server-503'] ?? 0)).toBeGreaterThan(0);
    // every call above succeeded: the 409s were waited out and the 5xx retried
    expect(e.state.stats('scan').accepted).toBeGreaterThanOrEqual(8);
  });

  it('turns malformed XML into a typed error after bounded retries, never a crash', async () => {
    const { e, c } = await setup({ faults: { malformedShare: 1, apis: ['appliance'] } }, { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    const err = await c.appliances().catch((x) => x);
    expect(err).toBeInstanceOf(QualysXmlError);
    expect(err.code).toBe('ONSIGHT_QUALYS_XML');
    expect(e.state.requests.filter((r) => r.api === 'appliance')).toHaveLength(3);
    e.state.config.faults.malformedShare = 0;
    e.state.config.faults.truncatedShare = 1;
    await expect(c.appliances()).rejects.toBeInstanceOf(QualysXmlError);
  });

  it('fails fast with QualysAuthError on bad credentials', async () => {
    const { e } = await setup();
    const bad = new QualysClient({ baseUrl: e.url, username: e.username, password: 'wrong-password', ...FAST });
    open.push(bad);
    const err = await bad.appliances().catch((x) => x);
    expect(err).toBeInstanceOf(QualysAuthError);
    expect(err).toMatchObject({ code: 'ONSIGHT_QUALYS_AUTH', status: 401, qualysCode: 2000, retryable: false });
    expect(e.state.requests).toHaveLength(1);
  });

  it('reports network failures as QualysNetworkError after retries', async () => {
    const port = await freePort();
    const c = new QualysClient({ baseUrl: `http://127.0.0.1:${port}`, username: 'u', password: 'p4ssw0rd!', ...FAST, connectTimeoutMs: 500 });
    open.push(c);
    await expect(c.appliances()).rejects.toBeInstanceOf(QualysNetworkError);
  });

  it('does not follow a next-page URL off the platform (credentials stay on Qualys hosts)', async () => {
    const page = `<?xml version="1.0" encoding="UTF-8" ?><HOST_LIST_OUTPUT><RESPONSE><DATETIME>2026-01-01T00:00:00Z</DATETIME>
      <HOST_LIST><HOST><ID>1</ID><IP>10.0.0.1</IP><LAST_VULN_SCAN_DATETIME>2026-01-01T00:00:00Z</LAST_VULN_SCAN_DATETIME></HOST></HOST_LIST>
      <WARNING><CODE>1980</CODE><TEXT>1 record limit exceeded.</TEXT><URL>https://evil.example/api/2.0/fo/asset/host/?action=list&amp;id_min=2</URL></WARNING>
      </RESPONSE></HOST_LIST_OUTPUT>`;
    let calls = 0;
    const srv = createHttpServer((_req, res) => {
      calls++;
      res.writeHead(200, { 'content-type': 'text/xml' }).end(page);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    open.push({ close: () => new Promise<void>((r) => srv.close(() => r())) });
    const c = new QualysClient({ baseUrl: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, username: 'u', password: 'p', ...FAST });
    open.push(c);
    await expect(c.hostList({ ips: ['10.0.0.1'] })).rejects.toThrow(/not following the next-page URL https:\/\/evil.example\/api\/2.0\/fo\/asset\/host\/ \(the base URL 127.0.0.1:\d+ is not under a known Qualys platform domain/);
    expect(calls).toBe(1);
  });

  it('close() ends calls that are waiting for the allowance', async () => {
    const { c } = await setup({ limits: { default: { limit: 1, windowSec: 30, concurrency: 1 } } }, { throttle: { maxWaitSec: 60 } });
    await c.listScans({});
    const waiting = c.listScans({}).catch((x) => x);
    await sleep(100);
    await c.close();
    expect(await waiting).toMatchObject({ code: 'ONSIGHT_CLOSED' });
  });

  it('refuses a base URL with credentials in it', () => {
    expect(() => new QualysClient({ baseUrl: 'https://u:secret@qualysapi.qualys.eu', username: 'u', password: 'secret' })).toThrow(/must not contain credentials/);
  });
});

describe('credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-cred-'));
  const secret = 'S3cr3t-p@ss';

  it('reads the password from a file, an environment variable, or a systemd credential', () => {
    writeFileSync(join(dir, 'pass'), `${secret}\n`);
    writeFileSync(join(dir, 'qualys'), secret);
    expect(loadPassword({ passwordFile: join(dir, 'pass') })).toBe(secret);
    expect(loadPassword({ passwordEnv: 'QPASS' }, { QPASS: secret })).toBe(secret);
    expect(loadPassword({ credential: 'qualys' }, { CREDENTIALS_DIRECTORY: dir })).toBe(secret);
  });

  it('fails with ONSIGHT_CREDENTIALS naming the source, never the value', () => {
    writeFileSync(join(dir, 'empty'), '\n');
    const cases = [
      () => loadPassword({}),
      () => loadPassword({ passwordFile: join(dir, 'missing') }),
      () => loadPassword({ passwordFile: join(dir, 'empty') }),
      () => loadPassword({ passwordEnv: 'NOPE' }, {}),
      () => loadPassword({ credential: 'qualys' }, {}),
      () => loadPassword({ credential: '../etc/passwd' }, { CREDENTIALS_DIRECTORY: dir }),
      () => loadPassword({ passwordEnv: 'QPASS', passwordFile: join(dir, 'pass') }, { QPASS: secret }),
    ];
    for (const f of cases) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ONSIGHT_CREDENTIALS' });
      expect(String((err as Error).message)).not.toContain(secret);
    }
  });

  it('doctor says when a password file holds what is most likely not the password (a byte-order mark, a second line break), never the password', () => {
    const cases: [string, RegExp | undefined][] = [
      [`${secret}\n`, undefined],
      [`${secret}`, undefined],
      [`\uFEFF${secret}\n`, /starts with a byte-order mark/],
      [`${secret}\n\n`, /ends with a line break after the one ignored/],
      [`${secret} \n`, /ends with a space or tab/],
      [`${secret}\r\n\r\n`, /ends with a line break/],
      [`${secret}\nsecond line\n`, /holds a line break/],
    ];
    for (const [text, odd] of cases) {
      writeFileSync(join(dir, 'odd'), text);
      const [line] = qualysDoctor({ passwordFile: join(dir, 'odd') } as never, { env: {} });
      expect(line.text, JSON.stringify(text)).not.toContain(secret);
      if (odd) expect([line.mark, line.text], JSON.stringify(text)).toEqual(['warn', expect.stringMatching(odd)]);
      else expect(line, JSON.stringify(text)).toEqual({ mark: 'ok', what: 'credentials', text: `password file ${join(dir, 'odd')} readable (not shown)` });
    }
  });

  it('never writes the password to a log line or an error message (success, 401, 5xx, dropped sockets, refused connections)', async () => {
    const password = 'Very-S3cret-Passw0rd';
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = pino({ level: 'debug' }, sink);
    const e = await startQualysEmulator({ password, speed: 1000, appliances: [{ name: 'sa-1' }], seed: 3 });
    open.push(e);
    writeFileSync(join(dir, 'qpass'), password);
    const scanner = createQualysScanner({ url: e.url, username: e.username, passwordFile: join(dir, 'qpass'), optionProfile: 'Initial Options', maxTargetsPerScan: 5, ...FAST, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }, log);
    open.push(scanner);
    const wrong = new QualysClient({ baseUrl: e.url, username: e.username, password: `${password}-old`, ...FAST }, { log });
    open.push(wrong);
    const port = await freePort();
    const nowhere = new QualysClient({ baseUrl: `http://127.0.0.1:${port}`, username: 'u', password, ...FAST, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }, { log });
    open.push(nowhere);

    const errors: unknown[] = [];
    const attempt = async (p: Promise<unknown>) => p.catch((x) => errors.push(x));
    await attempt(scanner.launch({ intentId: 'cred-1', title: 'onsight cred-1', targets: ['10.3.0.1'], appliance: 'sa-1' }));
    await attempt(scanner.appliances());
    await attempt(scanner.lastScanned(['10.3.0.1']));
    await attempt(wrong.appliances());
    e.state.config.faults.serverErrorShare = 1;
    await attempt(scanner.listScans({}));
    e.state.config.faults.serverErrorShare = 0;
    e.state.config.faults.dropShare = 1;
    await attempt(scanner.appliances());
    await attempt(scanner.launch({ intentId: 'cred-2', title: 'onsight cred-2', targets: ['10.3.0.2'], appliance: 'sa-1' }));
    e.state.config.faults.dropShare = 0;
    e.state.config.faults.malformedShare = 1;
    await attempt(scanner.listScans({}));
    e.state.config.faults.malformedShare = 0;
    await attempt(nowhere.appliances());

    expect(errors.length).toBeGreaterThanOrEqual(5);
    const token = Buffer.from(`${e.username}:${password}`).toString('base64');
    const everything = [
      ...lines,
      ...errors.map((x) => `${(x as Error).message} ${JSON.stringify(x)} ${String((x as Error).stack)} ${String((x as Error & { cause?: Error }).cause?.message)}`),
    ].join('\n');
    expect(lines.length).toBeGreaterThan(10);
    expect(everything).toContain('qualys call');
    expect(everything).not.toContain(password);
    expect(everything).not.toContain(token);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export type { QualysEmulator };
