/**
 * The scanner seam: what the scheduler needs from a vulnerability scanner. Qualys today
 * (src/scanners/qualys), a dry-run printer, the simulator's in-process scanner; later Tenable and
 * Rapid7. Vendor specifics stay behind this interface.
 */

export type ScanState = 'submitted' | 'queued' | 'running' | 'paused' | 'finished' | 'error' | 'canceled' | 'unknown';

export const TERMINAL_STATES: ReadonlySet<ScanState> = new Set(['finished', 'error', 'canceled']);

export interface LaunchRequest {
  /** our durable intent id; must be recoverable from the scan's title (reconciliation after a crash) */
  intentId: string;
  /** scan title; contains intentId */
  title: string;
  /** canonical IP addresses, all inside policy.scope and outside policy.exclude (checked again by the scanner client) */
  targets: string[];
  /** scanner appliance name */
  appliance: string;
  /** option profile title (Qualys) or template; scanner default when absent */
  optionProfile?: string;
}

/**
 * A one-off scan of address ranges: a range run that the platform could not start at its time
 * (its region's previous run still went) is launched once the region is free, titled like its
 * schedule (found again in scan lists by that title; no intent).
 */
export interface RangeLaunch {
  /** the schedule's title, used as the scan's title as it is */
  title: string;
  /** addresses and ranges, as in RangeSchedule (checked again by the client) */
  targets: string[];
  appliance: string;
  optionProfile?: string;
}

export interface LaunchResult {
  /** the scanner's reference, e.g. `scan/1736361211.27337` */
  scanRef: string;
}

export interface ScanStatus {
  scanRef: string;
  title: string;
  state: ScanState;
  targets?: string[];
  appliance?: string;
  launchedAt?: string;
  endedAt?: string;
  /** the scanner has processed the scan's results, so its host list dates the hosts it found (Qualys PROCESSED); undefined when the scanner does not say */
  processed?: boolean;
  /** launched by one of the platform's schedules, not by an API call (Qualys TYPE `Scheduled`); undefined when the scanner does not say */
  scheduled?: boolean;
  /**
   * launched under the login this scanner calls with (Qualys USER_LOGIN; a schedule's runs carry its
   * owner's), false under another (another deployment's, or a person's); undefined when the scanner does not say
   */
  byOurLogin?: boolean;
}

export interface ScanFilter {
  scanRefs?: string[];
  states?: ScanState[];
  launchedAfter?: Date;
}

export interface ApplianceStatus {
  name: string;
  online: boolean;
  /** scans running on it now, ours and everybody else's (GUI, other tools) */
  runningScans: number;
  runningSlices?: number;
  maxCapacityUnits?: number;
  heartbeatsMissed?: number;
  /** scan refs running on it, when the scanner tells */
  runningScanRefs?: string[];
  /** how often it asks the platform for work (s), when the scanner tells (Qualys POLLING_INTERVAL): a launched scan may wait this long to start */
  pollIntervalS?: number;
}

/** What the scanner says of the scan settings (option profile) our launches use. */
export interface ScanProfileFacts {
  /** the profile's name, as launches name it */
  title: string;
  /** hosts one scan on an appliance probes at once, when the profile says */
  hostsInParallel?: number;
  /** the platform scales that figure up on larger appliances (it is then a floor) */
  parallelScaling?: boolean;
}

export interface LastScanned {
  ip: string;
  /** ISO 8601 UTC; absent when never scanned */
  lastScannedAt?: string;
  /** where the date came from: `vm-scan`, `agent`, ... */
  via?: string;
}

/** What the scanner's API lets us spend, as last reported (no call is made to read it). */
export interface Allowance {
  /** calls left in the current window, if known */
  remaining?: number;
  limit?: number;
  windowSec?: number;
  /** seconds to wait before the next call is allowed (0 = now) */
  waitSec: number;
  concurrencyLimit?: number;
  concurrencyRunning?: number;
  /** scans the subscription may run at once, if known */
  maxConcurrentScans?: number;
}

export interface Scanner {
  /** the backend's name (`scanner.type`), for logs and metrics only: nothing decides by it */
  readonly kind: string;
  /**
   * true for a scanner that launches nothing (dry run): its finished "scans" are recorded as
   * `dry-run`, never as scanned by onsight, have nothing to confirm, and logs say "would launch"
   */
  readonly pretend?: boolean;
  /**
   * for a scanner whose scans end on a known schedule and whose calls cost nothing: follow its
   * scans at least this often (seconds), even when nothing waits for them
   */
  readonly pollPaceS?: number;
  /**
   * the most targets one launch may carry (the client refuses more); the scheduler's batches grow
   * up to it when more targets wait in a region than maxTargetsPerScan. Absent: maxTargetsPerScan
   */
  readonly maxTargetsPerLaunch?: number;
  launch(req: LaunchRequest): Promise<LaunchResult>;
  listScans(filter: ScanFilter): Promise<ScanStatus[]>;
  cancel(scanRef: string): Promise<void>;
  appliances(): Promise<ApplianceStatus[]>;
  /** last scan dates the scanner knows for these addresses (batched by the implementation) */
  lastScanned(ips: string[]): Promise<LastScanned[]>;
  /** addresses per host-list call, when lastScanned makes one call per batch (Qualys: hostListBatchSize); absent: one call */
  readonly hostListBatchSize?: number;
  allowance(): Allowance;
  /**
   * Optional: make the platform's recurring range scans (Qualys scheduled scans) match `want`.
   * One call lists the schedules; those whose title starts with `titlePrefix` are ours: a wanted
   * one missing is created, one that differs (targets, appliance, profile, time, inactive) is
   * updated, one no longer wanted is deleted. Schedules without the prefix are never touched.
   * Returns ours as they stand afterwards. The platform then launches each run itself, titled
   * with the schedule's title, at no API call; `listScans` shows those runs like any scan. A
   * failure once the changes have begun is thrown as a `ScheduleSyncIncomplete` (failure.ts) saying
   * what was made and what may have been, so that the runs of schedules made hold their regions.
   * `exact`: `titlePrefix` is one whole title, and only the schedule of exactly that title is ours
   * to this call (a schedule mended alone: another region's title may begin with it).
   */
  syncSchedules?(want: RangeSchedule[], titlePrefix: string, exact?: boolean): Promise<ScheduleStatus[]>;
  /**
   * Optional, with syncSchedules: launch a range scan now, by API (one call), titled exactly
   * `req.title`. Not retried by the client: an answer lost is found by the scheduler in its next
   * scan list, by the title.
   */
  launchRanges?(req: RangeLaunch): Promise<LaunchResult>;
  /**
   * Optional: what the scan settings our launches use say of their own speed (Qualys: the option
   * profiles' performance settings), one call for all of them: for each name (undefined: the
   * profile the scanner's own configuration names), its facts, or undefined when it is not listed.
   */
  scanProfiles?(names: (string | undefined)[]): Promise<(ScanProfileFacts | undefined)[]>;
  /** What a failure of one of this scanner's calls means (the scheduler decides from this alone). */
  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome;
  close(): Promise<void>;
}

/**
 * A recurring scan of address ranges that the scanner's platform launches by itself, once a day at
 * `timeUtc` (a Qualys scheduled scan). onsight keeps one per region and time of day.
 */
export interface RangeSchedule {
  /** the schedule's title and its runs' title; starts with the sync's titlePrefix and is unique among ours */
  title: string;
  /** addresses and ranges (`10.0.0.0/24`, `10.0.1.5`, `10.0.2.1-10.0.2.9`), inside policy.scope, exclusions removed (checked again by the client) */
  targets: string[];
  /** scanner appliance name */
  appliance: string;
  /** option profile title; scanner default when absent */
  optionProfile?: string;
  /** time of day, `HH:MM`, UTC */
  timeUtc: string;
  /**
   * the platform cancels a run still going this many minutes after its launch (Qualys `end_after`
   * hours plus `end_after_mins`): set to end a run before the region's next one starts, which the
   * platform launches whatever still runs; absent: no cut-off
   */
  endAfterMin?: number;
  /** false: kept but not run (a run of its region still going at its time: the platform would start it on top); default true */
  active?: boolean;
}

export interface ScheduleStatus extends RangeSchedule {
  /** the vendor's id of the schedule */
  id: string;
  active: boolean;
  /** what the sync did to it */
  action: 'kept' | 'created' | 'updated' | 'deleted';
}

/**
 * The longest wait a scanner's answer may ask for, and the longest rate window it may state: a day
 * (Qualys's longest rate window), after which a call asks again. A Retry-After of 10^14 s or a
 * ToWait of 1e300 held every launch for ever (and a date that far threw where it was logged); a
 * window of 1e12 s paced calls to one a week.
 */
export const MAX_WAIT_SEC = 86_400;

/** The scanner calls the scheduler makes; a failure's meaning can depend on which one failed. */
export type ScannerCall = 'launch' | 'listScans' | 'cancel' | 'appliances' | 'lastScanned' | 'syncSchedules' | 'scanProfiles';

/**
 * What a failed scanner call means, in the seam's words. Each backend maps its vendor's failures
 * onto this (it alone knows its codes); the scheduler decides from it alone, never from a vendor
 * code or a backend's name.
 */
export interface FailureOutcome {
  /**
   * For a launch: `no`, certainly nothing was launched (the targets go back to the queue);
   * `unknown`, a scan may exist (find it by the intent id in its title before launching again).
   * Other calls: always `no`.
   */
  launched: 'no' | 'unknown';
  /**
   * `retry`: the same call may succeed soon (ordinary back-off);
   * `wait`: make no call to this scanner before `untilMs` (epoch ms; a rate-limit block can last most of a day);
   * `stop`: only an operator can fix it (credentials, account, licence): stop launching and say why.
   */
  next: 'retry' | 'wait' | 'stop';
  untilMs?: number;
  /**
   * `call`: the wait holds back only calls of this kind (a vendor that limits each API apart, as
   * Qualys does: a spent host-list allowance says nothing of launches and cancels). Default: every call.
   */
  holds?: 'call';
  /**
   * A launch the scanner refused for these targets by name (outside its subscription): they go back
   * to the queue as targets a scan left out do; the others may go again at once, no fault of theirs.
   */
  refused?: string[];
  /** stable error code for logs and metrics (src/errors.ts) */
  code: string;
  /** one line for operators; never contains a credential */
  message: string;
}

/** One line of `onsight doctor`: ✓ ok, ! worth a look, ✗ will not work. */
export interface DoctorLine {
  mark: 'ok' | 'warn' | 'fail';
  /** what was checked, e.g. `credentials`, `scanner API (qualys)` */
  what: string;
  text: string;
}
