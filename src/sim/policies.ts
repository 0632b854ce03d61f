/**
 * The policies the simulator compares: `onsight` (the real Inventory, Policy, SchedulerStore and
 * Scheduler over an in-memory SQLite store, driven exactly as the daemon drives them) and the
 * baselines of the workload model §4.6: immediate, twice-daily, batch-15min, reservation (Z swept)
 * and an oracle that knows departure times.
 */
import { openSqliteStore, type SqliteStore } from '../store/sqlite-store.js';
import type { Inventory, SchedulerStore } from '../store/types.js';
import { Policy, rescanLeadFor } from '../policy/policy.js';
import { insideWindows, parseWindow } from '../policy/windows.js';
import { Scheduler, buildSchedulerOptions } from '../scheduler/scheduler.js';
import { runApplianceOf, type PlacementRegion } from '../scheduler/run-placement.js';
import { pino, destination } from 'pino';
import { silentLogger, type Logger } from '../log.js';
import type { Sighting } from '../sighting.js';
import type { Scenario } from './scenario.js';
import type { SimScanner } from './scanner.js';
import { othersNightlyApplianceOf } from './sim.js';
import { ipOf, type Presence, type Workload } from './workload.js';

export interface SimClock {
  now(): number;
}

export interface PolicyCtx {
  sc: Scenario;
  w: Workload;
  scanner: SimScanner;
  clock: SimClock;
  regionNames: string[];
  regionOf(ip: string): string | undefined;
  /** appliances reaching each region, in scenario order */
  reach: Map<string, string[]>;
  at(t: number, fn: () => Promise<void> | void): void;
  /** the host a sighting names (by MAC or VPN user) */
  hostOf(s: Sighting): number | undefined;
  hostByKey(identityKey: string): number | undefined;
  scope: string[];
  exclude: string[];
}

export interface SimPolicy {
  readonly name: string;
  /** scans that never touched the scanner (the relaxation bound): host and end time of each valid one */
  virtualScans?(): { host: number; end: number }[];
  init(): Promise<void>;
  /** log lines arriving (after the log delay), as the daemon's ingest would commit them */
  deliver(batch: Sighting[]): Promise<void>;
  /** periodic tick */
  tick(): Promise<void>;
  /** regions with work ready to launch that the policy could launch now (region lock free) */
  backlog(): Set<string> | Promise<Set<string>>;
  close(): void | Promise<void>;
  /** times the policy's daemon was restarted (policy.restartEveryH), and after how many of them it read its learned state back */
  readonly restarts?: number;
  readonly restartsReadBack?: number;
  /** range runs (onsight+ranges) over the whole run, restarts included */
  rangeRuns?(): RangeRunCounts | undefined;
}

/**
 * What onsight+ranges' runs did: times skipped because a run still went, skipped times made up,
 * runs canceled while queued for room elsewhere in their region (give way), scans of ours
 * canceled before a run, and runs placed off an appliance others' scans held.
 */
export interface RangeRunCounts {
  skipped: number;
  madeUp: number;
  gaveWay: number;
  oursCanceled: number;
  placedElsewhere: number;
}

export const POLICY_NAMES = ['onsight', 'onsight+ranges', 'onsight+scheduled', 'immediate', 'twice-daily', 'twice-daily-scheduled', 'twice-daily-informed', 'batch-15min', 'batch-15min-verified', 'reservation', 'oracle', 'bound'] as const;

/** experiments run only when named (`--policy`), not in the default comparison */
const EXPERIMENTS = new Set<string>(['onsight+scheduled', 'onsight+ranges']);

/** Expand a --policy value into the runs: reservation is one run per Z. */
export function expandPolicies(sc: Scenario, name?: string): string[] {
  const all = name ? name.split(',') : POLICY_NAMES.filter((n) => !EXPERIMENTS.has(n));
  const out: string[] = [];
  for (const n of all) {
    if (n === 'reservation') for (const z of sc.baselines.reservationZ) out.push(`reservation-z${z}`);
    else out.push(n);
  }
  return out;
}

export function isPolicyName(n: string): boolean {
  return (POLICY_NAMES as readonly string[]).includes(n) || /^reservation-z\d+(\.\d+)?$/.test(n);
}

export function createPolicy(name: string, ctx: PolicyCtx): SimPolicy {
  if (name === 'onsight') return new OnsightPolicy(ctx);
  if (name === 'onsight+ranges') return new OnsightPolicy(ctx, true);
  if (name === 'onsight+scheduled') return new OnsightWithScheduledPolicy(ctx);
  if (name === 'immediate') return new ImmediatePolicy(ctx);
  if (name === 'twice-daily') return new RangePolicy(ctx, 'twice-daily');
  if (name === 'twice-daily-scheduled') return new RangePolicy(ctx, 'twice-daily-scheduled');
  if (name === 'twice-daily-informed') return new RangePolicy(ctx, 'twice-daily-informed');
  if (name === 'batch-15min') return new BatchPolicy(ctx, 'batch');
  if (name === 'batch-15min-verified') return new BatchPolicy(ctx, 'batch', 1, true);
  if (name === 'bound') return new BoundPolicy(ctx);
  const m = /^reservation-z(\d+(?:\.\d+)?)$/.exec(name);
  if (m) return new BatchPolicy(ctx, 'reservation', Number(m[1]));
  if (name === 'oracle') return new OraclePolicy(ctx);
  throw new Error(`unknown policy "${name}" (known: ${POLICY_NAMES.join(', ')})`);
}

export function policyRegions(ctx: Pick<PolicyCtx, 'sc' | 'w'>) {
  return ctx.sc.regions.map((r, i) => ({
    name: r.name, cidrs: ctx.w.regionCidrs[i],
    scanWindows: ctx.sc.policy.scanWindow ? [ctx.sc.policy.scanWindow] : undefined,
  }));
}

// ------------------------------------------------------------------------------------ onsight

export class OnsightPolicy implements SimPolicy {
  readonly name: string;
  state!: SqliteStore;
  inventory!: Inventory;
  policy!: Policy;
  scheduler!: Scheduler;
  store!: SchedulerStore;
  private readonly identityHost = new Map<number, number | undefined>();
  private lastSweep = -Infinity;
  private lastPrune = -Infinity;
  private lastStart = 0;
  /** restarts so far (policy.restartEveryH), and those after which the new scheduler read learned state back */
  restarts = 0;
  restartsReadBack = 0;
  /** range-run counts of the schedulers before the last restart (each new one counts from zero) */
  private rangesBefore: RangeRunCounts = { skipped: 0, madeUp: 0, gaveWay: 0, oursCanceled: 0, placedElsewhere: 0 };

  /**
   * `rangeScans`: the daemon's scheduler.rangeScans on, at twice-daily-scheduled's times and over
   * its ranges (each region's address pools), so the two are compared on the same scans
   */
  constructor(private readonly ctx: PolicyCtx, private readonly rangeScans = false) {
    this.name = rangeScans ? 'onsight+ranges' : 'onsight';
  }

  /** each region's pools as a-b ranges: what twice-daily(-scheduled) scans */
  private poolRanges(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    this.ctx.sc.regions.forEach((r, i) => {
      out[r.name] = this.ctx.w.pools.filter((p) => p.region === i).map((p) => `${ipOf(p.base)}-${ipOf(p.base + p.size - 1)}`);
    });
    return out;
  }

  async init(): Promise<void> {
    const { sc, scanner, clock } = this.ctx;
    this.state = openSqliteStore(':memory:', { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 });
    this.inventory = this.state.inventory;
    this.policy = new Policy({
      scope: this.ctx.scope, exclude: this.ctx.exclude, rescanAfter: sc.policy.rescanAfterH * 3600, rules: [], regions: policyRegions(this.ctx), timezone: 'UTC',
    });
    this.store = this.state.scheduler;
    // what an operator configures, not the scenario's truth: an appliance's maxScans and pickupS only
    // when the scenario sets them (policy.applianceMaxScans, policy.pickupS), else the daemon's
    // defaults; the true slots and poll intervals stay in the simulated scanner
    this.scheduler = this.newScheduler();
    scanner.resolveIntended = async (req) => {
      const byIp = new Map((await this.store.targets(req.intentId)).map((t) => [t.ip, t.identityId]));
      const out: (number | undefined)[] = [];
      for (const ip of req.targets) {
        const id = byIp.get(ip);
        out.push(id === undefined ? undefined : await this.hostOfIdentity(id));
      }
      return out;
    };
    // as Daemon.start(): reconcile, sweep, then take input
    this.lastStart = clock.now();
    await this.scheduler.reconcile();
    await this.scheduler.sweep();
  }

  /** The daemon's scheduler over this policy's state, configured as onsight.yaml would be. */
  private newScheduler(): Scheduler {
    const { sc, scanner, clock } = this.ctx;
    const maxScans = sc.policy.applianceMaxScans;
    return new Scheduler(clock, this.inventory, this.policy, this.store, scanner, buildSchedulerOptions({
      regions: sc.regions.map((r) => ({
        name: r.name, maxConcurrentScans: sc.regionMaxScans,
        appliances: (this.ctx.reach.get(r.name) ?? []).map((a) => (maxScans === undefined ? { name: a } : { name: a, maxScans })),
      })),
      maxTargetsPerScan: sc.policy.maxTargetsPerScan,
      scheduler: {
        pollIntervalS: sc.policy.pollIntervalS,
        applianceRefreshS: sc.policy.applianceRefreshS,
        verifyResults: sc.policy.verifyResults,
        ...(sc.policy.pickupS === undefined ? {} : { pickupS: sc.policy.pickupS }),
        ...(sc.policy.cancelWhenTargetLeaves === undefined ? {} : { cancelWhenTargetLeaves: sc.policy.cancelWhenTargetLeaves }),
        ...(sc.policy.hostsInParallel === undefined ? {} : { hostsInParallel: sc.policy.hostsInParallel }),
        ...(sc.policy.lastScannedFromScanner === undefined ? {} : { lastScannedFromScanner: sc.policy.lastScannedFromScanner }),
        ...(sc.policy.secondLook === undefined ? {} : { secondLook: sc.policy.secondLook }),
        ...(sc.policy.scanAheadH === undefined ? {} : { scanAheadH: sc.policy.scanAheadH }),
        ...(this.rangeScans ? { rangeScans: { times: sc.baselines.rangeScanTimes, targets: this.poolRanges(), ...(sc.policy.rangeScansAim === undefined ? {} : { aim: sc.policy.rangeScansAim }) } } : {}),
      },
      scanner,
    }), simLogger(clock));
  }

  /**
   * A restart (policy.restartEveryH), as Daemon.stop() then start(): a last pass, what was learned
   * written (or, with restartForgetsLearned, the table emptied), then a new scheduler that reconciles
   * and sweeps. The scanner's scans go on meanwhile; no line is lost (the daemon's inputs are
   * file tails and TCP with checkpoints, or a relay's queue).
   */
  private async restart(): Promise<void> {
    await this.scheduler.tick();
    await this.scheduler.saveLearned();
    this.rangesBefore = this.rangeRuns() ?? this.rangesBefore;
    if (this.ctx.sc.policy.restartForgetsLearned) this.state.db.prepare('DELETE FROM learned_state').run();
    this.scheduler = this.newScheduler();
    this.restarts++;
    this.lastSweep = this.ctx.clock.now();
    await this.scheduler.reconcile();
    await this.scheduler.sweep();
    if (this.scheduler.learnedState().restored.length) this.restartsReadBack++;
  }

  /** what the range runs did over the whole run (a restart's new scheduler counts from 0) */
  rangeRuns(): RangeRunCounts | undefined {
    if (!this.rangeScans) return undefined;
    const r = this.scheduler.rangeScans();
    const b = this.rangesBefore;
    return { skipped: b.skipped + r.skipped, madeUp: b.madeUp + r.madeUp, gaveWay: b.gaveWay + r.gaveWay, oursCanceled: b.oursCanceled + r.oursCanceled, placedElsewhere: b.placedElsewhere + r.placedElsewhere };
  }

  private async hostOfIdentity(id: number): Promise<number | undefined> {
    if (this.identityHost.has(id)) return this.identityHost.get(id);
    const key = (await this.inventory.identity(id))?.key;
    const h = key ? this.ctx.hostByKey(key) : undefined;
    this.identityHost.set(id, h);
    return h;
  }

  async deliver(batch: Sighting[]): Promise<void> {
    // exactly Daemon.committed(): commit, then consider new/reassigned/renewed bindings, kick on news
    const results = await this.inventory.commitBatch(batch, [], this.ctx.clock.now());
    const changed = new Set<number>(), ended = new Set<number>();
    batch.forEach((_, i) => {
      const r = results[i];
      if (r.bindingId !== undefined && (r.change === 'new' || r.change === 'reassigned' || r.change === 'renewed')) changed.add(r.bindingId);
      if (r.bindingId !== undefined && r.change === 'ended') ended.add(r.bindingId);
    });
    const departures = ended.size ? await this.scheduler.departed(ended) : 0;
    if ((changed.size && (await this.scheduler.consider(changed)) > 0) || departures > 0) await this.scheduler.tick();
  }

  async tick(): Promise<void> {
    const now = this.ctx.clock.now();
    const every = this.ctx.sc.policy.restartEveryH;
    if (every !== undefined && now - this.lastStart >= every * 3600_000) {
      this.lastStart = now;
      await this.restart();
    }
    if (now - this.lastSweep >= this.ctx.sc.policy.sweepS * 1000) {
      this.lastSweep = now;
      await this.scheduler.sweep();
    }
    if (now - this.lastPrune >= 3600_000) {
      this.lastPrune = now;
      await this.inventory.prune(now);
    }
    await this.scheduler.tick();
  }

  async backlog(): Promise<Set<string>> {
    const now = this.ctx.clock.now();
    const active = await this.store.activeIntents();
    const out = new Set<string>();
    for (const r of await this.store.readyRegions(now, this.ctx.sc.regions.map((x) => x.name))) {
      if (active.filter((i) => i.region === r).length < this.ctx.sc.regionMaxScans) out.add(r);
    }
    return out;
  }

  close(): Promise<void> {
    return this.state.close();
  }
}

// ------------------------------------------------------------------------------------ experiment

/**
 * An experiment (issue #13), not a daemon feature: onsight as it is, plus the region range scans of
 * `twice-daily-scheduled` as Qualys scheduled scans (the platform launches them: no API call), on the
 * same scanner. Neither part knows of the other: onsight sees the scheduled scans only as load on the
 * appliance list and as dates in the host list, and launches into a region that a scheduled scan is
 * scanning (the scanner counts that as a region-rule violation); the scheduled scans keep their times.
 */
class OnsightWithScheduledPolicy implements SimPolicy {
  readonly name = 'onsight+scheduled';
  readonly onsight: OnsightPolicy;
  readonly scheduled: RangePolicy;

  constructor(ctx: PolicyCtx) {
    this.onsight = new OnsightPolicy(ctx);
    this.scheduled = new RangePolicy(ctx, 'twice-daily-scheduled');
  }

  async init(): Promise<void> {
    await this.scheduled.init();
    await this.onsight.init();
  }

  async deliver(batch: Sighting[]): Promise<void> {
    await this.scheduled.deliver(batch);
    await this.onsight.deliver(batch);
  }

  /** the platform's scheduled launches first: they happen at their time whatever onsight does */
  async tick(): Promise<void> {
    await this.scheduled.tick();
    await this.onsight.tick();
  }

  async backlog(): Promise<Set<string>> {
    return new Set([...this.scheduled.backlog(), ...(await this.onsight.backlog())]);
  }

  async close(): Promise<void> {
    this.scheduled.close();
    await this.onsight.close();
  }
}

// ------------------------------------------------------------------------------------ baselines

interface Known {
  host: number;
  ip: string;
  region: string;
  /** ended per the logs (release / tunnel-down) or lease expiry */
  endAt?: number;
  expiresAt: number;
}

interface Own {
  ref: string;
  region: string;
  appliance: string;
  hosts: (number | undefined)[];
  ips: string[];
  confirmed: boolean[];
  launchedAt: number;
}

interface QItem {
  host: number;
  ip: string;
  region: string;
  at: number;
}

/** Shared plumbing: what the logs say, own scans, region locks, polling, due-ness from own records. */
abstract class LogDriven implements SimPolicy {
  abstract readonly name: string;
  protected readonly byIp = new Map<string, Known>();
  protected readonly scannedAt = new Map<number, number>();
  protected readonly own: Own[] = [];
  protected lastPoll = -Infinity;
  protected readonly windows;
  /** confirm finished targets with the host list before crediting them (as onsight's verifyResults) */
  protected verify = false;
  private pendingVerify: { o: Own; endedAt: number }[] = [];
  private lastVerify = -Infinity;

  constructor(protected readonly ctx: PolicyCtx) {
    this.windows = ctx.sc.policy.scanWindow ? [parseWindow(ctx.sc.policy.scanWindow)!] : undefined;
  }

  async init(): Promise<void> {}
  close(): void {}
  abstract tick(): Promise<void>;
  abstract backlog(): Set<string>;

  protected now(): number {
    return this.ctx.clock.now();
  }

  protected inWindow(): boolean {
    return insideWindows(this.windows, this.now(), 'UTC');
  }

  /** due by the same rule as onsight's policy: the rescan window less the same lead */
  protected due(host: number): boolean {
    const s = this.scannedAt.get(host);
    const window = this.ctx.sc.policy.rescanAfterH * 3600;
    return s === undefined || this.now() - s >= Math.max(window / 2, window - rescanLeadFor(window)) * 1000;
  }

  /** true when the logs say the binding is still there */
  protected present(k: Known | undefined, host: number): boolean {
    return !!k && k.host === host && k.endAt === undefined && k.expiresAt >= this.now();
  }

  /** returns the bindings started by this batch */
  protected learn(batch: Sighting[]): Known[] {
    const started: Known[] = [];
    for (const s of batch) {
      const host = this.ctx.hostOf(s);
      if (host === undefined) continue;
      const at = Date.parse(s.at);
      if (s.kind === 'release' || s.kind === 'tunnel-down' || s.kind === 'expire') {
        const k = this.byIp.get(s.ip);
        if (k && k.host === host) k.endAt = at;
        continue;
      }
      const region = this.ctx.regionOf(s.ip);
      if (!region) continue;
      const exp = s.durationS ? at + s.durationS * 1000 : at + 86400_000;
      const k: Known = { host, ip: s.ip, region, expiresAt: exp };
      this.byIp.set(s.ip, k);
      started.push(k);
    }
    return started;
  }

  protected regionLocked(region: string): boolean {
    return this.own.some((o) => o.region === region);
  }

  protected ownOn(appliance: string): number {
    return this.own.filter((o) => o.appliance === appliance).length;
  }

  /** one list call for all own running scans, at most once per `everyMs` */
  protected async poll(everyMs: number): Promise<void> {
    if (this.own.length === 0 || this.now() - this.lastPoll < everyMs) return;
    this.lastPoll = this.now();
    let list;
    try {
      list = await this.ctx.scanner.listScans({ scanRefs: this.own.map((o) => o.ref) });
    } catch {
      return;
    }
    const st = new Map(list.map((s) => [s.scanRef, s]));
    for (let i = this.own.length - 1; i >= 0; i--) {
      const o = this.own[i];
      const s = st.get(o.ref);
      if (!s || (s.state !== 'finished' && s.state !== 'error' && s.state !== 'canceled')) continue;
      this.own.splice(i, 1);
      if (s.state === 'finished') {
        if (this.verify) this.pendingVerify.push({ o, endedAt: this.now() });
        else for (const h of o.hosts) if (h !== undefined) this.scannedAt.set(h, this.now());
      }
      this.ended(o, s.state);
    }
  }

  /**
   * One host-list call per `verifyEveryMin` for targets of finished scans: a host is credited only
   * when the list dates its address at or after the scan's launch; one still undated 6 h after its
   * scan ended is given up (it becomes due again at its next sighting).
   */
  protected async confirm(): Promise<void> {
    if (!this.pendingVerify.length || this.now() - this.lastVerify < this.ctx.sc.baselines.verifyEveryMin * 60_000) return;
    this.lastVerify = this.now();
    const ips = [...new Set(this.pendingVerify.flatMap(({ o }) => o.ips))];
    let dates;
    try {
      dates = new Map((await this.ctx.scanner.lastScanned(ips)).map((d) => [d.ip, d.lastScannedAt ? Date.parse(d.lastScannedAt) : undefined]));
    } catch {
      return;
    }
    this.pendingVerify = this.pendingVerify.filter(({ o, endedAt }) => {
      let open = false;
      o.hosts.forEach((h, k) => {
        if (h === undefined || o.confirmed[k]) return;
        const at = dates.get(o.ips[k]);
        if (at !== undefined && at >= o.launchedAt) {
          o.confirmed[k] = true;
          this.scannedAt.set(h, this.now());
        } else open = true;
      });
      return open && this.now() - endedAt < 6 * 3600_000;
    });
  }

  protected ended(_o: Own, _state: string): void {}

  protected async launch(region: string, appliance: string, items: { ip: string; host?: number }[], free = false): Promise<boolean> {
    try {
      const r = await this.ctx.scanner.launchFor({
        intentId: `${this.name}-${this.now()}`, title: `${this.name} ${region}`, targets: items.map((i) => i.ip), appliance,
      }, items.map((i) => i.host), region, free);
      this.own.push({ ref: r.scanRef, region, appliance, hosts: items.map((i) => i.host), ips: items.map((i) => i.ip), confirmed: items.map(() => false), launchedAt: this.now() });
      return true;
    } catch {
      return false;
    }
  }

  async deliver(batch: Sighting[]): Promise<void> {
    this.learn(batch);
  }
}

/** B1: one single-target scan per lease / tunnel-up of a due host; FIFO behind region lock and appliance slots. */
class ImmediatePolicy extends LogDriven {
  readonly name = 'immediate';
  private fifo: QItem[] = [];
  private readonly waiting = new Set<number>();

  override async deliver(batch: Sighting[]): Promise<void> {
    for (const k of this.learn(batch)) {
      if (!this.due(k.host) || this.waiting.has(k.host)) continue;
      this.waiting.add(k.host);
      this.fifo.push({ host: k.host, ip: k.ip, region: k.region, at: this.now() });
    }
    await this.pump();
  }

  async tick(): Promise<void> {
    await this.poll(60_000);
    await this.pump();
  }

  protected override ended(o: Own): void {
    for (const h of o.hosts) if (h !== undefined) this.waiting.delete(h);
  }

  private async pump(): Promise<void> {
    if (!this.inWindow()) return;
    const slots = new Map(this.ctx.sc.appliances.map((a) => [a.name, a.slots]));
    const rest: QItem[] = [];
    let refused = false;
    for (const q of this.fifo) {
      if (refused) {
        rest.push(q); // the scanner refused a call: try again on the next pass
        continue;
      }
      if (!this.due(q.host)) {
        this.waiting.delete(q.host);
        continue;
      }
      if (this.regionLocked(q.region)) {
        rest.push(q);
        continue;
      }
      const ap = (this.ctx.reach.get(q.region) ?? []).find((a) => this.ownOn(a) < slots.get(a)!);
      if (!ap) rest.push(q);
      else if (!(await this.launch(q.region, ap, [{ ip: q.ip, host: q.host }]))) {
        rest.push(q);
        refused = true;
      }
    }
    this.fifo = rest;
  }

  backlog(): Set<string> {
    if (!this.inWindow()) return new Set();
    return new Set(this.fifo.filter((q) => !this.regionLocked(q.region)).map((q) => q.region));
  }
}

/** How many regions' nightly scans of other tools each appliance carries, placed as sim.ts launches them. */
export function othersNightlyLoad(sc: Scenario, reach: ReadonlyMap<string, readonly string[]>): Map<string, number> {
  const load = new Map<string, number>();
  for (const ap of othersNightlyApplianceOf(sc, reach).values()) load.set(ap, (load.get(ap) ?? 0) + 1);
  return load;
}

/**
 * Each region's range-run appliance as an operator would place its schedules knowing where the
 * organisation's nightly scans run (`nightly`: their count per appliance): a static choice, no API
 * call. Regions with fewer appliances choose first, each taking the appliance with the fewest
 * (nightly scans + our runs) per configured slot, counting the run it adds (ties: the region's own
 * order), as runApplianceOf does with our runs alone; without nightly scans it is that spread.
 */
export function informedRunApplianceOf(regions: readonly PlacementRegion[], nightly: ReadonlyMap<string, number>): Map<string, string> {
  return runApplianceOf(regions, nightly);
}

type RangePolicyName = 'twice-daily' | 'twice-daily-scheduled' | 'twice-daily-informed';

/**
 * B2: blind range scans of each region's whole address ranges at fixed times, launched by API
 * (`twice-daily`: status asked every `rangePollMin`) or as a Qualys scheduled scan (the platform
 * launches it, so it costs no call, and nobody asks for its status).
 */
class RangePolicy extends LogDriven {
  readonly name: RangePolicyName;
  private readonly scheduled: boolean;
  private pending: string[] = [];
  private nextRun = 0;
  private times: number[];

  /**
   * Each region's appliance for its scans, over the same configured slots as onsight+ranges' runs.
   * `twice-daily-scheduled`: spread as the daemon's runApplianceOf spreads them (each region's first
   * appliance would queue three regions' scans on A1). `twice-daily` and `twice-daily-informed`: the
   * placement an operator who knows where the nightly scans run would choose
   * (informedRunApplianceOf); onsight+ranges moves its runs off appliances they overrun at run time.
   */
  private readonly appliance: Map<string, string>;

  constructor(ctx: PolicyCtx, name: RangePolicyName) {
    super(ctx);
    this.name = name;
    this.scheduled = name !== 'twice-daily';
    const maxScans = ctx.sc.policy.applianceMaxScans ?? 1;
    const regions = ctx.regionNames.map((r) => ({ name: r, appliances: (ctx.reach.get(r) ?? []).map((a) => ({ name: a, maxScans })) }));
    this.appliance = name === 'twice-daily-scheduled' ? runApplianceOf(regions) : informedRunApplianceOf(regions, othersNightlyLoad(ctx.sc, ctx.reach));
    this.times = ctx.sc.baselines.rangeScanTimes.map((t) => {
      const [h, m] = t.split(':').map(Number);
      return (h * 60 + m) * 60_000;
    }).sort((a, b) => a - b);
  }

  override async init(): Promise<void> {
    this.nextRun = this.following(this.ctx.w.start - 1);
  }

  private following(t: number): number {
    const day = Math.floor(t / 86400_000) * 86400_000;
    for (let d = 0; d < 2; d++) for (const x of this.times) if (day + d * 86400_000 + x > t) return day + d * 86400_000 + x;
    return Infinity;
  }

  async tick(): Promise<void> {
    const now = this.now();
    if (this.scheduled) this.forgetEnded(); // (before the times: a run ended now no longer holds its region)
    while (now >= this.nextRun) {
      // (a scheduled run whose region's previous run still goes: queued behind it, or its time skipped)
      const skip = this.scheduled && this.ctx.sc.baselines.scheduledOverlap === 'skip';
      for (const r of this.ctx.regionNames) {
        if (this.pending.includes(r)) continue;
        if (!(skip && this.regionLocked(r))) this.pending.push(r);
      }
      this.nextRun = this.following(this.nextRun);
    }
    if (!this.scheduled) await this.poll(this.ctx.sc.baselines.rangePollMin * 60_000);
    const slots = new Map(this.ctx.sc.appliances.map((a) => [a.name, a.slots]));
    const rest: string[] = [];
    for (const r of this.pending) {
      const ap = this.appliance.get(r)!; // the region's designated appliance
      if (this.regionLocked(r) || this.ownOn(ap) >= slots.get(ap)! || !this.inWindow()) {
        rest.push(r);
        continue;
      }
      const ri = this.ctx.regionNames.indexOf(r);
      const ips: { ip: string }[] = [];
      for (const p of this.ctx.w.pools) if (p.region === ri) for (let i = 0; i < p.size; i++) ips.push({ ip: ipOf(p.base + i) });
      if (!(await this.launch(r, ap, ips, this.scheduled))) rest.push(r);
    }
    this.pending = rest;
  }

  /** the platform's own bookkeeping for scheduled scans: no API call */
  private forgetEnded(): void {
    for (let i = this.own.length - 1; i >= 0; i--) {
      const s = this.ctx.scanner.peek(this.own[i].ref);
      if (s && s.endedAt !== undefined) this.own.splice(i, 1);
    }
  }

  backlog(): Set<string> {
    if (!this.inWindow()) return new Set();
    return new Set(this.pending.filter((r) => !this.regionLocked(r)));
  }
}

/**
 * B3 (batch-15min): every interval, drop ended sessions, dedupe, launch up to C jobs of ≤ B
 * targets, one region per job, region locks respected, on the least loaded appliance with room as
 * the appliance list shows it (one list call per batch that tries to place a job; our own scans
 * alone if the call fails).
 * B4 (reservation): same queue, but each job reserves its appliance lane for targets × Z × mean
 * host time / P and goes to the lane that frees first, without looking at real load.
 */
class BatchPolicy extends LogDriven {
  readonly name: string;
  private queue = new Map<number, QItem>();
  private inFlight = new Set<number>();
  private nextBatch = 0;
  private lanes = new Map<string, number[]>();

  constructor(ctx: PolicyCtx, private readonly mode: 'batch' | 'reservation', private readonly z = 1, verify = false) {
    super(ctx);
    this.verify = verify;
    this.name = mode === 'batch' ? `batch-15min${verify ? '-verified' : ''}` : `reservation-z${z}`;
    for (const a of ctx.sc.appliances) this.lanes.set(a.name, new Array(a.slots).fill(-Infinity));
  }

  override async deliver(batch: Sighting[]): Promise<void> {
    for (const k of this.learn(batch)) {
      if (this.due(k.host) && !this.inFlight.has(k.host)) this.queue.set(k.host, { host: k.host, ip: k.ip, region: k.region, at: this.now() });
    }
    if (this.mode === 'reservation') await this.run();
  }

  protected override ended(o: Own): void {
    for (const h of o.hosts) if (h !== undefined) this.inFlight.delete(h);
  }

  async tick(): Promise<void> {
    const now = this.now();
    if (this.mode === 'batch') {
      if (now < this.nextBatch) return;
      this.nextBatch = now + this.ctx.sc.baselines.batchIntervalMin * 60_000;
      await this.poll(0);
    } else {
      await this.poll(60_000);
    }
    await this.confirm();
    await this.run();
  }

  private async run(): Promise<void> {
    if (!this.inWindow()) return;
    // drop hosts whose session ended per the logs, or that are no longer due
    for (const [h, q] of this.queue) {
      if (!this.present(this.byIp.get(q.ip), h) || !this.due(h)) this.queue.delete(h);
    }
    const B = this.ctx.sc.baselines.batchTargets;
    const byRegion = new Map<string, QItem[]>();
    for (const q of this.queue.values()) {
      let l = byRegion.get(q.region);
      if (!l) byRegion.set(q.region, (l = []));
      l.push(q);
    }
    const slots = new Map(this.ctx.sc.appliances.map((a) => [a.name, a.slots]));
    const P = new Map(this.ctx.sc.appliances.map((a) => [a.name, Math.round(a.hostsInParallel * a.scaling)]));
    let listed: Map<string, ListedAppliance> | undefined | null = null; // null: not read yet in this batch
    for (const region of this.ctx.regionNames) {
      const l = byRegion.get(region);
      if (!l?.length || this.regionLocked(region)) continue;
      if (this.mode === 'batch' && this.own.length >= this.ctx.sc.baselines.batchConcurrency) break;
      const reach = this.ctx.reach.get(region) ?? [];
      let ap: string | undefined;
      let lane = -1;
      if (this.mode === 'batch') {
        if (listed === null) listed = await this.listAppliances();
        const seen = listed;
        if (seen) {
          // others' running scans (frozen at the list) plus ours not yet ended, which grows as this batch launches
          const load = (a: string) => (seen.get(a)?.othersRunning ?? 0) + this.ownOn(a);
          ap = reach.filter((a) => seen.get(a)?.online !== false && load(a) < slots.get(a)!).sort((a, b) => load(a) / slots.get(a)! - load(b) / slots.get(b)!)[0];
        } else {
          ap = reach.filter((a) => this.ownOn(a) < slots.get(a)!).sort((a, b) => this.ownOn(a) - this.ownOn(b))[0];
        }
      } else {
        let best = Infinity;
        for (const a of reach) {
          const ls = this.lanes.get(a)!;
          ls.forEach((t, i) => {
            if (t < best) {
              best = t;
              ap = a;
              lane = i;
            }
          });
        }
        if (best > this.now()) ap = undefined;
      }
      if (!ap) continue;
      const items = l.slice(0, B);
      if (await this.launch(region, ap, items.map((q) => ({ ip: q.ip, host: q.host })))) {
        for (const q of items) {
          this.queue.delete(q.host);
          this.inFlight.add(q.host);
        }
        if (this.mode === 'reservation') {
          const perHost = this.ctx.scanner.meanHostMin() / P.get(ap)!;
          this.lanes.get(ap)![lane] = this.now() + items.length * this.z * perHost * 60_000;
        }
      }
    }
  }

  /**
   * The appliance list (one call, counted like any), as onsight reads it: whether each appliance is
   * online and how many scans of other tools run on it — those listed as running that are not ours,
   * or, where the list names no scans, its running count less ours (so that with ours added the load
   * is whichever of the two is more). Undefined when the call fails.
   */
  private async listAppliances(): Promise<Map<string, ListedAppliance> | undefined> {
    let list;
    try {
      list = await this.ctx.scanner.appliances();
    } catch {
      return undefined;
    }
    const ours = new Set(this.own.map((o) => o.ref));
    return new Map(list.map((a) => [a.name, {
      online: a.online,
      othersRunning: a.runningScanRefs ? a.runningScanRefs.filter((ref) => !ours.has(ref)).length : Math.max(0, a.runningScans - this.ownOn(a.name)),
    }]));
  }

  backlog(): Set<string> {
    if (!this.inWindow()) return new Set();
    return new Set([...this.queue.values()].filter((q) => !this.regionLocked(q.region)).map((q) => q.region));
  }
}

interface ListedAppliance {
  online: boolean;
  othersRunning: number;
}

/** B0: knows every arrival and departure; earliest-departure-first, same constraints, real load. */
class OraclePolicy extends LogDriven {
  readonly name = 'oracle';
  private ptr = 0;
  private readonly presentNow = new Set<Presence>();
  private readonly pendingHosts = new Set<number>();
  private readonly validAt = new Map<number, number>();

  override async init(): Promise<void> {
    this.ctx.scanner.onTargetEnd = chain(this.ctx.scanner.onTargetEnd, (r) => {
      if (r.outcome === 'valid' && r.actual !== undefined) this.validAt.set(r.actual, r.end);
    });
  }

  override async deliver(): Promise<void> {}

  private dueTruth(h: number): boolean {
    const s = this.validAt.get(h);
    const window = this.ctx.sc.policy.rescanAfterH * 3600;
    return s === undefined || this.now() - s >= Math.max(window / 2, window - rescanLeadFor(window)) * 1000;
  }

  async tick(): Promise<void> {
    const now = this.now();
    const ps = this.ctx.w.presences;
    while (this.ptr < ps.length && ps[this.ptr].start <= now) this.presentNow.add(ps[this.ptr++]);
    for (const p of this.presentNow) if (p.end <= now) this.presentNow.delete(p);
    // own scans: omniscient status, no API call
    for (let i = this.own.length - 1; i >= 0; i--) {
      const s = this.ctx.scanner.peek(this.own[i].ref);
      if (s && s.endedAt !== undefined) {
        for (const h of this.own[i].hosts) if (h !== undefined) this.pendingHosts.delete(h);
        this.own.splice(i, 1);
      }
    }
    if (!this.inWindow()) return;
    const mean = this.ctx.scanner.meanHostMin() * 60_000;
    const byRegion = new Map<string, Presence[]>();
    for (const p of this.presentNow) {
      if (this.pendingHosts.has(p.host) || !this.dueTruth(p.host) || p.end - now < mean + 8 * 60_000) continue;
      const r = this.ctx.sc.regions[p.region].name;
      let l = byRegion.get(r);
      if (!l) byRegion.set(r, (l = []));
      l.push(p);
    }
    const view = this.ctx.scanner.applianceView();
    const slots = new Map(this.ctx.sc.appliances.map((a) => [a.name, a.slots]));
    const load = new Map(view.map((v) => [v.name, { online: v.online, n: v.runningScans }]));
    // regions with the earliest departures first
    const regions = [...byRegion.entries()].map(([r, l]) => ({ r, l: l.sort((a, b) => a.end - b.end) })).sort((a, b) => a.l[0].end - b.l[0].end);
    for (const { r, l } of regions) {
      if (this.regionLocked(r)) continue;
      if (this.ctx.scanner.allowance().remaining === 0) return;
      const ap = (this.ctx.reach.get(r) ?? []).filter((a) => load.get(a)!.online && load.get(a)!.n < slots.get(a)!)
        .sort((a, b) => load.get(a)!.n / slots.get(a)! - load.get(b)!.n / slots.get(b)!)[0];
      if (!ap) continue;
      const items = l.slice(0, this.ctx.sc.policy.maxTargetsPerScan);
      if (await this.launch(r, ap, items.map((p) => ({ ip: p.ip, host: p.host })))) {
        load.get(ap)!.n++;
        for (const p of items) this.pendingHosts.add(p.host);
      }
    }
  }

  backlog(): Set<string> {
    if (!this.inWindow()) return new Set();
    const out = new Set<string>();
    const now = this.now();
    for (const p of this.presentNow) {
      const r = this.ctx.sc.regions[p.region].name;
      if (!this.pendingHosts.has(p.host) && this.dueTruth(p.host) && p.end > now && !this.regionLocked(r)) out.add(r);
    }
    return out;
  }
}

/**
 * The relaxation bound (not a policy anyone could run): it knows every arrival and departure at
 * once and ignores appliance capacity, region rules, scan windows, the API and the rescan policy.
 * Every visit that can hold a scan of its host at a generous length (the shortest setup plus the
 * host's per-host time at the 2nd percentile of the scan-time distribution) is scanned as early
 * and as late as it can end, and every day in between, so any window that some schedule could
 * cover holds a scan. No schedule beats it on any coverage figure except by luck in scan times.
 */
class BoundPolicy implements SimPolicy {
  readonly name = 'bound';
  constructor(private readonly ctx: PolicyCtx) {}
  async init(): Promise<void> {}
  async deliver(): Promise<void> {}
  async tick(): Promise<void> {}
  backlog(): Set<string> {
    return new Set();
  }
  close(): void {}

  virtualScans(): { host: number; end: number }[] {
    const { sc, w } = this.ctx;
    const byHost = new Map<number, Presence[]>();
    for (const p of w.presences) {
      let l = byHost.get(p.host);
      if (!l) byHost.set(p.host, (l = []));
      l.push(p);
    }
    const out: { host: number; end: number }[] = [];
    for (const [h, ps] of byHost) {
      let perHost = sc.scan.medianMin * w.hosts[h].mult * sc.scan.authMult * sc.scan.portsMult * Math.exp(-2 * sc.scan.sigma);
      if (sc.scan.maxPerHostMin > 0) perHost = Math.min(perHost, sc.scan.maxPerHostMin);
      const d = (sc.scan.setupMin[0] + perHost) * 60_000;
      for (const p of ps) {
        const first = p.start + d;
        if (first > p.end) continue;
        for (let e = first; e < p.end; e += 86400_000) out.push({ host: h, end: e });
        out.push({ host: h, end: p.end });
      }
    }
    return out;
  }
}

function chain<T>(a: ((x: T) => void) | undefined, b: (x: T) => void): (x: T) => void {
  return a ? (x) => {
    a(x);
    b(x);
  } : b;
}

/**
 * The scheduler's log: dropped, or with ONSIGHT_SIM_LOG=<file> written there at debug level, each
 * line stamped with the simulated time (`simTime`), to follow a run's decisions (a debugging aid;
 * a file per policy and seed would need the name to say them: set it for one run at a time)
 */
function simLogger(clock: SimClock): Logger {
  const file = process.env.ONSIGHT_SIM_LOG;
  if (!file) return silentLogger();
  return pino({ level: 'debug', base: undefined, timestamp: () => `,"simTime":"${new Date(clock.now()).toISOString()}"` }, destination({ dest: file, sync: true, append: true }));
}
