/**
 * How many hosts an appliance really scans at once in one of our scans (the option profile's
 * "Hosts to Scan in Parallel"), learned from how long our scans take against how many targets
 * they carry. The API reports neither the figure nor when each host starts, so the configured
 * `hostsInParallel` is where this starts; the durations raise it once they show it clearly.
 *
 * A scan whose targets all start at pickup (one wave) lasts its overhead (setup, pickup,
 * processing) plus the longest of its host times; so a one-wave scan of n targets lasts about as
 * long as the longest of several smaller one-wave scans whose targets add up to n. Scans of at most
 * the configured value are taken as one wave; a larger scan is predicted as one wave by drawing
 * such smaller scans until their targets add up to its size (a fixed-seed resampling: the same
 * scans give the same answer, and no distribution is assumed). If the appliance scans fewer at
 * once, the larger scan runs in waves and lasts clearly longer than that. For each candidate value
 * (the configured one up to five times it) the scans larger than the configured value and no
 * larger than the candidate are compared with their one-wave predictions (mean log ratio and its
 * standard error); the largest candidate up to which they are no longer than one wave is taken,
 * and only with enough such scans at each step. It cannot tell beyond the largest scans it has seen, and
 * it learns upward only: a configured value above the truth makes the "one wave" scans slow
 * themselves and is not detected.
 *
 * Scans that waited for a slot (a poll saw them queued after pickup) are left out: their
 * durations include the wait. Parallelism is a property of the option profile and the appliance's
 * size; one figure is learned for all appliances and profiles (the scans are too few to split).
 * What was learned is kept in the store (memory.ts): a restart takes the scans back.
 */

import { seededRng, type Rng } from '../util/rng.js';
import { MAX_SPAN_MS, int, isInt, num, numberRows, prependOlder, record, type Remembers } from './memory.js';

/** scans kept (the latest; those of at most the configured value and larger ones apart) */
const KEEP = 256;
/** below this many one-wave scans nothing is learned */
const MIN_SMALL = 20;
/** a candidate is taken only with at least this many scans larger than the one before it */
const MIN_STEP = 5;
/**
 * one wave: the mean log ratio of duration to one-wave prediction, plus a standard error, stays
 * below this. A greedy scan of 2P targets on P places lasts only about 13 % (0.12) longer than one
 * wave of 2P (its second wave starts as the first one's shortest hosts end), so the learned value
 * can be up to about twice the truth: the targets past the true wave then start within about one
 * host time of pickup, not at it.
 */
const ONE_WAVE_TOLERANCE = 0.12;
/** resampled one-wave durations per scan size */
const DRAWS = 101;
/** the resampling's seed (fixed: the same scans give the same estimate) */
const SEED = 0x5ca1ab1e;
/** re-estimated after this many new scans */
const EVERY = 8;

/** What was learned (the status page, /api/status, /metrics). */
export interface LearnedParallelism {
  /** what the scheduler uses: learned, or the configured value */
  value: number;
  configured: number;
  /** scans used: one-wave (at most the configured value) and larger */
  small: number;
  large: number;
  /** per candidate value: scans larger than the previous candidate up to it, and their mean log duration less the one-wave prediction's */
  steps?: { upTo: number; scans: number; meanLogRatio: number; stdErr: number }[];
  how: string;
}

type Scan = { n: number; ms: number };

export class HostParallelism implements Remembers {
  private readonly smaller: Scan[] = [];
  private readonly larger: Scan[] = [];
  private splitAt = 0;
  private added = 0;
  private cached?: { configured: number; startName: string; added: number; result: LearnedParallelism };
  /** the value taken, for the configured value it was learned from */
  private held?: { configured: number; value: number };

  /** for the store (memory.ts): the scans ([targets, ms], oldest first), where they were split, and the value held */
  snapshot(): unknown {
    return { splitAt: this.splitAt, smaller: this.smaller.map((s) => [s.n, s.ms]), larger: this.larger.map((s) => [s.n, s.ms]), ...(this.held ? { held: { ...this.held } } : {}) };
  }

  /** Scans read back after a restart: older than those seen since (the latest KEEP of each kind stay). */
  merge(data: unknown): string | undefined {
    const d = record(data);
    const cols = [int(1e6, 1), num(MAX_SPAN_MS)];
    const smaller = numberRows(d?.smaller, cols, KEEP), larger = numberRows(d?.larger, cols, KEEP);
    const held = d?.held === undefined ? undefined : record(d.held);
    // a value held is a candidate: at most five times the value it was learned from
    const heldOk = held !== undefined && isInt(held.configured, 1, 1e5) && isInt(held.value, 1, 5 * (held.configured as number));
    if (!d || !isInt(d.splitAt, 0, 1e5) || !smaller || !larger || (d.held !== undefined && !heldOk)) return undefined;
    const at = this.splitAt || d.splitAt;
    const old = [...smaller, ...larger].filter(([, ms]) => ms > 0).map(([n, ms]) => ({ n, ms }));
    prependOlder(this.smaller, old.filter((s) => s.n <= at), KEEP);
    prependOlder(this.larger, old.filter((s) => s.n > at), KEEP);
    this.splitAt = at;
    if (!this.held && held) this.held = { configured: held.configured as number, value: held.value as number };
    this.added += old.length;
    this.cached = undefined;
    return `${old.length} scan(s) for hosts in parallel${held ? ` (held ${held.value as number} for a configured ${held.configured as number})` : ''}`;
  }

  /** A scan of `n` targets that did not wait for a slot took `ms` from launch to its end. */
  add(n: number, ms: number, configured: number): void {
    if (n < 1 || !(ms > 0)) return;
    if (configured !== this.splitAt) this.split(configured);
    const list = n <= configured ? this.smaller : this.larger;
    list.push({ n, ms });
    if (list.length > KEEP) list.shift();
    this.added++;
  }

  /** The configured value changed (a reload): the scans are split again at it. */
  private split(configured: number): void {
    const all = [...this.smaller, ...this.larger];
    this.smaller.length = this.larger.length = 0;
    for (const s of all) (s.n <= configured ? this.smaller : this.larger).push(s);
    this.splitAt = configured;
  }

  /** Hosts scanned at once in one of our scans, as the scheduler should assume now. */
  value(configured: number): number {
    return this.describe(configured).value;
  }

  /** @param startName what `configured` is, for `how` (the scanner's profile may state it instead of the config) */
  describe(configured: number, startName = 'the configured hostsInParallel'): LearnedParallelism {
    const c = this.cached;
    if (c && c.configured === configured && c.startName === startName && this.added - c.added < EVERY) return c.result;
    const result = this.estimate(configured, startName);
    this.cached = { configured, startName, added: this.added, result };
    return result;
  }

  private estimate(configured: number, startName: string): LearnedParallelism {
    if (configured !== this.splitAt) this.split(configured);
    const small = this.smaller, large = this.larger;
    const base = { configured, small: small.length, large: large.length };
    if (small.length < MIN_SMALL) {
      return { ...base, value: configured, how: `${startName}: too few scans to learn from yet (${small.length}/${MIN_SMALL} of at most ${configured} targets)` };
    }
    const rng = seededRng(SEED);
    // the prediction's own error (a finite sample of small scans): from its two halves
    const halves = [small.filter((_, i) => i % 2 === 0), small.filter((_, i) => i % 2 === 1)];
    const predicted = new Map<number, { meanLog: number; stdErr: number }>();
    const predict = (n: number) => {
      let p = predicted.get(n);
      if (p === undefined) {
        const [a, b] = halves.map((h) => oneWaveMeanLog(n, h, rng));
        predicted.set(n, (p = { meanLog: oneWaveMeanLog(n, small, rng), stdErr: Math.abs(a - b) / 2 }));
      }
      return p;
    };
    const steps: NonNullable<LearnedParallelism['steps']> = [];
    const stats = (xs: Scan[]) => {
      const r = xs.map((s) => Math.log(s.ms) - predict(s.n).meanLog);
      const mean = r.reduce((a, b) => a + b, 0) / r.length;
      const sd = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, r.length - 1));
      const predErr = xs.reduce((a, s) => a + predict(s.n).stdErr, 0) / xs.length;
      return { mean, stdErr: Math.sqrt(sd ** 2 / r.length + predErr ** 2) };
    };
    let value = configured, wavesBelow: number | undefined;
    const sofar: Scan[] = [];
    for (const upTo of candidatesFor(configured)) {
      if (upTo <= configured) continue;
      const these = large.filter((s) => s.n > value && s.n <= upTo);
      if (these.length < MIN_STEP) continue; // too few to judge this step: judged with the next
      const step = stats(these);
      sofar.push(...these);
      const all = stats(sofar);
      steps.push({ upTo, scans: these.length, meanLogRatio: round3(step.mean), stdErr: round3(step.stdErr) });
      // taken only when all the scans up to it are, by their mean plus a standard error, no longer
      // than one wave, and the newest of them are not clearly longer
      if (all.mean + all.stdErr > ONE_WAVE_TOLERANCE || step.mean > ONE_WAVE_TOLERANCE + 2 * step.stdErr) {
        if (step.mean - step.stdErr > ONE_WAVE_TOLERANCE) wavesBelow = upTo;
        break;
      }
      value = upTo;
    }
    // a value once learned stays until larger scans up to it clearly run in waves (noise moves the
    // bounds from one estimate to the next; the scheduler's batches should not follow it)
    if (this.held?.configured !== configured) this.held = { configured, value: configured };
    if (value > this.held.value || (wavesBelow !== undefined && wavesBelow <= this.held.value)) this.held.value = value;
    value = this.held.value;
    return {
      ...base, value, steps,
      how: value > configured
        ? `learned: scans of up to ${value} targets last as long as one wave (predicted from ${small.length} scans of at most ${configured}); starting from ${configured} (${startName})`
        : `${startName}: ${steps.length ? `scans of ${configured + 1}–${steps[0].upTo} targets last longer than one wave` : `fewer than ${MIN_STEP} scans of ${configured + 1}–${5 * configured} targets`}`,
    };
  }
}

/** The configured value and multiples of it (up to five times). */
function candidatesFor(configured: number): number[] {
  const set = new Set<number>();
  for (const f of [1, 1.5, 2, 3, 4, 5]) set.add(Math.max(1, Math.round(configured * f)));
  return [...set].sort((a, b) => a - b);
}

/**
 * The mean log duration of a one-wave scan of n targets: the longest of one-wave scans drawn
 * (each at most once per draw) until their targets add up to n; one that would overshoot is
 * skipped while a fitting one is found.
 */
function oneWaveMeanLog(n: number, small: Scan[], rng: Rng): number {
  let sumLog = 0;
  for (let k = 0; k < DRAWS; k++) {
    let sum = 0, longest = 0, tries = 0;
    const taken = new Set<number>();
    while (sum < n) {
      const i = Math.floor(rng() * small.length);
      if (taken.has(i) && taken.size < small.length) continue;
      const s = small[i];
      if (sum + s.n > n && ++tries < 20) continue;
      taken.add(i);
      sum += s.n;
      if (s.ms > longest) longest = s.ms;
    }
    sumLog += Math.log(longest);
  }
  return sumLog / DRAWS;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
