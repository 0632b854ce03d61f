/**
 * The whole pipeline's apply rate into PostgreSQL (issue 17: at least 2,000 sightings/s): one real
 * `onsight run` leader on a throwaway PostgreSQL (test/helpers/postgres.ts, Unix socket) with the
 * Qualys emulator, and N sightings appended to the cluster inbox as another node would (InboxWriter,
 * batches of 500, much faster than the drain). The leader applies them (InboxReader → commitBatch)
 * and hands every batch to the scheduler (consider: decide, enqueue, log the decisions) exactly as
 * in production; the figure is N over the time from the first append until the backlog is empty.
 * The stream: new DHCP leases (10% in the scanned scope, so due and queued; the rest out of scope,
 * so logged not-due), then as many renewals of the same devices. The load average is printed with
 * the figures: the machine is shared. The daemon logs to a file (as to journald: a reader that keeps
 * up), not to a pipe this process would have to parse: a full pipe blocks its synchronous log writes.
 * `node dist/bench/pipeline-drain.js [N]` (default 10,000).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Sighting } from '../src/sighting.js';
import { InboxWriter, inboxBacklog, type InboxEntry } from '../src/cluster/inbox.js';
import { startQualysEmulator } from '../src/emulator/qualys/index.js';
import { pgUnavailable, startPostgres } from '../test/helpers/postgres.js';
import { CLI } from '../test/helpers/paths.js';
import { sleep, until } from '../test/helpers/wait.js';

const N = Number(process.argv[2] ?? 10_000);
const BATCH = 500;
const out = (s: string) => process.stdout.write(`${s}\n`);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
/** 10.20/16 is scanned; 10.70-10.79 are not */
const ipOf = (k: number) => (k % 10 === 0 ? `10.20.${(k >> 8) & 255}.${k & 255}` : `10.${70 + ((k >> 16) & 7)}.${(k >> 8) & 255}.${k & 255}`);

function lease(k: number, at: number, kind: 'lease' | 'renew'): InboxEntry {
  const h = k.toString(16).padStart(6, '0');
  const sighting: Sighting = {
    kind, ip: ipOf(k), mac: `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`, hostname: `host-${k}`,
    at: new Date(at).toISOString(), durationS: 86400, format: 'isc-dhcpd', source: 'bench',
  };
  return { sighting, origin: 'bench:drain' };
}

/** CPU seconds (user + system) of a process, from /proc */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0; // gone meanwhile
  }
}

/** CPU seconds of the PostgreSQL server: the postmaster and its children (the backends) */
function serverCpu(postmaster: number): number {
  let sum = cpuSeconds(postmaster);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) sum += cpuSeconds(Number(d));
    } catch { /* gone */ }
  }
  return sum;
}

interface Phase { rate: number; secs: number; daemonCpuMs: number; serverCpuMs: number }

let daemonPid = 0, serverPid = 0;

async function drain(db: pg.Pool, writer: InboxWriter, make: (k: number) => InboxEntry): Promise<Phase> {
  const c0 = [cpuSeconds(daemonPid), serverCpu(serverPid)];
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const batch: InboxEntry[] = [];
    for (let k = i; k < Math.min(N, i + BATCH); k++) batch.push(make(k));
    await writer.append(batch);
  }
  await until(async () => (await inboxBacklog(db)) === 0, 600_000, 'the inbox drained', 20);
  const secs = (performance.now() - t0) / 1000;
  const c1 = [cpuSeconds(daemonPid), serverCpu(serverPid)];
  // per 1,000 sightings: the server's share includes the appends (a follower's work)
  return { rate: Math.round(N / secs), secs, daemonCpuMs: Math.round(((c1[0] - c0[0]) * 1e6) / N), serverCpuMs: Math.round(((c1[1] - c0[1]) * 1e6) / N) };
}

async function main(): Promise<void> {
  const why = pgUnavailable();
  if (why) {
    out(`pipeline drain bench skipped: ${why}`);
    return;
  }
  const server = startPostgres();
  const emu = await startQualysEmulator({ appliances: [{ name: 'emea-sa-1' }], limits: { default: { limit: 100_000, windowSec: 3600, concurrency: 4 } } });
  const db = new pg.Pool({ ...server.connection, max: 2 });
  db.on('error', () => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'onsight-drain-'));
  writeFileSync(join(dir, 'onsight.yaml'), `
state:
  postgres: "postgres://${server.user}@/${server.database}?host=${server.socketDir}&port=${server.port}"
cluster: { name: bench, node: b1 }
timezone: UTC
inputs: []
policy: { rescanAfter: 30d, scope: ["10.20.0.0/16"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [{ name: emea-sa-1, maxScans: 1 }], maxConcurrentScans: 1 }
scanner: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: TEST_QUALYS_PASSWORD, optionProfile: "Initial Options", maxTargetsPerScan: 500 }
http: { enabled: false }
`);
  const logFile = join(dir, 'onsight.log');
  const logFd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'onsight.yaml')], {
    cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1', TEST_QUALYS_PASSWORD: emu.password }, stdio: ['ignore', logFd, logFd],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await until(() => readFileSync(logFile, 'utf8').includes('"leader: b1'), 45_000, 'the daemon to lead', 100);
    await sleep(500);
    daemonPid = child.pid!;
    serverPid = server.pid();
    const writer = new InboxWriter(db, 'b2');
    const at = Date.now();
    out(`pipeline drain bench: one onsight leader on PostgreSQL ${server.dataDir}, ${N} sightings per phase appended to the inbox in batches of ${BATCH}; load ${load()}`);
    const fresh = await drain(db, writer, (k) => lease(k, at, 'lease'));
    const cpu = (p: Phase) => `CPU per 1,000: onsight ${p.daemonCpuMs} ms, PostgreSQL ${p.serverCpuMs} ms`;
    out(`  new leases (10% due, 90% out of scope): ${fresh.rate} sightings/s through inbox → inventory → scheduler (${fresh.secs.toFixed(1)} s; ${cpu(fresh)}); load ${load()}`);
    const renew = await drain(db, writer, (k) => lease(k, at + 60_000, 'renew'));
    out(`  renewals of the same devices: ${renew.rate} sightings/s (${renew.secs.toFixed(1)} s; ${cpu(renew)}); load ${load()}`);
    const [{ n: decisions }] = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM decisions')).rows;
    const [{ n: queued }] = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM queue')).rows;
    out(`  decisions logged ${decisions}, queue entries ${queued}`);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await db.end();
    await emu.close();
    server.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
