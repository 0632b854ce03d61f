/**
 * The scheduler's options and their defaults, in one place. `schedulerConfigSchema` is the
 * `scheduler:` section of onsight.yaml (every key documented in config/onsight.example.yaml);
 * `buildSchedulerOptions` turns it, the regions and the scanner's traits into the options the
 * scheduler runs with. The daemon, the simulator and the tests all build them through it.
 */
import { z } from 'zod';
import type { Scanner } from '../scanners/types.js';

/** The `scheduler:` config section. */
export const schedulerConfigSchema = z.object({
  /** how often running scans are polled (stretched when the API allowance runs low); in cluster mode, the scan list is read at least this often (late launches: late.ts) */
  pollIntervalS: z.number().positive().default(60),
  /** with nothing waiting for a running scan, poll this often to record results (default 60 × pollIntervalS) */
  idlePollS: z.number().positive().optional(),
  /** how often the appliance list (real load) is refreshed before a launch (stretched while it does not change) */
  applianceRefreshS: z.number().positive().default(300),
  /**
   * confirm each finished scan's targets with the scanner's host list (one call for the targets of
   * every scan that ended within verifyDelayS) before recording them scanned: a device that left
   * without a DHCP release still looks present, and its scan found nobody (only for scanners whose
   * scans are real)
   */
  verifyResults: z.boolean().default(true),
  /**
   * a device's first scan in a rescan window is looked at again once the device is next seen (a
   * line more than 30 min after the scan ended): it joins a scan launched for first scans, in the
   * room its first wave leaves (a scarce allowance too: it costs no call): a laptop that left
   * mid-probe without a line is dated by the host list and would pass for scanned for the whole
   * window (src/scheduler/second-look.ts)
   */
  secondLook: z.boolean().default(true),
  /**
   * while the allowance is scarce, a present device that comes due (its rescan window less the
   * lead) within this many hours rides in the room a scan launched for due devices leaves in its
   * first wave (never a launch of its own), so devices that come due together (a weekend's, a first
   * week's) are not all left to one day's few launches (src/scheduler/ahead.ts); 0: off
   */
  scanAheadH: z.number().nonnegative().default(48),
  /** a finished scan's result may wait this long to be confirmed together with others' */
  verifyDelayS: z.number().positive().default(3600),
  /**
   * how long after launch an appliance may take to pick a scan up (its polling interval, 190 s by
   * default, plus setup): a target address that changes hands within this time (or within 30% of a
   * typical scan) cancels and relaunches the scan
   */
  pickupS: z.number().nonnegative().default(360),
  /**
   * hosts an appliance scans at once in one of our scans (the option profile's "Hosts to Scan in
   * Parallel"): the first this many targets of a scan start when the appliance picks it up, so
   * after pickup they have been reached and a cancel would only throw away their work. Where the
   * scanner states the profile's figure (Qualys: the option profile list, read daily; profile.ts)
   * that figure is used instead of the default, and a value set here is lowered to it, never
   * raised (set low on purpose, it stays). A low guess by default (DEFAULT_HOSTS_IN_PARALLEL; the
   * community example is 30): set too high, onsight would let a scan run on while a later
   * target's address changes hands
   */
  hostsInParallel: z.number().int().positive().optional(),
  /**
   * learn hosts in parallel from how long scans take against how many targets they carry
   * (parallelism.ts): from the option profile's figure (else the configured value) upward, when the
   * durations say so clearly
   */
  learnHostsInParallel: z.boolean().default(true),
  /**
   * a canceled scan's appliance learns of the cancel only at its next contact with the platform
   * (Qualys: every 190 s by default) and probes on until then: its region takes no new scan for
   * this long after the cancel call (or the appliance's listed polling interval plus 10 s, when longer)
   */
  cancelDrainS: z.number().nonnegative().default(200),
  /**
   * a finished scan's results reach the host list only once the scanner has processed them: its
   * undated targets are judged "no host found" only when another target of the same scan is
   * dated (so the scan was processed) or after this long
   */
  processingWaitS: z.number().positive().default(21600),
  /** ask the scanner for last-scan dates of newly seen addresses */
  lastScannedFromScanner: z.boolean().default(false),
  /** cancel a running scan when every target has left */
  cancelWhenAllLeft: z.boolean().default(false),
  /**
   * cancel and relaunch a running scan when one of its targets leaves (tunnel-down, release) before
   * the scan can have reached it: the freed address may go to another device before that device's
   * line reaches us. Fewer wrong-host probes for more cancels, calls and relaunches (src/sim/README.md)
   */
  cancelWhenTargetLeaves: z.boolean().default(true),
  /** first retry delay after a failed scan; doubles per attempt */
  retryBackoffS: z.number().positive().default(600),
  maxAttempts: z.number().int().positive().default(5),
  /**
   * an unconfirmed launch (crash or lost answer) with no scan in the scanner's list is given up
   * (and its targets requeued) after this long: longer than a launch request can take
   */
  reconcileGraceS: z.number().positive().default(180),
  /** scans the subscription may run at once across all regions (absent: no limit of our own) */
  maxRunningScans: z.number().int().positive().optional(),
  /**
   * Recurring range scans the scanner's platform launches itself (a Qualys scheduled scan: no API
   * call per run), one per region and time of day, spread over the regions' appliances (`runApplianceOf`; a run
   * whose appliance is offline, or had every slot held by other tools' scans for an hour by the
   * appliance lists, goes on another of its region's when its hold begins, `placeRuns`). onsight keeps
   * them in step with this section (`syncSchedules`), holds the region free of its own launches
   * around each run, and credits the devices a run found (one host-list call after it is processed),
   * so its own calls go to the devices the runs missed. Off (no times) by default. The schedules
   * keep running while onsight is stopped; removing the times deletes them at the next start.
   */
  rangeScans: z.object({
    /** times of day, `HH:MM` UTC; empty: off */
    times: z.array(z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day, HH:MM (UTC)')).default([]),
    /** per region, what its runs cover (addresses, CIDRs, a-b ranges; clipped to policy.scope, exclusions cut out); default: the region's CIDRs */
    targets: z.record(z.string(), z.array(z.string())).default({}),
    /**
     * what each run scans: `ranges`, the whole targets (devices onsight has no line for are found
     * too, at the price of probing every idle address); `held`, the addresses devices hold in them,
     * written into the schedule shortly before each time (a call per region and time); `auto`,
     * held while those calls are at most a tenth of the allowance's calls a day, else ranges; and
     * ranges for a day after a look found a run of the region still waiting for a slot when the
     * region's next time came (others' scans overrun its appliance: held addresses would be stale
     * when it starts)
     */
    aim: z.enum(['auto', 'held', 'ranges']).default('auto'),
    /** no launch of ours into a region this long before its run (so ours end first: a region runs one scan at a time); longer when our scans usually take longer (their 90th percentile plus pickup, at most 2 h) */
    holdBeforeS: z.number().nonnegative().default(2700),
    /** a run no list has shown stops holding its region this long after its time, once a look made then finds it never ran (one seen going holds it until seen ended) */
    maxHoldS: z.number().positive().default(14400),
    /** before any run was seen end, a run is first looked for in a scan list this long after its time (later: the median run seen) */
    firstLookS: z.number().positive().default(3600),
    /** a run not yet ended or processed is looked for again this much later (twice that with a scarce allowance) */
    lookAgainS: z.number().positive().default(900),
    /**
     * each run is canceled by the platform itself (Qualys `end_after`) a few minutes before the
     * region's next time, even while onsight is stopped. Off by default: a canceled run's results
     * are not counted, and onsight already skips a time that comes while the region's previous run
     * still goes (the schedule deactivated until that run is seen ended)
     */
    endBeforeNext: z.boolean().default(false),
  }).strict().refine((r) => r.holdBeforeS + r.maxHoldS + 2 * 3600 < 86400, { message: 'holdBeforeS + maxHoldS must leave a day\'s runs apart (under 22 h together)' }).prefault({}),
  /**
   * a scan still not ended this long after launch (a state the scanner does not explain, a scan
   * it forgot) is looked up once more, then given up: canceled if possible, targets requeued
   */
  maxScanAgeS: z.number().positive().default(86400),
}).strict();

export type SchedulerConfig = z.output<typeof schedulerConfigSchema>;

const region = z.object({
  name: z.string(),
  /**
   * maxScans: the scans the operator says the appliance runs at once (config default 1: Qualys
   * publishes no slot count). The scheduler starts from it and learns the true count (appliances.ts)
   */
  appliances: z.array(z.object({ name: z.string(), maxScans: z.number().int().positive().default(1) })),
  maxConcurrentScans: z.number().int().positive(),
  /** this region's option profile (a scanner that has them); the scanner's own default when absent */
  optionProfile: z.string().optional(),
});

/** Everything the scheduler runs with: the config section, plus what only code sets. */
/** scheduler.hostsInParallel when the config sets none (and no option profile states one) */
export const DEFAULT_HOSTS_IN_PARALLEL = 10;

const schedulerOptionsSchema = schedulerConfigSchema.extend({
  hostsInParallel: z.number().int().positive(),
  /** the config set hostsInParallel (an option profile's figure may lower it, never raise it); else the default, which the profile's replaces */
  hostsInParallelSet: z.boolean(),
  regions: z.array(region),
  /** targets per scan while a region's queue is short */
  maxTargetsPerScan: z.number().int().positive(),
  /** the most one launch may carry: a longer queue goes out in one scan up to this (the scanner's hard cap) */
  maxTargetsPerLaunch: z.number().int().positive(),
  /** API calls kept back for launches and cancels: polls and refreshes wait when fewer remain (a look-up before a cancel does not) */
  reserveCalls: z.number().int().nonnegative().default(5),
  /**
   * poll running scans only when one may have ended, by the durations of the scans that finished
   * before; otherwise every pollIntervalS
   */
  adaptivePolling: z.boolean().default(true),
  /**
   * the sweep re-evaluates only bindings whose answer may have changed (a rescan window ran out, a
   * scan window opened, a scan ended); every this many seconds it re-reads every present binding
   */
  fullSweepS: z.number().positive().default(3600),
  /** how finished scans' targets are recorded: `onsight` (a real scan), or a pretend scanner's kind */
  scannedVia: z.string().default('onsight'),
  /** first word of every scan title: the cluster's name in cluster mode (two deployments on one subscription tell their scans apart) */
  titlePrefix: z.string().default('onsight'),
  /** this node's name in cluster mode: what it learns of its own clock (skew.ts) is its own */
  node: z.string().optional(),
});

export type SchedulerRegion = z.output<typeof region>;
export type SchedulerOptions = z.output<typeof schedulerOptionsSchema>;

/** What the scheduler's options take from the scanner (see Scanner in src/scanners/types.ts). */
export type ScannerTraits = Pick<Scanner, 'kind' | 'pretend' | 'pollPaceS' | 'maxTargetsPerLaunch'>;

export interface SchedulerOptionsInput {
  regions: z.input<typeof region>[];
  maxTargetsPerScan: number;
  /** the `scheduler:` section (parsed or not: defaults fill what is absent) */
  scheduler?: z.input<typeof schedulerConfigSchema>;
  scanner?: ScannerTraits;
  /** first word of scan titles (cluster.name) */
  titlePrefix?: string;
  /** this node's name in cluster mode (cluster.node) */
  node?: string;
  /** knobs the config does not expose (tests) */
  internal?: Partial<Pick<SchedulerOptions, 'reserveCalls' | 'adaptivePolling' | 'fullSweepS'>>;
}

/** The scheduler's options: the config section with its defaults, shaped by the scanner's traits. */
export function buildSchedulerOptions(input: SchedulerOptionsInput): SchedulerOptions {
  const cfg = schedulerConfigSchema.parse(input.scheduler ?? {});
  const pretend = input.scanner?.pretend === true;
  const pace = input.scanner?.pollPaceS;
  return schedulerOptionsSchema.parse({
    ...cfg,
    ...input.internal,
    hostsInParallel: cfg.hostsInParallel ?? DEFAULT_HOSTS_IN_PARALLEL,
    hostsInParallelSet: cfg.hostsInParallel !== undefined,
    regions: input.regions.map((r) => ({ name: r.name, maxConcurrentScans: r.maxConcurrentScans, appliances: r.appliances.map((a) => ({ name: a.name, maxScans: a.maxScans })), optionProfile: r.optionProfile })),
    maxTargetsPerScan: Math.min(input.maxTargetsPerScan, input.scanner?.maxTargetsPerLaunch ?? Infinity),
    maxTargetsPerLaunch: input.scanner?.maxTargetsPerLaunch ?? input.maxTargetsPerScan,
    // a scanner whose scans end on a known schedule and whose calls cost nothing is followed at
    // that pace, even when nothing waits for its scans
    ...(pace !== undefined ? { pollIntervalS: Math.min(cfg.pollIntervalS, pace), idlePollS: Math.min(cfg.pollIntervalS, pace) } : {}),
    // a pretend scan scans nothing: nothing to confirm, and its targets are recorded under the scanner's kind
    verifyResults: cfg.verifyResults && !pretend,
    // nor a partial one to look at again
    secondLook: cfg.secondLook && !pretend,
    scannedVia: pretend ? input.scanner!.kind : 'onsight',
    titlePrefix: input.titlePrefix,
    node: input.node,
  });
}
