/**
 * The sink every source writes to: decodes lines into sightings and commits them, with the file
 * checkpoints and source positions of the same lines, in one SQLite transaction per batch. A
 * commit group (one HTTP request, one lease-file snapshot) is never split across transactions,
 * and its `committed` callback runs only after its transaction is durable. Batching keeps the write
 * rate high; the high-water mark makes sources pause (TCP reads, file reads) instead of growing
 * memory when the inventory is slow.
 *
 * With a decode thread (config `ingest.decodeThread`), header parsing, detection and parsing run
 * on the second core: batches go out and come back in order, and are committed here in that order,
 * so file checkpoints still advance only with the sightings of the lines before them.
 */
import type { Logger } from '../log.js';
import type { ApplyResult, Inventory } from '../inventory/inventory.js';
import { emptyDecoderCounters, type DecoderCounters } from '../parsers/decoder.js';
import type { ParserRegistry } from '../parsers/registry.js';
import { placeAtReceipt, type Sighting } from '../sighting.js';
import { LogLimit } from '../util/log-limit.js';
import type { Claims } from '../parsers/plugin.js';
import { Prefilter } from '../parsers/prefilter.js';
import type { CommitGroup, FileCheckpoint, LineSink, RawLine, SourcePosition, UnclaimedLines } from '../sources/types.js';
import type { StoreHealth } from '../store/health.js';
import { Decoders } from './decoders.js';
import { LineRepeats } from './repeats.js';
import { DecodeThread, DecodeThreadGone, decodeThreadEntry, type DecodedLines, type DecodeWatchdogFigures } from './decode-client.js';

export interface IngestOptions {
  zone: string;
  /** buffered lines above which push() asks the source to pause */
  highWater?: number;
  /**
   * buffered characters (the lines' text) above which push() asks the source to pause: highWater
   * counts lines of any length (a file line may be 1 MiB), this bounds the memory they take
   */
  highWaterChars?: number;
  /** most lines per transaction */
  maxBatch?: number;
  /** where failed and recovered writes are reported (/healthz, metrics) */
  storeHealth?: StoreHealth;
  /**
   * Cluster mode: write the batch here (the PostgreSQL inbox, with the checkpoints and positions in
   * the same transaction) instead of applying it; the leader applies it later, so no results and no
   * `committed` callback here.
   */
  append?: AppendBatch;
  /** decode in a worker thread (header, detection, parsing); commits stay on this thread */
  decodeThread?: boolean;
  /** seconds a plug-in may take on one line in the thread before its watchdog ends it (default LINE_TIMEOUT_MS) */
  decodeLineTimeoutS?: number;
  /** the user's parser plug-in directory, which the decode thread loads too */
  parsersDirectory?: string;
}

/** A sighting with the line it came from, for the cluster inbox's duplicate key. */
export interface IngestedSighting {
  sighting: Sighting;
  /** the line as received (a line yielding several sightings: suffixed with the sighting's index) */
  raw?: string;
  /** sender address (network inputs) */
  sender?: string;
  /** `udp:5514`, `file:/var/log/dhcpd.log` */
  source: string;
}

/**
 * A line as the cluster inbox keys it (with its origin and time): one sender's line delivered to
 * every node is one key. An identical line written twice within one timestamp (ACK, RELEASE, ACK in
 * one second) is two lines, not a duplicate: a tailed file's line carries where it ends in its file
 * (one node tails a file), a network line its occurrence among identical lines from its sender
 * (`repeat`, repeats.ts; the first keeps the plain key). `k`: the sighting's index when the line
 * yields several.
 */
export function inboxRaw(l: Pick<RawLine, 'text' | 'sightings' | 'checkpoint'>, k?: number, repeat = 1): string | undefined {
  if (l.sightings) return undefined; // decoded by the source itself (a lease database): its sighting stands in
  const at = l.checkpoint ? `\0${l.checkpoint.ino}:${l.checkpoint.offset}` : repeat > 1 ? `\0#${repeat}` : '';
  return `${l.text}${at}${k !== undefined ? `\0${k}` : ''}`;
}

export type AppendBatch = (entries: IngestedSighting[], checkpoints: FileCheckpoint[], positions: SourcePosition[]) => Promise<void>;

export interface IngestCounters {
  /** lines decoded and committed, and lines sources reported as no parser's (`unclaimed`) */
  lines: number;
  sightings: number;
  commits: number;
  commitErrors: number;
  /**
   * lines the store refused for their content (a PostgreSQL data error: a value text cannot hold):
   * their sightings dropped (a file's checkpoint still moves past them), logged with source and line
   */
  refusedLines: number;
  /** lines waiting for the next commit (buffered, or being decoded) */
  pending: number;
  /** committed sightings by format, then kind (for /metrics) */
  byFormatKind: Record<string, Record<string, number>>;
  /** sightings of live lines timed more than a few minutes after their receipt: placed at receipt (placeAtReceipt) */
  aheadOfReceipt: number;
  /** sightings of stored lines (a file's) timed more than a few minutes after their reading: placed at their reading (placeAtReceipt) */
  aheadOfReading: number;
}

export type CommittedHandler = (sightings: Sighting[], results: ApplyResult[]) => void | Promise<void>;

/** A batch in the commit queue. */
interface Batch {
  lines: RawLine[];
  /** decoded (by the thread), or to be decoded as it commits */
  ready: boolean;
  /** the decode thread's answer; undefined: decode on this thread */
  decoded?: DecodedLines;
  /** settles (never rejects) once the batch is ready */
  done: Promise<void>;
  /** characters of its lines' text */
  chars: number;
  /** the store refused its content: committed without its sightings and positions (only file checkpoints move), its groups failed */
  refused?: boolean;
}

/** a batch's commit: done, to be retried (the store is unreachable or busy), or refused for its content */
type CommitOutcome = 'ok' | 'retry' | { refused: Error };

/**
 * PostgreSQL SQLSTATE class 22, data exception (22P05: a NUL in text or jsonb; 22021: bytes that
 * are not UTF-8; 22P02: bad input syntax): the batch's content is at fault, not the connection, so
 * retrying it as it is would fail for ever and hold every input behind it.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code);
}

const charsOf = (lines: RawLine[]): number => {
  let n = 0;
  for (const l of lines) n += l.text.length;
  return n;
};

/** batches out to the decode thread at once: one being decoded, one queued behind it */
const MAX_IN_FLIGHT = 2;

export class Ingest implements LineSink {
  readonly counters: IngestCounters = { lines: 0, sightings: 0, commits: 0, commitErrors: 0, refusedLines: 0, pending: 0, byFormatKind: {}, aheadOfReceipt: 0, aheadOfReading: 0 };
  /** a sender's lines timed ahead are counted each, logged once a minute */
  private readonly aheadLog = new LogLimit();
  private buf: RawLine[] = [];
  /** characters in buf, and in the batches of the queue */
  private bufChars = 0;
  private queuedChars = 0;
  private readonly decoders: Decoders;
  private thread: DecodeThread | undefined;
  /** batches cut from the buffer, committed in this order (with a decode thread: decoded there first) */
  private queue: Batch[] = [];
  private queuedLines = 0;
  private drainers: (() => void)[] = [];
  private scheduled = false;
  private readonly highWater: number;
  private readonly highWaterChars: number;
  private readonly maxBatch: number;
  private retryTimer: NodeJS.Timeout | undefined;
  /** the commit pass in progress: one at a time, so batches commit in order */
  private committing: Promise<boolean> | undefined;
  private closing = false;
  /** cluster mode: each network line's occurrence among identical ones from its sender (the inbox key) */
  private readonly repeats = new LineRepeats();
  /** what a line must contain for some parser to claim it under format auto (undefined: anything may be claimed) */
  private readonly autoClaims: Claims | undefined;
  /** lines sources tested against those claims themselves and did not push: decoded, unrecognized */
  private readonly unclaimedCounters: DecoderCounters = emptyDecoderCounters();

  constructor(
    registry: ParserRegistry,
    private readonly inventory: Inventory,
    private readonly onCommitted: CommittedHandler,
    private readonly log: Logger,
    private readonly opts: IngestOptions,
  ) {
    this.highWater = opts.highWater ?? 20_000;
    this.highWaterChars = opts.highWaterChars ?? 32 * 1024 * 1024;
    this.maxBatch = opts.maxBatch ?? 5_000;
    this.decoders = new Decoders(registry, opts.zone);
    this.autoClaims = Prefilter.of(registry.list())?.claims;
    if (opts.decodeThread) {
      const entry = decodeThreadEntry();
      if (entry) this.thread = new DecodeThread(entry, { zone: opts.zone, parsersDirectory: opts.parsersDirectory }, log, opts.decodeLineTimeoutS !== undefined ? { lineTimeoutMs: opts.decodeLineTimeoutS * 1000 } : {});
      else log.warn('ingest.decodeThread: no compiled decode thread (run npx tsc); decoding on the main thread');
    }
  }

  /** Settles once the decode thread (if any) has loaded its parsers, so inputs start into a ready pipeline. */
  async ready(): Promise<void> {
    await this.thread?.ready;
    if (this.thread?.failed) this.log.error('the decode thread could not start; decoding on the main thread');
  }

  /** where lines are decoded now */
  get decodesIn(): 'thread' | 'main' {
    return this.thread && !this.thread.failed ? 'thread' : 'main';
  }

  /** A new zone for stamps without one: decoders are rebuilt (their per-source state starts over). */
  setZone(zone: string): void {
    if (zone === this.opts.zone) return;
    this.opts.zone = zone;
    this.decoders.setZone(zone);
    this.thread?.setZone(zone);
  }

  decoderCounters(): DecoderCounters[] {
    const mine = [...Object.values(this.decoders.counters()), this.unclaimedCounters];
    return this.thread ? [...Object.values(this.thread.counters), ...mine] : mine;
  }

  /** Under format auto, a line no parser claims is one the prefilter rejects: a source may test that itself. */
  claims(format: string): Claims | undefined {
    return format === 'auto' ? this.autoClaims : undefined;
  }

  unclaimed(u: UnclaimedLines): void {
    this.counters.lines += u.count;
    this.unclaimedCounters.lines += u.count;
    this.unclaimedCounters.unrecognized += u.count;
  }

  private get backlog(): number {
    return this.buf.length + this.queuedLines;
  }

  /** over either high-water mark: sources pause */
  private get full(): boolean {
    return this.backlog >= this.highWater || this.bufChars + this.queuedChars >= this.highWaterChars;
  }

  push(line: RawLine): boolean {
    this.buf.push(line);
    this.bufChars += line.text.length;
    this.counters.pending = this.backlog;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.pump());
    }
    return !this.full;
  }

  onDrain(cb: () => void): void {
    this.drainers.push(cb);
  }

  private drained(): void {
    const d = this.drainers;
    this.drainers = [];
    for (const cb of d) cb();
  }

  /** The next batch off the buffer: at most maxBatch lines, a commit group never split. */
  private cut(): RawLine[] {
    let end = Math.min(this.buf.length, this.maxBatch);
    while (end < this.buf.length && this.buf[end].group !== undefined && this.buf[end].group === this.buf[end - 1].group) end++;
    const batch = this.buf.slice(0, end);
    this.buf = this.buf.slice(end);
    return batch;
  }

  /**
   * A refused batch in two at the commit group nearest its middle (a group is never split), or
   * undefined when it is one line or one group: that one is what the store refuses.
   */
  private split(b: Batch): [Batch, Batch] | undefined {
    const n = b.lines.length;
    let best = -1;
    for (let i = 1; i < n; i++) {
      if (b.lines[i].group !== undefined && b.lines[i].group === b.lines[i - 1].group) continue;
      if (best < 0 || Math.abs(2 * i - n) < Math.abs(2 * best - n)) best = i;
    }
    if (best < 0) return undefined;
    const part = (from: number, to: number): Batch => {
      const lines = b.lines.slice(from, to);
      return { lines, ready: true, decoded: b.decoded?.slice(from, to), done: Promise.resolve(), chars: charsOf(lines) };
    };
    return [part(0, best), part(best, n)];
  }

  /** The store refused one line (or one group's lines) for their content: counted, said, their groups failed; committed next without sightings. */
  private refuse(b: Batch, err: Error): void {
    b.refused = true;
    this.counters.refusedLines += b.lines.length;
    const first = b.lines[0];
    this.log.warn({
      source: first.source, line: first.line, lines: b.lines.length, sender: first.sender,
      err: { message: err.message, code: (err as { code?: string }).code },
    }, 'the state database refused a line for its content; its sightings are dropped (counted as refused lines)');
    const failure = Object.assign(new Error(`the state database refused the data: ${err.message}`), { refused: true });
    for (const g of new Set(b.lines.map((l) => l.group))) g?.failed?.(failure);
  }

  /**
   * Move buffered lines into the commit queue. Without a decode thread every batch is ready at
   * once (decoded as it commits). With one, a full batch goes out whenever fewer than two are out,
   * a partial one only when none is (batches stay large under load, latency low when quiet).
   */
  private pump(force = false): void {
    this.scheduled = false;
    const thread = this.thread && !this.thread.failed ? this.thread : undefined;
    while (this.buf.length) {
      const out = this.queue.filter((b) => !b.ready).length;
      if (thread && !(out < MAX_IN_FLIGHT && (force || out === 0 || this.buf.length >= this.maxBatch))) break;
      const lines = this.cut();
      const chars = charsOf(lines);
      this.bufChars -= chars;
      this.queuedChars += chars;
      const b: Batch = { lines, ready: !thread, done: Promise.resolve(), chars };
      if (thread) {
        b.done = thread.decode(lines).then((d) => {
          b.decoded = d;
        }, (err: Error) => {
          // the thread is gone for good: decode here (its per-source parser state is lost, nothing
          // else), but not the lines its watchdog dropped
          this.log.error({ err: { message: err.message } }, 'decoding on the main thread from now on');
          b.decoded = this.decodeHere(lines, err instanceof DecodeThreadGone ? err.dropped : []);
        }).then(() => {
          b.ready = true;
          void this.commitAll();
        });
      }
      this.queue.push(b);
      this.queuedLines += lines.length;
    }
    this.counters.pending = this.backlog;
    void this.commitAll();
  }

  /** Commit the ready batches at the head of the queue, in order, one pass at a time. Resolves false when a commit failed (the batch is kept for a retry). */
  private commitAll(): Promise<boolean> {
    this.committing ??= this.commitHead().then((ok) => {
      this.committing = undefined;
      // a batch that became ready as the pass ended
      if (ok && !this.closing && !this.retryTimer && this.queue[0]?.ready) void this.commitAll();
      return ok;
    });
    return this.committing;
  }

  private async commitHead(): Promise<boolean> {
    while (this.queue.length && this.queue[0].ready && !this.retryTimer) {
      const b = this.queue[0];
      const r = await this.commit(b);
      if (r === 'retry') {
        if (!this.closing) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            void this.commitAll();
          }, 1000);
        }
        return false;
      }
      if (r !== 'ok') {
        // refused for its content: halve until the line (or group) at fault is alone, then drop
        // its sightings; the others commit now, not a second later
        if (!b.refused) {
          const parts = this.split(b);
          if (parts) this.queue.splice(0, 1, ...parts);
          else this.refuse(b, r.refused);
          continue;
        }
        // even without its sightings (a checkpoint the store will not take): the lines are let go
        this.log.warn({ source: b.lines[0].source, line: b.lines[0].line, err: { message: r.refused.message } }, 'the state database refused a checkpoint; going on without it');
      }
      this.queue.shift();
      this.queuedLines -= b.lines.length;
      this.queuedChars -= b.chars;
      this.counters.pending = this.backlog;
      if (!this.closing && this.buf.length) this.pump();
    }
    if (this.backlog <= this.highWater / 2 && this.bufChars + this.queuedChars <= this.highWaterChars / 2) this.drained();
    return true;
  }

  /**
   * A line's sighting timed ahead of its receipt (a live line) or its reading (a stored one, a
   * file's) placed then (in place: a retried batch is not moved or counted twice), counted, said.
   */
  private placeAhead(s: Sighting, l: RawLine, live: boolean): void {
    const ahead = placeAtReceipt(s, l.receivedAt.getTime());
    if (!ahead) return;
    if (live) this.counters.aheadOfReceipt++;
    else this.counters.aheadOfReading++;
    const n = this.aheadLog.take(live ? 'ahead' : 'stored');
    if (n === undefined) return;
    const mins = Math.round(ahead / 60_000);
    const said = `(${n} such line(s) since the last of these messages)`;
    if (live) {
      this.log.warn({ sender: l.sender, source: l.source, ip: s.ip, aheadS: Math.round(ahead / 1000), count: n },
        `a line from ${l.sender} is timed ${mins} min after it came: placed when it came ${said}; its sender's clock runs ahead, or the time is forged`);
    } else {
      this.log.warn({ source: l.source, line: l.line, ip: s.ip, aheadS: Math.round(ahead / 1000), at: s.at, count: n },
        `${l.source}${l.line !== undefined ? ` line ${l.line}` : ''} is timed ${mins} min after it was read: placed when it was read ${said}; its writer's clock runs ahead (or writes another zone's time than timezone:), or the time is forged`);
    }
  }

  /** the decode thread's watchdog figures (lines cut off, plug-ins turned off); undefined without a decode thread */
  decodeWatchdog(): DecodeWatchdogFigures | undefined {
    return this.thread?.watchdogFigures;
  }

  /** the decode thread's disabled plug-ins were turned off in `decoders` (once it failed) */
  private offHere = false;

  /** Decode on this thread, all but the lines at `dropped` (the watchdog's: they give nothing). */
  private decodeHere(lines: RawLine[], dropped: number[] = []): DecodedLines {
    if (this.thread?.failed && !this.offHere) {
      // no watchdog here: what stalled the thread must never run on this one
      this.offHere = true;
      this.decoders.disable(this.thread.disabledPlugins, 'it stalled or ended the decode thread, and the main thread decoding now has no watchdog');
    }
    const skip = new Set(dropped);
    return lines.map((l, i) => (l.sightings ? undefined : skip.has(i) ? [] : this.decoders.get(l.format ?? 'auto').decode(l.text, { receivedAt: l.receivedAt, source: l.source, line: l.line, syslog: l.syslog }).sightings));
  }

  /** Commit one batch with its checkpoints (a refused one: only them); decoded here unless the decode thread did. */
  private async commit(b: Batch): Promise<CommitOutcome> {
    const batch = b.lines;
    // kept on the batch: a retry or a split does not decode again (parsers keep per-source state)
    const decoded: DecodedLines = b.refused ? [] : (b.decoded ??= this.decodeHere(batch));
    const sightings: Sighting[] = [];
    const entries: IngestedSighting[] = [];
    const checkpoints = new Map<string, FileCheckpoint>();
    const groups = new Set<CommitGroup>();
    const positions = new Map<string, SourcePosition>();
    for (let i = 0; i < batch.length; i++) {
      const l = batch[i];
      const found = b.refused ? [] : (l.sightings ?? decoded[i] ?? []);
      // received now over the network (a file's line, a lease file's, is read at any time later)
      const live = l.sender !== undefined && l.line === undefined && !l.checkpoint;
      found.forEach((s, k) => {
        if (l.group?.accept && !l.group.accept(s)) return;
        this.placeAhead(s, l, live);
        sightings.push(s);
        // sightings a source decoded itself (a lease-file snapshot) have no line of their own
        if (this.opts.append) entries.push({ sighting: s, raw: inboxRaw(l, found.length > 1 ? k : undefined, l.checkpoint || l.sightings ? 1 : this.repeats.occurrence(l)), sender: l.sender, source: l.source });
      });
      if (l.checkpoint) checkpoints.set(l.checkpoint.path, l.checkpoint);
      // (a refused group was failed: its position, an HTTP request's stored answer, is not written)
      if (l.group && !b.refused) {
        groups.add(l.group);
        if (l.group.position) positions.set(l.group.position.key, l.group.position);
      }
    }
    let results: ApplyResult[] | undefined;
    try {
      if (this.opts.append) await this.opts.append(entries, [...checkpoints.values()], [...positions.values()]);
      else results = await this.inventory.commitBatch(sightings, [...checkpoints.values()], Date.now(), [...positions.values()]);
    } catch (err) {
      this.counters.commitErrors++;
      if (isDataError(err)) return { refused: err as Error };
      if (this.opts.storeHealth) this.opts.storeHealth.failed('ingest', err, `keeping ${this.backlog} lines and retrying every second`);
      else this.log.error({ err: { message: (err as Error).message } }, 'could not write to the state database; keeping the lines and retrying');
      return 'retry';
    }
    this.opts.storeHealth?.succeeded('ingest');
    this.counters.lines += batch.length;
    this.counters.sightings += sightings.length;
    this.counters.commits++;
    for (const s of sightings) {
      const k = (this.counters.byFormatKind[s.format] ??= {});
      k[s.kind] = (k[s.kind] ?? 0) + 1;
    }
    // the lines are committed: a failure downstream (the scheduler's decisions) must not lose or repeat them
    for (const g of groups) g.committed?.();
    if (sightings.length && results) {
      try {
        await this.onCommitted(sightings, results);
        this.opts.storeHealth?.succeeded('scheduler');
      } catch (err) {
        this.opts.storeHealth?.failed('scheduler', err, 'the next sweep evaluates these devices again');
        if (!this.opts.storeHealth) this.log.error({ err: { message: (err as Error).message } }, 'handling committed sightings failed');
      }
    }
    return 'ok';
  }

  /** Commit everything received (decoded first), then stop the decode thread. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    let ok = true;
    while (ok && (this.buf.length || this.queue.length)) {
      this.pump(true);
      await Promise.all(this.queue.map((b) => b.done));
      if (this.committing) await this.committing;
      ok = await this.commitAll();
    }
    await this.thread?.close();
    if (ok) return;
    // the database refuses: whoever waits for these lines (an HTTP client) is told, and retries
    const err = new Error('the state database refused the commit at shutdown');
    const left = [...this.queue.flatMap((b) => b.lines), ...this.buf];
    for (const g of new Set(left.map((l) => l.group))) g?.failed?.(err);
  }
}
