/**
 * The main thread's side of the decode thread: sends batches of raw lines, gets their sightings
 * back in the order sent (one thread, one queue, so each source's lines are decoded in order). If
 * the thread dies it is started again and the batches it had not answered are sent again.
 *
 * A watchdog reads which line the thread is on (shared cells, decode-protocol.ts): a line it stays
 * on for LINE_TIMEOUT_MS (a plug-in's regex backtracking without end would hold every input behind
 * it for good) has the thread terminated and started again, that line dropped, counted and logged
 * with the parser that was at work, and the unanswered batches sent again without it.
 */
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { WORKER_YOUNG_MB, threadEntry } from '../util/thread-entry.js';
import type { DecoderCounters } from '../parsers/decoder.js';
import type { Sighting } from '../sighting.js';
import type { RawLine } from '../sources/types.js';
import {
  PROGRESS_BATCH, PROGRESS_CELLS, PROGRESS_LINE, PROGRESS_PLUGIN, PROGRESS_SEQ,
  type DecodeBatchMessage, type DecodeThreadData, type FromDecodeThread, type ToDecodeThread,
} from './decode-protocol.js';

/**
 * Lets V8 finish a regex that backtracks too much (50,000 backtracks) on its linear engine:
 * `user=((?:\w+\s?)+)$` against 26 letters and a `!` went from 1 s (x2.7 a letter) to a few ms.
 * Process-wide, and only for regexes created after it (Node 26: the literal must be evaluated
 * after; a regex compiled before keeps no limit), so it is set when this module loads, before the
 * daemon or the decode thread loads any plug-in. Regexes the linear engine cannot run
 * (backreferences, lookarounds) still backtrack: the watchdog is for them.
 */
export function limitRegexBacktracking(): void {
  v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
}
limitRegexBacktracking();

/** The decode thread's compiled entry (see threadEntry). */
export function decodeThreadEntry(): URL | undefined {
  return threadEntry(import.meta.url, 'decode-thread');
}

/** per line of the batch: its sightings, or undefined for lines the thread was not asked to decode */
export type DecodedLines = (Sighting[] | undefined)[];

interface Waiting {
  msg: DecodeBatchMessage;
  /** batch index of each line sent */
  index: number[];
  size: number;
  /** the batch (for the log line of one that stalled the thread) */
  lines: RawLine[];
  resolve(r: DecodedLines): void;
  reject(err: Error): void;
}

/** exits within RESTART_WINDOW_MS beyond which the thread is given up (the ingest decodes in-line) */
const MAX_RESTARTS = 5;
/** the window: a thread that exits now and then, over weeks, is started again each time */
const RESTART_WINDOW_MS = 10 * 60_000;
/**
 * The longest one line may take. A line takes microseconds, a 16 MiB one well under a second on a
 * loaded 2-core machine; the clock runs from when the main thread first sees the thread on a line,
 * so a main thread that was itself held up does not count against the decode thread.
 */
export const LINE_TIMEOUT_MS = 10_000;

const sum = (a: number | undefined, b: number | undefined) => (a === undefined && b === undefined ? undefined : (a ?? 0) + (b ?? 0));

/** counters of two threads' lives added up */
function addCounters(a: DecoderCounters | undefined, b: DecoderCounters): DecoderCounters {
  if (!a) return structuredClone(b);
  const byFormat = structuredClone(a.byFormat);
  for (const [f, c] of Object.entries(b.byFormat)) {
    const t = (byFormat[f] ??= { lines: 0, sightings: 0 });
    t.lines += c.lines;
    t.sightings += c.sightings;
  }
  const out: DecoderCounters = {
    lines: a.lines + b.lines, recognized: a.recognized + b.recognized, unrecognized: a.unrecognized + b.unrecognized,
    sightings: a.sightings + b.sightings, invalid: a.invalid + b.invalid, parserErrors: a.parserErrors + b.parserErrors, byFormat,
  };
  for (const k of ['clockUnset', 'clockUnsetDropped', 'invalidTimestamp'] as const) {
    const v = sum(a[k], b[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export class DecodeThread {
  /** the counters of the threads that ended (restarts) and of the lines the watchdog dropped */
  private past: Record<string, DecoderCounters> = {};
  /** the running thread's, as of its last answer */
  private current: Record<string, DecoderCounters> = {};
  /** lines dropped because a parser never finished them, by source (`udp:5514`) */
  readonly timedOut: Record<string, number> = {};
  private worker!: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  /** when the thread last exited (within RESTART_WINDOW_MS) */
  private exits: number[] = [];
  private closed = false;
  private zone: string;
  private markReady!: () => void;
  /** settles when the first thread has loaded the parsers (or could not: then `failed` is true) */
  readonly ready = new Promise<void>((r) => (this.markReady = r));
  /** the running thread's progress cells, and its parser ids (PROGRESS_PLUGIN - 1) */
  private progress!: Int32Array;
  private plugins: string[] = [];
  /** the line the watchdog last saw the thread on (PROGRESS_SEQ), and since when */
  private seenSeq = -1;
  private seenAt = 0;
  private readonly watchdog: NodeJS.Timeout;
  private readonly lineTimeoutMs: number;

  constructor(private readonly entry: URL, private readonly data: DecodeThreadData, private readonly log: Logger, opts: { lineTimeoutMs?: number } = {}) {
    this.zone = data.zone;
    this.lineTimeoutMs = opts.lineTimeoutMs ?? LINE_TIMEOUT_MS;
    this.spawn();
    this.watchdog = setInterval(() => this.watch(), Math.min(1000, this.lineTimeoutMs / 4));
    this.watchdog.unref();
  }

  get counters(): Record<string, DecoderCounters> {
    const out: Record<string, DecoderCounters> = {};
    for (const f of new Set([...Object.keys(this.past), ...Object.keys(this.current)])) {
      const [a, b] = [this.past[f], this.current[f]];
      out[f] = a && b ? addCounters(a, b) : (a ?? b);
    }
    return out;
  }

  private spawn(): void {
    const progress = new SharedArrayBuffer(PROGRESS_CELLS * 4);
    const w = new Worker(this.entry, {
      workerData: { ...this.data, zone: this.zone, progress } satisfies DecodeThreadData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
    });
    this.worker = w;
    this.progress = new Int32Array(progress);
    this.seenSeq = -1;
    w.on('message', (m: FromDecodeThread) => {
      if (w !== this.worker) return; // a thread being replaced: its batches are sent again
      if (m.type === 'decoded') {
        this.current = m.counters;
        const q = this.waiting.get(m.id);
        if (!q) return;
        this.waiting.delete(m.id);
        const out: DecodedLines = new Array(q.size);
        for (const i of q.index) out[i] = [];
        for (const [i, s] of m.found) out[q.index[i]] = s;
        q.resolve(out);
      } else if (m.type === 'ready') {
        this.plugins = m.plugins;
        this.markReady();
      } else if (m.type === 'failed') {
        this.fail(new Error(`the decode thread could not start: ${m.message}`));
      }
    });
    w.on('error', (err) => this.log.error({ err: { message: err.message } }, 'the decode thread failed'));
    w.on('exit', (code) => {
      if (this.closed || w !== this.worker) return;
      const now = Date.now();
      this.exits = [...this.exits.filter((t) => now - t < RESTART_WINDOW_MS), now];
      if (this.exits.length > MAX_RESTARTS) return this.fail(new Error(`the decode thread exited (code ${code}) ${this.exits.length} times within ${RESTART_WINDOW_MS / 60_000} min`));
      this.log.error({ code, pending: this.waiting.size }, 'the decode thread exited; starting it again and resending its batches');
      this.respawn();
    });
  }

  /** A new thread for the one that ended (or is being ended), sent every unanswered batch. */
  private respawn(): void {
    for (const [f, c] of Object.entries(this.current)) this.past[f] = addCounters(this.past[f], c);
    this.current = {};
    this.spawn();
    for (const q of this.waiting.values()) this.worker.postMessage(q.msg satisfies ToDecodeThread);
  }

  /** Every tick: has the thread stayed on one line for lineTimeoutMs? */
  private watch(): void {
    if (this.closed) return;
    const seq = Atomics.load(this.progress, PROGRESS_SEQ);
    const now = Date.now();
    if (seq !== this.seenSeq || Atomics.load(this.progress, PROGRESS_BATCH) === 0) {
      this.seenSeq = seq;
      this.seenAt = now;
      return;
    }
    if (now - this.seenAt >= this.lineTimeoutMs) this.stalled();
  }

  /** The thread is stuck on one line: drop that line (counted, logged), end the thread, start another. */
  private stalled(): void {
    const id = Atomics.load(this.progress, PROGRESS_BATCH);
    const k = Atomics.load(this.progress, PROGRESS_LINE);
    const pk = Atomics.load(this.progress, PROGRESS_PLUGIN);
    const plugin = pk > 0 ? this.plugins[pk - 1] : undefined;
    const q = this.waiting.get(id);
    const l = q?.lines[q.index[k]];
    if (q && l) {
      // the line is not sent again; the lines around it are (their results were the old thread's)
      (q.msg.skip ??= []).push(k);
      this.timedOut[l.source] = (this.timedOut[l.source] ?? 0) + 1;
      const f = l.format ?? 'auto';
      const c = (this.past[f] ??= { lines: 0, recognized: 0, unrecognized: 0, sightings: 0, invalid: 0, parserErrors: 0, byFormat: {} });
      c.lines++;
      c.parserErrors++;
    }
    // where the line came from and its length, not its text (a sender's, up to 16 MiB)
    this.log.error({
      plugin: plugin ?? null, source: l?.source, sender: l?.sender, line: l?.line, chars: l?.text.length, timeoutS: this.lineTimeoutMs / 1000,
    }, `${plugin ? `parser ${plugin}` : 'the decode thread'} took over ${this.lineTimeoutMs / 1000} s on one line (a regex that backtracks?): the line is dropped (counted as a parser error) and the decode thread started again`);
    const old = this.worker;
    this.respawn();
    void old.terminate();
  }

  private fail(err: Error): void {
    this.closed = true;
    clearInterval(this.watchdog);
    this.markReady();
    void this.worker.terminate();
    for (const q of this.waiting.values()) q.reject(err);
    this.waiting.clear();
  }

  get failed(): boolean {
    return this.closed;
  }

  /** Decode the lines that carry no sightings of their own; the answer is aligned with `lines`. */
  decode(lines: RawLine[]): Promise<DecodedLines> {
    if (this.closed) return Promise.reject(new Error('the decode thread is closed'));
    const index: number[] = [];
    for (let i = 0; i < lines.length; i++) if (!lines[i].sightings) index.push(i);
    const n = index.length;
    const msg: DecodeBatchMessage = {
      type: 'batch', id: this.nextId++, texts: new Array(n), times: new Float64Array(n), lineNos: new Float64Array(n),
      sourceIdx: new Uint32Array(n), sources: [], formatIdx: new Uint32Array(n), formats: [], headers: [],
    };
    const sourceAt = new Map<string, number>();
    const formatAt = new Map<string, number>();
    for (let k = 0; k < n; k++) {
      const l = lines[index[k]];
      msg.texts[k] = l.text;
      msg.times[k] = l.receivedAt.getTime();
      msg.lineNos[k] = l.line ?? 0;
      let s = sourceAt.get(l.source);
      if (s === undefined) sourceAt.set(l.source, (s = msg.sources.push(l.source) - 1));
      msg.sourceIdx[k] = s;
      const format = l.format ?? 'auto';
      let f = formatAt.get(format);
      if (f === undefined) formatAt.set(format, (f = msg.formats.push(format) - 1));
      msg.formatIdx[k] = f;
      if (l.syslog) msg.headers.push([k, l.syslog]);
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(msg.id, { msg, index, size: lines.length, lines, resolve, reject });
      this.worker.postMessage(msg satisfies ToDecodeThread);
    });
  }

  setZone(zone: string): void {
    this.zone = zone;
    if (!this.closed) this.worker.postMessage({ type: 'zone', zone } satisfies ToDecodeThread);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    await this.worker.terminate();
  }
}
