/**
 * Every Qualys failure class, provoked on the real emulator over loopback, and what it means to the
 * scheduler through the seam (FailureOutcome): was a launch made (no / unknown), and retry, wait
 * until a time, or stop.
 */
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type EmulatorOptions } from '../src/emulator/qualys/index.js';
import { QualysClient, type QualysClientOptions } from '../src/scanners/qualys/index.js';
import type { FailureOutcome, ScannerCall } from '../src/scanners/types.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

const FAST: Partial<QualysClientOptions> = {
  optionProfile: 'Initial Options', reconcileDelayMs: 0,
  retry: { maxAttempts: 2, baseDelayMs: 2, maxDelayMs: 5 }, throttle: { concurrencyBackoffMs: 5, maxRetries: 1, maxWaitSec: 5 },
};

async function setup(emu: EmulatorOptions = {}, client: Partial<QualysClientOptions> = {}) {
  const e = await startQualysEmulator({ speed: 1, appliances: [{ name: 'sa-1' }], subscription: ['10.0.0.0/8'], ...emu });
  open.push(e);
  const c = new QualysClient({ baseUrl: e.url, username: e.username, password: e.password, ...FAST, ...client });
  open.push(c);
  return { e, c };
}

const launchReq = (id: string, targets = ['10.5.0.1']) => ({ intentId: id, title: `onsight ${id}`, targets, appliance: 'sa-1' });

/** The outcome the scanner gives for the failure of `call`; fails the test if the call succeeds. */
async function outcomeOf(c: QualysClient, call: ScannerCall, fn: () => Promise<unknown>): Promise<FailureOutcome & { err: unknown }> {
  try {
    await fn();
  } catch (err) {
    return { ...c.failureOutcome(err, call), err };
  }
  throw new Error(`${call} succeeded`);
}

describe('qualys failures in the seam\'s words', () => {
  it('bad credentials: nothing launched, stop', async () => {
    const { e } = await setup();
    const c = new QualysClient({ baseUrl: e.url, username: e.username, password: 'wrong', ...FAST });
    open.push(c);
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-1')));
    expect(o).toMatchObject({ launched: 'no', next: 'stop', code: 'ONSIGHT_QUALYS_AUTH' });
    expect(o.message).toMatch(/wrong username or password/);
  });

  it('rate limit with a long block: nothing launched, wait until the block ends (not a retry a minute)', async () => {
    const { c } = await setup({ limits: { default: { limit: 300, windowSec: 3600, concurrency: 2 }, scan: { limit: 1, windowSec: 3600, concurrency: 2 } } });
    await c.launch(launchReq('o-2'));
    const before = Date.now();
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-3', ['10.5.0.2'])));
    expect(o).toMatchObject({ launched: 'no', next: 'wait', code: 'ONSIGHT_QUALYS_RATE_LIMIT' });
    expect(o.untilMs! - before).toBeGreaterThan(3500_000);
    expect(o.untilMs! - Date.now()).toBeLessThanOrEqual(3600_000);
    // and the list call on the same API: the same wait, no launch question
    const l = await outcomeOf(c, 'listScans', () => c.listScans({ scanRefs: ['scan/1.1'] }));
    expect(l).toMatchObject({ launched: 'no', next: 'wait' });
  });

  it('concurrency limit (1960): nothing launched, retry soon', async () => {
    const { c } = await setup({ faults: { conflictShare: 1, apis: ['appliance'] }, seed: 4 });
    const o = await outcomeOf(c, 'appliances', () => c.appliances());
    expect(o.code).toBe('ONSIGHT_QUALYS_RATE_LIMIT');
    const err = o.err as { qualysCode?: number; waitSec?: number };
    if (err.qualysCode === 1960) expect(o.next).toBe('retry');
    else expect(o).toMatchObject({ next: 'wait' }); // the 1965 half of the injected 409s
    expect(o.launched).toBe('no');
  });

  it('targets refused as outside the subscription: nothing launched, retry (the refused addresses ride on the error)', async () => {
    const { c } = await setup();
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-4', ['192.0.2.1'])));
    expect(o).toMatchObject({ launched: 'no', next: 'retry', code: 'ONSIGHT_QUALYS_NOT_IN_SUBSCRIPTION' });
    expect((o.err as { targets: string[] }).targets).toEqual(['192.0.2.1']);
  });

  it('a launch whose answer is lost and cannot be confirmed: launched unknown, retry (reconcile by intent id)', async () => {
    const { e, c } = await setup({ faults: { dropAfterShare: 1, apis: ['scan'] } });
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-5')));
    expect(o).toMatchObject({ launched: 'unknown', next: 'retry', code: 'ONSIGHT_QUALYS_LAUNCH_UNCONFIRMED' });
    expect(e.state.model.scans.length).toBe(1); // it was in fact launched
  });

  it('5xx on launch: launched unknown (the client cannot tell), retry; on a list: nothing launched, retry', async () => {
    const { e, c } = await setup({ faults: { serverErrorShare: 1, apis: ['scan'], actions: ['launch'] }, seed: 2 });
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-6')));
    expect(o.launched).toBe('unknown');
    const status = (o.err as { status?: number }).status;
    if (status === 503) expect(o).toMatchObject({ next: 'wait' });
    else expect(o).toMatchObject({ next: 'retry' });
    e.state.config.faults.actions = ['list'];
    const l = await outcomeOf(c, 'listScans', () => c.listScans({}));
    expect(l.launched).toBe('no');
  });

  it('scheduled maintenance (503, CODE 1999): wait a few minutes', async () => {
    for (let seed = 1; seed < 40; seed++) {
      const { e, c } = await setup({ faults: { serverErrorShare: 1, apis: ['appliance'] }, seed });
      const o = await outcomeOf(c, 'appliances', () => c.appliances());
      if ((o.err as { qualysCode?: number }).qualysCode !== 1999) {
        await e.close();
        continue;
      }
      expect(o).toMatchObject({ launched: 'no', next: 'wait', code: 'ONSIGHT_QUALYS_API' });
      expect(o.untilMs! - Date.now()).toBeGreaterThan(200_000);
      return;
    }
    throw new Error('no seed gave a 503');
  });

  it('a retired API version (the 2.0 scan list): stop, and say to check scanner.endpoints', async () => {
    const { c } = await setup({}, { endpoints: { scanList: '/api/2.0/fo/scan/' } });
    const o = await outcomeOf(c, 'listScans', () => c.listScans({ scanRefs: ['scan/1.1'] }));
    expect(o).toMatchObject({ launched: 'no', next: 'stop', code: 'ONSIGHT_QUALYS_API' });
    expect(o.message).toMatch(/scanner.endpoints/);
  });

  it('a next-page URL off the platform: stop', async () => {
    const { e, c } = await setup({ hostListTruncationLimit: 1, hosts: [{ ip: '10.6.0.1', lastScannedAt: '2026-10-01T00:00:00Z' }, { ip: '10.6.0.2', lastScannedAt: '2026-10-01T00:00:00Z' }] });
    e.state.config.nextPageOrigin = 'https://evil.example';
    const o = await outcomeOf(c, 'lastScanned', () => c.lastScanned(['10.6.0.1', '10.6.0.2']));
    expect(o).toMatchObject({ launched: 'no', next: 'stop', code: 'ONSIGHT_QUALYS_PAGING' });
  });

  it('a target outside the allowed scope: nothing sent, retry (the scheduler revalidates)', async () => {
    const { e, c } = await setup({}, { allowTarget: (ip) => ip.startsWith('10.5.') });
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-7', ['10.9.0.1'])));
    expect(o).toMatchObject({ launched: 'no', next: 'retry', code: 'ONSIGHT_SCOPE_VIOLATION' });
    expect(e.state.requests).toHaveLength(0);
  });

  it('connection refused: nothing launched, retry; the client closed mid-launch: launched unknown', async () => {
    const port = await new Promise<number>((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => r(p)); }); });
    const c = new QualysClient({ baseUrl: `http://127.0.0.1:${port}`, username: 'u', password: 'p', ...FAST });
    const o = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-8')));
    expect(o).toMatchObject({ launched: 'no', next: 'retry', code: 'ONSIGHT_QUALYS_NETWORK' });
    await c.close();
    const closed = await outcomeOf(c, 'launch', () => c.launch(launchReq('o-9')));
    expect(closed).toMatchObject({ launched: 'unknown', next: 'retry', code: 'ONSIGHT_CLOSED' });
    expect(c.failureOutcome(closed.err, 'cancel').launched).toBe('no');
  });

  it('anything unexpected: a launch is assumed possible', async () => {
    const { c } = await setup();
    expect(c.failureOutcome(new TypeError('surprise'), 'launch')).toMatchObject({ launched: 'unknown', next: 'retry', code: 'ONSIGHT_SCANNER' });
    expect(c.failureOutcome(new TypeError('surprise'), 'appliances')).toMatchObject({ launched: 'no' });
  });
});
