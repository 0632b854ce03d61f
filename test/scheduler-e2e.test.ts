/**
 * The brain end to end: the real daemon (child process), real syslog over UDP, the real Qualys
 * client, and the Qualys emulator on a real HTTP socket.
 */
import { join } from 'node:path';
import Database from '../src/store/sqlite.js';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { startQualysEmulator, type QualysEmulator, type EmulatorOptions } from '../src/emulator/qualys/index.js';
import { freePort, startDaemon, type DaemonProcess, udpDaemonHead } from './helpers/daemon.js';
import { killDuringLaunches } from './helpers/crash.js';
import { udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';


// stamped now: a lease from hours ago would have run out already (default lease 1 h)
const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;


function daemonConfig(port: number, emu: QualysEmulator, extra = ''): string {
  return `
${udpDaemonHead(port, '10.20.99.0/24')}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1, emea-sa-2], maxConcurrentScans: 1 }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [amer-sa-1], maxConcurrentScans: 1 }
scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options", maxTargetsPerScan: 10 }
scheduler: { pollIntervalS: 0.2, idlePollS: 0.5, applianceRefreshS: 0.5, verifyDelayS: 0.5 }
http: { enabled: false }
${extra}`;
}

const scansFor = (emu: QualysEmulator, ip: string) => emu.state.model.scans.filter((s) => s.target.split(',').includes(ip));

const emus: QualysEmulator[] = [];
afterAll(async () => {
  for (const e of emus) await e.close();
});
/** this case's daemon is killed when the case ends (not another case's: they run side by side) */
const killAtEnd = (t: TestContext, d: DaemonProcess) => t.onTestFinished(async () => void await d.stop('SIGKILL'));

// the cases share nothing (each its own emulator, daemon, port and state file) and mostly wait on
// scans: they run side by side
describe.concurrent('scheduler end to end against the Qualys emulator', () => {
  async function setup(t: TestContext, emuOpts: EmulatorOptions, extra = '') {
    const emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1' }, { name: 'emea-sa-2' }, { name: 'amer-sa-1' }],
      speed: 1,
      scanTiming: { submitDelaySec: 0, hostSecMin: 1.5, hostSecMax: 2, loadingSec: 0 },
      ...emuOpts,
    });
    emus.push(emu);
    const port = await freePort();
    const d = await startDaemon(daemonConfig(port, emu, extra), { TEST_QUALYS_PASSWORD: emu.password });
    killAtEnd(t, d);
    return { emu, port, d };
  }

  it('a DHCP lease leads to a launch on the region\'s appliance; a busy region batches the next hosts into one launch', async (t) => {
    const { emu, port } = await setup(t, {});
    await udpSend(port, ack('10.30.1.1', '52:54:00:00:01:01'));
    const first = await until(() => scansFor(emu, '10.30.1.1')[0], 20_000, 'first launch', 50);
    expect(first.appliances).toEqual(['amer-sa-1']);
    expect(first.title).toMatch(/^onsight onsight-/);
    // the region is busy: these wait and go out together
    for (let i = 2; i <= 4; i++) await udpSend(port, ack(`10.30.1.${i}`, `52:54:00:00:01:0${i}`));
    const batch = await until(() => scansFor(emu, '10.30.1.2')[0], 20_000, 'batched launch', 50);
    expect(batch.target.split(',').sort()).toEqual(['10.30.1.2', '10.30.1.3', '10.30.1.4']);
    expect(batch.launchedAt).toBeGreaterThanOrEqual(first.launchedAt);
    // the one-scan-per-region rule held throughout: amer never had two scans of ours running at once
    const amer = emu.state.model.scans.filter((s) => s.appliances.includes('amer-sa-1'));
    expect(amer).toHaveLength(2);
  });

  it('an offline appliance is never used: the region\'s other appliance takes the scan', async (t) => {
    const { emu, port } = await setup(t, { faults: { applianceOffline: [{ name: 'emea-sa-1', atSec: 0 }] } });
    await sleep(600); // an appliance refresh sees it offline
    await udpSend(port, ack('10.20.1.7', '52:54:00:aa:bb:cc'));
    const scan = await until(() => scansFor(emu, '10.20.1.7')[0], 20_000, 'launch', 50);
    expect(scan.appliances).toEqual(['emea-sa-2']);
  });

  it('a target Qualys silently drops from a scan (outside the subscription) is not recorded as scanned, and says why', async (t) => {
    const { emu, port, d } = await setup(t, { subscription: ['10.30.1.0/24'], outOfSubscription: 'drop' });
    const db = new Database(join(d.dir, 'state.db'), { readonly: true });
    const decided = (ip: string, decision: string) => db.prepare('SELECT reason FROM decisions WHERE ip = ? AND decision = ?').get(ip, decision) as { reason: string } | undefined;
    try {
      // amer busy, so the next two go out together; Qualys keeps only the one in its subscription
      await udpSend(port, ack('10.30.1.1', '52:54:00:00:04:01'));
      await until(() => scansFor(emu, '10.30.1.1')[0], 20_000, 'amer busy', 50);
      await udpSend(port, ack('10.30.1.2', '52:54:00:00:04:02'));
      await udpSend(port, ack('10.30.2.2', '52:54:00:00:04:03'));
      const dropped = await until(() => decided('10.30.2.2', 'dropped-by-scanner'), 30_000, 'dropped by the scanner', 50);
      expect(dropped.reason).toMatch(/left 10\.30\.2\.2 out of its target list/);
      await until(() => decided('10.30.1.2', 'scanned'), 20_000, 'the other target scanned', 50);
      expect(decided('10.30.2.2', 'scanned')).toBeUndefined();
      // every end is logged with its outcome
      expect(d.logs.some((l) => /^scan scan\/\S+ finished on amer-\S+: \d+ of \d+ target\(s\) recorded scanned/.test(String(l.msg)))).toBe(true);
      const row = db.prepare('SELECT i.last_scanned_at AS at FROM bindings b JOIN identities i ON i.id = b.identity_id WHERE b.ip = ?').get('10.30.2.2') as { at: number | null };
      expect(row.at).toBeNull();
    } finally {
      db.close();
    }
  });

  it('a launch Qualys refuses for a target outside the subscription: that target waits with back-off, the others go again at once', async (t) => {
    const { emu, port, d } = await setup(t, { subscription: ['10.30.1.0/24'] });
    const db = new Database(join(d.dir, 'state.db'), { readonly: true });
    const decided = (ip: string, decision: string) => db.prepare('SELECT reason FROM decisions WHERE ip = ? AND decision = ?').get(ip, decision) as { reason: string } | undefined;
    try {
      await udpSend(port, ack('10.30.1.1', '52:54:00:00:05:01'));
      await until(() => scansFor(emu, '10.30.1.1')[0], 20_000, 'amer busy', 50);
      await udpSend(port, ack('10.30.1.2', '52:54:00:00:05:02'));
      await udpSend(port, ack('10.30.2.2', '52:54:00:00:05:03'));
      const dropped = await until(() => decided('10.30.2.2', 'dropped-by-scanner'), 30_000, 'refused by the scanner', 50);
      expect(dropped.reason).toMatch(/refused to launch a scan of 10\.30\.2\.2: outside its subscription/);
      // the other target of the refused launch went again without it, and was scanned
      await until(() => decided('10.30.1.2', 'scanned'), 20_000, 'the other target scanned', 50);
      expect(scansFor(emu, '10.30.2.2')).toHaveLength(0);
      const q = db.prepare('SELECT attempts, not_before FROM queue q JOIN bindings b ON b.id = q.binding_id WHERE b.ip = ?').get('10.30.2.2') as { attempts: number; not_before: number };
      expect(q.attempts).toBe(1);
      expect(q.not_before).toBeGreaterThan(Date.now() + 10_000); // back-off, not the next pass
    } finally {
      db.close();
    }
  });

  it('an address reassigned before launch is not scanned for the old device, and excluded addresses never are', async (t) => {
    const { emu, port, d } = await setup(t, { scanTiming: { submitDelaySec: 0, hostSecMin: 2, hostSecMax: 2, loadingSec: 0 } });
    const db = new Database(join(d.dir, 'state.db'), { readonly: true });
    const decided = (ip: string, decision: string) => db.prepare('SELECT reason FROM decisions WHERE ip = ? AND decision = ?').get(ip, decision) as { reason: string } | undefined;
    try {
      // device Y is scanned, to the end, at its first address
      await udpSend(port, ack('10.20.2.60', '52:54:00:00:02:99'));
      await until(() => decided('10.20.2.60', 'scanned'), 20_000, 'Y scanned', 50);
      // amer gets busy, so X queues behind it at 10.30.2.50...
      await udpSend(port, ack('10.30.2.1', '52:54:00:00:02:01'));
      await until(() => scansFor(emu, '10.30.2.1')[0], 20_000, 'amer busy', 50);
      await udpSend(port, ack('10.30.2.50', '52:54:00:00:02:50'));
      await until(() => decided('10.30.2.50', 'due'), 20_000, 'X queued', 50);
      // ...and before room opens, Y takes the address over
      await udpSend(port, ack('10.30.2.50', '52:54:00:00:02:99'));
      await udpSend(port, ack('10.20.99.5', '52:54:00:00:02:05'));
      const dropped = await until(() => decided('10.30.2.50', 'dropped'), 20_000, 'X dropped at launch time', 50);
      expect(dropped.reason).toMatch(/reassigned|another device/);
      expect(decided('10.30.2.50', 'not-due')?.reason).toMatch(/^scanned-recently/); // Y itself is not due
    } finally {
      db.close();
    }
    await sleep(1000);
    expect(scansFor(emu, '10.30.2.50')).toHaveLength(0);
    expect(scansFor(emu, '10.20.99.5')).toHaveLength(0);
  });
});

// alone: six daemon starts in a row are most of its time, and would slow the cases above past their deadlines
describe('scheduler end to end against the Qualys emulator, SIGKILL mid-launch', () => {
  it('killed with SIGKILL between recording the intent and the confirmation, repeatedly: no scan is launched twice and none is orphaned', async (t) => {
    // every launch answer takes 1.5 s, so there is time to kill the daemon with the intent recorded
    const emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1' }, { name: 'emea-sa-2' }, { name: 'amer-sa-1' }],
      scanTiming: { submitDelaySec: 0, hostSecMin: 1, hostSecMax: 1, loadingSec: 0 },
      faults: { slowShare: 1, slowMs: 1500, actions: ['launch'] },
    });
    emus.push(emu);
    const port = await freePort();
    const cfg = daemonConfig(port, emu).replace('maxConcurrentScans: 1 }', 'maxConcurrentScans: 4 }')
      .replace('verifyDelayS: 0.5 }', 'verifyDelayS: 0.5, reconcileGraceS: 4 }');
    const started = await startDaemon(cfg, { TEST_QUALYS_PASSWORD: emu.password });
    const stateFile = join(started.dir, 'state.db');
    const rounds = 5;
    // each host's intent is recorded and its launch call is in flight (the emulator holds the answer
    // 1.5 s): SIGKILL, and a restart on the same state file and port
    const ips = Array.from({ length: rounds }, (_, r) => `10.20.3.${r + 1}`);
    const { d, killedMidLaunch } = await killDuringLaunches(started, port, ips, { TEST_QUALYS_PASSWORD: emu.password });
    killAtEnd(t, d);
    // let every host get its scan, then look at what the emulator saw
    await until(() => {
      for (let r = 0; r < rounds; r++) if (scansFor(emu, `10.20.3.${r + 1}`).length === 0) return false;
      return true;
    }, 30_000, 'every host scanned once', 50).catch((err: Error) => {
      const db = new Database(stateFile, { readonly: true });
      const state = { intents: db.prepare('SELECT * FROM intents').all(), queue: db.prepare('SELECT * FROM queue').all(), decisions: db.prepare('SELECT * FROM decisions').all() };
      db.close();
      throw new Error(`${err.message}: ${JSON.stringify(state)}; emulator: ${JSON.stringify(emu.state.model.scans.map((x) => [x.title, x.target, x.state]))}; log: ${d.logs.slice(-8).map((l) => l.msg).join(' | ')}`);
    });
    // and every unconfirmed intent settled (adopted, or given up after the grace period)
    await until(() => {
      const db = new Database(stateFile, { readonly: true });
      const n = (db.prepare(`SELECT count(*) n FROM intents WHERE state = 'launching'`).get() as { n: number }).n;
      db.close();
      return n === 0;
    }, 20_000, 'no intent left unconfirmed', 50);
    await sleep(1000);
    for (let r = 0; r < rounds; r++) expect(scansFor(emu, `10.20.3.${r + 1}`), `10.20.3.${r + 1}`).toHaveLength(1);
    // every intent is settled: confirmed ones carry a scan the emulator knows, abandoned ones have none
    const db = new Database(stateFile, { readonly: true });
    const intents = db.prepare('SELECT id, state, scan_ref FROM intents').all() as { id: string; state: string; scan_ref: string | null }[];
    db.close();
    for (const i of intents) {
      const inEmu = emu.state.model.scans.filter((s) => s.title.includes(i.id));
      if (i.state === 'abandoned') expect(inEmu).toHaveLength(0);
      else {
        expect(inEmu).toHaveLength(1);
        expect(inEmu[0].ref).toBe(i.scan_ref);
      }
    }
    console.log(`SIGKILL rounds: ${rounds}, killed with an unconfirmed intent recorded: ${killedMidLaunch}; intents: ${intents.map((i) => i.state).join(', ')}`);
    expect(killedMidLaunch).toBeGreaterThan(0);
  }, 120_000);
});
