/**
 * The emulator on its own, spoken to with plain HTTP: the wire shapes, auth and headers,
 * method rules, limits, the scan state machine on an injected clock, appliances going
 * offline, pagination, sessions, option files and the CLI entry.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';
import { spellDuration } from '../src/emulator/qualys/limits.js';
import { loadEmulatorConfig, runEmulatorCli, startQualysEmulator, type EmulatorOptions, type QualysEmulator } from '../src/emulator/qualys/index.js';

const open: QualysEmulator[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function start(o: EmulatorOptions = {}): Promise<QualysEmulator> {
  const e = await startQualysEmulator({ appliances: [{ name: 'sa-1', capacity: 2 }], ...o });
  open.push(e);
  return e;
}

interface Call {
  method?: 'GET' | 'POST';
  params?: Record<string, string>;
  auth?: string | null;
  xrw?: boolean;
  cookie?: string;
  path?: string;
}

async function call(e: QualysEmulator, path: string, c: Call = {}) {
  const method = c.method ?? 'GET';
  const qs = new URLSearchParams(c.params ?? {}).toString();
  const headers: Record<string, string> = {};
  const auth = c.auth === undefined ? `${e.username}:${e.password}` : c.auth;
  if (auth !== null) headers.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
  if (c.xrw !== false) headers['x-requested-with'] = 'test';
  if (c.cookie) headers.cookie = c.cookie;
  if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await request(`${e.url}${path}${method === 'GET' && qs ? `?${qs}` : ''}`, { method, headers, body: method === 'POST' ? qs : undefined });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const SCAN = '/api/2.0/fo/scan/'; // launch and cancel: 2.0 only
const SCAN_LIST = '/api/3.0/fo/scan/';
const HOSTS = '/api/5.0/fo/asset/host/';
const launchParams = (ip: string, title = 'onsight t') => ({ action: 'launch', scan_title: title, ip, iscanner_name: 'sa-1', option_title: 'Initial Options' });
const refOf = (body: string) => /<KEY>REFERENCE<\/KEY>\s*<VALUE>([^<]+)<\/VALUE>/.exec(body)?.[1];
const stateOf = (body: string) => /<STATE>([^<]+)<\/STATE>/.exec(body)?.[1];

describe('qualys emulator: wire format, auth and methods', () => {
  it('launch answers SIMPLE_RETURN with ITEM_LIST ID and REFERENCE, plus the six limit headers', async () => {
    const e = await start();
    const r = await call(e, SCAN, { method: 'POST', params: launchParams('10.0.0.1,10.0.0.2') });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/xml/);
    expect(r.body).toMatch(/^<\?xml version="1.0" encoding="UTF-8" \?>\n<!DOCTYPE SIMPLE_RETURN SYSTEM "https:\/\/127.0.0.1:\d+\/api\/2.0\/simple_return.dtd">/);
    expect(r.body).toContain('<TEXT>New vm scan launched</TEXT>');
    expect(r.body).toMatch(/<ITEM><KEY>ID<\/KEY><VALUE>\d+<\/VALUE><\/ITEM>/);
    expect(refOf(r.body)).toMatch(/^scan\/\d+\.\d+$/);
    for (const h of ['x-ratelimit-limit', 'x-ratelimit-window-sec', 'x-ratelimit-remaining', 'x-ratelimit-towait-sec', 'x-concurrency-limit-limit', 'x-concurrency-limit-running']) {
      expect(r.headers[h], h).toMatch(/^\d+$/);
    }
    expect(r.headers['x-ratelimit-remaining']).toBe('299');
    expect(r.headers['x-concurrency-limit-running']).toBe('1');
  });

  it('checks basic auth, X-Requested-With, POST-only actions and launch parameters', async () => {
    const e = await start({ optionProfiles: ['Initial Options'] });
    const bad = await call(e, SCAN_LIST, { params: { action: 'list' }, auth: 'onsight:nope' });
    expect(bad.status).toBe(401);
    expect(bad.body).toContain('<CODE>2000</CODE>');
    expect((await call(e, SCAN_LIST, { params: { action: 'list' }, auth: null })).status).toBe(401);
    const noXrw = await call(e, SCAN_LIST, { params: { action: 'list' }, xrw: false });
    expect(noXrw.status).toBe(400);
    expect(noXrw.body).toContain('X-Requested-With');
    const get = await call(e, SCAN, { params: launchParams('10.0.0.1') });
    expect(get.body).toContain('<CODE>1908</CODE>');
    const cases: [Record<string, string>, number][] = [
      [{ ...launchParams('10.0.0.1'), option_id: '1' }, 1904],
      [{ action: 'launch', ip: '10.0.0.1', iscanner_name: 'sa-1' }, 1903],
      [{ action: 'launch', option_title: 'Initial Options', iscanner_name: 'sa-1' }, 1922],
      [{ ...launchParams('10.0.0.1'), iscanner_name: 'nope' }, 1905],
      [{ ...launchParams('10.0.0.1'), option_title: 'Unknown profile' }, 1905],
      [{ ...launchParams('10.0.0.1'), priority: '12' }, 1905],
      [{ ...launchParams('10.0.0.x') }, 1905],
      [{ ...launchParams('8.8.8.8') }, 1905], // not in the subscription
      [{ ...launchParams('10.0.0.1'), iscanner_id: '1187' }, 1904],
    ];
    for (const [params, code] of cases) {
      const r = await call(e, SCAN, { method: 'POST', params });
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.body, JSON.stringify(params)).toContain(`<CODE>${code}</CODE>`);
    }
    expect(e.state.model.scans).toHaveLength(0);
    const nis = await call(e, SCAN, { method: 'POST', params: launchParams('8.8.8.8') });
    expect(nis.body).toContain('not in your subscription: 8.8.8.8');
  });

  it('accepts a QualysSession cookie from action=login, and rejects it after logout', async () => {
    const e = await start();
    const login = await call(e, '/api/2.0/fo/session/', { method: 'POST', auth: null, params: { action: 'login', username: e.username, password: e.password } });
    expect(login.status).toBe(200);
    expect(login.body).toContain('Logged in');
    expect(login.headers['x-ratelimit-limit']).toBeUndefined(); // the session API is exempt
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    expect(cookie).toMatch(/^QualysSession=[0-9a-f]+$/);
    expect((await call(e, SCAN_LIST, { params: { action: 'list' }, auth: null, cookie })).status).toBe(200);
    await call(e, '/api/2.0/fo/session/', { method: 'POST', auth: null, cookie, params: { action: 'logout' } });
    expect((await call(e, SCAN_LIST, { params: { action: 'list' }, auth: null, cookie })).status).toBe(401);
  });

  it('answers each call only on the version Qualys serves today, with that version\'s document', async () => {
    const e = await start();
    const list = await call(e, SCAN_LIST, { params: { action: 'list' } });
    expect(list.status).toBe(200);
    expect(list.body).toMatch(/<!DOCTYPE SCAN_LIST_OUTPUT SYSTEM "https:\/\/[^"]+\/api\/3.0\/fo\/scan\/scan_list_output.dtd">/);
    const hosts = await call(e, HOSTS, { params: { action: 'list' } });
    expect(hosts.status).toBe(200);
    expect(hosts.body).toContain('<HOST_LIST_OUTPUT>');
    // retired: the 2.0 scan list and the 2.0-4.0 host lists; never served: launch on 3.0
    for (const [path, params, method] of [
      ['/api/2.0/fo/scan/', { action: 'list' }, 'GET'], ['/api/2.0/fo/asset/host/', { action: 'list' }, 'GET'],
      ['/api/4.0/fo/asset/host/', { action: 'list' }, 'GET'], ['/api/3.0/fo/scan/', launchParams('10.0.0.1'), 'POST'],
      ['/api/3.0/fo/appliance/', { action: 'list' }, 'GET'],
    ] as const) {
      const r = await call(e, path, { params, method });
      expect(r.status, path).toBe(404);
      expect(r.body, path).toMatch(/<CODE>1905<\/CODE>/);
    }
    expect(e.state.model.scans).toHaveLength(0);
    expect((await call(e, '/api/2.0/fo/nothing/', { params: { action: 'list' } })).status).toBe(404);
  });
});

describe('qualys emulator: limits', () => {
  it('blocks over the rate with 409 CODE 1965 and ToWait-Sec, and over concurrency with 1960', async () => {
    const e = await start({ limits: { default: { limit: 2, windowSec: 30, concurrency: 1 } }, faults: { slowShare: 1, slowMs: 300, apis: ['appliance'] } });
    await call(e, SCAN_LIST, { params: { action: 'list' } });
    const second = await call(e, SCAN_LIST, { params: { action: 'list' } });
    expect(second.headers['x-ratelimit-remaining']).toBe('0');
    const third = await call(e, SCAN_LIST, { params: { action: 'list' } });
    expect(third.status).toBe(409);
    expect(third.body).toContain('<CODE>1965</CODE>');
    expect(Number(third.headers['x-ratelimit-towait-sec'])).toBeGreaterThanOrEqual(29);
    // the appliance API has its own budget; two at once with limit 1 → one gets 1960
    const both = await Promise.all([call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' } }), call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' } })]);
    const statuses = both.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409]);
    expect(both.find((r) => r.status === 409)!.body).toContain('<CODE>1960</CODE>');
    expect(e.state.stats('appliance')).toMatchObject({ blockedConcurrency: 1, peakRunning: 1, peakAttempted: 2 });
    expect(e.state.stats('scan')).toMatchObject({ accepted: 2, blockedRate: 1, maxAcceptedInWindow: 2 });
  });
});

describe('qualys emulator: scans on the clock', () => {
  it('moves scans Submitted → Queued → Running → Loading → Finished, hosts in parallel per appliance, then updates host dates', async () => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const e = await start({ now: () => now, appliances: [{ name: 'sa-1', capacity: 2 }], scanTiming: { submitDelaySec: 60, hostSecMin: 100, hostSecMax: 100, loadingSec: 30 } });
    const ref = refOf((await call(e, SCAN, { method: 'POST', params: launchParams('10.0.0.1-10.0.0.3', 'onsight clock') }))!.body)!;
    const state = async () => stateOf((await call(e, SCAN_LIST, { params: { action: 'list', scan_ref: ref } })).body);
    expect(await state()).toBe('Submitted');
    now += 60_000;
    expect(await state()).toBe('Running');
    const app = (await call(e, '/api/2.0/fo/appliance/', { params: { action: 'list', output_mode: 'full', scan_detail: '1' } })).body;
    expect(app).toContain('<RUNNING_SLICES_COUNT>2</RUNNING_SLICES_COUNT><RUNNING_SCAN_COUNT>1</RUNNING_SCAN_COUNT><STATUS>Online</STATUS>');
    expect(app).toMatch(new RegExp(`<RUNNING_SCANS><SCAN><ID>\\d+</ID><TITLE><!\\[CDATA\\[onsight clock\\]\\]></TITLE><REF>${ref}</REF><TYPE>API</TYPE><SCAN_DATE>`));
    expect(app).toContain('<MAX_CAPACITY_UNITS>2</MAX_CAPACITY_UNITS>');
    now += 100_000; // first two hosts done, the third starts
    expect(await state()).toBe('Running');
    now += 100_000;
    expect(await state()).toBe('Loading');
    const hostsBefore = (await call(e, HOSTS, { params: { action: 'list', ips: '10.0.0.1-10.0.0.3' } })).body;
    expect(hostsBefore).not.toContain('<HOST>'); // dates change only once processed
    now += 30_000;
    const list = (await call(e, SCAN_LIST, { params: { action: 'list', scan_ref: ref } })).body;
    expect(stateOf(list)).toBe('Finished');
    expect(list).toContain('<PROCESSED>1</PROCESSED>');
    expect(list).toContain('<DURATION>00:04:50</DURATION>');
    expect(list).toContain('<TITLE><![CDATA[onsight clock]]></TITLE>');
    const hosts = (await call(e, HOSTS, { params: { action: 'list', ips: '10.0.0.1-10.0.0.3' } })).body;
    expect(hosts.match(/<HOST>/g)).toHaveLength(3);
    expect(hosts).toContain('<LAST_VULN_SCAN_DATETIME>2026-03-01T10:04:50Z</LAST_VULN_SCAN_DATETIME>');
    expect(hosts).toContain('<LAST_VM_SCANNED_DATE>2026-03-01T10:02:40Z</LAST_VM_SCANNED_DATE>');
  });

  it('queues scans beyond an appliance\'s capacity and the subscription\'s scan cap', async () => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const e = await start({ now: () => now, maxConcurrentScans: 1, appliances: [{ name: 'sa-1', capacity: 5 }], scanTiming: { submitDelaySec: 0, hostSecMin: 100, hostSecMax: 100, loadingSec: 0 } });
    const a = refOf((await call(e, SCAN, { method: 'POST', params: launchParams('10.0.0.1') })).body)!;
    const b = refOf((await call(e, SCAN, { method: 'POST', params: launchParams('10.0.0.2') })).body)!;
    expect(e.state.model.findScan(a)!.state).toBe('Running');
    expect(e.state.model.findScan(b)!.state).toBe('Queued');
    now += 100_000;
    e.state.model.advance();
    expect(e.state.model.findScan(a)!.state).toBe('Finished');
    expect(e.state.model.findScan(b)!.state).toBe('Running');
  });

  it('runs a scan\'s hosts at most its option profile\'s hosts to scan at once, within the appliance\'s capacity', async () => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const e = await start({
      now: () => now, appliances: [{ name: 'sa-1', capacity: 5 }],
      optionProfiles: ['Initial Options', { title: 'Two at once', hostsToScan: 2 }, { title: 'Scaled', hostsToScan: 2, parallelScaling: true }],
      scanTiming: { submitDelaySec: 0, hostSecMin: 100, hostSecMax: 100, loadingSec: 0 },
    });
    const running = (ref: string) => e.state.model.findScan(ref)!.jobs.filter((j) => j.startAt !== undefined && !j.done).length;
    const launch = async (ips: string, profile: string) => refOf((await call(e, SCAN, { method: 'POST', params: { ...launchParams(ips), option_title: profile } })).body)!;
    const a = await launch('10.0.0.1-10.0.0.3', 'Two at once');
    expect(running(a)).toBe(2);
    const b = await launch('10.0.0.11-10.0.0.14', 'Scaled'); // parallel scaling: the appliance's room decides
    expect(running(b)).toBe(3);
    now += 100_000;
    e.state.model.advance();
    expect(running(a)).toBe(1); // its third host, the appliance having room for more
    expect(running(b)).toBe(1);
    const c = await launch('10.0.0.21-10.0.0.29', 'Initial Options'); // a bare title: 30 at once, so the capacity decides
    expect(running(c)).toBe(3);
  });

  it('takes an appliance offline at the configured time: its running scans end in Error, new ones wait', async () => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const e = await start({
      now: () => now, scanTiming: { submitDelaySec: 0, hostSecMin: 300, hostSecMax: 300, loadingSec: 0 },
      faults: { applianceOffline: [{ name: 'sa-1', atSec: 60, untilSec: 600 }] },
    });
    const a = refOf((await call(e, SCAN, { method: 'POST', params: launchParams('10.0.0.1') })).body)!;
    now += 61_000;
    const app = (await call(e, '/api/2.0/fo/appliance/', { params: { action: 'list', output_mode: 'full' } })).body;
    expect(app).toContain('<STATUS>Offline</STATUS>');
    expect(app).toContain('<HEARTBEATS_MISSED>1</HEARTBEATS_MISSED>');
    expect(stateOf((await call(e, SCAN_LIST, { params: { action: 'list', scan_ref: a } })).body)).toBe('Error');
    const b = refOf((await call(e, SCAN, { method: 'POST', params: launchParams('10.0.0.2') })).body)!;
    expect(e.state.model.findScan(b)!.state).toBe('Queued');
    now = Date.parse('2026-03-01T10:10:01Z');
    e.state.model.advance();
    expect(e.state.model.findScan(b)!.state).toBe('Running');
  });

  it('ends a configured share of scans in Error, deterministically for a seed', async () => {
    const run = async (seed: number) => {
      const now = Date.parse('2026-03-01T10:00:00Z');
      let t = now;
      const e = await start({ seed, now: () => t, faults: { scanErrorShare: 0.5 }, scanTiming: { submitDelaySec: 0, hostSecMin: 10, hostSecMax: 20, loadingSec: 0 } });
      for (let i = 1; i <= 12; i++) await call(e, SCAN, { method: 'POST', params: launchParams(`10.0.1.${i}`) });
      t = now + 3600_000;
      e.state.model.advance();
      return e.state.model.scans.map((s) => s.state).join(',');
    };
    const first = await run(11);
    expect(first).toMatch(/Error/);
    expect(first).toMatch(/Finished/);
    expect(await run(11)).toBe(first);
  });
});

describe('qualys emulator: host list pagination', () => {
  it('truncates at truncation_limit with WARNING 1980 and a next-page URL carrying id_min', async () => {
    const hosts = Array.from({ length: 5 }, (_, i) => ({ ip: `10.0.2.${i + 1}`, lastScannedAt: '2026-02-01T00:00:00Z' }));
    const e = await start({ hosts });
    const first = await call(e, HOSTS, { method: 'POST', params: { action: 'list', ips: '10.0.2.0/24', truncation_limit: '2' } });
    expect(first.body.match(/<HOST>/g)).toHaveLength(2);
    expect(first.body).toContain('<CODE>1980</CODE>');
    const url = /<URL><!\[CDATA\[(.*?)\]\]><\/URL>/.exec(first.body)![1];
    const u = new URL(url);
    expect(u.origin).toBe(e.url);
    expect(u.searchParams.get('id_min')).toBe('10112202');
    expect(u.searchParams.get('truncation_limit')).toBe('2');
    const rest = await call(e, u.pathname, { params: Object.fromEntries(u.searchParams), method: 'GET' });
    expect(rest.body.match(/<HOST>/g)).toHaveLength(2);
    const last = await call(e, u.pathname, { params: { ...Object.fromEntries(u.searchParams), id_min: '10112204' } });
    expect(last.body.match(/<HOST>/g)).toHaveLength(1);
    expect(last.body).not.toContain('<WARNING>');
  });
});

describe('qualys emulator: options file and CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-emu-'));

  it('loads YAML and JSON option files and reports bad keys with their path', () => {
    writeFileSync(join(dir, 'emu.yaml'), 'speed: 60\nappliances:\n  - { name: dc1-sa, capacity: 8 }\nfaults:\n  conflictShare: 0.1\n');
    const y = loadEmulatorConfig(join(dir, 'emu.yaml'));
    expect(y.speed).toBe(60);
    expect(y.appliances[0]).toMatchObject({ name: 'dc1-sa', capacity: 8, online: true });
    expect(y.faults.conflictShare).toBe(0.1);
    writeFileSync(join(dir, 'emu.json'), JSON.stringify({ limits: { scan: { limit: 5, windowSec: 10, concurrency: 1 } } }));
    expect(loadEmulatorConfig(join(dir, 'emu.json')).limits.scan).toEqual({ limit: 5, windowSec: 10, concurrency: 1 });
    writeFileSync(join(dir, 'bad.yaml'), 'faults:\n  dropShare: 2\n');
    expect(() => loadEmulatorConfig(join(dir, 'bad.yaml'))).toThrow(/faults\.dropShare/);
  });

  it('the documented example options file is valid', () => {
    const c = loadEmulatorConfig(join(REPO, 'src/emulator/qualys/example.yaml'));
    expect(c.appliances.map((a) => a.name)).toEqual(['emea-sa-1', 'emea-sa-2', 'us-sa-1']);
    expect(c.faults.applianceOffline).toHaveLength(1);
  });

  it('runEmulatorCli starts the server and prints its URL and the credentials it accepts', async () => {
    writeFileSync(join(dir, 'cli.yaml'), 'username: dry\npassword: run-only\nappliances:\n  - { name: lab-sa }\n');
    const lines: string[] = [];
    const e = await runEmulatorCli({ port: 0, config: join(dir, 'cli.yaml') }, pino({ level: 'silent' }), (l) => lines.push(l));
    open.push(e);
    const out = lines.join('\n');
    expect(out).toContain(e.url);
    expect(out).toContain('username: dry');
    expect(out).toContain('password: run-only');
    expect(out).toContain('lab-sa');
    expect((await call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' } })).body).toContain('<NAME>lab-sa</NAME>');
  });
});

describe('qualys emulator: answers shaped like the real ones', () => {
  it('409s as documented: 1965 with SECONDS_TO_WAIT, the wait in words and all six headers; 1960 with CALLS_TO_FINISH and no ToWait/Remaining header', async () => {
    const e = await start({ limits: { default: { limit: 1, windowSec: 3600, concurrency: 1 } }, faults: { slowShare: 1, slowMs: 300, apis: ['appliance'] } });
    await call(e, SCAN_LIST, { params: { action: 'list' } });
    const rate = await call(e, SCAN_LIST, { params: { action: 'list' } });
    expect(rate.status).toBe(409);
    expect(rate.body).not.toContain('<?xml');
    expect(rate.body).toMatch(/^\n {4}<SIMPLE_RETURN>/);
    expect(rate.body).toMatch(/<TEXT> This API cannot be run again for another \d+ (hour|minute|second)s?(, \d+ \w+)*( and \d+ \w+)?\.<\/TEXT>/);
    expect(spellDuration(86274)).toBe('23 hours, 57 minutes and 54 seconds'); // the documented example's wording
    expect(spellDuration(3600)).toBe('1 hour');
    expect(spellDuration(61)).toBe('1 minute and 1 second');
    const wait = Number(/<KEY>SECONDS_TO_WAIT<\/KEY>\s*<VALUE>(\d+)<\/VALUE>/.exec(rate.body)?.[1]);
    expect(wait).toBeGreaterThan(3590);
    expect(rate.headers['x-ratelimit-towait-sec']).toBe(String(wait));
    expect(rate.headers['x-ratelimit-remaining']).toBe('0');
    const both = await Promise.all([call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' } }), call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' } })]);
    const conc = both.find((r) => r.status === 409)!;
    expect(conc.body).toContain('<CODE>1960</CODE>');
    expect(conc.body).toContain('<TEXT> This API cannot be run again until 1 currently running API instance has finished.</TEXT>');
    expect(conc.body).toMatch(/<KEY>CALLS_TO_FINISH<\/KEY>\s*<VALUE>1<\/VALUE>/);
    expect(conc.headers['x-ratelimit-towait-sec']).toBeUndefined();
    expect(conc.headers['x-ratelimit-remaining']).toBeUndefined();
    expect(conc.headers['x-concurrency-limit-limit']).toBe('1');
    expect(conc.headers['x-concurrency-limit-running']).toBe('1');
  });

  it('401 without WWW-Authenticate or limit headers; 400 without an XML declaration', async () => {
    const e = await start();
    const bad = await call(e, SCAN_LIST, { params: { action: 'list' }, auth: 'onsight:nope' });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBeUndefined();
    expect(bad.headers['x-ratelimit-limit']).toBeUndefined();
    expect(bad.body).toMatch(/^<\?xml /);
    const r400 = await call(e, SCAN, { method: 'POST', params: { ...launchParams('10.0.0.1'), priority: '12' } });
    expect(r400.status).toBe(400);
    expect(r400.body).toMatch(/^<!DOCTYPE SIMPLE_RETURN SYSTEM /);
  });

  it('account switches: expired (HTTP 200, CODE 2001), registration (409, 2003), securid (409, 2011), none with limit headers', async () => {
    for (const [account, status, code, text] of [
      ['expired', 200, 2001, 'This account has expired.'], ['registration', 409, 2003, 'Registration must be completed'], ['securid', 409, 2011, 'SecureID'],
    ] as const) {
      const e = await start({ account });
      const r = await call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' } });
      expect(r.status, account).toBe(status);
      expect(r.body, account).toContain(`<CODE>${code}</CODE>`);
      expect(r.body, account).toContain(text);
      expect(r.headers['x-ratelimit-limit'], account).toBeUndefined();
      expect((await call(e, '/api/2.0/fo/appliance/', { params: { action: 'list' }, auth: 'onsight:nope' })).status, account).toBe(401);
    }
  });

  it('an evaluation subscription gets XML comments before and after the root of its answers', async () => {
    const e = await start({ evaluation: true });
    const r = await call(e, HOSTS, { params: { action: 'list' } });
    expect(r.body).toMatch(/^<\?xml [^\n]*\n<!-- This report was generated with an evaluation version of Qualys \/\/--> \n<HOST_LIST_OUTPUT>/);
    expect(r.body).toMatch(/<\/HOST_LIST_OUTPUT>\n<!-- This report was generated with an evaluation version of Qualys \/\/--> \n<!-- CONFIDENTIAL AND PROPRIETARY INFORMATION\. [^\n]* \/\/--> \n$/);
  });
});
