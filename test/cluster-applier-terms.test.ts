/**
 * The inbox applier and lease terms that follow each other quickly: a term that begins while the
 * last term's loop still waits in a call (a renewal that timed out under load and a lease won
 * straight back) gets its own loop once the old one has wound down. It was dropped, and the inbox
 * went unapplied and untrimmed for the whole term. The lease and reader here are stand-ins that
 * only sequence the calls; the applier's run against a real PostgreSQL is cluster-applier.test.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { InboxApplier } from '../src/cluster/applier.js';
import type { Lease } from '../src/cluster/lease.js';
import type { InboxReader } from '../src/cluster/inbox.js';

class Terms extends EventEmitter {
  readonly node = 'terms';
  private c = new AbortController();
  leader = true;
  get signal(): AbortSignal {
    return this.c.signal;
  }
  isLeader(): boolean {
    return this.leader;
  }
  /** the term ends and the next begins at once */
  next(): void {
    this.c.abort();
    this.c = new AbortController();
    this.emit('leader');
  }
}

describe('inbox applier across back-to-back terms', () => {
  it('a term that begins while the last one\'s loop waits in a call gets its own loop', async () => {
    const lease = new Terms();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls: AbortSignal[] = [];
    const reader = {
      batch: 10,
      prune: async () => 0,
      applyNext: async (_apply: unknown, l: Terms) => {
        calls.push(l.signal);
        if (calls.length === 1) await gate; // the first term's call hangs
        return 0;
      },
    };
    const applier = new InboxApplier({ lease: lease as unknown as Lease, reader: reader as unknown as InboxReader, apply: async () => undefined, connection: { host: '127.0.0.1', port: 1, connectionTimeoutMillis: 200 }, idleMs: 50 });
    applier.start();
    for (let i = 0; i < 100 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toHaveLength(1);
    const second = (lease.next(), lease.signal);
    release();
    for (let i = 0; i < 100 && !calls.includes(second); i++) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toContain(second);
    expect(applier.counters.terms).toBe(2);
    await applier.stop();
  });
});
