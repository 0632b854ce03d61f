/**
 * The scan settings our launches run with, as the scanner states them (Qualys: the option
 * profile's "Hosts to Scan in Parallel" for scanner appliances). Where the scanner says, its figure
 * is where the hosts-in-parallel belief starts (parallelism.ts learns upward from it), in place of
 * the configured `hostsInParallel`: a configured value above the truth takes targets waiting for a
 * later wave as already reached, so an address that changes hands under them cancels nothing
 * (src/sim/README.md, the 30/10 cell). One call at start, then once a day and after a reload; a
 * failure is tried again after an hour, and never stops other calls.
 */
import type { ScanProfileFacts } from '../scanners/types.js';
import { FailedCall } from './budget.js';
import { errInfo, type SchedulerCore } from './core.js';

const DAY = 86_400_000;
/** read again this long after a failed read */
const RETRY_MS = 60 * 60_000;

/** What was read (the status page, /api/status). */
export interface ScanProfileStatus {
  /** the scanner states its scan settings at all */
  supported: boolean;
  /** the last read that answered (none yet: undefined) */
  readAt?: number;
  /** the profile as read; absent after a read that did not find it */
  profile?: ScanProfileFacts;
  /** the last read's failure, when it failed */
  error?: string;
}

export class ScanProfile {
  private nextAt = 0;
  private readAt?: number;
  private facts?: ScanProfileFacts;
  private error?: string;
  /** what was last said in the log (said again only when it changes) */
  private said = '';

  constructor(private readonly core: SchedulerCore) {}

  /** Hosts one scan probes at once, as the scanner's profile says; undefined where it does not. */
  hostsInParallel(): number | undefined {
    return this.facts?.hostsInParallel;
  }

  /** A reloaded config: read it again at the next pass (the profile or the figure may have changed). */
  invalidate(): void {
    this.nextAt = 0;
  }

  /** Read the profile when due and a call can be spared (never one a launch or a cancel needs). */
  async tick(now: number): Promise<void> {
    const { scanner, budget, opts, log } = this.core;
    if (!scanner.scanProfile || now < this.nextAt || !budget.canSpend(false)) return;
    let facts: ScanProfileFacts | undefined;
    try {
      facts = await budget.call('read the option profile', 'scanProfile', () => scanner.scanProfile!(), { optional: true });
    } catch (err) {
      this.nextAt = now + RETRY_MS;
      this.error = err instanceof FailedCall ? err.message : errInfo(err).message;
      return;
    }
    this.nextAt = now + DAY;
    this.readAt = now;
    this.facts = facts;
    this.error = undefined;
    const configured = opts.hostsInParallel;
    const say = !facts
      ? `the scanner does not list the option profile our scans run with: hosts in parallel taken as the configured ${configured}`
      : facts.hostsInParallel === undefined
        ? `option profile ${facts.title} states no hosts in parallel for scanner appliances: the configured ${configured} is used`
        : `option profile ${facts.title} scans ${facts.hostsInParallel} host(s) at once on an appliance${facts.parallelScaling ? ' (parallel scaling on: larger appliances scan more, learned from scan durations)' : ''}${facts.hostsInParallel !== configured ? `; scheduler.hostsInParallel says ${configured}: the profile's ${facts.hostsInParallel} is used` : ''}`;
    if (say === this.said) return;
    this.said = say;
    const fields = { optionProfile: facts?.title, hostsInParallel: facts?.hostsInParallel, configured };
    if (!facts || (facts.hostsInParallel !== undefined && facts.hostsInParallel !== configured)) log.warn(fields, say);
    else log.info(fields, say);
  }

  describe(): ScanProfileStatus {
    return {
      supported: this.core.scanner.scanProfile !== undefined,
      ...(this.readAt !== undefined ? { readAt: this.readAt } : {}),
      ...(this.facts ? { profile: { ...this.facts } } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }
}
