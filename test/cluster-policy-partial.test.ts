/**
 * A live peer's published lists with an entry that does not parse (a newer onsight's form, a row
 * edited by hand): the entries that parse are applied, not the peer ignored whole (review: one bad
 * entry dropped every other exclusion the peer had, and the leader scanned them). A peer whose
 * lists are unknown (none published, or not all readable) is counted on /metrics
 * (`onsight_cluster_policy_unknown`). A real daemon on a real PostgreSQL with the Qualys
 * emulator; the peer is a row kept alive in cluster_nodes, as a node's heartbeat keeps its own.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { freePort, startDaemon, type DaemonProcess } from './helpers/daemon.js';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const why = pgUnavailable();
if (why) console.log(`skip the cluster partial peer policy test: ${why}`);

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

describe.skipIf(!!why)("a peer's lists with an entry that does not parse", () => {
  let server: PgServer | undefined;
  let emu: QualysEmulator | undefined;
  let d: DaemonProcess | undefined;
  let db: pg.Client | undefined;
  let beat: NodeJS.Timeout | undefined;
  beforeAll(async () => {
    server = startPostgres();
    db = new pg.Client(server.connection);
    await db.connect();
  });
  afterAll(async () => {
    clearInterval(beat);
    await d?.stop('SIGKILL');
    await db?.end().catch(() => undefined);
    await emu?.close();
    server?.destroy();
  });

  it('applies the entries that parse (the peer\'s sound exclusion keeps the leader off its address) and counts the peer as unknown on /metrics', async () => {
    emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1', pollingIntervalSec: 1 }],
      scanTiming: { submitDelaySec: 0, hostSecMin: 600, hostSecMax: 600, loadingSec: 0 },
    });
    const [port, httpPort] = [await freePort(), await freePort()];
    d = await startDaemon(`
state:
  postgres: "postgres://${server!.user}@/${server!.database}?host=${server!.socketDir}&port=${server!.port}"
  poolSize: 4
cluster: { name: lab, node: a, leaseTtlS: 3, pollS: 0.25 }
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1], maxConcurrentScans: 6 }
scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options", maxTargetsPerScan: 1 }
scheduler: { pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5, cancelDrainS: 1 }
http: { listen: "127.0.0.1:${httpPort}" }
`, { TEST_QUALYS_PASSWORD: emu.password });
    await d.waitFor((e) => e.msg.startsWith('leader: a'), 20_000);

    // node b: a sound exclusion of 10.20.7.7 beside an entry no onsight parses; its heartbeat kept fresh
    const policy = JSON.stringify({ scope: ['10.0.0.0/8'], exclude: ['10.20.7.7', '10.20.9.0/99'] });
    await db!.query(`INSERT INTO cluster_nodes (name, role, version, host, pid, started_at, heartbeat_at, policy) VALUES ('b', 'collector', 'x', 'h', 1, now(), now(), $1::jsonb)`, [policy]);
    beat = setInterval(() => void db!.query(`UPDATE cluster_nodes SET heartbeat_at = now() WHERE name = 'b'`).catch(() => undefined), 250);
    const said = await d.waitFor((e) => e.msg.includes("node b's policy.exclude[1]"), 10_000);
    expect(said.msg).toContain('the others are');

    await udpSend(port, ack('10.20.7.7', 'aa:bb:cc:00:07:07'));
    await udpSend(port, ack('10.20.7.8', 'aa:bb:cc:00:07:08'));
    const launched = (ip: string) => emu!.state.model.scans.some((s) => s.target.split(',').includes(ip));
    await until(() => launched('10.20.7.8'), 20_000, 'the address no node excludes is launched');
    // (given the passes that launched 7.8 time to launch 7.7 as well, were it allowed)
    await sleep(2000);
    expect(launched('10.20.7.7')).toBe(false);

    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^onsight_cluster_policy_unknown 1$/m);
    expect(metrics).toMatch(/^onsight_cluster_policy_differs 1$/m);
  }, 60_000);
});
