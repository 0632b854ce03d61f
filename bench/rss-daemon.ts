/**
 * Memory with N identities through the whole daemon (issue 18: 1M under 300 MiB): N distinct
 * DHCPACKs over TCP into a real daemon (framing, decoding, SQLite inventory, scheduler decisions),
 * then the daemon restarted on that state file, so its start-up full sweep re-evaluates all N, then
 * the status page and metrics built, then RSS (after a GC) and the peak RSS of the process.
 * Runs in its own process (forked by bench/run.ts, or directly): the figures are the daemon's alone.
 *
 * Run: `npm run build && node --expose-gc --max-old-space-size=1024 dist/bench/rss-daemon.js [N] [--prof-status=FILE]`
 * (the node options of systemd/onsight.service; `npm run bench` reads them from the unit).
 *
 * 2026-12-02, 2 cores shared with other runs:
 * - before (load 8-15): 1M peak 338 MiB, the highest in the status phase (ingest 303, sweep 310;
 *   V8 heap used ~200 MiB there, native ~105 MiB); status built in 171 s, metrics 39 s. Earlier
 *   still, before the coverage timeline read bindings and decisions a page at a time, 200k alone
 *   peaked at 647-668 MiB.
 * - the coverage reading only the log's scans, the missed reasons only the decisions about the
 *   devices that left, today's coverage cached for 50x its cost (load 10-12): 1M peak 335 MiB, status
 *   142 s, metrics 0.7 s. The peak is garbage: V8 lets the heap grow 4x past what is live (~50 MiB).
 * - with --max-old-space-size=1024 (growth factor ~1.6), two runs side by side at load 10: 1M peak
 *   219 and 216 MiB (ingest 193/190, sweep 196/192, status 218/214); with the 7 days of coverage in
 *   one pass, status 104 and 106 s; 200k alone at load 6.5: peak 204 MiB, status 7.7 s (18.5 s before
 *   at load 6-8); with a device's flush visiting only its days, 1M alone at load 7-9: peak 210 MiB,
 *   status 36 s, metrics 0.4 s. The flag's cost on the ingest bench (300k lines, utc-silent, 3 alternating rounds
 *   at load 6-7): 7.81 vs 8.13 CPU-s per million by median (+4%), ranges overlapping.
 * - with the decode thread on (ingest.decodeThread auto, the default on 2+ cores since 2026-12-02),
 *   1M at load 6-8 beside two helpers: peak 266 MiB (ingest 262, sweep 226, status 229; the
 *   thread's heap counts outside the main heap: 144 MiB outside at the ingest peak against ~105),
 *   ingest 193 s, status 46 s, metrics 0.7 s. With fastIPv4 (src/util/ip.ts), quiet (load 1.5-2.2):
 *   1M peak 272 MiB (ingest 272, sweep 241, status 242), ingest 36 s, sweep 13.6 s, status 9.8 s,
 *   metrics 0.17 s; 200k status 4.04/3.19 -> 2.08/2.05 s against the build before it, alternating.
 * - with the TCP server in its receive thread (receiveThread, the default since session 6), quiet
 *   (helpers stopped): 1M peak 327 MiB (ingest 320: a third isolate, batches of 5,000 lines); with
 *   batches of 1,000, 5,000 lines held at most and an 8 MiB young generation for the receive and
 *   decode threads, 1M peak 272-276 MiB (ingest 264-270, sweep 240-244, status 252-253), ingest
 *   44-48 s (server on the main thread, same settings: peak 265, ingest 57 s), status 11-12 s,
 *   metrics 0.16 s.
 */
import { spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Daemon } from '../src/daemon/daemon.js';
import { validateConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { buildStatus, renderMetrics } from '../src/http/index.js';
import { daemonView } from '../src/daemon/view.js';

export interface RssDaemonResult {
  n: number;
  identities: number;
  ingestSeconds: number;
  /** RSS after ingesting N, after a GC */
  rssAfterIngestMiB: number;
  /** after the restart: the full sweep, one status page and one metrics page, after a GC */
  rssAfterRestartMiB: number;
  /** after the restart's full sweep, after a GC */
  rssAfterSweepMiB: number;
  /** the process's peak RSS over the whole run */
  peakRssMiB: number;
  /** the highest RSS sampled in each phase (ingest, restart+sweep, status, metrics) */
  phasePeakMiB: Record<string, number>;
  /** at each phase's peak: heap used/committed, external (ArrayBuffers, strings held by native code) and the rest of the RSS (native: SQLite, malloc, code) */
  phasePeakParts: typeof phasePeakParts;
  /** present devices the status page counted */
  present: number;
  heapUsedMiB: number;
  /** the JS heap V8 keeps committed (part of the RSS even when unused) */
  heapTotalMiB: number;
  sweepSeconds: number;
  statusSeconds: number;
  metricsSeconds: number;
}

const MiB = 2 ** 20;
/** `--prof-status=FILE`: a CPU profile of the status build (open it in Chrome's DevTools) */
const profileTo = process.argv.find((a) => a.startsWith('--prof-status='))?.slice('--prof-status='.length);

async function startProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
      console.error(`status build profile: ${file}`);
    },
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** an RFC 3164 stamp of now (UTC, the config's zone): the leases are present when the passes run */
function stamp(): string {
  const d = new Date();
  const mon = d.toLocaleString('en', { month: 'short', timeZone: 'UTC' });
  return `${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${d.toISOString().slice(11, 19)}`;
}

function dhcp(k: number, at: string): string {
  const h = (x: number) => x.toString(16).padStart(2, '0');
  return `<30>${at} gw dhcpd[7]: DHCPACK on 10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255} to 52:54:01:${h((k >> 16) & 255)}:${h((k >> 8) & 255)}:${h(k & 255)} (host-${k}) via eth0\n`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const SENDER = `
const net = require('node:net');
const fs = require('node:fs');
const [file, port] = process.argv.slice(1);
const s = net.connect(Number(port), '127.0.0.1', () => fs.createReadStream(file).pipe(s));
s.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
`;

function config(dir: string, port: number) {
  return validateConfig({
    state: join(dir, 'state.db'),
    timezone: 'UTC',
    inputs: [{ type: 'syslog', listen: `tcp://127.0.0.1:${port}`, format: 'auto' }],
    // out of scope: this measures the inventory and the passes over it, not 1M queued scans
    policy: { scope: ['192.0.2.0/24'] },
    regions: [{ name: 'r', cidrs: ['10.0.0.0/8'], appliances: ['a'] }],
    scanner: { type: 'dry-run' },
    http: { enabled: false },
  }).config;
}

const gcRss = () => {
  global.gc?.();
  return process.memoryUsage().rss / MiB;
};

/** the highest RSS sampled (every 50 ms) per phase: where the peak happens */
const phasePeak: Record<string, number> = {};
/** at each phase's peak sample: the JS heap (used/committed) and memory outside it, MiB */
const phasePeakParts: Record<string, { heapUsed: number; heapTotal: number; external: number; outside: number }> = {};
let phase = 'setup';
function sampleRss(): NodeJS.Timeout {
  return setInterval(() => {
    const m = process.memoryUsage();
    const r = m.rss / MiB;
    if (r > (phasePeak[phase] ?? 0)) {
      phasePeak[phase] = r;
      const mib = (x: number) => Math.round(x / MiB);
      phasePeakParts[phase] = { heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external), outside: mib(m.rss - m.heapTotal - m.external) };
    }
  }, 50).unref();
}

export async function runRssDaemon(n: number): Promise<RssDaemonResult> {
  const sampler = sampleRss();
  const dir = mkdtempSync(join(tmpdir(), 'onsight-rss-daemon-'));
  try {
    const file = join(dir, 'leases.log');
    writeFileSync(file, '');
    const at = stamp();
    for (let i = 0; i < n; i += 10_000) {
      let chunk = '';
      for (let k = i; k < Math.min(n, i + 10_000); k++) chunk += dhcp(k, at);
      appendFileSync(file, chunk);
    }
    let port = await freePort();
    let daemon = new Daemon({ config: config(dir, port), log: silentLogger() });
    await daemon.start();
    phase = 'ingest';
    const t0 = performance.now();
    const sender = spawn(process.execPath, ['-e', SENDER, file, String(port)], { stdio: 'ignore' });
    while (daemon.ingest.counters.lines < n) await sleep(50);
    const ingestSeconds = (performance.now() - t0) / 1000;
    sender.kill();
    const rssAfterIngestMiB = gcRss();
    await daemon.stop();
    // restart on the same state: start() runs the full sweep over everyone present
    port = await freePort();
    daemon = new Daemon({ config: config(dir, port), log: silentLogger() });
    phase = 'restart+sweep';
    const t1 = performance.now();
    await daemon.start();
    const sweepSeconds = (performance.now() - t1) / 1000;
    const rssAfterSweepMiB = gcRss();
    const view = daemonView(daemon);
    phase = 'status';
    const prof = profileTo ? await startProfile() : undefined;
    const t2 = performance.now();
    const status = await buildStatus(view);
    const statusSeconds = (performance.now() - t2) / 1000;
    if (prof && profileTo) await prof.stop(profileTo);
    phase = 'metrics';
    const t3 = performance.now();
    await renderMetrics(view);
    const metricsSeconds = (performance.now() - t3) / 1000;
    const rssAfterRestartMiB = gcRss();
    const heapUsedMiB = process.memoryUsage().heapUsed / MiB;
    const heapTotalMiB = process.memoryUsage().heapTotal / MiB;
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    await daemon.stop();
    clearInterval(sampler);
    return { n, heapTotalMiB, phasePeakParts, phasePeakMiB: Object.fromEntries(Object.entries(phasePeak).map(([k, v]) => [k, Math.round(v)])), rssAfterSweepMiB, identities: status.totals.identities, present: status.totals.present, heapUsedMiB, ingestSeconds, rssAfterIngestMiB, rssAfterRestartMiB, peakRssMiB, sweepSeconds, statusSeconds, metricsSeconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  runRssDaemon(n).then((r) => {
    if (process.send) process.send(r);
    else console.log(JSON.stringify(r));
    process.exit(0);
  }, (err: Error) => {
    console.error(err);
    process.exit(1);
  });
}
