/**
 * The TCP/TLS receive thread's entry (worker_threads): runs the input's whole server
 * (stream-server.ts: accept, TLS, framing, text, screening) off the main thread, so at a
 * firewall's rate the main thread sees only the lines some parser may claim, in batches, plus the
 * counts of the rest by sender. At most two batches are out unacknowledged; beyond that lines
 * wait here, and past `hold` lines (or 16 Mi characters) the server pauses its connections until
 * the main thread catches up.
 * When the sink itself says stop, the main thread says so (`stop`) and the connections pause at
 * once, as they would on the main thread (TCP backpressure: nothing is dropped; a paused
 * connection is not idle).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LineSink, RawLine, SourceCounters, UnclaimedLines } from '../types.js';
import type { Claims } from '../../parsers/plugin.js';
import { startStreamServer, type StreamLog } from './stream-server.js';
import type { FromStreamThread, StreamLogLevel, StreamThreadData, ToStreamThread } from './stream-protocol.js';
import type { UnclaimedCount } from './udp-screen.js';

const port = parentPort!;
const data = workerData as StreamThreadData;
const post = (m: FromStreamThread) => port.postMessage(m);
const MAX_UNACKED = 2;
/** most lines in one posted batch, and about the most characters (batches small enough that few lines are in flight: memory) */
const MAX_BATCH = 1_000;
const MAX_BATCH_CHARS = 4 << 20;
/** past this many characters held, the connections pause too (long lines: `hold` counts lines) */
const HOLD_CHARS = 16 << 20;
/**
 * What arrived is posted this long after the first of it: a few hundred posts a second at most,
 * however the chunks come (a post per chunk was 15 % of this thread at 300k lines/s), for 5 ms of
 * latency.
 */
const FLUSH_MS = 5;
/** counters are posted this often when they changed (and with every batch) */
const COUNTERS_MS = 100;

/** log fields as plain data (an Error does not cross threads with its code) */
const plain = (obj: object): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = v instanceof Error ? { message: v.message, code: (v as NodeJS.ErrnoException).code } : v;
  return out;
};
const send = (level: StreamLogLevel) => (obj: object, msg: string) => post({ type: 'log', level, obj: plain(obj), msg });
const log: StreamLog = { debug: data.debug ? send('debug') : () => undefined, info: send('info'), warn: send('warn') };

/** The server's sink here: holds the lines and counts, and posts them to the main thread. */
class PostingSink implements LineSink {
  private pending: RawLine[] = [];
  private pendingChars = 0;
  private counts: UnclaimedCount[] = [];
  private unacked = 0;
  private scheduled = false;
  private drainers: (() => void)[] = [];
  /** the main thread's sink said stop, and has not drained yet */
  private stopped = false;
  counters: () => SourceCounters = () => ({ received: 0, dropped: {} });

  constructor(private readonly claimsOfFormat: Claims | undefined) {}

  claims(): Claims | undefined {
    return this.claimsOfFormat;
  }

  unclaimed(u: UnclaimedLines): void {
    this.counts.push({ sender: u.sender, count: u.count, lastAt: u.lastAt });
    this.schedule();
  }

  push(line: RawLine): boolean {
    this.pending.push(line);
    this.pendingChars += line.text.length;
    this.schedule();
    return !this.stopped && !this.full();
  }

  private full(): boolean {
    return this.pending.length >= data.hold || this.pendingChars >= HOLD_CHARS;
  }

  /** The next batch off `pending`: up to MAX_BATCH lines or MAX_BATCH_CHARS characters (at least one line). */
  private cut(): RawLine[] {
    let n = 0;
    let chars = 0;
    while (n < this.pending.length && n < MAX_BATCH && (n === 0 || chars + this.pending[n].text.length <= MAX_BATCH_CHARS)) chars += this.pending[n++].text.length;
    const lines = n === this.pending.length ? this.pending : this.pending.slice(0, n);
    this.pending = lines === this.pending ? [] : this.pending.slice(n);
    this.pendingChars -= chars;
    return lines;
  }

  stop(): void {
    this.stopped = true;
  }

  onDrain(cb: () => void): void {
    this.drainers.push(cb);
  }

  ack(): void {
    this.unacked--;
    this.stopped = false;
    this.flush();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Post what may go now (`force`: everything, at close); wake the server when the backlog is low. */
  flush(force = false): void {
    this.scheduled = false;
    while (this.pending.length && (force || this.unacked < MAX_UNACKED)) {
      const lines = this.cut();
      const senders: string[] = [];
      const at = new Map<string, number>();
      const senderIdx = new Uint32Array(lines.length);
      const times = new Float64Array(lines.length);
      const texts = lines.map((l, i) => {
        const s = l.sender ?? '';
        let k = at.get(s);
        if (k === undefined) at.set(s, (k = senders.push(s) - 1));
        senderIdx[i] = k;
        times[i] = l.receivedAt.getTime();
        return l.text;
      });
      post({ type: 'lines', texts, senders, senderIdx, times, unclaimed: this.takeCounts(), counters: this.counters() });
      this.unacked++;
    }
    if (this.counts.length) post({ type: 'unclaimed', unclaimed: this.takeCounts(), counters: this.counters() });
    if (this.drainers.length && !this.stopped && this.pending.length < data.hold / 2 && this.pendingChars < HOLD_CHARS / 2) {
      const d = this.drainers;
      this.drainers = [];
      for (const cb of d) cb();
    }
  }

  private takeCounts(): UnclaimedCount[] {
    const c = this.counts;
    this.counts = [];
    return c;
  }
}

async function main(): Promise<void> {
  const sink = new PostingSink(data.claims);
  const server = await startStreamServer(data.addr, data.opts, sink, log).catch((err: NodeJS.ErrnoException) => {
    post({ type: 'bindFailed', message: err.message, code: err.code });
  });
  if (!server) return;
  sink.counters = () => server.counters();
  let lastPosted = '';
  const timer = setInterval(() => {
    const c = server.counters();
    const k = JSON.stringify(c);
    if (k !== lastPosted) post({ type: 'counters', counters: c });
    lastPosted = k;
  }, COUNTERS_MS);
  timer.unref();
  let closing = false;
  port.on('message', (m: ToStreamThread) => {
    if (m.type === 'ack') sink.ack();
    else if (m.type === 'stop') {
      sink.stop();
      server.pause();
    } else if (m.type === 'reload') {
      server.reload!().then(() => post({ type: 'reloaded', id: m.id }), (err: Error) => post({ type: 'reloaded', id: m.id, error: err.message }));
    } else if (m.type === 'close' && !closing) {
      closing = true;
      clearInterval(timer);
      void server.close().then(() => {
        sink.flush(true); // every line already cut from a connection goes to the main thread
        post({ type: 'closed', counters: server.counters() });
      });
    }
  });
  post({ type: 'bound', address: server.address!.host, port: server.address!.port });
}

void main();
