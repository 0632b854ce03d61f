/**
 * End to end with Rapid7 InsightVM: the real daemon (child process), real syslog over UDP, the real
 * Rapid7 client over HTTPS (a throwaway CA given as `scanner.ca`), and the console emulator on a real
 * socket. A lease launches on its region's engine, a busy region batches, a down engine moves the
 * scan, an engine pool lets the console route, a SIGKILL mid-launch makes no duplicate, and nothing
 * outside the scope is ever sent.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startRapid7Emulator, type Rapid7Emulator, type Rapid7EmulatorOptions } from '../src/emulator/rapid7/index.js';
import { killDuringLaunches, settledIntents } from './helpers/crash.js';
import { type DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { selfSignedCert } from './helpers/tls-cert.js';
import { sleep, until } from './helpers/wait.js';

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;
const cert = selfSignedCert();
if ('skip' in cert) console.log(`SKIP rapid7 end-to-end tests: ${cert.skip}`);

function daemonConfig(port: number, emu: Rapid7Emulator, caFile: string, o: { amer?: string; maxConc?: number; sched?: string } = {}): string {
  return `
${udpDaemonHead(port, '10.20.99.0/24')}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-1, emea-2], maxConcurrentScans: ${o.maxConc ?? 1} }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [${o.amer ?? 'amer-1'}], maxConcurrentScans: ${o.maxConc ?? 1} }
scanner: { type: rapid7, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_R7_PASSWORD, ca: "${caFile}", siteId: 1, maxTargetsPerScan: 10 }
scheduler: ${o.sched ?? '{ pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5 }'}
http: { enabled: false }
`;
}

const scansFor = (emu: Rapid7Emulator, ip: string) => emu.model.scans.filter((s) => s.hosts.includes(ip));
const engineName = (emu: Rapid7Emulator, id: number | undefined) => emu.model.engines.find((e) => e.id === id)?.name ?? emu.model.pools.find((p) => p.id === id)?.name;

describe.skipIf('skip' in cert)('scheduler end to end against the Rapid7 InsightVM emulator (HTTPS)', () => {
  const tls = 'skip' in cert ? undefined : { cert: cert.cert, key: cert.key };
  const caFile = 'skip' in cert ? '' : cert.caFile;
  const daemons: DaemonProcess[] = [];
  const emus: Rapid7Emulator[] = [];
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  });
  afterAll(async () => {
    for (const e of emus) await e.close();
  });

  async function setup(emuOpts: Rapid7EmulatorOptions, cfg: Parameters<typeof daemonConfig>[3] = {}) {
    const emu = await startRapid7Emulator({
      tls, engines: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }, { name: 'amer-2' }],
      scanTiming: { pickupSec: 0.2, hostSec: 1.5 }, ...emuOpts,
    });
    emus.push(emu);
    const port = await freePort();
    const d = await startDaemon(daemonConfig(port, emu, caFile, cfg), { TEST_R7_PASSWORD: emu.password });
    daemons.push(d);
    return { emu, port, d };
  }

  it('a DHCP lease launches a site scan on the region\'s engine; a busy region batches the next hosts', async () => {
    const { emu, port } = await setup({});
    await udpSend(port, ack('10.30.1.1', '52:54:00:00:01:01'));
    const first = await until(() => scansFor(emu, '10.30.1.1')[0], 20_000, 'first launch', 50);
    expect(engineName(emu, first.engineId)).toBe('amer-1');
    expect(first.siteId).toBe(1);
    expect(first.name).toMatch(/^onsight onsight-/);
    for (let i = 2; i <= 4; i++) await udpSend(port, ack(`10.30.1.${i}`, `52:54:00:00:01:0${i}`));
    const batch = await until(() => scansFor(emu, '10.30.1.2')[0], 20_000, 'batched launch', 50);
    expect([...batch.hosts].sort()).toEqual(['10.30.1.2', '10.30.1.3', '10.30.1.4']);
    expect(batch.launchedAt).toBeGreaterThanOrEqual(first.endedAt ?? Infinity);
    expect(emu.requests.filter((r) => r.route === 'sites.scans.start' && r.status === 201)).toHaveLength(2);
  }, 60_000);

  it('a down engine is never used: the region\'s other engine takes the scan', async () => {
    const { emu, port } = await setup({ faults: { engineDown: [{ name: 'emea-1', atSec: 0 }] } });
    await sleep(700);
    await udpSend(port, ack('10.20.1.7', '52:54:00:aa:bb:cc'));
    const s = await until(() => scansFor(emu, '10.20.1.7')[0], 20_000, 'launch', 50);
    expect(engineName(emu, s.engineId)).toBe('emea-2');
  }, 60_000);

  it('a region naming an engine pool launches on the pool and the console routes it to an up member', async () => {
    const { emu, port } = await setup({ pools: [{ name: 'amer-pool', engines: ['amer-1', 'amer-2'] }], faults: { engineDown: [{ name: 'amer-1', atSec: 0 }] } }, { amer: 'amer-pool' });
    await udpSend(port, ack('10.30.5.5', '52:54:00:00:05:05'));
    const s = await until(() => scansFor(emu, '10.30.5.5')[0], 20_000, 'launch', 50);
    expect(engineName(emu, s.engineId)).toBe('amer-pool');
    await until(() => s.runOn, 20_000, 'picked up', 50);
    expect(engineName(emu, s.runOn)).toBe('amer-2');
  }, 60_000);

  it('nothing outside the scope or inside the exclusion list is ever sent to the console', async () => {
    const { emu, port, d } = await setup({});
    await udpSend(port, ack('10.20.99.5', '52:54:00:00:09:05'));
    await udpSend(port, ack('192.168.7.7', '52:54:00:00:09:07'));
    await udpSend(port, ack('10.20.7.1', '52:54:00:00:09:01'));
    await until(() => scansFor(emu, '10.20.7.1')[0], 20_000, 'in-scope launch', 50);
    await sleep(1500);
    const sent = JSON.stringify(emu.requests.map((r) => [r.query, r.body]));
    expect(sent).not.toContain('10.20.99.5');
    expect(sent).not.toContain('192.168.7.7');
    expect(JSON.stringify(d.logs) + d.stderr).not.toContain(emu.password);
  }, 60_000);

  it('killed with SIGKILL between recording the intent and the confirmation, repeatedly: no scan is launched twice', async () => {
    const emu = await startRapid7Emulator({
      tls, engines: [{ name: 'emea-1' }, { name: 'emea-2' }, { name: 'amer-1' }], scanTiming: { pickupSec: 0.2, hostSec: 1 },
      faults: { slowShare: 1, slowMs: 1500, routes: ['sites.scans.start'] },
    });
    emus.push(emu);
    const port = await freePort();
    const cfg = daemonConfig(port, emu, caFile, { maxConc: 4, sched: '{ pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5, reconcileGraceS: 6 }' });
    const started = await startDaemon(cfg, { TEST_R7_PASSWORD: emu.password });
    const ips = ['10.20.3.1', '10.20.3.2', '10.20.3.3', '10.20.3.4'];
    const { d, killedMidLaunch } = await killDuringLaunches(started, port, ips, { TEST_R7_PASSWORD: emu.password });
    daemons.push(d);
    await until(() => ips.every((ip) => scansFor(emu, ip).length > 0), 60_000, 'every host scanned', 100);
    const intents = await settledIntents(d.dir);
    await sleep(1000);
    for (const ip of ips) expect(scansFor(emu, ip), ip).toHaveLength(1);
    for (const i of intents) {
      const inEmu = emu.model.scans.filter((s) => s.name.includes(i.id));
      if (i.state === 'abandoned') expect(inEmu).toHaveLength(0);
      else {
        expect(inEmu).toHaveLength(1);
        expect(String(inEmu[0].id)).toBe(i.scan_ref);
      }
    }
    console.log(`rapid7 SIGKILL rounds: ${ips.length}, killed with an unconfirmed intent recorded: ${killedMidLaunch}; intents: ${intents.map((i) => i.state).join(', ')}`);
    expect(killedMidLaunch).toBeGreaterThan(0);
  }, 180_000);
});
