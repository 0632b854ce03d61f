/**
 * The discrete-event driver: a virtual clock, the workload's log events delivered after the log
 * delay, a periodic tick (and the daemon's 60 s sweep for onsight), the simulated scanner
 * advanced to every event time, and the metrics of the workload model §4.7.
 */
import type { Sighting } from '../sighting.js';
import { CidrSet, parseCidr } from '../util/ip.js';
import { identityKey } from '../inventory/inventory.js';
import { createPolicy, type PolicyCtx, type RangeRunCounts, type SimPolicy } from './policies.js';
import { SimScanner, type TargetRecord } from './scanner.js';
import type { Scenario } from './scenario.js';
import { generateWorkload, type Presence, type Workload } from './workload.js';

const MIN = 60_000;
const HOUR = 3_600_000;
/** an other tool's scan that waits longer than this for a slot is overdue: the next night's has come */
const OVERDUE_MS = 24 * HOUR;

export interface RunMetrics {
  scenario: string;
  policy: string;
  seed: number;
  /**
   * The headline (src/sim/README.md, "Coverage"): steady-state rolling compliance, the share of
   * (host, day) pairs, from the day after the first window on, where a host present that day had a
   * valid scan ending within the window before the day's end. Runs shorter than that: the
   * whole-run coverage of the first window.
   */
  compliance: number;
  /** the same, counting only targets of scans that finished (not canceled, not errored) */
  complianceStrict: number;
  /** (host, day) pairs behind `compliance` */
  compliancePairs: number;
  /** coverage of each calendar window of the first size (cold-start week first) */
  coverageByWindow: number[];
  /** mean of `coverageByWindow` without the first (cold-start) window */
  coverageSteady?: number;
  /** coverage within each window (days → share of eligible host-windows) */
  coverage: Record<string, number>;
  eligible: Record<string, number>;
  coverageByRegion: Record<string, number>;
  fairnessJain: number;
  minRegionCoverage: number;
  maxRegionCoverage: number;
  targets: number;
  validTargets: number;
  wasted: number;
  wastedShare: number;
  /** appliance time spent on the wasted targets (dead + truncated: from each one's start to its end), host-hours per day */
  wastedHostHPerDay: number;
  /**
   * all appliance time that bought no valid processed result, host-hours a day: the wasted time
   * above plus wrong-host probes and the valid probes of scans whose results are never processed
   * (canceled, unless `scan.canceledProcessed`; errored)
   */
  lostHostHPerDay: number;
  dead: number;
  truncated: number;
  wrongHost: number;
  wrongHostShare: number;
  /** wrong-host targets whose intended host still held the address at the launch call (reassigned while the scan waited or ran) */
  wrongHostAfterLaunch: number;
  /** median launch → target start of the wrong-host targets (min) */
  wrongHostStartDelayP50Min?: number;
  /**
   * targets whose intended host was there at the probe's start but whose address another host held
   * before the probe ended (counted truncated, not wrong-host): the probe went on against that host.
   * Blind range scans have no intended host and count none.
   */
  wrongHostMidProbe: number;
  duplicates: number;
  scansLaunched: number;
  apiCalls: number;
  /** accepted calls by kind (launch, list scans, list appliances, cancel, host list) */
  apiByKind: Record<string, number>;
  apiCallsPerDay: number;
  apiPeakHour: number;
  api409: number;
  callsPerValidScan: number;
  utilisation: number;
  idleWhileBacklogMin: number;
  /** times onsight was restarted in the run (policy.restartEveryH; 0 for the baselines), and after how many it read its learned state back */
  restarts: number;
  restartsReadBack: number;
  /** onsight+ranges: range times skipped (a run still went), skipped times made up, runs that gave way while queued, our scans canceled before a run; absent for the others */
  rangeSkipped?: number;
  rangeMadeUp?: number;
  rangeGaveWay?: number;
  rangeOursCanceled?: number;
  /** onsight+ranges: runs placed on another appliance of their region because other tools' scans held every slot of theirs */
  rangePlacedElsewhere?: number;
  /** schedule changes whose answer the scanner lost, and that it refused (api.scheduleLostShare, scheduleRefusedShare) */
  scheduleAnswersLost: number;
  scheduleChangesRefused: number;
  /**
   * Other tools' scans that waited over a day for a slot (started more than 24 h after launch, or
   * still waiting at the run's end more than 24 h after it): their nightly work alone, or with ours,
   * is more than the appliances can do, and their queue grows from night to night. In the bound's
   * run, which launches nothing, it is their load alone.
   */
  othersOverdue: number;
  /** the appliances where that happened */
  othersOverdueOn: string[];
  /**
   * The largest share of the run, over appliances, that other tools' started scans held every slot
   * of one (nothing of ours could start there), and that appliance. In the bound's run it is their
   * load alone: a bound that ignores capacity cannot be reached where this is high.
   */
  othersFullShare: number;
  othersFullOn?: string;
  latencyP50Min?: number;
  latencyP99Min?: number;
  launchLatencyP50Min?: number;
  launchLatencyP99Min?: number;
  makespanH?: number;
  lowerBoundH?: number;
  makespanRatio?: number;
  finishedBy8hShare?: number;
  violations: Record<string, number>;
  violationSamples: string[];
  wallMs: number;
  workload: Record<string, number>;
  /** hourly: share of eligible hosts validly scanned so far */
  coverageCurve: number[];
  /** every 10 min: running host jobs per appliance */
  loadCurve: number[][];
}

class Heap {
  private a: { t: number; seq: number; fn: () => Promise<void> | void }[] = [];
  private seq = 0;
  push(t: number, fn: () => Promise<void> | void): void {
    const a = this.a;
    a.push({ t, seq: this.seq++, fn });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[p], a[i])) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  private less(x: { t: number; seq: number }, y: { t: number; seq: number }): boolean {
    return x.t < y.t || (x.t === y.t && x.seq < y.seq);
  }
  peek(): number {
    return this.a.length ? this.a[0].t : Infinity;
  }
  pop(): (() => Promise<void> | void) | undefined {
    const a = this.a;
    if (!a.length) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top.fn;
  }
}

export interface RunOptions {
  /** override the scenario's days */
  days?: number;
  /** reuse a generated workload (same seed) across policies */
  workload?: Workload;
  /** called with the policy just before it is closed (tests, differential checks) */
  beforeClose?: (p: SimPolicy) => void | Promise<void>;
  /** called with the run's scanner at the end (per-device diagnosis: src/sim/diagnose.ts) */
  afterRun?: (scanner: SimScanner, w: Workload) => void;
}

/**
 * The appliance each region's nightly scans of other tools (`background`) run on: the region's i-th
 * appliance, i the region's index (in the ring, R1–R3 all on A1). Empty without such scans. The
 * scanner's launches and the baselines placed knowing them (twice-daily's informed placement) use
 * this one function, so the two cannot part.
 */
export function othersNightlyApplianceOf(sc: Scenario, reach: ReadonlyMap<string, readonly string[]>): Map<string, string> {
  const out = new Map<string, string>();
  if (sc.background.hostsPerRegion <= 0) return out;
  sc.regions.forEach((r, i) => {
    const l = reach.get(r.name) ?? [];
    if (l.length) out.set(r.name, l[i % l.length]);
  });
  return out;
}

export const SCOPE = ['10.0.0.0/8'];
export const EXCLUDE = ['10.250.0.0/28'];

const YIELD_EVERY_MS = 100;

export async function runOnce(sc: Scenario, policyName: string, seed: number, o: RunOptions = {}): Promise<RunMetrics> {
  const t0 = performance.now();
  if (o.days) sc = { ...sc, days: o.days };
  const w = o.workload ?? generateWorkload(sc, seed);
  const regions = new CidrSet<string>();
  sc.regions.forEach((r, i) => {
    for (const c of w.regionCidrs[i]) regions.add(parseCidr(c)!, r.name);
  });
  const regionCache = new Map<string, string | undefined>();
  const regionOf = (ip: string) => {
    if (!regionCache.has(ip)) regionCache.set(ip, regions.lookup(ip));
    return regionCache.get(ip);
  };
  const scanner = new SimScanner({ scenario: sc, workload: w, seed, regionOf, scope: SCOPE, exclude: EXCLUDE });
  let now = w.start;
  const clock = { now: () => now };
  const heap = new Heap();
  const byMac = new Map<string, number>();
  const byUser = new Map<string, number>();
  for (const h of w.hosts) {
    byMac.set(h.mac, h.id);
    if (h.user) byUser.set(h.user, h.id);
  }
  const reach = new Map<string, string[]>(sc.regions.map((r) => [r.name, sc.appliances.filter((a) => a.regions.includes(r.name)).map((a) => a.name)]));
  const ctx: PolicyCtx = {
    sc, w, scanner, clock, regionNames: sc.regions.map((r) => r.name), regionOf, reach,
    at: (t, fn) => heap.push(t, fn),
    hostOf: (s: Sighting) => (s.mac ? byMac.get(s.mac) : s.user ? byUser.get(s.user) : undefined),
    hostByKey: (key: string) => {
      if (key.startsWith('mac:')) return byMac.get(key.slice(4));
      if (key.startsWith('user:')) return byUser.get(key.slice(5).split('|')[0]);
      return undefined;
    },
    scope: SCOPE, exclude: EXCLUDE,
  };
  void identityKey;
  // ground-truth bookkeeping
  const validEnds = new Map<number, number[]>();
  const validRecords: { host: number; end: number; scan: number }[] = [];
  const latency: number[] = [];
  const launchLatency: number[] = [];
  const presenceScanned = new Set<Presence>();
  const launchedAt = new Map<number, number>();
  scanner.onTargetStart = (r) => {
    launchedAt.set(r.scan.id, r.scan.launchedAt);
  };
  // a valid target counts once its scan's results exist: processed (finished scans; canceled and
  // errored ones only when the scenario says the scanner processes those too), judged at the end
  scanner.onTargetEnd = (r: TargetRecord) => {
    if (r.outcome !== 'valid' || r.actual === undefined) return;
    validRecords.push({ host: r.actual, end: r.end, scan: r.scan });
    const p = scanner.holder(r.ip, r.start);
    if (p && !presenceScanned.has(p)) {
      presenceScanned.add(p);
      latency.push(r.start - p.sightedAt);
      const s = scanner.scans[r.scan - 1];
      launchLatency.push(s.launchedAt - p.sightedAt);
    }
  };
  const policy: SimPolicy = createPolicy(policyName, ctx);
  const end = w.start + sc.days * 86400_000;

  // periodic tick + sampling
  const tickMs = sc.policy.tickS * 1000;
  let idleMin = 0;
  const loadCurve: number[][] = [];
  const tick = async () => {
    await policy.tick();
    const back = await policy.backlog();
    if (back.size) {
      for (const a of scanner.appliancesRt) {
        if (!a.online || a.busyHosts > 0) continue;
        const ad = sc.appliances.find((x) => x.name === a.name)!;
        if (ad.regions.some((r) => back.has(r))) idleMin += tickMs / MIN;
      }
    }
    heap.push(now + tickMs, tick);
  };
  heap.push(w.start, tick);
  const sample = () => {
    loadCurve.push(scanner.load());
    heap.push(now + 10 * MIN, sample);
  };
  heap.push(w.start, sample);
  // other tools' nightly scans
  const othersOn = othersNightlyApplianceOf(sc, reach);
  if (othersOn.size) {
    const [hh, mm] = sc.background.at.split(':').map(Number);
    const day0 = Math.floor(w.start / 86400_000) * 86400_000;
    for (let d = 0; day0 + d * 86400_000 < end; d++) {
      const t = day0 + d * 86400_000 + (hh * 60 + mm) * MIN;
      if (t < w.start) continue;
      for (const [region, ap] of othersOn) {
        heap.push(t, () => {
          scanner.launchOther(ap, sc.background.hostsPerRegion, `other tool: nightly servers ${region}`);
        });
      }
    }
  }
  await policy.init();

  const ev = w.events;
  const delay = sc.policy.logDelayS * 1000;
  let ptr = 0;
  while (ptr < ev.length && ev[ptr].at + delay < w.start) ptr++;
  // what was logged before the start arrives first (servers' reservations, leases from yesterday)
  const early = ev.slice(0, ptr).map((e) => e.s);
  if (early.length) await policy.deliver(early);
  // A run is minutes of synchronous work when the store is SQLite: hand the event loop back now and
  // then, so signals, progress output and a test runner's RPC (vitest times out a silent worker at 60 s)
  // are served. The virtual clock decides the order of events, so this changes no result.
  let lastYield = performance.now();
  for (;;) {
    if (performance.now() - lastYield > YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
    const tLog = ptr < ev.length ? Math.ceil((ev[ptr].at + delay) / 1000) * 1000 : Infinity;
    const tHeap = heap.peek();
    const t = Math.min(tLog, tHeap);
    if (t > end) break;
    now = t;
    scanner.advance(t);
    if (tLog <= tHeap) {
      const batch: Sighting[] = [];
      while (ptr < ev.length && Math.ceil((ev[ptr].at + delay) / 1000) * 1000 <= t) batch.push(ev[ptr++].s);
      await policy.deliver(batch);
    } else {
      await heap.pop()!();
    }
  }
  now = end;
  scanner.advance(end);
  await o.beforeClose?.(policy);
  await policy.close();
  o.afterRun?.(scanner, w);
  const add = (m: Map<number, number[]>, host: number, end: number) => {
    let l = m.get(host);
    if (!l) m.set(host, (l = []));
    l.push(end);
  };
  const strictEnds = new Map<number, number[]>();
  for (const v of policy.virtualScans?.() ?? []) {
    add(validEnds, v.host, v.end);
    add(strictEnds, v.host, v.end);
  }
  for (const v of validRecords) {
    const s = scanner.scans[v.scan - 1];
    if (s.processedAt === undefined) continue;
    add(validEnds, v.host, v.end);
    if (s.state === 'finished') add(strictEnds, v.host, v.end);
  }
  return metrics(sc, w, policyName, seed, scanner, { validEnds, strictEnds, latency, launchLatency, idleMin, loadCurve, wallMs: performance.now() - t0, restarts: policy.restarts ?? 0, restartsReadBack: policy.restartsReadBack ?? 0, rangeRuns: policy.rangeRuns?.() });
}

function countKinds(calls: { what: string; refused?: boolean }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) if (!c.refused) out[c.what] = (out[c.what] ?? 0) + 1;
  return out;
}

function quantile(xs: number[], q: number): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function metrics(sc: Scenario, w: Workload, policy: string, seed: number, scanner: SimScanner,
  x: { validEnds: Map<number, number[]>; strictEnds: Map<number, number[]>; latency: number[]; launchLatency: number[]; idleMin: number; loadCurve: number[][]; wallMs: number; restarts: number; restartsReadBack: number; rangeRuns?: RangeRunCounts }): RunMetrics {
  const end = w.end;
  const span = end - w.start;
  // presence per host per bucket, per window
  const coverage: Record<string, number> = {};
  const eligible: Record<string, number> = {};
  const lastW = sc.metrics.windowsDays[sc.metrics.windowsDays.length - 1];
  const regionHit = new Map<number, { e: number; c: number }>();
  const minPres = sc.metrics.minPresenceMin * MIN;
  const byHost = new Map<number, Presence[]>();
  for (const p of w.presences) {
    let l = byHost.get(p.host);
    if (!l) byHost.set(p.host, (l = []));
    l.push(p);
  }
  for (const wd of sc.metrics.windowsDays) {
    const W = wd * 86400_000;
    const nb = Math.max(1, Math.floor(span / W + 1e-9));
    const bw = span < W ? span : W;
    let e = 0, c = 0;
    for (const [h, ps] of byHost) {
      const pres = new Float64Array(nb);
      for (const p of ps) {
        for (let b = 0; b < nb; b++) {
          const s = w.start + b * bw, t = s + bw;
          const o = Math.min(p.end, t) - Math.max(p.start, s);
          if (o > 0) pres[b] += o;
        }
      }
      const ends = x.validEnds.get(h) ?? [];
      for (let b = 0; b < nb; b++) {
        if (pres[b] < minPres) continue;
        e++;
        const s = w.start + b * bw, t = s + bw;
        const ok = ends.some((v) => v >= s && v < t);
        if (ok) c++;
        if (wd === lastW) {
          const r = w.hosts[h].region;
          const rh = regionHit.get(r) ?? { e: 0, c: 0 };
          rh.e++;
          if (ok) rh.c++;
          regionHit.set(r, rh);
        }
      }
    }
    coverage[`${wd}d`] = e ? c / e : 0;
    eligible[`${wd}d`] = e;
  }
  const firstW = sc.metrics.windowsDays[0];
  const comp = rollingCompliance(w, byHost, x.validEnds, firstW, minPres);
  const compStrict = rollingCompliance(w, byHost, x.strictEnds, firstW, minPres);
  const byWindow = windowCoverage(w, byHost, x.validEnds, firstW, minPres);
  const coverageByRegion: Record<string, number> = {};
  const rc: number[] = [];
  sc.regions.forEach((r, i) => {
    const rh = regionHit.get(i);
    if (!rh || !rh.e) return;
    coverageByRegion[r.name] = rh.c / rh.e;
    rc.push(rh.c / rh.e);
  });
  const jain = rc.length ? rc.reduce((a, b) => a + b, 0) ** 2 / (rc.length * rc.reduce((a, b) => a + b * b, 0) || 1) : 1;
  const T = scanner.targets;
  const count = (o: string) => T.filter((t) => t.outcome === o).length;
  const dead = count('dead'), truncated = count('truncated'), wrong = count('wrong-host'), valid = count('valid');
  // duplicates: valid scans of a host closer together than the rescan window
  let dup = 0;
  for (const ends of x.validEnds.values()) {
    const s = [...ends].sort((a, b) => a - b);
    for (let i = 1; i < s.length; i++) if (s[i] - s[i - 1] < sc.policy.rescanAfterH * HOUR * 0.5) dup++;
  }
  const ours = scanner.api.filter((a) => !a.refused).map((a) => a.at).sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < ours.length; i++) {
    while (ours[i] - ours[j] >= HOUR) j++;
    peak = Math.max(peak, i - j + 1);
  }
  let busy = 0, cap = 0;
  for (const a of scanner.appliancesRt) {
    busy += a.busyHostMs;
    cap += a.onlineMs * a.slots * a.perScan;
  }
  const violations: Record<string, number> = { 'region-exclusivity': 0, 'region-scans': 0, scope: 0, 'api-limit': 0 };
  for (const v of scanner.violations) violations[v.rule] = (violations[v.rule] ?? 0) + 1;
  const launches = scanner.scans.filter((s) => !s.other).length;
  const overdue = scanner.scans.filter((s) => s.other && (s.firstStart ?? end) - s.launchedAt > OVERDUE_MS);
  const full = othersFull(scanner, w.start, end);
  const m: RunMetrics = {
    scenario: sc.name, policy, seed,
    compliance: comp.pairs ? comp.share : mean(byWindow),
    complianceStrict: compStrict.pairs ? compStrict.share : mean(windowCoverage(w, byHost, x.strictEnds, firstW, minPres)),
    compliancePairs: comp.pairs, coverageByWindow: byWindow,
    coverageSteady: byWindow.length > 1 ? byWindow.slice(1).reduce((a, b) => a + b, 0) / (byWindow.length - 1) : undefined,
    coverage, eligible, coverageByRegion, fairnessJain: jain,
    minRegionCoverage: rc.length ? Math.min(...rc) : 0, maxRegionCoverage: rc.length ? Math.max(...rc) : 0,
    targets: T.length, validTargets: valid, wasted: dead + truncated, wastedShare: T.length ? (dead + truncated) / T.length : 0, dead, truncated,
    wastedHostHPerDay: T.reduce((n, t) => (t.outcome === 'dead' || t.outcome === 'truncated' ? n + (t.end - t.start) : n), 0) / HOUR / (span / 86400_000),
    lostHostHPerDay: lostHostMs(scanner) / HOUR / (span / 86400_000),
    wrongHost: wrong, wrongHostShare: T.length ? wrong / T.length : 0,
    wrongHostAfterLaunch: T.filter((t) => t.outcome === 'wrong-host' && t.heldAtLaunch).length,
    wrongHostMidProbe: T.filter((t) => t.handedOver && t.intended !== undefined).length,
    wrongHostStartDelayP50Min: quantile(T.filter((t) => t.outcome === 'wrong-host').map((t) => t.start - t.launchedAt), 0.5), duplicates: dup, scansLaunched: launches,
    apiCalls: ours.length, apiByKind: countKinds(scanner.api), apiCallsPerDay: ours.length / (span / 86400_000), apiPeakHour: peak, api409: scanner.api.filter((a) => a.refused).length,
    callsPerValidScan: valid ? ours.length / valid : ours.length,
    utilisation: cap ? busy / cap : 0, idleWhileBacklogMin: x.idleMin, restarts: x.restarts, restartsReadBack: x.restartsReadBack,
    ...(x.rangeRuns ? { rangeSkipped: x.rangeRuns.skipped, rangeMadeUp: x.rangeRuns.madeUp, rangeGaveWay: x.rangeRuns.gaveWay, rangeOursCanceled: x.rangeRuns.oursCanceled, rangePlacedElsewhere: x.rangeRuns.placedElsewhere } : {}),
    scheduleAnswersLost: scanner.scheduleFaults.lost, scheduleChangesRefused: scanner.scheduleFaults.refused,
    othersOverdue: overdue.length, othersOverdueOn: [...new Set(overdue.map((s) => s.appliance))].sort(),
    othersFullShare: full.share, ...(full.on ? { othersFullOn: full.on } : {}),
    violations, violationSamples: scanner.violations.slice(0, 5).map((v) => `${new Date(v.at).toISOString()} ${v.rule}: ${v.detail}`),
    wallMs: x.wallMs, workload: { hosts: w.hosts.length, presences: w.presences.length, sightings: w.events.length, ...w.stats },
    coverageCurve: [], loadCurve: x.loadCurve,
  };
  const q = (xs: number[], p: number) => {
    const v = quantile(xs, p);
    return v === undefined ? undefined : v / MIN;
  };
  if (m.wrongHostStartDelayP50Min !== undefined) m.wrongHostStartDelayP50Min /= MIN;
  m.latencyP50Min = q(x.latency, 0.5);
  m.latencyP99Min = q(x.latency, 0.99);
  m.launchLatencyP50Min = q(x.launchLatency, 0.5);
  m.launchLatencyP99Min = q(x.launchLatency, 0.99);
  // coverage over time: eligible = present ≥ minPresence over the run
  const elig: number[] = [];
  for (const [h, ps] of byHost) {
    const tot = ps.reduce((a, p) => a + Math.max(0, Math.min(p.end, end) - Math.max(p.start, w.start)), 0);
    if (tot >= minPres) elig.push(h);
  }
  const firsts = elig.map((h) => Math.min(...(x.validEnds.get(h) ?? [Infinity]))).sort((a, b) => a - b);
  for (let t = w.start + HOUR, k = 0; t <= end + 1; t += HOUR) {
    while (k < firsts.length && firsts[k] <= t) k++;
    m.coverageCurve.push(elig.length ? k / elig.length : 0);
  }
  // the bound's scans are not a schedule: no makespan
  if (sc.servers && policy !== 'bound') {
    // makespan from the first scan-window opening; lower bound from the hosts' expected work
    const { open, lowerBoundH: lb } = makespanBound(sc, w, scanner);
    const servers = w.hosts.filter((h) => h.kind === 'server');
    const firstValid = servers.map((h) => (x.validEnds.get(h.id) ?? []).filter((v) => v >= open).sort((a, b) => a - b)[0]);
    const done = firstValid.filter((v) => v !== undefined) as number[];
    m.lowerBoundH = lb;
    m.finishedBy8hShare = done.filter((v) => v - open <= 8 * HOUR).length / servers.length;
    if (done.length === servers.length) {
      m.makespanH = (Math.max(...done) - open) / HOUR;
      m.makespanRatio = m.makespanH / lb;
    }
  }
  return m;
}

/** The makespan's lower bound and its parts, per region (src/sim/README.md, "Metrics"). */
export interface MakespanBound {
  /** the scan window's first opening (epoch ms): the makespan counts from it */
  open: number;
  /** per region: the earliest its hosts can start after the opening (ms): shortest setup, then the next poll */
  startMinMs: number[];
  /** per region: its servers' expected host time (min) */
  workMin: number[];
  /** per region: the host places it can use at once (its best appliance's, times regionMaxScans) */
  places: number[];
  /** per region: the earliest its last host can end (min after the opening) */
  regionEndMin: number[];
  lowerBoundH: number;
}

/**
 * max(total work / all places, each region's work / its places or its slowest host), after setup
 * and pickup, from the hosts' expected times: a bound on the expected makespan of any schedule
 * (a seed's realized times may fall below it).
 */
export function makespanBound(sc: Scenario, w: Workload, scanner: SimScanner): MakespanBound {
  const open = windowStart(sc, w.start);
  const mean = scanner.meanHostMin() / Math.exp(sc.scan.hostMultSigma ** 2 / 2);
  const work = new Array<number>(sc.regions.length).fill(0);
  const longest = new Array<number>(sc.regions.length).fill(0);
  for (const h of w.hosts) {
    if (h.kind !== 'server') continue;
    work[h.region] += h.mult * mean;
    longest[h.region] = Math.max(longest[h.region], h.mult * mean);
  }
  const P = sc.appliances.map((a) => Math.round(a.hostsInParallel * a.scaling));
  const totalPlaces = sc.appliances.reduce((s, a, i) => s + a.slots * P[i], 0);
  // overheads no schedule avoids: a scan launched at the opening starts hosts only after the
  // shortest setup and the appliance's next poll (setup and pickup); a region's last host ends
  // no sooner than its work spread over its places or its slowest host alone (the tail)
  const startMinMs = sc.regions.map((r) => Math.min(...sc.appliances.filter((a) => a.regions.includes(r.name))
    .map((a) => scanner.nextPollAfter(a.name, open + sc.scan.setupMin[0] * MIN))) - open);
  const places = sc.regions.map((r) => Math.max(...sc.appliances.filter((a) => a.regions.includes(r.name)).map((a) => P[sc.appliances.indexOf(a)])) * sc.regionMaxScans);
  const regionEndMin = sc.regions.map((_, i) => startMinMs[i] / MIN + Math.max(work[i] / places[i], longest[i]));
  const lowerBoundH = Math.max(Math.min(...startMinMs) / MIN + work.reduce((a, b) => a + b, 0) / totalPlaces, ...regionEndMin) / 60;
  return { open, startMinMs, workMin: work, places, regionEndMin, lowerBoundH };
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Presence of a host within [s, t) in ms. */
function presentWithin(ps: Presence[], s: number, t: number): number {
  let sum = 0;
  for (const p of ps) {
    const o = Math.min(p.end, t) - Math.max(p.start, s);
    if (o > 0) sum += o;
  }
  return sum;
}

/**
 * Appliance time (ms) our targets spent without a valid processed result: dead, truncated and
 * wrong-host probes, and valid probes of scans that ended without their results processed
 * (canceled, unless the scenario processes canceled scans; errored). A scan still going at the
 * run's end has not lost its valid probes.
 */
export function lostHostMs(scanner: SimScanner): number {
  let ms = 0;
  for (const t of scanner.targets) {
    const s = scanner.scans[t.scan - 1];
    if (t.outcome !== 'valid' || (s.endedAt !== undefined && s.processedAt === undefined)) ms += t.end - t.start;
  }
  return ms;
}

/**
 * Rolling compliance: for each day D from day `windowDays` on (the first full window ends there:
 * before it no policy could be compliant, so it is the cold start), each host present at least
 * `minPres` on D counts as compliant when one of its valid scans ended within the `windowDays`
 * before D's end. Days are counted from the run's start.
 */
export function rollingCompliance(w: Workload, byHost: Map<number, Presence[]>, ends: Map<number, number[]>, windowDays: number, minPres: number): { share: number; pairs: number } {
  const DAY = 86400_000;
  const days = Math.floor((w.end - w.start) / DAY + 1e-9);
  let pairs = 0, ok = 0;
  for (let d = Math.ceil(windowDays); d < days; d++) {
    const s = w.start + d * DAY, t = s + DAY;
    for (const [h, ps] of byHost) {
      if (presentWithin(ps, s, t) < minPres) continue;
      pairs++;
      const e = ends.get(h);
      if (e && e.some((v) => v <= t && v > t - windowDays * DAY)) ok++;
    }
  }
  return { share: pairs ? ok / pairs : 0, pairs };
}

/** Coverage of each consecutive window of `windowDays` (eligible: present ≥ minPres in it). */
export function windowCoverage(w: Workload, byHost: Map<number, Presence[]>, ends: Map<number, number[]>, windowDays: number, minPres: number): number[] {
  const W = Math.min(windowDays * 86400_000, w.end - w.start);
  const out: number[] = [];
  for (let s = w.start; s + W <= w.end + 1; s += W) {
    let e = 0, c = 0;
    for (const [h, ps] of byHost) {
      if (presentWithin(ps, s, s + W) < minPres) continue;
      e++;
      if ((ends.get(h) ?? []).some((v) => v >= s && v < s + W)) c++;
    }
    out.push(e ? c / e : 0);
  }
  return out;
}

function windowStart(sc: Scenario, start: number): number {
  const m = /(\d\d):(\d\d)-/.exec(sc.policy.scanWindow);
  if (!m) return start;
  const day = Math.floor(start / 86400_000) * 86400_000;
  let t = day + (Number(m[1]) * 60 + Number(m[2])) * MIN;
  if (t < start) t += 86400_000;
  return t;
}

/** The appliance whose slots other tools' started scans all held for the largest share of [from, to), and that share. */
function othersFull(scanner: SimScanner, from: number, to: number): { share: number; on?: string } {
  let best: { share: number; on?: string } = { share: 0 };
  for (const a of scanner.appliancesRt) {
    const ev: [number, number][] = [];
    for (const s of scanner.scans) {
      if (!s.other || s.appliance !== a.name || s.firstStart === undefined) continue;
      ev.push([s.firstStart, 1], [s.endedAt ?? to, -1]);
    }
    ev.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let n = 0, last = from, held = 0;
    for (const [t, d] of ev) {
      const u = Math.min(Math.max(t, from), to);
      if (n >= a.slots) held += u - last;
      last = u;
      n += d;
    }
    if (n >= a.slots) held += to - last;
    const share = to > from ? held / (to - from) : 0;
    if (share > best.share) best = { share, on: a.name };
  }
  return best;
}
