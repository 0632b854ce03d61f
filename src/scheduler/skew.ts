/**
 * How far this node's clock runs ahead of the scanner's, learned from our own scans: the launch
 * time the scanner lists for a scan against the time we recorded its launch (after the launch
 * call answered, so a sample is the skew plus the call's latency). Every list by launch time
 * (follow.ts in cluster mode, late.ts, reconcile.ts, ranges.ts) reaches back that much further: a
 * leader 15 min ahead of the platform asked for scans launched after a time the platform had not
 * reached when it launched ours, so its running scans were "no longer listed" and relaunched
 * (cluster probe F2), and a launch whose answer was lost was not found by reconcile. A clock
 * behind the scanner's needs nothing: its lists already reach back further. Kept across restarts
 * (memory.ts): reconcile lists before any poll has seen a scan. In a cluster, with the node that
 * learned it: another node's clock is not this one's (a new leader 15 min ahead took the old
 * leader's samples, its lists reaching back by none of it until eight scans of its own).
 */
import { Refused, type Remembers } from './memory.js';

/** samples kept (the newest); the median is taken */
const SAMPLES = 15;
/** a sample further than this is not a clock's skew (a scan adopted days after its launch) */
const MAX_SKEW_MS = 86_400_000;

export class ScannerClock implements Remembers {
  /** ours − theirs, ms, oldest first */
  private samples: number[] = [];
  /** scans sampled (one sample each: a long scan listed at every poll is one scan) */
  private readonly sampled = new Set<string>();

  /** `node`: this node's name in a cluster (undefined without one) */
  constructor(private readonly node: () => string | undefined = () => undefined) {}

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
    const node = this.node();
    return { samples: this.samples, ...(node !== undefined ? { node } : {}) };
  }

  merge(data: unknown): string | Refused | undefined {
    const d = data as { samples?: unknown; node?: unknown } | null;
    const s = d?.samples;
    if (!Array.isArray(s) || s.length > SAMPLES || !s.every((x) => typeof x === 'number' && Number.isFinite(x) && Math.abs(x) <= MAX_SKEW_MS)) return undefined;
    if (d?.node !== undefined && typeof d.node !== 'string') return undefined;
    const ours = this.node();
    if (d?.node !== ours) return new Refused(`learned by ${d?.node === undefined ? 'a node not named (no cluster, or a version before the node was saved)' : `node ${d.node}`}, not this node${ours === undefined ? '' : ` ${ours}`}: a clock's skew is its own node's`);
    this.samples = [...(s as number[]), ...this.samples].slice(-SAMPLES);
    return `clock ${Math.round(this.aheadMs() / 1000)} s ahead of the scanner's (${this.samples.length} scans)`;
  }
}
