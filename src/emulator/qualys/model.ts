/**
 * The emulated subscription: appliances, scans, scheduled scans, hosts and the IP list. Scans move
 * Submitted → Queued → Running → Loading → Finished (or Error / Canceled) on the scan clock; an
 * active schedule launches a scan of its own at each daily occurrence (no API call involved).
 * Time is advanced lazily: every read or write first replays the events due up to "now", in
 * order, so answers are consistent however fast the clock runs.
 */
import { canonicalIp } from '../../util/ip.js';
import type { Clock } from './clock.js';
import { optionProfilesOf, type EmulatorConfig } from './config.js';
import { IpSet, normalisedList, parseItem, intToV4, splitList } from './ipset.js';
import type { Rng } from './rng.js';

export type QualysScanState = 'Submitted' | 'Queued' | 'Running' | 'Loading' | 'Finished' | 'Error' | 'Canceled' | 'Paused';
export const SCAN_STATES: QualysScanState[] = ['Submitted', 'Queued', 'Running', 'Loading', 'Finished', 'Error', 'Canceled', 'Paused'];
const ACTIVE: ReadonlySet<QualysScanState> = new Set(['Submitted', 'Queued', 'Running', 'Loading', 'Paused']);

export interface EmAppliance {
  id: number;
  uuid: string;
  name: string;
  online: boolean;
  capacity: number;
  maxScans?: number;
  pollingIntervalSec: number;
  type: string;
  lastUpdated: number;
  heartbeatsMissed: number;
  /** Qualys's internet scanners (iscanner_name=External): not listed as an appliance */
  external?: boolean;
}

export interface HostJob {
  ip: string;
  appliance: string;
  durationMs: number;
  startAt?: number;
  endAt?: number;
  done: boolean;
}

export interface EmScan {
  id: number;
  ref: string;
  /** TYPE in the scan list: `API` for launches, `Scheduled` for a schedule's runs */
  type: 'API' | 'Scheduled';
  title: string;
  target: string;
  appliances: string[];
  optionTitle?: string;
  /** hosts it runs at once on each appliance: its option profile's figure; undefined, the appliance's capacity alone decides */
  hostsInParallel?: number;
  priority: number;
  userLogin: string;
  launchedAt: number;
  readyAt: number;
  state: QualysScanState;
  subState?: string;
  jobs: HostJob[];
  willError: boolean;
  loadingUntil?: number;
  endedAt?: number;
  processed: boolean;
  /** a schedule's run: the platform cancels it at this time if still going (the schedule's cut-off) */
  endBy?: number;
}

/** A scheduled scan: runs every `frequencyDays` days at startHour:startMinute in its time zone. */
export interface EmSchedule {
  id: number;
  title: string;
  active: boolean;
  /** target items (IPs, a-b ranges) as stored */
  targets: string[];
  appliances: string[];
  optionTitle?: string;
  userLogin: string;
  frequencyDays: number;
  startHour: number;
  startMinute: number;
  timeZoneCode: string;
  /** the zone's offset from UTC (daylight saving is not modelled) */
  offsetMin: number;
  observeDst: boolean;
  /** the first occurrence (epoch ms); later ones follow every frequencyDays */
  anchor: number;
  /** the next occurrence, when active */
  nextLaunch?: number;
  /** scans it has launched */
  runs: number;
  /** its runs are canceled this many minutes after their launch (end_after hours + end_after_mins); undefined: never */
  endAfterMin?: number;
}

export interface ScheduleTiming {
  frequencyDays: number;
  startHour: number;
  startMinute: number;
  offsetMin: number;
  /** local date of the first day (mm/dd/yyyy parts), default the zone's today */
  startDate?: { y: number; m: number; d: number };
}

const DAY_MS = 86_400_000;

export interface EmHost {
  id: number;
  ip: string;
  trackingMethod: string;
  dns?: string;
  netbios?: string;
  lastVulnScan?: number;
  lastVmScanned?: number;
  lastVmScannedDurationSec?: number;
}

interface Toggle {
  at: number;
  name: string;
  online: boolean;
  applied: boolean;
}

export const EXTERNAL = 'External';

export class EmulatorModel {
  readonly appliances = new Map<string, EmAppliance>();
  readonly scans: EmScan[] = [];
  readonly schedules: EmSchedule[] = [];
  readonly hosts = new Map<string, EmHost>();
  readonly subscription = new IpSet();
  /** tracking method given when an IP was added (asset/ip action=add) */
  readonly tracking = new Map<string, string>();
  private readonly toggles: Toggle[] = [];
  private nextScanId = 4_276_000;
  private nextRefSeq: number;
  private nextHostId = 10_112_200;
  private nextScheduleId = 160_642;
  private simNow: number;

  constructor(private readonly c: EmulatorConfig, readonly clock: Clock, private readonly rng: Rng) {
    const start = clock();
    this.simNow = start;
    this.nextRefSeq = 10_000 + Math.floor(rng() * 80_000);
    c.appliances.forEach((a, i) => {
      this.appliances.set(a.name, {
        id: a.id ?? 1187 + i, uuid: fakeUuid(rng), name: a.name, online: a.online, capacity: a.capacity, maxScans: a.maxScans,
        pollingIntervalSec: a.pollingIntervalSec, type: a.type, lastUpdated: start, heartbeatsMissed: a.online ? 0 : 1,
      });
    });
    this.subscription.add(c.subscription);
    for (const h of c.hosts) {
      const ip = canonicalIp(h.ip);
      if (!ip) continue;
      const at = h.lastScannedAt ? Date.parse(h.lastScannedAt) : undefined;
      this.hosts.set(ip, {
        id: this.nextHostId++, ip, trackingMethod: h.trackingMethod, dns: h.dns, netbios: h.netbios,
        lastVulnScan: at, lastVmScanned: at, lastVmScannedDurationSec: at ? 300 : undefined,
      });
      this.subscription.add(ip);
    }
    for (const f of c.faults.applianceOffline) {
      this.toggles.push({ at: start + f.atSec * 1000, name: f.name, online: false, applied: false });
      if (f.untilSec !== undefined) this.toggles.push({ at: start + f.untilSec * 1000, name: f.name, online: true, applied: false });
    }
    this.toggles.sort((a, b) => a.at - b.at);
    for (const sc of c.schedules) {
      const zone = c.timeZones[sc.timeZoneCode];
      if (!zone) throw new TypeError(`emulator schedule "${sc.title}": time zone ${sc.timeZoneCode} is not in timeZones`);
      if (sc.appliance !== EXTERNAL && !this.appliances.has(sc.appliance)) throw new TypeError(`emulator schedule "${sc.title}": appliance ${sc.appliance} is not configured`);
      this.addSchedule({
        title: sc.title, active: sc.active, targets: normalisedList(sc.targets), appliances: [sc.appliance], optionTitle: sc.optionTitle,
        userLogin: sc.userLogin ?? c.userLogin ?? c.username, timeZoneCode: sc.timeZoneCode, observeDst: false,
      }, { frequencyDays: sc.frequencyDays, startHour: sc.startHour, startMinute: sc.startMinute, offsetMin: zone.offsetMin });
    }
  }

  now(): number {
    return this.clock();
  }

  // ---- time --------------------------------------------------------------------------------

  /** Replays every event due up to the clock's now. */
  advance(): number {
    const now = this.clock();
    for (;;) {
      const t = this.nextEventAt();
      if (t === undefined || t > now) break;
      this.simNow = Math.max(this.simNow, t);
      this.applyEvents(this.simNow);
      this.dispatch(this.simNow);
    }
    this.simNow = Math.max(this.simNow, now);
    this.dispatch(this.simNow);
    return this.simNow;
  }

  private nextEventAt(): number | undefined {
    let t: number | undefined;
    const consider = (x: number | undefined) => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    for (const g of this.toggles) if (!g.applied) consider(g.at);
    for (const sc of this.schedules) if (sc.active) consider(sc.nextLaunch);
    for (const s of this.scans) {
      if (s.state === 'Submitted') consider(s.readyAt);
      else if (s.state === 'Loading') consider(s.loadingUntil);
      else if (s.state === 'Running') for (const j of s.jobs) if (!j.done && j.endAt !== undefined) consider(j.endAt);
      if (s.endBy !== undefined && ACTIVE.has(s.state) && s.state !== 'Loading') consider(s.endBy);
    }
    return t;
  }

  private applyEvents(t: number): void {
    for (const g of this.toggles) if (!g.applied && g.at <= t) {
      g.applied = true;
      this.setOnline(g.name, g.online, t);
    }
    for (const sc of this.schedules) {
      if (!sc.active || sc.nextLaunch === undefined || sc.nextLaunch > t) continue;
      // the platform launches the run itself, as a scan titled like its schedule, on its appliance
      const run = this.createScan({ title: sc.title, targets: sc.targets, appliances: sc.appliances, optionTitle: sc.optionTitle, priority: 0, userLogin: sc.userLogin, type: 'Scheduled' }, sc.nextLaunch);
      if (sc.endAfterMin !== undefined) run.endBy = sc.nextLaunch + sc.endAfterMin * 60_000;
      sc.runs++;
      sc.nextLaunch += sc.frequencyDays * DAY_MS;
    }
    for (const s of this.scans) {
      // the schedule's cut-off, as a cancel: hosts not done are not dated (a run loading its results is left to finish [U])
      if (s.endBy !== undefined && s.endBy <= t && ACTIVE.has(s.state) && s.state !== 'Loading') {
        this.stop(s, s.endBy);
        continue;
      }
      if (s.state === 'Submitted' && s.readyAt <= t) s.state = 'Queued';
      if (s.state === 'Running') {
        for (const j of s.jobs) if (!j.done && j.endAt !== undefined && j.endAt <= t) j.done = true;
        if (s.jobs.every((j) => j.done)) {
          s.state = 'Loading';
          s.loadingUntil = t + this.c.scanTiming.loadingSec * 1000;
        }
      }
      if (s.state === 'Loading' && s.loadingUntil !== undefined && s.loadingUntil <= t) this.finish(s, s.loadingUntil);
    }
  }

  private finish(s: EmScan, t: number): void {
    s.endedAt = t;
    if (s.willError) {
      s.state = 'Error';
      return;
    }
    s.state = 'Finished';
    s.processed = true;
    for (const j of s.jobs) {
      const h = this.host(j.ip);
      h.lastVmScanned = j.endAt;
      h.lastVulnScan = t;
      h.lastVmScannedDurationSec = Math.round(j.durationMs / 1000);
    }
    if (s.jobs.length === 0) s.subState = 'No_Host';
  }

  /** Starts queued host jobs wherever an online appliance has room. */
  private dispatch(t: number): void {
    const runningScans = () => this.scans.filter((s) => s.state === 'Running').length;
    for (const a of this.appliances.values()) {
      if (!a.online) continue;
      let busy = this.runningJobs(a.name).length;
      for (const s of this.scans) {
        if (busy >= a.capacity) break;
        if (s.state !== 'Queued' && s.state !== 'Running') continue;
        if (s.state === 'Queued') {
          if (!s.jobs.some((j) => j.appliance === a.name && j.startAt === undefined)) continue;
          if (this.c.maxConcurrentScans !== undefined && runningScans() >= this.c.maxConcurrentScans) continue;
          if (a.maxScans !== undefined && this.scansOn(a.name).length >= a.maxScans) continue;
        }
        let own = s.hostsInParallel === undefined ? 0 : s.jobs.filter((j) => j.appliance === a.name && j.startAt !== undefined && !j.done).length;
        for (const j of s.jobs) {
          if (busy >= a.capacity || own >= (s.hostsInParallel ?? Infinity)) break;
          if (j.appliance !== a.name || j.startAt !== undefined) continue;
          j.startAt = t;
          j.endAt = t + j.durationMs;
          busy++;
          own++;
          s.state = 'Running';
        }
      }
    }
    // a scan whose targets are all gone (none) finishes at once
    for (const s of this.scans) if (s.state === 'Queued' && s.jobs.length === 0) {
      s.state = 'Loading';
      s.loadingUntil = t + this.c.scanTiming.loadingSec * 1000;
    }
  }

  // ---- queries -------------------------------------------------------------------------------

  runningJobs(appliance: string): HostJob[] {
    const out: HostJob[] = [];
    for (const s of this.scans) if (s.state === 'Running') for (const j of s.jobs) if (j.appliance === appliance && j.startAt !== undefined && !j.done) out.push(j);
    return out;
  }

  /** Scans with a host running on this appliance now. */
  scansOn(appliance: string): EmScan[] {
    return this.scans.filter((s) => s.state === 'Running' && s.jobs.some((j) => j.appliance === appliance && j.startAt !== undefined && !j.done));
  }

  findScan(ref: string): EmScan | undefined {
    return this.scans.find((s) => s.ref === ref);
  }

  /** The pseudo-appliance for `External` scans, created on first use. */
  external(): EmAppliance {
    let a = this.appliances.get(EXTERNAL);
    if (!a) {
      a = { id: 1, uuid: '', name: EXTERNAL, online: true, capacity: 50, pollingIntervalSec: 60, type: 'External', lastUpdated: this.simNow, heartbeatsMissed: 0, external: true };
      this.appliances.set(EXTERNAL, a);
    }
    return a;
  }

  host(ip: string): EmHost {
    let h = this.hosts.get(ip);
    if (!h) {
      h = { id: this.nextHostId++, ip, trackingMethod: this.tracking.get(ip) ?? 'IP' };
      this.hosts.set(ip, h);
    }
    return h;
  }

  // ---- changes -------------------------------------------------------------------------------

  setOnline(name: string, online: boolean, t = this.simNow): void {
    const a = this.appliances.get(name);
    if (!a || a.online === online) return;
    a.online = online;
    a.heartbeatsMissed = online ? 0 : 1;
    a.lastUpdated = t;
    if (online) return;
    // scans with hosts running on an appliance that drops off end in Error
    for (const s of this.scansOn(name)) {
      s.state = 'Error';
      s.endedAt = t;
    }
  }

  launch(o: { title: string; targets: string[]; appliances: string[]; optionTitle?: string; priority: number; userLogin: string }): EmScan {
    const scan = this.createScan({ ...o, type: 'API' }, this.advance());
    this.advance();
    return scan;
  }

  /**
   * How many of a scan's hosts run at once on one appliance: its option profile's "hosts to scan in
   * parallel" for scanner appliances. Undefined (the appliance's capacity alone) where no profiles
   * are configured or the profile has parallel scaling, which the platform sizes to the appliance.
   */
  private hostsInParallelOf(title: string | undefined): number | undefined {
    const p = optionProfilesOf(this.c)?.find((x) => x.title === title);
    return p && !p.parallelScaling ? p.hostsToScan : undefined;
  }

  /** A scan as of time t, launched by the API or by a schedule. */
  private createScan(o: { title: string; targets: string[]; appliances: string[]; optionTitle?: string; priority: number; userLogin: string; type: EmScan['type'] }, t: number): EmScan {
    const ips = expandTargets(o.targets);
    const hostMs = () => {
      const { hostSecMin, hostSecMax } = this.c.scanTiming;
      return Math.round((hostSecMin + this.rng() * Math.max(0, hostSecMax - hostSecMin)) * 1000);
    };
    const scan: EmScan = {
      id: this.nextScanId++,
      ref: `scan/${Math.floor(t / 1000)}.${this.nextRefSeq++}`,
      type: o.type,
      title: o.title,
      target: o.targets.join(','),
      appliances: o.appliances,
      optionTitle: o.optionTitle,
      hostsInParallel: this.hostsInParallelOf(o.optionTitle),
      priority: o.priority,
      userLogin: o.userLogin,
      launchedAt: t,
      readyAt: t + this.c.scanTiming.submitDelaySec * 1000,
      state: 'Submitted',
      jobs: ips.map((ip, i) => ({ ip, appliance: o.appliances[i % o.appliances.length], durationMs: hostMs(), done: false })),
      willError: this.rng() < this.c.faults.scanErrorShare,
      processed: false,
    };
    this.scans.push(scan);
    return scan;
  }

  // ---- schedules -----------------------------------------------------------------------------

  timeZoneDetails(code: string): string | undefined {
    return this.c.timeZones[code]?.details;
  }

  findSchedule(id: string): EmSchedule | undefined {
    return this.schedules.find((s) => String(s.id) === id);
  }

  addSchedule(o: Pick<EmSchedule, 'title' | 'active' | 'targets' | 'appliances' | 'optionTitle' | 'userLogin' | 'timeZoneCode' | 'observeDst'>, timing: ScheduleTiming): EmSchedule {
    const now = this.advance();
    const sc: EmSchedule = { ...o, id: this.nextScheduleId++, frequencyDays: 1, startHour: 0, startMinute: 0, offsetMin: 0, anchor: now, runs: 0 };
    this.retime(sc, timing, now);
    this.schedules.push(sc);
    return sc;
  }

  /** New start time and recurrence: the first occurrence on the start date (the zone's today by default), the next one not before now. */
  retime(sc: EmSchedule, timing: ScheduleTiming, now = this.advance()): void {
    Object.assign(sc, { frequencyDays: timing.frequencyDays, startHour: timing.startHour, startMinute: timing.startMinute, offsetMin: timing.offsetMin });
    const local = new Date(now + timing.offsetMin * 60_000);
    const day = timing.startDate ?? { y: local.getUTCFullYear(), m: local.getUTCMonth() + 1, d: local.getUTCDate() };
    sc.anchor = Date.UTC(day.y, day.m - 1, day.d, timing.startHour, timing.startMinute) - timing.offsetMin * 60_000;
    this.plan(sc, now);
  }

  /** The next occurrence at or after now (none when inactive). */
  plan(sc: EmSchedule, now = this.advance()): void {
    if (!sc.active) {
      sc.nextLaunch = undefined;
      return;
    }
    const step = sc.frequencyDays * DAY_MS;
    sc.nextLaunch = sc.anchor >= now ? sc.anchor : sc.anchor + Math.ceil((now - sc.anchor) / step) * step;
  }

  deleteSchedule(sc: EmSchedule): void {
    this.advance(); // runs due before the delete still happen
    this.schedules.splice(this.schedules.indexOf(sc), 1);
  }

  cancel(s: EmScan): void {
    this.stop(s, this.advance());
  }

  private stop(s: EmScan, t: number): void {
    s.state = 'Canceled';
    s.endedAt = t;
    for (const j of s.jobs) if (!j.done) j.done = true;
  }

  isActive(s: EmScan): boolean {
    return ACTIVE.has(s.state);
  }
}

/** Target items (IPs and ranges) as individual addresses; huge ranges are capped. */
export function expandTargets(items: string[]): string[] {
  const out: string[] = [];
  for (const item of splitList(items)) {
    const p = parseItem(item);
    if (!p) continue;
    if (p.v6) out.push(p.v6);
    else if (p.v4) for (let n = p.v4.start; n <= p.v4.end && out.length < 65_536; n++) out.push(intToV4(n));
  }
  return [...new Set(out)];
}

function fakeUuid(rng: Rng): string {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rng() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;
}
