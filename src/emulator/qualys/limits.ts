/**
 * Per-API rate and concurrency limits with Qualys's headers, plus the statistics tests check:
 * peak calls in flight (accepted, and attempted including the blocked ones) and the largest
 * number of calls seen inside any one window. Real time, whatever the scan clock does.
 */
import type { EmulatedApi, EmulatorConfig, LimitConfig } from './config.js';
import { limitFor } from './config.js';

export interface ApiStats {
  /** calls that passed both limits */
  accepted: number;
  /** 409 CODE 1960 / 1965 answered by the limiter (not injected) */
  blockedConcurrency: number;
  blockedRate: number;
  /** 409s injected by the fault settings */
  injectedConflicts: number;
  /** most accepted calls running at once */
  peakRunning: number;
  /** most calls (accepted or about to be blocked) being handled at once */
  peakAttempted: number;
  /** most accepted calls inside one window */
  maxAcceptedInWindow: number;
  /** most calls (any outcome) arriving inside one window */
  maxAttemptedInWindow: number;
}

interface ApiState {
  limit: LimitConfig;
  accepted: number[];
  attempted: number[];
  running: number;
  attemptedRunning: number;
  stats: ApiStats;
}

export type Verdict =
  | { ok: true; headers: Record<string, string>; done: () => void }
  | { ok: false; code: 1960 | 1965; text: string; items: [string, string][]; headers: Record<string, string>; done: () => void };

export class Limiter {
  private readonly apis = new Map<EmulatedApi, ApiState>();

  constructor(private readonly c: EmulatorConfig, private readonly now: () => number = Date.now) {}

  private state(api: EmulatedApi): ApiState {
    let s = this.apis.get(api);
    if (!s) {
      s = {
        limit: limitFor(this.c, api), accepted: [], attempted: [], running: 0, attemptedRunning: 0,
        stats: { accepted: 0, blockedConcurrency: 0, blockedRate: 0, injectedConflicts: 0, peakRunning: 0, peakAttempted: 0, maxAcceptedInWindow: 0, maxAttemptedInWindow: 0 },
      };
      this.apis.set(api, s);
    }
    return s;
  }

  stats(api: EmulatedApi): ApiStats & { limit: LimitConfig } {
    const s = this.state(api);
    return { ...s.stats, limit: s.limit };
  }

  /**
   * Marks a call as arrived (before the verdict) so attempted concurrency is measured; the
   * returned function ends it.
   */
  arrive(api: EmulatedApi): () => void {
    const s = this.state(api);
    const t = this.now();
    s.attemptedRunning++;
    s.stats.peakAttempted = Math.max(s.stats.peakAttempted, s.attemptedRunning);
    s.attempted.push(t);
    prune(s.attempted, t - s.limit.windowSec * 1000);
    s.stats.maxAttemptedInWindow = Math.max(s.stats.maxAttemptedInWindow, s.attempted.length);
    let ended = false;
    return () => {
      if (!ended) s.attemptedRunning--;
      ended = true;
    };
  }

  /** The limiter's verdict on one call; concurrency wins when both limits apply. */
  check(api: EmulatedApi, injected?: 1960 | 1965, injectedWaitSec = 1): Verdict {
    const s = this.state(api);
    const t = this.now();
    const windowMs = s.limit.windowSec * 1000;
    prune(s.accepted, t - windowMs);
    const noop = () => undefined;
    const blocked = (code: 1960 | 1965, waitSec: number): Verdict => {
      if (this.c.limits.countBlockedCalls) s.accepted.push(t);
      if (code === 1960) {
        // the guide's concurrency sample: no ToWait, no Remaining header; the body says how many must finish
        const toFinish = Math.max(1, s.running - s.limit.concurrency + 1);
        const text = `This API cannot be run again until ${toFinish} currently running API ${toFinish === 1 ? 'instance has' : 'instances have'} finished.`;
        const { 'X-RateLimit-ToWait-Sec': _w, 'X-RateLimit-Remaining': _r, ...headers } = this.headers(s, 0, s.running);
        return { ok: false, code, text, items: [['CALLS_TO_FINISH', String(toFinish)]], headers, done: noop };
      }
      const text = `This API cannot be run again for another ${spellDuration(waitSec)}.`;
      return { ok: false, code, text, items: [['SECONDS_TO_WAIT', String(waitSec)]], headers: this.headers(s, waitSec, s.running), done: noop };
    };
    if (injected) {
      s.stats.injectedConflicts++;
      return blocked(injected, injected === 1965 ? Math.max(1, Math.ceil(injectedWaitSec)) : 0);
    }
    if (s.running >= s.limit.concurrency) {
      s.stats.blockedConcurrency++;
      return blocked(1960, 0);
    }
    if (s.accepted.length >= s.limit.limit) {
      s.stats.blockedRate++;
      return blocked(1965, Math.max(1, Math.ceil((s.accepted[0] + windowMs - t) / 1000)));
    }
    s.accepted.push(t);
    s.running++;
    s.stats.accepted++;
    s.stats.peakRunning = Math.max(s.stats.peakRunning, s.running);
    s.stats.maxAcceptedInWindow = Math.max(s.stats.maxAcceptedInWindow, s.accepted.length);
    let ended = false;
    return {
      ok: true,
      headers: this.headers(s, 0, s.running),
      done: () => {
        if (!ended) s.running--;
        ended = true;
      },
    };
  }

  private headers(s: ApiState, toWait: number, running: number): Record<string, string> {
    return {
      'X-RateLimit-Limit': String(s.limit.limit),
      'X-RateLimit-Window-Sec': String(s.limit.windowSec),
      'X-RateLimit-Remaining': String(Math.max(0, s.limit.limit - s.accepted.length)),
      'X-RateLimit-ToWait-Sec': String(toWait),
      'X-Concurrency-Limit-Limit': String(s.limit.concurrency),
      'X-Concurrency-Limit-Running': String(running),
    };
  }
}

/** Drops timestamps at or before `cutoff` from a sorted array. */
function prune(times: number[], cutoff: number): void {
  let i = 0;
  while (i < times.length && times[i] <= cutoff) i++;
  if (i > 0) times.splice(0, i);
}

/** 68928 → "19 hours, 8 minutes and 48 seconds", as Qualys words a rate-limit block (API limits doc). */
export function spellDuration(sec: number): string {
  const parts: string[] = [];
  const unit = (n: number, word: string) => { if (n > 0) parts.push(`${n} ${word}${n === 1 ? '' : 's'}`); };
  unit(Math.floor(sec / 3600), 'hour');
  unit(Math.floor((sec % 3600) / 60), 'minute');
  unit(sec % 60, 'second');
  if (parts.length === 0) return '0 seconds';
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}
