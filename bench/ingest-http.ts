/**
 * HTTP ingestion benchmark: the same stream as bench/ingest-e2e.ts (99 % firewall lines, 1 % DHCP
 * leases) into the real daemon's HTTP input, as Splunk HEC /raw requests of `batch` lines from
 * `connections` keep-alive connections in a worker thread, each request answered only after its
 * lines are committed. Measured from the first request to the last 200.
 *
 * Run: `npm run build && node dist/bench/ingest-http.js [messages]` (or call runHttpIngest()).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Daemon } from '../src/daemon/daemon.js';
import { validateConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { stream } from './ingest-e2e.js';

export interface HttpIngestOptions {
  messages?: number;
  batch?: number;
  connections?: number;
  print?: boolean;
}

export interface HttpIngestResult {
  messages: number;
  batch: number;
  connections: number;
  msgsPerS: number;
  requestsPerS: number;
  seconds: number;
  committed: number;
  /** requests answered other than 200 (retried) */
  retried: number;
}

const TOKEN = 'bench-token';

const SENDER = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
const { port, bodies, connections, token } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
let next = 0, done = 0, retried = 0;
const t0 = Date.now();
function one() {
  if (next >= bodies.length) return;
  const i = next++;
  const send = () => {
    const req = http.request({ host: '127.0.0.1', port, path: '/services/collector/raw', method: 'POST', agent,
      headers: { authorization: 'Splunk ' + token, 'content-length': bodies[i].length } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) { retried++; return setTimeout(send, 50); }
        if (++done === bodies.length) parentPort.postMessage({ t0, t1: Date.now(), retried });
        else one();
      });
    });
    req.on('error', (e) => parentPort.postMessage({ error: String(e) }));
    req.end(bodies[i]);
  };
  send();
}
for (let c = 0; c < connections; c++) one();
`;

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

export async function runHttpIngest(opts: HttpIngestOptions = {}): Promise<HttpIngestResult> {
  const n = opts.messages ?? 200_000;
  const batch = opts.batch ?? 1000;
  const connections = opts.connections ?? 4;
  const lines = stream(n).toString('utf8').split('\n').filter((l) => l).map((l) => l.replace(/^<\d+>/, ''));
  const bodies: Buffer[] = [];
  for (let i = 0; i < lines.length; i += batch) bodies.push(Buffer.from(lines.slice(i, i + batch).join('\n') + '\n'));
  const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-http-'));
  const port = await freePort();
  process.env.ONSIGHT_BENCH_HEC_TOKEN = TOKEN;
  const { config } = validateConfig({
    state: join(dir, 'state.db'),
    timezone: 'UTC',
    inputs: [{ type: 'http', listen: `127.0.0.1:${port}`, format: 'auto', maxBodyBytes: 16 << 20, tokens: [{ name: 'bench', env: 'ONSIGHT_BENCH_HEC_TOKEN' }] }],
    policy: { scope: ['192.0.2.0/24'] },
    regions: [{ name: 'r', cidrs: ['192.0.2.0/24'], appliances: ['a'] }],
    scanner: { type: 'dry-run' },
    http: { enabled: false },
  });
  const daemon = new Daemon({ config, log: silentLogger() });
  await daemon.start();
  try {
    const r = await new Promise<{ t0: number; t1: number; retried: number }>((resolve, reject) => {
      const w = new Worker(SENDER, { eval: true, workerData: { port, bodies, connections, token: TOKEN } });
      w.on('message', (m: { t0?: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m as never)));
      w.on('error', reject);
    });
    const seconds = (r.t1 - r.t0) / 1000;
    const committed = daemon.ingest.counters.lines;
    const res: HttpIngestResult = {
      messages: n, batch, connections, seconds, committed, retried: r.retried,
      msgsPerS: Math.round(committed / seconds), requestsPerS: Math.round(bodies.length / seconds),
    };
    if (opts.print) {
      console.log(`  onsight HTTP input (HEC /raw, ${batch.toLocaleString('en')} lines a request, ${connections} keep-alive connections, 200 after commit): ` +
        `${res.msgsPerS.toLocaleString('en')} msg/s (${res.requestsPerS.toLocaleString('en')} requests/s), ${committed.toLocaleString('en')} committed, ${r.retried} retried, ${seconds.toFixed(2)} s`);
    }
    return res;
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runHttpIngest({ messages: Number(process.argv[2] ?? 200_000), print: true });
}
