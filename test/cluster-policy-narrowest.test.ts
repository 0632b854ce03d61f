/**
 * Cluster nodes' scope and exclusions (security review: a reload of one node changed only its own
 * policy, so a failover to a node not yet reloaded scanned what the other excluded): two real daemons
 * on one PostgreSQL and the Qualys emulator. Node a leads with no exclusion while node b, a live
 * follower, excludes an address: a never launches it. b's reload moves the exclusion to an address
 * a's scan is running on: that scan is canceled, and the first address is launched. b's reload to
 * a's lists ends the narrowing: the canceled address is launched again. Then the leader alone is
 * reloaded with a new exclusion and the lease fails over to b (a lives on): b does not launch it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { readClusterStatus, renderClusterStatus } from '../src/cluster/status.js';
import { freePort, startDaemon, type DaemonProcess } from './helpers/daemon.js';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { udpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';

const why = pgUnavailable();
if (why) console.log(`skip the cluster policy narrowing test: ${why}`);

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

function nodeConfig(server: PgServer, node: string, port: number, emu: QualysEmulator, exclude: string[]): string {
  return `
state:
  postgres: "postgres://${server.user}@/${server.database}?host=${server.socketDir}&port=${server.port}"
  poolSize: 4
cluster: { name: lab, node: ${node}, leaseTtlS: 3, pollS: 0.25 }
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"], exclude: ${JSON.stringify(exclude)} }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1, emea-sa-2], maxConcurrentScans: 6 }
scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options", maxTargetsPerScan: 1 }
scheduler: { pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5, cancelDrainS: 1 }
http: { enabled: false }
`;
}

describe.skipIf(!!why)("two nodes' policies: the narrowest of the live nodes' applies", () => {
  let server: PgServer | undefined;
  let emu: QualysEmulator | undefined;
  const daemons: DaemonProcess[] = [];
  let db: pg.Client | undefined;
  beforeAll(async () => {
    server = startPostgres();
    db = new pg.Client(server.connection);
    await db.connect();
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop('SIGKILL');
    await db?.end().catch(() => undefined);
    await emu?.close();
    server?.destroy();
  });

  it("a follower's exclusion keeps the leader from launching an address; its reload cancels a running scan and lifts the narrowing; a failover to a node not reloaded keeps the leader's new exclusion", async () => {
    // every host takes 10 minutes: a scan launched stays running for the whole test; the appliances
    // hear of a cancel within a second, so the region takes new scans soon after one
    emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1', pollingIntervalSec: 1 }, { name: 'emea-sa-2', pollingIntervalSec: 1 }],
      scanTiming: { submitDelaySec: 0, hostSecMin: 600, hostSecMax: 600, loadingSec: 0 },
    });
    const env = { TEST_QUALYS_PASSWORD: emu.password };
    const [pa, pb] = [await freePort(), await freePort()];
    const a = await startDaemon(nodeConfig(server!, 'a', pa, emu, []), env);
    daemons.push(a);
    await a.waitFor((e) => e.msg.startsWith('leader: a'), 20_000);
    const b = await startDaemon(nodeConfig(server!, 'b', pb, emu, ['10.20.7.7']), env);
    daemons.push(b);
    const differs = await a.waitFor((e) => e.msg.includes("cluster nodes' policies differ"), 10_000);
    expect(differs.msg).toContain('node(s) b (scope 1, exclude 1 entries)');
    expect(b.logs.some((e) => e.msg.startsWith('leader: b'))).toBe(false);

    const scansOf = (ip: string) => emu!.state.model.scans.filter((s) => s.target.split(',').includes(ip));
    const active = (ip: string) => scansOf(ip).filter((s) => emu!.state.model.isActive(s));
    const [excluded, control, later] = ['10.20.7.7', '10.20.7.8', '10.20.7.9'];
    // the lines go to the leader alone: only b's published lists can keep it from the excluded address
    await udpSend(pa, ack(excluded, '52:54:00:07:07:07'));
    await udpSend(pa, ack(control, '52:54:00:07:07:08'));
    await udpSend(pa, ack(later, '52:54:00:07:07:09'));
    await until(() => scansOf(control).length > 0 && scansOf(later).length > 0, 30_000, 'the allowed addresses launched', 100);
    // running (the scheduler's intent) before b's next reload, so the cancel is the running-scan check's
    await until(async () => (await db!.query("SELECT 1 FROM intents i JOIN intent_targets t ON t.intent_id = i.id WHERE t.ip = $1 AND i.state = 'running'", [later])).rowCount === 1,
      20_000, `${later}'s intent running`, 100);
    await new Promise((r) => setTimeout(r, 1500)); // a pass or two more: the excluded address would have gone with the others
    expect(scansOf(excluded)).toHaveLength(0);
    const reason = await db!.query<{ reason: string }>('SELECT reason FROM decisions WHERE ip = $1 ORDER BY id DESC LIMIT 1', [excluded]);
    expect(reason.rows[0]?.reason).toMatch(/node b's policy excludes 10\.20\.7\.7/);

    // b moves its exclusion to the address a is scanning: that scan is canceled, the first is launched
    const cfgB = join(b.dir, 'onsight.yaml');
    writeFileSync(cfgB, readFileSync(cfgB, 'utf8').replace('exclude: ["10.20.7.7"]', 'exclude: ["10.20.7.9"]'));
    const reloadAt = Date.now();
    b.child.kill('SIGHUP');
    await b.waitFor((e) => e.msg.includes('reloaded: policy'), 10_000);
    await until(() => scansOf(later).length > 0 && active(later).length === 0, 20_000, `${later}'s running scan canceled`, 100);
    const canceledMs = Date.now() - reloadAt;
    await until(() => scansOf(excluded).length > 0, 20_000, `${excluded} launched once b no longer excludes it`, 100);
    expect(scansOf(later).map((s) => s.state)).toEqual(['Canceled']);
    expect(active(control)).toHaveLength(1); // what neither node refuses runs on
    // `onsight cluster status` says whose lists differ from the leader's
    const st = (await readClusterStatus(db!))!;
    expect(st.members.map((m) => [m.name, m.policyDiffers])).toEqual([['a', false], ['b', true]]);
    expect(renderClusterStatus(st, 'lab')).toMatch(/\n {2}b .*scope 1, exclude 1 \(differs from the leader's\)\n/);

    // b takes a's lists: the narrowing ends, and the canceled address is launched again
    writeFileSync(cfgB, readFileSync(cfgB, 'utf8').replace('exclude: ["10.20.7.9"]', 'exclude: []'));
    b.child.kill('SIGHUP');
    await a.waitFor((e) => e.msg.includes("agree with this node a's again"), 10_000);
    await until(() => active(later).length === 1, 20_000, `${later} launched again once no live node refuses it`, 100);
    expect(scansOf(control)).toHaveLength(1);
    expect(scansOf(excluded)).toHaveLength(1);
    const members = await db!.query<{ name: string; policy: { scope: string[]; exclude: string[] } }>('SELECT name, policy FROM cluster_nodes ORDER BY name');
    expect(members.rows).toEqual([{ name: 'a', policy: { scope: ['10.0.0.0/8'], exclude: [] } }, { name: 'b', policy: { scope: ['10.0.0.0/8'], exclude: [] } }]);

    // the review's case: only the leader is reloaded with a new exclusion, then the lease fails over
    // to the node not reloaded (a's lease session ended; a lives on): b must not launch it either
    const cfgA = join(a.dir, 'onsight.yaml');
    writeFileSync(cfgA, readFileSync(cfgA, 'utf8').replace('exclude: []', 'exclude: ["10.20.8.0/24"]'));
    const seenB = b.logs.length;
    a.child.kill('SIGHUP');
    await a.waitFor((e) => e.msg.includes('reloaded: policy'), 10_000);
    await b.waitFor((e) => b.logs.indexOf(e) >= seenB && e.msg.includes('node(s) a (scope 1, exclude 1 entries)'), 10_000);
    await db!.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'onsight-lease a'");
    await b.waitFor((e) => e.msg.startsWith('leader: b'), 20_000);
    const [reloadedAway, other] = ['10.20.8.8', '10.20.9.9'];
    await udpSend(pb, ack(reloadedAway, '52:54:00:08:08:08'));
    await udpSend(pb, ack(other, '52:54:00:09:09:09'));
    await until(() => active(other).length === 1, 20_000, `${other} launched by the new leader`, 100);
    await new Promise((r) => setTimeout(r, 1500));
    expect(scansOf(reloadedAway)).toHaveLength(0);
    const reason2 = await db!.query<{ reason: string }>('SELECT reason FROM decisions WHERE ip = $1 ORDER BY id DESC LIMIT 1', [reloadedAway]);
    expect(reason2.rows[0]?.reason).toMatch(/node a's policy excludes 10\.20\.8\.8 \(10\.20\.8\.0\/24\)/);
    console.log(`cluster policy narrowing: ${later}'s running scan canceled ${canceledMs} ms after b's reload`);
  }, 60_000);
});
