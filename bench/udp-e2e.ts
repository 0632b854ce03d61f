/**
 * UDP through the whole daemon: a C sender (bench/udp-sender.c, sendmmsg batches, paced) sends the
 * e2e stream at a fixed rate to the daemon's UDP syslog input; the daemon frames, decodes and
 * commits. Reports the loss (sent − committed) and whether every lost datagram was counted (the
 * input's drop counters, the kernel's drop counter for our socket included), and the receive
 * buffer the kernel granted. The sender runs in its own process.
 *
 * Run: `npm run build && node dist/bench/udp-e2e.js [rate] [seconds] [--decode-thread] [--no-udp-thread]`;
 * `--alone`: the listener alone (node dgram, or with --native the native receiver, in a worker,
 * counting only), the floor on this machine. `--native` / `--dgram`: the input's udpReceiver.
 * `--compare [ROUNDS]`: native against dgram at 100k and 200k msg/s, alternating, medians.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createSocket } from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { Daemon } from '../src/daemon/daemon.js';
import { validateConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { loadNativeUdp } from '../src/sources/syslog/native-udp.js';

export interface UdpE2EOptions {
  rate?: number;
  seconds?: number;
  decodeThread?: boolean;
  udpThread?: boolean;
  /** udpReceiver of the input: native (native/udp-recv) or dgram; default auto */
  receiver?: 'native' | 'dgram' | 'auto';
  /** SO_RCVBUF to ask for (default 32 MiB) */
  recvBufferBytes?: number;
  print?: boolean;
}

export interface UdpE2EResult {
  rate: number;
  /** what received: native or dgram */
  receiver: string;
  sent: number;
  sendSeconds: number;
  received: number;
  committed: number;
  lost: number;
  lossPct: number;
  dropped: Record<string, number>;
  /** lost datagrams no counter accounts for (should be 0) */
  uncounted: number;
  recvBufferAsked: number;
  recvBufferGranted: number;
  cpuSecondsPerM: number;
  /** CPU seconds per thread over the run (`main 1.2, 4567 0.8`: thread ids; the receive and decode threads are among them) */
  threads: string;
  /** sightings committed, and those the stream carried (one DHCPACK every 100 lines sent) */
  sightings: number;
  sightingsSent: number;
}

/** Compile the sender once (next to the compiled bench), or say why not. */
export function udpSender(): string {
  const src = fileURLToPath(new URL('../../bench/udp-sender.c', import.meta.url));
  const bin = join(tmpdir(), 'onsight-bench-udp-sender');
  if (existsSync(bin) && statSync(bin).mtimeMs > statSync(src).mtimeMs) return bin;
  const r = spawnSync('cc', ['-O2', '-o', bin, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc could not build the UDP sender: ${r.error?.message ?? r.stderr}`);
  return bin;
}

async function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds of each thread of this process (Linux /proc/self/task; empty elsewhere), by thread id, with its name */
function threadCpu(): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const t of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${t}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(t), (Number(f[11]) + Number(f[12])) / 100); // utime + stime, in USER_HZ (100 on Linux)
    }
  } catch {
    /* not Linux */
  }
  return out;
}

const threadName = (tid: number) => {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, 'latin1').trim();
  } catch {
    return String(tid);
  }
};

/** The threads that used CPU between two readings, busiest first: main thread first, named (udp-recv: the native receiver's). */
function cpuByThread(before: Map<number, number>, after: Map<number, number>): string {
  const used = [...after].map(([tid, s]) => [tid, s - (before.get(tid) ?? 0)] as const).filter(([, s]) => s >= 0.05);
  used.sort((a, b) => (a[0] === process.pid ? -1 : b[0] === process.pid ? 1 : b[1] - a[1]));
  return used.map(([tid, s]) => `${tid === process.pid ? 'main' : `${threadName(tid)}:${tid}`} ${s.toFixed(2)}`).join(', ');
}

export interface UdpListenerAloneResult {
  rate: number;
  sent: number;
  received: number;
  lossPct: number;
  /** CPU per datagram (µs) of every thread but the main one: the worker, and the native receiver's own thread */
  threadUsPerDatagram: number;
}

/**
 * The floor, in the same conditions: a worker thread that only counts datagrams, received with
 * node's dgram or the native receiver (same sender, rate and receive buffer). The daemon with
 * that receiver cannot lose less than this on this machine.
 */
export async function runUdpListenerAlone(o: { rate?: number; seconds?: number; receiver?: 'native' | 'dgram'; print?: boolean } = {}): Promise<UdpListenerAloneResult> {
  const rate = o.rate ?? 200_000;
  const count = Math.round(rate * (o.seconds ?? 3));
  const receiver = o.receiver ?? 'dgram';
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const addonPath = fileURLToPath(new URL('../../native/udp-recv/build/Release/udp_recv.node', import.meta.url));
  if (receiver === 'native' && !existsSync(addonPath)) throw new Error(`the native UDP receiver is not built (${addonPath})`);
  // the native receiver's own thread drains the socket; the worker only takes its batches and counts
  const listen = receiver === 'native'
    ? `const r = require(${JSON.stringify(addonPath)}).open({ host: '127.0.0.1', port: 0, family: 4, recvBufferBytes: ${32 << 20} }, () => {
        for (let b = r.take(1 << 20); b; b = r.take(1 << 20)) Atomics.add(workerData, 0, b.ends.length);
      });
      parentPort.postMessage(r.port);`
    : `const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: ${32 << 20} });
      s.on('message', () => Atomics.add(workerData, 0, 1));
      s.bind(0, '127.0.0.1', () => parentPort.postMessage(s.address().port));`;
  const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');\n${listen}`, { eval: true, workerData: counter });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    const cpu0 = threadCpu();
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(udpSender(), [String(port), String(rate), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      c.stdout.on('data', (d: Buffer) => (text += d));
      c.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`udp sender exited ${code}`))));
      c.once('error', reject);
    });
    const sendSeconds = Number(/seconds ([\d.]+)/.exec(out)?.[1] ?? NaN);
    let last = -1;
    while (Atomics.load(counter, 0) !== last) {
      last = Atomics.load(counter, 0);
      await sleep(100);
    }
    // the receiving threads (worker, and the native receiver's own): all but the main thread
    const used = [...threadCpu()].filter(([tid]) => tid !== process.pid).map(([tid, t]) => t - (cpu0.get(tid) ?? 0));
    const received = Atomics.load(counter, 0);
    const r: UdpListenerAloneResult = { rate, sent: count, received, lossPct: (100 * (count - received)) / count, threadUsPerDatagram: (1e6 * used.reduce((a, b) => a + b, 0)) / Math.max(1, received) };
    if (o.print) console.log(`  UDP ${rate.toLocaleString('en')} msg/s, the listener alone (${receiver === 'native' ? 'native receiver' : 'node dgram'} in a worker, counting only): sent at ${Math.round(count / sendSeconds).toLocaleString('en')}/s, received ${received.toLocaleString('en')} of ${count.toLocaleString('en')}, lost ${r.lossPct.toFixed(3)}%; ${r.threadUsPerDatagram.toFixed(2)} µs CPU per datagram in its threads`);
    return r;
  } finally {
    await w.terminate();
  }
}

export async function runUdpE2E(o: UdpE2EOptions = {}): Promise<UdpE2EResult> {
  const rate = o.rate ?? 200_000;
  const seconds = o.seconds ?? 3;
  const count = Math.round(rate * seconds);
  const sender = udpSender();
  const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-udp-'));
  const port = await freeUdpPort();
  const asked = o.recvBufferBytes ?? 32 << 20;
  const { config } = validateConfig({
    state: join(dir, 'state.db'),
    timezone: 'UTC',
    inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto', udpRecvBufferBytes: asked, udpReceiver: o.receiver ?? 'auto', ...(o.udpThread === undefined ? {} : { receiveThread: o.udpThread }) }],
    policy: { scope: ['192.0.2.0/24'] },
    regions: [{ name: 'r', cidrs: ['192.0.2.0/24'], appliances: ['a'] }],
    scanner: { type: 'dry-run' },
    ingest: { decodeThread: o.decodeThread ?? false },
    http: { enabled: false },
  });
  const daemon = new Daemon({ config, log: silentLogger() });
  await daemon.start();
  try {
    const input = daemon.inputs[0];
    const cpu0 = process.cpuUsage();
    const threads0 = threadCpu();
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(sender, [String(port), String(rate), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      c.stdout.on('data', (d: Buffer) => (s += d));
      c.once('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`udp sender exited ${code}`))));
      c.once('error', reject);
    });
    const m = /sent (\d+) seconds ([\d.]+)/.exec(out);
    const sent = Number(m?.[1] ?? 0);
    // settle: until the committed count stops moving and nothing is pending
    let last = -1;
    for (let i = 0; i < 600; i++) {
      await sleep(100);
      const c = daemon.ingest.counters;
      if (c.lines === last && c.pending === 0) break;
      last = c.lines;
    }
    const cpu = process.cpuUsage(cpu0);
    const threads = cpuByThread(threads0, threadCpu());
    const ic = input.counters();
    const committed = daemon.ingest.counters.lines;
    const dropped = ic.dropped;
    const counted = Object.values(dropped).reduce((a, b) => a + b, 0);
    const lost = sent - committed;
    const r: UdpE2EResult = {
      rate, receiver: ic.udpReceiver ?? '?', sent, sendSeconds: Number(m?.[2] ?? 0), received: ic.received, committed, lost, lossPct: (100 * lost) / Math.max(1, sent), dropped,
      uncounted: lost - counted, recvBufferAsked: asked, recvBufferGranted: ic.recvBufferBytes ?? NaN,
      cpuSecondsPerM: (cpu.user + cpu.system) / 1e6 / (committed / 1e6), threads,
      sightings: daemon.ingest.counters.sightings, sightingsSent: Math.ceil(sent / 100),
    };
    if (o.print) {
      console.log(`  UDP ${rate.toLocaleString('en')} msg/s for ${seconds} s through the daemon (decode ${o.decodeThread ? 'thread' : 'main'}, receive ${o.udpThread === false ? 'main' : 'thread'}, ${r.receiver}): sent ${sent.toLocaleString('en')} in ${r.sendSeconds.toFixed(2)} s (${Math.round(sent / r.sendSeconds).toLocaleString('en')}/s), committed ${committed.toLocaleString('en')}, lost ${lost} (${r.lossPct.toFixed(3)}%), counted drops ${JSON.stringify(dropped)}, uncounted ${r.uncounted}${ic.events?.spilled ? ` (screened by the main thread: ${ic.events.spilled})` : ''}; SO_RCVBUF asked ${asked / 2 ** 20} MiB, granted ${(r.recvBufferGranted / 2 ** 20).toFixed(1)} MiB; sightings ${r.sightings}/${r.sightingsSent} sent; ${r.cpuSecondsPerM.toFixed(2)} CPU-s per million (by thread, s: ${threads})`);
    }
    return r;
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The native receiver against node's dgram, in the same run, alternating (native, dgram, native,
 * ...) at each rate: loss, the drops counted (kernel + backpressure + the rest) and whether they
 * account for every lost message, CPU-s per million; then the median of the rounds.
 */
export async function runUdpReceivers(o: { rates?: number[]; seconds?: number; rounds?: number; decodeThread?: boolean; print?: boolean } = {}): Promise<Record<string, UdpE2EResult[]>> {
  const out: Record<string, UdpE2EResult[]> = {};
  const native = loadNativeUdp();
  if ('reason' in native) console.log(`  native UDP receiver not available (${native.reason}): dgram only`);
  // native asks 32 MiB and may force it (SO_RCVBUFFORCE); "native 4M" asks net.core.rmem_max's
  // 4 MiB, so it gets the kernel buffer dgram gets: the receivers compared on equal terms
  const variants = [
    ...('addon' in native ? [{ label: 'native', receiver: 'native' as const }, { label: 'native 4M', receiver: 'native' as const, recvBufferBytes: 4 << 20 }] : []),
    { label: 'dgram', receiver: 'dgram' as const },
  ];
  for (const rate of o.rates ?? [100_000, 200_000]) {
    for (let round = 0; round < (o.rounds ?? 1); round++) {
      for (const v of variants) {
        const r = await runUdpE2E({ rate, seconds: o.seconds ?? 5, decodeThread: o.decodeThread, udpThread: true, receiver: v.receiver, recvBufferBytes: v.recvBufferBytes, print: o.print });
        (out[`${v.label} ${rate}`] ??= []).push(r);
      }
    }
  }
  if (o.print) {
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`  median of ${o.rounds ?? 1} round(s), load ${loadavg().map((x) => x.toFixed(2)).join(' ')}:`);
    for (const [key, rs] of Object.entries(out)) {
      const counted = (r: UdpE2EResult) => r.lost - r.uncounted;
      console.log(`    ${key.padEnd(17)} sent at ${Math.round(median(rs.map((r) => r.sent / r.sendSeconds))).toLocaleString('en')}/s, lost ${median(rs.map((r) => r.lossPct)).toFixed(3)}% [rounds ${rs.map((r) => r.lossPct.toFixed(3)).join(', ')}] ` +
        `(counted: kernel ${median(rs.map((r) => r.dropped.kernel ?? 0))}, backpressure ${median(rs.map((r) => r.dropped.backpressure ?? 0))}, all ${median(rs.map(counted))}; ` +
        `every loss counted: ${rs.every((r) => r.uncounted === 0) ? 'yes' : `NO (${rs.map((r) => r.uncounted).join(', ')} uncounted)`}), ` +
        `${median(rs.map((r) => r.cpuSecondsPerM)).toFixed(2)} CPU-s per million, SO_RCVBUF granted ${(median(rs.map((r) => r.recvBufferGranted)) / 2 ** 20).toFixed(0)} MiB`);
    }
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rate = Number(process.argv[2] ?? 200_000);
  const seconds = Number(process.argv[3] ?? 3);
  const flag = (n: string) => (process.argv.includes(`--${n}`) ? true : process.argv.includes(`--no-${n}`) ? false : undefined);
  const receiver = process.argv.includes('--dgram') ? 'dgram' as const : process.argv.includes('--native') ? 'native' as const : undefined;
  const run = process.argv.includes('--compare') ? runUdpReceivers({ seconds, rounds: Number(process.argv[process.argv.indexOf('--compare') + 1]) || 1, print: true })
    : process.argv.includes('--alone') ? runUdpListenerAlone({ rate, seconds, receiver, print: true }) : runUdpE2E({ rate, seconds, print: true, decodeThread: flag('decode-thread'), udpThread: flag('udp-thread'),
    receiver: receiver ?? 'auto' });
  run.then(() => process.exit(0), (err: Error) => {
    console.error(err);
    process.exit(1);
  });
}
