/**
 * The Tenable client against its emulator (real HTTP on loopback): lost answers of the copy and the
 * launch never make a second scan, the scope is checked before anything is sent, 429s are waited out
 * or turned into a wait, faults are retried where that is safe, last-scanned dates come in batches,
 * scanner groups report their members, the keys stay out of errors, and doctor passes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { REPO } from './helpers/paths.js';
import { runDoctor } from '../src/cli/doctor.js';
import { silentLogger } from '../src/log.js';
import { startTenableEmulator, type TenableEmulator, type TenableEmulatorOptions } from '../src/emulator/tenable/index.js';
import { TenableClient, loadApiKeys, mapStatus, tenableFailureOutcome, type TenableClientOptions } from '../src/scanners/tenable/index.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-tenable-'));
const emus: TenableEmulator[] = [];
const clients: TenableClient[] = [];
afterAll(async () => {
  for (const c of clients) await c.close();
  for (const e of emus) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

async function setup(o: TenableEmulatorOptions = {}, c: Partial<TenableClientOptions> = {}) {
  const emu = await startTenableEmulator({ seed: 3, scanners: [{ name: 'tn-1' }, { name: 'tn-2' }], scanTiming: { pickupSec: 1, hostSec: 60 }, ...o });
  emus.push(emu);
  const client = new TenableClient({ baseUrl: emu.url, apiKeys: emu.apiKeys, template: 'basic', reconcileDelayMs: 0, maxAttempts: 3, baseDelayMs: 5, appliances: ['tn-1', 'tn-2'], ...c });
  clients.push(client);
  return { emu, client };
}
const req = (id: string, targets: string[], appliance = 'tn-1') => ({ intentId: id, title: `onsight ${id}`, targets, appliance });
const runsOf = (emu: TenableEmulator, id: string) => emu.model.scans.filter((s) => s.name.includes(id)).flatMap((s) => s.runs);

describe('tenable client', () => {
  it('a copy whose answer is lost is found by the intent id and launched once', async () => {
    const { emu, client } = await setup({ faults: { dropAfterShare: 1, routes: ['scans.copy'] } });
    const { scanRef } = await client.launch(req('lost-copy', ['10.1.0.1']));
    expect(emu.model.scans.filter((s) => s.name.includes('lost-copy'))).toHaveLength(1);
    expect(runsOf(emu, 'lost-copy')).toHaveLength(1);
    expect(String(emu.model.scans.find((s) => s.name.includes('lost-copy'))!.id)).toBe(scanRef);
    expect(emu.faults['drop-after']).toBeGreaterThan(0);
  });

  it('a launch whose answer is lost is confirmed from the scan list, not sent again', async () => {
    const { emu, client } = await setup({ faults: { dropAfterShare: 1, routes: ['scans.launch'] } });
    const { scanRef } = await client.launch(req('lost-launch', ['10.1.0.2']));
    expect(runsOf(emu, 'lost-launch')).toHaveLength(1);
    expect(emu.requests.filter((r) => r.route === 'scans.launch')).toHaveLength(1);
    const [s] = await client.listScans({ scanRefs: [scanRef] });
    expect(['queued', 'running']).toContain(s.state);
  });

  it('targets outside the scope are refused before any call', async () => {
    const { emu, client } = await setup({}, { allowTarget: (ip) => ip.startsWith('10.') });
    const n = emu.requests.length;
    const err = await client.launch(req('scope-1', ['10.1.0.3', '192.168.1.1'])).catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('ONSIGHT_SCOPE_VIOLATION');
    expect(emu.requests.length).toBe(n);
    expect(tenableFailureOutcome(err, 'launch')).toMatchObject({ launched: 'no', next: 'retry' });
  });

  it('a rate-limit 429 with a short Retry-After is waited out in place; a long one blocks every call until it ends', async () => {
    const { emu, client } = await setup({ ratePerMinute: 1, rateWindowSec: 1 }, { maxRetryAfterS: 2 });
    await client.appliances();
    // the second call within the second is refused, waited out as told, and sent again
    expect((await client.appliances()).map((a) => a.name)).toEqual(['tn-1', 'tn-2']);
    expect(emu.requests.filter((r) => r.status === 429)).toHaveLength(1);

    const { emu: e2, client: c2 } = await setup({ ratePerMinute: 1 }, { maxRetryAfterS: 5 });
    await c2.appliances();
    const limited = await c2.appliances().catch((e: unknown) => e);
    const o = tenableFailureOutcome(limited, 'appliances');
    expect(o).toMatchObject({ next: 'wait' });
    expect(o.holds).toBeUndefined(); // every call
    expect(o.untilMs! - Date.now()).toBeGreaterThan(30_000);
    expect(c2.allowance().waitSec).toBeGreaterThan(30);
    const calls = e2.requests.length;
    await expect(c2.listScans({})).rejects.toMatchObject({ code: 'ONSIGHT_SCANNER_RATE_LIMIT' });
    expect(e2.requests.length).toBe(calls); // refused locally, not sent
  });

  it('a 429 on launch (the active-scan limit) holds back launches only, longer each time in a row; polls and cancels go on', async () => {
    const { emu, client } = await setup({ maxActiveScans: 1, retryAfterSec: 1 }, { maxRetryAfterS: 2 });
    await client.launch(req('first', ['10.1.0.4']));
    const refused = await client.launch(req('second', ['10.1.0.5'])).catch((e: unknown) => e);
    // not waited out in place (a slot frees when a scan ends): one 429, at once
    expect(emu.requests.filter((r) => r.route === 'scans.launch' && r.status === 429)).toHaveLength(1);
    const o = tenableFailureOutcome(refused, 'launch');
    expect(o).toMatchObject({ launched: 'no', next: 'wait', holds: 'call', code: 'ONSIGHT_SCANNER_RATE_LIMIT' });
    // held for the back-off (30 s), longer than its Retry-After (1 s)
    expect(o.untilMs! - Date.now()).toBeGreaterThan(25_000);
    expect(o.untilMs! - Date.now()).toBeLessThanOrEqual(30_000);
    expect(client.allowance().waitSec).toBe(0);
    // the other calls are sent (the transport holds nothing: a local block would refuse this list)
    const first = (await client.listScans({})).find((s) => s.title.includes('first'))!;
    expect(['queued', 'running']).toContain(first.state);
    // a second refusal in a row: held twice as long
    const again = tenableFailureOutcome(await client.launch(req('third', ['10.1.0.6'])).catch((e: unknown) => e), 'launch');
    expect(again.untilMs! - Date.now()).toBeGreaterThan(55_000);
    expect(again.message).toContain('2 refused in a row');
    // the cancel frees the slot; a launch taken ends the run of refusals
    await client.cancel(first.scanRef);
    await client.launch(req('fourth', ['10.1.0.7']));
    const fresh = tenableFailureOutcome(await client.launch(req('fifth', ['10.1.0.8'])).catch((e: unknown) => e), 'launch');
    expect(fresh.untilMs! - Date.now()).toBeLessThanOrEqual(30_000);
    expect(fresh.message).toContain('1 refused in a row');
  });

  it('a scan copy whose launch was refused (the active-scan limit) is deleted, not left to pile up', async () => {
    const { emu, client } = await setup({ maxActiveScans: 1, retryAfterSec: 1 }, { maxRetryAfterS: 2 });
    await client.launch(req('holds', ['10.1.0.7']));
    const refused = await client.launch(req('refused', ['10.1.0.8'])).catch((e: unknown) => e);
    expect(tenableFailureOutcome(refused, 'launch').launched).toBe('no');
    await client.cancel((await client.listScans({})).find((s) => s.title.includes('holds'))!.scanRef);
    await client.launch(req('next', ['10.1.0.9']));
    expect(emu.model.scans.filter((x) => x.name.includes('refused'))).toEqual([]);
    expect(emu.model.scans.filter((x) => x.name.includes('next'))).toHaveLength(1);
  });

  it('a scan definition deleted since it was found is looked up again at the next launch', async () => {
    const { emu, client } = await setup();
    await client.launch(req('before', ['10.1.0.10']));
    const master = emu.model.scans.find((x) => x.name.includes('tn-1') && !x.name.includes('before'))!;
    emu.model.scans.splice(emu.model.scans.indexOf(master), 1); // an operator deletes the definition
    await expect(client.launch(req('gone', ['10.1.0.11']))).rejects.toMatchObject({ code: 'ONSIGHT_SCANNER_REFUSED' });
    const { scanRef } = await client.launch(req('after', ['10.1.0.12'])); // found (here: created) again
    expect(emu.model.scans.find((x) => String(x.id) === scanRef)?.name).toContain('after');
  });

  it('5xx and malformed answers of calls safe to repeat are retried', async () => {
    const { emu, client } = await setup({ seed: 11, faults: { serverErrorShare: 0.3, malformedShare: 0.3, routes: ['scanners.list'] } }, { maxAttempts: 8 });
    for (let i = 0; i < 5; i++) expect((await client.appliances()).map((a) => a.name)).toEqual(['tn-1', 'tn-2']);
    expect((emu.faults['server-500'] ?? 0) + (emu.faults['server-503'] ?? 0) + (emu.faults.malformed ?? 0)).toBeGreaterThan(0);
  });

  it('last-scanned dates come in batches and only for the addresses asked', async () => {
    const assets = [{ ip: '10.9.0.1', lastScannedAt: '2026-11-01T10:00:00Z' }, { ip: '10.9.0.4', lastScannedAt: '2026-11-02T10:00:00Z' }, { ip: '10.9.0.9', lastScannedAt: '2026-11-03T10:00:00Z' }];
    const { emu, client } = await setup({ assets }, { assetBatchSize: 2 });
    const got = await client.lastScanned(['10.9.0.1', '10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.5']);
    expect(got).toEqual([
      { ip: '10.9.0.1', lastScannedAt: '2026-11-01T10:00:00.000Z', via: 'vm-scan' }, { ip: '10.9.0.2' }, { ip: '10.9.0.3' },
      { ip: '10.9.0.4', lastScannedAt: '2026-11-02T10:00:00.000Z', via: 'vm-scan' }, { ip: '10.9.0.5' },
    ]);
    expect(emu.requests.filter((r) => r.route === 'workbenches.assets')).toHaveLength(3);
    // the budget counts a host-list read by the same batches (a call each)
    expect(client.hostListBatchSize).toBe(2);
  });

  it('a scanner group is online while a member is, with its members\' scans added up', async () => {
    const { client } = await setup({ scanners: [{ name: 'a' }, { name: 'b', online: false }], groups: [{ name: 'pool', members: ['a', 'b'] }] }, { appliances: ['pool'] });
    await client.launch(req('grp-1', ['10.1.1.1'], 'pool'));
    await new Promise((r) => setTimeout(r, 1200)); // picked up by `a`
    const list = await client.appliances();
    expect(list.find((x) => x.name === 'pool')).toMatchObject({ online: true, runningScans: 1 });
    expect(list.find((x) => x.name === 'b')).toMatchObject({ online: false });
  });

  it('maps Tenable statuses onto the seam', () => {
    expect(['pending', 'running', 'completed', 'canceled', 'aborted', 'paused', 'empty', 'stopping', 'weird'].map(mapStatus))
      .toEqual(['queued', 'running', 'finished', 'canceled', 'error', 'paused', 'canceled', 'running', 'unknown']);
  });

  it('wrong keys stop the scheduler and are never repeated in errors; malformed keys are refused before any call', async () => {
    const { emu } = await setup();
    const secret = 'f'.repeat(64);
    const c = new TenableClient({ baseUrl: emu.url, apiKeys: `accessKey=${'e'.repeat(64)}; secretKey=${secret}` });
    clients.push(c);
    const err = await c.appliances().catch((e: Error) => e);
    expect(tenableFailureOutcome(err, 'appliances').next).toBe('stop');
    expect(String((err as Error).message)).not.toContain(secret);
    expect(() => loadApiKeys({ apiKeysEnv: 'K' }, { K: 'secretKey=abc' })).toThrow(/accessKey=<hex>; secretKey=<hex>/);
    expect(() => loadApiKeys({ apiKeysEnv: 'K' }, { K: `accessKey=${'a'.repeat(20)};secretKey=${'b'.repeat(20)}x!` })).not.toThrow(/b{20}/);
    const f = join(dir, 'keys');
    writeFileSync(f, `accessKey=${'a'.repeat(64)}; secretKey=${'b'.repeat(64)}\n`);
    expect(loadApiKeys({ apiKeysFile: f })).toEqual({ accessKey: 'a'.repeat(64), secretKey: 'b'.repeat(64) });
  });

  it('doctor passes against the emulator: keys, reachability, scans, each region\'s scanner', async () => {
    const { emu } = await setup({ groups: [{ name: 'pool', members: ['tn-2'] }] });
    const text = `state: ${join(dir, 'd.db')}
inputs: []
policy: { scope: ["10.0.0.0/8"] }
http: { enabled: false }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [tn-1] }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [pool] }
scanner: { type: tenable, url: "${emu.url}", apiKeysEnv: TDOCTOR_KEYS, template: "Basic Network Scan" }
`;
    let out = '';
    const code = await runDoctor(parseConfigText(text, 't.yaml'), silentLogger(), { write: (s: string) => { out += s; return true; } }, { env: { TDOCTOR_KEYS: emu.apiKeys } });
    expect(out).toMatch(/credentials.*readable/);
    expect(out).toMatch(/appliance tn-1 \(emea\).*online/);
    expect(out).toMatch(/appliance pool \(amer\).*online/);
    expect(out).toMatch(/scanner group leaves the choice of scanner to Tenable/);
    expect(out).not.toContain(emu.secretKey);
    expect(code, out).toBe(0);
  });
});

it('the README\'s Tenable configuration is a valid config', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Tenable\n'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1];
  const loaded = parseConfigText(`state: ":memory:"\ninputs: []\npolicy: { scope: ["10.0.0.0/8"] }\n${yaml}`, 'readme.yaml');
  expect(loaded.config.scanner.type).toBe('tenable');
  expect(loaded.config.regions.map((r) => r.name)).toEqual(['emea', 'amer']);
});

it('the commented tenable example in config/onsight.example.yaml is a valid scanner section once uncommented', () => {
  const example = readFileSync(join(REPO, 'config/onsight.example.yaml'), 'utf8');
  const from = example.indexOf('# Tenable Vulnerability Management instead');
  const block = example.slice(from).split('\n\n')[0].split('\n').filter((l) => /^# {0,3}[a-zA-Z]/.test(l) && !l.startsWith('# Tenable Vu'));
  // "# scanner:" and "#   key: value" lines; the prose above them starts with a capital after "# "
  const yaml = block.filter((l) => /^# (scanner:| {2}\S)/.test(l)).map((l) => l.slice(2)).join('\n');
  expect(yaml).toMatch(/^scanner:\n {2}type: tenable/);
  const withoutOptional = yaml.split('\n').filter((l) => !/^ {2}# /.test(l)).join('\n');
  const text = `state: ":memory:"\ninputs: []\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: a, cidrs: ["10.20.0.0/16"], appliances: [x] }]\n${withoutOptional}\n`;
  expect(parseConfigText(text, 'example.yaml').config.scanner.type).toBe('tenable');
});
