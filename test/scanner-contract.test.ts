/**
 * The scanner contract: one set of tests every backend must pass — the Qualys client against the
 * emulator (real HTTP on loopback), dry-run, the simulator's scanner, the scripted test scanner.
 * Launch, list (by ref, by launch time), cancel, appliances, last-scanned dates, allowance, scheduled
 * range scans where the backend has them (syncSchedules), each
 * failure class the backend can show mapped onto the right seam outcome, and finding a launch
 * again by the intent id in its title (what reconcile does after a crash).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { qualysBackend } from '../src/scanners/qualys/backend.js';
import { dryRunBackend, DryRunScanner } from '../src/scanners/dry-run/index.js';
import { startTenableEmulator, type TenableEmulator, type TenableEmulatorOptions } from '../src/emulator/tenable/index.js';
import { TenableClient, tenableBackend, type TenableClientOptions } from '../src/scanners/tenable/index.js';
import { startRapid7Emulator, type Rapid7Emulator, type Rapid7EmulatorOptions } from '../src/emulator/rapid7/index.js';
import { Rapid7Client, rapid7Backend, type Rapid7ClientOptions } from '../src/scanners/rapid7/index.js';
import { selfSignedCert } from './helpers/tls-cert.js';
import { SimScanner } from '../src/sim/scanner.js';
import { BUILTIN } from '../src/sim/scenario.js';
import { generateWorkload } from '../src/sim/workload.js';
import { EXCLUDE, SCOPE } from '../src/sim/sim.js';
import { TERMINAL_STATES, type FailureOutcome, type Scanner, type ScannerCall, type ScanState } from '../src/scanners/types.js';
import { silentLogger } from '../src/log.js';
import { ScriptedScanner } from './helpers/scanner.js';

const STATES: ScanState[] = ['submitted', 'queued', 'running', 'paused', 'finished', 'error', 'canceled', 'unknown'];

interface FailureClass {
  /** what the seam must say about it */
  expect: Partial<FailureOutcome> & { launched: FailureOutcome['launched']; next: FailureOutcome['next'] };
  /** make the backend fail this way; the call made and what it threw */
  provoke: () => Promise<{ call: ScannerCall; err: unknown }>;
}

interface Subject {
  scanner: Scanner;
  appliance: string;
  /** addresses the backend may scan */
  targets: string[];
  /** the backend's clock (simulated time for the simulator) */
  now: () => number;
  failures: Record<string, FailureClass>;
  close(): Promise<void>;
}

async function thrown(call: ScannerCall, f: () => Promise<unknown>): Promise<{ call: ScannerCall; err: unknown }> {
  try {
    await f();
  } catch (err) {
    return { call, err };
  }
  throw new Error(`${call} did not fail`);
}

const req = (id: string, appliance: string, targets: string[]) => ({ intentId: id, title: `onsight ${id} contract`, targets, appliance });

// ------------------------------------------------------------------------------------ subjects

async function qualysSubject(): Promise<Subject> {
  const emus: QualysEmulator[] = [];
  const emu = async (o: Parameters<typeof startQualysEmulator>[0] = {}) => {
    const e = await startQualysEmulator({ seed: 7, speed: 50, appliances: [{ name: 'sa-1', capacity: 4 }], ...o });
    emus.push(e);
    return e;
  };
  const clients: QualysClient[] = [];
  const client = (e: QualysEmulator, over: Partial<ConstructorParameters<typeof QualysClient>[0]> = {}) => {
    const c = new QualysClient({
      baseUrl: e.url, username: e.username, password: e.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, throttle: { concurrencyBackoffMs: 20, maxWaitSec: 0 }, ...over,
    });
    clients.push(c);
    return c;
  };
  const main = await emu();
  return {
    scanner: client(main), appliance: 'sa-1', targets: ['10.40.0.1', '10.40.0.2'], now: Date.now,
    failures: {
      // Qualys answers with an error CODE: nothing was launched
      refused: {
        expect: { launched: 'no', next: 'retry' },
        provoke: () => thrown('launch', () => client(main).launch(req('refused-1', 'no-such-appliance', ['10.40.0.3']))),
      },
      // 401: only an operator can fix the credentials
      auth: {
        expect: { launched: 'no', next: 'stop' },
        provoke: () => thrown('launch', () => client(main, { password: 'wrong' }).launch(req('auth-1', 'sa-1', ['10.40.0.4']))),
      },
      // a rate-limit block longer than the client waits: no call before the time Qualys names
      'rate-limit': {
        expect: { launched: 'no', next: 'wait' },
        provoke: async () => {
          const e = await emu({ limits: { default: { limit: 1, windowSec: 3600, concurrency: 2 } } });
          const c = client(e);
          await c.launch(req('limited-0', 'sa-1', ['10.40.0.5'])); // the scan API's one call in this window
          return thrown('launch', () => c.launch(req('limited-1', 'sa-1', ['10.40.0.5'])));
        },
      },
      // a scheduled scan on an appliance Qualys does not know: CODE 1905, nothing launched
      'schedule-refused': {
        expect: { launched: 'no', next: 'retry' },
        provoke: () => thrown('syncSchedules', () => client(main).syncSchedules([{ title: 'onsight-contract bad', targets: ['10.40.1.0/29'], appliance: 'no-such-appliance', timeUtc: '02:00' }], 'onsight-contract ')),
      },
      // the socket drops after Qualys processed the launch, and the scan list cannot be read either: the scan may exist
      'lost-answer': {
        expect: { launched: 'unknown', next: 'retry' },
        provoke: async () => {
          const e = await emu({ faults: { dropAfterShare: 1, apis: ['scan'] } });
          return thrown('launch', () => client(e).launch(req('lost-1', 'sa-1', ['10.40.0.6'])));
        },
      },
    },
    async close() {
      for (const c of clients) await c.close();
      for (const e of emus) await e.close();
    },
  };
}

async function tenableSubject(): Promise<Subject> {
  const emus: TenableEmulator[] = [];
  const clients: TenableClient[] = [];
  const emu = async (o: TenableEmulatorOptions = {}) => {
    const e = await startTenableEmulator({ seed: 7, scanners: [{ name: 'tn-1' }], scanTiming: { pickupSec: 1, hostSec: 30 }, assets: [{ ip: '10.50.0.1', lastScannedAt: '2026-11-20T08:00:00Z' }], ...o });
    emus.push(e);
    return e;
  };
  const client = (e: TenableEmulator, over: Partial<TenableClientOptions> = {}) => {
    const c = new TenableClient({ baseUrl: e.url, apiKeys: e.apiKeys, template: 'Basic Network Scan', reconcileDelayMs: 0, maxAttempts: 2, baseDelayMs: 5, maxRetryAfterS: 0, appliances: ['tn-1'], ...over });
    clients.push(c);
    return c;
  };
  const main = await emu();
  return {
    scanner: client(main), appliance: 'tn-1', targets: ['10.50.0.1', '10.50.0.2'], now: Date.now,
    failures: {
      // an appliance without a scan definition and no template to make one: only an operator can fix it
      'no-definition': {
        expect: { launched: 'no', next: 'stop' },
        provoke: () => thrown('launch', () => client(main, { template: undefined }).launch(req('nodef-1', 'no-such-scanner', ['10.50.0.3']))),
      },
      // 401: the API keys were refused
      auth: {
        expect: { launched: 'no', next: 'stop' },
        provoke: () => thrown('launch', () => client(main, { apiKeys: 'accessKey=00000000000000000000; secretKey=00000000000000000000' }).launch(req('auth-1', 'tn-1', ['10.50.0.4']))),
      },
      // 429 with a Retry-After longer than the client waits itself: no call before it ends
      'rate-limit': {
        expect: { launched: 'no', next: 'wait' },
        provoke: async () => {
          const e = await emu({ ratePerMinute: 2 });
          return thrown('launch', () => client(e).launch(req('limited-1', 'tn-1', ['10.50.0.5'])));
        },
      },
      // the container's active-scan limit: 429 on launch
      'active-scan-limit': {
        expect: { launched: 'no', next: 'wait' },
        provoke: async () => {
          const e = await emu({ maxActiveScans: 1 });
          const c = client(e);
          await c.launch(req('busy-0', 'tn-1', ['10.50.0.6']));
          return thrown('launch', () => c.launch(req('busy-1', 'tn-1', ['10.50.0.7'])));
        },
      },
      // the copy call's socket drops and no scan carries the intent id yet: one may still appear
      'lost-answer': {
        expect: { launched: 'unknown', next: 'retry' },
        provoke: async () => {
          const e = await emu({ faults: { dropShare: 1, routes: ['scans.copy'] } });
          return thrown('launch', () => client(e).launch(req('lost-1', 'tn-1', ['10.50.0.8'])));
        },
      },
    },
    async close() {
      for (const c of clients) await c.close();
      for (const e of emus) await e.close();
    },
  };
}

async function rapid7Subject(): Promise<Subject> {
  const cert = selfSignedCert();
  // without openssl the console is served over plain http (the TLS path is then not exercised)
  if ('skip' in cert) console.log(`rapid7 contract over plain http: ${cert.skip}`);
  const tls = 'skip' in cert ? undefined : { cert: cert.cert, key: cert.key };
  const emus: Rapid7Emulator[] = [];
  const clients: Rapid7Client[] = [];
  // (picked up at once: the console refuses to stop a scan still dispatched, as its API documents and
  // rapid7-client.test.ts shows, so the contract's cancel is of a running scan; a queued Rapid7 scan
  // the scheduler cannot cancel is a known gap, in the session 31 closing note)
  const emu = async (o: Rapid7EmulatorOptions = {}) => {
    const e = await startRapid7Emulator({ seed: 7, tls, engines: [{ name: 'r7-1' }], scanTiming: { pickupSec: 0, hostSec: 30 }, assets: [{ ip: '10.60.0.1', lastScannedAt: '2026-11-20T08:00:00Z' }], ...o });
    emus.push(e);
    return e;
  };
  const client = (e: Rapid7Emulator, over: Partial<Rapid7ClientOptions> = {}) => {
    const c = new Rapid7Client({ baseUrl: e.url, username: e.username, password: e.password, ca: tls?.cert, siteId: 1, reconcileDelayMs: 0, maxAttempts: 2, baseDelayMs: 5, ...over });
    clients.push(c);
    return c;
  };
  const main = await emu();
  return {
    scanner: client(main), appliance: 'r7-1', targets: ['10.60.0.1', '10.60.0.2'], now: Date.now,
    failures: {
      // an appliance that is neither an engine nor a pool: only an operator can fix the mapping
      'no-engine': {
        expect: { launched: 'no', next: 'stop' },
        provoke: () => thrown('launch', () => client(main).launch(req('noeng-1', 'no-such-engine', ['10.60.0.3']))),
      },
      auth: {
        expect: { launched: 'no', next: 'stop' },
        provoke: () => thrown('launch', () => client(main, { password: 'wrong' }).launch(req('auth-1', 'r7-1', ['10.60.0.4']))),
      },
      // a certificate we were not told to trust: refused before anything is sent; an operator sets scanner.ca (never "ignore TLS")
      ...(tls ? {
        'untrusted-certificate': {
          expect: { launched: 'no', next: 'stop' } as const,
          provoke: () => thrown('appliances', () => client(main, { ca: undefined }).appliances()),
        },
      } : {}),
      // the launch's socket drops after the console started the scan, and the scan list cannot be read: it may exist
      'lost-answer': {
        expect: { launched: 'unknown', next: 'retry' },
        provoke: async () => {
          const e = await emu({ faults: { dropAfterShare: 1, routes: ['sites.scans.start', 'scans.list'] } });
          return thrown('launch', () => client(e).launch(req('lost-1', 'r7-1', ['10.60.0.5'])));
        },
      },
    },
    async close() {
      for (const c of clients) await c.close();
      for (const e of emus) await e.close();
    },
  };
}

async function dryRunSubject(): Promise<Subject> {
  const scanner = new DryRunScanner({ appliances: ['dry-1'], scanDurationS: 60, print: () => undefined });
  return {
    scanner, appliance: 'dry-1', targets: ['10.1.0.1', '10.1.0.2'], now: Date.now,
    failures: {
      // it never fails on its own; an error it cannot explain may hide a launch
      unexplained: { expect: { launched: 'unknown', next: 'retry' }, provoke: async () => ({ call: 'launch', err: new Error('boom') }) },
    },
    close: () => scanner.close(),
  };
}

function makeSim(): { scanner: SimScanner; appliance: string; ip: (n: number) => string; limit: number } {
  const sc = { ...BUILTIN['tight-api-express'], days: 1 };
  const w = generateWorkload(sc, 1);
  const scanner = new SimScanner({ scenario: sc, workload: w, seed: 1, regionOf: () => sc.regions[0].name, scope: SCOPE, exclude: EXCLUDE });
  const base = w.regionCidrs[0][0].split('/')[0].split('.').map(Number);
  return { scanner, appliance: sc.appliances[0].name, ip: (n) => `${base[0]}.${base[1]}.${base[2]}.${base[3] + n}`, limit: sc.api.limit };
}

async function simSubject(): Promise<Subject> {
  const { scanner, appliance, ip } = makeSim();
  return {
    scanner, appliance, targets: [ip(10), ip(11)], now: () => scanner.now,
    failures: {
      refused: { expect: { launched: 'no', next: 'retry' }, provoke: () => thrown('launch', () => scanner.launch(req('sim-refused', 'no-such-appliance', [ip(12)]))) },
      // the rolling API window is spent (a fresh scanner, so the others' calls still go through):
      // no call before the oldest call leaves the window
      'rate-limit': {
        expect: { launched: 'no', next: 'wait' },
        provoke: async () => {
          const fresh = makeSim();
          for (let i = 0; i < fresh.limit; i++) await fresh.scanner.appliances();
          return thrown('launch', () => fresh.scanner.launch(req('sim-limited', fresh.appliance, [fresh.ip(13)])));
        },
      },
    },
    close: () => scanner.close(),
  };
}

async function scriptedSubject(): Promise<Subject> {
  const scanner = new ScriptedScanner();
  scanner.appliancesState = [{ name: 'scripted-1', online: true, runningScans: 0 }];
  const once = (how: NonNullable<ScriptedScanner['failNext']>, id: string) => () => {
    scanner.failNext = how;
    return thrown('launch', () => scanner.launch(req(id, 'scripted-1', ['10.2.0.9'])));
  };
  return {
    scanner, appliance: 'scripted-1', targets: ['10.2.0.1', '10.2.0.2'], now: Date.now,
    failures: {
      refused: { expect: { launched: 'no', next: 'retry' }, provoke: once('refused', 's-refused') },
      'lost-answer': { expect: { launched: 'unknown', next: 'retry' }, provoke: once('lost-answer', 's-lost') },
      'rate-limit': {
        expect: { launched: 'no', next: 'wait' },
        provoke: () => {
          scanner.waitUntil = Date.now() + 3600_000;
          return once('rate-limited', 's-limited')();
        },
      },
      denied: { expect: { launched: 'no', next: 'stop' }, provoke: once('denied', 's-denied') },
    },
    close: () => scanner.close(),
  };
}

const SUBJECTS: [string, () => Promise<Subject>][] = [
  ['qualys (client against the emulator)', qualysSubject],
  ['tenable (client against the emulator)', tenableSubject],
  ['rapid7 (client against the emulator, over TLS)', rapid7Subject],
  ['dry-run', dryRunSubject],
  ['simulator', simSubject],
  ['scripted (tests)', scriptedSubject],
];

// ------------------------------------------------------------------------------------ the contract

describe.each(SUBJECTS)('scanner contract: %s', (_name, make) => {
  let s: Subject;
  beforeAll(async () => {
    s = await make();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('launches a scan, lists it by ref and by launch time with our title and a known state, and cancels it', async () => {
    const t0 = s.now() - 1000;
    const { scanRef } = await s.scanner.launch(req('contract-launch', s.appliance, s.targets));
    expect(scanRef).toMatch(/\S/);
    const [byRef, ...more] = await s.scanner.listScans({ scanRefs: [scanRef] });
    expect(more).toHaveLength(0);
    expect(byRef.scanRef).toBe(scanRef);
    expect(byRef.title).toContain('contract-launch');
    expect(STATES).toContain(byRef.state);
    if (byRef.targets) expect([...byRef.targets].sort()).toEqual([...s.targets].sort());
    const recent = await s.scanner.listScans({ launchedAfter: new Date(t0 - 60_000) });
    expect(recent.map((x) => x.scanRef)).toContain(scanRef);

    await s.scanner.cancel(scanRef);
    const [after] = await s.scanner.listScans({ scanRefs: [scanRef] });
    expect(TERMINAL_STATES.has(after.state) || after.state === 'running' || after.state === 'queued', after.state).toBe(true);
    if (TERMINAL_STATES.has(after.state)) expect(after.state).toBe('canceled');
  });

  it('lists its appliances with online state and load', async () => {
    const list = await s.scanner.appliances();
    const mine = list.find((a) => a.name === s.appliance);
    expect(mine).toBeDefined();
    expect(typeof mine!.online).toBe('boolean');
    expect(mine!.runningScans).toBeGreaterThanOrEqual(0);
  });

  it('answers last-scanned dates only for the addresses asked, as ISO times', async () => {
    const dates = await s.scanner.lastScanned(s.targets);
    for (const d of dates) {
      expect(s.targets).toContain(d.ip);
      if (d.lastScannedAt !== undefined) expect(Number.isNaN(Date.parse(d.lastScannedAt))).toBe(false);
    }
  });

  it('reports its allowance without a call', () => {
    const a = s.scanner.allowance();
    expect(a.waitSec).toBeGreaterThanOrEqual(0);
    if (a.remaining !== undefined) expect(a.remaining).toBeGreaterThanOrEqual(0);
  });

  it('a launch is found again by the intent id in its title (reconcile after a crash)', async () => {
    const since = new Date(s.now() - 10 * 60_000);
    const { scanRef } = await s.scanner.launch(req('onsight-crash-42', s.appliance, s.targets.slice(0, 1)));
    // the daemon "crashed" here: only the intent id survived, in the state database
    const found = (await s.scanner.listScans({ launchedAfter: since })).filter((x) => x.title.includes('onsight-crash-42'));
    expect(found.map((x) => x.scanRef)).toEqual([scanRef]);
  });

  it('keeps the platform\'s recurring range scans equal to the want, when it has them (Tenable and Rapid7 do not)', async () => {
    const sync = s.scanner.syncSchedules?.bind(s.scanner);
    expect(sync !== undefined).toBe(['qualys', 'dry-run', 'simulated', 'scripted'].includes(s.scanner.kind));
    if (!sync) return;
    const want = [{ title: 'onsight-contract r1 02:00', targets: [`${s.targets[0]}`], appliance: s.appliance, timeUtc: '02:00' }];
    const made = await sync(want, 'onsight-contract ');
    expect(made.map((x) => [x.title, x.action, x.active])).toEqual([[want[0].title, 'created', true]]);
    expect(made[0].id).toMatch(/\S/);
    if (s.scanner.pretend) return; // a dry run remembers nothing: every sync "would create"
    expect((await sync(want, 'onsight-contract ')).map((x) => x.action)).toEqual(['kept']);
    expect((await sync([], 'onsight-contract ')).map((x) => [x.id, x.action])).toEqual([[made[0].id, 'deleted']]);
    expect(await sync([], 'onsight-contract ')).toEqual([]);
  });

  it('launches a range scan titled exactly as asked and lists it by that title, when it keeps range scans (Qualys, the simulator, the scripted scanner)', async () => {
    const launchRanges = s.scanner.launchRanges?.bind(s.scanner);
    expect(launchRanges !== undefined).toBe(['qualys', 'simulated', 'scripted'].includes(s.scanner.kind));
    if (!launchRanges) return;
    const since = new Date(s.now() - 10 * 60_000);
    const title = 'onsight-contract-range r1 0200';
    const { scanRef } = await launchRanges({ title, targets: [s.targets[0]], appliance: s.appliance });
    expect(scanRef).toMatch(/\S/);
    const found = (await s.scanner.listScans({ launchedAfter: since })).filter((x) => x.title === title);
    expect(found.map((x) => x.scanRef)).toEqual([scanRef]);
    await s.scanner.cancel(scanRef);
  });

  it('maps each failure class it can show onto the seam outcome that class means', async () => {
    const classes = Object.entries(s.failures);
    expect(classes.length).toBeGreaterThan(0);
    for (const [name, f] of classes) {
      const { call, err } = await f.provoke().catch((e: Error) => { throw new Error(`${name}: ${e.message}`); });
      const o = s.scanner.failureOutcome(err, call);
      expect({ launched: o.launched, next: o.next }, `${name}: ${o.code} ${o.message}`).toEqual({ launched: call === 'launch' ? f.expect.launched : 'no', next: f.expect.next });
      expect(o.code, name).toMatch(/^ONSIGHT_/);
      expect(o.message, name).toMatch(/\S/);
      if (o.next === 'wait') expect(o.untilMs, name).toBeGreaterThan(s.now());
      // the backend entry in the table answers the same as its scanner
      if (s.scanner.kind === 'qualys') expect(qualysBackend.failureOutcome(err, call).next).toBe(o.next);
      if (s.scanner.kind === 'tenable') expect(tenableBackend.failureOutcome(err, call).next).toBe(o.next);
      if (s.scanner.kind === 'rapid7') expect(rapid7Backend.failureOutcome(err, call).next).toBe(o.next);
      if (s.scanner.kind === 'dry-run') expect(dryRunBackend.failureOutcome(err, call).next).toBe(o.next);
    }
  });
});

it('the backend table builds the dry-run scanner from its config section', async () => {
  const cfg = dryRunBackend.schema.parse({ type: 'dry-run', scanDurationS: 5 });
  const sc = await dryRunBackend.create(cfg, { log: silentLogger(), allowed: () => true, appliances: ['a-1'], env: {} });
  expect(sc.pretend).toBe(true);
  expect(sc.pollPaceS).toBe(5);
  expect((await sc.appliances()).map((a) => a.name)).toEqual(['a-1']);
});
