/**
 * The main thread's side of the decode thread: sends batches of raw lines, gets their sightings
 * back in the order sent (one thread, one queue, so each source's lines are decoded in order). If
 * the thread dies it is started again and the batches it had not answered are sent again.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { WORKER_YOUNG_MB, threadEntry } from '../util/thread-entry.js';
import type { DecoderCounters } from '../parsers/decoder.js';
import type { Sighting } from '../sighting.js';
import type { RawLine } from '../sources/types.js';
import type { DecodeBatchMessage, DecodeThreadData, FromDecodeThread, ToDecodeThread } from './decode-protocol.js';

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
  resolve(r: DecodedLines): void;
  reject(err: Error): void;
}

/** exits within RESTART_WINDOW_MS beyond which the thread is given up (the ingest decodes in-line) */
const MAX_RESTARTS = 5;
/** the window: a thread that exits now and then, over weeks, is started again each time */
const RESTART_WINDOW_MS = 10 * 60_000;

export class DecodeThread {
  counters: Record<string, DecoderCounters> = {};
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

  constructor(private readonly entry: URL, private readonly data: DecodeThreadData, private readonly log: Logger) {
    this.zone = data.zone;
    this.spawn();
  }

  private spawn(): void {
    const w = new Worker(this.entry, { workerData: { ...this.data, zone: this.zone } satisfies DecodeThreadData, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
    this.worker = w;
    w.on('message', (m: FromDecodeThread) => {
      if (m.type === 'decoded') {
        this.counters = m.counters;
        const q = this.waiting.get(m.id);
        if (!q) return;
        this.waiting.delete(m.id);
        const out: DecodedLines = new Array(q.size);
        for (const i of q.index) out[i] = [];
        for (const [i, s] of m.found) out[q.index[i]] = s;
        q.resolve(out);
      } else if (m.type === 'ready') {
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
      this.spawn();
      for (const q of this.waiting.values()) this.worker.postMessage(q.msg satisfies ToDecodeThread);
    });
  }

  private fail(err: Error): void {
    this.closed = true;
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
      this.waiting.set(msg.id, { msg, index, size: lines.length, resolve, reject });
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
    await this.worker.terminate();
  }
}
