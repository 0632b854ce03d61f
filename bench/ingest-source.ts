/**
 * Source benchmark.
 *
 * 1. TCP: a client (worker thread) streams syslog lines, 99 % firewall noise and 1 % DHCP/VPN lines,
 *    into our TCP listener; framing + RFC 3164/5424 header parsing into a counting sink.
 *    Reports messages/s (and MB/s) from the first byte sent to the last message counted.
 * 2. UDP: a client (worker thread) sends at a fixed rate (default 50k msg/s) for a few seconds;
 *    reports sent vs received, the kernel's drop counter for our socket, and the loss.
 *
 * Run: `npm run build && node dist/bench/ingest-source.js` (or call runSourceBench()).
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { startSyslogInput } from '../src/sources/syslog/listen.js';
import { parseSyslog } from '../src/parsers/syslog-header.js';
import type { LineSink, RawLine } from '../src/sources/types.js';
import { startFileInput } from '../src/sources/file/input.js';
import { silentLogger } from '../src/log.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SourceBenchOptions {
  /** TCP messages to stream (default 1,000,000) */
  tcpMessages?: number;
  /** TCP framing of the client: `lf` (default) or `octet` */
  tcpFraming?: 'lf' | 'octet';
  /** UDP send rate, messages/s (default 50,000) */
  udpRate?: number;
  /** UDP test duration, s (default 3) */
  udpSeconds?: number;
  /** SO_RCVBUF asked for (default 8 MiB) */
  udpRecvBufferBytes?: number;
  /** lines for the file tailing figure (default 500,000; 0 skips it) */
  fileLines?: number;
  /** print as we go (default true when run directly) */
  print?: boolean;
}

export interface SourceBenchResult {
  tcp: { messages: number; relevant: number; seconds: number; msgsPerSec: number; mbPerSec: number; dropped: Record<string, number> };
  udp: { rate: number; seconds: number; sent: number; received: number; lost: number; lossPct: number; kernelDrops: number | null; dropped: Record<string, number> };
  /** byte-offset tailer reading a prepared file from the start (with checkpoints), into a counting sink */
  file?: { lines: number; seconds: number; linesPerSec: number };
}

class CountingSink implements LineSink {
  count = 0;
  relevant = 0;
  bytes = 0;
  onCount?: () => void;
  push(line: RawLine): boolean {
    const h = parseSyslog(line.text, { receivedAt: line.receivedAt, zone: 'UTC' });
    this.count++;
    this.bytes += line.text.length + 1;
    const app = h.appName;
    if (app === 'dhcpd' || app === 'openvpn' || app === 'charon') this.relevant++;
    if (this.onCount) this.onCount();
    return true;
  }
  onDrain(cb: () => void): void {
    setImmediate(cb);
  }
}

const CLIENT_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const dgram = require('node:dgram');
const fw = (i) => '<134>Nov 23 10:00:00 fw01 kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55 SRC=10.9.' + (i & 255) + '.' + ((i >> 8) & 255) + ' DST=10.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=' + i + ' DF PROTO=TCP SPT=' + (1024 + (i % 60000)) + ' DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0';
const dhcp = (i) => '<30>Nov 23 10:00:00 dhcp01 dhcpd[1234]: DHCPACK on 10.20.' + (i & 255) + '.' + ((i >> 8) & 255) + ' to 52:54:00:' + (i & 255).toString(16).padStart(2, '0') + ':34:56 (host' + i + ') via eth0';
const vpn = (i) => '<30>Nov 23 10:00:00 vpn01 openvpn[99]: user' + i + '/198.51.100.' + (i & 255) + ':51234 MULTI_sva: pool returned IPv4=10.8.' + (i & 255) + '.2, IPv6=(Not enabled)';
const line = (i) => (i % 100 === 0 ? (i % 200 === 0 ? dhcp(i) : vpn(i)) : fw(i));
const w = workerData;
if (w.kind === 'tcp') {
  const s = net.connect({ port: w.port, host: '127.0.0.1' }, () => {
    let i = 0;
    const pump = () => {
      while (i < w.messages) {
        const parts = [];
        for (let k = 0; k < 500 && i < w.messages; k++, i++) {
          const l = line(i);
          parts.push(w.framing === 'octet' ? Buffer.byteLength(l) + ' ' + l : l + '\\n');
        }
        if (!s.write(parts.join(''))) { s.once('drain', pump); return; }
      }
      s.end();
      parentPort.postMessage({ done: true, sent: i });
    };
    parentPort.postMessage({ started: true });
    pump();
  });
} else {
  const s = dgram.createSocket('udp4');
  let sent = 0, errors = 0;
  const perMs = w.rate / 1000;
  const t0 = Date.now();
  const end = t0 + w.seconds * 1000;
  const tick = () => {
    const now = Date.now();
    const due = Math.min(Math.floor((now - t0) * perMs), Math.floor(w.seconds * w.rate));
    while (sent < due) {
      const i = sent++;
      s.send(line(i), w.port, '127.0.0.1', (err) => { if (err) errors++; });
    }
    if (now < end) setImmediate(tick);
    else setTimeout(() => { s.close(); parentPort.postMessage({ done: true, sent, errors }); }, 50);
  };
  tick();
}
`;

function runWorker(data: Record<string, unknown>): Promise<{ sent: number; errors?: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(CLIENT_CODE, { eval: true, workerData: data });
    w.on('message', (m: { done?: boolean; sent: number; errors?: number }) => {
      if (m.done) resolve(m);
    });
    w.on('error', reject);
  });
}

export async function runSourceBench(opts: SourceBenchOptions = {}): Promise<SourceBenchResult> {
  const print = opts.print ?? false;
  const log = silentLogger();
  const messages = opts.tcpMessages ?? 1_000_000;
  const base = { format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 100, udpRecvBufferBytes: opts.udpRecvBufferBytes ?? 8 << 20 };

  // --- TCP throughput
  const tsink = new CountingSink();
  const tcp = await startSyslogInput({ ...base, listen: 'tcp://127.0.0.1:0' }, tsink, log);
  const allIn = new Promise<void>((resolve) => {
    tsink.onCount = () => {
      if (tsink.count >= messages) resolve();
    };
  });
  const t0 = process.hrtime.bigint();
  await Promise.race([
    Promise.all([runWorker({ kind: 'tcp', port: tcp.address!.port, messages, framing: opts.tcpFraming ?? 'lf' }), allIn]),
    new Promise((r) => setTimeout(r, 120_000)),
  ]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  tsink.onCount = undefined;
  const tcpRes = {
    messages: tsink.count,
    relevant: tsink.relevant,
    seconds: round(secs, 3),
    msgsPerSec: Math.round(tsink.count / secs),
    mbPerSec: round(tsink.bytes / secs / 1e6, 1),
    dropped: tcp.counters().dropped,
  };
  await tcp.close();
  if (print) console.log(`TCP ${opts.tcpFraming ?? 'lf'}: ${tcpRes.messages} msgs (${tcpRes.relevant} DHCP/VPN) in ${tcpRes.seconds}s = ${tcpRes.msgsPerSec.toLocaleString('en')} msg/s, ${tcpRes.mbPerSec} MB/s (framing + header parse)`);

  // --- UDP loss at a fixed rate
  const rate = opts.udpRate ?? 50_000;
  const seconds = opts.udpSeconds ?? 3;
  const usink = new CountingSink();
  const udp = await startSyslogInput({ ...base, listen: 'udp://127.0.0.1:0' }, usink, log);
  const r = await runWorker({ kind: 'udp', port: udp.address!.port, rate, seconds });
  // let the socket drain
  let last = -1;
  while (usink.count !== last) {
    last = usink.count;
    await new Promise((res) => setTimeout(res, 200));
  }
  const uc = udp.counters();
  await udp.close();
  const lost = r.sent - usink.count;
  const udpRes = {
    rate,
    seconds,
    sent: r.sent,
    received: usink.count,
    lost,
    lossPct: round((100 * lost) / Math.max(1, r.sent), 3),
    kernelDrops: uc.dropped.kernel ?? null,
    dropped: uc.dropped,
  };
  if (print) console.log(`UDP at ${rate.toLocaleString('en')} msg/s for ${seconds}s: sent ${udpRes.sent}, received ${udpRes.received}, lost ${udpRes.lost} (${udpRes.lossPct}%), kernel drops ${udpRes.kernelDrops ?? 'n/a'}`);
  // --- file tailing throughput
  let fileRes: SourceBenchResult['file'];
  const fileLines = opts.fileLines ?? 500_000;
  if (fileLines > 0) {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-'));
    try {
      const path = join(dir, 'dhcpd.log');
      const parts: string[] = [];
      for (let i = 0; i < fileLines; i++) parts.push(`Nov 23 10:00:00 dhcp01 dhcpd[1234]: DHCPACK on 10.20.${i & 255}.${(i >> 8) & 255} to 52:54:00:12:34:56 (host${i}) via eth0\n`);
      writeFileSync(path, parts.join(''));
      let n = 0;
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      const f0 = process.hrtime.bigint();
      const h = await startFileInput({ path, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 250 }, {
        push: () => {
          if (++n === fileLines) done();
          return true;
        },
        onDrain: (cb) => setImmediate(cb),
      }, async () => undefined, log);
      await all;
      const fs = Number(process.hrtime.bigint() - f0) / 1e9;
      await h.close();
      fileRes = { lines: n, seconds: round(fs, 3), linesPerSec: Math.round(n / fs) };
      if (print) console.log(`file: ${n} lines tailed from the start in ${fileRes.seconds}s = ${fileRes.linesPerSec.toLocaleString('en')} lines/s (with byte checkpoints)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { tcp: tcpRes, udp: udpRes, file: fileRes };
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runSourceBench({ print: true }).then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
