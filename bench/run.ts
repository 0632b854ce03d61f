/**
 * `npm run bench`: the numbers the issue asks for, each with its baseline measured in the same run.
 *
 * 1. Scheduling simulator, short versions: patch-night (vs the analytic lower bound), mobile-fleet,
 *    tight-api, appliance-outage — onsight against immediate / twice-daily / batch-15min /
 *    reservation / oracle.
 * 2. RSS with 100k identities: 100k distinct sightings through Inventory.commitBatch into a
 *    temp-file SQLite (in a child process, so the figure is the inventory's alone); and 1M
 *    identities through the whole daemon (bench/rss-daemon.ts: TCP, restart with a full sweep,
 *    status, metrics; 100k with --quick; about 10 minutes at 1M on a busy 2-core machine).
 * 3. Sighting → launch-call latency p50/p99 through the live daemon: syslog over loopback UDP,
 *    the real Qualys client against the Qualys emulator, launch calls timed at the client.
 * 4. Ingestion figures from bench/ingest-source.ts (runSourceBench), when present; end to end over
 *    TCP (bench/ingest-e2e.ts: UTC + silent logger and Europe/Berlin + logger at info, each with and
 *    without the decode thread, against rsyslog, mmnormalize and PatternDB, medians of 3 rounds,
 *    CPU-s per million); UDP at 100k and 200k msg/s through the daemon, native receiver against
 *    node dgram (bench/udp-e2e.ts, C sender); and over HTTP (bench/ingest-http.ts, HEC /raw), side
 *    by side; the logger's cost per line (bench/logger.ts, against pino's synchronous destination).
 * 5. A dnsmasq lease file of 50,000 leases rewritten for each changed lease (bench/lease-snapshot.ts):
 *    the main thread's time per change, beside one parse of the whole file.
 * 6. RFC 5424 structured data in 1-16 MiB lines (bench/syslog-sd.ts): ms per MiB of the header as
 *    every line pays it, against the former reader's, measured in the same run.
 *
 * Whole run: a few minutes on 2 cores. `node dist/bench/run.js --quick` shortens everything.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dgram from 'node:dgram';
import { simulate } from '../src/sim/cli.js';
import { table } from '../src/sim/report.js';
import { BUILTIN } from '../src/sim/scenario.js';
import { openDatabase } from '../src/store/db.js';
import { SqliteInventory } from '../src/inventory/inventory.js';
import type { Sighting } from '../src/sighting.js';

const quick = process.argv.includes('--quick');
const out = (s = '') => process.stdout.write(`${s}\n`);
const ratio = (a?: number, b?: number) => (a !== undefined && b ? (a / b).toFixed(2) : 'n/a');

// ------------------------------------------------------------------------------ 2. RSS (child)

async function rssChild(): Promise<void> {
  const n = Number(process.argv[3] ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'onsight-rss-'));
  const db = openDatabase(join(dir, 'state.db'));
  const inv = new SqliteInventory(db, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 });
  global.gc?.();
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const at = Date.now();
  for (let i = 0; i < n; i += 5000) {
    const batch: Sighting[] = [];
    for (let k = i; k < Math.min(n, i + 5000); k++) {
      const h = k.toString(16).padStart(6, '0');
      batch.push({
        kind: 'lease', ip: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`, mac: `52:54:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`,
        hostname: `host-${k}`, at: new Date(at + k).toISOString(), durationS: 86400, format: 'isc-dhcpd', source: 'bench',
      });
    }
    await inv.commitBatch(batch);
  }
  const secs = (performance.now() - t0) / 1000;
  global.gc?.();
  const after = process.memoryUsage().rss;
  const counts = await inv.counts(Date.now());
  db.close();
  rmSync(dir, { recursive: true, force: true });
  process.send!({ n, identities: counts.identities, rssBeforeMB: before / 2 ** 20, rssAfterMB: after / 2 ** 20, secs });
}

async function rssBench(): Promise<void> {
  const n = 100_000;
  const r = await new Promise<{ n: number; identities: number; rssBeforeMB: number; rssAfterMB: number; secs: number }>((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ['--rss-child', String(n)], { execArgv: ['--expose-gc'] });
    c.once('message', (m) => resolve(m as never));
    c.once('error', reject);
    c.once('exit', (code) => code && reject(new Error(`rss child exited ${code}`)));
  });
  out(`RSS with ${r.identities.toLocaleString('en')} identities (temp-file SQLite, ${n.toLocaleString('en')} sightings via commitBatch in ${r.secs.toFixed(1)} s = ${Math.round(n / r.secs).toLocaleString('en')}/s):`);
  out(`  process RSS ${r.rssAfterMB.toFixed(0)} MiB (empty inventory ${r.rssBeforeMB.toFixed(0)} MiB; +${(r.rssAfterMB - r.rssBeforeMB).toFixed(0)} MiB)`);
}

/** NODE_OPTIONS in systemd/onsight.service (`Environment=NODE_OPTIONS=...`), as node arguments. */
function unitNodeOptions(): string[] {
  const unit = readFileSync(fileURLToPath(new URL('../../systemd/onsight.service', import.meta.url)), 'utf8');
  return unit.match(/^Environment=NODE_OPTIONS=(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
}

/** N identities through the whole daemon (bench/rss-daemon.ts), in its own process. */
async function rssDaemonBench(n: number): Promise<void> {
  const r = await new Promise<import('./rss-daemon.js').RssDaemonResult>((resolve, reject) => {
    // the node options the systemd unit runs the daemon with: the figure is the service's
    const c = fork(fileURLToPath(new URL('./rss-daemon.js', import.meta.url)), [String(n)], { execArgv: ['--expose-gc', ...unitNodeOptions()] });
    c.once('message', (m) => resolve(m as never));
    c.once('error', reject);
    c.once('exit', (code) => code && reject(new Error(`rss-daemon exited ${code}`)));
  });
  out(`RSS with ${r.identities.toLocaleString('en')} identities through the whole daemon (${n.toLocaleString('en')} DHCPACKs over TCP in ${r.ingestSeconds.toFixed(0)} s; restarted: full sweep ${r.sweepSeconds.toFixed(1)} s, status ${r.statusSeconds.toFixed(2)} s over ${r.present.toLocaleString('en')} present, metrics ${r.metricsSeconds.toFixed(2)} s):`);
  out(`  RSS after ingest ${r.rssAfterIngestMiB.toFixed(0)} MiB, after restart + sweep + status + metrics ${r.rssAfterRestartMiB.toFixed(0)} MiB, peak ${r.peakRssMiB.toFixed(0)} MiB (target < 300 MiB; peaks by phase ${JSON.stringify(r.phasePeakMiB)}); JS heap ${r.heapUsedMiB.toFixed(0)} MiB`);
}

// ------------------------------------------------------------------------------ 3. daemon latency

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function latencyBench(free: boolean): Promise<void> {
  const { Daemon } = await import('../src/daemon/daemon.js');
  const { validateConfig } = await import('../src/config/load.js');
  const { silentLogger } = await import('../src/log.js');
  const regions = 8;
  const hosts = quick ? 200 : 600;
  const dir = mkdtempSync(join(tmpdir(), 'onsight-lat-'));
  const port = await new Promise<number>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  let emu: { url: string; username: string; password: string; close(): Promise<void> } | undefined;
  let scannerCfg: Record<string, unknown> = { type: 'dry-run', scanDurationS: 1 };
  let via = 'dry-run scanner (Qualys emulator not available)';
  try {
    const m = await import('../src/emulator/qualys/index.js');
    emu = await m.startQualysEmulator({
      appliances: Array.from({ length: regions }, (_, i) => ({ name: `sa-${i}` })),
      speed: 1,
      scanTiming: { submitDelaySec: 0, hostSecMin: 0.05, hostSecMax: 0.1, loadingSec: 0 },
      // a generous API allowance: this measures the pipeline, not the rate limit (tight-api does that)
      limits: { default: { limit: 100_000, windowSec: 3600, concurrency: 10 } },
    } as never);
    process.env.BENCH_QUALYS_PASSWORD = emu.password;
    scannerCfg = { type: 'qualys', url: emu.url, username: emu.username, passwordEnv: 'BENCH_QUALYS_PASSWORD', optionProfile: 'Initial Options', maxTargetsPerScan: 50 };
    via = 'real Qualys client → Qualys emulator on loopback HTTP';
  } catch (err) {
    out(`  (emulator unavailable: ${(err as Error).message}; using the dry-run scanner)`);
  }
  const raw = {
    state: join(dir, 'state.db'), timezone: 'UTC',
    inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto' }],
    policy: { rescanAfter: '30d', scope: ['10.0.0.0/8'], exclude: [] },
    // free: every region and appliance has room for every scan, so nothing waits for a slot
    regions: Array.from({ length: regions }, (_, i) => ({
      name: `r${i}`, cidrs: [`10.${i + 1}.0.0/16`], appliances: [{ name: `sa-${i}`, maxScans: free ? 1000 : 1 }], maxConcurrentScans: free ? 1000 : 1,
    })),
    scanner: scannerCfg,
    scheduler: { pollIntervalS: 0.2, applianceRefreshS: 0.5 },
    http: { enabled: false },
  };
  const { config } = validateConfig(raw);
  const daemon = new Daemon({ config, log: silentLogger() });
  await daemon.start();
  const launchAt = new Map<string, number>();
  const sc = daemon.scanner;
  const orig = sc.launch.bind(sc);
  sc.launch = async (req) => {
    const t = performance.now();
    for (const ip of req.targets) if (!launchAt.has(ip)) launchAt.set(ip, t);
    return orig(req);
  };
  const sentAt = new Map<string, number>();
  const sock = dgram.createSocket('udp4');
  const gap = 10; // ms between leases: 100 leases/s over 8 regions
  for (let i = 0; i < hosts; i++) {
    const r = i % regions;
    const ip = `10.${r + 1}.${(i >> 8) & 255}.${(i & 255) || 1}`;
    const mac = `52:54:00:aa:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const line = `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;
    sentAt.set(ip, performance.now());
    sock.send(line, port, '127.0.0.1');
    await new Promise((res) => setTimeout(res, gap));
  }
  const deadline = Date.now() + 30_000;
  while (launchAt.size < sentAt.size && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
  sock.close();
  await daemon.stop();
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
  const lat = [...sentAt].filter(([ip]) => launchAt.has(ip)).map(([ip, t]) => launchAt.get(ip)! - t);
  out(`Pipeline latency — sighting → launch call through the live daemon (not sighting → scan start: that is the simulator's p50/p99 above; ${via}; ${hosts} DHCPACKs over UDP at ${1000 / gap}/s, ${regions} regions, ${free ? 'free appliances: no scan limit per region' : '1 scan per region at a time'}):`);
  out(`  launched ${lat.length}/${hosts}; p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${pct(lat, 0.99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms${free ? '' : ' (includes waits for a busy region\'s scan to be seen finished)'}`);
}

// ------------------------------------------------------------------------------ 1. simulator

async function simBench(): Promise<void> {
  const scenarios: { name: string; days: number; laptops?: number; perRegion?: number[]; policy?: string; seeds: number }[] = quick
    ? [
      { name: 'patch-night', days: 0.5, perRegion: [300, 300, 300, 300, 300, 300], seeds: 1 },
      { name: 'mobile-fleet', days: 3, laptops: 500, seeds: 1 },
    ]
    : [
      { name: 'patch-night', days: 0.5, seeds: 1 },
      { name: 'patch-night-skewed', days: 0.75, seeds: 1, policy: 'onsight,oracle,batch-15min' },
      { name: 'mobile-fleet', days: 9, laptops: 1500, seeds: 2 },
      { name: 'tight-api', days: 3, laptops: 1500, seeds: 1, policy: 'onsight,immediate,batch-15min,oracle' },
      { name: 'appliance-outage', days: 0.5, seeds: 1, policy: 'onsight,oracle,batch-15min,reservation' },
    ];
  for (const s of scenarios) {
    const sc = structuredClone(BUILTIN[s.name]);
    if (s.laptops && sc.fleet) sc.fleet.laptops = s.laptops;
    if (s.perRegion && sc.servers) sc.servers.perRegion = s.perRegion;
    sc.days = s.days;
    const { writeFileSync } = await import('node:fs');
    const f = join(mkdtempSync(join(tmpdir(), 'onsight-bench-')), `${s.name}.json`);
    const { name: _n, description: _d, ...rest } = sc;
    writeFileSync(f, JSON.stringify({ extends: s.name, name: `${s.name} (bench: ${s.days} d${s.laptops ? `, ${s.laptops} laptops` : ''})`, ...rest }));
    const t0 = performance.now();
    const r = await simulate({ scenario: f, policy: s.policy, seeds: s.seeds });
    const secs = (performance.now() - t0) / 1000;
    out(`\n## ${r.scenario.name} — ${r.summary.seeds.length} seed(s), ${secs.toFixed(1)} s`);
    out(table(r.summary, r.scenario.metrics.windowsDays.map((d) => `${d}d`), !!r.scenario.servers).trimEnd());
    const get = (p: string) => r.summary.policies.find((x) => x.policy === p);
    const o = get('onsight');
    if (!o) continue;
    const baselines = r.summary.policies.filter((p) => !['onsight', 'oracle', 'bound'].includes(p.policy));
    const best = baselines.sort((a, b) => (b.metrics.coverage?.mean ?? 0) - (a.metrics.coverage?.mean ?? 0))[0];
    const cheapest = [...baselines].sort((a, b) => (a.metrics.apiCallsPerDay?.mean ?? 0) - (b.metrics.apiCallsPerDay?.mean ?? 0))[0];
    if (r.scenario.servers) {
      out(`onsight makespan / lower bound = ${ratio(o.metrics.makespanH?.mean, o.metrics.lowerBoundH?.mean)}; finished within 8 h: ${((o.metrics.finishedBy8hShare?.mean ?? 0) * 100).toFixed(1)}%`);
    }
    if (best) {
      out(`coverage (steady-state rolling compliance) onsight / best baseline (${best.policy}) = ${ratio(o.metrics.coverage?.mean, best.metrics.coverage?.mean)}; onsight / relaxation bound = ${ratio(o.metrics.coverage?.mean, get('bound')?.metrics.coverage?.mean)}; onsight / oracle heuristic = ${ratio(o.metrics.coverage?.mean, get('oracle')?.metrics.coverage?.mean)}`);
      if (!r.scenario.servers) out(`sighting → scan start (simulated, includes pickup and queueing): p50 ${o.metrics.latencyP50Min?.mean.toFixed(1)} min, p99 ${o.metrics.latencyP99Min?.mean.toFixed(1)} min (the "pipeline latency" below is sighting → launch call in the live daemon)`);
      out(`API calls/day onsight / best baseline (${best.policy}) = ${ratio(o.metrics.apiCallsPerDay?.mean, best.metrics.apiCallsPerDay?.mean)}`);
    }
    if (cheapest) out(`API calls/day onsight / cheapest baseline (${cheapest.policy}) = ${ratio(o.metrics.apiCallsPerDay?.mean, cheapest.metrics.apiCallsPerDay?.mean)}; onsight wrong-host ${o.metrics.wrongHost?.mean ?? 0}, violations ${o.violations}`);
  }
}

/** The breaking points: the matrix of assumptions, reduced (fleet 500, 9 days, 1 seed, so no intervals; --quick: the API tiers only). */
async function simMatrix(): Promise<void> {
  const { runMatrix, matrixTable, MATRIX_POLICIES } = await import('../src/sim/matrix.js');
  const o = { base: 'mobile-fleet', days: 9, seeds: 1, laptops: 500, only: quick ? 'API' : undefined, policies: [...MATRIX_POLICIES, 'onsight+ranges'] };
  const t0 = performance.now();
  const res = await runMatrix(o);
  out(`\n## Breaking points: onsight simulate --matrix around mobile-fleet (500 laptops, 9 days, 1 seed${quick ? ', API tiers only' : ''}), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  out(matrixTable(res).trimEnd());
}

async function simRuntime(): Promise<void> {
  // runtime of the full-size fleet: 30 simulated days (3 with --quick, and a projection)
  const days = quick ? 3 : 30;
  const sc = structuredClone(BUILTIN['mobile-fleet']);
  const { runOnce } = await import('../src/sim/sim.js');
  const m = await runOnce(sc, 'onsight', 1, { days });
  out(`\nSimulator runtime, onsight on mobile-fleet (5,000 laptops): ${days} simulated day(s) in ${(m.wallMs / 1000).toFixed(1)} s ${days === 30 ? '' : ` (≈ ${((m.wallMs / 1000) * 30 / days).toFixed(0)} s projected for 30 days)`}; coverage 30 d ${((m.coverage['30d'] ?? 0) * 100).toFixed(1)}%, wrong-host ${m.wrongHost}, ${m.apiCallsPerDay.toFixed(0)} API calls/day`);
}

// ------------------------------------------------------------------------------ 4. ingestion

async function ingestBench(): Promise<void> {
  let mod: { runSourceBench?: (o?: Record<string, unknown>) => Promise<unknown> };
  try {
    mod = await import(new URL('./ingest-source.js', import.meta.url).href);
  } catch {
    out('\nIngestion: bench/ingest-source.ts not present; skipped');
    return;
  }
  if (!mod.runSourceBench) {
    out('\nIngestion: bench/ingest-source.js exports no runSourceBench; skipped');
    return;
  }
  out('\n## Ingestion: sources alone (bench/ingest-source.ts: framing + header parse, UDP loss at 50k msg/s)');
  const r = await mod.runSourceBench({ print: true, ...(quick ? { tcpMessages: 100_000, udpSeconds: 1 } : { tcpMessages: 500_000 }) });
  out(JSON.stringify(r));
  out('\n## Ingestion end to end (bench/ingest-e2e.ts: the daemon — framing, parsing, SQLite — against rsyslog imtcp→omfile and the parsing peers rsyslog mmnormalize and syslog-ng PatternDB, same stream)');
  const { runIngestE2E } = await import('./ingest-e2e.js');
  const e = await runIngestE2E({ messages: quick ? 200_000 : 1_000_000, rounds: quick ? 1 : 3, print: true });
  out(JSON.stringify(e));
  out('\n## UDP through the whole daemon (bench/udp-e2e.ts: C sendmmsg sender at 100k and 200k msg/s, receive thread, native receiver against node dgram, loss and counted drops)');
  const { runUdpReceivers, runUdpListenerAlone } = await import('./udp-e2e.js');
  for (const receiver of ['native', 'dgram'] as const) {
    await runUdpListenerAlone({ rate: 200_000, seconds: quick ? 2 : 5, receiver, print: true }).catch((err: Error) => out(`  listener alone (${receiver}): ${err.message}`));
  }
  await runUdpReceivers({ rates: [100_000, 200_000], seconds: quick ? 2 : 5, rounds: quick ? 1 : 3, print: true });
  out('\n## Ingestion over HTTP (bench/ingest-http.ts: the same stream as Splunk HEC /raw requests into the daemon\'s HTTP input)');
  const { runHttpIngest } = await import('./ingest-http.js');
  const h = await runHttpIngest({ messages: quick ? 100_000 : 200_000, print: true });
  out(`  HTTP ${h.msgsPerS.toLocaleString('en')} msg/s beside TCP ${e.onsight.msgsPerS.toLocaleString('en')} msg/s (HTTP/TCP ${ratio(h.msgsPerS, e.onsight.msgsPerS)})`);
  out('\n## The logger at info (bench/logger.ts: a write per event-loop turn, the default, against a write per line, to a file and to a non-blocking pipe as journald\'s stdout)');
  const { runLoggerBench } = await import('./logger.js');
  await runLoggerBench({ lines: quick ? 5_000 : 20_000, rounds: quick ? 3 : 5, print: true });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--rss-child') return rssChild();
  const t0 = performance.now();
  out(`onsight bench${quick ? ' (quick)' : ''} — node ${process.version}, ${new Date().toISOString()}`);
  // --only=sim,memory,latency,ingest,lease,syslog runs a subset
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const want = (name: string) => !only || only.includes(name);
  if (want('sim')) {
    out('\n# Scheduling simulator (short versions; full runs: onsight simulate --scenario NAME --seeds 20)');
    await simBench();
    await simMatrix();
    await simRuntime();
  }
  if (want('memory')) {
    out('\n# Memory');
    await rssBench();
    await rssDaemonBench(quick ? 100_000 : 1_000_000);
  }
  if (want('latency')) {
    out('\n# Latency');
    await latencyBench(true);
    await latencyBench(false);
  }
  if (want('ingest')) await ingestBench();
  if (want('lease')) {
    out('\n# Lease databases (bench/lease-snapshot.ts: a dnsmasq file rewritten whole for each changed lease)');
    const { runLeaseSnapshotBench } = await import('./lease-snapshot.js');
    await runLeaseSnapshotBench({ leases: 50_000, changes: quick ? 3 : 5, print: true });
  }
  if (want('syslog')) {
    out('\n# Syslog headers (bench/syslog-sd.ts)');
    const { runSyslogSdBench } = await import('./syslog-sd.js');
    runSyslogSdBench({ sizesMiB: quick ? [1, 4] : [1, 4, 16] });
  }
  out(`\nbench done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

await main();
