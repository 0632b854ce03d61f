/**
 * A dry-run trial on the state a real scanner then uses (the probe of session 43: `onsight run`
 * with no config, then the production config on the same state file): the dry-run scanner's
 * pretend scans scanned nothing, yet they were kept as the devices' last scans, so no real scan of
 * any trial device came for the whole rescan window (`not-due scanned-recently … (dry-run)`).
 * Started with a real scanner, the daemon forgets them, says how many, and the device is scanned;
 * what the scheduler learned from them (scan durations, slots, the pace) is left out, said.
 * Real daemons (the CLI), a real SQLite file, the Qualys emulator.
 */
import { afterAll, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { join } from 'node:path';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { freePort, startDaemon, udpDaemonHead, type DaemonProcess } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

describe('dry-run scans on a state a real scanner takes over', () => {
  let emu: QualysEmulator | undefined;
  const daemons: DaemonProcess[] = [];
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await emu?.close();
  });

  it('are forgotten at the start, said: the device is scanned for real (it was held 30 days)', async () => {
    const port = await freePort();
    const head = udpDaemonHead(port);
    const region = 'regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]\n';
    // the trial: dry-run, and a device it "scans"
    const trial = await startDaemon(`${head}${region}scanner: { type: dry-run, scanDurationS: 0 }\nscheduler: { pollIntervalS: 0.2 }\nhttp: { enabled: false }\n`);
    daemons.push(trial);
    await udpSend(port, ack('10.20.1.7', '52:54:00:00:07:07'));
    const state = join(trial.dir, 'state.db');
    const via = () => {
      const db = new Database(state, { readonly: true });
      try {
        return (db.prepare("SELECT last_scanned_via AS via FROM identities WHERE key = 'mac:52:54:00:00:07:07'").get() as { via: string | null } | undefined)?.via;
      } finally {
        db.close();
      }
    };
    await until(() => via() === 'dry-run', 20_000, 'the pretend scan recorded');
    expect(await trial.stop()).toBe(0);

    // the same state, a real scanner
    emu = await startQualysEmulator({ appliances: [{ name: 'emea-sa-1' }], speed: 1, scanTiming: { submitDelaySec: 0, hostSecMin: 1, hostSecMax: 1, loadingSec: 0 } });
    const real = await startDaemon(`${head}${region}scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options" }
scheduler: { pollIntervalS: 0.2, applianceRefreshS: 0.5 }
http: { enabled: false }
`, { TEST_QUALYS_PASSWORD: emu.password }, trial.dir);
    daemons.push(real);
    const said = real.logs.find((e) => /device\(s\) were last "scanned" by the dry-run scanner/.test(e.msg));
    expect(said?.msg).toMatch(/^1 device\(s\)/);
    // what the scheduler learned from the pretend scans (durations of 0 s, every host found) is not the real scanner's
    const learned = await until(() => real.logs.find((e) => /^what the scheduler learned before the restart/.test(e.msg)), 20_000, 'the learned state read back');
    expect(learned.msg).toMatch(/was left out: every part \(\d+\): learned with the dry-run scanner, not qualys$/);
    await udpSend(port, ack('10.20.1.7', '52:54:00:00:07:07')); // (it renews: seen again)
    const scans = await until(() => (emu!.state.model.scans.length ? emu!.state.model.scans : undefined), 20_000, 'a real launch', 50);
    expect(scans.map((s) => s.target)).toEqual(['10.20.1.7']);
  }, 90_000);
});
