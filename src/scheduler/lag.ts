/**
 * How long the scanner takes to process a finished scan's results (Qualys PROCESSED: only then
 * does its host list date the scan's hosts), learned from the scans the host list confirmed: the
 * time from a scan's end to the first host-list read that found it dated (an upper bound of the
 * lag, by at most the spacing of those reads). A scan with no target dated yet is judged "not
 * processed" rather than "no host found" for three times its 90th percentile (at least the
 * configured processingWaitS), so a scanner that processes slower than configured does not have
 * its scans' hosts judged absent.
 */

import { MAX_SPAN_MS, isNum, prependOlder, type Remembers } from './memory.js';

const KEEP = 64;
/** learned only from this many confirmed scans on (below it the configured wait alone applies) */
const MIN_SAMPLES = 5;

/** The processing lag as learned (the status page, /api/status, /metrics). */
export interface LearnedLag {
  samples: number;
  p50S?: number;
  p90S?: number;
  /** how long a scan with no target dated is held as "not processed yet" */
  waitS: number;
  configuredWaitS: number;
  how: string;
}

export class ProcessingLag implements Remembers {
  private readonly recent: number[] = [];

  /** for the store (memory.ts): the lags (ms), oldest first */
  snapshot(): number[] {
    return [...this.recent];
  }

  /** Lags read back after a restart: older than those seen since (the latest KEEP stay). */
  merge(data: unknown): string | undefined {
    if (!Array.isArray(data)) return undefined;
    const lags = data.slice(-KEEP);
    if (!lags.every((x) => isNum(x, 0, MAX_SPAN_MS))) return undefined;
    prependOlder(this.recent, lags as number[], KEEP);
    return `${lags.length} processing lag(s)`;
  }

  get count(): number {
    return this.recent.length;
  }

  /** A scan that ended `ms` before the host-list read that found it processed. */
  add(ms: number): void {
    this.recent.push(Math.max(0, ms));
    if (this.recent.length > KEEP) this.recent.shift();
  }

  /** The q-quantile of the lags seen (0 before any). */
  quantile(q: number): number {
    if (this.recent.length === 0) return 0;
    const d = [...this.recent].sort((a, b) => a - b);
    return d[Math.min(d.length - 1, Math.floor(q * d.length))];
  }

  /** How long a scan none of whose targets is dated may still be unprocessed. */
  waitMs(configuredS: number): number {
    return Math.max(configuredS * 1000, this.recent.length >= MIN_SAMPLES ? 3 * this.quantile(0.9) : 0);
  }

  describe(configuredS: number): LearnedLag {
    const n = this.recent.length;
    const waitS = Math.round(this.waitMs(configuredS) / 1000);
    const s = (q: number) => Math.round(this.quantile(q) / 1000);
    return {
      samples: n,
      ...(n ? { p50S: s(0.5), p90S: s(0.9) } : {}),
      waitS,
      configuredWaitS: configuredS,
      how: n === 0
        ? 'no scan confirmed by the host list yet (verifyResults off, or none finished): the configured processingWaitS'
        : `from the last ${n} scan(s) the host list confirmed (end of scan to the first read that found it dated; an upper bound by the reads' spacing)`
          + (n < MIN_SAMPLES ? `; under ${MIN_SAMPLES}: the configured processingWaitS applies` : waitS > configuredS ? '; waiting 3 × p90, longer than the configured processingWaitS' : '; the configured processingWaitS is longer than 3 × p90'),
    };
  }
}
