/**
 * Cluster mode end to end (issue 17): a real PostgreSQL, two real daemons (`onsight run` child
 * processes) sharing it, real syslog over UDP to both, and the Qualys emulator on a real socket.
 * The same DHCP lines reach both nodes (a sender logging to every server): each is applied once.
 * Only the leader launches; kill -9 of the leader mid-run: the other takes over and launches the rest,
 * with no address scanned twice, no scan without its intent, and the inventory complete.
 */
import { appendFileSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQualysEmulator, type QualysEmulator } from '../src/emulator/qualys/index.js';
import { freePort, startDaemon, type DaemonProcess } from './helpers/daemon.js';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const why = pgUnavailable();
if (why) console.log(`skip the two-daemon cluster test: ${why}`);

const ack = (ip: string, mac: string, at: string) => `<30>1 ${at} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

function nodeConfig(server: PgServer, node: string, port: number, emu: QualysEmulator, scheduler = 'pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5'): string {
  return `
state:
  postgres: "postgres://${server.user}@/${server.database}?host=${server.socketDir}&port=${server.port}"
  poolSize: 4
cluster: { name: lab, node: ${node}, leaseTtlS: 3, pollS: 0.25 }
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1, emea-sa-2], maxConcurrentScans: 2 }
scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options", maxTargetsPerScan: 1 }
scheduler: { ${scheduler} }
http: { enabled: false }
`;
}

describe.skipIf(!!why)('two daemons on one PostgreSQL', () => {
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

  it('duplicates applied once, only the leader launches, kill -9 of the leader: the peer launches the rest, none twice', async () => {
    emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1' }, { name: 'emea-sa-2' }],
      speed: 1,
      scanTiming: { submitDelaySec: 0, hostSecMin: 0.5, hostSecMax: 1, loadingSec: 0 },
    });
    const env = { TEST_QUALYS_PASSWORD: emu.password };
    const ports = [await freePort(), await freePort()];
    const n1 = await startDaemon(nodeConfig(server!, 'n1', ports[0], emu), env);
    daemons.push(n1);
    await n1.waitFor((e) => e.msg.startsWith('leader: n1'), 20_000);
    const n2 = await startDaemon(nodeConfig(server!, 'n2', ports[1], emu), env);
    daemons.push(n2);
    expect(n2.logs.find((e) => e.msg.startsWith('leader: n2'))).toBeUndefined();
    const q = async <T = Record<string, unknown>>(sql: string) => (await db!.query(sql)).rows as T[];

    // every line to both nodes, as a sender configured with two log hosts does
    const sendBoth = async (ips: string[]) => {
      for (const [i, ip] of ips.entries()) {
        const line = ack(ip, `52:54:00:00:${ip.split('.')[2].padStart(2, '0')}:${String(i + 1).padStart(2, '0')}`, new Date().toISOString());
        await udpSend(ports[0], line);
        await udpSend(ports[1], line);
      }
    };
    const scansOf = (ip: string) => emu!.state.model.scans.filter((s) => s.target.split(',').includes(ip));

    // round 1: both nodes running; the leader launches
    const round1 = Array.from({ length: 4 }, (_, i) => `10.20.1.${i + 1}`);
    await sendBoth(round1);
    await until(() => round1.every((ip) => scansOf(ip).length > 0), 30_000, 'round 1 launched', 100);
    const inbox1 = await q<{ n: string }>('SELECT count(*) AS n FROM cluster_inbox');
    expect(Number(inbox1[0].n)).toBe(round1.length); // 8 datagrams, 4 rows: the duplicates were dropped on append
    const sightings1 = await q<{ n: string }>('SELECT count(*) AS n FROM sightings');
    expect(Number(sightings1[0].n)).toBe(round1.length);
    expect(n2.logs.filter((e) => /^launched scan/.test(e.msg))).toHaveLength(0); // the follower sent nothing

    // round 2: kill -9 the leader once it has launched part of it
    const round2 = Array.from({ length: 8 }, (_, i) => `10.20.2.${i + 1}`);
    const launchedBefore = n1.logs.filter((e) => /^launched scan/.test(e.msg)).length;
    await sendBoth(round2);
    await n1.waitFor((e) => /^launched scan/.test(e.msg) && n1.logs.filter((x) => /^launched scan/.test(x.msg)).length > launchedBefore, 30_000);
    const killedAt = Date.now();
    await n1.stop('SIGKILL');
    const took = await n2.waitFor((e) => e.msg.startsWith('leader: n2'), 20_000);
    const failoverMs = (took.receivedAtMs as number) - killedAt;
    await until(() => round2.every((ip) => scansOf(ip).length > 0), 60_000, 'round 2 launched by the new leader', 100);
    // let the new leader's polls settle every intent
    await until(async () => (await q("SELECT id FROM intents WHERE state IN ('launching')")).length === 0, 20_000, 'no intent left launching', 200);

    const all = [...round1, ...round2];
    const launches = (d: DaemonProcess) => d.logs.filter((e) => /^launched scan/.test(e.msg)).length;
    const byNode = { n1: launches(n1), n2: launches(n2) };
    expect(byNode.n2).toBeGreaterThan(0);
    const r2 = await settled(all);
    console.log(`cluster e2e, kill -9: failover ${failoverMs} ms after kill -9 (lease ttl 3 s, poll 0.25 s); launches n1 ${byNode.n1}, n2 ${byNode.n2}, vendor scans ${emu.state.model.scans.length} for ${all.length} hosts; duplicate launches ${r2.duplicates}; orphan scans ${r2.orphans}; intents ${r2.intents}`);

    // round 3: the killed node comes back as a follower; the leader is stopped cleanly (SIGTERM) mid-run
    // and hands the lease over: the returning node launches the rest
    const n1b = await startDaemon(nodeConfig(server!, 'n1', ports[0], emu), env);
    daemons.push(n1b);
    const round3 = Array.from({ length: 6 }, (_, i) => `10.20.3.${i + 1}`);
    const before3 = launches(n2);
    await sendBoth(round3);
    await n2.waitFor(() => launches(n2) > before3, 30_000);
    const termAt = Date.now();
    expect(await n2.stop('SIGTERM')).toBe(0);
    const took3 = await n1b.waitFor((e) => e.msg.startsWith('leader: n1'), 20_000);
    const handoverMs = (took3.receivedAtMs as number) - termAt;
    await until(() => round3.every((ip) => scansOf(ip).length > 0), 60_000, 'round 3 launched by the returning node', 100);
    await until(async () => (await q("SELECT id FROM intents WHERE state IN ('launching')")).length === 0, 20_000, 'no intent left launching', 200);
    const all3 = [...all, ...round3];
    const r3 = await settled(all3);
    expect(launches(n1b)).toBeGreaterThan(0);
    console.log(`cluster e2e, SIGTERM: lease handed over ${handoverMs} ms after SIGTERM; round 3 launches n2 ${launches(n2) - before3}, n1 ${launches(n1b)}; vendor scans ${emu.state.model.scans.length} for ${all3.length} hosts; duplicate launches ${r3.duplicates}; orphan scans ${r3.orphans}; intents ${r3.intents}`);
  }, 240_000);

  it('kill -9 of the leader while its launch call is in flight, repeatedly: the peer takes over, no scan launched twice, none orphaned', async () => {
    // every launch answer takes 1.5 s: time to kill the leader with its intent recorded and the call on the wire
    const slow = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1' }, { name: 'emea-sa-2' }],
      scanTiming: { submitDelaySec: 0, hostSecMin: 1, hostSecMax: 1, loadingSec: 0 },
      faults: { slowShare: 1, slowMs: 1500, actions: ['launch'] },
    });
    const prevEmu = emu;
    emu = slow;
    try {
      for (const d of daemons.splice(0)) await d.stop('SIGKILL');
      // the first test's hosts and scans out of the way (same server, same schema)
      await reset();
      const env = { TEST_QUALYS_PASSWORD: slow.password };
      const sched = 'pollIntervalS: 0.2, applianceRefreshS: 0.5, verifyDelayS: 0.5, reconcileGraceS: 4';
      const ports = [await freePort(), await freePort()];
      const nodes = [await startDaemon(nodeConfig(server!, 'k1', ports[0], slow, sched), env)];
      daemons.push(nodes[0]);
      await nodes[0].waitFor((e) => e.msg.startsWith('leader: k1'), 20_000);
      nodes.push(await startDaemon(nodeConfig(server!, 'k2', ports[1], slow, sched), env));
      daemons.push(nodes[1]);
      let leader = 0;
      const rounds = 5;
      const ips = Array.from({ length: rounds }, (_, r) => `10.20.4.${r + 1}`);
      const failovers: number[] = [];
      let midLaunch = 0;
      for (const [r, ip] of ips.entries()) {
        const line = ack(ip, `52:54:00:00:04:${String(r + 1).padStart(2, '0')}`, new Date().toISOString());
        await udpSend(ports[0], line);
        await udpSend(ports[1], line);
        const launching = await until(async () => (await db!.query(
          "SELECT i.id FROM intents i JOIN intent_targets t ON t.intent_id = i.id WHERE t.ip = $1 AND i.state = 'launching'", [ip])).rows[0], 10_000, 'intent recorded', 50).catch(() => undefined);
        if (launching) midLaunch++;
        const killedAt = Date.now();
        await nodes[leader].stop('SIGKILL');
        const next = 1 - leader;
        const name = next === 0 ? 'k1' : 'k2';
        const took = await nodes[next].waitFor((e) => e.msg.startsWith(`leader: ${name}`) && (e.receivedAtMs as number) >= killedAt, 20_000);
        failovers.push((took.receivedAtMs as number) - killedAt);
        // the killed node comes back, as a follower
        nodes[leader] = await startDaemon(nodeConfig(server!, leader === 0 ? 'k1' : 'k2', ports[leader], slow, sched), env);
        daemons.push(nodes[leader]);
        leader = next;
      }
      await until(() => ips.every((ip) => slow.state.model.scans.some((s) => s.target.split(',').includes(ip))), 60_000, 'every host launched', 100);
      await until(async () => (await db!.query("SELECT id FROM intents WHERE state = 'launching'")).rows.length === 0, 30_000, 'no intent left launching', 200);
      const res = await settled(ips);
      expect(midLaunch).toBeGreaterThanOrEqual(rounds - 1);
      console.log(`cluster e2e, kill -9 mid-launch x${rounds}: ${midLaunch} kills with the launch call in flight; failover ${failovers.join('/')} ms; vendor scans ${slow.state.model.scans.length} for ${ips.length} hosts; duplicate launches ${res.duplicates}; orphan scans ${res.orphans}; intents ${res.intents}`);
    } finally {
      emu = prevEmu;
      await slow.close();
    }
  }, 240_000);

  it('a tailed file in cluster mode: its checkpoint (keyed by node) commits with the inbox rows, so kill -9 mid-file loses and repeats nothing', async () => {
    for (const d of daemons.splice(0)) await d.stop('SIGKILL');
    await reset();
    const dir = mkdtempSync(join(tmpdir(), 'onsight-cluster-file-'));
    const file = join(dir, 'dhcpd.log');
    writeFileSync(file, '');
    const cfg = `
state:
  postgres: "postgres://${server!.user}@/${server!.database}?host=${server!.socketDir}&port=${server!.port}"
cluster: { name: lab, node: f1, leaseTtlS: 3, pollS: 0.25 }
timezone: UTC
inputs:
  - { type: file, path: ${file}, format: isc-dhcpd, pollMs: 20 }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
scanner: { type: dry-run }
http: { enabled: false }
`;
    const line = (i: number) => `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.77.${i >> 8}.${i & 255} to 52:54:00:77:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0\n`;
    let written = 0;
    const kills = 4;
    const atKill: string[] = []; // lines in the inbox / lines written, at each kill
    // the file grows while the node runs (40 lines every 200 ms), so each kill lands between batches
    let writing = true;
    const writer = (async () => {
      while (writing) {
        let chunk = '';
        for (let j = 0; j < 40; j++) chunk += line(written++);
        appendFileSync(file, chunk);
        await sleep(200);
      }
    })();
    for (let k = 0; k < kills; k++) {
      const d = await startDaemon(cfg);
      daemons.push(d);
      await sleep(300 + ((k * 137) % 400));
      await d.stop('SIGKILL');
      atKill.push(`${Number((await db!.query('SELECT count(*) AS n FROM cluster_inbox')).rows[0].n)}/${written}`);
    }
    writing = false;
    await writer;
    const last = await startDaemon(cfg);
    daemons.push(last);
    const count = async () => Number((await db!.query('SELECT count(*) AS n, count(DISTINCT ip) AS d FROM sightings')).rows[0].n);
    const t0 = Date.now();
    await until(async () => (await count()) >= written, 90_000, 'every line applied', 100).catch(() => undefined); // the counts below say what is missing
    const drainS = (Date.now() - t0) / 1000;
    await sleep(500); // a repeat, if any, would land now
    const r = (await db!.query('SELECT count(*) AS n, count(DISTINCT ip) AS d FROM sightings')).rows[0] as { n: string; d: string };
    const inbox = Number((await db!.query('SELECT count(*) AS n FROM cluster_inbox')).rows[0].n);
    expect({ sightings: Number(r.n), distinct: Number(r.d), inbox, atKill }).toEqual({ sightings: written, distinct: written, inbox: written, atKill });
    const cps = (await db!.query('SELECT path, "offset" FROM checkpoints')).rows as { path: string; offset: string }[];
    expect(cps.map((c) => c.path)).toEqual([`f1:${file}`]);
    expect(Number(cps[0].offset)).toBe(statSync(file).size);
    console.log(`cluster e2e, file: ${written} lines over ${kills} kill -9 restarts (inbox rows/lines written at each kill: ${atKill.join(', ')}): ${r.n} sightings (${r.d} distinct), checkpoint ${cps[0].path} at the end of the file; the last run drained the backlog in ${drainS.toFixed(1)} s`);
  }, 120_000);

  /** The previous test's hosts, scans and inbox out of the way (same server; nothing to clear when it is the first). */
  async function reset(): Promise<void> {
    const r = await db!.query("SELECT to_regclass('sightings') IS NOT NULL AND to_regclass('cluster_inbox') IS NOT NULL AS ok");
    if (r.rows[0].ok) await db!.query('TRUNCATE intents, intent_targets, queue, decisions, sightings, bindings, identities, checkpoints, cluster_inbox CASCADE');
  }

  /** No address scanned twice, no vendor scan without its intent, every host in the inventory once. */
  async function settled(all: string[]): Promise<{ duplicates: number; orphans: number; intents: string }> {
    const q = async <T = Record<string, unknown>>(sql: string) => (await db!.query(sql)).rows as T[];
    const scansOf = (ip: string) => emu!.state.model.scans.filter((s) => s.target.split(',').includes(ip));
    const duplicates = all.filter((ip) => scansOf(ip).length > 1);
    expect(duplicates).toEqual([]);
    const intents = await q<{ id: string; state: string; scan_ref: string | null }>('SELECT id, state, scan_ref FROM intents');
    // an orphan: a scan at the vendor whose intent is not in the shared state (or names another scan)
    const orphans = emu!.state.model.scans.filter((s) => !intents.some((i) => s.title.includes(i.id) && i.scan_ref === s.ref));
    expect(orphans.map((s) => s.title)).toEqual([]);
    for (const s of emu!.state.model.scans) expect(s.title).toMatch(/^lab onsight-/);
    const open = await q<{ ip: string }>('SELECT ip FROM bindings WHERE end_at IS NULL');
    expect(open.map((b) => b.ip).sort()).toEqual([...all].sort());
    const sightings = await q<{ n: string }>('SELECT count(*) AS n FROM sightings');
    expect(Number(sightings[0].n)).toBe(all.length);
    return { duplicates: duplicates.length, orphans: orphans.length, intents: `${intents.length} (${[...new Set(intents.map((i) => i.state))].join('/')})` };
  }
});
