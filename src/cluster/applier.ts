/**
 * The leader's inbox applier: runs only while this node leads, applies batches in fenced
 * transactions, wakes on NOTIFY from any node's append (or every `idleMs` anyway), and stops when
 * the term ends. A follower keeps no connection open for it and does no work: idle followers cost
 * only the lease loop. The next leader continues from the durable cursor. Now and then it drops
 * applied rows older than the duplicate window.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Logger } from '../log.js';
import { FencedError } from '../errors.js';
import type { Lease } from './lease.js';
import { INBOX_CHANNEL, type ApplyBatch, type InboxReader } from './inbox.js';

export interface ApplierOptions {
  lease: Lease;
  reader: InboxReader;
  /** the inventory write for a batch, on the fenced transaction's client */
  apply: ApplyBatch;
  /** a connection for LISTEN (its own; not from the pool) */
  connection: pg.ClientConfig;
  /** longest sleep without a notification (default 1 s) */
  idleMs?: number;
  /** how often the leader drops applied rows older than the duplicate window (default 60 s) */
  pruneEveryMs?: number;
  /** after a batch's transaction committed (the daemon hands the applied bindings to the scheduler here) */
  afterCommit?: () => Promise<void>;
  log?: Logger;
}

export class InboxApplier {
  readonly counters = { applied: 0, batches: 0, errors: 0, terms: 0, pruned: 0 };
  private running?: Promise<void>;
  private halt = new AbortController();
  /**
   * A new term: its loop starts once the last term's loop has wound down (a term that began while
   * the old loop still waited in a query, say a renewal that timed out and a lease won straight
   * back, was dropped, and the inbox then went unapplied for the whole term).
   */
  private readonly onLeader = () => {
    const next: Promise<void> = (this.running ?? Promise.resolve()).then(() => this.term()).finally(() => {
      if (this.running === next) this.running = undefined;
    });
    this.running = next;
  };

  constructor(private readonly opts: ApplierOptions) {}

  /** Follows the lease: applies during every term of this node. */
  start(): void {
    if (this.halt.signal.aborted) this.halt = new AbortController();
    this.opts.lease.on('leader', this.onLeader);
    if (this.opts.lease.isLeader()) this.onLeader();
  }

  async stop(): Promise<void> {
    this.opts.lease.off('leader', this.onLeader);
    this.halt.abort();
    await this.running;
  }

  private async term(): Promise<void> {
    const { lease, reader, apply, log } = this.opts;
    const term = lease.signal;
    const signal = AbortSignal.any([term, this.halt.signal]);
    if (signal.aborted) return;
    this.counters.terms++;
    const idleMs = this.opts.idleMs ?? 1000;
    let wake: (() => void) | undefined;
    let notified = false;
    let listener: pg.Client | undefined;
    try {
      listener = new pg.Client({ ...this.opts.connection, application_name: `onsight-applier ${lease.node}`.slice(0, 63) });
      listener.on('error', () => undefined); // a lost LISTEN only slows waking to idleMs
      listener.on('notification', () => {
        notified = true;
        wake?.();
      });
      await listener.connect();
      await listener.query(`LISTEN ${INBOX_CHANNEL}`);
    } catch (err) {
      log?.warn({ err: (err as Error).message }, 'cluster: inbox LISTEN failed; polling instead');
    }
    const pruneEveryMs = this.opts.pruneEveryMs ?? 60_000;
    let lastPrune = performance.now();
    try {
      while (!signal.aborted) {
        if (performance.now() - lastPrune >= pruneEveryMs) {
          lastPrune = performance.now();
          this.counters.pruned += await reader.prune().catch(() => 0);
        }
        let n = 0;
        try {
          n = await reader.applyNext(apply, lease);
          if (n > 0) {
            this.counters.applied += n;
            this.counters.batches++;
            await this.opts.afterCommit?.().catch((err: Error) => log?.warn({ err: err.message }, 'cluster: handling an applied batch failed (the next sweep looks again)'));
          }
        } catch (err) {
          if (err instanceof FencedError) break;
          this.counters.errors++;
          log?.warn({ err: (err as Error).message }, 'cluster: inbox apply failed; retrying');
        }
        if (n === reader.batch || notified) {
          notified = false; // more waiting, or an append committed while this batch ran
          continue;
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const t = setTimeout(done, idleMs);
          signal.addEventListener('abort', done, { once: true });
          wake = done;
        });
      }
    } finally {
      await listener?.end().catch(() => undefined);
    }
  }
}
