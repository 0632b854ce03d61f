/**
 * End to end with Tenable: the real daemon (child process), real syslog over UDP, the real Tenable
 * client, and the Tenable emulator on a real HTTP socket. A lease launches on its region's scanner,
 * a busy region batches, an offline scanner moves the scan, a scanner group lets Tenable route, a
 * SIGKILL mid-launch makes no duplicate, and nothing outside the scope is ever sent.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startTenableEmulator, type TenableEmulator, type TenableEmulatorOptions } from '../src/emulator/tenable/index.js';
import { killDuringLaunches, settledIntents } from './helpers/crash.js';
import { type DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

function daemonConfig(port: number, emu: TenableEmulator, o: { amer?: string; maxConc?: number; sched?: string } = {}): string {
  return `
${udpDaemonHead(port, '10.20.99.0/24')}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-1, emea-2], maxConcurrentScans: ${o.maxConc ?? 1} }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [${o.amer ?? 'amer-1'}], maxConcurrentScans: ${o.maxConc ?? 1} }
scanner: { type: tenable, url: "${emu.url}", apiKeysEnv: TEST_TENABLE_KEYS, template: "Basic Network Scan", maxTargetsPerScan: 10 }
scheduler: ${o.sched ?? '{ pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5 }'}
http: { enabled: false }
`;
}

/** Runs of our copies that carry this address, with the scanner that ran (or holds) them. */
const runsFor = (emu: TenableEmulator, ip: string) => emu.model.scans.flatMap((s) => s.runs.filter((r) => r.targets.includes(ip)).map((r) => ({ scan: s, run: r })));
const scannerOf = (emu: TenableEmulator, uuid: string) => emu.model.scanners.find((s) => s.uuid === uuid)?.name ?? emu.model.groups.find((g) => g.uuid === uuid)?.name;

describe('scheduler end to end against the Tenable emulator', () => {
  const daemons: DaemonProcess[] = [];
  const emus: TenableEmulator[] = [];
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  });
  afterAll(async () => {
    for (const e of emus) await e.close();
  });

  async function setup(emuOpts: TenableEmulatorOptions, cfg: Parameters<typeof daemonConfig>[2] = {}) {
    const emu = await startTenableEmulator({
      scanners: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }, { name: 'amer-2' }],
      scanTiming: { pickupSec: 0.2, hostSec: 1.5 },
      ...emuOpts,
    });
    emus.push(emu);
    const port = await freePort();
    const d = await startDaemon(daemonConfig(port, emu, cfg), { TEST_TENABLE_KEYS: emu.apiKeys });
    daemons.push(d);
    return { emu, port, d };
  }

  it('a DHCP lease launches a copy of its region\'s scan definition on the region\'s scanner; a busy region batches the next hosts', async () => {
    const { emu, port } = await setup({});
    await udpSend(port, ack('10.30.1.1', '52:54:00:00:01:01'));
    const first = await until(() => runsFor(emu, '10.30.1.1')[0], 20_000, 'first launch', 50);
    expect(scannerOf(emu, first.scan.scannerUuid)).toBe('amer-1');
    expect(first.scan.name).toMatch(/^onsight onsight-/);
    // the definition onsight created for amer-1, from the template, and copied for this launch
    expect(emu.model.scans.some((s) => s.name === 'onsight-master amer-1' && s.runs.length === 0)).toBe(true);
    for (let i = 2; i <= 4; i++) await udpSend(port, ack(`10.30.1.${i}`, `52:54:00:00:01:0${i}`));
    const batch = await until(() => runsFor(emu, '10.30.1.2')[0], 20_000, 'batched launch', 50);
    expect([...batch.run.targets].sort()).toEqual(['10.30.1.2', '10.30.1.3', '10.30.1.4']);
    expect(batch.run.launchedAt).toBeGreaterThanOrEqual(first.run.endedAt ?? Infinity);
    const launches = emu.requests.filter((r) => r.route === 'scans.launch' && r.status === 200);
    expect(launches).toHaveLength(2);
  }, 60_000);

  it('an offline scanner is never used: the region\'s other scanner takes the scan', async () => {
    const { emu, port } = await setup({ faults: { scannerOffline: [{ name: 'emea-1', atSec: 0 }] } });
    await sleep(700); // an appliance refresh sees it off
    await udpSend(port, ack('10.20.1.7', '52:54:00:aa:bb:cc'));
    const r = await until(() => runsFor(emu, '10.20.1.7')[0], 20_000, 'launch', 50);
    expect(scannerOf(emu, r.scan.scannerUuid)).toBe('emea-2');
    await until(() => (emu.model.advance(), r.run.endedAt), 20_000, 'scan done', 50); // the model moves on when asked
    expect(r.run.scanner).toBe('emea-2');
  }, 60_000);

  it('a region naming a scanner group launches on the group and Tenable routes it to an online member', async () => {
    const { emu, port } = await setup({
      groups: [{ name: 'amer-pool', members: ['amer-1', 'amer-2'] }],
      faults: { scannerOffline: [{ name: 'amer-1', atSec: 0 }] },
    }, { amer: 'amer-pool' });
    await udpSend(port, ack('10.30.5.5', '52:54:00:00:05:05'));
    const r = await until(() => runsFor(emu, '10.30.5.5')[0], 20_000, 'launch', 50);
    expect(scannerOf(emu, r.scan.scannerUuid)).toBe('amer-pool');
    await until(() => r.run.scanner, 20_000, 'picked up', 50);
    expect(r.run.scanner).toBe('amer-2');
  }, 60_000);

  it('nothing outside the scope or inside the exclusion list is ever sent to Tenable', async () => {
    const { emu, port, d } = await setup({});
    await udpSend(port, ack('10.20.99.5', '52:54:00:00:09:05')); // excluded
    await udpSend(port, ack('192.168.7.7', '52:54:00:00:09:07')); // outside the scope
    await udpSend(port, ack('10.20.7.1', '52:54:00:00:09:01')); // in scope: this one is scanned
    await until(() => runsFor(emu, '10.20.7.1')[0], 20_000, 'in-scope launch', 50);
    await sleep(1500);
    const sent = JSON.stringify(emu.requests.map((r) => [r.query, r.body]));
    expect(sent).not.toContain('10.20.99.5');
    expect(sent).not.toContain('192.168.7.7');
    for (const r of emu.requests.filter((x) => x.route === 'scans.launch')) {
      for (const ip of (r.body as { alt_targets: string[] }).alt_targets) expect(ip.startsWith('10.') && !ip.startsWith('10.20.99.')).toBe(true);
    }
    // the keys never reach the log
    expect(JSON.stringify(d.logs) + d.stderr).not.toContain(emu.secretKey);
  }, 60_000);

  it('a launch refused at the container\'s active-scan limit holds back launches only: the running scan is still followed to its end', async () => {
    // one active scan per container, and the 429 asks for two minutes (the old client held every call that long)
    const { emu, port, d } = await setup({ maxActiveScans: 1, retryAfterSec: 120, scanTiming: { pickupSec: 0.2, hostSec: 4 } });
    await udpSend(port, ack('10.30.1.1', '52:54:00:00:01:01'));
    const running = await until(() => runsFor(emu, '10.30.1.1')[0], 20_000, 'first launch', 50);
    await udpSend(port, ack('10.20.1.5', '52:54:00:00:01:05'));
    const refused = await until(() => emu.requests.findIndex((r) => r.route === 'scans.launch' && r.status === 429) + 1 || undefined, 20_000, 'the launch refused', 50);
    // the first scan ends; the daemon still asks about it (status, list) and records its end
    await until(() => (emu.model.advance(), running.run.endedAt), 20_000, 'first scan done', 50);
    await until(() => emu.requests.slice(refused).some((r) => r.status === 200 && !['scans.launch', 'scans.copy', 'scans.delete'].includes(r.route)), 10_000, 'a call after the refusal', 50).catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(emu.requests.slice(refused - 3).map((r) => [r.route, r.status]))}; log: ${d.logs.slice(-12).map((l) => l.msg).join(' | ')}`); });
    await until(async () => (await settledIntents(d.dir)).some((i) => i.scan_ref === String(running.scan.id) && i.state === 'finished'), 10_000, 'the first scan recorded finished', 100);
    // launches are held for the Retry-After: no second attempt yet
    expect(emu.requests.filter((r) => r.route === 'scans.launch' && r.status === 429)).toHaveLength(1);
    expect(d.logs.some((l) => /no launch call before/.test(String(l.msg)))).toBe(true);
  }, 60_000);

  it('killed with SIGKILL between recording the intent and the confirmation, repeatedly: no scan is launched twice', async () => {
    // every launch answer takes 1.5 s: the daemon is killed while Tenable is still starting the scan
    const emu = await startTenableEmulator({
      scanners: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }],
      scanTiming: { pickupSec: 0.2, hostSec: 1 },
      faults: { slowShare: 1, slowMs: 1500, routes: ['scans.launch'] },
    });
    emus.push(emu);
    const port = await freePort();
    const cfg = daemonConfig(port, emu, { maxConc: 4, sched: '{ pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5, reconcileGraceS: 6 }' });
    const started = await startDaemon(cfg, { TEST_TENABLE_KEYS: emu.apiKeys });
    const ips = ['10.20.3.1', '10.20.3.2', '10.20.3.3', '10.20.3.4'];
    const { d, killedMidLaunch } = await killDuringLaunches(started, port, ips, { TEST_TENABLE_KEYS: emu.apiKeys });
    daemons.push(d);
    await until(() => ips.every((ip) => runsFor(emu, ip).length > 0), 60_000, 'every host scanned', 100).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(emu.model.scans.map((s) => [s.name, s.runs.map((x) => x.targets)]))}; log: ${d.logs.slice(-8).map((l) => l.msg).join(' | ')}`);
    });
    const intents = await settledIntents(d.dir);
    await sleep(1000);
    for (const ip of ips) expect(runsFor(emu, ip), ip).toHaveLength(1);
    for (const i of intents) {
      const launched = emu.model.scans.filter((s) => s.name.includes(i.id) && s.runs.length > 0);
      // abandoned: no launched scan carries it (a copy it left unlaunched is no scan); otherwise exactly its own
      if (i.state === 'abandoned') expect(launched, i.id).toHaveLength(0);
      else {
        expect(launched, i.id).toHaveLength(1);
        expect(String(launched[0].id)).toBe(i.scan_ref);
      }
    }
    console.log(`tenable SIGKILL rounds: ${ips.length}, killed with an unconfirmed intent recorded: ${killedMidLaunch}; intents: ${intents.map((i) => i.state).join(', ')}`);
    expect(killedMidLaunch).toBeGreaterThan(0);
  }, 180_000);
});
