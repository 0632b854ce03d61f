/**
 * Cluster failures through two real daemons (issue 17, "Tests and figures"): a real PostgreSQL
 * (test/helpers/postgres.ts), two `onsight run` child processes sharing it, the Qualys emulator on
 * a real socket, real files tailed and real TCP/UDP syslog. Each scenario returns its figures and
 * one summary line; test/cluster-chaos.test.ts runs a few rounds with assertions, bench/cluster-chaos.ts
 * the full rounds. The scenarios:
 *
 * - killMidLaunch: kill -9 the leader while its launch call is on the wire (the emulator holds the
 *   answer), rounds alternating nodes; the peer takes over on the fast path and reconciles.
 * - pauseLeader: SIGSTOP the leader with its launch on the wire, past its lease, then SIGCONT; the
 *   emulator answers later than the new leader's reconcile grace, so that scan is a late duplicate
 *   which the new leader must find and cancel within one poll.
 * - terminateLease: pg_terminate_backend on the leader's lease connection mid-launch.
 * - restartPostgres: the server stopped and started while a launch is on the wire and files grow.
 * - ingestUnderChaos: lines appended to a tailed file on each node while TCP syslog flows to both
 *   (each line to both nodes, as a sender listing two log hosts does: exact duplicates) and to each
 *   node alone, with kill -9 of the leader meanwhile; then the same accepted lines through one
 *   SQLite daemon, and the two inventories compared.
 */
import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { startQualysEmulator, type QualysEmulator, type RequestRecord } from '../../src/emulator/qualys/index.js';
import { readState } from './crash.js';
import { freePort, startDaemon, type DaemonProcess, type LogEntry } from './daemon.js';
import type { PgServer } from './postgres.js';
import { udpSend } from './net.js';
import { sleep, until } from './wait.js';
import { inboxBacklog } from '../../src/cluster/inbox.js';

export interface ChaosTimings {
  /** lease time to live */
  ttlS: number;
  /** how often a follower tries to take the lease */
  pollS: number;
  /** the scheduler's scan-status poll (the late-duplicate detector runs on it) */
  pollIntervalS: number;
  /** how long an unconfirmed launch waits before it is abandoned and requeued */
  reconcileGraceS: number;
  /** how long the emulator holds every launch answer (the window in which a kill lands mid-launch) */
  launchDelayMs: number;
}

export const CI_TIMINGS: ChaosTimings = { ttlS: 3, pollS: 0.25, pollIntervalS: 0.5, reconcileGraceS: 2, launchDelayMs: 800 };
export const BENCH_TIMINGS: ChaosTimings = { ttlS: 3, pollS: 0.25, pollIntervalS: 0.5, reconcileGraceS: 3, launchDelayMs: 1500 };

const NAMES = ['c1', 'c2'] as const;
/** in scope, scanned (launch scenarios) */
const SCAN_NET = '10.20';
/** out of scope: the ingest scenario's addresses, so 40k leases do not become 40k scans */
const INGEST_NETS = ['10.70', '10.71', '10.80', '10.81', '10.82'];

const hex2 = (n: number) => (n & 255).toString(16).padStart(2, '0');
const macOf = (net: number, i: number) => `52:54:${hex2(net)}:${hex2(i >> 16)}:${hex2(i >> 8)}:${hex2(i)}`;
const ipOf = (prefix: string, i: number) => `${prefix}.${(i >> 8) & 255}.${i & 255}`;
const ack5424 = (ip: string, mac: string, at: Date) => `<30>1 ${at.toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** the BSD header an ISC dhcpd log file carries (UTC; second resolution) */
const bsd = (d: Date) => `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${d.toISOString().slice(11, 19)}`;
const fileAck = (ip: string, mac: string, at: Date) => `<30>${bsd(at)} gw dhcpd[7]: DHCPACK on ${ip} to ${mac} via eth0`;

export const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** A syslog-over-TCP sender to one node that reconnects (as rsyslog does) and remembers which connection carried each line. */
class TcpSyslogStream {
  private sock?: Socket;
  private connecting = false;
  /** connection number each written line went out on (index = line number in `lines`) */
  readonly wentOn: number[] = [];
  readonly lines: string[] = [];
  private queue: number[] = [];
  conn = 0;
  closed = false;

  constructor(readonly port: number) {}

  send(line: string): void {
    this.queue.push(this.lines.push(line) - 1);
    this.flush();
  }

  private flush(): void {
    if (this.closed) return;
    if (!this.sock) return this.reconnect();
    while (this.queue.length) {
      const i = this.queue.shift()!;
      this.wentOn[i] = this.conn;
      this.sock.write(`${this.lines[i]}\n`);
    }
  }

  private reconnect(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const s = connect(this.port, '127.0.0.1');
    s.setNoDelay(true);
    const retry = () => {
      s.destroy();
      if (this.sock === s) this.sock = undefined;
      this.connecting = false;
      if (!this.closed) setTimeout(() => this.reconnect(), 100);
    };
    s.once('connect', () => {
      this.conn++;
      this.sock = s;
      this.connecting = false;
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      s.once('close', () => {
        if (this.sock === s) this.sock = undefined;
        if (this.queue.length && !this.closed) this.reconnect();
      });
      this.flush();
    });
    s.once('error', retry);
  }

  /** waits until nothing is queued, then closes */
  async close(): Promise<void> {
    await until(() => this.queue.length === 0, 60_000, 'the TCP sender to drain', 20).catch(() => undefined);
    this.closed = true;
    await new Promise<void>((r) => (this.sock ? this.sock.end(r) : r()));
  }
}

export interface Audit {
  /** addresses with more than one scan that was not canceled */
  duplicates: string[];
  /** scans at the vendor (not canceled) that no intent in the shared state names */
  orphans: string[];
  /** hosts with no live scan */
  missing: string[];
  intents: number;
}

export class ChaosCluster {
  readonly nodes: DaemonProcess[] = [];
  readonly ports: number[] = [];
  readonly files: string[] = [];
  readonly db: pg.Pool;
  /** first time this process saw each vendor scan (ms) */
  readonly scanSeen = new Map<string, number>();
  private seenTimer?: NodeJS.Timeout;
  private env: NodeJS.ProcessEnv;
  private hostSeq = 0;
  private closed = false;

  private constructor(readonly server: PgServer, readonly emu: QualysEmulator, readonly t: ChaosTimings) {
    this.db = new pg.Pool({ ...server.connection, max: 3 });
    this.db.on('error', () => undefined); // idle clients die when the server restarts; the next query reconnects
    this.env = { TEST_QUALYS_PASSWORD: emu.password };
  }

  /** Two nodes on `server` (its onsight tables emptied first), each tailing its own (empty) file. */
  static async start(server: PgServer, t: ChaosTimings): Promise<ChaosCluster> {
    const emu = await startQualysEmulator({
      appliances: [{ name: 'emea-sa-1' }, { name: 'emea-sa-2' }],
      scanTiming: { submitDelaySec: 0, hostSecMin: 0.5, hostSecMax: 0.5, loadingSec: 0 },
      faults: { slowShare: 1, slowMs: t.launchDelayMs, actions: ['launch'] },
      // the vendor's allowance is not under test here: with fencing, the leader lists scans by launch time every
      // poll (0.5 s in these scenarios) to find late launches, which spends the default 300 calls/h in minutes
      limits: { default: { limit: 100_000, windowSec: 3600, concurrency: 4 } },
    });
    const c = new ChaosCluster(server, emu, t);
    await c.reset();
    const dir = mkdtempSync(join(tmpdir(), 'onsight-chaos-'));
    for (const [i, n] of NAMES.entries()) {
      c.ports.push(await freePort());
      c.files.push(join(dir, `${n}-dhcpd.log`));
      writeFileSync(c.files[i], '');
    }
    c.seenTimer = setInterval(() => {
      for (const s of emu.state.model.scans) if (!c.scanSeen.has(s.ref)) c.scanSeen.set(s.ref, Date.now());
    }, 10);
    await c.startNode(0);
    await c.nodes[0].waitFor((e) => e.msg.startsWith(`leader: ${NAMES[0]}`), 30_000);
    await c.startNode(1);
    return c;
  }

  /** node i's config; `quiet` uses the shipped defaults for the follower's polling (lease poll 1 s, file poll 250 ms, lease ttl 15 s: a heartbeat every 5 s) */
  config(i: number, quiet = false): string {
    const s = this.server, t = this.t;
    const pollS = quiet ? 1 : t.pollS, filePollMs = quiet ? 250 : 50, ttlS = quiet ? 15 : t.ttlS;
    return `
state:
  postgres: "postgres://${s.user}@/${s.database}?host=${s.socketDir}&port=${s.port}"
  poolSize: 4
cluster: { name: lab, node: ${NAMES[i]}, leaseTtlS: ${ttlS}, pollS: ${pollS} }
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${this.ports[i]}", format: auto }
  - { type: syslog, listen: "tcp://127.0.0.1:${this.ports[i]}", format: auto }
  - { type: file, path: ${this.files[i]}, format: isc-dhcpd, pollMs: ${filePollMs} }
policy: { rescanAfter: 30d, scope: ["${SCAN_NET}.0.0/16"] }
regions:
  - { name: emea, cidrs: ["${SCAN_NET}.0.0/16"], appliances: [{ name: emea-sa-1, maxScans: 2 }, { name: emea-sa-2, maxScans: 2 }], maxConcurrentScans: 4 }
scanner: { type: qualys, url: "${this.emu.url}", username: ${this.emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options", maxTargetsPerScan: 1 }
scheduler: { pollIntervalS: ${t.pollIntervalS}, applianceRefreshS: 5, verifyDelayS: 0.5, reconcileGraceS: ${t.reconcileGraceS} }
http: { enabled: false }
`;
  }

  async startNode(i: number, quiet = false): Promise<DaemonProcess> {
    // a scenario cut off by its test's timeout must not start daemons after close()
    if (this.closed) throw new Error('the chaos cluster is closed');
    const d = await startDaemon(this.config(i, quiet), this.env);
    if (this.closed) await d.stop('SIGKILL');
    this.nodes[i] = d;
    return d;
  }

  name(i: number): string {
    return NAMES[i];
  }

  async q<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.db.query(sql, params)).rows as T[];
  }

  /** The node holding an unexpired lease (by the database), if any. */
  async leader(): Promise<number | undefined> {
    const r = await this.q<{ holder: string }>("SELECT holder FROM cluster_lease WHERE name = 'scheduler' AND expires_at > now()");
    const i = NAMES.indexOf(r[0]?.holder as (typeof NAMES)[number]);
    return i >= 0 ? i : undefined;
  }

  /** When node i (any, if undefined) logged that it took the lease at or after `since`. */
  async tookLeaseAfter(since: number, i?: number, timeoutMs = 30_000): Promise<{ node: number; at: number }> {
    const pred = (n: number) => (e: LogEntry) => e.msg.startsWith(`leader: ${NAMES[n]}`) && (e.receivedAtMs as number) >= since;
    const which = i === undefined ? [0, 1] : [i];
    const e = await Promise.any(which.map((n) => this.nodes[n].waitFor(pred(n), timeoutMs).then((x) => ({ node: n, at: x.receivedAtMs as number }))));
    return e;
  }

  /** A new in-scope host (an address never used before in this cluster) with a DHCPACK to both nodes over UDP. */
  async newHost(): Promise<string> {
    const n = ++this.hostSeq;
    const ip = ipOf(SCAN_NET, n);
    const line = ack5424(ip, macOf(0x20, n), new Date());
    await udpSend(this.ports[0], line);
    await udpSend(this.ports[1], line);
    return ip;
  }

  scansOf(ip: string) {
    return this.emu.state.model.scans.filter((s) => s.target.split(',').includes(ip));
  }

  /** Resolves once the emulator received the launch call for `ip` (the call is on the wire and held there). */
  async launchArrived(ip: string, timeoutMs = 30_000): Promise<RequestRecord> {
    try {
      return await until(() => this.emu.state.requests.find((r) => r.action === 'launch' && (r.params.ip ?? '').split(',').includes(ip)), timeoutMs, `the launch call for ${ip}`, 10);
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${this.tails()}`);
    }
  }

  /** The last log lines of both nodes (for a failure message). */
  tails(n = 12): string {
    return [0, 1].map((i) => `${NAMES[i]}: ${this.nodes[i]?.logs.slice(-n).map((e) => e.msg).join(' | ')}`).join(' ;; ');
  }

  /** Every intent for these hosts settled (none left launching) and every host with a live scan. */
  async settle(ips: string[], timeoutMs = 60_000): Promise<void> {
    await until(async () => ips.every((ip) => this.scansOf(ip).some((s) => s.state !== 'Canceled')), timeoutMs, 'every host launched', 50);
    await until(async () => (await this.q(
      "SELECT 1 FROM intents i JOIN intent_targets t ON t.intent_id = i.id WHERE i.state = 'launching' AND t.ip = ANY($1)", [ips])).length === 0, timeoutMs, 'no intent left launching', 100);
  }

  /** Duplicates, orphans and hosts without a scan, from the vendor's side against the shared state. */
  async audit(ips: string[]): Promise<Audit> {
    const intents = await this.q<{ id: string; state: string; scan_ref: string | null }>('SELECT id, state, scan_ref FROM intents');
    const live = this.emu.state.model.scans.filter((s) => s.state !== 'Canceled');
    const duplicates = ips.filter((ip) => live.filter((s) => s.target.split(',').includes(ip)).length > 1);
    const orphans = live.filter((s) => !intents.some((i) => s.title.includes(i.id) && i.scan_ref === s.ref)).map((s) => `${s.ref} ${s.title} ${s.target}`);
    const missing = ips.filter((ip) => !live.some((s) => s.target.split(',').includes(ip)));
    return { duplicates, orphans, missing, intents: intents.length };
  }

  /** Counted as takeover work: reconcile's scan lists (by launch time), session logins and cancels. */
  private static takeoverCall(r: RequestRecord): boolean {
    return r.api === 'session' || r.action === 'cancel' || (r.action === 'list' && r.api === 'scan' && r.params.launched_after_datetime !== undefined);
  }

  /**
   * Such calls per second with no failover (a leader may list by launch time on every poll to find
   * late launches): measured over `seconds` of quiet, and subtracted from a failover's count.
   */
  async steadyCallRate(seconds: number): Promise<number> {
    const from = Date.now();
    await sleep(seconds * 1000);
    const to = Date.now();
    return this.emu.state.requests.filter((r) => r.at >= from && r.at <= to && ChaosCluster.takeoverCall(r)).length / ((to - from) / 1000);
  }

  /** Takeover calls in [from, to] beyond the steady rate, and every vendor call in the window by kind. */
  takeoverCalls(from: number, to: number, steadyPerS = 0): { spent: number; raw: number; all: string } {
    const inWindow = this.emu.state.requests.filter((r) => r.at >= from && r.at <= to);
    const raw = inWindow.filter(ChaosCluster.takeoverCall).length;
    const by = new Map<string, number>();
    for (const r of inWindow) by.set(`${r.api} ${r.action ?? ''}`.trim(), (by.get(`${r.api} ${r.action ?? ''}`.trim()) ?? 0) + 1);
    return { spent: Math.max(0, Math.round(raw - (steadyPerS * (to - from)) / 1000)), raw, all: [...by].map(([k, v]) => `${k}:${v}`).join(',') };
  }

  /** Empties onsight's tables (no daemon may be running). */
  async reset(): Promise<void> {
    const r = await this.q<{ ok: boolean }>("SELECT to_regclass('sightings') IS NOT NULL AND to_regclass('cluster_inbox') IS NOT NULL AS ok");
    if (r[0].ok) await this.q('TRUNCATE intents, intent_targets, queue, decisions, sightings, bindings, identities, name_holders, checkpoints, cluster_inbox CASCADE');
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.seenTimer);
    for (const d of this.nodes) if (d) await d.stop('SIGKILL');
    await this.db.end().catch(() => undefined);
    await this.emu.close();
  }
}

const stats = (xs: number[]) => {
  if (!xs.length) return 'n/a';
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]} max ${s[s.length - 1]}`;
};

// ------------------------------------------------------------------------------ kill -9 mid-launch

export interface KillFigures {
  rounds: number;
  midLaunch: number;
  failoverMs: number[];
  callsPerFailover: number[];
  callsDetail: string[];
  audit: Audit;
  summary: string;
}

/** kill -9 of the leader while its launch call is held at the emulator, `rounds` times (the nodes alternate). */
export async function killMidLaunch(c: ChaosCluster, rounds: number): Promise<KillFigures> {
  const ips: string[] = [];
  const failoverMs: number[] = [], callsPerFailover: number[] = [], callsDetail: string[] = [];
  let midLaunch = 0;
  const steady = await c.steadyCallRate(3);
  for (let r = 0; r < rounds; r++) {
    const leader = (await until(() => c.leader().then((l) => l !== undefined && { l }), 30_000, 'a leader', 50)).l;
    const ip = await c.newHost();
    ips.push(ip);
    await c.launchArrived(ip);
    if (c.emu.state.model.scans.every((s) => !s.target.split(',').includes(ip))) midLaunch++; // the answer is still held
    const killedAt = Date.now();
    await c.nodes[leader].stop('SIGKILL');
    const took = await c.tookLeaseAfter(killedAt, 1 - leader);
    failoverMs.push(took.at - killedAt);
    await c.startNode(leader); // back, as a follower
    await c.settle([ip]);
    const spent = c.takeoverCalls(killedAt, Date.now(), steady);
    callsPerFailover.push(spent.spent);
    callsDetail.push(`${spent.raw} in ${((Date.now() - killedAt) / 1000).toFixed(1)} s [${spent.all}]`);
  }
  const audit = await c.audit(ips);
  const summary = `cluster chaos, kill -9 mid-launch x${rounds}: ${midLaunch} kills with the launch call in flight; failover ${stats(failoverMs)} ms (${failoverMs.join('/')}; ttl ${c.t.ttlS} s); takeover API calls per failover ${stats(callsPerFailover)} (beyond the steady ${steady.toFixed(2)}/s of such calls without failover); vendor scans ${c.emu.state.model.scans.length} for ${ips.length} hosts; duplicate launches ${audit.duplicates.length}; orphan scans ${audit.orphans.length}; hosts without a scan ${audit.missing.length}; load ${load()}`;
  return { rounds, midLaunch, failoverMs, callsPerFailover, callsDetail, audit, summary };
}

// ------------------------------------------------------------------------------ SIGSTOP past the lease

export interface PauseFigures {
  rounds: number;
  failoverMs: number[];
  /** scans launched for an intent the new leader had already given up (the paused leader's call answered late) */
  lateLaunches: number;
  /** of those, canceled by the cluster */
  lateCanceled: number;
  /** from a late scan's appearance at the vendor to its cancel call */
  cancelMs: number[];
  audit: Audit;
  summary: string;
}

/**
 * SIGSTOP of the leader while its launch is held at the emulator longer than ttl + reconcile grace,
 * SIGCONT once its lease has passed: the new leader abandons and relaunches; the paused leader's
 * scan then appears late, a duplicate, which must be canceled within one scan-status poll.
 */
export async function pauseLeader(c: ChaosCluster, rounds: number): Promise<PauseFigures> {
  const faults = c.emu.state.config.faults as { slowMs: number };
  const timing = c.emu.state.config.scanTiming as { hostSecMin: number; hostSecMax: number };
  const normal = { slowMs: faults.slowMs, host: [timing.hostSecMin, timing.hostSecMax] };
  const failoverMs: number[] = [], cancelMs: number[] = [];
  const ips: string[] = [];
  let lateLaunches = 0, lateCanceled = 0;
  // scans run long enough that a late one is still running when the new leader lists it
  [timing.hostSecMin, timing.hostSecMax] = [8, 8];
  try {
    for (let r = 0; r < rounds; r++) {
      const leader = (await until(() => c.leader().then((l) => l !== undefined && { l }), 30_000, 'a leader', 50)).l;
      // the paused leader's launch answer alone is held past ttl + grace + 2 s: the new leader's relaunch is answered as usual
      faults.slowMs = (c.t.ttlS + c.t.reconcileGraceS + 2) * 1000;
      const ip = await c.newHost();
      ips.push(ip);
      await c.launchArrived(ip);
      faults.slowMs = normal.slowMs;
      const pausedAt = Date.now();
      c.nodes[leader].child.kill('SIGSTOP');
      const took = await c.tookLeaseAfter(pausedAt, 1 - leader, (c.t.ttlS + 20) * 1000);
      failoverMs.push(took.at - pausedAt);
      await sleep(Math.max(0, pausedAt + (c.t.ttlS + 1) * 1000 - Date.now()));
      c.nodes[leader].child.kill('SIGCONT');
      // the first scan (the paused leader's) and the relaunch both arrive; then the late one must be canceled
      await until(() => c.scansOf(ip).length >= 2, (c.t.ttlS + c.t.reconcileGraceS) * 3000 + 30_000, `the late scan and the relaunch for ${ip}`, 50)
        .catch(() => undefined); // counted below
      await c.settle([ip]);
      const pollMs = c.t.pollIntervalS * 1000;
      await sleep(pollMs * 2 + 1000); // time for the detector's poll
      // the scan kept is the newest intent's (the new leader's relaunch); any other scan for the host came late
      const newest = (await c.q<{ id: string }>(
        'SELECT i.id FROM intents i JOIN intent_targets t ON t.intent_id = i.id WHERE t.ip = $1 ORDER BY i.created_at DESC LIMIT 1', [ip]))[0];
      const late = c.scansOf(ip).filter((s) => !newest || !s.title.includes(newest.id));
      lateLaunches += late.length;
      if (process.env.CHAOS_DEBUG) {
        for (const n of [0, 1]) for (const e of c.nodes[n].logs) if ((e.receivedAtMs as number) >= pausedAt && /launch|reconcil|late|leader|stepped|refused|cancel/i.test(e.msg)) console.log(`+${(e.receivedAtMs as number) - pausedAt} ms ${c.name(n)}: ${e.msg}`);
        for (const s of c.scansOf(ip)) console.log(`scan ${s.ref} "${s.title}" ${s.state} seen +${(c.scanSeen.get(s.ref) ?? 0) - pausedAt} ms`);
        for (const q of c.emu.state.requests) if (q.at >= pausedAt - 10_000 && q.api === 'scan') console.log(`+${q.at - pausedAt} ms request ${q.action} ${JSON.stringify(q.params).slice(0, 160)}`);
      }
      for (const s of late) {
        const cancel = c.emu.state.requests.find((q) => q.action === 'cancel' && q.params.scan_ref === s.ref);
        if (cancel && s.state === 'Canceled') {
          lateCanceled++;
          cancelMs.push(cancel.at - (c.scanSeen.get(s.ref) ?? cancel.at));
        }
      }
    }
  } finally {
    faults.slowMs = normal.slowMs;
    [timing.hostSecMin, timing.hostSecMax] = normal.host;
  }
  // the next scenario starts with the appliances free
  await until(() => ips.every((ip) => c.scansOf(ip).every((s) => ['Finished', 'Canceled', 'Error'].includes(s.state))), 30_000, 'the long scans to end', 100).catch(() => undefined);
  const audit = await c.audit(ips);
  const summary = `cluster chaos, SIGSTOP past the lease x${rounds}: failover ${stats(failoverMs)} ms (ttl ${c.t.ttlS} s, bound ttl + 2 s); late launches ${lateLaunches}, canceled ${lateCanceled} (scan seen → cancel call ${cancelMs.join('/') || 'n/a'} ms; poll ${c.t.pollIntervalS} s); duplicate launches ${audit.duplicates.length}; orphan scans ${audit.orphans.length}; hosts without a scan ${audit.missing.length}; load ${load()}`;
  return { rounds, failoverMs, lateLaunches, lateCanceled, cancelMs, audit, summary };
}

// ------------------------------------------------------------------------------ lease connection terminated

export interface TerminateFigures {
  rounds: number;
  failoverMs: number[];
  callsPerFailover: number[];
  audit: Audit;
  summary: string;
}

/** pg_terminate_backend on the leader's lease connection while its launch is on the wire; the leader stays up. */
export async function terminateLease(c: ChaosCluster, rounds: number): Promise<TerminateFigures> {
  const failoverMs: number[] = [], callsPerFailover: number[] = [];
  const ips: string[] = [];
  const steady = await c.steadyCallRate(2);
  for (let r = 0; r < rounds; r++) {
    const leader = (await until(() => c.leader().then((l) => l !== undefined && { l }), 30_000, 'a leader', 50)).l;
    const ip = await c.newHost();
    ips.push(ip);
    await c.launchArrived(ip);
    const at = Date.now();
    const t = await c.q<{ ok: boolean }>("SELECT pg_terminate_backend(holder_pid) AS ok FROM cluster_lease WHERE name = 'scheduler'");
    if (!t[0]?.ok) throw new Error('the lease connection was not terminated');
    const took = await c.tookLeaseAfter(at, 1 - leader);
    failoverMs.push(took.at - at);
    await c.settle([ip]);
    callsPerFailover.push(c.takeoverCalls(at, Date.now(), steady).spent);
  }
  const audit = await c.audit(ips);
  const summary = `cluster chaos, lease connection terminated x${rounds}: failover ${stats(failoverMs)} ms (${failoverMs.join('/')}); takeover API calls ${callsPerFailover.join('/')}; duplicate launches ${audit.duplicates.length}; orphan scans ${audit.orphans.length}; hosts without a scan ${audit.missing.length}; load ${load()}`;
  return { rounds, failoverMs, callsPerFailover, audit, summary };
}

// ------------------------------------------------------------------------------ PostgreSQL restarted

export interface RestartFigures {
  rounds: number;
  /** from the server accepting connections again to a node taking the lease */
  leaderAfterMs: number[];
  fileLines: number;
  fileSightings: number;
  audit: Audit;
  summary: string;
}

/** PostgreSQL stopped (fast) and started again while a launch is on the wire and both tailed files grow. */
export async function restartPostgres(c: ChaosCluster, rounds: number, linesPerRound = 200): Promise<RestartFigures> {
  const leaderAfterMs: number[] = [];
  const ips: string[] = [];
  const feed = new FileFeed(c, 'restart');
  for (let r = 0; r < rounds; r++) {
    const ip = await c.newHost();
    ips.push(ip);
    await c.launchArrived(ip);
    feed.append(linesPerRound / 2);
    c.server.stop('fast');
    feed.append(linesPerRound / 2); // written while the server is down
    await sleep(500);
    c.server.start();
    const up = Date.now();
    const took = await c.tookLeaseAfter(up - 1000, undefined, 60_000);
    leaderAfterMs.push(took.at - up);
    await c.settle([ip], 90_000);
  }
  const got = await feed.landed(60_000);
  const audit = await c.audit(ips);
  const summary = `cluster chaos, PostgreSQL restarted x${rounds}: a leader ${stats(leaderAfterMs)} ms after the server was back; file lines ${feed.total} written, ${got} applied (lost ${feed.total - got}); duplicate launches ${audit.duplicates.length}; orphan scans ${audit.orphans.length}; hosts without a scan ${audit.missing.length}; load ${load()}`;
  return { rounds, leaderAfterMs, fileLines: feed.total, fileSightings: got, audit, summary };
}

/** Unique DHCPACK lines appended to both nodes' tailed files (a range of its own per feed). */
class FileFeed {
  private static seq = 0;
  readonly prefix: string;
  total = 0;
  private n = [0, 0];

  constructor(private readonly c: ChaosCluster, readonly label: string) {
    this.prefix = `10.9${FileFeed.seq++}`;
  }

  append(count: number): void {
    for (const i of [0, 1]) {
      let chunk = '';
      for (let k = 0; k < count / 2; k++) {
        const n = i * 30_000 + this.n[i]++;
        chunk += `${fileAck(ipOf(this.prefix, n), macOf(0x90 + i, n), new Date())}\n`;
        this.total++;
      }
      appendFileSync(this.c.files[i], chunk);
    }
  }

  /** sightings of this feed's addresses once the count stops moving (or reaches the total) */
  async landed(timeoutMs: number): Promise<number> {
    const count = async () => Number((await this.c.q<{ n: string }>('SELECT count(*) AS n FROM sightings WHERE ip LIKE $1', [`${this.prefix}.%`]))[0].n);
    await until(async () => (await count()) >= this.total, timeoutMs, `${this.label}: every file line applied`, 200).catch(() => undefined);
    await sleep(500);
    return count();
  }
}

// ------------------------------------------------------------------------------ ingest under chaos

export interface IngestPlan {
  /** lines appended to each node's tailed file */
  fileLinesPerNode: number;
  /** TCP lines sent to both nodes (each one twice: an exact duplicate) */
  tcpBoth: number;
  /** TCP lines sent to one node only, per node */
  tcpSingle: number;
  /** kill -9 of the current leader, spread over the feed */
  kills: number;
  /** how long the feed lasts */
  feedS: number;
}

export interface IngestFigures {
  plan: IngestPlan;
  fileLost: number;
  fileRepeated: number;
  tcpBothLost: number;
  /** single-homed TCP lines lost, per kill (lines on the killed node's connection that never landed) */
  tcpLostPerKill: number[];
  /** single-homed TCP lines written into the dead connection after each kill (before the sender noticed) */
  tcpLostAfterKill: number[];
  applySecs: number;
  /** inbox rows the applier's cursor passed without applying them */
  skipped: number;
  /** inbox rows applied per second, from the end of the feed to the last row */
  applyRate: number;
  inventory: InventoryDiff;
  summary: string;
}

export interface InventoryDiff {
  identities: number;
  bindings: number;
  sightings: [cluster: number, single: number];
  differences: string[];
}

/**
 * The lines each node's file gets: mostly first leases, every 10th a renewal of an earlier lease in
 * the same file, every 25th an earlier address handed to a new device (so order within a file matters).
 */
function fileLines(node: number, count: number, base: number): string[] {
  const prefix = INGEST_NETS[node];
  const out: string[] = [];
  const renewed = new Set<string>();
  let fresh = 0;
  for (let k = 0; k < count; k++) {
    const sec = Math.floor(k / 20);
    const at = new Date(base + sec * 1000);
    // renewals and reassignments name a lease at least 2 s older, and the same lease at most once a second:
    // the same line twice in one second from one file is an exact duplicate, dropped by design
    const j = fresh > 50 ? (k * 7919) % (fresh - 45) : -1;
    if (k % 10 === 9 && j >= 0 && !renewed.has(`${j}@${sec}`)) {
      renewed.add(`${j}@${sec}`);
      out.push(fileAck(ipOf(prefix, j), macOf(0x70 + node, j), at));
    } else if (k % 25 === 24 && j >= 0) {
      out.push(fileAck(ipOf(prefix, j), macOf(0x72 + node, k), at));
    } else {
      out.push(fileAck(ipOf(prefix, fresh), macOf(0x70 + node, fresh), at));
      fresh++;
    }
  }
  return out;
}

/** Appends 20k-style file lines on both nodes and TCP syslog to both while the leader is killed; then compares with one SQLite node. */
export async function ingestUnderChaos(c: ChaosCluster, plan: IngestPlan): Promise<IngestFigures> {
  const base = Date.now() - 1800_000; // half an hour ago: leases (1 h) still open at the end in both runs
  const files = [fileLines(0, plan.fileLinesPerNode, base), fileLines(1, plan.fileLinesPerNode, base)];
  const both = [new TcpSyslogStream(c.ports[0]), new TcpSyslogStream(c.ports[1])];
  const single = [new TcpSyslogStream(c.ports[0]), new TcpSyslogStream(c.ports[1])];
  const bothLines = Array.from({ length: plan.tcpBoth }, (_, k) => ack5424(ipOf(INGEST_NETS[2], k), macOf(0x80, k), new Date(base + k)));
  const singleLines = [0, 1].map((i) => Array.from({ length: plan.tcpSingle }, (_, k) => ack5424(ipOf(INGEST_NETS[3 + i], k), macOf(0x81 + i, k), new Date(base + k))));
  const steps = Math.max(1, Math.round(plan.feedS * 10)); // a step every 100 ms
  const killAt = new Set(Array.from({ length: plan.kills }, (_, k) => Math.floor(((k + 1) * steps) / (plan.kills + 1))));
  const kills: { node: number; conn: number; sent: number }[] = [];
  const slice = <T>(xs: T[], s: number) => xs.slice(Math.floor((s * xs.length) / steps), Math.floor(((s + 1) * xs.length) / steps));
  const skippedBefore = await unapplied(c);
  const t0 = Date.now();
  for (let s = 0; s < steps; s++) {
    for (const i of [0, 1]) {
      const chunk = slice(files[i], s);
      if (chunk.length) appendFileSync(c.files[i], `${chunk.join('\n')}\n`);
      for (const l of slice(singleLines[i], s)) single[i].send(l);
    }
    for (const l of slice(bothLines, s)) {
      both[0].send(l);
      both[1].send(l);
    }
    if (killAt.has(s)) {
      const leader = await c.leader();
      if (leader !== undefined) {
        kills.push({ node: leader, conn: single[leader].conn, sent: single[leader].lines.length });
        const at = Date.now();
        await c.nodes[leader].stop('SIGKILL');
        await c.tookLeaseAfter(at, 1 - leader);
        await c.startNode(leader);
      }
    }
    await sleep(Math.max(0, t0 + (s + 1) * 100 - Date.now()));
  }
  for (const s of [...both, ...single]) await s.close();
  const fileTotal = files[0].length + files[1].length;
  const expectedMin = fileTotal + plan.tcpBoth;
  const inIngest = `(${INGEST_NETS.map((p) => `ip LIKE '${p}.%'`).join(' OR ')})`;
  const inboxIngest = inIngest.replaceAll('ip LIKE', "sighting->>'ip' LIKE");
  // every accepted line is an inbox row (kept for the duplicate window, 10 min by default): applied once the cursor passed them all
  const accepted = async () => Number((await c.q<{ n: string }>(`SELECT count(*) AS n FROM cluster_inbox WHERE ${inboxIngest}`))[0].n);
  // settled: the cursor past every row and nothing appended for 2 s; given up after 30 s without progress
  let last = '', stillSince = Date.now();
  const appliedSoFar = async () => Number((await c.q<{ n: string }>("SELECT applied AS n FROM cluster_inbox_cursor WHERE name = 'applier'"))[0]?.n ?? 0);
  const feedEnd = { at: Date.now(), applied: await appliedSoFar() };
  let drained: { at: number; applied: number } | undefined;
  await until(async () => {
    const n = await accepted();
    const backlog = await inboxBacklog(c.db);
    if (backlog > 0) drained = undefined;
    else drained ??= { at: Date.now(), applied: await appliedSoFar() };
    if (process.env.CHAOS_DEBUG) console.log(`ingest: ${n} of at least ${expectedMin} lines in the inbox, backlog ${backlog}; load ${load()}`);
    if (`${n}/${backlog}` !== last) [last, stillSince] = [`${n}/${backlog}`, Date.now()];
    return (n >= expectedMin && backlog === 0 && Date.now() - stillSince > 2000) || Date.now() - stillSince > 30_000;
  }, 900_000, 'the inbox applied', 1000).catch(() => undefined);
  const applySecs = ((drained?.at ?? Date.now()) - t0) / 1000;
  // every inbox row is applied exactly once: rows behind the cursor that the applier never counted were skipped
  const skipped = await unapplied(c) - skippedBefore;
  const applyRate = drained && drained.at > feedEnd.at ? Math.round(((drained.applied - feedEnd.applied) * 1000) / (drained.at - feedEnd.at)) : NaN;

  // what landed, by line (a renewal adds no sighting row, so lines are counted in the inbox)
  const landed = new Map<string, number>();
  for (const r of await c.q<{ ip: string; mac: string; at: string }>(`SELECT sighting->>'ip' AS ip, sighting->>'mac' AS mac, sighting->>'at' AS at FROM cluster_inbox WHERE ${inboxIngest}`)) {
    const k = `${r.ip} ${r.mac} ${Date.parse(r.at)}`;
    landed.set(k, (landed.get(k) ?? 0) + 1);
  }
  const keyOf = (line: string) => {
    const m = / on (\S+) to (\S+) /.exec(line)!;
    const at = line.startsWith('<30>1 ') ? Date.parse(line.split(' ')[1]) : bsdTime(line, base);
    return `${m[1]} ${m[2]} ${at}`;
  };
  // a file line may legitimately repeat an earlier one (a renewal in the same second): count by key
  const want = new Map<string, number>();
  for (const l of [...files[0], ...files[1]]) want.set(keyOf(l), (want.get(keyOf(l)) ?? 0) + 1);
  let fileLost = 0, fileRepeated = 0;
  for (const [k, n] of want) {
    const got = landed.get(k) ?? 0;
    if (got < n) fileLost += n - got;
    if (got > n) fileRepeated += got - n;
  }
  const tcpBothLost = bothLines.filter((l) => !landed.has(keyOf(l))).length;
  // lost with the killed node: lines its connection carried before the kill, and those written into the dead connection after it
  const lostOn = (k: (typeof kills)[number], after: boolean) => single[k.node].lines.filter((l, idx) => single[k.node].wentOn[idx] === k.conn && idx >= k.sent === after && !landed.has(keyOf(l))).length;
  const tcpLostPerKill = kills.map((k) => lostOn(k, false));
  const tcpLostAfterKill = kills.map((k) => lostOn(k, true));
  const acceptedSingle = [0, 1].map((i) => singleLines[i].filter((l) => landed.has(keyOf(l))));

  const inventory = await compareWithSqlite(c, files, [...bothLines, ...acceptedSingle[0], ...acceptedSingle[1]], inIngest);
  const summary = `cluster chaos, ingest: ${plan.fileLinesPerNode} lines appended to the tailed file on each node, ${plan.tcpBoth} TCP lines to both nodes (exact duplicates) and ${plan.tcpSingle} to each node alone, over ${plan.feedS} s with ${kills.length} kill -9 of the leader; everything applied ${applySecs.toFixed(1)} s after the feed began (the backlog at ${applyRate} rows/s after the feed); file lines lost ${fileLost}, repeated ${fileRepeated}; inbox rows passed by the cursor unapplied ${skipped}; dual-homed TCP lines lost ${tcpBothLost}; single-homed TCP lines lost per kill ${tcpLostPerKill.join('/') || 'n/a'} sent before it (+${tcpLostAfterKill.join('/') || 'n/a'} written into the dead connection after it, before the sender saw it close); inventory vs one SQLite node over the same lines: ${inventory.identities} identities, ${inventory.bindings} bindings, sightings ${inventory.sightings.join(' vs ')}, ${inventory.differences.length} differences; load ${load()}`;
  return { plan, fileLost, fileRepeated, skipped, tcpBothLost, tcpLostPerKill, tcpLostAfterKill, applySecs, applyRate, inventory, summary };
}

/** Inbox rows behind the applier's cursor minus the rows it counted as applied (0 unless a row was skipped; valid before the first prune, 10 min). */
async function unapplied(c: ChaosCluster): Promise<number> {
  const r = await c.q<{ behind: string; applied: string | null }>(
    `SELECT (SELECT count(*) FROM cluster_inbox i, cluster_inbox_cursor k WHERE k.name = 'applier' AND (i.tx, i.id) <= (k.tx, k.id)) AS behind,
            (SELECT applied FROM cluster_inbox_cursor WHERE name = 'applier') AS applied`);
  return Number(r[0].behind) - Number(r[0].applied ?? 0);
}

/** ms of a BSD-stamped line (UTC, the year of `near`) */
function bsdTime(line: string, near: number): number {
  const m = /^<\d+>(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d)/.exec(line)!;
  const y = new Date(near).getUTCFullYear();
  return Date.UTC(y, MONTHS.indexOf(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
}

/**
 * "Equal" inventories: the same identities (key, MAC, hostname, first and last seen) and the same
 * bindings (identity key, address, start, last seen, expiry, end and its reason, renewals, format),
 * both restricted to the ingest addresses; differences listed one a line (at most 20).
 */
async function compareWithSqlite(c: ChaosCluster, files: string[][], tcpLines: string[], inIngest: string): Promise<InventoryDiff> {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-chaos-single-'));
  const port = await freePort();
  const paths = files.map((_, i) => join(dir, `f${i}.log`));
  for (const [i, p] of paths.entries()) writeFileSync(p, `${files[i].join('\n')}\n`);
  const single = await startDaemon(`
state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "tcp://127.0.0.1:${port}", format: auto }
${paths.map((p) => `  - { type: file, path: ${p}, format: isc-dhcpd, pollMs: 50, startAt: beginning }`).join('\n')}
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
scanner: { type: dry-run }
http: { enabled: false }
`);
  const stream = new TcpSyslogStream(port);
  for (const l of tcpLines) stream.send(l);
  await stream.close();
  const stateFile = join(single.dir, 'state.db');
  const read = <T>(sql: string) => readState<T>(stateFile, sql);
  const clusterSightings = Number((await c.q<{ n: string }>(`SELECT count(*) AS n FROM sightings WHERE ${inIngest}`))[0].n);
  const singleCount = () => Number(read<{ n: number }>(`SELECT count(*) AS n FROM sightings WHERE ${inIngest}`)[0].n);
  // both files read to their end, and as many sighting rows as the cluster (or no change for 10 s)
  const sizes = paths.map((p) => statSync(p).size);
  const atEnd = () => read<{ offset: number }>('SELECT "offset" FROM checkpoints').filter((r) => sizes.includes(Number(r.offset))).length === paths.length;
  let last = -1, stillSince = Date.now();
  await until(() => {
    const n = singleCount();
    if (process.env.CHAOS_DEBUG) console.log(`single node: ${n} sightings (the cluster has ${clusterSightings})`);
    if (n !== last) [last, stillSince] = [n, Date.now()];
    return (atEnd() && n >= clusterSightings && Date.now() - stillSince > 1000) || Date.now() - stillSince > 10_000;
  }, 120_000, 'the single node applied every line', 250).catch(() => undefined);
  await single.stop('SIGTERM');
  const idSql = (where: string) => `SELECT key, mac, hostname, first_seen, last_seen FROM identities WHERE id IN (SELECT identity_id FROM bindings WHERE ${where})`;
  const bSql = (where: string) => `SELECT i.key, b.ip, b.start_at, b.last_seen, b.expires_at, b.end_at, b.end_reason, b.renewals, b.format
    FROM bindings b JOIN identities i ON i.id = b.identity_id WHERE ${where.replaceAll('ip LIKE', 'b.ip LIKE')}`;
  const norm = (rows: Record<string, unknown>[], key: (r: Record<string, unknown>) => string) =>
    new Map(rows.map((r) => [key(r), JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])))]));
  const idKey = (r: Record<string, unknown>) => String(r.key);
  const bKey = (r: Record<string, unknown>) => `${r.key} ${r.ip} ${r.start_at}`;
  const ids = [norm(await c.q(idSql(inIngest)), idKey), norm(read(idSql(inIngest)), idKey)];
  const bs = [norm(await c.q(bSql(inIngest)), bKey), norm(read(bSql(inIngest)), bKey)];
  const differences: string[] = [];
  for (const [what, [a, b]] of [['identity', ids], ['binding', bs]] as const) {
    for (const [k, v] of a) if (b.get(k) !== v) differences.push(`${what} ${k}: cluster ${v}, single ${b.get(k) ?? 'absent'}`);
    for (const [k, v] of b) if (!a.has(k)) differences.push(`${what} ${k}: cluster absent, single ${v}`);
  }
  return { identities: ids[0].size, bindings: bs[0].size, sightings: [clusterSightings, singleCount()], differences: differences.slice(0, 20).concat(differences.length > 20 ? [`… ${differences.length - 20} more`] : []) };
}

// ------------------------------------------------------------------------------ follower idle CPU

export interface IdleFigures {
  followerPctOfCore: number;
  leaderPctOfCore: number;
  seconds: number;
  summary: string;
}

/**
 * CPU share of one core used by the follower and the leader over `seconds` with no traffic. The
 * follower is restarted first with the shipped polling defaults (lease poll 1 s, lease ttl 15 s, file poll 250 ms):
 * the scenarios' fast polls are there to time failovers, not what a deployment runs.
 */
export async function idleCpu(c: ChaosCluster, seconds: number, settleS = 1): Promise<IdleFigures> {
  const leader = (await until(() => c.leader().then((l) => l !== undefined && { l }), 30_000, 'a leader', 50)).l;
  const follower = 1 - leader;
  await c.nodes[follower].stop('SIGTERM');
  await c.startNode(follower, true);
  await sleep(settleS * 1000); // past start-up (JIT and start-up garbage settle over the first ~10 s)
  const pids = [c.nodes[follower].child.pid!, c.nodes[leader].child.pid!];
  const before = pids.map(cpuSeconds);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const secs = (performance.now() - t0) / 1000;
  const [f, l] = pids.map((p, k) => (100 * (cpuSeconds(p) - before[k])) / secs);
  const summary = `cluster chaos, idle: follower ${f.toFixed(2)}% of a core (lease poll 1 s, ttl 15 s, file poll 250 ms), leader ${l.toFixed(2)}% (lease poll ${c.t.pollS} s, scan poll ${c.t.pollIntervalS} s) over ${secs.toFixed(1)} s, ${settleS} s after the follower's start; load ${load()}`;
  return { followerPctOfCore: f, leaderPctOfCore: l, seconds: secs, summary };
}
