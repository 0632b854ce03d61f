/**
 * How far this node's clock runs ahead of the scanner's, learned from our own scans: the launch
 * time the scanner lists for a scan against the time we recorded its launch (after the launch
 * call answered, so a sample is the skew plus the call's latency). Every list by launch time
 * (follow.ts in cluster mode, late.ts, reconcile.ts, ranges.ts) reaches back that much further: a
 * leader 15 min ahead of the platform asked for scans launched after a time the platform had not
 * reached when it launched ours, so its running scans were "no longer listed" and relaunched
 * (cluster probe F2), and a launch whose answer was lost was not found by reconcile. A clock
 * behind the scanner's needs nothing: its lists already reach back further. Kept across restarts
 * (memory.ts): reconcile lists before any poll has seen a scan.
 */
import type { Remembers } from './memory.js';

/** samples kept (the newest); the median is taken */
const SAMPLES = 15;
/** a sample further than this is not a clock's skew (a scan adopted days after its launch) */
const MAX_SKEW_MS = 86_400_000;

export class ScannerClock implements Remembers {
  /** ours − theirs, ms, oldest first */
  private samples: number[] = [];
  /** scans sampled (one sample each: a long scan listed at every poll is one scan) */
  private readonly sampled = new Set<string>();

  /** Our scan `id` recorded as launched at `ourMs`; the scanner lists its launch at `theirs`. */
  note(id: string, ourMs: number | undefined, theirs: string | undefined): void {
    if (ourMs === undefined || theirs === undefined || this.sampled.has(id)) return;
    const t = Date.parse(theirs);
    if (!Number.isFinite(t) || Math.abs(ourMs - t) > MAX_SKEW_MS) return;
    if (this.sampled.size > 10_000) this.sampled.clear();
    this.sampled.add(id);
    this.samples.push(ourMs - t);
    if (this.samples.length > SAMPLES) this.samples.shift();
  }

  /** How much further back than our clock says a list by launch time must reach (0 while we are not ahead). */
  aheadMs(): number {
    if (this.samples.length === 0) return 0;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return Math.max(0, sorted[Math.floor((sorted.length - 1) / 2)]);
  }

  snapshot(): unknown {
    return { samples: this.samples };
  }

  merge(data: unknown): string | undefined {
    const s = (data as { samples?: unknown } | null)?.samples;
    if (!Array.isArray(s) || s.length > SAMPLES || !s.every((x) => typeof x === 'number' && Number.isFinite(x) && Math.abs(x) <= MAX_SKEW_MS)) return undefined;
    this.samples = [...(s as number[]), ...this.samples].slice(-SAMPLES);
    return `clock ${Math.round(this.aheadMs() / 1000)} s ahead of the scanner's (${this.samples.length} scans)`;
  }
}
