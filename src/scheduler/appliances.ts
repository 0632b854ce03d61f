/**
 * What onsight knows of each appliance: its load (others' scans as the appliance list last showed
 * them, plus our own scans now) and how many scans it really runs at once. Qualys publishes no
 * slot count (MAX_CAPACITY_UNITS has no documented unit: ../shared/reference/qualys-api.md §5.3),
 * so the count the operator configured (`maxScans`, default 1) is only where learning starts:
 *  - every scan seen running at once (the list's RUNNING_SCAN_COUNT, or our own scans a poll
 *    found running plus others') proves at least that many slots;
 *  - a scan of ours a poll found still queued after the appliance surely polled (its
 *    POLLING_INTERVAL plus setup, else `pickupS`), and not among the k scans the list then shows
 *    running, proves k is all it runs ("full at k"), for FULL_MEMORY_MS (the appliance may be
 *    resized or others' scans reshuffled);
 *  - with no such proof at hand, one scan more than proven is allowed (a probe): if it runs, the
 *    count grows; if it waits, the appliance is full at what ran.
 * Pure bookkeeping (the scheduler makes the calls): when to read the list again, the load now,
 * the capacity, and which appliance a region's next scan goes to.
 */
import type { Logger } from '../log.js';
import type { ApplianceStatus } from '../scanners/types.js';
import type { Intent } from './queue.js';
import { CLOCK_SKEW_MS, isInt, isNum, record, type Remembers } from './memory.js';

export interface RegionAppliances {
  name: string;
  appliances: { name: string; maxScans: number }[];
}

interface ApplianceState {
  status?: ApplianceStatus;
  refreshedAt: number;
  /** others' scans running at the last read (the list's count less ours among them) */
  foreign: number;
}

interface Learned {
  /** most scans seen running at once: it has at least this many slots */
  seen: number;
  /** a scan of ours waited for a slot while this many ran, at this time */
  full?: { scans: number; at: number };
}

/** What was learned of an appliance (ApplianceBook.describe). */
export interface LearnedAppliance {
  /** most scans seen running on it at once (ours and others'): it has at least this many slots */
  slotsSeen: number;
  /** a scan of ours waited for a slot while this many ran (remembered FULL_MEMORY_MS) */
  fullAt?: number;
  /** scans the scheduler lets run on it now: fullAt, else max(configured, slotsSeen) + 1 (a probe) */
  capacity: number;
  slotsHow: string;
  /** how long after launch it has surely had its chance to pick a scan up */
  pickupS: number;
  configuredPickupS: number;
  pickupHow: string;
  /** the longest another tool's scan has been seen running on it (h, from the first list read that showed it), when OTHERS_LONG_MS or more */
  othersLongestH?: number;
  othersHow?: string;
}

/** slots believed of an appliance read back after a restart: no appliance runs more scans at once */
const MAX_SLOTS = 1000;
/** how long "full at k" is believed before a probe may test it again */
export const FULL_MEMORY_MS = 6 * 3_600_000;
/**
 * another tool's scan seen running this long holds a slot for a large part of a day: with nightly
 * scans that long an appliance may not keep up, and ours wait behind them (the simulator's heavy-tail
 * cell: src/sim/README.md, session 15)
 */
export const OTHERS_LONG_MS = 12 * 3_600_000;
/** a saved appliance list is used again by a scheduler started this soon after the save (a restart, not an outage) */
export const LIST_KEPT_MS = 15 * 60_000;
/**
 * Where others' scans overrun an appliance, a scan aimed at the devices present at launch finds them
 * gone after its wait; a range run scans whoever is there when it starts (src/sim/README.md, session 25)
 */
const RANGES_ADVICE = 'range runs (scheduler.rangeScans) keep their place in its queue, scan whoever is present when they start, and are placed off an appliance others\' scans overrun (in the simulator, where others\' scans overrun an appliance: 16-min hosts 90.0 % coverage with them, 83.8 % without, twice-daily scheduled scans placed off that appliance 90.5 %; heavy-tailed scans 58.4 % with them, 24.7 % without: src/sim/README.md, session 33)';
/** ... and where range runs are on already (they are not aimed while their runs wait that long: ranges.ts) */
const RANGES_ON = 'range runs (scheduler.rangeScans, on) keep their place in its queue and scan whoever is present when they start; a run is placed on another appliance of its region while every slot of this one has been held by others\' scans for an hour; with aim auto they are not aimed for a day after one still waits for a slot at its region\'s next time';
/** appliances a save may name (a subscription has tens; more is a damaged or hostile store) */
const MAX_APPLIANCES = 1000;
/** a list names at most this many scans of an appliance (a longer array is someone's edit) */
const MAX_REFS = 10_000;
/** setup before an appliance can pick a launched scan up (the simulator's 1–3 min; Qualys's is similar) */
const SETUP_ALLOWANCE_MS = 180_000;

export class ApplianceBook implements Remembers {
  private readonly states = new Map<string, ApplianceState>();
  private readonly learned = new Map<string, Learned>();
  /** the list is read this many times less often while it shows no room (doubles up to 6) */
  private backoff = 1;
  /**
   * ... and while others' load and online states stay as they were (doubles up to 12: a scan
   * stuck behind others' is caught by the scheduler, which then reads the list again)
   */
  private steady = 1;
  private lastForeign = '';
  /** our scans a poll found still waiting after pickup, by appliance (the next list read says what filled it) */
  private readonly waitingSeen = new Map<string, Set<string>>();
  /** others' scans running on each appliance (lists that name them), and the first read that showed each */
  private readonly othersSince = new Map<string, Map<string, number>>();
  /** per appliance, the first of the lists in a row (the last included) that showed every slot it is believed to have held by others' scans */
  private readonly othersFullSince = new Map<string, number>();
  /** others' scans already logged as long-running */
  private readonly othersLogged = new Set<string>();

  /** @param rangesOn are range runs configured (scheduler.rangeScans.times)? The advice on others' long scans depends on it. */
  constructor(private readonly log: Logger, private readonly rangesOn: () => boolean = () => false) {}

  private rangesAdvice(): string {
    return this.rangesOn() ? RANGES_ON : RANGES_ADVICE;
  }

  /** for the store (memory.ts): each appliance's slots as learned, since when others' scans have run on it, and the last list read */
  snapshot(now: number): unknown {
    return {
      slots: Object.fromEntries([...this.learned].map(([name, l]) => [name, { seen: l.seen, ...(l.full ? { full: { ...l.full } } : {}) }])),
      othersSince: Object.fromEntries([...this.othersSince].map(([name, m]) => [name, Object.fromEntries(m)])),
      othersFullSince: Object.fromEntries(this.othersFullSince),
      list: {
        at: now, backoff: this.backoff, steady: this.steady, lastForeign: this.lastForeign,
        states: Object.fromEntries([...this.states].map(([name, a]) => [name, { refreshedAt: a.refreshedAt, foreign: a.foreign, ...(a.status ? { status: a.status } : {}) }])),
      },
    };
  }

  /** What was learned before a restart, merged with what was seen since: the most slots seen, the newer "full at", the earlier "since". */
  merge(data: unknown, now: number): string | undefined {
    const d = record(data), slots = record(d?.slots), others = record(d?.othersSince);
    if (!slots || !others) return undefined;
    if (Object.keys(slots).length > MAX_APPLIANCES || Object.keys(others).length > MAX_APPLIANCES) return undefined;
    // a list saved unreadable is left out, the slots learned kept (the list is read again)
    const list = d?.list === undefined ? undefined : keptList(d.list, now);
    const learned: [string, Learned][] = [];
    for (const [name, v] of Object.entries(slots)) {
      const l = record(v), full = l?.full === undefined ? undefined : record(l.full);
      if (!isInt(l?.seen, 0, MAX_SLOTS) || (l.full !== undefined && !(isInt(full?.scans, 1, MAX_SLOTS) && isNum(full?.at, 0, now + CLOCK_SKEW_MS)))) return undefined;
      // a time ahead of this clock (another node's, a clock stepped back) is taken as now
      learned.push([name, { seen: l.seen as number, ...(full ? { full: { scans: full.scans as number, at: Math.min(full.at as number, now) } } : {}) }]);
    }
    const full = d?.othersFullSince === undefined ? {} : record(d.othersFullSince);
    if (!full || Object.keys(full).length > MAX_APPLIANCES || !Object.values(full).every((at) => isNum(at, 0, now + CLOCK_SKEW_MS))) return undefined;
    const since: [string, [string, number][]][] = [];
    for (const [name, v] of Object.entries(others)) {
      const refs = record(v);
      if (!refs || !Object.values(refs).every((at) => isNum(at, 0, now + CLOCK_SKEW_MS))) return undefined;
      since.push([name, (Object.entries(refs) as [string, number][]).map(([ref, at]) => [ref, Math.min(at, now)])]);
    }
    for (const [name, old] of learned) {
      const l = this.learnedOf(name);
      l.seen = Math.max(l.seen, old.seen);
      if (old.full && (!l.full || l.full.at < old.full.at)) l.full = old.full;
    }
    // (a streak is taken back only where this scheduler has read no list yet: one it read says how it is now)
    for (const [name, at] of Object.entries(full) as [string, number][]) if (!this.states.has(name)) this.othersFullSince.set(name, Math.min(at, now));
    for (const [name, refs] of since) {
      const m = this.othersSince.get(name) ?? new Map<string, number>();
      for (const [ref, at] of refs) m.set(ref, Math.min(m.get(ref) ?? at, at));
      this.othersSince.set(name, m);
    }
    // the list as the last scheduler read it, when it stopped moments ago (an upgrade, a reboot) and
    // nothing was read since: what the running daemon would have gone on using (a scarce allowance
    // reads it only when asked to), so a restart does not cost a call for it
    let listed = list === null ? '; the appliance list saved unreadable: read again' : '';
    if (list && list.states.length > 0 && this.states.size === 0) {
      // (saved ahead of this clock: its age is unknown, so it is not taken as fresh)
      if (list.at <= now && now - list.at <= LIST_KEPT_MS) {
        let oldest = now;
        for (const [, a] of list.states) if (a.refreshedAt > 0 && a.refreshedAt < oldest) oldest = a.refreshedAt;
        for (const [name, a] of list.states) this.states.set(name, a);
        this.backoff = list.backoff;
        this.steady = list.steady;
        this.lastForeign = list.lastForeign;
        const unread = list.states.filter(([, a]) => a.refreshedAt === 0).length;
        listed = unread === list.states.length ? '; the appliance list saved read ahead of this clock: read again'
          : `; the appliance list read ${Math.round((now - oldest) / 60_000)} min before${unread ? ` (${unread} appliance(s) read ahead of this clock: read again)` : ''}`;
      } else listed = list.at > now ? '; the appliance list not kept (saved ahead of this clock: read again)'
        : `; the appliance list not kept (saved ${Math.round((now - list.at) / 60_000)} min before, over ${LIST_KEPT_MS / 60_000}: read again)`;
    }
    return `slots of ${learned.length} appliance(s)${learned.length ? ` (${learned.map(([n, l]) => `${n}: seen ${l.seen}${l.full ? `, full at ${l.full.scans}` : ''}`).join(', ')})` : ''}${listed}`;
  }

  /** Does the last list cover every appliance the config names (a restart with a new one reads it again)? */
  covers(regions: RegionAppliances[]): boolean {
    return regions.every((r) => r.appliances.every((a) => this.states.has(a.name)));
  }

  /** Is the list older than `refreshS` (stretched by the back-offs)? Never read: yes. */
  stale(now: number, refreshS: number): boolean {
    if (this.states.size === 0) return true;
    let oldest = Infinity;
    for (const a of this.states.values()) if (a.refreshedAt < oldest) oldest = a.refreshedAt;
    return now - oldest >= refreshS * 1000 * Math.max(this.backoff, this.steady);
  }

  /** Never read, or asked for again (invalidate). */
  mustRead(): boolean {
    return this.states.size === 0 || [...this.states.values()].some((a) => a.refreshedAt === 0);
  }

  get known(): boolean {
    return this.states.size > 0;
  }

  /** Forget when the list was read (one appliance, or all): the next look reads it again. */
  invalidate(name?: string): void {
    for (const [n, a] of this.states) if (name === undefined || n === name) a.refreshedAt = 0;
  }

  /**
   * How long after launch the appliance has surely had its chance to pick a scan up: setup plus
   * its listed polling interval, or the configured `pickupS` when the list does not say.
   */
  pickupMs(name: string, pickupS: number): number {
    const poll = this.pollIntervalMs(name);
    return poll !== undefined ? poll + SETUP_ALLOWANCE_MS : pickupS * 1000;
  }

  /** The appliance's polling interval as last listed (ms), if the list gives it. */
  pollIntervalMs(name: string): number | undefined {
    const poll = this.states.get(name)?.status?.pollIntervalS;
    return poll !== undefined && poll > 0 ? poll * 1000 : undefined;
  }

  /**
   * A fresh list. `active`: our scans in flight; `ourRuns`: the scan references of the platform's
   * range runs of ours that are followed (ranges.ts), ours too though no intent names them.
   */
  update(list: ApplianceStatus[], regions: RegionAppliances[], active: Intent[], now: number, ourRuns: ReadonlySet<string> = new Set()): void {
    const byName = new Map(list.map((a) => [a.name, a]));
    // our scans a poll found waiting after pickup (still ours): not among the running, unless the list names them
    const waitingOf = (a: ApplianceStatus) => {
      const mine = new Set(active.filter((i) => i.appliance === a.name && i.scanRef).map((i) => i.scanRef!));
      return [...this.waitingSeen.get(a.name) ?? []].filter((ref) => mine.has(ref) && !a.runningScanRefs?.includes(ref));
    };
    const foreignOf = (a: ApplianceStatus) => {
      const ours = active.filter((i) => i.appliance === a.name);
      if (!a.runningScanRefs) return Math.max(0, a.runningScans - (ours.length - waitingOf(a).length));
      const refs = new Set(a.runningScanRefs);
      const runs = a.runningScanRefs.filter((ref) => ourRuns.has(ref)).length;
      return Math.max(0, a.runningScans - ours.filter((i) => i.scanRef !== undefined && refs.has(i.scanRef)).length - runs);
    };
    // what only the list can tell (others' scans, online states): when it has not changed since the
    // last read, our own count of our scans is as good as a fresh list, so read it less often
    const foreign = list.map((a) => `${a.name}:${a.online ? 1 : 0}:${foreignOf(a)}`).sort().join(',');
    this.steady = foreign === this.lastForeign ? Math.min(12, this.steady * 2) : 1;
    this.lastForeign = foreign;
    for (const r of regions) {
      for (const ap of r.appliances) {
        const status = byName.get(ap.name);
        if (!status) this.log.warn({ appliance: ap.name, region: r.name }, 'configured appliance is not in the scanner\'s appliance list; treated as offline');
        this.states.set(ap.name, { status, refreshedAt: now, foreign: status ? foreignOf(status) : 0 });
      }
    }
    const ourRefs = new Set([...active.filter((i) => i.scanRef).map((i) => i.scanRef!), ...ourRuns]);
    for (const a of list) this.trackOthers(a, ourRefs, now);
    for (const a of list) {
      const waiting = waitingOf(a).length > 0;
      this.waitingSeen.delete(a.name);
      if (!a.online || !this.states.has(a.name)) continue;
      this.sawRunning(a.name, a.runningScans);
      // a scan of ours waits for a slot while these run: they fill the appliance
      if (waiting) this.sawFull(a.name, a.runningScans, now);
    }
    // (after what this list taught of the slots)
    for (const r of regions) {
      for (const ap of r.appliances) {
        const state = this.states.get(ap.name)!;
        const { atLeast, fullAt } = this.learnedCapacity(ap.name, now);
        const held = state.status?.online === true && state.foreign >= (fullAt ?? Math.max(ap.maxScans, atLeast, 1));
        if (!held) this.othersFullSince.delete(ap.name);
        else if (!this.othersFullSince.has(ap.name)) this.othersFullSince.set(ap.name, now);
      }
    }
  }

  /** Others' scans the list names as running on `a`: since when each has been seen (a list without names tells nothing: what was seen is forgotten). */
  private trackOthers(a: ApplianceStatus, ours: Set<string>, now: number): void {
    if (!a.runningScanRefs) {
      this.othersSince.delete(a.name);
      return;
    }
    const before = this.othersSince.get(a.name) ?? new Map<string, number>();
    const since = new Map<string, number>();
    for (const ref of a.runningScanRefs) {
      if (ours.has(ref)) continue;
      const at = before.get(ref) ?? now;
      since.set(ref, at);
      if (now - at >= 2 * OTHERS_LONG_MS && !this.othersLogged.has(ref)) {
        if (this.othersLogged.size > 10_000) this.othersLogged.clear();
        this.othersLogged.add(ref);
        this.log.warn({ appliance: a.name, scanRef: ref, hours: Math.floor((now - at) / 3_600_000) },
          `appliance ${a.name}: another tool's scan ${ref} has run for at least ${Math.floor((now - at) / 3_600_000)} h: with nightly scans that long the appliance may not keep up, and scans of ours wait behind them; ${this.rangesAdvice()}`);
      }
    }
    this.othersSince.set(a.name, since);
  }

  /** A poll found these scans of ours still waiting after the appliance surely polled: read the list again. */
  sawWaiting(name: string, scanRefs: string[]): void {
    this.waitingSeen.set(name, new Set(scanRefs));
    this.invalidate(name);
  }

  /** `n` scans ran on the appliance at once: it has at least n slots. */
  sawRunning(name: string, n: number): void {
    const l = this.learnedOf(name);
    if (n > l.seen) {
      if (l.seen > 0) this.log.info({ appliance: name, scans: n }, `appliance ${name} runs at least ${n} scans at once`);
      l.seen = n;
    }
    if (l.full && n > l.full.scans) l.full = undefined;
  }

  /** A scan of ours waited for a slot while `n` scans ran on the appliance: it runs n at once. */
  sawFull(name: string, n: number, now: number): void {
    const l = this.learnedOf(name);
    if (l.full?.scans !== n) this.log.info({ appliance: name, scans: n }, `appliance ${name} is full at ${n} running scan(s): a scan of ours waits for a slot`);
    l.full = { scans: Math.max(1, n), at: now };
    l.seen = Math.max(l.seen, n);
  }

  private learnedOf(name: string): Learned {
    let l = this.learned.get(name);
    if (!l) this.learned.set(name, (l = { seen: 0 }));
    return l;
  }

  /**
   * Scans the appliance may be given now: the count it was seen full at (while remembered), else
   * the larger of the configured and the most seen running, plus one to probe for more.
   */
  capacity(name: string, configured: number, now: number): number {
    const l = this.learned.get(name);
    if (l?.full && now - l.full.at < FULL_MEMORY_MS) return l.full.scans;
    return Math.max(configured, l?.seen ?? 0) + 1;
  }

  /** What was learned of the appliance's slots (for the status page and logs). */
  learnedCapacity(name: string, now: number): { atLeast: number; fullAt?: number } {
    const l = this.learned.get(name);
    const full = l?.full && now - l.full.at < FULL_MEMORY_MS ? l.full.scans : undefined;
    return { atLeast: l?.seen ?? 0, ...(full !== undefined ? { fullAt: full } : {}) };
  }

  /**
   * What onsight believes of the appliance next to what the operator configured, and how it came
   * to believe it (the status page, /api/status and /metrics show it).
   */
  describe(name: string, configured: number, pickupS: number, now: number): LearnedAppliance {
    const l = this.learned.get(name);
    const { atLeast, fullAt } = this.learnedCapacity(name, now);
    const capacity = this.capacity(name, configured, now);
    const slotsHow = fullAt !== undefined
      ? `full at ${fullAt}: a scan of ours waited for a slot while ${fullAt} ran (${Math.round((now - l!.full!.at) / 60_000)} min ago; believed ${FULL_MEMORY_MS / 3_600_000} h)`
      : atLeast > 0
        ? `seen running ${atLeast} at once${atLeast > configured ? ` (configured ${configured})` : atLeast < configured ? `; the configured ${configured} applies` : ''}; one more is tried until a scan of ours waits`
        : `nothing seen running yet: the configured ${configured}, one more tried`;
    const poll = this.states.get(name)?.status?.pollIntervalS;
    const listed = poll !== undefined && poll > 0;
    const others = [...(this.othersSince.get(name) ?? new Map<string, number>())].sort((x, y) => x[1] - y[1])[0];
    const longest = others ? now - others[1] : 0;
    return {
      slotsSeen: atLeast,
      ...(fullAt !== undefined ? { fullAt } : {}),
      capacity,
      slotsHow,
      pickupS: Math.round(this.pickupMs(name, pickupS) / 1000),
      configuredPickupS: pickupS,
      pickupHow: listed ? `listed polling interval ${poll} s + ${SETUP_ALLOWANCE_MS / 1000} s setup` : 'configured pickupS (the appliance list gives no polling interval)',
      ...(longest >= OTHERS_LONG_MS ? {
        othersLongestH: Math.round(longest / 360_000) / 10,
        othersHow: `another tool's scan (${others![0]}) has been running for at least ${Math.floor(longest / 3_600_000)} h (listed since ${new Date(others![1]).toISOString()}): ` +
          'nightly scans that long can hold the appliance for days, and scans of ours wait behind them' +
          ` (one still queued long after launch is canceled as stuck and relaunched later, when its devices may have left: ${this.rangesAdvice()})`,
      } : {}),
    };
  }

  /**
   * Have the lists in a row up to the last (`stale` says whether it is recent enough) shown every
   * slot the appliance is believed to have (seen full at, else the larger of the configured and
   * the most seen running) held by others' scans, for at least `ms`? A scan of ours given to it
   * waits behind theirs, those running and those queued, which no list shows: for as long as
   * nobody can say. (Each of their scans' own age would not do: where their scans queue, one that
   * has just taken a slot from another holds it as long.)
   */
  overrun(name: string, ms: number): boolean {
    const state = this.states.get(name);
    const since = this.othersFullSince.get(name);
    return state?.status?.online === true && since !== undefined && state.refreshedAt - since >= ms;
  }

  /** Others' scans on the appliance at the last read. */
  foreign(name: string): number {
    return this.states.get(name)?.foreign ?? 0;
  }

  /** After a launch pass: a list that showed no room is not worth re-reading often, until a launch. */
  afterPass(launches: number, blocked: boolean, refreshed: boolean): void {
    if (launches > 0) this.backoff = 1;
    else if (blocked && refreshed) this.backoff = Math.min(6, this.backoff * 2);
  }

  /** Load now: others' scans as last listed plus ours now (waiting ones included). */
  load(name: string, active: Intent[]): { online: boolean; load: number; ours: number } {
    const ours = active.filter((i) => i.appliance === name).length;
    const a = this.states.get(name);
    if (!a?.status) return { online: false, load: ours, ours };
    return { online: a.status.online, load: ours + a.foreign, ours };
  }

  /** How many of the region's appliances are online with room now (as `pick` judges room). */
  roomFor(r: RegionAppliances, active: Intent[], now: number, reserved: ReadonlyMap<string, number> = new Map()): number {
    return r.appliances.filter((ap) => {
      const s = this.slotsOf(ap, active, now, reserved);
      return s.online && s.load < s.cap;
    }).length;
  }

  /** An appliance's load now (ours, others', slots kept for range runs) against its learned capacity. */
  private slotsOf(ap: { name: string; maxScans: number }, active: Intent[], now: number, reserved: ReadonlyMap<string, number>): { online: boolean; load: number; cap: number; kept: number } {
    const seen = this.load(ap.name, active);
    // slots kept for the platform's range runs due there (ranges.ts)
    const kept = reserved.get(ap.name) ?? 0;
    return { online: seen.online, load: seen.load + kept, cap: this.capacity(ap.name, ap.maxScans, now), kept };
  }

  /**
   * The least-loaded online appliance of the region with room (by its learned capacity); between
   * equally loaded ones, the one fewer other waiting regions depend on (a region's only appliance
   * is left for that region).
   */
  pick(r: RegionAppliances, regions: RegionAppliances[], active: Intent[], waiting: Set<string> = new Set(), now = 0, reserved: ReadonlyMap<string, number> = new Map()): { name: string; why: string } | undefined {
    let best: { name: string; ratio: number; demand: number; why: string } | undefined;
    const skipped: string[] = [];
    for (const ap of r.appliances) {
      const { online, load, cap, kept } = this.slotsOf(ap, active, now, reserved);
      const keptText = kept ? ` (${kept} kept for a range run)` : '';
      if (!online) {
        skipped.push(`${ap.name} offline`);
        continue;
      }
      if (load >= cap) {
        skipped.push(`${ap.name} busy ${load}/${cap}${keptText}`);
        continue;
      }
      const ratio = load / cap;
      let demand = 0;
      for (const other of regions) {
        if (other.name !== r.name && waiting.has(other.name) && other.appliances.some((a) => a.name === ap.name)) demand += 1 / other.appliances.length;
      }
      if (!best || ratio < best.ratio || (ratio === best.ratio && demand < best.demand)) {
        best = { name: ap.name, ratio, demand, why: `${ap.name} online, load ${load}/${cap}${keptText}` };
      }
    }
    if (!best) return undefined;
    return { name: best.name, why: skipped.length ? `${best.why} (${skipped.join(', ')})` : best.why };
  }
}

/**
 * The saved list's shape (memory.ts): undefined when absent, null when malformed. Names and refs
 * are strings, counts integers in range, times not ahead of the clock by more than CLOCK_SKEW_MS.
 */
function keptList(x: unknown, now: number): { at: number; backoff: number; steady: number; lastForeign: string; states: [string, ApplianceState][] } | null {
  const l = record(x), states = record(l?.states);
  if (!l || !states || Object.keys(states).length > MAX_APPLIANCES || !isNum(l.at, 0, now + CLOCK_SKEW_MS) || !isInt(l.backoff, 1, 6) || !isInt(l.steady, 1, 12) || typeof l.lastForeign !== 'string' || l.lastForeign.length > 100_000) return null;
  const out: [string, ApplianceState][] = [];
  for (const [name, v] of Object.entries(states)) {
    const a = record(v);
    if (!a || !isNum(a.refreshedAt, 0, now + CLOCK_SKEW_MS) || !isInt(a.foreign, 0, MAX_SLOTS)) return null;
    const status = a.status === undefined ? undefined : applianceStatus(a.status, name);
    if (status === null) return null;
    // (read "ahead of this clock" is taken as never read: asked for again)
    out.push([name, { refreshedAt: a.refreshedAt > now ? 0 : a.refreshedAt, foreign: a.foreign, ...(status ? { status } : {}) }]);
  }
  return { at: l.at, backoff: l.backoff, steady: l.steady, lastForeign: l.lastForeign, states: out };
}

function applianceStatus(x: unknown, name: string): ApplianceStatus | null {
  const s = record(x);
  const optNum = (v: unknown, max: number) => v === undefined || isNum(v, 0, max);
  if (!s || s.name !== name || typeof s.online !== 'boolean' || !isInt(s.runningScans, 0, MAX_SLOTS)
    || !optNum(s.runningSlices, 1e6) || !optNum(s.maxCapacityUnits, 1e9) || !optNum(s.heartbeatsMissed, 1e9) || !optNum(s.pollIntervalS, 86_400)
    || !(s.runningScanRefs === undefined || (Array.isArray(s.runningScanRefs) && s.runningScanRefs.length <= MAX_REFS && s.runningScanRefs.every((r) => typeof r === 'string' && r.length <= 200)))) return null;
  return {
    name, online: s.online, runningScans: s.runningScans,
    ...(s.runningSlices !== undefined ? { runningSlices: s.runningSlices as number } : {}),
    ...(s.maxCapacityUnits !== undefined ? { maxCapacityUnits: s.maxCapacityUnits as number } : {}),
    ...(s.heartbeatsMissed !== undefined ? { heartbeatsMissed: s.heartbeatsMissed as number } : {}),
    ...(s.runningScanRefs !== undefined ? { runningScanRefs: [...s.runningScanRefs as string[]] } : {}),
    ...(s.pollIntervalS !== undefined ? { pollIntervalS: s.pollIntervalS as number } : {}),
  };
}
