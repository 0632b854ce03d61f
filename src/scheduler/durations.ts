/**
 * How long our scans take, learned from the last ones that finished, by size: a scan of 50
 * targets runs longer than a scan of 2 (its hosts go through the appliance in waves). Polling and
 * the cancel window read the distribution of scans of a similar size when there are enough of them.
 */

import { MAX_SPAN_MS, int, num, numberRows, prependOlder, type Remembers } from './memory.js';

const KEEP = 128;
const SIMILAR = 5;

export class ScanDurations implements Remembers {
  private readonly recent: { ms: number; targets: number }[] = [];

  /** for the store (memory.ts): [ms, targets], oldest first */
  snapshot(): number[][] {
    return this.recent.map((d) => [d.ms, d.targets]);
  }

  /** Durations read back after a restart: older than those seen since (the latest KEEP stay). */
  merge(data: unknown): string | undefined {
    const rows = numberRows(data, [num(MAX_SPAN_MS), int(1e6, 1)], KEEP);
    if (!rows) return undefined;
    prependOlder(this.recent, rows.map(([ms, targets]) => ({ ms, targets: Math.max(1, targets) })), KEEP);
    return `${rows.length} scan duration(s)`;
  }

  get count(): number {
    return this.recent.length;
  }

  add(ms: number, targets: number): void {
    this.recent.push({ ms, targets: Math.max(1, targets) });
    if (this.recent.length > KEEP) this.recent.shift();
  }

  /** Sorted durations of scans of about `targets` targets (half to twice), or of all when too few. */
  private sample(targets: number): number[] {
    const n = Math.max(1, targets);
    const similar = this.recent.filter((d) => d.targets * 2 >= n && d.targets <= n * 2);
    return (similar.length >= SIMILAR ? similar : this.recent).map((d) => d.ms).sort((a, b) => a - b);
  }

  /** Share of scans of this size that took at most `ms`. */
  cdf(ms: number, targets: number): number {
    const d = this.sample(targets);
    if (d.length === 0) return 0;
    let lo = 0, hi = d.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (d[mid] <= ms) lo = mid + 1;
      else hi = mid;
    }
    return lo / d.length;
  }

  /** The median duration of scans of this size (0 before any scan finished). */
  typical(targets: number): number {
    return this.quantile(targets, 0.5);
  }

  /** The q-quantile of the durations of scans of this size (0 before any scan finished). */
  quantile(targets: number, q: number): number {
    const d = this.sample(targets);
    return d.length ? d[Math.min(d.length - 1, Math.floor(q * d.length))] : 0;
  }
}
