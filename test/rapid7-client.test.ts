/**
 * The Rapid7 client against the console emulator (real HTTPS on loopback with a throwaway CA): a
 * lost launch answer is confirmed by the intent id, the scope is checked before anything is sent,
 * a stop of an ended scan said so, engines and pools report their active scans, last-scanned dates
 * come from asset search in batches, 5xx answers of safe calls are retried, and doctor passes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { REPO } from './helpers/paths.js';
import { runDoctor } from '../src/cli/doctor.js';
import { silentLogger } from '../src/log.js';
import { startRapid7Emulator, type Rapid7Emulator, type Rapid7EmulatorOptions } from '../src/emulator/rapid7/index.js';
import { Rapid7Client, mapStatus, rapid7Backend, type Rapid7ClientOptions } from '../src/scanners/rapid7/index.js';
import { selfSignedCert } from './helpers/tls-cert.js';

const cert = selfSignedCert();
if ('skip' in cert) console.log(`SKIP rapid7 client tests over TLS: ${cert.skip}`);
const dir = mkdtempSync(join(tmpdir(), 'onsight-r7-'));
const emus: Rapid7Emulator[] = [];
const clients: Rapid7Client[] = [];
afterAll(async () => {
  for (const c of clients) await c.close();
  for (const e of emus) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf('skip' in cert)('rapid7 client', () => {
  const tls = 'skip' in cert ? undefined : { cert: cert.cert, key: cert.key };
  async function setup(o: Rapid7EmulatorOptions = {}, c: Partial<Rapid7ClientOptions> = {}) {
    const emu = await startRapid7Emulator({ tls, seed: 5, engines: [{ name: 'e-1' }, { name: 'e-2' }], scanTiming: { pickupSec: 0.5, hostSec: 60 }, ...o });
    emus.push(emu);
    const client = new Rapid7Client({ baseUrl: emu.url, username: emu.username, password: emu.password, ca: tls?.cert, siteId: 1, reconcileDelayMs: 0, maxAttempts: 4, baseDelayMs: 5, ...c });
    clients.push(client);
    return { emu, client };
  }
  const req = (id: string, targets: string[], appliance = 'e-1') => ({ intentId: id, title: `onsight ${id}`, targets, appliance });

  it('a launch whose answer is lost is confirmed from the scan list, not sent again', async () => {
    const { emu, client } = await setup({ faults: { dropAfterShare: 1, routes: ['sites.scans.start'] } });
    const { scanRef } = await client.launch(req('lost-r7', ['10.2.0.1']));
    expect(emu.model.scans.filter((s) => s.name.includes('lost-r7'))).toHaveLength(1);
    expect(emu.requests.filter((r) => r.route === 'sites.scans.start')).toHaveLength(1);
    expect(String(emu.model.scans[0].id)).toBe(scanRef);
  });

  it('the scan list holds running scans and past ones (two lists: `active` left out means past only)', async () => {
    const { client } = await setup({ scanTiming: { pickupSec: 0, hostSec: 0.05 } });
    const since = new Date(Date.now() - 1000);
    const ended = await client.launch(req('list-ended', ['10.2.0.9']));
    await new Promise((r) => setTimeout(r, 300));
    const slow = await setup({ scanTiming: { pickupSec: 0, hostSec: 60 } });
    const running = await slow.client.launch(req('list-running', ['10.2.0.10']));
    expect((await client.listScans({ launchedAfter: since })).map((x) => [x.scanRef, x.state])).toEqual([[ended.scanRef, 'finished']]);
    expect((await slow.client.listScans({ launchedAfter: since })).map((x) => [x.scanRef, x.state])).toEqual([[running.scanRef, 'running']]);
  });

  it('targets outside the scope are refused before any call', async () => {
    const { emu, client } = await setup({}, { allowTarget: (ip) => ip.startsWith('10.') });
    const n = emu.requests.length;
    await expect(client.launch(req('scope', ['10.2.0.2', '172.16.0.1']))).rejects.toMatchObject({ code: 'ONSIGHT_SCOPE_VIOLATION' });
    expect(emu.requests.length).toBe(n);
  });

  it('stopping a scan that has ended says so (the poll records its end and result; taken for a stop, its result was thrown away)', async () => {
    const { client } = await setup({ scanTiming: { pickupSec: 0, hostSec: 0.05 } });
    const a = await client.launch(req('stop-a', ['10.2.0.3']));
    await new Promise((r) => setTimeout(r, 300));
    const [done] = await client.listScans({ scanRefs: [a.scanRef] });
    expect(done.state).toBe('finished');
    // the console answers 400 for an ended scan
    await expect(client.cancel(a.scanRef)).rejects.toMatchObject({ name: 'ScanEndedBeforeCancel', state: 'finished', code: 'ONSIGHT_SCANNER' });
    expect(client.failureOutcome(await client.cancel(a.scanRef).catch((x) => x), 'cancel')).toMatchObject({ launched: 'no', next: 'retry' });
  });

  it('a scan still dispatched (no engine has picked it up) cannot be stopped: the refusal reaches the scheduler', async () => {
    const { client } = await setup({ scanTiming: { pickupSec: 60, hostSec: 60 } });
    const a = await client.launch(req('stop-queued', ['10.2.0.13']));
    expect((await client.listScans({ scanRefs: [a.scanRef] }))[0].state).toBe('queued');
    await expect(client.cancel(a.scanRef)).rejects.toMatchObject({ status: 400 });
  });

  it('engines and pools report their active scans; a pool is up while a member is', async () => {
    const { client } = await setup({ engines: [{ name: 'e-1' }, { name: 'e-2', up: false }], pools: [{ name: 'pool', engines: ['e-1', 'e-2'] }], scanTiming: { pickupSec: 0, hostSec: 60 } });
    await client.launch(req('pool-1', ['10.2.1.1'], 'pool'));
    await client.launch(req('eng-1', ['10.2.1.2'], 'e-1'));
    const list = await client.appliances();
    expect(list.find((x) => x.name === 'e-2')).toMatchObject({ online: false });
    expect(list.find((x) => x.name === 'pool')).toMatchObject({ online: true, runningScans: 2 });
    expect(list.find((x) => x.name === 'e-1')?.runningScans).toBeGreaterThanOrEqual(1);
  });

  it('last-scanned dates come from asset search, in batches, only for the addresses asked', async () => {
    const { emu, client } = await setup({ assets: [{ ip: '10.3.0.1', lastScannedAt: '2026-10-01T00:00:00Z' }, { ip: '10.3.0.3', lastScannedAt: '2026-10-03T00:00:00Z' }] }, { assetBatchSize: 2 });
    const got = await client.lastScanned(['10.3.0.1', '10.3.0.2', '10.3.0.3']);
    expect(got).toEqual([{ ip: '10.3.0.1', lastScannedAt: '2026-10-01T00:00:00.000Z', via: 'vm-scan' }, { ip: '10.3.0.2' }, { ip: '10.3.0.3', lastScannedAt: '2026-10-03T00:00:00.000Z', via: 'vm-scan' }]);
    expect(emu.requests.filter((r) => r.route === 'assets.search')).toHaveLength(2);
    // the budget counts a host-list read by the same batches (a call each)
    expect(client.hostListBatchSize).toBe(2);
  });

  it('5xx answers of calls safe to repeat are retried; a 5xx on launch is a launch that may exist', async () => {
    const { emu, client } = await setup({ seed: 9, faults: { serverErrorShare: 0.4, routes: ['scan_engines.list'] } }, { maxAttempts: 10 });
    for (let i = 0; i < 5; i++) expect((await client.appliances()).map((a) => a.name)).toContain('e-1');
    expect((emu.faults['server-500'] ?? 0) + (emu.faults['server-503'] ?? 0)).toBeGreaterThan(0);
    const { client: c2 } = await setup({ faults: { serverErrorShare: 1, routes: ['sites.scans.start'] } });
    const err = await c2.launch(req('five-hundred', ['10.2.2.2'])).catch((e: unknown) => e);
    expect(rapid7Backend.failureOutcome(err, 'launch')).toMatchObject({ launched: 'unknown', next: 'retry' });
  });

  it('maps InsightVM statuses onto the seam', () => {
    expect(['dispatched', 'running', 'integrating', 'paused', 'finished', 'stopped', 'aborted', 'error', 'odd'].map(mapStatus))
      .toEqual(['queued', 'running', 'running', 'paused', 'finished', 'canceled', 'error', 'error', 'unknown']);
  });

  it('doctor passes against the emulator over TLS with scanner.ca', async () => {
    const { emu } = await setup({ pools: [{ name: 'pool', engines: ['e-2'] }] });
    const text = `state: ${join(dir, 'd.db')}
inputs: []
policy: { scope: ["10.0.0.0/8"] }
http: { enabled: false }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [e-1] }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [pool] }
scanner: { type: rapid7, url: "${emu.url}", username: ${emu.username}, passwordEnv: R7DOCTOR_PW, ca: "${'skip' in cert ? '' : cert.caFile}", siteId: 1 }
`;
    let out = '';
    const code = await runDoctor(parseConfigText(text, 'r.yaml'), silentLogger(), { write: (s: string) => { out += s; return true; } }, { env: { R7DOCTOR_PW: emu.password } });
    expect(out).toMatch(/credentials.*readable/);
    expect(out).toMatch(/tls.*checked against/);
    expect(out).toMatch(/appliance e-1 \(emea\).*online/);
    expect(out).toMatch(/appliance pool \(amer\).*online/);
    expect(out).not.toContain(emu.password);
    expect(code, out).toBe(0);
  });
});

it('the README\'s Rapid7 configuration is a valid config', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Rapid7\n'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1];
  const loaded = parseConfigText(`state: ":memory:"\ninputs: []\npolicy: { scope: ["10.0.0.0/8"] }\n${yaml}`, 'readme.yaml');
  expect(loaded.config.scanner.type).toBe('rapid7');
  expect(loaded.config.regions.map((r) => r.name)).toEqual(['emea', 'amer']);
});

it('the commented rapid7 example in config/onsight.example.yaml is a valid scanner section once uncommented', () => {
  const example = readFileSync(join(REPO, 'config/onsight.example.yaml'), 'utf8');
  const from = example.indexOf('# Rapid7 InsightVM instead');
  const block = example.slice(from).split('\n\n')[0].split('\n').filter((l) => /^# {0,3}[a-zA-Z]/.test(l) && !l.startsWith('# Rapid7 Ins'));
  // "# scanner:" and "#   key: value" lines; the prose above them starts with a capital after "# "
  const yaml = block.filter((l) => /^# (scanner:| {2}\S)/.test(l)).map((l) => l.slice(2)).join('\n');
  expect(yaml).toMatch(/^scanner:\n {2}type: rapid7/);
  const withoutOptional = yaml.split('\n').filter((l) => !/^ {2}# /.test(l)).join('\n');
  const text = `state: ":memory:"\ninputs: []\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: a, cidrs: ["10.20.0.0/16"], appliances: [x] }]\n${withoutOptional}\n`;
  expect(parseConfigText(text, 'example.yaml').config.scanner.type).toBe('rapid7');
});
