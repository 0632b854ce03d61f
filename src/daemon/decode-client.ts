/**
 * The main thread's side of the decode thread: sends batches of raw lines, gets their sightings
 * back in the order sent (one thread, one queue, so each source's lines are decoded in order). If
 * the thread dies it is started again and the batches it had not answered are sent again.
 *
 * A watchdog reads which line the thread is on (shared cells, decode-protocol.ts): a line it stays
 * on for lineTimeout(its length) (a plug-in's regex backtracking without end would hold every
 * input behind it for good) has the thread terminated and started again, that line dropped, counted
 * and logged with the parser that was at work, and the unanswered batches sent again without it.
 * A line the thread ends on (a plug-in's process.exit, running its heap out of memory) is dropped
 * the same way: sent again, it would end every new thread, and then the main thread. A thread a
 * user plug-in ended from a timer or promise it made (its line already answered) is put down to it.
 * A restart loses every source's parser state (it lives in the thread's heap: an OpenVPN session's
 * inner address, a DHCP REQUEST awaiting its ACK), which is said in the log each time. A user
 * plug-in that stalls or ends the thread MAX_STALLS times within STALL_WINDOW_MS is disabled until
 * the daemon restarts (logged as an error naming it; /metrics and the status page list it), so one
 * crafted line sent again and again cannot hold every source and reset its state without end.
 * Built-in parsers are never disabled. When the thread is given up (a restart that cannot load the
 * plug-ins, more than MAX_RESTARTS exits no parser is to blame for) the ingest decodes on the main
 * thread, which has no watchdog: the lines the watchdog dropped stay dropped
 * (DecodeThreadGone.dropped) and every user plug-in that stalled or ended a thread even once is
 * disabled there too (disabledPlugins).
 */
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { WORKER_YOUNG_MB, threadEntry } from '../util/thread-entry.js';
import { emptyDecoderCounters, type DecoderCounters } from '../parsers/decoder.js';
import type { Sighting } from '../sighting.js';
import type { RawLine } from '../sources/types.js';
import { disabledWhy } from './decoders.js';
import {
  PROGRESS_BATCH, PROGRESS_CELLS, PROGRESS_ENDED_IN, PROGRESS_LINE, PROGRESS_PLUGIN, PROGRESS_SEQ,
  type DecodeBatchMessage, type DecodeThreadData, type FromDecodeThread, type ToDecodeThread,
} from './decode-protocol.js';

/**
 * Lets V8 finish a regex that backtracks too much (50,000 backtracks) on its linear engine:
 * `user=((?:\w+\s?)+)$` against 26 letters and a `!` went from 1 s (x2.7 a letter) to a few ms.
 * Process-wide, and only for regexes created after it (Node 26: the literal must be evaluated
 * after; a regex compiled before keeps no limit), so it is set when this module loads, before the
 * daemon or the decode thread loads any plug-in. Regexes the linear engine cannot run still
 * backtrack: those with the `i`, `u`, `v` or `d` flag (`/user=((?:\w+\s?)+)$/i`: 24 letters
 * ~2 s, as without the flag), backreferences, lookarounds or counted repetitions (`{1,20}`). The
 * watchdog is for them.
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

/** A batch's rejection once the thread is given up: decode it elsewhere, except `dropped`. */
export class DecodeThreadGone extends Error {
  /** indexes in the batch of the lines the watchdog dropped (each stalled or ended a thread): never to be decoded */
  readonly dropped: number[];

  constructor(message: string, dropped: number[] = []) {
    super(message);
    this.dropped = dropped;
  }
}

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

/**
 * exits within RESTART_WINDOW_MS beyond which the thread is given up (the ingest decodes in-line);
 * an exit put down to a line or a plug-in (cutOff) is not one of them
 */
const MAX_RESTARTS = 5;
/** the window: a thread that exits now and then, over weeks, is started again each time */
const RESTART_WINDOW_MS = 10 * 60_000;
/**
 * The longest a short line may take; a long one is given LINE_TIMEOUT_MS_PER_MIB more per MiB
 * (lineTimeout). A line takes microseconds, but a legitimate 16 MiB one (a DHCPACK whose host name
 * is 16 MiB of control characters, isc-dhcpd) 2–2.4 s on an idle 2-core machine, 3.4–5.2 s loaded
 * and 12 s with two busy loops on its 2 cores: 10 s flat dropped it. The clock runs from when the
 * main thread first sees the thread on a line, so a main thread that was itself held up does not
 * count against the decode thread.
 */
export const LINE_TIMEOUT_MS = 10_000;
/** what a line's every MiB (2^20 UTF-16 units) adds to its bound: 16 MiB → 10 + 32 s */
export const LINE_TIMEOUT_MS_PER_MIB = 2_000;

/** The longest a line of `chars` UTF-16 units may take, `baseMs` for a short one. */
export function lineTimeout(chars: number, baseMs = LINE_TIMEOUT_MS): number {
  return baseMs + Math.ceil((chars / 2 ** 20) * LINE_TIMEOUT_MS_PER_MIB);
}

/** stalls and exits of one user plug-in within STALL_WINDOW_MS that disable it (until the daemon restarts) */
export const MAX_STALLS = 3;
const STALL_WINDOW_MS = 60 * 60_000;

/**
 * why a plug-in was disabled: `stalls`, `exits`, the kind of the MAX_STALLS-th stall or exit
 * within the window; `threadGivenUp`, it stalled or ended a thread fewer times, and the thread was
 * given up (the main thread, which then decodes, has no watchdog)
 */
export type DisabledReason = 'stalls' | 'exits' | 'threadGivenUp';

/** a user plug-in the watchdog disabled: when, why, and its stalls and exits within the window */
export interface DisabledPlugin {
  plugin: string;
  /** ms since the epoch */
  at: number;
  reason: DisabledReason;
  /** lines it stayed on past their bound */
  stalls: number;
  /** threads it ended (process.exit, an uncaught error or rejection, out of memory) */
  exits: number;
  windowMin: number;
}

/** How to fix a plug-in disabled for what it did (`Fix it to …`). */
function fixIt(p: DisabledPlugin): string {
  const linear = 'to run in linear time in the line (no nested quantifiers, backreferences, lookarounds; no i, u, v or d flag on such a regex: parsers/README.md, rule 2)';
  const stay = 'never to exit, throw from a timer or promise, or allocate without bound (parsers/README.md, rules 1 and 3)';
  return `Fix it ${[p.stalls ? linear : '', p.exits ? stay : ''].filter(Boolean).join(' and ')}`;
}

/** what the watchdog did, for /metrics and the status page */
export interface DecodeWatchdogFigures {
  /** lines dropped because a parser never finished them, by source */
  timedOut: Record<string, number>;
  /** lines dropped because the thread ended on them (process.exit, out of memory), by source */
  exited: Record<string, number>;
  /** the user plug-ins the thread loaded (each may be disabled) */
  userPlugins: string[];
  disabled: DisabledPlugin[];
}

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
  /** lines dropped because the thread ended on them, by source */
  readonly exited: Record<string, number> = {};
  /** when each user plug-in stalled or ended the thread (within STALL_WINDOW_MS) */
  private readonly blamed = new Map<string, { t: number; how: 'stall' | 'exit' }[]>();
  /** user plug-ins disabled for stalling or ending the thread MAX_STALLS times (data.disabledPlugins) */
  private readonly disabled = new Map<string, DisabledPlugin>();
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
  private userPlugins = new Set<string>();
  /** the line the watchdog last saw the thread on (PROGRESS_SEQ), and since when */
  private seenSeq = -1;
  private seenAt = 0;
  private readonly watchdog: NodeJS.Timeout;
  /** the bound of a short line (lineTimeout) */
  private readonly lineTimeoutMs: number;
  /** the thread's old generation, MiB (V8's default when undefined: about the main thread's) */
  private readonly oldGenerationMb: number | undefined;
  /** the running thread ran out of memory (its 'error' before its 'exit') */
  private outOfMemory = false;

  /** opts: a short line's bound, and a heap limit (tests run a thread out of memory with a small one) */
  constructor(private readonly entry: URL, private readonly data: DecodeThreadData, private readonly log: Logger, opts: { lineTimeoutMs?: number; oldGenerationMb?: number } = {}) {
    this.zone = data.zone;
    this.lineTimeoutMs = opts.lineTimeoutMs ?? LINE_TIMEOUT_MS;
    this.oldGenerationMb = opts.oldGenerationMb;
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

  /**
   * user plug-ins the watchdog disabled (each stalled or ended the thread MAX_STALLS times within an
   * hour); once the thread is given up (failed), every one that stalled or ended it at all
   */
  get disabledPlugins(): string[] {
    return [...this.disabled.keys()];
  }

  /** a copy: the lines dropped by source, the user plug-ins and those disabled (when, why) */
  get watchdogFigures(): DecodeWatchdogFigures {
    return {
      timedOut: { ...this.timedOut }, exited: { ...this.exited }, userPlugins: [...this.userPlugins], disabled: [...this.disabled.values()].map((p) => ({ ...p })),
    };
  }

  private spawn(): void {
    const progress = new SharedArrayBuffer(PROGRESS_CELLS * 4);
    const w = new Worker(this.entry, {
      workerData: { ...this.data, zone: this.zone, progress, disabledPlugins: this.disabledPlugins } satisfies DecodeThreadData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB, ...(this.oldGenerationMb ? { maxOldGenerationSizeMb: this.oldGenerationMb } : {}) },
    });
    this.worker = w;
    this.progress = new Int32Array(progress);
    this.seenSeq = -1;
    this.outOfMemory = false;
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
        this.userPlugins = new Set(m.userPlugins);
        this.markReady();
      } else if (m.type === 'failed') {
        this.fail(new Error(`the decode thread could not start: ${m.message}`));
      }
    });
    w.on('error', (err) => {
      if (w === this.worker && (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY') this.outOfMemory = true;
      this.log.error({ err: { message: err.message } }, 'the decode thread failed');
    });
    w.on('exit', (code) => {
      if (this.closed || w !== this.worker) return;
      // on a line (its batch unanswered), or in a user plug-in's timer: sent again, or left to
      // count as an exit, the same line or plug-in would end thread after thread, then the main one
      const { q } = this.lineNow();
      const ended = Atomics.load(this.progress, PROGRESS_ENDED_IN);
      if (q || (ended > 0 && this.userPlugins.has(this.plugins[ended - 1]))) return this.cutOff({ code, inPlugin: q ? undefined : ended });
      const now = Date.now();
      this.exits = [...this.exits.filter((t) => now - t < RESTART_WINDOW_MS), now];
      if (this.exits.length > MAX_RESTARTS) return this.fail(new Error(`the decode thread exited (code ${code}) ${this.exits.length} times within ${RESTART_WINDOW_MS / 60_000} min`));
      this.log.error({ code, pending: this.waiting.size }, 'the decode thread exited; starting it again and resending its batches');
      this.respawn();
    });
  }

  /** A new thread for the one that ended (or is being ended), sent every unanswered batch. */
  private respawn(): void {
    this.log.warn({ pending: this.waiting.size }, 'decode thread restarted: every source\'s parser state was reset (an OpenVPN session\'s inner address, a DHCP REQUEST awaiting its ACK): a session that ends soon may be reported without its inner address (0.0.0.0)');
    for (const [f, c] of Object.entries(this.current)) this.past[f] = addCounters(this.past[f], c);
    this.current = {};
    this.spawn();
    for (const q of this.waiting.values()) this.worker.postMessage(q.msg satisfies ToDecodeThread);
  }

  /** the line the thread's cells point at: its batch, its index there, the raw line */
  private lineNow(): { q: Waiting | undefined; k: number; l: RawLine | undefined } {
    const q = this.waiting.get(Atomics.load(this.progress, PROGRESS_BATCH));
    const k = Atomics.load(this.progress, PROGRESS_LINE);
    return { q, k, l: q?.lines[q.index[k]] };
  }

  /** Every tick: has the thread stayed on one line for its bound (lineTimeout)? */
  private watch(): void {
    if (this.closed) return;
    const seq = Atomics.load(this.progress, PROGRESS_SEQ);
    const now = Date.now();
    if (seq !== this.seenSeq || Atomics.load(this.progress, PROGRESS_BATCH) === 0) {
      this.seenSeq = seq;
      this.seenAt = now;
      return;
    }
    if (now - this.seenAt < this.lineTimeoutMs) return;
    const { l } = this.lineNow();
    if (now - this.seenAt >= lineTimeout(l?.text.length ?? 0, this.lineTimeoutMs)) this.cutOff();
  }

  /**
   * The thread is stuck on one line (no `exit`), or ended (`exit.code`) on one line or in a user
   * plug-in's timer or promise (`exit.inPlugin`, its number: the line was answered): drop that line
   * (counted, logged), blame the plug-in, end the thread (when stuck), start another.
   */
  private cutOff(exit?: { code: number; inPlugin?: number }): void {
    const pk = exit?.inPlugin ?? Atomics.load(this.progress, PROGRESS_PLUGIN);
    const plugin = pk > 0 ? this.plugins[pk - 1] : undefined;
    const { q, k, l } = exit?.inPlugin ? { q: undefined, k: 0, l: undefined } : this.lineNow();
    if (q && l) {
      // the line is not sent again; the lines around it are (their results were the old thread's)
      (q.msg.skip ??= []).push(k);
      const by = exit ? this.exited : this.timedOut;
      by[l.source] = (by[l.source] ?? 0) + 1;
      const f = l.format ?? 'auto';
      const c = (this.past[f] ??= emptyDecoderCounters());
      c.lines++;
      c.parserErrors++;
    }
    const chars = l?.text.length ?? 0;
    const timeoutS = lineTimeout(chars, this.lineTimeoutMs) / 1000;
    const who = plugin ? `parser ${plugin}` : 'the decode thread';
    const how = this.outOfMemory ? 'ran out of memory' : `exited (code ${exit?.code})`;
    // where the line came from and its length, not its text (a sender's, up to 16 MiB)
    this.log.error({
      plugin: plugin ?? null, source: l?.source, sender: l?.sender, line: l?.line, chars: l?.text.length,
      ...(exit ? { code: exit.code, outOfMemory: this.outOfMemory } : { timeoutS }),
    }, !exit
      ? `${who} took over ${timeoutS} s on one line of ${chars} characters (a regex that backtracks, or a machine too loaded for a line this long): the line is dropped (counted as a parser error) and the decode thread started again`
      : l
        ? `the decode thread ${how} ${plugin ? `in parser ${plugin} ` : ''}on one line of ${chars} characters (process.exit, or a line that makes it allocate without bound): the line is dropped (counted as a parser error) and the decode thread started again`
        : `the decode thread ${how} in a timer or promise of parser ${plugin} (process.exit, or an error thrown there): the lines it was given were decoded; the decode thread is started again`);
    if (plugin && this.userPlugins.has(plugin) && !this.disabled.has(plugin)) {
      const now = Date.now();
      const hits = [...(this.blamed.get(plugin) ?? []).filter((h) => now - h.t < STALL_WINDOW_MS), { t: now, how: exit ? 'exit' as const : 'stall' as const }];
      this.blamed.set(plugin, hits);
      if (hits.length >= MAX_STALLS) {
        const off = this.disable(plugin, exit ? 'exits' : 'stalls', now);
        this.log.error({ plugin, stalls: off.stalls, exits: off.exits, windowMin: off.windowMin },
          `parser plug-in ${plugin} ${disabledWhy(off)}: it is disabled until the daemon restarts ` +
          `(under format auto its lines are left to the other parsers or unrecognized; under format ${plugin} they are dropped, counted as parser errors). ${fixIt(off)} and restart the daemon`);
      }
    }
    const old = this.worker;
    this.respawn();
    if (!exit) void old.terminate();
  }

  /** `plugin` off from now on (the next thread starts it disabled), with its stalls and exits in the window */
  private disable(plugin: string, reason: DisabledReason, now: number): DisabledPlugin {
    const hits = this.blamed.get(plugin) ?? [];
    const count = (how: 'stall' | 'exit') => hits.filter((h) => h.how === how).length;
    const off: DisabledPlugin = { plugin, at: now, reason, stalls: count('stall'), exits: count('exit'), windowMin: STALL_WINDOW_MS / 60_000 };
    this.disabled.set(plugin, off);
    return off;
  }

  private fail(err: Error): void {
    this.closed = true;
    clearInterval(this.watchdog);
    this.markReady();
    void this.worker.terminate();
    // decoding moves to the main thread, where nothing cuts a line short: a user plug-in that
    // stalled a thread once would hold every input, the API and the scheduler there; one that
    // ended a thread would end the daemon
    const now = Date.now();
    const off: DisabledPlugin[] = [];
    for (const plugin of this.blamed.keys()) if (!this.disabled.has(plugin)) off.push(this.disable(plugin, 'threadGivenUp', now));
    if (off.length) {
      this.log.error({ plugins: off.map((p) => p.plugin), err: { message: err.message } },
        `the decode thread is given up and lines are decoded on the main thread, which has no watchdog: ${off.map((p) => `parser plug-in ${p.plugin} ${disabledWhy(p)}`).join('; ')}: disabled until the daemon restarts ` +
        `(${off.map((p) => `${p.plugin}: ${fixIt(p).replace(/^Fix/, 'fix')}`).join('; ')})`);
    }
    for (const q of this.waiting.values()) q.reject(new DecodeThreadGone(err.message, (q.msg.skip ?? []).map((k) => q.index[k])));
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
