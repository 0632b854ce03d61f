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
