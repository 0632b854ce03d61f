/**
 * The sink every source writes to: decodes lines into sightings and commits them, with the file
 * checkpoints and source positions of the same lines, in one SQLite transaction per batch. A
 * commit group (one HTTP request, one lease-file snapshot) is never split across transactions,
 * and its `committed` callback runs only after its transaction is durable. Batching keeps the write
 * rate high; the high-water mark makes sources pause (TCP reads, file reads) instead of growing
 * memory when the inventory is slow.
 */
import type { Logger } from '../log.js';
import type { ApplyResult, Inventory } from '../inventory/inventory.js';
import { LineDecoder } from '../parsers/decoder.js';
import type { ParserRegistry } from '../parsers/registry.js';
import type { Sighting } from '../sighting.js';
import type { CommitGroup, FileCheckpoint, LineSink, RawLine, SourcePosition } from '../sources/types.js';
import type { StoreHealth } from '../store/health.js';

export interface IngestOptions {
  zone: string;
  /** buffered lines above which push() asks the source to pause */
  highWater?: number;
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

export type AppendBatch = (entries: IngestedSighting[], checkpoints: FileCheckpoint[], positions: SourcePosition[]) => Promise<void>;

export interface IngestCounters {
  lines: number;
  sightings: number;
  commits: number;
  commitErrors: number;
  /** lines waiting for the next commit */
  pending: number;
  /** committed sightings by format, then kind (for /metrics) */
  byFormatKind: Record<string, Record<string, number>>;
}

export type CommittedHandler = (sightings: Sighting[], results: ApplyResult[]) => void | Promise<void>;

export class Ingest implements LineSink {
  readonly counters: IngestCounters = { lines: 0, sightings: 0, commits: 0, commitErrors: 0, pending: 0, byFormatKind: {} };
  private buf: RawLine[] = [];
  private readonly decoders = new Map<string, LineDecoder>();
  private drainers: (() => void)[] = [];
  private scheduled = false;
  private readonly highWater: number;
  private readonly maxBatch: number;
  private retryTimer: NodeJS.Timeout | undefined;
  /** the flush in progress: one at a time, so batches commit in order */
  private flushing: Promise<boolean> | undefined;

  constructor(
    private readonly registry: ParserRegistry,
    private readonly inventory: Inventory,
    private readonly onCommitted: CommittedHandler,
    private readonly log: Logger,
    private readonly opts: IngestOptions,
  ) {
    this.highWater = opts.highWater ?? 20_000;
    this.maxBatch = opts.maxBatch ?? 5_000;
  }

  decoder(format: string): LineDecoder {
    let d = this.decoders.get(format);
    if (!d) {
      d = new LineDecoder(this.registry, format, this.opts.zone);
      this.decoders.set(format, d);
    }
    return d;
  }

  /** A new zone for stamps without one: decoders are rebuilt (their per-source state starts over). */
  setZone(zone: string): void {
    if (zone === this.opts.zone) return;
    this.opts.zone = zone;
    this.decoders.clear();
  }

  allDecoders(): Map<string, LineDecoder> {
    return this.decoders;
  }

  push(line: RawLine): boolean {
    this.buf.push(line);
    this.counters.pending = this.buf.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    return this.buf.length < this.highWater;
  }

  onDrain(cb: () => void): void {
    this.drainers.push(cb);
  }

  /** Decode and commit everything buffered. Resolves false if the commit failed (lines kept for a retry). */
  flush(): Promise<boolean> {
    this.scheduled = false;
    this.flushing ??= this.flushAll().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushAll(): Promise<boolean> {
    while (this.buf.length) {
      let end = Math.min(this.buf.length, this.maxBatch);
      // a commit group goes whole into one transaction
      while (end < this.buf.length && this.buf[end].group !== undefined && this.buf[end].group === this.buf[end - 1].group) end++;
      const batch = this.buf.slice(0, end);
      if (!(await this.commit(batch))) {
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          void this.flush();
        }, 1000);
        return false;
      }
      this.buf = this.buf.slice(batch.length);
      this.counters.pending = this.buf.length;
    }
    const d = this.drainers;
    this.drainers = [];
    for (const cb of d) cb();
    return true;
  }

  private async commit(batch: RawLine[]): Promise<boolean> {
    const sightings: Sighting[] = [];
    const entries: IngestedSighting[] = [];
    const checkpoints = new Map<string, FileCheckpoint>();
    const groups = new Set<CommitGroup>();
    const positions = new Map<string, SourcePosition>();
    for (const l of batch) {
      const found = l.sightings ?? this.decoder(l.format ?? 'auto').decode(l.text, { receivedAt: l.receivedAt, source: l.source, line: l.line, syslog: l.syslog }).sightings;
      found.forEach((s, i) => {
        if (l.group?.accept && !l.group.accept(s)) return;
        sightings.push(s);
        // sightings a source decoded itself (a lease-file snapshot) have no line of their own
        if (this.opts.append) entries.push({ sighting: s, raw: l.sightings ? undefined : found.length > 1 ? `${l.text}\0${i}` : l.text, sender: l.sender, source: l.source });
      });
      if (l.checkpoint) checkpoints.set(l.checkpoint.path, l.checkpoint);
      if (l.group) {
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
      if (this.opts.storeHealth) this.opts.storeHealth.failed('ingest', err, `keeping ${this.buf.length} lines and retrying every second`);
      else this.log.error({ err: { message: (err as Error).message } }, 'could not write to the state database; keeping the lines and retrying');
      return false;
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
    return true;
  }

  async close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.flushing) await this.flushing;
    if (await this.flush()) return;
    // the database refuses: whoever waits for these lines (an HTTP client) is told, and retries
    const err = new Error('the state database refused the commit at shutdown');
    for (const g of new Set(this.buf.map((l) => l.group))) g?.failed?.(err);
  }
}
