/**
 * Range scans the platform runs (scheduler.rangeScans): kept in step with the config through the
 * scanner's `syncSchedules`; each run holds its region free of our launches from `holdBeforeS`
 * before its time until a scan list shows it ended (or `maxHoldS` has passed), since a region runs
 * one scan at a time; once its results are processed, one host-list call credits the region's
 * queued devices it found, so our own calls go to the devices the runs missed.
 *
 * A date in the host list is the address's: a device is credited only when it held the address
 * from before the run's launch and no other device held it at any time until the run ended.
 */
import { DRY_RUN_KIND } from '../scanners/dry-run/scanner.js';
import type { RangeSchedule, ScanStatus, ScheduleStatus } from '../scanners/types.js';
import { ScanEndedBeforeCancel, ScheduleSyncIncomplete } from '../scanners/failure.js';
import { planScheduleSync, sameSchedule } from '../scanners/schedule-plan.js';
import { allowedRanges, parseInterval, rangeMatcher, rangeSize } from '../util/ip-ranges.js';
import { FailedCall } from './budget.js';
import { errInfo, foundInScan, hostsInParallel, launchedAfter, type SchedulerCore } from './core.js';
import { CLOCK_SKEW_MS, LEARNED_WITH, MAX_SPAN_MS, int, isInt, isNum, num, numberRows, prependOlder, record, type Remembers } from './memory.js';
import type { SchedulerRegion } from './options.js';
import { placeRuns, runApplianceOf, type PlacementRegion } from './run-placement.js';
import { nextRetry, type Retry } from './retry.js';

const DAY = 86_400_000;
const MIN = 60_000;
/** a run is looked for in lists of scans launched from this long before its time (clocks, the platform's start delay) */
const RUN_SLACK_MS = 10 * MIN;
/** a learned hold before a run is at most this long (heavy-tailed scans would otherwise hold a region most of the day) */
const MAX_LEARNED_HOLD_MS = 2 * 60 * MIN;
/** a run still queued this long after its time, while another appliance of its region has room, gives way (see giveWayIfQueued) */
const QUEUED_GIVE_WAY_MS = 60 * MIN;
/** a run a list showed going holds its region until seen ended, for this long at most (others' scans can hold an appliance for days under heavy-tailed scan times) */
const RUN_FOLLOW_MS = 14 * DAY;
/**
 * a run is placed off an appliance whose every slot other tools' scans have held, list after list,
 * this long (placeRuns): their own queue keeps it full, and a run queued behind it would wait past
 * QUEUED_GIVE_WAY_MS, holding its region, before it gives way
 */
const OVERRUN_MS = QUEUED_GIVE_WAY_MS;
/** a run is cut off this long before the region's next run (the platform launches within minutes of a time) */
const END_MARGIN_MIN = 5;
/** Qualys takes a cut-off in whole hours plus minutes, from one hour */
const MIN_END_AFTER_MIN = 60;
/** a schedule whose time comes within this long while a run of its region still goes is deactivated (active again once that time has passed and the run is seen ended) */
const SKIP_AHEAD_MS = 30 * MIN;
/** a run still going is looked at again this long before its region's next time, so that the skip is decided on a fresh look */
const LOOK_BEFORE_NEXT_MS = 35 * MIN;
/** a skip is decided only on a run seen going within this long before the time */
const SEEN_FRESH_MS = LOOK_BEFORE_NEXT_MS + 10 * MIN;
/** a sync that mends a schedule the policy refuses is a priority for this many failures in a row (then an ordinary one) */
const MEND_TRIES = 3;
/** a failed sync that would deactivate or activate a schedule is tried again after this long (others: SYNC_RETRY_MS) */
const SKIP_RETRY_MS = 5 * MIN;
/** a scan of ours still going this long before its region's range run is canceled and its targets requeued (the appliance hears of it at its next poll) */
const CANCEL_OURS_BEFORE_MS = 12 * MIN;
/** a skipped time is made up by a launch (catchUp) only while the region's next time is at least this far off (or its hold, if longer): that run would come soon enough */
const CATCH_UP_BEFORE_NEXT_MS = 60 * MIN;
/** a run is made up only if this quantile of the runs seen would end before the region's next time (a skip at 50 calls a day may find no calls left for it) */
const MADE_UP_ENDS_Q = 0.9;
/** from this long before a region's next time, while a run of it still goes, the calls its skip needs are kept (keepForSkips) */
const KEEP_FOR_SKIP_MS = 3 * 60 * MIN;
/** a failed make-up launch that certainly launched nothing is tried again after this long */
const CATCH_UP_RETRY_MS = 10 * MIN;
/** a run aimed at held addresses (rangeScans.aim) has them written into its schedule this long before its time: late enough to be current, early enough for a retry before the platform launches it */
const AIM_BEFORE_MS = 10 * MIN;
/** an aimed run leaves out a device scanned this recently (the region's earlier run that day, or a launch of ours): scanning it again adds nothing */
const AIM_SKIPS_SCANNED_MS = 6 * 60 * MIN;
/** devices remembered as not found by an aimed run (a binding id and a time each) */
const MAX_NOT_FOUND = 200_000;
/** saved skip keys and make-ups at most (a time a day per schedule, two days kept) */
const MAX_SKIP_KEYS = 10_000;
/** a device an aimed run did not find is aimed at again after this long, line or not (a lease with no renewals for days, a VPN tunnel's session) */
const NOT_FOUND_FORGET_MS = 3 * DAY;
/** with aim auto, runs are aimed while the aims' calls are at most this share of the allowance's calls a day */
const AIM_SHARE = 0.1;
/**
 * with aim auto, a region's runs are not aimed for this long after a look found one of them still
 * waiting for a slot when the region's next time had come: an aim is the addresses held ten minutes
 * before the time, and a run that starts that late finds those devices gone, where the whole
 * targets find whoever is there when it starts (heavy-tailed scans: src/sim/README.md, session 26;
 * a run waiting an hour was tried too, and made the base cell's runs unaimed for little)
 */
const QUEUED_UNAIMED_MS = DAY;
/** a failed sync is tried again after this long; a good one is repeated daily (someone may have edited a schedule) */
const SYNC_RETRY_MS = 60 * MIN;
/** a saved "none of ours" is taken for this long after the sync that found it (then the clean-up list is made again, one call) */
const NONE_TRUSTED_MS = 7 * DAY;
/** deletions of an earlier title prefix's schedules tried as a priority (retire), then as calls allow, up to RETIRE_RETRY_MAX_MS apart */
const RETIRE_TRIES = 3;
const RETIRE_RETRY_MAX_MS = 6 * 60 * MIN;
/** the platform starts a run within this long of its time: a refused run not yet listed is looked for every poll interval until then (lookForUnseen) */
const START_DELAY_MS = 15 * MIN;
/** clean-ups tried after a start with range scans off (SYNC_RETRY_MS apart) */
const CLEANUP_TRIES = 3;
/** a failed start's list or cancel is tried again after the poll interval, then twice as long each time, up to this (the daemon passes every second) */
const RETRY_MAX_MS = 5 * MIN;

interface Run {
  title: string;
  region: string;
  /** the run's time of day, today */
  at: number;
  lookAt: number;
  /** seen ended (terminal): the region is free again */
  released: boolean;
  /** the scan, once a list showed it */
  scan?: ScanStatus;
  /** when a list last showed it */
  seenAt?: number;
  /** its found devices were credited (or there was nothing to credit) */
  done: boolean;
  /** launched by us to make up a skipped time (catchUp): holds its region from its launch, before any list shows it */
  madeUp?: boolean;
  /** a made-up run's scan reference, from its launch (known before any list shows it) */
  ref?: string;
  /** the appliance a made-up run was launched on (placed at its launch, not at its schedule's time) */
  appliance?: string;
  /** an aimed run's targets (rangeScans.aim), as its schedule had them when a list first showed it: every device holding one throughout is credited, queued or not */
  aimedAt?: string[];
  /** when a look was last brought forward because the policy now refuses its targets (cancelRefusedRuns) */
  refusedLookAt?: number;
  /**
   * what it was launched with, its schedule's targets as synced before its time (a make-up's: as
   * launched): a reload mends the schedule at once, while the run no list has shown yet goes on with these (refusedRuns)
   */
  startTargets?: string[];
  /**
   * the policy, and its schedule's targets as synced, under which a look for it, unseen, was brought
   * forward: once its schedule no longer names what the policy refuses, once for each (a look after
   * the mend that does not find it says it has not started, and will start with the mended targets)
   */
  lookedForUnder?: { policy: unknown; targets: unknown };
  /** a failed look for it: not made again before then (the poll interval, doubling) */
  lookRetry?: Retry;
  /** a made-up run whose cancel before its region's next time failed: not tried again before then */
  cancelRetry?: Retry;
  /** when a look last found it still waiting for a slot: it started after that, so its running age counts from then */
  queuedSeenAt?: number;
}

/** A run known to be going (a list showed it, or we launched it) and not yet seen ended: it holds its region whatever its hold window says. */
function followed(r: Run): boolean {
  return (r.scan !== undefined || r.madeUp === true) && !r.released && !r.done;
}

/** A time skipped while its region's previous run still went, to be made up once the region is free. */
interface CatchUp {
  title: string;
  region: string;
  /** the skipped time */
  at: number;
  /** not tried again before this (a launch that failed) */
  retryAt: number;
}

export interface RangeScanStatus {
  schedules: { title: string; region: string; timeUtc: string; targets: string[]; appliance: string; id: string; endAfterMin?: number; active?: false }[];
  /** why the schedules are not what the config says, if they are not */
  problem?: string;
  /** range scans are off while the API allowance is scarce: where they would help */
  advice?: string;
  /** regions whose runs lasted longer than the spacing to their next run (the platform overlaps them) */
  outlasting?: string[];
  runsSeen: number;
  credited: number;
  /** scans of ours canceled because they still went when their region's range run was about to start */
  oursCanceled: number;
  /** runs canceled because they still waited for a slot an hour after their time while another appliance of their region had room */
  gaveWay: number;
  /** runs the platform canceled at their cut-off (endBeforeNext), before the region's next run */
  cutShort: number;
  /** times skipped (the schedule kept inactive) because the region's previous run still went */
  skipped: number;
  /** skipped times made up by a range scan launched (one call) once the region's previous run had ended */
  madeUp: number;
  /** runs aimed at the addresses devices held shortly before their time (rangeScans.aim), rather than at the whole targets */
  aimed: number;
  /** runs left unaimed (aim auto) because a recent run of their region still waited for a slot when the region's next time came */
  unaimedQueued: number;
  /** runs placed on another appliance of their region because other tools' scans held every slot of the one the spread gives it (OVERRUN_MS or longer) */
  placedElsewhere: number;
  /** devices an aimed run did not find (a lease outliving its laptop, most likely), left out of later aims until a line shows them again */
  notFound: number;
  /** runs canceled going over what the policy refuses (scope, exclusions) or in a region no longer configured (after a reload, or found at start) */
  refusedCanceled: number;
}

/** Our range schedules' titles: `<prefix>-range <region> <HHMM>` (ownRangeTitle reads them back). */
function rangeScheduleTitle(prefix: string, region: string, time: string): string {
  return `${prefix}-range ${region} ${time.replace(':', '')}`;
}

/** The next time of day `hhmm` (UTC) at or after `t`. */
export function nextOccurrence(t: number, hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  const day = Math.floor(t / DAY) * DAY + (h * 60 + m) * MIN;
  return day >= t ? day : day + DAY;
}

/**
 * The cut-off that ends a run `END_MARGIN_MIN` before the next of the region's times (a day later
 * when it has one time); none when that leaves under an hour.
 */
export function endBeforeNextMin(time: string, times: readonly string[]): number | undefined {
  const minute = (t: string) => { const [h, m] = t.split(':').map(Number); return h * 60 + m; };
  const at = minute(time);
  const gaps = times.map((t) => (minute(t) - at + 1440) % 1440).filter((g) => g > 0);
  const spacing = gaps.length ? Math.min(...gaps) : 1440;
  const end = spacing - END_MARGIN_MIN;
  return end >= MIN_END_AFTER_MIN ? end : undefined;
}

export class RangeScans {
  private synced: string | undefined;
  /** the last sync wanted nothing and succeeded: the platform keeps no schedule of ours (kept across restarts: `memory`) */
  private noneOfOurs = false;
  /** when a sync last found none of ours (the clean-up is made again at a start a week on: a crash before a save may have hidden a schedule made since) */
  private noneOfOursAt = 0;
  /** clean-ups (range scans off) failed since the last success: tried CLEANUP_TRIES times, then left to the next start */
  private cleanupFailures = 0;
  private nextSyncAt = 0;
  private problem: string | undefined;
  private schedules: (ScheduleStatus & { region: string; since: number })[] = [];
  private readonly runs = new Map<string, Run>();
  /** durations of the runs seen end (ms), most recent last */
  private readonly durations: number[] = [];
  private runsSeen = 0;
  private oursCanceled = 0;
  private gaveWay = 0;
  private cutShort = 0;
  /** schedules to keep inactive while a run of their region still goes, each at least until the time it was skipped for (the platform's state is `schedules[].active`, once synced) */
  private readonly inactive = new Map<string, number>();
  private skips = 0;
  /** the times skipped and counted (`title@time`), so that a skip is counted once however many syncs see it */
  private readonly skipsSeen = new Set<string>();
  /** refusedBy's answers, for the policy they were given under (a reload brings a new one) */
  private refusedMemo?: { policy: unknown; answers: WeakMap<string[], boolean | 'unreadable'> };
  /** syncs in a row that failed while mending a schedule the policy refuses (mending) */
  private mendFailures = 0;
  /** regions whose IPv6 ranges were said to be left out of their runs (once each) */
  private readonly v6LeftOut = new Set<string>();
  /**
   * the times (`title@time`) whose skip was sent to the platform by some sync: one not known made
   * before its time (a sync that straddled it, an answer lost) is decided by what the lists show
   * (lookAtRuns): its run holds the region meanwhile, and is taken as skipped if never seen
   */
  private readonly skipsSent = new Set<string>();
  /**
   * per title whose deactivation a sync may have made (its answer lost), when that sync last answered: a later
   * sync finding it already inactive says it was made by then (not kept across a restart: the later answer counts then)
   */
  private readonly unsureAnswered = new Map<string, number>();
  /** skipped times waiting for their region to be free, by schedule title (catchUp) */
  private readonly catchUps = new Map<string, CatchUp>();
  private madeUp = 0;
  /** the wanted set of a sync that failed (retried after nextSyncAt, not every tick) */
  private failedKey: string | undefined;
  /** the runs still going at start were looked for (adopt) */
  private adopted = false;
  /** the start's list failed: not tried again before then */
  private adoptRetry?: Retry;
  /** per intent of ours whose cancel before its region's run failed: not tried again before then */
  private readonly cancelOursRetry = new Map<string, Retry>();
  /** per region, why its runs overlap (checkSpacing) */
  private readonly outlasting = new Map<string, string>();
  private credited = 0;
  /** per schedule title, the held addresses its run at `at` is aimed at (rangeScans.aim), kept until its next aim; none held: the run is skipped */
  private readonly aimed = new Map<string, { at: number; targets: string[] }>();
  /** each schedule's aim clipped to its targets, as last worked out (want() runs at every pass) */
  private readonly clipped = new Map<string, { aim: string[]; targets: string; out: string[] }>();
  /** titles whose schedule a failed sync may or may not have changed (possiblyKept): held as if run, counted as a change to make */
  private readonly unsure = new Set<string>();
  /**
   * per binding, the launch of an aimed run that did not find its device although it held the
   * address throughout: left out of later aims until a line newer than that launch shows it (a
   * laptop that left a week-long wired lease without a release is otherwise probed twice a day
   * until the lease ends)
   */
  private readonly notFoundAt = new Map<number, number>();
  private notFoundCount = 0;
  /** per schedule title, what aiming its run at `at` costs in calls (its update, and the host-list calls that credit it) */
  private readonly aimCost = new Map<string, { at: number; calls: number }>();
  private aims = 0;
  /** per region, when a look last found one of its runs still waiting for a slot at or after the region's next time */
  private readonly queuedLongAt = new Map<string, number>();
  /** per schedule title, the time whose run was left unaimed (its whole targets to be written back: a change as urgent as an aim) */
  private readonly unaimed = new Map<string, number>();
  private unaimedQueued = 0;
  /** per schedule title, the appliance the placement before its time `at` chose (place), and the spread's then: kept until its next, or until the spread changes */
  private readonly placed = new Map<string, { at: number; appliance: string; spread: string }>();
  private placedElsewhere = 0;
  private refusedCanceled = 0;
  /**
   * the title prefixes (`cluster.name`) under which the platform may keep range schedules of ours
   * (kept across restarts): the current one from its first sync that wants any, and an earlier one
   * until its schedules are deleted (retire). The Qualys client touches only the current prefix's:
   * without this, a renamed cluster's old schedules ran daily, an exclusion made since never reaching them
   */
  private readonly prefixes = new Set<string>();
  /** the deletion of an earlier prefix's schedules failed: not tried again before then */
  private retireRetry?: Retry;
  /** its failures in a row (RETIRE_TRIES as a priority), and the warning last said of them */
  private retireFailures = 0;
  private retireSaid?: string;
  /** the learned state was looked at for schedules an earlier scanner kept (strandedOnOther) */
  private strandedLooked = false;
  /** those schedules, while this scanner cannot reach them (saved, so that each start says them) */
  private stranded?: { on: string; titles: string[]; prefixes: string[] };

  constructor(private readonly core: SchedulerCore) {}

  /**
   * For memory.ts: the platform's schedules of ours as last synced (or that it keeps none). A new
   * scheduler that knew none of them held no region before a run's time until its first sync, and
   * that sync, planning every schedule as one to create (a call each), waited for more calls than a
   * scarce allowance's pace ever holds: for days our scans joined the range runs (a daily restart at
   * 50 calls a day: 32-51 region-rule violations a run). With them, the holds go on from the start
   * and the first sync costs one call. With range scans off, knowing that none of ours is kept
   * spares the clean-up list at each start. The aims, their costs, the runs' placements (a restart
   * would write the spread's appliance back over one), the devices an aimed run did not find and the
   * runs' durations are kept with them.
   */
  readonly memory: Remembers = {
    snapshot: (now) => ({
      noneOfOurs: this.noneOfOurs,
      ...(this.noneOfOurs ? { noneOfOursAt: Math.min(this.noneOfOursAt, now) } : {}),
      schedules: this.schedules.map(({ action: _a, ...k }) => ({ ...k, since: Math.min(k.since, now) })),
      aimed: [...this.aimed].map(([title, a]) => [title, a.at, a.targets]),
      aimCost: [...this.aimCost].map(([title, c]) => [title, c.at, c.calls]),
      placed: [...this.placed].map(([title, p]) => [title, p.at, p.appliance, p.spread]),
      notFound: [...this.notFoundAt],
      durations: [...this.durations],
      // skips whose outcome lists still decide, and times skipped still to make up (a restart lost both)
      skipsSent: [...this.skipsSent],
      skipsSeen: [...this.skipsSeen],
      catchUps: [...this.catchUps.values()].map((c) => [c.title, c.region, c.at, c.retryAt]),
      prefixes: [...this.prefixes],
      // (set only while this scanner cannot reach them: a pretend one writes nothing over another kind's state, memory.ts)
      ...(this.stranded ? { stranded: this.stranded } : {}),
    }),
    merge: (data, now) => {
      const d = record(data);
      if (typeof d?.noneOfOurs !== 'boolean' || (d.noneOfOursAt !== undefined && !isNum(d.noneOfOursAt, 0, now + CLOCK_SKEW_MS))) return undefined;
      const kept = d.schedules === undefined ? [] : keptSchedules(d.schedules, now);
      const aims = d.aimed === undefined ? [] : keptAims(d.aimed, now);
      const costs = d.aimCost === undefined ? [] : numberRows(d.aimCost, [isTitle, num(now + CLOCK_SKEW_MS + 2 * DAY), int(1e6)], 10_000) as [string, number, number][] | undefined;
      const placed = d.placed === undefined ? [] : numberRows(d.placed, [isTitle, num(now + CLOCK_SKEW_MS + 2 * DAY), isTitle, isTitle], 10_000) as [string, number, string, string][] | undefined;
      const notFound = d.notFound === undefined ? [] : numberRows(d.notFound, [int(Number.MAX_SAFE_INTEGER, 1), num(now + CLOCK_SKEW_MS)], MAX_NOT_FOUND);
      const durations = d.durations === undefined ? [] : numberRows((d.durations as unknown[] | undefined)?.map?.((x) => [x]), [num(MAX_SPAN_MS)], 32);
      const skipsSent = d.skipsSent === undefined ? [] : skipKeys(d.skipsSent, now);
      const skipsSeen = d.skipsSeen === undefined ? [] : skipKeys(d.skipsSeen, now);
      const catchUps = d.catchUps === undefined ? [] : keptCatchUps(d.catchUps, now);
      // (saved before the prefixes were: the prefixes of the schedules kept)
      const prefixes = d.prefixes === undefined ? prefixesOf(kept ?? []) : keptPrefixes(d.prefixes);
      if (kept === undefined || aims === undefined || costs === undefined || placed === undefined || notFound === undefined || durations === undefined
        || skipsSent === undefined || skipsSeen === undefined || catchUps === undefined || prefixes === undefined) return undefined;
      // (whatever the scanner now: a later start with one that keeps schedules still deletes an earlier prefix's)
      for (const p of prefixes) this.prefixes.add(p);
      const earlier = prefixes.filter((p) => p !== this.core.opts.titlePrefix);
      // what the last scheduler knew of the runs: an aim still to come or to credit (a restart between
      // an aim and its run's credit would otherwise credit only the queued devices, and the first sync
      // would write the whole ranges back over every aim), the aims' costs (aim auto), the devices an
      // aimed run did not find, and the runs' durations (the first look and the hold)
      for (const [title, at, targets] of aims) if (!this.aimed.has(title)) this.aimed.set(title, { at, targets });
      for (const [title, at, calls] of costs) if (!this.aimCost.has(title)) this.aimCost.set(title, { at, calls });
      // (a restart would otherwise write the spread's appliance back over a run placed elsewhere, and place it again at its next time)
      for (const [title, at, appliance, spread] of placed) if (!this.placed.has(title)) this.placed.set(title, { at, appliance, spread });
      for (const [id, at] of notFound) if (!this.notFoundAt.has(id)) this.notFoundAt.set(id, Math.min(at, now));
      prependOlder(this.durations, durations.map(([ms]) => ms), 32);
      if (this.core.scanner.syncSchedules) {
        for (const k of skipsSent) this.skipsSent.add(k);
        for (const k of skipsSeen) this.skipsSeen.add(k);
        if (this.core.scanner.launchRanges) for (const c of catchUps) if (!this.catchUps.has(c.title)) this.catchUps.set(c.title, c);
      }
      const noneAt = typeof d.noneOfOursAt === 'number' ? Math.min(d.noneOfOursAt, now) : undefined;
      if (d.noneOfOurs && noneAt !== undefined && now - noneAt <= NONE_TRUSTED_MS) {
        this.noneOfOurs = true;
        this.noneOfOursAt = noneAt;
        // off now too: the clean-up at start is already done
        if (this.core.opts.rangeScans.times.length === 0 && this.synced === undefined) this.synced = '[]';
        return 'range schedules: none of ours kept';
      }
      if (d.noneOfOurs) return `range schedules: none of ours ${noneAt === undefined ? 'as an older version saw it' : `${Math.round((now - noneAt) / DAY)} days ago`}, listed again`;
      // as the platform had them at the last sync, until this scheduler's first (a scanner that keeps no
      // schedules now is another platform's, or none: they would hold regions for runs that never come)
      if (!this.core.scanner.syncSchedules) return `range schedules: the ${this.core.scanner.kind} scanner keeps none${kept.length ? ` (${kept.length} saved, not held)` : ''}`;
      if (this.synced === undefined && this.schedules.length === 0) this.schedules = kept.map((k) => ({ ...k, action: 'kept' as const }));
      const doubt = skipsSent.filter((k) => !this.skipsSeen.has(k)).length;
      const moved = placed.filter(([, , appliance, spread]) => appliance !== spread).length;
      const also = [aims.length ? `${aims.length} aim(s)` : '', moved ? `${moved} run(s) placed off the spread` : '', notFound.length ? `${notFound.length} device(s) an aimed run did not find` : '', durations.length ? `${durations.length} run duration(s)` : '',
        doubt ? `${doubt} skip(s) whose run a list is still to decide` : '', catchUps.length ? `${catchUps.length} skipped time(s) to make up` : '',
        earlier.length ? `schedules under the earlier title prefix(es) ${earlier.map((p) => `"${p}"`).join(', ')} to delete` : ''].filter(Boolean);
      return (kept.length ? `range schedules: ${kept.length} of ours as last synced` : 'range schedules: some of ours may be kept (cleaned up at start)') + (also.length ? `, ${also.join(', ')}` : '');
    },
    // too old for the rest: the platform ran the schedules meanwhile, and they go on until synced or
    // deleted (forgotten after 30 days stopped, an earlier prefix's ran beside the new prefix's, and
    // the current prefix's, its sync failing, ran for hours over an address excluded since)
    mergeAged: (data, now) => {
      const d = record(data);
      const kept = d?.schedules === undefined ? [] : keptSchedules(d.schedules, now);
      const prefixes = d?.prefixes === undefined ? prefixesOf(kept ?? []) : keptPrefixes(d.prefixes);
      if (!prefixes?.length) return undefined;
      for (const p of prefixes) this.prefixes.add(p);
      const current = this.core.opts.titlePrefix;
      const earlier = prefixes.filter((p) => p !== current);
      // every schedule as saved, the current prefix's too: their runs hold their regions and are judged by
      // their saved targets (refusedBy) until a sync says what the platform has. An earlier prefix's regions wait
      // for their deletion; the current prefix's are unsure (someone may have edited them since): counted as
      // changes to make, and taken as active (a hold for a run that never comes costs less than a run unheld)
      let taken = 0;
      if (this.synced === undefined && this.schedules.length === 0 && this.core.scanner.syncSchedules) {
        const mine = (kept ?? []).filter((k) => prefixes.some((p) => k.title.startsWith(`${p}-range `)));
        this.schedules = mine.map((k) => {
          if (!k.title.startsWith(`${current}-range `)) return { ...k, action: 'kept' as const };
          this.unsure.add(k.title);
          return { ...k, active: true, action: 'kept' as const };
        });
        taken = mine.length;
      }
      return `the range schedules' title prefix(es) ${prefixes.map((p) => `"${p}"`).join(', ')}${earlier.length ? ' (the earlier ones\' schedules to delete)' : ''}`
        + (taken ? `, ${taken} schedule(s) as last synced (listed again at the first sync)` : '');
    },
  };

  /** The schedules the config asks for now: each region's, at each time whose next run falls inside its scan windows. */
  private want(now: number): { want: RangeSchedule[]; regionOf: Map<string, string> } {
    const { opts } = this.core;
    const want: RangeSchedule[] = [];
    const regionOf = new Map<string, string>();
    for (const r of opts.regions) {
      const asked = this.askedOf(r, now);
      if (!asked) continue;
      const { appliance, targets, times } = asked;
      for (const time of times) {
        const title = rangeScheduleTitle(opts.titlePrefix, r.name, time);
        const endAfterMin = opts.rangeScans.endBeforeNext ? endBeforeNextMin(time, times) : undefined;
        const aim = this.aiming() ? this.aimed.get(title) : undefined;
        // (clipped again: the scope or the exclusions may have changed since the aim)
        const aimed = aim?.targets.length ? this.clip(title, aim.targets, targets) : [];
        // an aim that found nobody keeps the targets, inactive for that run only (a schedule names at least one address)
        const idle = aim !== undefined && aimed.length === 0 && aim.at === nextOccurrence(now, time);
        want.push({
          title, targets: aimed.length ? aimed : targets, appliance: this.runAppliance(r.name, title) ?? appliance, timeUtc: time,
          ...(r.optionProfile !== undefined ? { optionProfile: r.optionProfile } : {}),
          ...(endAfterMin !== undefined ? { endAfterMin } : {}),
          ...(this.skipping(r.name, title, time, now) || idle ? { active: false } : {}),
        });
        regionOf.set(title, r.name);
      }
    }
    return { want, regionOf };
  }

  /**
   * What the config asks of a region's range runs now (want() makes its schedules of it): its runs'
   * appliance (runApplianceOf), its targets, and the configured times whose next run falls inside its scan windows
   * (the platform runs a schedule whatever our windows say, so one whose next run falls outside them,
   * or in a blackout, is not kept until that run has passed). Undefined without an appliance or targets.
   */
  /**
   * schedule `title`'s aim clipped to its configured targets: worked out again only when either
   * changed (parsing both lists at every pass was a third of a range-scan simulation's time)
   */
  private clip(title: string, aim: string[], targets: string[]): string[] {
    const key = targets.join(',');
    let c = this.clipped.get(title);
    if (!c || c.aim !== aim || c.targets !== key) {
      c = { aim, targets: key, out: allowedRanges(aim, targets, []) };
      this.clipped.set(title, c);
    }
    return [...c.out];
  }

  private askedOf(r: SchedulerRegion, now: number): { appliance: string; targets: string[]; times: string[] } | undefined {
    const appliance = this.runAppliance(r.name);
    if (!appliance || this.core.opts.rangeScans.times.length === 0) return undefined;
    const targets = this.configuredTargets(r.name);
    if (!targets?.length) return undefined;
    const times = [...new Set(this.core.opts.rangeScans.times)].filter((time) => this.core.policy.windowOpen(r.name, nextOccurrence(now, time)));
    return { appliance, targets, times };
  }

  /** The schedule `title` of `region` as the config asks for it now (as want() writes it, unaimed), or undefined when it asks for none such. */
  private configuredSchedule(title: string, region: string): { appliance: string; targets: string[] | undefined; optionProfile?: string } | undefined {
    const { opts } = this.core;
    const r = opts.regions.find((x) => x.name === region);
    const appliance = this.runAppliance(region, title);
    if (!r || !appliance || !opts.rangeScans.times.some((time) => rangeScheduleTitle(opts.titlePrefix, r.name, time) === title)) return undefined;
    // (undefined targets: unreadable, said as the problem; none: the config asks for no run there)
    const targets = this.configuredTargets(r.name);
    return targets?.length === 0 ? undefined : { appliance, targets, ...(r.optionProfile !== undefined ? { optionProfile: r.optionProfile } : {}) };
  }

  /** Each region's runs spread over its appliances (runApplianceOf), for the config it was made of. */
  private spread?: { regions: unknown; rangeScans: unknown; withRuns: PlacementRegion[]; byRegion: Map<string, string> };

  private spreadOf(): { withRuns: PlacementRegion[]; byRegion: Map<string, string> } {
    const { opts } = this.core;
    if (this.spread?.regions !== opts.regions || this.spread.rangeScans !== opts.rangeScans) {
      // (targets that cannot be read count as asking for runs, so that mending them moves no other region's runs)
      const withRuns = opts.regions.filter((r) => r.appliances.length > 0 && this.configuredTargets(r.name)?.length !== 0);
      this.spread = { regions: opts.regions, rangeScans: opts.rangeScans, withRuns, byRegion: runApplianceOf(withRuns) };
    }
    return this.spread;
  }

  /**
   * The appliance a region's runs go on: for schedule `title`, where the placement before its
   * last time put it (place), while the spread is what it was then; else the spread's.
   */
  private runAppliance(region: string, title?: string): string | undefined {
    const spread = this.spreadOf().byRegion.get(region);
    const p = title === undefined ? undefined : this.placed.get(title);
    // (and while the region still lists that appliance: one taken out of it may leave the spread as it was)
    const listed = p && this.core.opts.regions.find((r) => r.name === region)?.appliances.some((a) => a.name === p.appliance);
    return p && listed && p.spread === spread ? p.appliance : spread;
  }

  /**
   * The region's runs' targets as configured (default: its CIDRs), clipped to the scope, exclusions
   * cut out, IPv4 only (said once per region): an IPv6 pool (a /64) is no range to sweep, and the
   * platform's schedules take IPv4 ranges (the Qualys client refuses any other item, and with it the
   * whole sync, which would leave every other schedule as it was, old targets included). Undefined
   * (and said) when unreadable.
   */
  private configuredTargets(region: string): string[] | undefined {
    const { opts, policy, log } = this.core;
    const wanted = opts.rangeScans.targets[region] ?? policy.regions.byName(region)?.cidrs ?? [];
    try {
      const allowed = policy.allowedRanges(wanted);
      const v4 = allowed.filter((r) => !r.includes(':'));
      if (v4.length < allowed.length && !this.v6LeftOut.has(region)) {
        this.v6LeftOut.add(region);
        log.warn({ region, leftOut: allowed.filter((r) => r.includes(':')).slice(0, 5) }, `range runs sweep IPv4 ranges only: region ${region}'s IPv6 ranges are left out of its runs`);
      }
      return v4;
    } catch (err) {
      this.problem = `scheduler.rangeScans.targets.${region}: ${(err as Error).message}`;
      return undefined;
    }
  }

  /**
   * Does a schedule of ours scan what the policy now refuses, so that its sync is a priority (the
   * calls kept for corrections, retried within minutes)? Until MEND_TRIES syncs in a row have failed:
   * a sync the platform keeps refusing (a misspelt appliance in the same reload) then goes back to
   * an ordinary one's pace, and no longer holds calls back from launches.
   */
  private mending(): boolean {
    // (asked first: a new policy, a reload, starts the tries again)
    const refused = this.schedules.some((s) => this.refusedBy(s.targets));
    return refused && this.mendFailures < MEND_TRIES;
  }

  /**
   * Would these targets scan an address the policy refuses (or, by `unreadable`, one that cannot be read)? Asked of
   * each schedule every pass: answered once per targets list and policy (an aimed schedule lists
   * hundreds of addresses; the simulator's runs took three times as long without it).
   */
  private refusedBy(targets: string[], unreadable = true): boolean {
    const policy = this.core.policy;
    if (this.refusedMemo?.policy !== policy) {
      this.refusedMemo = { policy, answers: new WeakMap() };
      this.mendFailures = 0;
    }
    let answer = this.refusedMemo.answers.get(targets);
    if (answer === undefined) {
      try {
        // (both merged: a schedule edited to overlap itself counts each address once)
        answer = rangeSize(policy.allowedRanges(targets)) < rangeSize(allowedRanges(targets, ['0.0.0.0/0', '::/0'], []));
      } catch {
        answer = 'unreadable';
      }
      this.refusedMemo.answers.set(targets, answer);
    }
    return answer === 'unreadable' ? unreadable : answer;
  }

  /** Bring the platform's schedules in step when the wanted set changed, daily, or after a failure. */
  private async sync(now: number, waiting: ReadonlySet<string> = new Set()): Promise<void> {
    const { scanner, budget, log, opts } = this.core;
    if (!scanner.syncSchedules) {
      if (opts.rangeScans.times.length > 0 && this.problem === undefined) {
        this.problem = `the ${scanner.kind} scanner keeps no scheduled scans: scheduler.rangeScans is ignored`;
        log.warn(this.problem);
      }
      return;
    }
    // off, and the clean-up at start done: nothing to sync
    if (opts.rangeScans.times.length === 0 && this.synced !== undefined && this.synced === '[]') return;
    const asked = this.want(now);
    const { regionOf } = asked;
    // (regions where an earlier prefix's schedule is still to delete wait for it: retire; none left, the sync waits whole)
    const want = waiting.size ? asked.want.filter((w) => !waiting.has(regionOf.get(w.title)!)) : asked.want;
    if (waiting.size && want.length === 0) return;
    const key = JSON.stringify(want);
    if (key === this.failedKey && now < this.nextSyncAt) return;
    // with no times configured, one sync at start deletes what an earlier config left, and that is all
    if (key === this.synced && (want.length === 0 || now < this.nextSyncAt)) return;
    // a skip to make (or undo) weighs like a cancel: it keeps two scans out of one region
    const skipChange = want.some((w) => (w.active === false) !== (this.schedules.find((s) => s.title === w.title)?.active === false));
    // an aim is due at its time: a failed one is retried as soon as a skip is
    // (a run left unaimed too: its whole targets are to be written back over the last aim)
    const dueSoon = (at: number) => at > now && at - now <= AIM_BEFORE_MS;
    // (and a run's placement, from its hold on: a failed one retried as soon, not after its time)
    const placing = (w: RangeSchedule) => this.placed.get(w.title)?.appliance === w.appliance && this.schedules.find((x) => x.title === w.title)?.appliance !== w.appliance;
    const aimChange = [...this.aimed.values()].some((a) => dueSoon(a.at)) || [...this.unaimed.values()].some(dueSoon)
      || want.some((w) => placing(w) && nextOccurrence(now, w.timeUtc) - now <= this.placeBeforeMs());
    // the list, and a call per change (as far as the schedules last synced tell)
    const prefix = `${opts.titlePrefix}-range `;
    const calls = 1 + planScheduleSync(this.schedules.filter((s) => !this.unsure.has(s.title)), want, prefix).filter((st) => st.action !== 'kept').length;
    // a schedule of ours that would scan what the policy now refuses (a reload narrowed the scope or
    // added an exclusion) is mended as a skip is: with the calls kept for corrections, retried within minutes
    const refusing = this.mending();
    if (!budget.canSpendCalls(calls, skipChange || refusing)) return;
    // a sync that creates and then fails leaves schedules of ours: "none kept" no longer holds, whatever comes back
    if (want.length > 0) {
      this.noneOfOurs = false;
      this.prefixes.add(opts.titlePrefix);
    }
    // the skips a sync reached the platform with (all of a sync that answered; of one stopped half-way, those it made or may have)
    const sent = (titles?: Set<string>) => {
      for (const w of want) {
        const until = w.active === false && (!titles || titles.has(w.title)) ? this.inactive.get(w.title) : undefined;
        if (until !== undefined) this.skipsSent.add(`${w.title}@${until - 1}`);
      }
    };
    try {
      const got = await budget.call('sync range schedules', 'syncSchedules', () => scanner.syncSchedules!(want, prefix));
      budget.spentExtra(got.filter((s) => s.action !== 'kept').length);
      const before = new Map(this.schedules.map((s) => [s.title, s.since]));
      // (an earlier prefix's not deleted yet stay known: their runs hold their regions, and retire names them)
      const earlier = [...this.prefixes].filter((p) => p !== opts.titlePrefix).map((p) => `${p}-range `);
      this.schedules = [...this.schedules.filter((s) => earlier.some((p) => s.title.startsWith(p))), ...got.filter((s) => s.action !== 'deleted' && regionOf.has(s.title))
        .map((s) => ({ ...s, region: regionOf.get(s.title)!, since: s.action === 'kept' ? before.get(s.title) ?? now : now }))];
      this.synced = key;
      this.unsure.clear();
      this.noneOfOurs = want.length === 0;
      if (this.noneOfOurs) {
        this.noneOfOursAt = now;
        this.prefixes.delete(opts.titlePrefix);
      }
      this.cleanupFailures = 0;
      this.mendFailures = 0;
      this.failedKey = undefined;
      this.nextSyncAt = now + DAY;
      sent();
      this.inactiveTaken(now, this.core.clock.now());
      this.unsureAnswered.clear();
      if (this.problem?.startsWith('sync:')) this.problem = undefined;
      const changed = got.filter((s) => s.action !== 'kept');
      if (changed.length) log.info({ schedules: changed.map((s) => `${s.action} ${s.title}`) }, `range schedules: ${changed.length} changed`);
    } catch (err) {
      if (err instanceof FailedCall && err.outcome.next === 'wait' && err.outcome.holds === 'call') {
        // the schedule API asks for a wait (just answered so, or held in the budget without a call): tried again once it ends, no failure counted
        this.nextSyncAt = Math.max(now + 1000, err.outcome.untilMs ?? now + SKIP_RETRY_MS);
        this.problem = `sync: ${err.outcome.message} (waiting until ${new Date(this.nextSyncAt).toISOString()})`;
        return;
      }
      if (refusing) this.mendFailures++;
      this.nextSyncAt = now + (skipChange || aimChange || refusing ? SKIP_RETRY_MS : SYNC_RETRY_MS);
      this.failedKey = key;
      this.problem = `sync: ${errInfo(err).message}`;
      // a sync stopped half-way: what it made is known (its runs hold their regions), what it may have made is taken as made
      const partial = err instanceof FailedCall && err.error instanceof ScheduleSyncIncomplete ? err.error : undefined;
      if (partial) {
        budget.spentExtra(partial.changeCalls);
        this.schedules = afterPartialSync(this.schedules, partial, want, regionOf, now, this.unsure);
        sent(new Set([...partial.done.map((d) => d.title), ...partial.unsure]));
        const answered = this.core.clock.now();
        this.inactiveTaken(now, answered);
        for (const d of partial.done) this.unsureAnswered.delete(d.title);
        // (a deactivation's only, the latest: a later time is the safer side, a time in doubt)
        for (const title of partial.unsure) if (want.find((w) => w.title === title)?.active === false) this.unsureAnswered.set(title, answered);
      }
      // the feature off: the clean-up at start is tried a few times an hour apart, then left to the next
      // start (a subscription without the schedule API's permission would otherwise pay a call an hour for nothing)
      if (want.length === 0 && ++this.cleanupFailures >= CLEANUP_TRIES) this.synced = key;
      // schedules the policy now refuses, left as they were by a sync refused as a whole (more addresses
      // than the scanner checks in one sync, one schedule it cannot take): each mended alone
      // (not on a refusal of the API's, a 409 or a 5xx: the schedule's own sync would fail alike, and be deleted for it)
      if (refusing && refusedForContent(err)) await this.mendAlone(want, regionOf, now);
    }
  }

  /**
   * After a sync refused for what it names, each schedule as synced that names what the policy now refuses is synced on
   * its own (the scanner's sync of that exact title: nothing else is ours to that call): its
   * wanted form, or, if that is refused too or the config wants none such, deleted, so that its runs
   * stop until a whole sync makes it again. Deactivating would send its targets again, which the
   * scanner checks as any (a want refused for its size or scope is refused inactive too); a delete
   * sends none. Two calls each (list, change); the first failure of a delete ends the round.
   */
  private async mendAlone(want: RangeSchedule[], regionOf: Map<string, string>, now: number): Promise<void> {
    const { scanner, budget, log } = this.core;
    for (const s of this.schedules.filter((x) => this.refusedBy(x.targets))) {
      const w = want.find((x) => x.title === s.title);
      let got: ScheduleStatus[] | undefined;
      let why = '';
      for (const alone of w ? [[w], []] : [[]]) {
        if (!budget.canSpendCalls(2, true)) return;
        try {
          got = await budget.call(`sync range schedule ${s.title} alone`, 'syncSchedules', () => scanner.syncSchedules!(alone, s.title, true));
          budget.spentExtra(got.filter((x) => x.action !== 'kept').length);
          break;
        } catch (err) {
          if (err instanceof FailedCall && err.error instanceof ScheduleSyncIncomplete) budget.spentExtra(err.error.changeCalls);
          why = errInfo(err).message;
          // (the scanner's answer holds every call of its kind, or more: no other will do better now)
          if (err instanceof FailedCall && err.outcome.next !== 'retry') return;
          // deleted only when its own sync was refused for what it names (scope, size): a 409 or a 5xx is tried again
          if (alone.length === 0 || !refusedForContent(err)) return;
        }
      }
      if (!got) continue;
      const mine = got.find((x) => x.title === s.title && x.action !== 'deleted');
      const at = this.schedules.indexOf(s);
      if (mine) {
        this.schedules[at] = { ...mine, region: regionOf.get(s.title) ?? s.region, since: mine.action === 'kept' ? s.since : now };
        // (a skip it carried is made, as a whole sync's)
        const until = w?.active === false ? this.inactive.get(s.title) : undefined;
        if (until !== undefined) {
          this.skipsSent.add(`${s.title}@${until - 1}`);
          this.inactiveTaken(now, this.core.clock.now());
        }
        log.warn({ schedule: s.title, region: s.region }, `range schedule ${s.title} named addresses the policy refuses and the sync of all schedules failed: mended on its own`);
      } else {
        this.schedules.splice(at, 1);
        log.warn({ schedule: s.title, region: s.region, why }, `range schedule ${s.title} named addresses the policy refuses and could not be mended${why ? ` (${why})` : ''}: deleted, its runs stop until a sync of all schedules makes it again`);
      }
    }
  }

  /**
   * Schedules of ours kept under an earlier title prefix (cluster.name set, or renamed: the prefix
   * is remembered across restarts) are deleted before any is made under the new one in their
   * regions (a sync with none wanted under the old prefix: only titles starting `<old>-range ` are
   * touched, so another deployment's under its own prefix never is), and said. Returns the regions
   * whose new schedules wait (an old one is still there: two runs in a region), every region ('all')
   * when which ones is unknown; none once every old one is deleted. Meanwhile the old schedules' runs
   * hold their regions and the deletion is tried again: the poll interval doubling, an hour at most,
   * as a priority for RETIRE_TRIES failures, then as an ordinary call up to RETIRE_RETRY_MAX_MS
   * apart (a delete the platform always refuses had spent 48 calls a day, blocking the schedule API daily at 50).
   */
  private async retire(now: number): Promise<Set<string> | 'all'> {
    const { scanner, budget, log, opts } = this.core;
    const none = new Set<string>();
    const old = [...this.prefixes].filter((p) => p !== opts.titlePrefix);
    if (old.length === 0 || !scanner.syncSchedules || scanner.pretend) return none;
    const waiting = () => {
      const left = this.schedules.filter((s) => old.some((p) => this.prefixes.has(p) && s.title.startsWith(`${p}-range `)));
      // (a prefix none of whose schedules is known: which regions it runs in is not)
      const unknown = old.some((p) => this.prefixes.has(p) && !left.some((s) => s.title.startsWith(`${p}-range `)));
      return unknown ? 'all' as const : new Set(left.map((s) => s.region));
    };
    if (now < (this.retireRetry?.at ?? 0)) return waiting();
    for (const p of old) {
      const prefix = `${p}-range `;
      const known = this.schedules.filter((s) => s.title.startsWith(prefix));
      if (!budget.canSpendCalls(1 + Math.max(1, known.length), this.retireFailures < RETIRE_TRIES)) return waiting();
      const drop = (titles: Set<string>) => {
        this.schedules = this.schedules.filter((s) => !(s.title.startsWith(prefix) && titles.has(s.title)));
      };
      try {
        const got = await budget.call(`delete range schedules of the earlier title prefix "${p}"`, 'syncSchedules', () => scanner.syncSchedules!([], prefix));
        const deleted = got.filter((s) => s.action === 'deleted');
        budget.spentExtra(deleted.length);
        this.prefixes.delete(p);
        this.schedules = this.schedules.filter((s) => !s.title.startsWith(prefix));
        this.retireRetry = undefined;
        this.retireFailures = 0;
        this.retireSaid = undefined;
        if (this.problem?.startsWith('sync:')) this.problem = undefined;
        log.warn({ prefix: p, titlePrefix: opts.titlePrefix, deleted: deleted.map((s) => s.title) }, deleted.length
          ? `range schedules made under the earlier title prefix "${p}" deleted (${deleted.map((s) => s.title).join(', ')}): the prefix is now "${opts.titlePrefix}" (cluster.name), and the schedules are made under it`
          : `no range schedule of the earlier title prefix "${p}" left on the platform: the prefix is now "${opts.titlePrefix}" (cluster.name)`);
      } catch (err) {
        const partial = err instanceof FailedCall && err.error instanceof ScheduleSyncIncomplete ? err.error : undefined;
        if (partial) {
          budget.spentExtra(partial.changeCalls);
          drop(new Set(partial.done.filter((s) => s.action === 'deleted').map((s) => s.title)));
        }
        const wait = err instanceof FailedCall && err.outcome.next === 'wait' && err.outcome.untilMs !== undefined ? err.outcome.untilMs : undefined;
        const tries = ++this.retireFailures;
        // (past the priority tries, the doubling goes on beyond the hour)
        this.retireRetry = wait !== undefined ? { at: Math.max(now + 1000, wait), waitMs: this.retireRetry?.waitMs ?? 0 }
          : nextRetry(this.retireRetry, now, opts.pollIntervalS * 1000, tries >= RETIRE_TRIES ? RETIRE_RETRY_MAX_MS : SYNC_RETRY_MS);
        const left = this.schedules.filter((s) => s.title.startsWith(prefix)).map((s) => s.title);
        const regions = waiting();
        const without = regions === 'all' ? 'any region' : `region(s) ${[...regions].join(', ')}`;
        const what = `${p}|${left.join()}|${regions === 'all' ? regions : [...regions].join()}`;
        const why = `sync: the range schedules of the earlier title prefix "${p}"${left.length ? ` (${left.join(', ')})` : ''} are not deleted yet (${errInfo(err).message}); ${without} get no range run under "${opts.titlePrefix}" until they are`;
        this.problem = `${why} (tried again ${new Date(this.retireRetry.at).toISOString()}${tries >= RETIRE_TRIES ? `, ${tries} tries failed: as calls allow` : ''})`;
        // (said once, then when what is left changes: not at every retry; the status page has the latest)
        if (what !== this.retireSaid) log.warn({ prefix: p, titlePrefix: opts.titlePrefix, err: errInfo(err) }, `range schedules of the earlier title prefix "${p}" not deleted: ${this.problem}`);
        this.retireSaid = what;
        return regions;
      }
    }
    return none;
  }

  /**
   * A scanner that keeps no schedules (scanner.type changed), a pretend one (a dry-run trial on the
   * same state) or one of another kind cannot reach the range schedules an earlier one made: they go
   * on running on that platform daily. Said at each start until one with the scanner that made them
   * (the record is saved as `stranded`; a pretend scanner writes nothing over another's state),
   * naming them, and on the status page while onsight runs. Never of a dry-run trial's schedules,
   * which no platform holds.
   */
  private async strandedOnOther(): Promise<void> {
    this.strandedLooked = true;
    const { scanner, store, log, clock } = this.core;
    let rows;
    try {
      rows = await store.learned();
    } catch {
      return; // (said by the learned state's own read, which fails alike)
    }
    // (this part's row, as scheduler.ts names it)
    const row = rows.find((r) => r.name === 'range-schedules');
    let kind: unknown;
    try {
      kind = (JSON.parse(rows.find((r) => r.name === LEARNED_WITH)?.state ?? '{}') as { scanner?: unknown }).scanner;
    } catch { /* (an older state: no kind) */ }
    let titles: string[] = [];
    let prefixes: string[] = [];
    try {
      const d = record(row ? JSON.parse(row.state) : undefined);
      const kept = keptSchedules(d?.schedules ?? [], clock.now()) ?? [];
      titles = kept.map((k) => k.title);
      prefixes = (d?.prefixes === undefined ? prefixesOf(kept) : keptPrefixes(d.prefixes)) ?? [];
      // (saved by a start on this scanner that could not reach them either: the record it kept)
      const st = record(d?.stranded);
      // (one saved as on the dry-run scanner's is none: dropped, the next save writes none)
      if (st && typeof st.on === 'string' && st.on !== DRY_RUN_KIND && Array.isArray(st.titles) && st.titles.length <= 10_000 && st.titles.every(isTitle)) {
        kind = st.on;
        titles = st.titles as string[];
        prefixes = keptPrefixes(st.prefixes) ?? [];
      }
    } catch { /* (unreadable: said by the learned state's own read) */ }
    // (a dry-run trial's schedules were never made on any platform: nothing runs to be reached)
    if (titles.length === 0 || kind === DRY_RUN_KIND) return;
    // the scanner that made them is back: it deletes an earlier prefix's (retire)
    // (one of no kind saved, a state from before the kind row, is taken as theirs, as before)
    if (scanner.syncSchedules && !scanner.pretend && (kind === undefined || kind === scanner.kind)) {
      if (kind === scanner.kind) for (const p of prefixes) this.prefixes.add(p);
      return;
    }
    // (a pretend scanner's own, or of no kind saved: a dry run's schedules are nowhere to reach)
    if (kind === scanner.kind || (scanner.pretend && kind === undefined)) return;
    // (kept in the saved state until a start with the scanner that made them: a later start says them again)
    if (typeof kind === 'string') this.stranded = { on: kind, titles, prefixes };
    const on = typeof kind === 'string' ? `the ${kind} scanner's platform` : 'the earlier scanner\'s platform';
    // (a dry run's sync touches no platform, and another kind's another platform: they reach them no better than a scanner that keeps none)
    const why = scanner.pretend ? 'it schedules and scans nothing' : scanner.syncSchedules ? 'it keeps schedules on its own platform only' : 'onsight has no credentials for it now';
    this.problem = `range schedules ${titles.join(', ')} were made on ${on} and run there daily; the ${scanner.kind} scanner cannot reach them (${why}): delete them there, or start onsight once more with that scanner and scheduler.rangeScans.times: [] (it deletes them)${this.core.opts.rangeScans.times.length && !scanner.syncSchedules ? `; scheduler.rangeScans is ignored: the ${scanner.kind} scanner keeps no scheduled scans` : ''}`;
    log.warn({ schedules: titles, on: kind }, this.problem);
  }

  /**
   * What a sync that made schedules inactive means (after a full sync, or one stopped half-way),
   * `landed` when its answer came: a skip known made before its time (the sync ended before it)
   * drops the unseen run registered for that time (none will come), and is counted once, said, and
   * made up while calls are scarce. One the sync may have made only at or after its time (it
   * straddled the time: the platform may have run it) is left to the lists: its run holds the
   * region, and is taken as skipped if never seen (lookAtRuns).
   */
  private inactiveTaken(now: number, landed: number): void {
    // made inactive by when: found already so after a sync whose answer was lost, by the time that sync answered
    const madeBy = (sch: KnownSchedule) => (sch.action === 'kept' ? Math.min(landed, this.unsureAnswered.get(sch.title) ?? landed) : landed);
    // a schedule inactive now (a skip, an aim at nobody) runs nothing at its next time, if made inactive before it
    for (const sch of this.schedules) {
      if (sch.active !== false) continue;
      const next = nextOccurrence(now, sch.timeUtc);
      const key = `${sch.title}@${next}`;
      const r = this.runs.get(key);
      if (r && !r.scan && !r.madeUp && madeBy(sch) < next) this.runs.delete(key);
    }
    for (const sch of this.schedules) {
      // (inactive for want of held addresses to aim at is no skip; a skip is counted once per time skipped)
      const until = this.inactive.get(sch.title);
      if (sch.active !== false || until === undefined || madeBy(sch) >= until - 1) continue;
      // the time skipped (a sync that lands after it, a retry, must not take the next day's for it)
      this.skipTaken(sch.title, sch.region, until - 1);
    }
  }

  /** A time known skipped (the platform runs nothing then): counted once, its unseen run dropped, made up while calls are scarce. */
  private skipTaken(title: string, region: string, at: number, why = 'the region\'s previous run still goes (the schedule is inactive until that run is seen ended)'): void {
    const { scanner, budget, log } = this.core;
    const key = `${title}@${at}`;
    if (this.skipsSeen.has(key)) return;
    this.skipsSeen.add(key);
    this.skips++;
    if (!this.runs.get(key)?.scan) this.runs.delete(key);
    // made up only while calls are scarce: with more, our own launches (the present due devices only) do better than a whole range holding the region
    if (scanner.launchRanges && !scanner.pretend && budget.scarce()) this.catchUps.set(title, { title, region, at, retryAt: 0 });
    log.info({ region, schedule: title, at: new Date(at).toISOString() }, `range run ${title} skipped: ${why}`);
  }

  /** How long before its time a run is placed: when its hold begins (our launches keep its slot from then: reserved), the aim's lead at least. */
  private placeBeforeMs(): number {
    return Math.max(AIM_BEFORE_MS, this.holdBeforeMs());
  }

  /**
   * The appliances each region's runs would go on now (placeRuns): the spread's, except off one
   * overrun by other tools' scans (appliances.overrun, OVERRUN_MS) or listed offline, by a list
   * recent enough (not stale); on an older one, the spread's.
   */
  private placement(now: number): { spread: ReadonlyMap<string, string>; placed: Map<string, string>; blocked: Map<string, string> } {
    const { opts, appliances } = this.core;
    const { withRuns, byRegion } = this.spreadOf();
    const blocked = new Map<string, string>();
    if (!appliances.stale(now, opts.applianceRefreshS)) {
      for (const name of new Set(withRuns.flatMap((r) => r.appliances.map((a) => a.name)))) {
        if (!appliances.load(name, []).online) blocked.set(name, 'listed offline');
        else if (appliances.overrun(name, OVERRUN_MS)) blocked.set(name, `other tools' scans have held every slot for ${OVERRUN_MS / MIN} min or longer`);
      }
    }
    return { spread: byRegion, placed: placeRuns(withRuns, byRegion, new Set(blocked.keys())), blocked };
  }

  /**
   * When each run's hold begins (placeBeforeMs), its appliance for that time (placement): the
   * spread's unless that one is blocked (overrun by other tools' scans, or offline) and the region
   * has one that is not; the appliance list is read again first where a region has a choice. The
   * run keeps it until its next time's placement (a change of the config's spread drops it). A time
   * kept inactive runs nothing and stays where it is.
   */
  private async place(now: number): Promise<void> {
    const { opts, appliances, log } = this.core;
    for (const title of this.placed.keys()) if (!this.schedules.some((s) => s.title === title)) this.placed.delete(title);
    const soon = this.dueWithin(now, this.placeBeforeMs(), (title, at) => this.placed.get(title)?.at === at);
    if (soon.length === 0) return;
    const { withRuns } = this.spreadOf();
    if (soon.some((s) => (withRuns.find((r) => r.name === s.region)?.appliances.length ?? 0) > 1) && appliances.stale(now, opts.applianceRefreshS)) await this.core.launch.refreshAppliances();
    const { spread, placed, blocked } = this.placement(now);
    for (const s of soon) {
      const at = nextOccurrence(now, s.timeUtc);
      const from = spread.get(s.region);
      if (from === undefined) continue;
      const idle = s.active === false || this.inactive.has(s.title);
      const ap = idle ? s.appliance : placed.get(s.region) ?? from;
      this.placed.set(s.title, { at, appliance: ap, spread: from });
      // (said when it changes: a run placed elsewhere day after day is said once)
      if (idle || ap === s.appliance) continue;
      if (ap !== from) {
        log.info({ region: s.region, schedule: s.title, appliance: ap, from },
          `range run ${s.title} placed on ${ap}: ${from} ${blocked.get(from)} (a run queued there holds region ${s.region} for as long as they go)`);
      } else {
        log.info({ region: s.region, schedule: s.title, appliance: ap }, `range run ${s.title} placed on ${ap}, the spread's: it is online and not overrun by other tools' scans`);
      }
    }
  }

  /** Schedules whose next time comes within `ms` and that `done` does not say are already seen to for that time. */
  private dueWithin(now: number, ms: number, done: (title: string, at: number) => boolean): KnownSchedule[] {
    return this.schedules.filter((s) => {
      const at = nextOccurrence(now, s.timeUtc);
      return at - now <= ms && !done(s.title, at);
    });
  }

  /**
   * Are runs aimed at the addresses devices hold (rangeScans.aim)? `auto`: while the aims' calls (a
   * schedule list per time of day, an update per schedule) are at most AIM_SHARE of the allowance's
   * calls a day (or it states no limit). At 50 calls a day they would be about a quarter of it, and
   * cost more coverage than the idle addresses do (simulator: -5.7 points); at 300, a twentieth.
   */
  private aiming(): boolean {
    const { aim } = this.core.opts.rangeScans;
    if (aim !== 'auto') return aim === 'held';
    const perDay = this.core.budget.callsPerDay();
    // a list per time, and per schedule its update and its credit's host-list calls (2 until costed)
    const calls = new Set(this.schedules.map((s) => s.timeUtc)).size + this.schedules.reduce((n, s) => n + (this.aimCost.get(s.title)?.calls ?? 2), 0);
    return perDay === undefined || calls <= AIM_SHARE * perDay;
  }

  /**
   * AIM_BEFORE_MS before each time, the addresses devices hold now within the schedule's targets
   * (present bindings, scope and exclusions applied as to the targets) become the run's targets:
   * the sync that follows writes them (a call per schedule changed). Devices not yet due are kept
   * in (scanned while present, they stay in their window through visits too short to catch), but
   * not one scanned within AIM_SKIPS_SCANNED_MS. A device arriving later is left to onsight's own
   * launches once the run has ended; one onsight has no line for is not scanned by the run at all
   * (aim: ranges scans it, with every idle address).
   */
  private async aim(now: number): Promise<void> {
    if (this.core.opts.rangeScans.aim === 'ranges') return;
    if (!this.aiming()) this.aimed.clear();
    // (each time is costed, aimed or not: whether aiming pays depends on who is there)
    const soon = this.dueWithin(now, AIM_BEFORE_MS, (title, at) => this.aimCost.get(title)?.at === at);
    if (soon.length === 0) return;
    const held = await this.heldAddresses(now);
    for (const s of soon) {
      const at = nextOccurrence(now, s.timeUtc);
      const targets = this.aimAt(s.region, held);
      if (!targets) continue;
      // its update, and the host-list calls that credit the run (a call per batch of addresses)
      this.aimCost.set(s.title, { at, calls: 1 + this.core.budget.hostListCalls(Number(rangeSize(targets))) });
      if (!this.aiming()) continue;
      if (this.waitsLong(s.region, now)) {
        // the whole targets, written back by the sync (a run already seen keeps the aim it was credited by)
        this.aimed.delete(s.title);
        // (made again after an operator's mark: counted and said once)
        const again = this.unaimed.get(s.title) === at;
        this.unaimed.set(s.title, at);
        // (a time kept inactive, skipped while a run still goes, runs nothing: not counted)
        if (s.active === false || again) continue;
        this.unaimedQueued++;
        const queuedAt = this.queuedLongAt.get(s.region)!;
        this.core.log.info({ schedule: s.title, region: s.region, queuedSeen: new Date(queuedAt).toISOString() },
          `range run ${s.title} not aimed: a run of region ${s.region} still waited for a slot when the region's next time came (seen ${Math.round((now - queuedAt) / 60_000)} min ago), and held addresses would be stale when it starts; its whole targets are scanned`);
        continue;
      }
      // (aimed again after an operator's mark: counted once, when it first aims at someone)
      const before = this.aimed.get(s.title);
      if (targets.length && !(before?.at === at && before.targets.length)) this.aims++;
      this.aimed.set(s.title, { at, targets });
      this.unaimed.delete(s.title);
      this.core.log.debug({ schedule: s.title, region: s.region, targets: targets.length }, `range run ${s.title} aimed at the addresses devices hold in its targets`);
    }
  }

  /**
   * An operator skipped a device (decide.ts applyOperatorMarks): the aims written for runs still to come
   * are made again at the next pass (aim() takes a schedule whose aim is not for its next time), so
   * a device skipped after its run was aimed, up to AIM_BEFORE_MS before it, is left out (one update
   * per schedule whose aim changes). A run already going keeps the aim it started with.
   */
  marksChanged(now: number): void {
    for (const [title, c] of this.aimCost) if (c.at > now) this.aimCost.delete(title);
  }

  /**
   * The addresses present devices hold now, less those of devices scanned within AIM_SKIPS_SCANNED_MS
   * and of devices an operator skipped (`onsight skip`: never queued or launched, so never aimed at either).
   */
  private async heldAddresses(now: number): Promise<string[]> {
    const held: string[] = [];
    const stillMissed = new Set<number>();
    for await (const page of this.core.inventory.presentBindingPages(now)) {
      const marks = await this.core.store.marksOf([...new Set(page.map((b) => b.identityId))]);
      const skipped = new Set(marks.filter((m) => m.skipUntil !== undefined && m.skipUntil > now).map((m) => m.identityId));
      for (const b of page) {
        const missed = this.notFoundAt.get(b.id);
        if (missed !== undefined) {
          // seen again since (a line, or a scan of ours that found it), or long enough ago to try again
          if (b.lastSeen >= missed || (b.lastScannedAt ?? 0) > missed || now - missed > NOT_FOUND_FORGET_MS) this.notFoundAt.delete(b.id);
          else stillMissed.add(b.id);
        }
        if (!parseInterval(b.ip) || (b.lastScannedAt !== undefined && now - b.lastScannedAt < AIM_SKIPS_SCANNED_MS)) continue;
        if (stillMissed.has(b.id) || skipped.has(b.identityId)) continue;
        held.push(b.ip);
      }
    }
    // (devices no longer present are forgotten)
    for (const id of this.notFoundAt.keys()) if (!stillMissed.has(id)) this.notFoundAt.delete(id);
    return held;
  }

  /** Of `held`, those within the region's configured targets (already clipped to the scope, exclusions cut out); undefined when those are unreadable. */
  private aimAt(region: string, held: string[]): string[] | undefined {
    const configured = this.configuredTargets(region);
    if (!configured) return undefined;
    return held.length ? allowedRanges(held, configured, []) : [];
  }

  /**
   * Is the schedule to be kept inactive? From SKIP_AHEAD_MS before one of its times at which a run
   * of its region, seen going (running, or queued behind others' scans) by a list made since
   * SEEN_FRESH_MS before that time, has not been seen ended; until that time has passed and the run
   * is seen ended: the platform would start the new run on top of it (a region runs one scan at a
   * time). A queued run keeps its place in the appliance's queue, which a new run would not have.
   * Deactivating and activating again cost two calls each (list, update). This is what is wanted;
   * the platform's state is what the last sync made (`schedules[].active`).
   */
  private skipping(region: string, title: string, time: string, now: number): boolean {
    const next = nextOccurrence(now, time);
    const going = (fresh: number) => [...this.runs.values()].some((r) => r.region === region && r.scan && !r.released && r.at < next && (r.seenAt ?? 0) >= fresh);
    const until = this.inactive.get(title);
    if (until !== undefined) {
      const inactiveNow = this.schedules.find((s) => s.title === title)?.active === false;
      // a skip no sync made before its time is given up: the platform ran that time, and making it now keeps nothing out
      if (now >= until && !inactiveNow) {
        this.inactive.delete(title);
        return false;
      }
      if (now < until) return true;
      if (going(0)) {
        // a run going past the next time too: that time is skipped as well (counted, made up), not left under the first's
        if (next - now <= SKIP_AHEAD_MS && next + 1 > until) {
          this.inactive.set(title, next + 1);
          // already inactive on the platform (as last synced) before that time: no sync to wait for, it is skipped
          if (inactiveNow) this.skipTaken(title, region, next);
        }
        return true;
      }
      this.inactive.delete(title);
      return false;
    }
    if (next - now > SKIP_AHEAD_MS || !going(next - SEEN_FRESH_MS)) return false;
    this.inactive.set(title, next + 1);
    return true;
  }

  /**
   * How long before a run its region takes no launch of ours: holdBeforeS, or longer when our
   * scans of a wave's size usually take longer than that (their 90th percentile, plus pickup), so
   * that a scan launched just before the hold has ended when the run starts.
   */
  private holdBeforeMs(): number {
    const learned = this.core.follow.durationMs(hostsInParallel(this.core), 0.9);
    const pickup = this.core.opts.pickupS * 1000;
    return Math.max(this.core.opts.rangeScans.holdBeforeS * 1000, Math.min(MAX_LEARNED_HOLD_MS, learned > 0 ? learned + pickup : 0));
  }

  /** The run of each schedule whose hold covers `now`, registered as it comes. */
  private currentRuns(now: number): Run[] {
    const { maxHoldS } = this.core.opts.rangeScans;
    const before = this.holdBeforeMs();
    const out: Run[] = [];
    for (const s of this.schedules) {
      const at = nextOccurrence(now - maxHoldS * 1000, s.timeUtc);
      if (now < at - before || now >= at + maxHoldS * 1000) continue;
      const key = `${s.title}@${at}`;
      let run = this.runs.get(key);
      // a time whose skip may have reached the platform only after it (no list has shown its run yet): it may well run
      const doubt = this.skipsSent.has(key) && !this.skipsSeen.has(key);
      // a time counted skipped has no run (a reactivation whose answer was lost leaves the schedule active and its since before the time)
      if (!run && this.skipsSeen.has(key)) continue;
      // inactive on the platform: no run (one registered while it was active, made inactive only after its time, still holds)
      if (s.active === false && !run && !doubt) continue;
      if (!run) {
        // (a schedule created or changed after the time has no run then; one registered before keeps holding through a later update: a reload, a late aim)
        if (at < s.since && !doubt) continue;
        run = { title: s.title, region: s.region, at, lookAt: this.firstLook(s.region, at), released: false, done: false };
        this.runs.set(key, run);
        // (a run its schedule takes to the appliance its placement chose, off the spread's)
        const p = this.placed.get(s.title);
        if (p?.at === at && p.appliance === s.appliance && p.appliance !== p.spread) this.placedElsewhere++;
      }
      out.push(run);
    }
    return out;
  }

  /**
   * A run starting at `at` is first looked for after a typical run, or shortly before the region's
   * next time if that comes first (and within half of maxHoldS: a run never seen by then stops
   * holding its region).
   */
  private firstLook(region: string, at: number): number {
    const lastLook = this.nextTimeOf(region, at) - LOOK_BEFORE_NEXT_MS;
    return Math.min(at + this.expectedMs(), at + (this.core.opts.rangeScans.maxHoldS * 1000) / 2, Math.max(at + 60_000, lastLook));
  }

  /** The runs seen end: their median duration (`q` 0.5), or another quantile; firstLookS before any. */
  private expectedMs(q = 0.5): number {
    if (this.durations.length === 0) return this.core.opts.rangeScans.firstLookS * 1000;
    const sorted = [...this.durations].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  }

  /** Is this region held for a range run now (no launch of ours)? A pretend scanner's schedules never run: nothing to hold for. */
  holds(region: string, now: number): boolean {
    if (this.core.scanner.pretend) return false;
    return this.holding(now).some((r) => r.region === region) || (this.core.scanner.launchRanges !== undefined && [...this.catchUps.values()].some((c) => c.region === region && this.launchable(c)));
  }

  /** Can this make-up be launched as the config stands? One whose targets cannot be read waits for the config to be mended, and holds nothing meanwhile: our scans of the region go on. */
  private launchable(c: CatchUp): boolean {
    return this.configuredSchedule(c.title, c.region)?.targets !== undefined;
  }

  /**
   * Runs that hold their region now: those within their hold window not seen ended, and those a
   * list showed still running past `maxHoldS` (a region runs one scan at a time: only a run never
   * seen is given up on at maxHoldS).
   */
  private holding(now: number): Run[] {
    const out = this.currentRuns(now).filter((r) => !r.released);
    for (const r of this.runs.values()) if ((followed(r) || this.unseenPastHold(r, now)) && !out.includes(r)) out.push(r);
    return out;
  }

  /**
   * A run past maxHoldS that no list has shown, and no list made since then has been looked in
   * (the looks refused for want of calls): it may well be going, so it holds its region until such
   * a look says it never ran (a scarce allowance had let our launch join a run that no look had
   * seen). A run whose schedule was made inactive before its time is no longer registered.
   */
  private unseenPastHold(r: Run, now: number): boolean {
    // (its schedule inactive now says nothing: a deactivation known made before its time dropped the run
    // (inactiveTaken); one made later, or not known when, may well have come after the platform ran it)
    return !(r.scan || r.madeUp || r.done || r.released || now < r.at + this.core.opts.rangeScans.maxHoldS * 1000);
  }

  /**
   * Slots kept on each appliance for runs within their hold and not seen ended: a run queued behind
   * our scan of another region would start late, on fewer of the devices present at its time. (Once
   * the appliance list shows a run, it is counted twice: for an hour or two, on the safe side.)
   */
  reserved(now: number): ReadonlyMap<string, number> {
    const out = new Map<string, number>();
    if (this.core.scanner.pretend) return out;
    for (const r of this.holding(now)) {
      const ap = this.runApplianceNow(r);
      if (ap) out.set(ap, (out.get(ap) ?? 0) + 1);
    }
    return out;
  }

  /** The scan references of the runs known (listed, or made up by us): ours, though no intent names them. */
  runRefs(): ReadonlySet<string> {
    const out = new Set<string>();
    for (const r of this.runs.values()) {
      const ref = r.scan?.scanRef ?? r.ref;
      if (ref !== undefined) out.add(ref);
    }
    return out;
  }

  /**
   * The appliance a run is on: the one a list showed its scan on, else the one a make-up was
   * launched on, else its schedule's as last synced (a run launched before its schedule moved to
   * another appliance stays where it was).
   */
  private runApplianceNow(r: Run): string | undefined {
    return r.scan?.appliance ?? r.appliance ?? this.schedules.find((s) => s.title === r.title)?.appliance;
  }

  /** One pass: sync when due; look for runs that should have ended; credit processed ones. */
  async tick(): Promise<void> {
    const now = this.core.clock.now();
    // after a start, the runs still going are found first: the first sync would otherwise activate
    // a schedule kept inactive for one of them, and our launches would join them
    if (!this.adopted && !(await this.adopt(now))) return;
    await this.place(now);
    await this.aim(now);
    // (before the sync: one this pass may already mend the schedule a run started with)
    this.noteStartTargets(now);
    if (!this.strandedLooked) await this.strandedOnOther();
    // (an earlier title prefix's schedules deleted first: the new ones would run beside them)
    // (the regions of one not deleted yet wait; the others' are made at once)
    const waiting = await this.retire(now);
    if (waiting !== 'all') await this.sync(now, waiting);
    this.currentRuns(now);
    this.noteStartTargets(now);
    const { maxHoldS } = this.core.opts.rangeScans;
    // runs past their hold stay followed until credited (a day at most), or until seen ended (RUN_FOLLOW_MS at most); a done run is kept
    // until its hold window has passed, or currentRuns would register it again as a new one
    // (a run seen going is followed until seen ended, RUN_FOLLOW_MS at most)
    for (const [k, r] of this.runs) if ((r.done && now >= r.at + maxHoldS * 1000) || now > r.at + (r.scan && !r.released ? RUN_FOLLOW_MS : maxHoldS * 1000 + DAY)) this.runs.delete(k);
    for (const seen of [this.skipsSeen, this.skipsSent]) for (const k of seen) if (Number(k.slice(k.lastIndexOf('@') + 1)) < now - 2 * DAY) seen.delete(k);
    await this.cancelOursBeforeRuns(now);
    // (a run the policy now refuses is looked at first: one that has ended since the last look is credited, not canceled;
    // once per SKIP_RETRY_MS at most, so a list or cancel that keeps failing does not undo the looks' back-off)
    for (const r of this.refusedRuns(now)) {
      if (!r.scan && !r.madeUp) {
        if (!this.lookForUnseen(r, now)) continue;
      } else if (now - (r.refusedLookAt ?? -Infinity) < SKIP_RETRY_MS) continue;
      r.refusedLookAt = now;
      r.lookAt = Math.min(r.lookAt, now);
    }
    await this.keepForSkips(now);
    await this.lookAtRuns(now);
    await this.cancelRefusedRuns(now);
    await this.catchUp(now);
  }

  /**
   * A skip needs its calls at once (the look, the schedule list, an update per region), and with a
   * scarce allowance the morning's launches would leave none: from KEEP_FOR_SKIP_MS before a
   * region's next time while one of its runs still goes, launches and other calls leave them. So
   * does the cancel of each scan of ours still going in a region whose run comes within twice its
   * hold (cancelOursBeforeRuns cancels them 12 min before it): at 50 calls a day the cancels of five
   * regions had left none for the sixth, and the run joined our scan; and a launch just before the
   * hold had spent the calls the others' cancels needed. So does a sync that must mend a schedule
   * the policy now refuses: launches would otherwise spend the calls it waits for.
   */
  private async keepForSkips(now: number): Promise<void> {
    const regions = new Set<string>();
    for (const r of this.runs.values()) {
      // (a run not yet seen counts: it has most likely started, and a look refused for want of calls would otherwise keep nothing)
      if (r.released || r.done || r.at > now) continue;
      const next = this.nextTimeOf(r.region, now);
      if (next - now <= KEEP_FOR_SKIP_MS && this.schedules.some((s) => s.region === r.region && s.active !== false && nextOccurrence(now, s.timeUtc) === next)) regions.add(r.region);
    }
    // (from twice the hold before a run: a launch just before the hold must leave the cancels of the scans already going)
    let cancels = 0;
    const near = this.regionsWithRunWithin(now, 2 * this.holdBeforeMs());
    if (near.size) for (const i of await this.core.store.activeIntents()) if (i.state === 'running' && near.has(i.region)) cancels++;
    // (and a sync that mends schedules the policy now refuses, after a reload: its list and a change per schedule)
    const mend = this.mending() ? 1 + this.schedules.length : 0;
    this.core.budget.keep((regions.size ? 2 + regions.size : 0) + cancels + mend);
  }

  /** Runs due a look: one scan list; those seen ended release their region, processed ones credit. */
  private async lookAtRuns(now: number): Promise<void> {
    const { maxHoldS } = this.core.opts.rangeScans;
    const due = [...this.runs.values()].filter((r) => !r.done && r.at <= now && r.lookAt <= now);
    // the look a skip would be decided on (its region's next time is near) weighs like the skip: it keeps two scans out of one region
    // and so does one that a run unseen past its hold waits for: the region takes nothing until it is made
    // (and so does one for a run that may be going over what the policy refuses: it is canceled on sight)
    // (one not listed yet only within the platform's start delay: later it may never come)
    const refused = new Set(due.length ? this.refusedRuns(now).filter((r) => r.scan !== undefined || r.madeUp || now - r.at <= START_DELAY_MS) : []);
    const forSkip = due.some((r) => (!r.released && this.nextTimeOf(r.region, now) - now <= SEEN_FRESH_MS) || this.unseenPastHold(r, now) || refused.has(r));
    if (due.length === 0 || !this.core.budget.canSpend(forSkip)) return;
    const since = Math.min(...due.map((r) => r.at)) - RUN_SLACK_MS;
    let list: ScanStatus[];
    try {
      list = await this.core.budget.call('list scans (range runs)', 'listScans', () => this.core.scanner.listScans({ launchedAfter: launchedAfter(this.core, since) }));
    } catch {
      const pollMs = this.core.opts.pollIntervalS * 1000;
      for (const r of due) {
        r.lookAt = now + SKIP_RETRY_MS; // not at every tick
        r.lookRetry = nextRetry(r.lookRetry, now, pollMs, RETRY_MAX_MS);
      }
      return;
    }
    for (const r of due) r.lookRetry = undefined;
    // a long run is looked for less often: a quarter of its age so far, at least lookAgainS
    const pace = this.lookPaceMs();
    const toCredit: Run[] = [];
    for (const r of due) {
      const scan = list.find((s) => s.title === r.title && s.launchedAt !== undefined && Date.parse(s.launchedAt) >= r.at - RUN_SLACK_MS);
      // (its age as a run: from when it was last seen waiting for a slot, for one that started late; a run
      // that waited hours behind others' scans is not old when it starts, and its end frees the region)
      const queued = scan?.state === 'queued' || scan?.state === 'submitted';
      if (queued) r.queuedSeenAt = now;
      r.lookAt = now + Math.max(pace, (now - (!queued && r.queuedSeenAt !== undefined ? r.queuedSeenAt : r.at)) / 4);
      // a run still going is looked at shortly before its region's next time, to skip that time if need be
      // (the next whose look is still to come: a look made for one time must not pass over the one after)
      const lastLook = this.nextTimeOf(r.region, now + LOOK_BEFORE_NEXT_MS) - LOOK_BEFORE_NEXT_MS;
      if (r.lookAt > lastLook) r.lookAt = lastLook;
      // one not seen yet is looked for again at the end of its hold at the latest: it holds its region until then
      if (!scan && now < r.at + maxHoldS * 1000) r.lookAt = Math.min(r.lookAt, r.at + maxHoldS * 1000);
      if (!scan) {
        if (now < r.at + maxHoldS * 1000) continue;
        r.done = true; // never ran (or not listed): nothing to credit
        // its skip was sent, not known made before the time: never seen, so made
        const sch = this.schedules.find((x) => x.title === r.title);
        if (!r.madeUp && this.skipsSent.has(`${r.title}@${r.at}`) && sch) this.skipTaken(r.title, sch.region, r.at, 'its skip may have reached the platform only at its time, and no list showed its run by the end of its hold');
        continue;
      }
      if (!r.scan) {
        const aimedAt = this.aimedTargets(r.title, r.at);
        if (aimedAt) r.aimedAt = aimedAt;
      }
      r.scan = scan;
      r.seenAt = now;
      const terminal = scan.state === 'finished' || scan.state === 'error' || scan.state === 'canceled';
      this.checkSpacing(r, terminal && scan.endedAt ? Date.parse(scan.endedAt) - Date.parse(scan.launchedAt!) : now - r.at);
      if (!terminal) {
        if (scan.state === 'queued' || scan.state === 'submitted') {
          this.noteIfWaitsPastNext(r, now);
          await this.giveWayIfQueued(r, scan, now);
        }
        continue;
      }
      if (!r.released) {
        r.released = true;
        this.runsSeen++;
        // canceled, not by us (a run that gave way is done with once we cancel it): the platform's cut-off, or someone else
        if (scan.state === 'canceled') this.cutOff(r, scan);
        if (scan.endedAt) this.durations.push(Date.parse(scan.endedAt) - Date.parse(scan.launchedAt!));
        if (this.durations.length > 32) this.durations.shift();
      }
      // a run's hosts are dated once its results are processed; a scanner that does not say is taken at its word now
      if (scan.state === 'finished' && scan.processed !== false) toCredit.push(r);
      else if (scan.state !== 'finished') r.done = true;
    }
    if (toCredit.length) await this.credit(toCredit);
  }

  /**
   * A time skipped because its region's previous run still went is made up once that run is seen
   * ended: the schedule's targets are launched as a range scan (one call), titled like the schedule
   * so that lists find it and it holds, is followed and credits as a run does. Until then the
   * region is held (our scans would keep it busy); meanwhile our scans still going there are
   * waited for. One per region at a time; dropped when the region's next time comes within
   * CATCH_UP_BEFORE_NEXT_MS (or its hold): that run comes soon enough; or within what 9 in 10 runs
   * seen took (MADE_UP_ENDS_Q): the run made up would still go then, and only push that run out.
   */
  private async catchUp(now: number): Promise<void> {
    const { scanner, budget, policy, log } = this.core;
    if (this.catchUps.size === 0) return;
    // (a scanner that launches no ranges: none can be made up, and none should hold a region)
    if (!scanner.launchRanges) return this.catchUps.clear();
    // (and a run made up is expected to have ended by then: else it would only push that run out)
    const horizon = Math.max(CATCH_UP_BEFORE_NEXT_MS, this.holdBeforeMs(), this.expectedMs(MADE_UP_ENDS_Q));
    let intents: { region: string }[] | undefined;
    for (const c of [...this.catchUps.values()]) {
      // (as the config asks for it now: a make-up restored after a restart may name what it no longer asks for)
      const conf = this.configuredSchedule(c.title, c.region);
      if (!conf) {
        this.catchUps.delete(c.title);
        log.info({ region: c.region, schedule: c.title }, `range run ${c.title} not made up: the config no longer asks for it`);
        continue;
      }
      // (the region's next time after the skipped one; or one that has come since: a skip taken late, at the end of its run's hold;
      // or a day gone by: a region with no schedule synced has no next time to drop it by)
      if (now - c.at > DAY || this.nextTimeOf(c.region, c.at) <= now || this.nextTimeOf(c.region, Math.max(now, c.at)) - now < horizon) {
        this.catchUps.delete(c.title);
        log.info({ region: c.region, schedule: c.title }, now - c.at > DAY
          ? `range run ${c.title} not made up: a day has passed since the time skipped`
          : `range run ${c.title} not made up: region ${c.region}'s next run comes within ${Math.round(horizon / MIN)} min (an hour, the hold, or what 9 in 10 runs took)`);
        continue;
      }
      if (now < c.at || now < c.retryAt || !this.catchUps.has(c.title)) continue;
      // the run it was skipped for (or another) still goes, or a run of the region holds it (one not seen yet included)
      if (this.holding(now).some((r) => r.region === c.region)) continue;
      if (!policy.windowOpen(c.region, now)) continue;
      intents ??= await this.core.store.activeIntents();
      if (intents.some((i) => i.region === c.region) || !budget.canSpend(true)) continue;
      // aimed runs: the make-up aims at who is there now (the skipped time's aim is hours old)
      // (targets unreadable: not launched until the config is mended; the problem is said)
      if (!conf.targets) continue;
      // (not aimed while the region's runs wait long: the make-up joins the same queue)
      const aimedMakeUp = this.aiming() && !this.waitsLong(c.region, now);
      const targets = aimedMakeUp ? this.aimAt(c.region, await this.heldAddresses(now)) : conf.targets;
      if (!targets?.length) {
        this.catchUps.delete(c.title);
        log.info({ region: c.region, schedule: c.title }, `range run ${c.title} not made up: no device to aim at in region ${c.region}`);
        continue;
      }
      // (placed as a run is, by the load now: the placement before the skipped time is hours old)
      const appliance = this.placement(now).placed.get(c.region) ?? conf.appliance;
      const run: Run = { title: c.title, region: c.region, at: now, lookAt: this.firstLook(c.region, now), released: false, done: false, madeUp: true, appliance, startTargets: targets, ...(aimedMakeUp ? { aimedAt: targets } : {}) };
      try {
        const { scanRef } = await budget.call('launch range scan (a skipped time made up)', 'launch', () => scanner.launchRanges!({
          title: c.title, targets, appliance, ...(conf.optionProfile !== undefined ? { optionProfile: conf.optionProfile } : {}),
        }));
        run.ref = scanRef;
        log.info({ region: c.region, schedule: c.title, scan: scanRef, skippedAt: new Date(c.at).toISOString() }, `range run ${c.title} made up: launched as ${scanRef} now that region ${c.region}'s previous run has ended`);
      } catch (err) {
        // certainly nothing launched: tried again later; perhaps launched: the next list finds it by its title
        if (!(err instanceof FailedCall && err.outcome.launched === 'unknown')) {
          c.retryAt = now + CATCH_UP_RETRY_MS;
          continue;
        }
      }
      this.runs.set(`${c.title}@${now}`, run);
      this.madeUp++;
      for (const [k, o] of this.catchUps) if (o.region === c.region) this.catchUps.delete(k);
    }
  }

  /**
   * Once after a start: one scan list (launched within RUN_FOLLOW_MS) finds the runs of our
   * schedules still going (running, or queued), which then hold their region and keep the
   * region's schedules inactive as any run seen going does. Every run titled as ours
   * (`<prefix>-range `, an earlier prefix's too) of a region configured or recorded in our saved
   * state (recordedAsOurs) is taken, whatever the config now says of its region or time, and judged
   * as after a reload (refusedRuns): one whose targets the policy refuses, or of a region no longer
   * configured, is canceled in this pass. One of a region neither has (a fresh state) is another
   * deployment's when launched under another login; else taken as ours (and canceled) only when it
   * scans what the policy refuses, said as the problem. False while the call cannot be made.
   */
  private async adopt(now: number): Promise<boolean> {
    const { scanner, opts, budget, log } = this.core;
    // (with range scans off, only while schedules of ours may be kept: a run of theirs may still go)
    const mayGo = this.inEffect() || (scanner.syncSchedules !== undefined && !scanner.pretend && (this.schedules.length > 0 || [...this.prefixes].some((p) => p !== opts.titlePrefix)));
    if (!mayGo) {
      this.adopted = true;
      return true;
    }
    // (looked for even when no schedule is wanted now, its next run outside the windows: one still going holds its region)
    const { regionOf } = this.want(now);
    if (now < (this.adoptRetry?.at ?? 0) || !budget.canSpend(true)) return false;
    let list: ScanStatus[];
    try {
      list = await budget.call('list scans (range runs at start)', 'listScans', () => scanner.listScans({ launchedAfter: launchedAfter(this.core, now - RUN_FOLLOW_MS) }));
    } catch {
      this.adoptRetry = nextRetry(this.adoptRetry, now, opts.pollIntervalS * 1000, RETRY_MAX_MS);
      return false;
    }
    this.adopted = true;
    this.adoptRetry = undefined;
    const prefixes = new Set([opts.titlePrefix, ...this.prefixes]);
    const ours = this.recordedAsOurs();
    for (const scan of list) {
      // (by its title: one of a region, time or prefix the config no longer asks for still goes: it holds its region, or is canceled below)
      const known = ownRangeTitle(scan.title, prefixes);
      if (!known || !scan.launchedAt || scan.state === 'finished' || scan.state === 'error' || scan.state === 'canceled') continue;
      const { region, timeUtc } = known;
      const configured = this.configuredRegion(region);
      if (!configured && !ours.regions.has(region) && !ours.titles.has(scan.title)) {
        // (a title that merely parses may be another deployment's: one named "<our prefix>-range" titles its own scans
        // "<its prefix> <launch id> <region>", and one of its region "dc 2300" read as our run of region "<launch id> dc".
        // Launched under another login, it is theirs)
        const refused = !!scan.targets?.length && this.refusedBy(scan.targets, false);
        if (scan.byOurLogin === false) {
          // (another login's: not ours to cancel; over what our policy refuses it is said, once a start: after a
          // change of the login onsight uses, our old schedules' runs look like this. A warning, not the status
          // problem: another deployment under its own login and the same prefix is a setup that works, and the
          // problem would stay on it until a restart; review)
          if (refused) {
            log.warn({ run: scan.title, scan: scan.scanRef, region, login: 'another' }, `range run ${scan.title} (${scan.scanRef}) scans addresses the policy refuses, of a region ${region} neither the config nor the saved state has, under another login than onsight's: left alone, as another deployment's. If onsight made it before scanner.username changed, cancel it and its schedule in Qualys`);
          }
          continue;
        }
        // (under ours, or none said: judged as ours, as a state saved fresh, or its part refused, records no region of ours:
        // our run of a region removed, its range excluded since, went on for hours. Over what the policy allows, left alone)
        const who = scan.byOurLogin ? 'launched under the login onsight uses' : 'its launcher not listed';
        if (!refused) {
          log.warn({ run: scan.title, scan: scan.scanRef, region }, `range run ${scan.title} (${scan.scanRef}) still goes, of a region ${region} neither the config nor the saved state has (${who}): left alone, as ${scan.targets?.length ? 'it scans nothing the policy refuses' : 'its targets are not listed'}`);
          continue;
        }
        this.problem = `range run ${scan.title} (${scan.scanRef}) scans addresses the policy refuses, of a region ${region} neither the config nor the saved state has: taken as ours (${who}) and canceled; if another deployment made it, give that one its own login`;
        log.warn({ run: scan.title, scan: scan.scanRef, region }, this.problem);
      } else if (!regionOf.has(scan.title)) {
        // (a run of a time the config no longer asks for, or someone else's scan titled as ours: held all the same, and said)
        log.warn({ run: scan.title, scan: scan.scanRef, region }, configured
          ? `range run ${scan.title} (${scan.scanRef}) still goes, though the config asks for no such schedule: it holds region ${region} until seen ended, and is canceled if it scans what the policy refuses`
          : `range run ${scan.title} (${scan.scanRef}) still goes, though region ${region} is no longer configured: canceled`);
      }
      const launched = Date.parse(scan.launchedAt);
      const next = nextOccurrence(launched - RUN_SLACK_MS, timeUtc);
      // a make-up of ours (an API launch), dated by its launch, not the next day's time; where the scanner does not say, one launched well after its schedule's time
      const madeUp = scan.scheduled !== undefined ? !scan.scheduled : next > launched + RUN_SLACK_MS;
      // (a run of the schedule's: its time at or before its launch, however late the platform started it)
      const at = madeUp ? launched : scan.scheduled ? nextOccurrence(launched + RUN_SLACK_MS - DAY + 1, timeUtc) : next;
      // (an aimed run credits whoever held its targets, as it would have without the restart: the aim and the schedules were kept)
      // (not where the schedule was kept inactive: its time was skipped, so a run dated to it is an earlier one's, late)
      const sch = this.schedules.find((x) => x.title === scan.title);
      const aimedAt = madeUp || sch?.active === false ? undefined : this.aimedTargets(scan.title, at);
      // (judged by its own targets as listed; where the scanner lists none, by its schedule's as last synced)
      const startTargets = madeUp ? undefined : sch?.targets;
      const run: Run = {
        title: scan.title, region, at, lookAt: now + opts.rangeScans.lookAgainS * 1000, released: false, done: false, scan, seenAt: now,
        ...(madeUp ? { madeUp } : {}), ...(aimedAt ? { aimedAt } : {}), ...(startTargets ? { startTargets } : {}),
      };
      this.runs.set(`${scan.title}@${at}`, run);
      if (scan.state === 'queued' || scan.state === 'submitted') {
        run.queuedSeenAt = now; // (its running age counts from here once a look finds it started, as after a look)
        this.noteIfWaitsPastNext(run, now); // (what a look would have said)
      }
      if (configured) log.info({ run: scan.title, scan: scan.scanRef, state: scan.state, launchedAt: scan.launchedAt }, `range run ${scan.title} (${scan.scanRef}) still goes from before the start: it holds region ${region}`);
    }
    return true;
  }

  /**
   * The regions and titles our saved state records (the schedules as last synced, an earlier
   * prefix's included; the make-ups, aims, placements and skips): a run of a region no longer
   * configured is ours to cancel if one of them names it (else by its login and targets, adopt).
   */
  private recordedAsOurs(): { regions: Set<string>; titles: Set<string> } {
    const regions = new Set([...this.schedules.map((s) => s.region), ...[...this.catchUps.values()].map((c) => c.region)]);
    const titles = new Set([...this.schedules.map((s) => s.title), ...this.catchUps.keys(), ...this.aimed.keys(), ...this.aimCost.keys(), ...this.placed.keys()]);
    for (const k of [...this.skipsSent, ...this.skipsSeen]) titles.add(k.slice(0, k.lastIndexOf('@')));
    return { regions, titles };
  }

  /**
   * One host-list call for the queued devices of the runs' regions, and for an aimed run every
   * device present at one of its targets (so that one scanned before it was due is not aimed at
   * again, nor launched, until it is): credit those a run found.
   */
  private async credit(runs: Run[]): Promise<void> {
    const { store, inventory, budget, decide, clock } = this.core;
    const now = clock.now();
    // (an aimed run's own devices carry it; a queued one is matched to its region's run below)
    const entries: { bindingId: number; identityId: number; ip: string; region: string; run?: Run }[] = (await Promise.all([...new Set(runs.map((r) => r.region))].map((region) => store.ready(region, now, 10_000)))).flat();
    const aimed = runs.filter((r) => r.aimedAt?.length);
    const inRun = aimed.map((r) => ({ run: r, has: rangeMatcher(r.aimedAt!) }));
    if (aimed.length) {
      const queued = new Set(entries.map((e) => e.bindingId));
      for await (const page of inventory.presentBindingPages(now)) {
        for (const b of page) {
          const x = queued.has(b.id) ? undefined : inRun.find((y) => y.has(b.ip));
          if (x) entries.push({ bindingId: b.id, identityId: b.identityId, ip: b.ip, region: x.run.region, run: x.run });
        }
      }
    }
    if (entries.length === 0) {
      for (const r of runs) r.done = true;
      return;
    }
    let dates;
    try {
      dates = await budget.hostList('host list (range runs)', entries.map((e) => e.ip));
    } catch {
      return;
    }
    if (!dates) return;
    for (const r of runs) r.done = true;
    const byIp = new Map(dates.map((d) => [d.ip, d.lastScannedAt === undefined ? undefined : Date.parse(d.lastScannedAt)]));
    const launched = (r: Run) => Date.parse(r.scan!.launchedAt!);
    const missed: { e: (typeof entries)[number]; run: Run }[] = [];
    const dated = new Set<Run>();
    for (const e of entries) {
      const at = byIp.get(e.ip);
      // a queued device: the latest of its region's runs launched before the date (two may be credited at once)
      const run = e.run ?? runs.filter((r) => r.region === e.region && at !== undefined && foundInScan(at, launched(r))).sort((a, b) => launched(b) - launched(a))[0];
      if (!run || !foundInScan(at, launched(run))) {
        const missedBy = e.run ?? inRun.find((y) => y.has(e.ip))?.run;
        if (missedBy) missed.push({ e, run: missedBy });
        continue;
      }
      dated.add(run);
      const launchedAt = launched(run), endedAt = Date.parse(run.scan!.endedAt ?? run.scan!.launchedAt!);
      const b = await inventory.binding(e.bindingId);
      // (the run's launch as the scanner dates it, against the binding's times as the DHCP or VPN
      // lines date them: the log sources' clocks, not this node's, so not shifted by the skew this
      // node learned of its own clock (skew.ts). Shifted, a leader 15 min ahead of the platform
      // credited a device that came up to 15 min after the run's launch, and held its address
      // from before the launch only from then: a scan of the address's earlier holder, credited to it.
      // A line without a time of its own is dated at its receipt, by the receiving node's clock: one
      // ahead leaves such a device uncredited, scanned by us instead; one behind is not learned)
      if (!b || b.identityId !== e.identityId || b.startAt > launchedAt) continue;
      if (await inventory.heldByAnotherAt(e.ip, launchedAt, e.identityId, Math.max(endedAt, at!))) continue;
      await inventory.markScanned([e.identityId], Math.min(at!, this.core.clock.now()), `scanner:${run.title}`); // (not ahead of our clock: launch.ts)
      await store.dequeue(e.bindingId);
      decide.recheck(e.bindingId, now);
      this.credited++;
      this.core.counters.rangeCredited++;
      await store.decide({ at: now, ip: e.ip, identityId: e.identityId, decision: 'scanned', reason: `found by the range scan ${run.title} (${run.scan!.scanRef}); held the address throughout it` });
    }
    // not found by an aimed run that dated others of its targets (one that dated none may only have its host list lagging)
    for (const m of missed) if (dated.has(m.run)) await this.notFoundBy(m.e, launched(m.run));
  }

  /**
   * An aimed run, finished and processed, did not date the address of a device that held it from
   * before the launch with no line since: the device most likely left without a release. It is left
   * out of later aims until a line shows it again (onsight's own launches still take it when due).
   */
  private async notFoundBy(e: { bindingId: number; identityId: number }, launchedAt: number): Promise<void> {
    const b = await this.core.inventory.binding(e.bindingId);
    if (!b || b.identityId !== e.identityId || b.endAt !== undefined || b.startAt > launchedAt || b.lastSeen >= launchedAt) return;
    if (this.notFoundAt.size >= MAX_NOT_FOUND) this.notFoundAt.clear(); // (bounded: forgetting only puts addresses back in the aims)
    if (!this.notFoundAt.has(b.id)) this.notFoundCount++;
    this.notFoundAt.set(b.id, launchedAt);
  }

  /**
   * A run still waiting for a slot on its appliance (others' scans fill it) an hour after its time
   * scans nobody while it holds its region. Kept while nothing better can run (it keeps its place
   * in that appliance's queue), it is canceled (one call) when another appliance of the region
   * has room and devices of the region wait: onsight's own launch can start there now.
   */
  private async giveWayIfQueued(r: Run, scan: ScanStatus, now: number): Promise<void> {
    if (now - r.at < QUEUED_GIVE_WAY_MS) return;
    const { opts, store, appliances, budget } = this.core;
    const region = opts.regions.find((x) => x.name === r.region);
    const own = this.runApplianceNow(r);
    if (!region || !own) return;
    // decided on a fresh appliance list (a held region's launches do not read it): a stale one could cancel a run that loses its place for nothing
    if (appliances.stale(now, opts.applianceRefreshS) && !(await this.core.launch.refreshAppliances())) return;
    const room = appliances.pick(region, opts.regions, await store.activeIntents(), new Set(), now, this.reserved(now));
    if (!room || room.name === own) return;
    if ((await store.ready(r.region, now, 1)).length === 0 || !budget.canSpend(true)) return;
    try {
      await budget.call('cancel range run (queued, room elsewhere)', 'cancel', () => this.core.scanner.cancel(scan.scanRef));
    } catch {
      return;
    }
    r.released = true;
    r.done = true;
    this.gaveWay++;
    this.core.log.warn({ run: r.title, scan: scan.scanRef, waitedS: Math.round((now - r.at) / 1000), room: room.name },
      `range run ${r.title} (${scan.scanRef}) still waits for a slot on ${own} ${Math.round((now - r.at) / 60_000)} min after its time while ${room.name} has room: canceled, region ${r.region} free for onsight's own launches`);
  }

  /**
   * A run going (seen listed, or made up by us) whose targets the policy now refuses, after a
   * reload that narrowed the scope or added an exclusion, is canceled (one call, as a correction):
   * the appliance would go on probing what the operator has just excluded. So is a run of a region
   * the config no longer has (a reload, or a restart, took it out: its schedule is deleted, and
   * nothing here would follow the run). Its region is free again; nothing it found is credited.
   */
  private refusedRuns(now: number): Run[] {
    if (this.core.scanner.pretend) return [];
    return [...this.runs.values()].filter((r) => {
      const targets = r.scan?.targets ?? r.aimedAt ?? r.startTargets;
      // (a run no list has shown yet counts once its time has come: the platform has most likely started it, and a look finds it;
      // a make-up whose launch's answer was lost waits for a list to give its reference)
      const going = (r.scan?.scanRef ?? r.ref) !== undefined || (!r.madeUp && r.at <= now);
      // (targets that cannot be read are no reason to cancel: a schedule's are, to mend it)
      return !r.released && !r.done && going && (!this.configuredRegion(r.region) || (!!targets?.length && this.refusedBy(targets, false)));
    });
  }

  /**
   * Is a look for this run, refused and no list has shown yet, due now? While its schedule as synced
   * still names what the policy refuses (a sync that keeps failing, or of a region no longer
   * configured), every poll interval from its time, a quarter of its age apart once it is late, for
   * START_DELAY_MS (the platform starts a run within minutes of its time), then still a quarter of
   * its age apart, at most the runs' pace (lookAgainS, doubled while calls are scarce) and no longer
   * a priority call, until a list shows it, and it is canceled on that look (looked for once, then at
   * the runs' pace of 15 min, 30 when calls are scarce, a run the platform started 2 min late probed
   * the excluded address for 13 min, 28 scarce; at that pace from START_DELAY_MS, one started 20 min
   * late, 10 to 25 min). Once the schedule no longer does (mended, or deleted), once more: a look
   * made after that which does not find the run says it will start with the mended targets.
   */
  private lookForUnseen(r: Run, now: number): boolean {
    const pollMs = this.core.opts.pollIntervalS * 1000;
    const sch = this.schedules.find((s) => s.title === r.title);
    if (sch && (this.refusedBy(sch.targets, false) || !this.configuredRegion(sch.region))) {
      const age = now - r.at;
      const last = r.refusedLookAt ?? -Infinity;
      // (past the platform's start delay, a quarter of its age at the last look, as lookAtRuns paces a run seen, and at most
      // that pace: a run that never comes, its schedule paused, was looked for every few minutes for hours)
      const gap = age > START_DELAY_MS ? Math.min(this.lookPaceMs(), Math.max(pollMs, (last - r.at) / 4)) : Math.max(pollMs, age / 4);
      return now - last >= gap && now >= (r.lookRetry?.at ?? 0);
    }
    const under = { policy: this.core.policy, targets: sch?.targets };
    if (r.lookedForUnder?.policy === under.policy && r.lookedForUnder.targets === under.targets) return false;
    r.lookedForUnder = under;
    return true;
  }

  /** The runs' looks at least this far apart: lookAgainS, twice that while calls are scarce. */
  private lookPaceMs(): number {
    return (this.core.budget.scarce() ? 2 : 1) * this.core.opts.rangeScans.lookAgainS * 1000;
  }

  /** Is `region` in the config (a reload or a restart may have taken it out)? */
  private configuredRegion(region: string): boolean {
    return this.core.opts.regions.some((x) => x.name === region);
  }

  /** Runs whose time has come, not yet listed, take their schedule's targets as last synced (once: a later sync's are not what they run). */
  private noteStartTargets(now: number): void {
    for (const r of this.runs.values()) {
      if (r.startTargets || r.scan || r.madeUp || r.at > now) continue;
      const s = this.schedules.find((x) => x.title === r.title);
      if (s) r.startTargets = s.targets;
    }
  }

  /**
   * A cancel refused because the run had ended: not tried again (each pass would, two calls each on
   * Qualys), its region is free, and a look now finds its end and credits it. False for any other failure.
   */
  private endedBeforeCancel(r: Run, err: unknown, now: number): boolean {
    if (!(err instanceof FailedCall && err.error instanceof ScanEndedBeforeCancel)) return false;
    r.released = true;
    r.lookAt = Math.min(r.lookAt, now);
    return true;
  }

  private async cancelRefusedRuns(now: number): Promise<void> {
    for (const r of this.refusedRuns(now)) {
      // (only on this pass's look: a run listed hours ago may have ended since; one we made up and no list has shown yet is ours to cancel)
      if (r.scan ? r.seenAt !== now : !r.madeUp) continue;
      const ref = (r.scan?.scanRef ?? r.ref)!;
      if (!this.core.budget.canCorrect()) return;
      try {
        await this.core.budget.call('cancel range run (targets the policy now refuses)', 'cancel', () => this.core.scanner.cancel(ref));
      } catch (err) {
        this.endedBeforeCancel(r, err, now);
        continue; // tried again next pass (unless it had ended)
      }
      r.released = true;
      r.done = true;
      this.refusedCanceled++;
      // (the region takes no scan of ours until the appliance has heard of the cancel, as after any)
      this.core.cancel.drainAfterCancel(r.region, r.scan?.appliance ?? r.appliance ?? this.runApplianceNow(r));
      this.core.log.warn({ run: r.title, scan: ref, region: r.region }, this.configuredRegion(r.region)
        ? `range run ${r.title} (${ref}) scans addresses the policy refuses (scope, exclusions): canceled`
        : `range run ${r.title} (${ref}) goes in region ${r.region}, which the config no longer has: canceled`);
    }
  }

  /**
   * A scan of ours launched before a run's hold and still going shortly before the run (a slow
   * one) is canceled and its targets requeued: the run would start on top of it, and it scans
   * the region anyway. One call each (and a host list for those it had scanned, where the run is
   * aimed); the appliance hears of it at its next poll.
   */
  private async cancelOursBeforeRuns(now: number): Promise<void> {
    if (this.core.scanner.pretend) return;
    const soon = this.regionsWithRunWithin(now, CANCEL_OURS_BEFORE_MS);
    if (soon.size === 0) return;
    // a run we made up that still goes (it queued behind others' scans longer than runs take, and
    // the region's next time could not be skipped): canceled as any scan of ours, the run rescans its targets
    const pollMs = this.core.opts.pollIntervalS * 1000;
    for (const r of this.runs.values()) {
      const ref = r.scan?.scanRef ?? r.ref;
      if (!r.madeUp || r.released || r.done || !ref || !soon.has(r.region) || now < (r.cancelRetry?.at ?? 0) || !this.core.budget.canSpend(true)) continue;
      try {
        await this.core.budget.call('cancel made-up range run', 'cancel', () => this.core.scanner.cancel(ref));
      } catch (err) {
        if (!this.endedBeforeCancel(r, err, now)) r.cancelRetry = nextRetry(r.cancelRetry, now, pollMs, RETRY_MAX_MS);
        continue;
      }
      r.released = true;
      r.done = true;
      this.oursCanceled++;
      this.core.log.warn({ run: r.title, scan: ref, region: r.region }, `range run ${r.title} (${ref}), made up after a skipped time, still goes just before region ${r.region}'s next run (which could not be skipped): canceled`);
    }
    const intents = await this.core.store.activeIntents();
    // (the retries of intents no longer running are forgotten)
    for (const id of this.cancelOursRetry.keys()) if (!intents.some((i) => i.id === id && i.state === 'running')) this.cancelOursRetry.delete(id);
    for (const i of intents) {
      if (i.state !== 'running' || !i.scanRef || !soon.has(i.region) || now < (this.cancelOursRetry.get(i.id)?.at ?? 0) || !this.core.budget.canSpend(true)) continue;
      const why = `a range run of region ${i.region} starts within ${CANCEL_OURS_BEFORE_MS / MIN} min (a region runs one scan at a time; the run scans these targets too)`;
      const requeued = await this.core.cancel.cancelAndRequeue(i, `canceled: ${why}`);
      if (!requeued) {
        this.cancelOursRetry.set(i.id, nextRetry(this.cancelOursRetry.get(i.id), now, pollMs, RETRY_MAX_MS));
        continue;
      }
      this.cancelOursRetry.delete(i.id);
      this.oursCanceled++;
      this.core.log.info({ intent: i.id, scan: i.scanRef, region: i.region, targets: requeued.length }, `scan ${i.scanRef} of region ${i.region} still goes just before its range run: canceled, ${requeued.length} targets requeued`);
      // (those it had scanned credited only where the run is aimed, at the addresses held 10 min before it: else the run scans them all and credits them)
      await this.core.cancel.settleRequeued(i, requeued, `scan canceled: ${why}; requeued`, { credit: this.aiming() });
    }
  }

  /** The regions an active schedule of which runs within `ms` of now (a schedule's first time counts from its creation). */
  private regionsWithRunWithin(now: number, ms: number): Set<string> {
    return new Set(this.schedules.filter((s) => {
      const at = nextOccurrence(now, s.timeUtc);
      return s.active !== false && at - now <= ms && at >= s.since;
    }).map((s) => s.region));
  }

  /** Are range runs configured on a scanner that keeps schedules for real (not a pretend one)? */
  inEffect(): boolean {
    const { scanner, opts } = this.core;
    return scanner.syncSchedules !== undefined && !scanner.pretend && opts.rangeScans.times.length > 0;
  }

  /**
   * The targets the run of `title` at `at` was aimed at: the aim the sync wrote for that time, in the
   * schedule unchanged since before it (an aim written late, its update refused until then, is not
   * what the run scanned; no aim: the run had the schedule's earlier targets).
   */
  private aimedTargets(title: string, at: number): string[] | undefined {
    const aim = this.aimed.get(title);
    const sch = this.schedules.find((x) => x.title === title);
    return aim?.at === at && sch && sch.since <= at && aim.targets.join() === sch.targets.join() ? aim.targets : undefined;
  }

  /** With aim auto, are the region's runs left unaimed (QUEUED_UNAIMED_MS after a run seen still queued at its region's next time)? */
  private waitsLong(region: string, now: number): boolean {
    const at = this.queuedLongAt.get(region);
    return this.core.opts.rangeScans.aim === 'auto' && at !== undefined && now - at < QUEUED_UNAIMED_MS;
  }

  /**
   * A run still waiting for a slot (queued) at or after its region's next time leaves the region's
   * runs unaimed for a while (waitsLong). Where none of the region's schedules is known (a start
   * before the first sync, nothing kept), the next time is the configured times' the sync would keep.
   */
  private noteIfWaitsPastNext(r: Run, now: number): void {
    const known = this.schedules.some((s) => s.region === r.region);
    const region = this.core.opts.regions.find((x) => x.name === r.region);
    const next = known ? this.nextTimeOf(r.region, r.at) : this.nextTimeOf(r.region, r.at, (region && this.askedOf(region, now)?.times) ?? []);
    if (now >= next) this.queuedLongAt.set(r.region, now);
  }

  /** The region's first time after `after` (any of its schedules, or of `times`); Infinity when it has none. */
  private nextTimeOf(region: string, after: number, times = this.schedules.filter((s) => s.region === region).map((s) => s.timeUtc)): number {
    return Math.min(...times.map((t) => nextOccurrence(after + 1, t)));
  }

  /** A run the platform ended at its cut-off: its results are partial and credit nobody; said once per region. */
  private cutOff(r: Run, scan: ScanStatus): void {
    const s = this.schedules.find((x) => x.title === r.title);
    if (s?.endAfterMin === undefined || r.madeUp) return; // someone else's cancel (a run made up by API carries no cut-off)
    this.cutShort++;
    if (this.outlasting.has(r.region)) return;
    const text = `range runs of region ${r.region} outlast their spacing: ${r.title} (${scan.scanRef}) was canceled by the platform at its cut-off, ${s.endAfterMin} min after its time, before the region's next run (its hosts are not credited): space scheduler.rangeScans.times wider or narrow its targets`;
    this.outlasting.set(r.region, text);
    this.core.log.warn({ region: r.region, run: r.title, scan: scan.scanRef, endAfterMin: s.endAfterMin }, text);
  }

  /**
   * The platform starts a region's next run at its time whatever still runs there: a run lasting
   * longer than the spacing to the region's next time breaks the one-scan-per-region rule (unless
   * the schedules carry a cut-off: endBeforeNext). Said once per region (status, log).
   */
  private checkSpacing(r: Run, lastedMs: number): void {
    const times = this.schedules.filter((s) => s.region === r.region).map((s) => nextOccurrence(r.at + 1, s.timeUtc));
    const gapMs = Math.min(...times) - r.at;
    if (!(lastedMs > gapMs) || this.outlasting.has(r.region)) return;
    const text = `range runs of region ${r.region} outlast their spacing: ${r.title} ran ${(lastedMs / 3_600_000).toFixed(1)} h, the region's next time is ${(gapMs / 3_600_000).toFixed(1)} h after it (a region runs one scan at a time: a time coming while a run still goes is skipped, two calls each): space scheduler.rangeScans.times wider or narrow its targets`;
    this.outlasting.set(r.region, text);
    this.core.log.warn({ region: r.region, run: r.title, lastedS: Math.round(lastedMs / 1000), spacingS: Math.round(gapMs / 1000) }, text);
  }

  /**
   * With range scans off, where the simulator found them to help (src/sim/README.md): a scarce
   * allowance. (Appliances that others' scans overrun are said by the appliances' own message: a
   * count of our scans canceled as stuck does not tell those apart from daytime loads, where range
   * scans lose: session 39.)
   */
  private advice(): { advice?: string } {
    if (this.core.opts.rangeScans.times.length > 0 || !this.core.scanner.syncSchedules) return {};
    if (this.core.budget.scarce()) return { advice: 'the API allowance is scarce (under 1,000 calls a day): scheduler.rangeScans over the DHCP and VPN pools would scan at no call and leave the calls for the devices the runs miss (at 50 calls a day in the simulator, 16 days: 98.5 % -> 99.8 % coverage, src/sim/README.md session 35)' };
    return {};
  }

  describe(): RangeScanStatus {
    return {
      schedules: this.schedules.map((s) => ({
        title: s.title, region: s.region, timeUtc: s.timeUtc, targets: s.targets, appliance: s.appliance, id: s.id,
        ...(s.endAfterMin !== undefined ? { endAfterMin: s.endAfterMin } : {}),
        ...(s.active === false ? { active: false } : {}),
      })),
      ...(this.problem !== undefined ? { problem: this.problem } : {}),
      ...(this.outlasting.size ? { outlasting: [...this.outlasting.values()] } : {}),
      ...this.advice(),
      runsSeen: this.runsSeen,
      credited: this.credited,
      oursCanceled: this.oursCanceled,
      gaveWay: this.gaveWay,
      cutShort: this.cutShort,
      skipped: this.skips,
      madeUp: this.madeUp,
      aimed: this.aims,
      unaimedQueued: this.unaimedQueued,
      placedElsewhere: this.placedElsewhere,
      notFound: this.notFoundCount,
      refusedCanceled: this.refusedCanceled,
    };
  }
}

type KeptSchedule = Omit<ScheduleStatus, 'action'> & { region: string; since: number };
type KnownSchedule = ScheduleStatus & { region: string; since: number };

/**
 * After a sync that stopped half-way: the schedules it made, changed or kept as it says, those it
 * deleted gone, the rest as before. One whose change may or may not have been made (an answer
 * lost) is taken as there and active unless both versions say inactive, so that its run holds its
 * region: a hold for a run that never comes costs some coverage, a run without one breaks the
 * one-scan-per-region rule. (Qualys makes every change it can before it reports the first
 * failure: without this, one schedule always refused left every region's runs unheld.)
 */
function afterPartialSync(have: KnownSchedule[], partial: ScheduleSyncIncomplete, want: RangeSchedule[], regionOf: Map<string, string>, now: number, unsure: Set<string>): KnownSchedule[] {
  const out = new Map(have.map((h) => [h.title, { ...h }]));
  const made = new Set(partial.done.filter((s) => s.action !== 'deleted').map((s) => s.title));
  for (const s of partial.done) {
    const region = regionOf.get(s.title);
    unsure.delete(s.title);
    if (s.action === 'deleted') {
      // (a copy's delete leaves the schedule of that title that is kept, made or not known by id)
      const h = out.get(s.title);
      if (!made.has(s.title) && (h?.id === s.id || h?.id === 'unknown')) out.delete(s.title);
    } else if (region !== undefined) out.set(s.title, { ...s, region, since: s.action === 'kept' ? out.get(s.title)?.since ?? now : now });
  }
  for (const title of partial.unsure) {
    const w = want.find((x) => x.title === title);
    if (!w) continue; // (a delete whose answer was lost: kept as it was)
    const h = out.get(title);
    if (h && sameSchedule(h, w)) continue;
    unsure.add(title);
    if (h) h.active = h.active !== false || w.active !== false;
    else out.set(title, { ...w, id: 'unknown', active: true, action: 'kept', region: regionOf.get(title)!, since: now });
  }
  return [...out.values()];
}

/** The saved schedules' shape (memory.ts): undefined when malformed. */
function keptSchedules(x: unknown, now: number): KeptSchedule[] | undefined {
  if (!Array.isArray(x) || x.length > 10_000) return undefined;
  const str = (v: unknown, max = 500) => typeof v === 'string' && v.length > 0 && v.length <= max;
  const out: KeptSchedule[] = [];
  for (const v of x) {
    const k = record(v);
    if (!k || !str(k.title) || !str(k.id) || !str(k.appliance) || !str(k.region) || typeof k.timeUtc !== 'string' || !/^([01]\d|2[0-3]):[0-5]\d$/.test(k.timeUtc)
      || typeof k.active !== 'boolean' || !isNum(k.since, 0, now + CLOCK_SKEW_MS)
      || !Array.isArray(k.targets) || k.targets.length > 100_000 || !k.targets.every(isTarget)
      || (k.optionProfile !== undefined && !str(k.optionProfile)) || (k.endAfterMin !== undefined && !isInt(k.endAfterMin, 0, 100_000))) return undefined;
    out.push({
      title: k.title as string, id: k.id as string, appliance: k.appliance as string, region: k.region as string, timeUtc: k.timeUtc, active: k.active,
      since: Math.min(k.since as number, now), targets: [...k.targets as string[]],
      ...(k.optionProfile !== undefined ? { optionProfile: k.optionProfile as string } : {}),
      ...(k.endAfterMin !== undefined ? { endAfterMin: k.endAfterMin as number } : {}),
    });
  }
  return out;
}

/** Saved skip keys (`title@time`, a time within the last 2 days, as pruned): undefined when malformed. */
function skipKeys(x: unknown, now: number): string[] | undefined {
  if (!Array.isArray(x)) return undefined;
  // (the newest MAX_SKIP_KEYS, an excess dropped rather than the whole part)
  x = x.slice(-MAX_SKIP_KEYS);
  const out: string[] = [];
  for (const k of x as unknown[]) {
    if (typeof k !== 'string' || k.length > 520) return undefined;
    const i = k.lastIndexOf('@');
    const at = Number(k.slice(i + 1));
    if (i < 1 || !isNum(at, 0, now + CLOCK_SKEW_MS + DAY)) return undefined;
    if (at >= now - 2 * DAY) out.push(k);
  }
  return out;
}

/** Saved make-ups still to launch (title, region, time skipped, retry after): undefined when malformed; those over 2 days old dropped. */
function keptCatchUps(x: unknown, now: number): CatchUp[] | undefined {
  if (!Array.isArray(x)) return undefined;
  const out: CatchUp[] = [];
  for (const v of x.slice(-MAX_SKIP_KEYS) as unknown[]) {
    if (!Array.isArray(v) || v.length !== 4 || !isTitle(v[0]) || !isTitle(v[1]) || !isNum(v[2]) || !isNum(v[3])) return undefined;
    // (a time skipped is at most SKIP_AHEAD_MS ahead: one further, a clock stepped back or an edited row, would hold its region until then)
    // (and a few minutes for another node's clock: a day, CLOCK_SKEW_MS, would let the held hours back in)
    if (v[2] >= now - 2 * DAY && v[2] <= now + SKIP_AHEAD_MS + 5 * MIN) out.push({ title: v[0], region: v[1], at: v[2], retryAt: Math.min(v[3], now + DAY) });
  }
  return out;
}

const isTitle = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 500;
/** an address, CIDR or range as the ranges are written (a saved aim's that is not made every later pass throw; schedules' are checked alike) */
const isTarget = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 100 && parseInterval(v) !== undefined;

/**
 * A sync the scanner refused for what it names (scope, size, a schedule it cannot take), not for
 * the API's state (a concurrency 409, a 5xx, an answer lost, a rate limit): those are tried again as they are.
 */
function refusedForContent(err: unknown): boolean {
  if (!(err instanceof FailedCall) || err.outcome.next !== 'retry') return false;
  const e = (err.error instanceof ScheduleSyncIncomplete ? err.error.failure : err.error) as { retryable?: unknown; ambiguous?: unknown } | undefined;
  return e?.retryable !== true && e?.ambiguous !== true;
}

/** Saved title prefixes: undefined when malformed. */
function keptPrefixes(x: unknown): string[] | undefined {
  if (!Array.isArray(x) || x.length > 100 || !x.every((p) => isTitle(p) && (p as string).trim() === p)) return undefined;
  return [...new Set(x as string[])];
}

/** The title prefixes of saved schedules (`<prefix>-range <region> <HHMM>`, each row's region and time). */
function prefixesOf(kept: KeptSchedule[]): string[] {
  const out = new Set<string>();
  for (const k of kept) {
    const tail = `-range ${k.region} ${k.timeUtc.replace(':', '')}`;
    if (k.title.length > tail.length && k.title.endsWith(tail)) out.add(k.title.slice(0, -tail.length));
  }
  return [...out];
}

/** The prefix, region and time of a title of our range runs under one of `prefixes` (`<prefix>-range <region> <HHMM>`), whatever the config says of them. */
function ownRangeTitle(title: string, prefixes: Iterable<string>): { prefix: string; region: string; timeUtc: string } | undefined {
  const m = /^(.+) ([01]\d|2[0-3])([0-5]\d)$/.exec(title);
  if (!m) return undefined;
  // (the longest first: a prefix may begin another's)
  for (const p of [...prefixes].sort((a, b) => b.length - a.length)) {
    const head = `${p}-range `;
    if (m[1].startsWith(head) && m[1].length > head.length) return { prefix: p, region: m[1].slice(head.length), timeUtc: `${m[2]}:${m[3]}` };
  }
  return undefined;
}

/** Saved aims ([title, at, targets]): undefined when malformed. */
function keptAims(x: unknown, now: number): [string, number, string[]][] | undefined {
  if (!Array.isArray(x) || x.length > 10_000) return undefined;
  const out: [string, number, string[]][] = [];
  for (const row of x) {
    if (!Array.isArray(row) || row.length !== 3) return undefined;
    const [title, at, targets] = row as unknown[];
    // (an aim's time is its run's: up to a day ahead of the save, and the save a little ahead of this clock)
    if (!isTitle(title) || !isNum(at, 0, now + CLOCK_SKEW_MS + 2 * DAY) || !Array.isArray(targets) || targets.length > 100_000 || !targets.every(isTarget)) return undefined;
    out.push([title as string, at, [...targets as string[]]]);
  }
  return out;
}
