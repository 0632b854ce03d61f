/**
 * scheduler.rangeScans end to end: the real daemon (child process) keeps a Qualys scheduled scan
 * on the emulator (real HTTP socket, scan clock = wall clock at speed 1), holds the region free of
 * its own launches around the run, credits the device the run found and launches only those it
 * missed. Real syslog lines over UDP and TCP, a real SQLite file, `/api/status` and `/metrics`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../src/store/sqlite.js';
import { afterAll, describe, expect, it } from 'vitest';
import { startQualysEmulator, type EmScan, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { freePort, startDaemon, type DaemonProcess } from './helpers/daemon.js';
import { CLI } from './helpers/paths.js';
import { tcpSend, udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const MIN = 60_000;
/**
 * the daemon's start and the sightings fit before the run (1.5 s in all on a loaded 2-core machine, a few
 * seconds at worst; the log line at the end says): the run waits for the next whole minute past it, so
 * every second of margin is waited out in full
 */
const MARGIN_MS = 10_000;
const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

// emea's run covers 10.20.1.0-10.20.1.9 of its wanted 10.20.0.250-10.20.1.9 (scope 10.20.1.0/24), less the excluded .5
const A = { ip: '10.20.1.2', mac: '52:54:00:0a:00:02' }; // sighted inside the hold, before the run: the run finds it
const C = { ip: '10.20.1.200', mac: '52:54:00:0a:00:c8' }; // in emea and in scope, outside the run's targets
const D = { ip: '10.30.1.7', mac: '52:54:00:0a:00:d7' }; // amer: no range scan there, nothing held
const E = { ip: '10.20.1.3', mac: '52:54:00:0a:00:e3' }; // a run target, but sighted after the run's launch

function config(o: { port: number; httpPort: number; emu: QualysEmulator; passwordFile: string; time: string }): string {
  return `state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${o.port}", format: auto }
  - { type: syslog, listen: "tcp://127.0.0.1:${o.port}", format: auto }
policy: { rescanAfter: 30d, scope: ["10.20.1.0/24", "10.30.0.0/16"], exclude: ["10.20.1.5"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1], maxConcurrentScans: 1 }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [amer-sa-1], maxConcurrentScans: 1 }
scanner: { type: qualys, url: "${o.emu.url}", username: ${o.emu.username}, passwordFile: "${o.passwordFile}", optionProfile: "Initial Options", maxTargetsPerScan: 10 }
scheduler:
  pollIntervalS: 0.2
  idlePollS: 0.5
  applianceRefreshS: 0.5
  verifyDelayS: 0.5
  # the hold is on from the start; a run is looked for 2 s after its time, then every second; whole
  # ranges (aimed at held addresses, the run would be aimed at the daemon's start, before any sighting)
  rangeScans: { times: ["${o.time}"], targets: { emea: ["10.20.0.250-10.20.1.9"], amer: [] }, aim: ranges, holdBeforeS: 300, maxHoldS: 600, firstLookS: 2, lookAgainS: 1 }
http: { enabled: true, listen: "127.0.0.1:${o.httpPort}" }
`;
}

let emu: QualysEmulator | undefined;
let d: DaemonProcess | undefined;
afterAll(async () => {
  await d?.stop('SIGKILL');
  await emu?.close();
});

describe('scheduler.rangeScans end to end: the daemon, the Qualys emulator\'s scheduled scans, syslog, SQLite, HTTP', () => {
  it('creates the schedule, holds the region through the run, credits the device the run found and launches only those it missed', async () => {
    const t0 = Date.now();
    const otherHour = (new Date(t0).getUTCHours() + 12) % 24;
    emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1' }, { name: 'amer-sa-1' }],
      speed: 1, // the scan clock is the wall clock: the schedule's HH:MM UTC is the daemon's
      scanTiming: { submitDelaySec: 0, hostSecMin: 1, hostSecMax: 1.5, loadingSec: 0.5 },
      schedules: [
        { title: 'weekly servers', targets: ['10.20.1.0/24'], appliance: 'emea-sa-1', startHour: otherHour },
        // left by an earlier config of ours (amer now has no range targets): deleted at start
        { title: 'onsight-range amer 0300', targets: ['10.30.1.0/24'], appliance: 'amer-sa-1', startHour: otherHour },
      ],
    });
    const model = emu.state.model;
    // the next whole minute that leaves the margin
    const runAt = Math.ceil((Date.now() + MARGIN_MS) / MIN) * MIN;
    const time = new Date(runAt).toISOString().slice(11, 16);
    const title = `onsight-range emea ${time.replace(':', '')}`;
    const secrets = mkdtempSync(join(tmpdir(), 'onsight-secret-'));
    const passwordFile = join(secrets, 'qualys.password');
    writeFileSync(passwordFile, emu.password, { mode: 0o600 });
    const [port, httpPort] = [await freePort(), await freePort()];
    d = await startDaemon(config({ port, httpPort, emu, passwordFile, time }));
    const daemon = d;
    const db = new Database(join(daemon.dir, 'state.db'), { readonly: true });
    const decisions = (ip: string) => db.prepare('SELECT decision, reason, at FROM decisions WHERE ip = ? ORDER BY id').all(ip) as { decision: string; reason: string; at: number }[];
    const decided = (ip: string, decision: string) => decisions(ip).find((x) => x.decision === decision);
    const apiScansOf = (ip: string) => model.scans.filter((s) => s.type === 'API' && s.target.split(',').includes(ip));
    try {
      // 1. the schedule is created at start: emea's only (amer has no targets), clipped to the scope, the exclusion cut out
      const sc = await until(() => model.schedules.find((s) => s.title === title), 20_000, 'the range schedule created', 50);
      expect(model.schedules.filter((s) => s.title.startsWith('onsight-range ')).map((s) => s.title)).toEqual([title]);
      expect(sc).toMatchObject({ active: true, targets: ['10.20.1.0-10.20.1.4', '10.20.1.6-10.20.1.9'], appliances: ['emea-sa-1'], frequencyDays: 1, offsetMin: 0, observeDst: false, nextLaunch: runAt });
      expect(model.schedules.find((s) => s.title === 'weekly servers')).toMatchObject({ targets: ['10.20.1.0-10.20.1.255'], startHour: otherHour });
      expect((await daemon.waitFor((l) => /^range schedules: \d+ changed/.test(l.msg))).schedules).toEqual(expect.arrayContaining([`created ${title}`, 'deleted onsight-range amer 0300']));

      // 2. sightings inside the hold (it starts 300 s before the run): emea's devices wait, amer's launches
      await udpSend(port, ack(A.ip, A.mac));
      await udpSend(port, ack(C.ip, C.mac));
      await udpSend(port, ack(D.ip, D.mac));
      await until(() => apiScansOf(D.ip)[0], 20_000, 'amer launched (nothing holds it)', 50);
      await until(() => decided(A.ip, 'due') && decided(C.ip, 'due'), 20_000, 'A and C queued', 50);
      const sightedAt = Date.now();
      expect(sightedAt, `the daemon took too long to start: the sightings must come before the run at ${time}`).toBeLessThan(runAt);

      // 3. the run starts at its time on the scan clock, with no call of ours (each read replays due events)
      const run = await until(() => {
        model.advance();
        return model.scans.find((s) => s.type === 'Scheduled' && s.title === title);
      }, runAt - Date.now() + 20_000, 'the scheduled run', 100);
      expect(run).toMatchObject({ launchedAt: runAt, target: '10.20.1.0-10.20.1.4,10.20.1.6-10.20.1.9', appliances: ['emea-sa-1'] });
      await tcpSend(port, `${ack(E.ip, E.mac)}\n`); // sighted after the run's launch
      await until(() => decided(E.ip, 'due'), 20_000, 'E queued', 50);
      const ended = await until(() => {
        model.advance();
        return run.state === 'Finished' && run;
      }, 30_000, 'the run finished', 100);
      const endedAt = ended.endedAt!;

      // the daemon credits A from the host list, with the range-scan reason
      const credit = await until(() => decided(A.ip, 'scanned'), 30_000, 'A credited', 50);
      expect(credit.reason).toMatch(new RegExp(`^found by the range scan ${title} \\(${run.ref.replace('/', '\\/').replace('.', '\\.')}\\); held the address throughout it$`));
      const hostDate = model.hosts.get(A.ip)?.lastVmScanned;
      expect(hostDate).toBeGreaterThanOrEqual(runAt);
      const row = db.prepare('SELECT i.last_scanned_at AS at, i.last_scanned_via AS via FROM bindings b JOIN identities i ON i.id = b.identity_id WHERE b.ip = ?').get(A.ip) as { at: number; via: string };
      expect(row).toEqual({ at: Math.floor(hostDate! / 1000) * 1000, via: `scanner:${title}` }); // the host list dates to the second

      // 4. after the run ended: C (not a target) and E (arrived after the launch) are launched by onsight
      const ce = await until(() => apiScansOf(C.ip)[0], 30_000, 'C launched after the run', 50);
      expect(ce.target.split(',').sort()).toEqual([E.ip, C.ip].sort());
      expect(ce.appliances).toEqual(['emea-sa-1']);
      expect(ce.launchedAt).toBeGreaterThanOrEqual(endedAt);
      await until(() => decided(C.ip, 'scanned') && decided(E.ip, 'scanned'), 30_000, 'C and E scanned by our scan', 50);
      expect(decided(E.ip, 'scanned')!.reason).not.toMatch(/range scan/);

      // 2 and 3: no scan of ours went to emea before the run ended, and none ever to A
      const emeaOurs = model.scans.filter((s: EmScan) => s.type === 'API' && s.appliances.includes('emea-sa-1'));
      expect(emeaOurs.map((s) => s.target)).toEqual([ce.target]);
      expect(apiScansOf(A.ip)).toEqual([]);
      expect(model.scans.filter((s) => s.type === 'Scheduled').map((s) => s.title)).toEqual([title]);
      // (the CLI runs while the scan lists are watched below; not execFileSync, which held the emulator's answers up)
      const cliRun = promisify(execFile)(process.execPath, [CLI, 'decisions', '--json', '--config', join(daemon.dir, 'onsight.yaml')], { encoding: 'utf8' });
      cliRun.catch(() => undefined); // (awaited below)

      // once credited the run is done with: no more scan lists for it (each one a call out of the allowance)
      const since = new Date(runAt - 10 * MIN).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await sleep(3000);
      const cli = JSON.parse((await cliRun).stdout) as { ip: string; decision: string; reason: string }[];
      expect(cli.filter((x) => x.ip === A.ip).map((x) => x.decision)).not.toContain('launched');
      expect(cli.find((x) => x.ip === A.ip && x.decision === 'scanned')?.reason).toMatch(/^found by the range scan/);
      const listsAfter = emu.state.requests.filter((r) => r.api === 'scan' && r.action === 'list' && r.params.launched_after_datetime === since && r.at > credit.at + 500);
      expect(listsAfter.map((r) => new Date(r.at).toISOString())).toEqual([]);

      // 5. /api/status and /metrics
      const status = await (await fetch(`http://127.0.0.1:${httpPort}/api/status`)).json() as { scanner: { rangeScans: Record<string, unknown> } };
      expect(status.scanner.rangeScans).toEqual({
        schedules: [{ title, region: 'emea', timeUtc: time, targets: ['10.20.1.0-10.20.1.4', '10.20.1.6-10.20.1.9'], appliance: 'emea-sa-1', id: String(sc.id) }],
        runsSeen: 1,
        credited: 1,
        oursCanceled: 0,
        gaveWay: 0,
        cutShort: 0,
        skipped: 0,
        madeUp: 0,
        aimed: 0,
        unaimedQueued: 0,
        placedElsewhere: 0,
        notFound: 0,
        refusedCanceled: 0,
      });
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      expect(metrics).toMatch(/^onsight_range_credited_total\{scanner="qualys"\} 1$/m);
      expect(metrics).toMatch(/^onsight_range_runs_seen_total\{scanner="qualys"\} 1$/m);
      expect(metrics).toMatch(/^onsight_range_schedules\{scanner="qualys"\} 1$/m);
      console.log(`range e2e: run at ${time} UTC (${Math.round((runAt - t0) / 1000)} s after the start, the sightings in by ${((sightedAt - t0) / 1000).toFixed(1)} s), ended ${Math.round((endedAt - runAt) / 1000)} s later; ` +
        `A credited ${Math.round((credit.at - endedAt) / 1000)} s after the end, C+E launched ${Math.round((ce.launchedAt - endedAt) / 1000)} s after; total ${Math.round((Date.now() - t0) / 1000)} s`);
    } finally {
      db.close();
    }
  }, 180_000);
});
