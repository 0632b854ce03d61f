/**
 * The scan settings our launches run with, as the scanner states them (Qualys: each option
 * profile's "Hosts to Scan in Parallel" for scanner appliances): the profile the scanner's own
 * configuration names, and each region's own (`regions[].optionProfile`). Where the scanner states
 * a figure, the hosts-in-parallel belief starts there instead of at the configured
 * `hostsInParallel`, or lowers a configured one (never raises it; parallelism.ts learns upward
 * from there): a configured value above the truth
 * takes targets waiting for a later wave as already reached, so an address that changes hands
 * under them cancels nothing (src/sim/README.md, the 30/10 cell). One figure serves every region,
 * so where profiles differ the smallest is taken (a profile not listed counts as the configured
 * value): a wave taken too small costs launches, one taken too large costs wrong hosts. One call at
 * start, then once a day and after a reload; a failure is tried again after an hour, and never
 * stops other calls.
 */
import type { ScanProfileFacts } from '../scanners/types.js';
import { FailedCall } from './budget.js';
import { errInfo, startingHostsInParallel, type SchedulerCore } from './core.js';

const DAY = 86_400_000;
/** read again this long after a failed read */
const RETRY_MS = 60 * 60_000;

/** One profile our launches name, as last read. */
export interface ProfileRead {
  /** the region's optionProfile; absent: the profile the scanner's own configuration names */
  name?: string;
  /** regions whose launches use it */
  regions: string[];
  /** as listed; absent: not listed */
  facts?: ScanProfileFacts;
}

/** What was read (the status page, /api/status). */
export interface ScanProfileStatus {
  /** the scanner states its scan settings at all */
  supported: boolean;
  /** the last read that answered (none yet: undefined) */
  readAt?: number;
  /** the profiles as read */
  profiles?: ProfileRead[];
  /** the last read's failure, when it failed */
  error?: string;
}

/** The profiles launches name: the scanner's own (no name), and each region's, with the regions using each (`onsight doctor` reads the same). */
export function profilesNamed(regions: { name: string; optionProfile?: string }[]): ProfileRead[] {
  const byName = new Map<string | undefined, string[]>();
  for (const r of regions) {
    const list = byName.get(r.optionProfile) ?? [];
    list.push(r.name);
    byName.set(r.optionProfile, list);
  }
  if (byName.size === 0) byName.set(undefined, []);
  return [...byName].map(([name, regions]) => ({ ...(name !== undefined ? { name } : {}), regions }));
}

export class ScanProfile {
  private nextAt = 0;
  private readAt?: number;
  private read?: ProfileRead[];
  private error?: string;
  /** what was last said in the log (said again only when it changes) */
  private said = '';

  constructor(private readonly core: SchedulerCore) {}

  /**
   * Hosts one scan probes at once, as the scanner's profiles say: the smallest over the profiles
   * our regions launch with (one not listed, or stating no figure, counts as the configured
   * value); undefined where none states one.
   */
  hostsInParallel(): number | undefined {
    const figures = (this.read ?? []).map((p) => p.facts?.hostsInParallel);
    if (!figures.some((f) => f !== undefined)) return undefined;
    return Math.min(...figures.map((f) => f ?? this.core.opts.hostsInParallel));
  }

  /** A reloaded config: read it again at the next pass (the profiles named, or their settings, may have changed). */
  invalidate(): void {
    this.nextAt = 0;
  }

  /** Read the profiles when due and a call can be spared (never one a launch or a cancel needs). */
  async tick(now: number): Promise<void> {
    const { scanner, budget, opts, log } = this.core;
    if (!scanner.scanProfiles || now < this.nextAt || !budget.canSpend(false)) return;
    const want = profilesNamed(opts.regions);
    let facts: (ScanProfileFacts | undefined)[];
    try {
      facts = await budget.call('read the option profiles', 'scanProfiles', () => scanner.scanProfiles!(want.map((p) => p.name)), { optional: true });
    } catch (err) {
      // (a wait the scanner asked for is this read's alone: budget.call applies nothing of an optional call's failure)
      this.nextAt = Math.max(now + RETRY_MS, err instanceof FailedCall && err.outcome.next === 'wait' ? err.outcome.untilMs ?? 0 : 0);
      this.error = err instanceof FailedCall ? err.message : errInfo(err).message;
      return;
    }
    this.nextAt = now + DAY;
    this.readAt = now;
    this.read = want.map((p, i) => ({ ...p, ...(facts[i] ? { facts: facts[i] } : {}) }));
    this.error = undefined;
    const configured = opts.hostsInParallel;
    const start = this.hostsInParallel() === undefined ? undefined : startingHostsInParallel(this.core);
    const each = this.read.map((p) => {
      const which = p.name === undefined ? 'the scanner\'s option profile' : `option profile ${p.name} (${p.regions.join(', ')})`;
      if (!p.facts) return `${which}: not listed`;
      if (p.facts.hostsInParallel === undefined) return `${p.facts.title}: no hosts in parallel stated`;
      return `${p.facts.title}: ${p.facts.hostsInParallel} at once on an appliance${p.facts.parallelScaling ? ' (parallel scaling: larger appliances scan more)' : ''}`;
    }).join('; ');
    const say = start === undefined
      ? `option profiles read (${each}): hosts in parallel taken as the configured ${configured}`
      : `option profiles read (${each}): hosts in parallel taken as ${start}${start !== configured ? `; scheduler.hostsInParallel ${opts.hostsInParallelSet ? 'says' : 'defaults to'} ${configured}` : opts.hostsInParallelSet && start < this.hostsInParallel()! ? ' as scheduler.hostsInParallel says (a profile may lower it, never raise it)' : ''}${this.read.length > 1 ? ' (the smallest over the profiles our regions launch with)' : ''}`;
    if (say === this.said) return;
    this.said = say;
    const fields = { hostsInParallel: start ?? configured, configured, profiles: this.read.map((p) => ({ name: p.name, listed: p.facts !== undefined, hostsInParallel: p.facts?.hostsInParallel })) };
    if ((start ?? configured) !== configured || this.read.some((p) => !p.facts)) log.warn(fields, say);
    else log.info(fields, say);
  }

  describe(): ScanProfileStatus {
    return {
      supported: this.core.scanner.scanProfiles !== undefined,
      ...(this.readAt !== undefined ? { readAt: this.readAt } : {}),
      ...(this.read ? { profiles: this.read.map((p) => ({ ...p, regions: [...p.regions], ...(p.facts ? { facts: { ...p.facts } } : {}) })) } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }
}
