/**
 * The Qualys client's side of the scanner seam, against the real emulator on loopback: scan states
 * it does not know, cheap polls, host-list paging across hosts, targets Qualys refuses or drops,
 * and the mapping of every failure class onto the seam's FailureOutcome.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startQualysEmulator, type EmulatorOptions, type EmScan } from '../src/emulator/qualys/index.js';
import { QualysClient, type QualysClientOptions } from '../src/scanners/qualys/index.js';

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
