/**
 * The simulator's in-process scanner, with the Qualys emulator's semantics on simulated time:
 * scans go Submitted → Queued (picked up at the appliance's next poll + setup) → Running (host jobs,
 * at most `hostsInParallel × scaling` per scan and `slots` scans per appliance) → processing →
 * Finished, or Error at a configured rate. Appliances go offline on a schedule (jobs in flight are
 * restarted when they return). Scans launched by "other tools" share the appliances. Every API call
 * is counted against a rolling window; a call over the limit is refused with a 409-style error.
 *
 * Time only moves when the driver calls `advance(t)`; calls made in between happen at that instant.
 */
import type { Allowance, ApplianceStatus, FailureOutcome, LastScanned, LaunchRequest, LaunchResult, RangeLaunch, RangeSchedule, Scanner, ScannerCall, ScanFilter, ScanProfileFacts, ScanState, ScanStatus, ScheduleStatus } from '../scanners/types.js';
import { expandRanges } from '../util/ip-ranges.js';
import { nextOccurrence } from '../scheduler/ranges.js';
import { planScheduleSync, plainSchedule } from '../scanners/schedule-plan.js';
import { ScanEndedBeforeCancel, ScannerFailure, ScheduleSyncIncomplete, statedOutcome } from '../scanners/failure.js';
import { DEFAULT_HOST_LIST_BATCH_SIZE } from '../scanners/qualys/options.js';
import { CidrSet, parseCidr } from '../util/ip.js';
import { Rng, hashKey } from './rng.js';
import type { Scenario } from './scenario.js';
import type { Presence, Workload } from './workload.js';

const MIN = 60_000;
/** the keyed draws' streams (see keyedDraw) */
const STREAM_HOST_PROBE = 21;
const STREAM_DEAD_PROBE = 22;
const STREAM_OUR_SCAN = 23;
const STREAM_OTHER_SCAN = 24;

/** How long a live host of persistent factor `mult` takes in one of our scans (ms): one draw of `rng`, capped by maxPerHostMin. */
export function drawHostMs(rng: Rng, scan: Scenario['scan'], mult: number): number {
  const d = rng.logNormal(scan.medianMin * MIN, scan.sigma) * mult * scan.authMult * scan.portsMult;
  return scan.maxPerHostMin > 0 ? Math.min(d, scan.maxPerHostMin * MIN) : d;
}

export type TargetOutcome = 'valid' | 'truncated' | 'dead' | 'wrong-host';

export interface TargetRecord {
  scan: number;
  ip: string;
  /** the host the policy meant to scan (undefined: a blind range scan) */
  intended?: number;
  /** the host actually there at target start */
  actual?: number;
  outcome: TargetOutcome;
  start: number;
  end: number;
  launchedAt: number;
  heldAtLaunch?: boolean;
  /** (truncated) another host held the address before the probe ended: the probe went on against it */
  handedOver?: boolean;
}

interface Job {
  ip: string;
  intended?: number;
  durationMs: number;
  start?: number;
  end?: number;
  done: boolean;
  outcome?: TargetOutcome;
  actual?: number;
  /** the intended host held the address when the launch call was made */
  heldAtLaunch?: boolean;
}

export interface SimScan {
  id: number;
  ref: string;
  title: string;
  appliance: string;
  region?: string;
  other: boolean;
  launchedAt: number;
  readyAt: number;
  state: ScanState;
  jobs: Job[];
  next: number;
  running: number;
  /** jobs in flight */
  live: Job[];
  willError: boolean;
  /** how long processing the results takes once the last host is done (drawn at launch) */
  processingMs: number;
  /** how long after processing the host list dates the hosts found (drawn at launch) */
  hostListLagMs: number;
  processingUntil?: number;
  endedAt?: number;
  firstStart?: number;
  /** launched by a schedule of the platform's (a range run, a baseline's scheduled scan), not by an API call */
  scheduled?: boolean;
  /** when the cancel call was made (the API says `canceled` from then on) */
  canceledAt?: number;
  /** when the appliance learns of the cancel (its next poll) and stops probing */
  stopAt?: number;
  /** a schedule's run: the platform cancels it at this time if still going (the schedule's cut-off) */
  endBy?: number;
  /** hosts found, dated by the host list once the results are processed */
  found: string[];
  /** when the results are processed (host list dated); undefined = never (canceled, unless canceledProcessed) */
  processedAt?: number;
}

interface ApplianceRt {
  name: string;
  slots: number;
  perScan: number;
  pollMs: number;
  phase: number;
  online: boolean;
  /** sorted toggles */
  toggles: { at: number; online: boolean }[];
  busyHosts: number;
  /** when it went down (undefined while online) */
  offlineAt?: number;
  /** the scans it was running when it went down: the platform lists them running until it lists the appliance offline */
  runningAtOutage?: SimScan[];
  /** integrals for utilisation */
  busyHostMs: number;
  onlineMs: number;
  lastT: number;
}

export interface ApiLog {
  at: number;
  what: string;
  refused: boolean;
  ours: boolean;
}

export interface Violation {
  at: number;
  rule: 'region-exclusivity' | 'region-scans' | 'scope' | 'api-limit' | 'slots';
  detail: string;
}

export interface SimScannerOptions {
  scenario: Scenario;
  workload: Workload;
  seed: number;
  /** region of an IP (for the exclusivity check) */
  regionOf: (ip: string) => string | undefined;
  scope: string[];
  exclude: string[];
}

export class SimScanner implements Scanner {
  readonly kind = 'simulated';
  /** as the Qualys client's default hard cap (Qualys documents none) */
  readonly maxTargetsPerLaunch = 10_000;
  /** as the Qualys client sends host lists by default */
  readonly hostListBatchSize = DEFAULT_HOST_LIST_BATCH_SIZE;
  now: number;
  readonly scans: SimScan[] = [];
  private readonly byRef = new Map<string, SimScan>();
  readonly appliancesRt: ApplianceRt[];
  private readonly apByName = new Map<string, ApplianceRt>();
  readonly targets: TargetRecord[] = [];
  /** per address, when a scan last found a host there (the scan's launch time, as Qualys dates it) */
  private readonly hostFoundAt = new Map<string, number>();
  readonly api: ApiLog[] = [];
  readonly violations: Violation[] = [];
  /** accepted call times in the rolling window (ours and others') */
  private window: number[] = [];
  private windowHead = 0;
  private otherNext: number;
  private seq = 0;
  /** the appliances' poll phases and the other integrations' first call */
  private readonly rng: Rng;
  /** how many draws each key has had (a host or address on a day, launches on an appliance in an hour) */
  private readonly drawCount = new Map<string, number>();
  private drawCountDay = -1;
  /** schedule calls' faults (api.scheduleLostShare, scheduleRefusedShare): drawn apart, so runs without them are unchanged */
  private readonly faultRng: Rng;
  /** schedule changes whose answer was lost, and refused (the faults drawn) */
  readonly scheduleFaults = { lost: 0, refused: 0 };
  private readonly sc: Scenario;
  private readonly w: Workload;
  private readonly scope = new CidrSet();
  private readonly exclude = new CidrSet();
  /** who the policy meant by each target of the next launch (set by resolveIntended or launchFor) */
  resolveIntended?: (req: LaunchRequest) => Promise<(number | undefined)[]>;
  /** the platform's scheduled range scans (syncSchedules): each runs daily at its time, at no call */
  private readonly schedules: (RangeSchedule & { id: string; next: number; ips: string[] })[] = [];
  private scheduleSeq = 0;
  /** active scan counts by region, ours only */
  private readonly activeByRegion = new Map<string, SimScan[]>();
  /** hook: a target ended (valid scans count for coverage) */
  onTargetEnd?: (r: TargetRecord) => void;
  onTargetStart?: (r: { scan: SimScan; ip: string; intended?: number; actual?: number; at: number }) => void;

  constructor(private readonly o: SimScannerOptions) {
    this.sc = o.scenario;
    this.w = o.workload;
    this.now = this.w.start;
    this.rng = new Rng(o.seed, 11);
    this.faultRng = new Rng(o.seed, 13);
    for (const c of o.scope) this.scope.add(parseCidr(c)!, c);
    for (const c of o.exclude) this.exclude.add(parseCidr(c)!, c);
    this.appliancesRt = this.sc.appliances.map((a) => {
      const toggles: { at: number; online: boolean }[] = [];
      for (const out of a.outages) {
        toggles.push({ at: this.w.start + out.fromH * 3_600_000, online: false });
        if (out.toH !== undefined) toggles.push({ at: this.w.start + out.toH * 3_600_000, online: true });
      }
      toggles.sort((x, y) => x.at - y.at);
      const rt: ApplianceRt = {
        name: a.name, slots: a.slots, perScan: Math.max(1, Math.round(a.hostsInParallel * a.scaling)), pollMs: a.pollIntervalS * 1000,
        phase: this.rng.next() * a.pollIntervalS * 1000, online: true, toggles, busyHosts: 0, busyHostMs: 0, onlineMs: 0, lastT: this.w.start,
      };
      this.apByName.set(a.name, rt);
      return rt;
    });
    const perHour = this.sc.api.otherCallsPerHour;
    this.otherNext = perHour > 0 ? this.w.start + this.rng.next() * (3_600_000 / perHour) : Infinity;
  }

  // ------------------------------------------------------------------ time

  /** Mean per-host scan time in minutes (for the reservation baseline's Z). */
  meanHostMin(): number {
    const s = this.sc.scan;
    return s.medianMin * Math.exp((s.sigma ** 2 + s.hostMultSigma ** 2) / 2) * s.authMult * s.portsMult;
  }

  private nextEventAt(limit: number): number {
    let t = limit;
    for (const sch of this.schedules) if (sch.next < t) t = sch.next;
    for (const a of this.appliancesRt) if (a.toggles.length && a.toggles[0].at < t) t = a.toggles[0].at;
    for (const s of this.active) {
      if (s.stopAt !== undefined && s.stopAt < t) t = s.stopAt;
      if (s.endBy !== undefined && s.canceledAt === undefined && s.endBy > this.now && s.endBy < t) t = s.endBy;
      if (s.state === 'submitted' && s.readyAt < t) t = s.readyAt;
      else if (s.state === 'queued') {
        const a = this.apByName.get(s.appliance)!;
        if (a.online) {
          const p = this.nextPoll(a, s.readyAt);
          if (p > this.now && p < t) t = p;
        }
      } else if (s.state === 'running') {
        for (const j of s.live) if (j.end! < t) t = j.end!;
        if (s.processingUntil !== undefined && s.processingUntil < t) t = s.processingUntil;
      }
    }
    return t;
  }

  /** scans not yet ended */
  private active: SimScan[] = [];
  /** ended scans whose results are not processed yet */
  private unprocessed: SimScan[] = [];

  advance(t: number): void {
    while (this.now < t) {
      const n = this.nextEventAt(t);
      this.integrate(n);
      this.now = n;
      this.apply(n);
    }
    this.integrate(t);
    this.now = Math.max(this.now, t);
    this.apply(this.now);
  }

  private integrate(t: number): void {
    for (const a of this.appliancesRt) {
      const dt = t - a.lastT;
      if (dt <= 0) continue;
      a.busyHostMs += a.busyHosts * dt;
      if (a.online) a.onlineMs += dt;
      a.lastT = t;
    }
  }

  private apply(t: number): void {
    // background calls by other integrations
    while (this.otherNext <= t) {
      this.accept(this.otherNext, 'other integration', false);
      this.otherNext += 3_600_000 / this.sc.api.otherCallsPerHour;
    }
    for (const sch of this.schedules) {
      while (sch.next <= t) {
        if (sch.active === false) {
          sch.next += 86_400_000;
          continue;
        }
        // the platform launches the run itself, whatever else runs in the region (counted if it breaks a region rule)
        const run = this.enter({ intentId: '', title: sch.title, targets: sch.ips, appliance: sch.appliance }, undefined, undefined);
        run.scheduled = true;
        if (sch.endAfterMin !== undefined) run.endBy = sch.next + sch.endAfterMin * MIN;
        sch.next += 86_400_000;
      }
    }
    for (const a of this.appliancesRt) {
      while (a.toggles.length && a.toggles[0].at <= t) {
        const g = a.toggles.shift()!;
        this.setOnline(a, g.online, g.at);
      }
    }
    let changed = true;
    while (changed) {
      changed = false;
      for (const s of this.active) {
        // the schedule's cut-off: the platform cancels the run, as a cancel call would (a run processing its results is left to finish)
        if (s.endBy !== undefined && s.endBy <= t && s.canceledAt === undefined && s.processingUntil === undefined) this.markCanceled(s, s.endBy);
        if (s.stopAt !== undefined && s.stopAt <= t) {
          this.stop(s, s.stopAt);
          changed = true;
          continue;
        }
        if (s.state === 'submitted' && s.readyAt <= t) {
          s.state = 'queued';
          changed = true;
        }
        if (s.state === 'running') {
          if (s.live.some((j) => j.end! <= t)) {
            const ending = s.live.filter((j) => j.end! <= t);
            s.live = s.live.filter((j) => j.end! > t);
            for (const j of ending) this.endJob(s, j);
          }
          if (s.next >= s.jobs.length && s.running === 0 && s.processingUntil === undefined) {
            s.processingUntil = t + s.processingMs;
          }
          if (s.processingUntil !== undefined && s.processingUntil <= t) {
            this.finish(s, s.processingUntil);
            changed = true;
          }
        }
      }
      if (this.dispatch(t)) changed = true;
      this.active = this.active.filter((s) => s.endedAt === undefined);
    }
    this.processResults(t);
  }

  private setOnline(a: ApplianceRt, online: boolean, t: number): void {
    if (a.online === online) return;
    a.online = online;
    a.offlineAt = online ? undefined : t;
    a.runningAtOutage = online ? undefined : this.active.filter((s) => s.appliance === a.name && s.state === 'running');
    if (!online) {
      // host jobs in flight are interrupted; they run again when the appliance is back
      for (const s of this.active) {
        if (s.appliance !== a.name || s.state !== 'running') continue;
        for (const j of s.live) {
          j.start = undefined;
          j.end = undefined;
          s.running--;
          a.busyHosts--;
        }
        s.live = [];
        // restart from the first interrupted job
        let first = s.jobs.findIndex((j) => !j.done && j.start === undefined);
        if (first < 0) first = s.next;
        const pending = s.jobs.slice(first, s.next).filter((j) => !j.done);
        const doneTail = s.jobs.slice(first, s.next).filter((j) => j.done);
        s.jobs.splice(first, s.next - first, ...doneTail, ...pending);
        s.next = first + doneTail.length;
        s.state = 'queued';
      }
    }
  }

  /** Down, and the platform does not list it offline yet (`scan.offlineListedAfterMin`). */
  private downUnlisted(a: ApplianceRt): boolean {
    return !a.online && a.offlineAt !== undefined && this.now < a.offlineAt + this.sc.scan.offlineListedAfterMin * MIN;
  }

  /** The scans the platform lists running on an appliance: those started; while it is down and not listed offline, those it ran when it went down. */
  private listedRunning(a: ApplianceRt): SimScan[] {
    if (this.downUnlisted(a)) return a.runningAtOutage!.filter((s) => s.endedAt === undefined && s.canceledAt === undefined);
    return this.active.filter((s) => s.appliance === a.name && s.state === 'running');
  }

  private endJob(s: SimScan, j: Job): void {
    j.done = true;
    s.running--;
    const a = this.apByName.get(s.appliance)!;
    a.busyHosts--;
    if (s.other) return;
    const rec: TargetRecord = {
      scan: s.id, ip: j.ip, intended: j.intended, actual: j.actual, outcome: j.outcome!, start: j.start!, end: j.end!, launchedAt: s.launchedAt, heldAtLaunch: j.heldAtLaunch,
    };
    if (rec.outcome === 'valid') {
      const p = this.holder(j.ip, j.end! - 1);
      if (!p || p.host !== j.actual) rec.outcome = 'truncated';
      if (p && p.host !== j.actual) rec.handedOver = true;
    }
    this.record(s, rec);
  }

  private record(s: SimScan, rec: TargetRecord): void {
    this.targets.push(rec);
    if (rec.outcome !== 'dead') s.found.push(rec.ip);
    this.onTargetEnd?.(rec);
  }

  /** Scans whose results are processed by now date their hosts in the host list (as Qualys does: the scan's launch time). */
  private processResults(t: number): void {
    if (!this.unprocessed.length) return;
    const rest: SimScan[] = [];
    for (const s of this.unprocessed) {
      if (s.processedAt === undefined) continue; // never processed
      if (s.processedAt > t) {
        rest.push(s);
        continue;
      }
      for (const ip of s.found) {
        const prev = this.hostFoundAt.get(ip);
        if (prev === undefined || prev < s.launchedAt) this.hostFoundAt.set(ip, s.launchedAt);
      }
    }
    this.unprocessed = rest;
  }

  /** the presence holding `ip` at `t`, if any */
  holder(ip: string, t: number): Presence | undefined {
    const l = this.w.truth.get(ip);
    if (!l) return undefined;
    let lo = 0, hi = l.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (l[mid].start <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let k = found; k >= 0 && k >= found - 2; k--) if (l[k].start <= t && t < l[k].end) return l[k];
    return undefined;
  }

  private scansOn(a: ApplianceRt): number {
    let n = 0;
    for (const s of this.active) if (s.appliance === a.name && s.state === 'running') n++;
    return n;
  }

  /** Start host jobs wherever an appliance has room; true if anything started. */
  private dispatch(t: number): boolean {
    let any = false;
    for (const a of this.appliancesRt) {
      if (!a.online) continue;
      let running = this.scansOn(a);
      for (const s of this.active) {
        if (s.appliance !== a.name) continue;
        if (s.state === 'queued') {
          if (running >= a.slots) continue;
          // picked up at the appliance's next poll after it was ready, plus setup
          const poll = this.nextPoll(a, s.readyAt);
          if (poll > t) continue;
          s.state = 'running';
          running++;
        }
        if (s.state !== 'running') continue;
        while (s.running < a.perScan && s.next < s.jobs.length) {
          const j = s.jobs[s.next++];
          this.startJob(s, a, j, t);
          any = true;
        }
      }
    }
    return any;
  }

  /** The appliance's first poll for work after `t` (for the makespan's lower bound). */
  nextPollAfter(name: string, t: number): number {
    return this.nextPoll(this.apByName.get(name)!, t);
  }

  private nextPoll(a: ApplianceRt, after: number): number {
    const k = Math.ceil((after - a.phase) / a.pollMs);
    return a.phase + k * a.pollMs;
  }

  private startJob(s: SimScan, a: ApplianceRt, j: Job, t: number): void {
    j.start = t;
    s.live.push(j);
    s.running++;
    a.busyHosts++;
    s.firstStart ??= t;
    if (s.other) {
      j.end = t + j.durationMs;
      return;
    }
    const p = this.holder(j.ip, t);
    j.actual = p?.host;
    const sc = this.sc.scan;
    const day = Math.floor((t - this.w.start) / 86_400_000);
    if (!p) {
      j.outcome = 'dead';
      j.end = t + this.keyedDraw(STREAM_DEAD_PROBE, day, `ip ${j.ip}`, hashKey(j.ip), day).uniform(sc.deadProbeMin[0], sc.deadProbeMin[1]) * MIN;
    } else {
      j.outcome = j.intended === undefined || j.intended === p.host ? 'valid' : 'wrong-host';
      j.end = t + drawHostMs(this.keyedDraw(STREAM_HOST_PROBE, day, `host ${p.host}`, p.host, day), sc, this.w.hosts[p.host].mult);
    }
    this.onTargetStart?.({ scan: s, ip: j.ip, intended: j.intended, actual: j.actual, at: t });
  }

  private finish(s: SimScan, t: number): void {
    s.endedAt = t;
    s.state = s.canceledAt !== undefined ? 'canceled' : s.willError ? 'error' : 'finished';
    const sc = this.sc.scan;
    if (s.state === 'finished' || sc.canceledProcessed) {
      s.processedAt = t + s.hostListLagMs;
      this.unprocessed.push(s);
    }
    if (!s.other && s.region) {
      const l = this.activeByRegion.get(s.region);
      if (l) this.activeByRegion.set(s.region, l.filter((x) => x !== s));
    }
  }

  // ------------------------------------------------------------------ API

  private accept(at: number, what: string, ours: boolean): void {
    this.window.push(at);
    if (ours) this.api.push({ at, what, refused: false, ours });
  }

  private inWindow(t: number): number {
    const from = t - this.sc.api.windowS * 1000;
    while (this.windowHead < this.window.length && this.window[this.windowHead] <= from) this.windowHead++;
    if (this.windowHead > 4096) {
      this.window = this.window.slice(this.windowHead);
      this.windowHead = 0;
    }
    return this.window.length - this.windowHead;
  }

  /** Count one API call; throws the rate-limit error when the window is spent. */
  private spend(what: string): void {
    this.advance(this.now);
    if (this.inWindow(this.now) >= this.sc.api.limit) {
      this.api.push({ at: this.now, what, refused: true, ours: true });
      this.violations.push({ at: this.now, rule: 'api-limit', detail: `${what}: call refused (409), the rolling window of ${this.sc.api.limit} calls is spent` });
      if (this.sc.api.blockedCount) this.window.push(this.now);
      throw new ScannerFailure('ONSIGHT_SCANNER_RATE_LIMIT', `409: rate limit reached, wait ${this.allowance().waitSec} s`, 'no', 'wait', this.now + this.allowance().waitSec * 1000);
    }
    this.accept(this.now, what, true);
  }

  allowance(): Allowance {
    const used = this.inWindow(this.now);
    const remaining = Math.max(0, this.sc.api.limit - used);
    let waitSec = 0;
    if (remaining === 0) {
      const oldest = this.window[this.windowHead];
      waitSec = Math.max(1, Math.ceil((oldest + this.sc.api.windowS * 1000 - this.now) / 1000));
    }
    return { remaining, limit: this.sc.api.limit, windowSec: this.sc.api.windowS, waitSec, concurrencyLimit: this.sc.api.concurrency, concurrencyRunning: 0 };
  }

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    return this.launchFor(req, await this.resolveIntended?.(req));
  }

  /**
   * Launch with the intended host of each target known (baselines; onsight goes through
   * resolveIntended). `free`: launched by the platform itself (a Qualys scheduled scan), no API call.
   */
  async launchFor(req: LaunchRequest, intended?: (number | undefined)[], region?: string, free = false): Promise<LaunchResult> {
    if (!free) this.spend('launch');
    const s = this.enter(req, intended, region);
    if (free) s.scheduled = true;
    this.advance(this.now);
    return { scanRef: s.ref };
  }

  /** A scan enters the platform now: region rules checked (and counted when broken), queued for its appliance. */
  private enter(req: LaunchRequest, intended: (number | undefined)[] | undefined, region: string | undefined): SimScan {
    const a = this.apByName.get(req.appliance);
    if (!a) throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', `no appliance named ${req.appliance}`, 'no', 'retry');
    for (const ip of req.targets) {
      if (!this.scope.contains(ip) || this.exclude.contains(ip)) this.violations.push({ at: this.now, rule: 'scope', detail: `${ip} is outside the scope or excluded` });
    }
    const reg = region ?? (req.targets.length ? this.o.regionOf(req.targets[0]) : undefined);
    if (reg) {
      for (const ip of req.targets) {
        const r = this.o.regionOf(ip);
        if (r !== reg) this.violations.push({ at: this.now, rule: 'region-exclusivity', detail: `scan on ${req.appliance} mixes regions ${reg} and ${r}` });
      }
      const active = (this.activeByRegion.get(reg) ?? []).filter((s) => s.endedAt === undefined);
      const others = active.filter((s) => s.appliance !== req.appliance);
      if (others.length) this.violations.push({ at: this.now, rule: 'region-exclusivity', detail: `region ${reg}: scan launched on ${req.appliance} while ${others[0].appliance} still scans it` });
      if (active.length >= this.sc.regionMaxScans) {
        const which = active.map((x) => `"${x.title.split(' ').slice(0, 3).join(' ')}" ${x.state} since launch ${new Date(x.launchedAt).toISOString().slice(11, 16)}`).join('; ');
        this.violations.push({ at: this.now, rule: 'region-scans', detail: `region ${reg}: ${active.length + 1} scans at once (max ${this.sc.regionMaxScans}): "${req.title.split(' ').slice(0, 3).join(' ')}" joins ${which}` });
      }
    }
    const s = this.newScan(req.title, req.appliance, false, req.targets.map((ip, k) => ({
      ip, intended: intended?.[k], durationMs: 0, done: false,
      heldAtLaunch: intended?.[k] !== undefined ? this.holder(ip, this.now)?.host === intended[k] : undefined,
    })));
    s.region = reg;
    if (reg) this.activeByRegion.set(reg, [...(this.activeByRegion.get(reg) ?? []), s]);
    return s;
  }

  /**
   * As Qualys's scheduled scans: one list call, then a call per schedule created, updated or
   * deleted (ours: the title starts with `prefix`). A schedule runs daily at its time (UTC) from
   * the next occurrence on, launched by the platform at no call.
   */
  async syncSchedules(want: RangeSchedule[], prefix: string, exact = false): Promise<ScheduleStatus[]> {
    this.spend('list schedules');
    // (exact: the one title, as the Qualys client)
    const steps = planScheduleSync(this.schedules.filter((h) => !exact || h.title === prefix), want, prefix);
    // as the Qualys client: the schedules kept are said up front; one change's failure (refused, its answer
    // lost) does not stop the others, a failure of the whole API (the rate limit) or a scope refusal does
    const kept = (step: (typeof steps)[number] & { action: 'kept' }): ScheduleStatus => ({ ...plainSchedule(step.have), id: step.have.id, active: step.have.active !== false, action: 'kept' });
    // (a whole sync is answered in the plan's order, kept ones among the others; a failed one says every kept one, then what it made)
    const answers: ScheduleStatus[] = [];
    const said = () => [...steps.flatMap((step) => (step.action === 'kept' ? [kept(step)] : [])), ...answers.filter((a) => a.action !== 'kept')];
    const unsure: string[] = [];
    let changeCalls = 0;
    let firstError: unknown;
    // a change call: spent; refused before it is made, or its answer lost after (the scenario's shares)
    const change = (what: string, title: string, make: () => void) => {
      changeCalls++;
      this.spend(what);
      if (this.faulty(this.sc.api.scheduleRefusedShare) && ++this.scheduleFaults.refused) throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', `${what} ${title}: refused (simulated)`, 'no', 'retry');
      make();
      if (this.faulty(this.sc.api.scheduleLostShare)) {
        unsure.push(title);
        this.scheduleFaults.lost++;
        throw new ScannerFailure('ONSIGHT_SCANNER_UNREACHABLE', `${what} ${title}: answer lost (simulated; the change was made)`, 'unknown', 'retry');
      }
    };
    for (const step of steps) {
      try {
        if (step.action === 'kept') answers.push(kept(step));
        else if (step.action === 'deleted') {
          change('delete schedule', step.have.title, () => this.schedules.splice(this.schedules.indexOf(step.have), 1));
          answers.push({ ...plainSchedule(step.have), id: step.have.id, active: true, action: 'deleted' });
        } else if (step.action === 'updated') {
          const ips = this.scheduleIps(step.want);
          change('update schedule', step.want.title, () => {
            delete step.have.endAfterMin;
            delete step.have.active;
            Object.assign(step.have, step.want, { ips, next: nextOccurrence(this.now + 1, step.want.timeUtc) });
          });
          answers.push({ ...step.want, id: step.have.id, active: step.want.active !== false, action: 'updated' });
        } else {
          const w = step.want;
          if (!this.apByName.has(w.appliance)) throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', `no appliance named ${w.appliance}`, 'no', 'retry');
          const ips = this.scheduleIps(w);
          const id = `sched.${this.scheduleSeq + 1}`;
          change('create schedule', w.title, () => {
            this.scheduleSeq++;
            this.schedules.push({ ...w, id, ips, next: nextOccurrence(this.now + 1, w.timeUtc) });
          });
          answers.push({ ...w, id, active: w.active !== false, action: 'created' });
        }
      } catch (err) {
        if (!(err instanceof ScannerFailure) || err.next !== 'retry') throw new ScheduleSyncIncomplete(err, said(), unsure, changeCalls);
        firstError ??= err;
      }
    }
    // what was made, and what may have been, go with the first failure
    if (firstError !== undefined) throw new ScheduleSyncIncomplete(firstError, said(), unsure, changeCalls);
    return answers;
  }

  private faulty(share: number | undefined): boolean {
    return share !== undefined && share > 0 && this.faultRng.next() < share;
  }

  /** A range scan launched by API (one call), titled as its schedule; judged like the platform's runs. */
  async launchRanges(req: RangeLaunch): Promise<LaunchResult> {
    if (!this.apByName.has(req.appliance)) throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', `no appliance named ${req.appliance}`, 'no', 'retry');
    const targets = this.scheduleIps(req);
    return this.launchFor({ intentId: '', title: req.title, targets, appliance: req.appliance }, undefined, undefined);
  }

  /** The schedule's addresses; any outside the scope or excluded is refused before the call, as the client does. */
  private scheduleIps(w: Pick<RangeSchedule, 'title' | 'targets'>): string[] {
    const ips = expandRanges(w.targets);
    const bad = ips.find((ip) => !this.scope.contains(ip) || this.exclude.contains(ip));
    if (bad) throw new ScannerFailure('ONSIGHT_SCOPE_VIOLATION', `schedule ${w.title}: ${bad} is outside the scope or excluded`, 'no', 'stop');
    return ips;
  }

  /** A scan by another tool: occupies the appliance, not judged, costs none of our calls. */
  launchOther(appliance: string, hosts: number, title: string): SimScan {
    const sc = this.sc.scan;
    const draw = this.scanDraw(appliance, true);
    const jobs: Job[] = [];
    for (let k = 0; k < hosts; k++) {
      jobs.push({ ip: '0.0.0.0', durationMs: draw.logNormal(sc.medianMin * MIN, Math.hypot(sc.sigma, sc.hostMultSigma)) * sc.portsMult, done: false });
    }
    const s = this.newScan(title, appliance, true, jobs, draw);
    this.advance(this.now);
    return s;
  }

  /**
   * Draws are keyed by what they describe, not by the order they are made in: a host's time by the
   * host, the day and how many times it was probed that day; a scan's setup, error and processing by
   * its appliance, its launch hour and how many were launched there in that hour. So runs paired by
   * seed draw the same times where they do the same thing, even after their courses part.
   */
  private keyedDraw(stream: number, day: number, countKey: string, ...keys: number[]): Rng {
    // (counts are per day, and time only goes forward: a day's counts are not needed after it)
    if (day > this.drawCountDay) {
      this.drawCount.clear();
      this.drawCountDay = day;
    }
    const n = this.drawCount.get(countKey) ?? 0;
    this.drawCount.set(countKey, n + 1);
    return Rng.keyed(this.o.seed, stream, ...keys, n);
  }

  private scanDraw(appliance: string, other: boolean): Rng {
    const hour = Math.floor((this.now - this.w.start) / 3_600_000);
    const stream = other ? STREAM_OTHER_SCAN : STREAM_OUR_SCAN;
    return this.keyedDraw(stream, Math.floor(hour / 24), `scan ${stream} ${appliance} ${hour}`, hashKey(appliance), hour);
  }

  private newScan(title: string, appliance: string, other: boolean, jobs: Job[], draw = this.scanDraw(appliance, other)): SimScan {
    const id = ++this.seq;
    const sc = this.sc.scan;
    const s: SimScan = {
      id, ref: `scan/sim.${id}`, title, appliance, other, launchedAt: this.now,
      readyAt: this.now + draw.uniform(sc.setupMin[0], sc.setupMin[1]) * MIN, state: 'submitted', jobs, next: 0, running: 0, live: [],
      // (drawn for other tools' scans too, and thrown away: every scan takes its numbers in the same order)
      willError: draw.chance(sc.errorRate) && !other,
      processingMs: draw.logNormal(sc.processingMedianMin * MIN, sc.processingSigma),
      hostListLagMs: sc.hostListLagMin > 0 ? draw.logNormal(sc.hostListLagMin * MIN, sc.hostListLagSigma) : 0,
      found: [],
    };
    this.scans.push(s);
    this.byRef.set(s.ref, s);
    this.active.push(s);
    return s;
  }

  /** The API's view: canceled from the cancel call on; processed once the host list dates the results. */
  private status(s: SimScan): ScanStatus {
    let state: ScanState = s.canceledAt !== undefined ? 'canceled' : s.state;
    // interrupted by an outage the platform does not list yet: still running as far as it knows
    if (state === 'queued') {
      const a = this.apByName.get(s.appliance)!;
      if (this.downUnlisted(a) && a.runningAtOutage!.includes(s)) state = 'running';
    }
    const st: ScanStatus = { scanRef: s.ref, title: s.title, state, appliance: s.appliance, launchedAt: new Date(s.launchedAt).toISOString(), scheduled: s.scheduled === true };
    const ended = s.canceledAt ?? s.endedAt;
    if (ended !== undefined) st.endedAt = new Date(ended).toISOString();
    if (state === 'finished' || state === 'error' || state === 'canceled') st.processed = s.processedAt !== undefined && s.processedAt <= this.now;
    return st;
  }

  async listScans(filter: ScanFilter): Promise<ScanStatus[]> {
    this.spend('list scans');
    let list: SimScan[];
    if (filter.scanRefs) list = filter.scanRefs.map((r) => this.byRef.get(r)).filter((s): s is SimScan => s !== undefined);
    else list = this.scans.filter((s) => !s.other);
    if (filter.launchedAfter) list = list.filter((s) => s.launchedAt >= filter.launchedAfter!.getTime());
    let out = list.map((s) => this.status(s));
    if (filter.states) out = out.filter((s) => filter.states!.includes(s.state));
    return out;
  }

  /** Omniscient view (oracle only: no API call). */
  peek(ref: string): SimScan | undefined {
    return this.byRef.get(ref);
  }

  /**
   * The platform marks the scan canceled at once, but the appliance learns of it only at its next
   * poll: until then it keeps probing (and starting) targets. Targets in flight then are stopped
   * and judged as they stand: a wrong host was probed all the same; an interrupted valid target is
   * truncated. A scan not picked up yet never starts.
   */
  async cancel(scanRef: string): Promise<void> {
    this.spend('cancel');
    const s = this.byRef.get(scanRef);
    if (!s || s.canceledAt !== undefined) return;
    // (as the vendors' backends: an ended scan is not canceled, its end is the poll's to record)
    if (s.endedAt !== undefined) throw new ScanEndedBeforeCancel(scanRef, s.state);
    this.markCanceled(s, this.now);
    this.advance(this.now);
  }

  /** Canceled on the platform at t; the appliance stops at its next poll (at once if the scan is not running). */
  private markCanceled(s: SimScan, t: number): void {
    s.canceledAt = t;
    const a = this.apByName.get(s.appliance)!;
    s.stopAt = s.state === 'running' && a.online ? this.nextPoll(a, t + 1) : t;
  }

  /** The appliance stops a canceled scan: in-flight targets are judged as they stand. */
  private stop(s: SimScan, t: number): void {
    const a = this.apByName.get(s.appliance)!;
    for (const j of s.live) {
      j.done = true;
      j.end = t;
      s.running--;
      a.busyHosts--;
      if (s.other) continue;
      const outcome: TargetOutcome = j.outcome === 'valid' ? 'truncated' : j.outcome!;
      const p = j.outcome === 'valid' ? this.holder(j.ip, t - 1) : undefined;
      this.record(s, { scan: s.id, ip: j.ip, intended: j.intended, actual: j.actual, outcome, start: j.start!, end: t, launchedAt: s.launchedAt, heldAtLaunch: j.heldAtLaunch, ...(p && p.host !== j.actual ? { handedOver: true } : {}) });
    }
    s.live = [];
    s.next = s.jobs.length;
    this.finish(s, t);
  }

  /**
   * Appliances as the platform lists them: online, the scans (ours and other tools') running on
   * each — started, as Qualys's RUNNING_SCAN_COUNT and RUNNING_SCANS count them, not those still
   * waiting for a slot or a poll — and the appliance's polling interval (POLLING_INTERVAL). Its
   * slot count is not listed: Qualys does not publish one.
   */
  async appliances(): Promise<ApplianceStatus[]> {
    this.spend('list appliances');
    return this.appliancesRt.map((a) => {
      const on = this.listedRunning(a);
      return { name: a.name, online: a.online || this.downUnlisted(a), runningScans: on.length, runningScanRefs: on.map((s) => s.ref), pollIntervalS: a.pollMs / 1000 };
    });
  }

  /** The truth for the oracle: every scan on each appliance, waiting ones included. */
  applianceView(): ApplianceStatus[] {
    return this.appliancesRt.map((a) => {
      const on = this.active.filter((s) => s.appliance === a.name && (s.state === 'running' || s.state === 'queued' || s.state === 'submitted'));
      return { name: a.name, online: a.online, runningScans: on.length, runningScanRefs: on.map((s) => s.ref) };
    });
  }

  /** As Qualys's host list: per address, the date of the last scan that found a host there. */
  async lastScanned(ips: string[]): Promise<LastScanned[]> {
    // a call per hostListBatchSize addresses, as the Qualys client sends them
    for (let i = 0; i < Math.max(1, ips.length); i += this.hostListBatchSize) this.spend('host list');
    return ips.map((ip) => {
      const at = this.hostFoundAt.get(ip);
      return at === undefined ? { ip } : { ip, lastScannedAt: new Date(at).toISOString(), via: 'vm-scan' };
    });
  }

  /**
   * As Qualys's option profile list shows the profile the scans run with: its hosts in parallel
   * (the appliances' figure; the smallest where they differ) and whether it scales on larger
   * appliances (an appliance with a scaling above 1). Not listed where api.optionProfileHidden.
   */
  async scanProfiles(names: (string | undefined)[]): Promise<(ScanProfileFacts | undefined)[]> {
    this.spend('option profile list');
    if (this.sc.api.optionProfileHidden) return names.map(() => undefined);
    return names.map((n) => ({ title: n ?? 'simulated', hostsInParallel: Math.min(...this.sc.appliances.map((a) => a.hostsInParallel)), parallelScaling: this.sc.appliances.some((a) => a.scaling > 1) }));
  }

  /** running host jobs per appliance now (for load plots) */
  load(): number[] {
    return this.appliancesRt.map((a) => a.busyHosts);
  }

  activeScans(): readonly SimScan[] {
    return this.active;
  }

  /** Its failures say what they mean (ScannerFailure): a refused call launched nothing. */
  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
    return statedOutcome(err, call);
  }

  async close(): Promise<void> {}
}
