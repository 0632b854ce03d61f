/**
 * End-to-end ingestion benchmark: a TCP syslog stream (99 % irrelevant firewall lines, 1 % DHCP
 * leases) into the real daemon — framing, header parsing, format auto-detection, parsing, the
 * SQLite inventory write — measured from the first byte sent to the last line committed. In the
 * same run, the same stream goes to a private rsyslogd (imtcp → omfile), the yardstick for "a
 * syslog daemon receiving to a file", and to rsyslog with mmnormalize extracting the same DHCP fields
 * (the parsing peer). Prints messages/s, CPU-seconds per million messages and onsight's ratios.
 *
 * Run: `npm run build && node dist/bench/ingest-e2e.js [messages]` (or call runIngestE2E()).
 */
import { decodeThreadOn } from '../src/config/derive.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { extractedSyslogNg } from './syslog-ng-extract.js';
import { appendFileSync, closeSync, existsSync, readFileSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Daemon } from '../src/daemon/daemon.js';
import { validateConfig } from '../src/config/load.js';
import { closeLog, createLogger, droppedLogLines, silentLogger } from '../src/log.js';
import { drainedFifo } from '../test/helpers/fifo.js';

export interface IngestE2EOptions {
  messages?: number;
  print?: boolean;
  /** rounds; each receiver's median is reported (default 3) */
  rounds?: number;
  /** the onsight settings to run (default VARIANTS) */
  variants?: OnsightVariant[];
  /** the variant whose figures are `onsight` and the ratios (default the first) */
  headline?: string;
  /** run rsyslog and syslog-ng too (default true) */
  peers?: boolean;
}

export interface IngestE2EResult {
  messages: number;
  onsight: { msgsPerS: number; seconds: number; committed: number; sightings: number; lost: number; processCpuSeconds: number; cpuSecondsPerM?: number; mainThreadCpuSecondsPerM?: number; logLinesDropped?: number };
  /** every variant's median run, by name */
  variants?: Record<string, IngestE2EResult['onsight']>;
  /** 1 - (Europe/Berlin + logger at info) / (UTC + silent), main-thread decoding; and with the decode thread */
  productionCost?: number;
  productionCostThread?: number;
  /** the same, as the median of the per-round ratios */
  productionCostPaired?: number;
  productionCostThreadPaired?: number;
  /** onsight / each peer, as the median of the per-round ratios (the headline variant) */
  pairedRatios?: Record<string, number>;
  rsyslog?: { msgsPerS: number; seconds: number; written: number; cpuSecondsPerM: number; extracted?: number };
  /** onsight / rsyslog */
  ratio?: number;
  rsyslogSkipped?: string;
  /** rsyslog with mmnormalize extracting the DHCP fields: the parsing peer */
  mmnormalize?: { msgsPerS: number; seconds: number; written: number; cpuSecondsPerM: number; extracted?: number };
  /** onsight / rsyslog mmnormalize */
  ratioMmnormalize?: number;
  mmnormalizeSkipped?: string;
  /** syslog-ng with PatternDB extracting the DHCP fields: the other parsing peer */
  patterndb?: { msgsPerS: number; seconds: number; written: number; cpuSecondsPerM: number; extracted?: number };
  /** onsight / syslog-ng PatternDB */
  ratioPatterndb?: number;
  patterndbSkipped?: string;
}

export function stream(n: number, from = 0): Buffer {
  const parts: string[] = [];
  for (let i = from; i < from + n; i++) {
    if (i % 100 === 0) {
      const k = i / 100;
      parts.push(`<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255} to 52:54:00:${((k >> 16) & 255).toString(16).padStart(2, '0')}:${((k >> 8) & 255).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')} via eth0\n`);
    } else {
      parts.push(`<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,${i % 65535},0,DF,6,tcp,60,203.0.113.${i % 250},10.0.0.1,${1024 + (i % 60000)},443,0,S,123456,,64240,,mss\n`);
    }
  }
  return Buffer.from(parts.join(''));
}

/**
 * The sender runs as its own process, reading the stream from a temp file: the daemon's process
 * CPU is then the daemon's alone (no sender thread sharing it).
 */
const SENDER = `
const net = require('node:net');
const fs = require('node:fs');
const [file, port] = process.argv.slice(1);
const buf = fs.readFileSync(file);
const s = net.connect(Number(port), '127.0.0.1', () => {
  process.stdout.write('started ' + Date.now() + '\\n');
  let off = 0;
  const CH = 1 << 20;
  const write = () => {
    while (off < buf.length) {
      const end = Math.min(buf.length, off + CH);
      const ok = s.write(buf.subarray(off, end));
      off = end;
      if (!ok) return s.once('drain', write);
    }
    s.end();
  };
  write();
});
s.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
`;

/** Start the sender; resolves with the time the connection opened (epoch ms). */
function send(port: number, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', SENDER, file, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d));
    c.stdout.once('data', (d: Buffer) => resolve(Number(/started (\d+)/.exec(d.toString())?.[1] ?? Date.now())));
    c.once('exit', (code) => code && reject(new Error(`sender exited ${code}: ${err.slice(0, 300)}`)));
    c.once('error', reject);
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How the daemon is run: the settings the issue asks to compare. */
export interface OnsightVariant {
  name: string;
  /** ingest.decodeThread */
  decodeThread: boolean;
  /** the config's time zone for stamps without an offset */
  timezone: string;
  /** the real logger at info, writing JSON lines to a non-blocking pipe, as to journald (else a silent logger) */
  logInfo: boolean;
  /** inputs[].receiveThread: the TCP server (framing, text, screening) in a thread of its own (default true, as the config's) */
  receiveThread?: boolean;
}

type OnsightResult = IngestE2EResult['onsight'];

async function runOnsight(file: string, n: number, v: OnsightVariant): Promise<OnsightResult> {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-'));
  const port = await freePort();
  const { config } = validateConfig({
    state: join(dir, 'state.db'),
    timezone: v.timezone,
    inputs: [{ type: 'syslog', listen: `tcp://127.0.0.1:${port}`, format: 'auto', maxConnections: 10, receiveThread: v.receiveThread ?? true }],
    // the leases are outside the scope: this measures ingestion, not scanning
    policy: { scope: ['192.0.2.0/24'] },
    regions: [{ name: 'r', cidrs: ['192.0.2.0/24'], appliances: ['a'] }],
    scanner: { type: 'dry-run' },
    ingest: { decodeThread: v.decodeThread },
    http: { enabled: false },
  });
  // the logger at info writes to a non-blocking pipe drained by another process: the daemon's
  // stdout under systemd, a stream to journald
  const logPipe = v.logInfo ? await drainedFifo(dir) : undefined;
  const log = logPipe === undefined ? silentLogger() : createLogger({ level: 'info', pretty: false, fd: logPipe.fd });
  const daemon = new Daemon({ config, log });
  const logDropped0 = droppedLogLines();
  await daemon.start();
  try {
    const cpu0 = process.cpuUsage();
    const main0 = procCpuSeconds(process.pid, process.pid);
    const t0 = await send(port, file);
    const deadline = Date.now() + 300_000;
    while (daemon.ingest.counters.lines < n && Date.now() < deadline) await sleep(5);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const mainThreadCpuSeconds = procCpuSeconds(process.pid, process.pid) - main0;
    const c = daemon.ingest.counters;
    const processCpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      msgsPerS: Math.round(c.lines / seconds), seconds, committed: c.lines, sightings: c.sightings, lost: n - c.lines, processCpuSeconds,
      cpuSecondsPerM: processCpuSeconds / (c.lines / 1e6), mainThreadCpuSecondsPerM: mainThreadCpuSeconds / (c.lines / 1e6),
      logLinesDropped: droppedLogLines() - logDropped0,
    };
  } finally {
    await daemon.stop();
    if (logPipe !== undefined) {
      closeLog(log); // and its fd
      await logPipe.done;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function countNewlines(file: string, state: { pos: number; lines: number }): number {
  if (!existsSync(file)) return state.lines;
  const size = statSync(file).size;
  if (size <= state.pos) return state.lines;
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(Math.min(size - state.pos, 16 << 20));
  try {
    while (state.pos < size) {
      const got = readSync(fd, buf, 0, Math.min(buf.length, size - state.pos), state.pos);
      if (got <= 0) break;
      for (let i = 0; i < got; i++) if (buf[i] === 10) state.lines++;
      state.pos += got;
    }
  } finally {
    closeSync(fd);
  }
  return state.lines;
}

/**
 * rsyslog's parsing peer: mmnormalize (liblognorm) extracts the same DHCP fields onsight does (the
 * address, the MAC, the interface) from the DHCPACK lines. Every line writes one output line (the
 * fields, or `-` when the rulebase does not match), so the end of the stream can be seen.
 * Rulebase syntax: https://www.rsyslog.com/doc/configuration/modules/mmnormalize.html and
 * liblognorm's v2 field types (ipv4, mac48, word).
 */
// rsyslog's $msg keeps the space after `dhcpd[7]:`, hence the rule's leading space
const DHCP_RULEBASE = 'version=2\nrule=: DHCPACK on %ip:ipv4% to %mac:mac48% via %iface:word%\n';

async function runRsyslog(file: string, n: number, normalize = false): Promise<NonNullable<IngestE2EResult['rsyslog']> | string> {
  const rsyslogd = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p));
  if (!rsyslogd) return 'rsyslogd not installed (Debian package rsyslog)';
  if (normalize && !existsSync('/usr/lib/x86_64-linux-gnu/rsyslog/mmnormalize.so') && !existsSync('/usr/lib/rsyslog/mmnormalize.so')) {
    return 'rsyslog mmnormalize module not installed';
  }
  const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-rs-'));
  const port = await freePort();
  const out = join(dir, 'out.log');
  writeFileSync(join(dir, 'dhcp.rb'), DHCP_RULEBASE);
  writeFileSync(join(dir, 'rsyslog.conf'), (normalize ? [
    `global(workDirectory="${dir}")`,
    `module(load="imtcp")`,
    `module(load="mmnormalize")`,
    `template(name="fields" type="string" string="%$!ip% %$!mac% %$!iface%\\n")`,
    `template(name="none" type="string" string="-\\n")`,
    `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="parse")`,
    `ruleset(name="parse") {`,
    `  action(type="mmnormalize" rulebase="${join(dir, 'dhcp.rb')}")`,
    `  if $parsesuccess == "OK" then action(type="omfile" file="${out}" template="fields")`,
    `  else action(type="omfile" file="${out}" template="none")`,
    `}`,
  ] : [
    `global(workDirectory="${dir}")`,
    `module(load="imtcp")`,
    `input(type="imtcp" port="${port}" address="127.0.0.1")`,
    `*.* action(type="omfile" file="${out}")`,
  ]).join('\n') + '\n');
  const check = spawnSync(rsyslogd, ['-N1', '-f', join(dir, 'rsyslog.conf')], { encoding: 'utf8' });
  if (check.status !== 0) return `rsyslogd rejected the config: ${check.stderr.slice(0, 300)}`;
  const proc = spawn(rsyslogd, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { stdio: 'ignore' });
  return measurePeer(proc, dir, port, out, file, n, normalize);
}

type PeerResult = NonNullable<IngestE2EResult['rsyslog']>;

/** Send the stream to a peer already started on `port`, wait for `n` lines in `out`, stop it. */
async function measurePeer(proc: ChildProcess, dir: string, port: number, out: string, file: string, n: number, extracting: boolean): Promise<PeerResult> {
  try {
    // wait for the listener
    for (let i = 0; i < 100 && !(await listening(port)); i++) await sleep(50);
    const startLines = countNewlines(out, { pos: 0, lines: 0 }); // the probe connection sent nothing
    const state = { pos: 0, lines: 0 };
    const cpu0 = procCpuSeconds(proc.pid);
    const t0 = await send(port, file);
    const deadline = Date.now() + 300_000;
    while (countNewlines(out, state) - startLines < n && Date.now() < deadline) await sleep(5);
    const seconds = (Date.now() - t0) / 1000;
    const cpuSeconds = procCpuSeconds(proc.pid) - cpu0;
    // the lines the rulebase matched (the others are `-`): proof the fields were extracted
    const extracted = extracting ? readFileSync(out, 'utf8').split('\n').filter((l) => l && l !== '-').length : undefined;
    return { msgsPerS: Math.round((state.lines - startLines) / seconds), seconds, written: state.lines - startLines, cpuSecondsPerM: cpuSeconds / ((state.lines - startLines) / 1e6), extracted };
  } finally {
    proc.kill('SIGTERM');
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * syslog-ng's parsing peer: PatternDB (db-parser) extracts the same DHCPACK fields, run from an
 * extracted package (bench/syslog-ng-extract.ts). As with mmnormalize, every line writes one
 * output line, the fields or `-`. Pattern syntax: syslog-ng OSE admin guide, "db-parser" and
 * "Pattern parsers" (@IPv4@, @MACADDR@, @ANYSTRING@).
 */
const DHCP_PATTERNDB = `<?xml version='1.0' encoding='UTF-8'?>
<patterndb version='4' pub_date='2026-12-01'>
  <ruleset name='dhcpd' id='6b1e1f0e-0c1a-4a52-9f0e-0a5e00000001'>
    <pattern>dhcpd</pattern>
    <rules>
      <rule provider='onsight-bench' id='6b1e1f0e-0c1a-4a52-9f0e-0a5e00000002' class='system'>
        <patterns><pattern>DHCPACK on @IPv4:dhcp.ip@ to @MACADDR:dhcp.mac@ via @ANYSTRING:dhcp.iface@</pattern></patterns>
      </rule>
    </rules>
  </ruleset>
</patterndb>
`;

async function runSyslogNg(file: string, n: number): Promise<PeerResult | string> {
  const sng = extractedSyslogNg();
  if (typeof sng === 'string') return sng;
  const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-sng-'));
  const port = await freePort();
  const out = join(dir, 'out.log');
  writeFileSync(join(dir, 'dhcp.pdb'), DHCP_PATTERNDB);
  writeFileSync(join(dir, 'syslog-ng.conf'), [
    '@version: 3.38',
    'options { stats-freq(0); flush-lines(1000); log-fifo-size(100000); };',
    `source s { network(transport("tcp") ip("127.0.0.1") port(${port}) max-connections(10) log-iw-size(100000)); };`,
    `parser p { db-parser(file("${join(dir, 'dhcp.pdb')}")); };`,
    `destination d { file("${out}" template("$(if (\\"\${dhcp.ip}\\" ne \\"\\") \\"\${dhcp.ip} \${dhcp.mac} \${dhcp.iface}\\" \\"-\\")\\n")); };`,
    'log { source(s); parser(p); destination(d); };',
  ].join('\n') + '\n');
  const args = ['-f', join(dir, 'syslog-ng.conf'), `--module-path=${sng.modulePath}`, '-R', join(dir, 'persist'), '-c', join(dir, 'ctl'), '-p', join(dir, 'pid'), '--no-caps'];
  const check = spawnSync(sng.bin, ['-s', ...args], { env: sng.env, encoding: 'utf8' });
  if (check.status !== 0) return `syslog-ng rejected the config: ${check.stderr.slice(-600)}`;
  const proc = spawn(sng.bin, ['-F', ...args], { env: sng.env, stdio: 'ignore' });
  return measurePeer(proc, dir, port, out, file, n, true);
}

/** user + system CPU seconds of a process, all its threads (/proc/PID/stat fields 14 and 15), or of one thread */
function procCpuSeconds(pid: number | undefined, tid?: number): number {
  try {
    const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** Is something listening on the port yet? */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const median = (xs: number[]) => {
  const v = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return v.length ? v[Math.floor(v.length / 2)] : NaN;
};

function medianOf<T extends { msgsPerS: number; seconds: number }>(rs: T[]): T {
  // the round with the median rate, so its other figures belong to the same run
  const sorted = [...rs].sort((x, y) => x.msgsPerS - y.msgsPerS);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * The settings compared: silent UTC (the old bench) and production (a named zone, the real logger
 * at info), each with and without the decode thread; and the TCP server on the main thread
 * (receiveThread off), the default before the stream receive thread.
 */
export const VARIANTS: OnsightVariant[] = [
  { name: 'utc-silent', decodeThread: false, timezone: 'UTC', logInfo: false },
  { name: 'utc-silent+thread', decodeThread: true, timezone: 'UTC', logInfo: false },
  { name: 'berlin-info', decodeThread: false, timezone: 'Europe/Berlin', logInfo: true },
  { name: 'berlin-info+thread', decodeThread: true, timezone: 'Europe/Berlin', logInfo: true },
  { name: 'utc-silent+thread-receive-on-main', decodeThread: true, timezone: 'UTC', logInfo: false, receiveThread: false },
];

export async function runIngestE2E(opts: IngestE2EOptions = {}): Promise<IngestE2EResult> {
  const n = opts.messages ?? 1_000_000;
  const print = opts.print ?? false;
  const rounds = opts.rounds ?? 3;
  const variants = opts.variants ?? VARIANTS;
  const tmp = mkdtempSync(join(tmpdir(), 'onsight-bench-stream-'));
  const file = join(tmp, 'stream.log');
  // written in slices, so this process (the daemon's) never holds the whole stream
  writeFileSync(file, '');
  for (let i = 0; i < n; i += 10_000) appendFileSync(file, stream(Math.min(10_000, n - i), i));
  if (print) console.log(`ingest e2e: ${n.toLocaleString()} messages (${(statSync(file).size / 1e6).toFixed(0)} MB) over TCP, 99% firewall / 1% DHCP; ${rounds} round(s), receivers take turns within each round, medians; sender in its own process`);
  const runs: Record<string, OnsightResult[]> = {};
  const peers: Record<string, (PeerResult | string)[]> = { rsyslog: [], mmnormalize: [], patterndb: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) (runs[v.name] ??= []).push(await runOnsight(file, n, v));
      if (opts.peers !== false) {
        peers.rsyslog.push(await runRsyslog(file, n));
        peers.mmnormalize.push(await runRsyslog(file, n, true));
        peers.patterndb.push(await runSyslogNg(file, n));
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const cpuNote = (x?: number) => (x === undefined || !Number.isFinite(x) ? '' : `, ${x.toFixed(2)} CPU-s per million`);
  const onsightBy: Record<string, OnsightResult> = {};
  for (const v of variants) {
    const m = medianOf(runs[v.name]);
    m.cpuSecondsPerM = median(runs[v.name].map((x) => x.cpuSecondsPerM ?? NaN));
    m.mainThreadCpuSecondsPerM = median(runs[v.name].map((x) => x.mainThreadCpuSecondsPerM ?? NaN));
    onsightBy[v.name] = m;
    if (print) console.log(`  onsight ${v.name} (TCP server ${v.receiveThread ?? true ? 'in its receive thread' : 'on the main thread'}, decode ${v.decodeThread ? 'in a worker thread' : 'on the main thread'}, ${v.timezone}, logger ${v.logInfo ? 'info → non-blocking pipe' : 'silent'}): ${m.msgsPerS.toLocaleString()} msg/s${cpuNote(m.cpuSecondsPerM)} (main thread ${m.mainThreadCpuSecondsPerM?.toFixed(2)}), ${m.committed.toLocaleString()} committed, ${m.sightings.toLocaleString()} sightings, ${m.lost} lost${m.logLinesDropped ? `, ${m.logLinesDropped} log lines dropped` : ''} [rounds: ${runs[v.name].map((x) => x.msgsPerS.toLocaleString()).join(', ')}]`);
  }
  // the headline: the defaults (decodeThread as auto resolves it on this machine) in UTC with a silent logger
  const byDefault = variants.find((v) => v.timezone === 'UTC' && !v.logInfo && (v.receiveThread ?? true) && v.decodeThread === decodeThreadOn({ ingest: { decodeThread: 'auto' } }));
  const headlineName = opts.headline ?? byDefault?.name ?? variants[0].name;
  const headline = onsightBy[headlineName] ?? Object.values(onsightBy)[0];
  if (print) console.log(`  headline: ${headlineName}${headlineName === byDefault?.name ? `, the default on this machine (${availableParallelism()} cores)` : ''}`);
  const result: IngestE2EResult = { messages: n, onsight: headline, variants: onsightBy };
  // The receivers of a round run back to back: their ratio within the round shares the machine's
  // state (on a shared 2-core VM a receiver's rate swings 1.5x between rounds), so each ratio is
  // also given as the median of the per-round ratios (paired), beside the ratio of the medians.
  const paired = (a: { msgsPerS: number }[], b: ({ msgsPerS: number } | string)[]) => {
    const rs = a.map((x, r) => (typeof b[r] === 'object' ? x.msgsPerS / (b[r] as { msgsPerS: number }).msgsPerS : NaN)).filter(Number.isFinite);
    return rs.length ? { median: median(rs), each: rs } : undefined;
  };
  const cost = (a: string, b: string) => (onsightBy[a] && onsightBy[b] ? 1 - onsightBy[b].msgsPerS / onsightBy[a].msgsPerS : undefined);
  /** 1 - b/a per round, and their median */
  const pairedCost = (a: string, b: string) => {
    const p = runs[a] && runs[b] ? paired(runs[b], runs[a]) : undefined;
    return p && { median: 1 - p.median, each: p.each.map((r) => 1 - r) };
  };
  const costMain = pairedCost('utc-silent', 'berlin-info');
  const costThread = pairedCost('utc-silent+thread', 'berlin-info+thread');
  result.productionCost = cost('utc-silent', 'berlin-info');
  result.productionCostThread = cost('utc-silent+thread', 'berlin-info+thread');
  result.productionCostPaired = costMain?.median;
  result.productionCostThreadPaired = costThread?.median;
  const pct = (x?: number) => `${((x ?? NaN) * 100).toFixed(1)}%`;
  if (print && result.productionCost !== undefined) {
    const each = (c?: { each: number[] }) => (c?.each ?? []).map(pct).join(', ');
    console.log(`  production settings (Europe/Berlin + logger at info) cost against UTC + silent: ${pct(result.productionCost)} (main thread), ${pct(result.productionCostThread)} (decode thread); paired by round: ${pct(costMain?.median)} [${each(costMain)}], ${pct(costThread?.median)} [${each(costThread)}]`);
  }
  const peerMedian = (name: string, rs: (PeerResult | string)[]): PeerResult | string | undefined => {
    const ok = rs.filter((x): x is PeerResult => typeof x !== 'string');
    if (!ok.length) return rs[0];
    const m = medianOf(ok);
    return { ...m, cpuSecondsPerM: median(ok.map((x) => x.cpuSecondsPerM)) };
  };
  result.pairedRatios = {};
  const describe = (name: string, r: PeerResult | string | undefined, perRound: (PeerResult | string)[], key: string): number | undefined => {
    if (r === undefined) return undefined;
    if (typeof r === 'string') {
      if (print) console.log(`  ${name}: skipped (${r})`);
      return undefined;
    }
    const ratio = headline.msgsPerS / r.msgsPerS;
    const p = paired(runs[headlineName] ?? [], perRound);
    if (p) result.pairedRatios![key] = p.median;
    if (print) {
      const each = variants.map((v) => `${v.name} ${(onsightBy[v.name].msgsPerS / r.msgsPerS).toFixed(2)}`).join(', ');
      const byRound = p ? `\n    paired by round (${headlineName}): median ${p.median.toFixed(2)} [${p.each.map((x) => x.toFixed(2)).join(', ')}]` : '';
      console.log(`  ${name}: ${r.msgsPerS.toLocaleString()} msg/s, ${r.written.toLocaleString()} written${r.extracted !== undefined ? `, ${r.extracted.toLocaleString()} with fields extracted` : ''}, ${r.seconds.toFixed(2)} s${cpuNote(r.cpuSecondsPerM)} [rounds: ${perRound.map((x) => (typeof x === 'string' ? 'skipped' : x.msgsPerS.toLocaleString())).join(', ')}]\n    ratio onsight / ${name}: ${each}${byRound}`);
    }
    return ratio;
  };
  const rs = peerMedian('rsyslog', peers.rsyslog);
  if (typeof rs === 'string') result.rsyslogSkipped = rs;
  else if (rs) result.rsyslog = rs;
  result.ratio = describe('rsyslog (imtcp → omfile)', rs, peers.rsyslog, 'rsyslog');
  const mm = peerMedian('mmnormalize', peers.mmnormalize);
  if (typeof mm === 'string') result.mmnormalizeSkipped = mm;
  else if (mm) result.mmnormalize = mm;
  result.ratioMmnormalize = describe('rsyslog mmnormalize (DHCPACK ip/mac/iface → file)', mm, peers.mmnormalize, 'mmnormalize');
  const pdb = peerMedian('patterndb', peers.patterndb);
  if (typeof pdb === 'string') result.patterndbSkipped = pdb;
  else if (pdb) result.patterndb = pdb;
  result.ratioPatterndb = describe('syslog-ng PatternDB (DHCPACK ip/mac/iface → file)', pdb, peers.patterndb, 'patterndb');
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
  const only = process.argv.find((a) => a.startsWith('--variants='))?.slice(11).split(',');
  runIngestE2E({ messages: n, print: true, rounds, peers: !process.argv.includes('--no-peers'), variants: only ? VARIANTS.filter((v) => only.includes(v.name)) : undefined }).then(() => process.exit(0), (err: Error) => {
    console.error(err);
    process.exit(1);
  });
}
