/**
 * Launching: for each region with ready targets and room, pick the least-loaded online appliance,
 * re-check every target, and launch one batched scan per free slot. The intent is recorded before
 * the call (the crash-safety anchor); a failed launch is settled by the scanner's FailureOutcome
 * alone. Owns the appliance list's refreshes and when each address's scanner dates were read.
 */
import { ADDRESS_DEVICES, ADDRESS_WINDOW_MS, AddressChurn } from './churn.js';
import { OnsightError } from '../errors.js';
import { canonicalIp } from '../util/ip.js';
import type { BindingView } from '../inventory/inventory.js';
import type { Verdict } from '../policy/policy.js';
import type { ApplianceStatus } from '../scanners/types.js';
import type { Intent, IntentTarget, QueueEntry } from './queue.js';
import type { SchedulerRegion } from './options.js';
import { FailedCall } from './budget.js';
import { OperatorMarks } from './marks.js';
import type { Waiting } from './waitlist.js';
import { hostsInParallel, newIntentId, startingHostsInParallel, transitionRefused, type SchedulerCore } from './core.js';

/** a lease running this long past now holds its address through any scan (settled targets) */
const SETTLED_LEASE_MS = 86_400_000;
/** a scarce allowance's launch waits this long at most for a region's wave to fill */
const HOLD_WHEN_SCARCE_MS = 30 * 60_000;
/** a region whose oldest ready target has waited this long takes its turn first; a wait counts this long at most in the sum (turns) */
const STARVED_MS = 4 * 3_600_000;

type Revalidated = { ok: true; b: BindingView; v: Verdict } | { ok: false; why: string };
/** what a target is in its scan: due, a second look riding (second-look.ts), or a device ahead of time riding (ahead.ts) */
type Ride = 'due' | 'look' | 'ahead';

export class Launcher {
  /** when the scanner's last-scan date of each address was last read (lastScannedFromScanner) */
  private readonly scannerChecked = new Map<string, number>();

  /** onsight rescan / skip: a skip holds a queued device back at launch too; a rescan keeps it due */
  private readonly marks: OperatorMarks;

  /** riders the scanner refused by name at a launch: no launch before `until` (retryBackoffS, doubling with each refusal, a day at most; in memory) */
  private readonly refusedRiders = new Map<number, { until: number; n: number }>();

  /** addresses (DHCP) and VPN users scanned for many devices within the hour (churn.ts): the next device there waits; kept across restarts (memory.ts part `address-churn`) */
  readonly churn = new AddressChurn();
  /** the addresses whose hold was said, until when */
  private readonly saidChurn = new Map<string, number>();

  constructor(private readonly core: SchedulerCore) {
    this.marks = new OperatorMarks(core.store);
  }

  /** Re-read the appliance list when stale; true when it was read. */
  async refreshAppliances(): Promise<boolean> {
    const { clock, appliances, opts, budget } = this.core;
    const now = clock.now();
    // a scarce allowance reads the list only when never read or asked for again (a scan of ours
    // waits for a slot, a scan stuck): what else it could show would not change a launch
    const must = appliances.mustRead() || !appliances.covers(opts.regions);
    if (!must && (budget.scarce() || !appliances.stale(now, opts.applianceRefreshS))) return false;
    // a list never read may take the reserve (without it nothing launches), never a stopped or waiting scanner's call
    if (!budget.canSpend(!appliances.known)) return false;
    let list: ApplianceStatus[];
    try {
      list = await budget.call('list appliances', 'appliances', () => this.core.scanner.appliances());
    } catch {
      return false;
    }
    appliances.update(list, opts.regions, await this.core.store.activeIntents(), now, this.core.ranges.runRefs());
    return true;
  }

  /** Re-check a queued target right before launch: same device, still present, still due, still allowed. */
  private async revalidate(q: QueueEntry, now: number, ride: Ride = 'due'): Promise<Revalidated> {
    const { inventory, policy } = this.core;
    const b = await inventory.binding(q.bindingId);
    if (!b) return { ok: false, why: 'binding no longer known' };
    if (b.identityId !== q.identityId) return { ok: false, why: 'address now held by another device' };
    const holder = await inventory.openBinding(q.ip);
    if (!holder || holder.id !== b.id) return { ok: false, why: holder ? `address reassigned to ${holder.identityKey}` : 'device left (binding ended)' };
    const marked = await this.marks.adjust(policy.evaluate(b, now), b, now, (region) => policy.windowOpen(region, now));
    // a second look (second-look.ts) is due only while still owed; a device ahead of time only while it comes due soon (ahead.ts)
    const v = ride === 'look' ? this.core.decide.secondLook(b, marked, now) : ride === 'ahead' ? this.core.decide.scanAhead(b, marked, now) : marked;
    if (!v.due || (ride === 'look' && !('secondLook' in v)) || (ride === 'ahead' && !('ahead' in v))) return { ok: false, why: `${v.reason}: ${v.detail}` };
    // queued under a region the config has since moved it from (SIGHUP, a restart): not launched on
    // the old region's appliances; the next sweep queues it again under its region
    if (v.region !== q.region) return { ok: false, why: `now in region ${v.region ?? '(none)'}, not ${q.region} it was queued under` };
    if (!policy.allowed(q.ip)) return { ok: false, why: 'outside scope or excluded' };
    return { ok: true, b, v };
  }

  private async checkScannerDates(entries: QueueEntry[]): Promise<void> {
    const { clock, inventory, budget } = this.core;
    if (!this.core.opts.lastScannedFromScanner) return;
    const now = clock.now();
    const ips = entries.map((e) => e.ip).filter((ip) => (this.scannerChecked.get(ip) ?? 0) < now - 86_400_000);
    if (ips.length === 0) return;
    try {
      const dates = await budget.hostList('host list (last scanned)', ips);
      if (!dates) return;
      if (this.scannerChecked.size > 500_000) this.scannerChecked.clear();
      for (const ip of ips) this.scannerChecked.set(ip, now);
      for (const d of dates) {
        if (!d.lastScannedAt) continue;
        const e = entries.find((x) => x.ip === d.ip);
        // (a date ahead of our clock, a skewed platform's or a bad one, counts as now: kept, it held the device scanned past its window and no real scan could replace it, the date only moving forward)
        const at = Math.min(Date.parse(d.lastScannedAt), now);
        if (e && (await this.heldThen(e, at))) await inventory.markScanned([e.identityId], at, `scanner:${d.via ?? 'vm-scan'}`);
      }
    } catch {
      /* dates are an optimisation: launch anyway */
    }
  }

  /**
   * Was the scanner's date `at` of `e.ip` a scan of this device? The date is the address's: only if
   * the queued binding held the address then (as ranges.ts credits) and no other device we know
   * did. "No other known holder" alone credited a device that arrived today with an old scan of its
   * address: whoever held it before may be unknown to us (pruned, a missed line, a static host).
   * (An earlier stay of the device at the address is another binding: not credited, so it is scanned.)
   */
  private async heldThen(e: QueueEntry, at: number): Promise<boolean> {
    const { inventory } = this.core;
    const b = await inventory.binding(e.bindingId);
    if (!b || b.identityId !== e.identityId || b.ip !== e.ip || b.startAt > at || (b.endAt !== undefined && b.endAt < at)) return false;
    return !(await inventory.heldByAnotherAt(e.ip, at, e.identityId));
  }

  async launchReady(): Promise<void> {
    const { clock, store, opts, appliances, budget } = this.core;
    const now = clock.now();
    const regions = await store.readyRegions(now, opts.regions.map((r) => r.name));
    if (regions.length === 0) return;
    const maxTotal = opts.maxRunningScans ?? Infinity;
    // the appliance list is read only when a launch may follow: some ready region has room by our own count
    const before = await store.activeIntents();
    if (before.length >= maxTotal) return;
    const roomy = regions.some((name) => {
      const r = opts.regions.find((x) => x.name === name);
      return r && this.mayLaunch(r, before, now);
    });
    if (!roomy) return;
    const refreshed = await this.refreshAppliances();
    const waiting = new Set(regions);
    let launches = 0, blocked = false;
    const order = await this.turns(regions, before, now);
    for (const r of order) {
      // a range run of the platform's is due or running there: a region runs one scan at a time
      if (this.core.ranges.holds(r.name, clock.now())) continue;
      if (await this.holding(r.name)) continue;
      for (;;) {
        const active = await store.activeIntents();
        if (active.length >= maxTotal) return;
        if (this.core.cancel.isDraining(r.name, clock.now()) || active.filter((i) => i.region === r.name).length >= r.maxConcurrentScans) break;
        if (!budget.canLaunch()) return;
        const appliance = appliances.pick(r, opts.regions, active, waiting, clock.now(), this.core.ranges.reserved(clock.now()));
        if (!appliance) {
          blocked = true;
          break;
        }
        const launched = await this.launchBatch(r, appliance);
        if (!launched) break;
        launches++;
      }
      waiting.delete(r.name);
    }
    // a list that showed no room is not worth re-reading every applianceRefreshS: back off until a launch
    appliances.afterPass(launches, blocked, refreshed);
  }

  /** May the region launch now by our own count: not draining a cancel, not held for a range run, below its scans at once? */
  private mayLaunch(r: SchedulerRegion, active: Intent[], now: number): boolean {
    return !this.core.cancel.isDraining(r.name, now) && !this.core.ranges.holds(r.name, now) && active.filter((i) => i.region === r.name).length < r.maxConcurrentScans;
  }

  /**
   * The order in which ready regions take their turn. The fewest appliances with room now first, so
   * a flexible region does not take the only appliance another region can use. Between equals
   * that can launch now: a region whose oldest ready device has waited STARVED_MS or more first
   * (the longest-waiting first), else the one whose ready devices have waited longest in all (each
   * counted up to STARVED_MS). By configured appliances alone, a region that could use only the
   * one slot others' scans left took it scan after scan while a larger region, its other appliance
   * full, waited for hours (src/sim/README.md, session 34); by the sum alone, a region with more
   * devices could keep a small region's from ever launching.
   */
  private async turns(names: string[], active: Intent[], now: number): Promise<SchedulerRegion[]> {
    const { opts, appliances, ranges } = this.core;
    const reserved = ranges.reserved(now);
    const keyed = names.map((name) => opts.regions.find((x) => x.name === name)).filter((r): r is SchedulerRegion => r !== undefined)
      .map((r) => ({ r, room: appliances.roomFor(r, active, now, reserved), oldest: 0, waited: 0 }));
    const contend = keyed.filter((k) => k.room > 0 && this.mayLaunch(k.r, active, now));
    // (the ready queue read only where the turn can matter: two regions or more that could launch now)
    if (contend.length > 1) {
      for (const k of contend) {
        // the most recently seen first, up to two scans' worth: a longer backlog counts by these
        for (const q of await this.core.store.ready(k.r.name, now, 2 * opts.maxTargetsPerScan)) {
          const w = Math.max(0, now - Math.max(q.dueSince, q.notBefore));
          k.oldest = Math.max(k.oldest, w);
          k.waited += Math.min(STARVED_MS, w);
        }
      }
    }
    const starved = (k: { oldest: number }) => (k.oldest >= STARVED_MS ? k.oldest : 0);
    return keyed.sort((a, b) => a.room - b.room || starved(b) - starved(a) || b.waited - a.waited).map((k) => k.r);
  }

  /**
   * With a scarce allowance every launch costs a share of the day's few calls whatever it carries:
   * a region's launch waits until it fills a wave (hostsInParallel ready targets) or its oldest
   * ready target has been due HOLD_WHEN_SCARCE_MS, so the calls buy full scans.
   */
  private async holding(region: string): Promise<boolean> {
    const { budget, store, clock } = this.core;
    if (!budget.scarce()) return false;
    const now = clock.now();
    const wave = hostsInParallel(this.core);
    const ready = await store.ready(region, now, wave);
    if (ready.length === 0 || ready.length >= wave) return false;
    // since it came due, not since it was last made ready: a launch refused, or a scan that failed,
    // sent its targets back with a later notBefore, and they waited their hold once already
    return Math.min(...ready.map((q) => q.dueSince)) > now - HOLD_WHEN_SCARCE_MS;
  }

  /**
   * May this target join a scan past maxTargetsPerScan? Only a settled one: its address is held on
   * a lease that runs at least a day past now (a server's reservation, a docked laptop's week-long
   * lease), so it will not change hands while a long scan works through the backlog. A region
   * runs its scans one after another, so splitting a backlog of such targets only adds a scan's
   * setup, pickup, last wave and processing per piece (a night's servers: one scan per region,
   * not thirty); transient ones (Wi-Fi, VPN) keep to short scans, where a changed address is
   * caught before the scan reaches it.
   */
  private settled(b: BindingView, now: number): boolean {
    return b.channel === 'dhcp' && b.expiresAt !== undefined && b.expiresAt - now >= SETTLED_LEASE_MS;
  }

  /**
   * Where a device's scans count against churn.ts: a DHCP lease's address (a client taking it under a
   * new MAC each time), a VPN session's user (one login reconnecting under a new machine name each
   * time: a new identity, never scanned, each time, wherever the pool puts it). Sessions forged under
   * a user's name can hold that user's scan; a forger of VPN lines can end the user's sessions
   * already. Undefined: not counted.
   */
  private churnPlace(b: BindingView): { key: string; what: string } | undefined {
    if (b.channel === 'dhcp') return { key: b.ip, what: `address ${b.ip}` };
    return b.user ? { key: `user:${b.user.toLowerCase()}`, what: `VPN user ${b.user}` } : undefined;
  }

  /** Until when (churn.ts) a device's scan waits, if it does. */
  private churnHold(b: BindingView, identityId: number, now: number): { until: number; devices: number; what: string; key: string } | undefined {
    const place = this.churnPlace(b);
    const held = place && this.churn.heldUntil(place.key, identityId, now);
    return held ? { ...held, ...place } : undefined;
  }

  /**
   * A device at an address (a VPN user) scanned for ADDRESS_DEVICES other devices within the hour
   * (churn.ts) waits in the queue until the oldest of those scans is an hour old: decided once per
   * hold, counted, and said once per address (user) while the hold lasts.
   */
  private async holdForChurn(q: QueueEntry, held: { until: number; devices: number; what: string; key: string }, now: number): Promise<void> {
    const { store, counters, log } = this.core;
    const until = new Date(held.until).toISOString();
    await store.holdUntil(q.bindingId, held.until);
    counters.heldAddressChurn++;
    await store.decide({ at: now, ip: q.ip, identityId: q.identityId, decision: 'due', reason: `waits until ${until}: ${held.devices} other devices of ${held.what} were scanned within ${ADDRESS_WINDOW_MS / 60_000} min (${ADDRESS_DEVICES} at most)` });
    if ((this.saidChurn.get(held.key) ?? 0) >= held.until) return;
    if (this.saidChurn.size > 10_000) this.saidChurn.clear();
    this.saidChurn.set(held.key, held.until);
    log.warn({ ip: q.ip, devices: held.devices, until },
      `${held.what}: scans launched for ${held.devices} devices within ${ADDRESS_WINDOW_MS / 60_000} min (a client taking it under a new MAC or machine name each time?): the next device there waits until ${until}`);
  }

  /**
   * Build, re-check and launch one batch; false when nothing was launched. Transient targets take
   * at most one wave of the scan (`hostsInParallel`): they all start when the appliance picks the
   * scan up, so once it has, none of them can still be reached late, and a departure or a changed
   * address never cancels the scan with its hosts in flight (the cancels' killed host-scans were
   * most of onsight's wasted targets). Settled targets fill the rest.
   */
  private async launchBatch(r: SchedulerRegion, appliance: { name: string; why: string }): Promise<boolean> {
    const { clock, store, counters, policy } = this.core;
    let now = clock.now();
    const base = this.core.opts.maxTargetsPerScan, cap = Math.max(base, this.core.opts.maxTargetsPerLaunch);
    const candidates = await store.ready(r.name, now, cap > base ? cap + base : base * 2);
    if (candidates.length === 0) return false;
    await this.checkScannerDates(candidates);
    // (its host-list calls may have taken what the launch needed: calls kept for cancels, a scan's worth of pace)
    if (!this.core.budget.canLaunch()) return false;
    now = clock.now();
    const id = newIntentId(now);
    const wave = hostsInParallel(this.core);
    let droppedAny = false;
    // re-checks and the intent in one transaction: no sighting committed in between can hand a
    // re-checked address to another device before the intent names it
    const targets = await store.atomically(async () => {
      const ok: (IntentTarget & { why: string; vpn: boolean; dueSince: number; ride?: Exclude<Ride, 'due'>; b: BindingView })[] = [];
      let transient = 0, vpn = 0;
      const vpnWave = Math.max(startingHostsInParallel(this.core), Math.floor(wave / 2));
      for (const q of candidates) {
        if (ok.length >= cap) break;
        const chk = await this.revalidate(q, now);
        // (after the re-check: an entry whose device has left the address is dropped, not held)
        const held = chk.ok ? this.churnHold(chk.b, q.identityId, now) : undefined;
        if (held) {
          await this.holdForChurn(q, held, now);
          continue;
        }
        if (chk.ok && !this.settled(chk.b, now) && (ok.length >= base || transient >= wave)) continue; // for the next short scan
        // a learned wave may be up to twice the truth (parallelism.ts): its targets past the true
        // wave start minutes after pickup. A VPN pool hands a freed address to the next user at
        // once, so VPN targets keep to what is surely the first wave: the configured one, or half
        // the learned one
        if (chk.ok && chk.b.channel === 'vpn') {
          if (vpn >= vpnWave) continue;
          vpn++;
        }
        if (chk.ok && !this.settled(chk.b, now)) transient++;
        if (chk.ok) ok.push({ ip: q.ip, identityId: q.identityId, bindingId: q.bindingId, dueSince: q.dueSince, vpn: chk.b.channel === 'vpn', b: chk.b, why: `${chk.v.detail}; in region ${r.name} by ${chk.v.regionCidr}` });
        else {
          await store.dequeue(q.bindingId);
          this.core.decide.recheck(q.bindingId, now);
          counters.dropped++;
          droppedAny = true;
          await store.decide({ at: now, ip: q.ip, identityId: q.identityId, decision: 'dropped', reason: chk.why });
        }
      }
      if (ok.length === 0) return ok;
      // second looks (second-look.ts), then while the allowance is scarce devices that come due soon
      // (ahead.ts), ride only in a scan launched for first scans, in the room its first wave
      // leaves: never a launch, a call or a hold on the region of their own (under slow or
      // heavy-tailed scans a scan of riders alone would hold the region while first scans wait)
      const { decide } = this.core;
      const riders: [Exclude<Ride, 'due'>, Waiting[], (id: number) => void][] = [
        ['look', decide.secondLooksIn(r.name), (id) => decide.secondLookGone(id)],
        ['ahead', this.core.budget.scarce() ? decide.aheadIn(r.name, now) : [], (id) => decide.aheadGone(id)],
      ];
      for (const [ride, waiting, gone] of riders) {
        for (const w of waiting) {
          if (ok.length >= Math.min(base, wave)) break;
          if (ok.some((t) => t.bindingId === w.bindingId) || (this.refusedRiders.get(w.bindingId)?.until ?? 0) > now) continue;
          const q: QueueEntry = { bindingId: w.bindingId, ip: w.ip, identityId: w.identityId, region: r.name, dueSince: now, lastSeen: w.lastSeen, attempts: 0, notBefore: 0 };
          const chk = await this.revalidate(q, now, ride);
          if (!chk.ok || chk.v.region !== r.name || !policy.allowed(q.ip)) {
            gone(w.bindingId);
            continue;
          }
          if (chk.b.channel === 'vpn' && vpn >= vpnWave) continue;
          if (this.churnHold(chk.b, q.identityId, now)) continue; // (churn.ts: it waits for the next scan's room)
          if (!(await store.enqueue(q))) continue; // in the queue already (due meanwhile): it goes as a queued target, not as a rider
          if (chk.b.channel === 'vpn') vpn++;
          gone(w.bindingId);
          ok.push({ ip: q.ip, identityId: q.identityId, bindingId: q.bindingId, dueSince: now, ride, vpn: chk.b.channel === 'vpn', b: chk.b, why: `${chk.v.detail}; in region ${r.name} by ${chk.v.regionCidr}` });
        }
      }
      // VPN pools hand a freed address to the next user at once: their targets go first, into the
      // scan's first wave, so the window in which the address can change hands is the shortest
      ok.sort((a, b) => Number(b.vpn) - Number(a.vpn));
      for (const t of ok) {
        if (!policy.allowed(t.ip)) throw new OnsightError('ONSIGHT_SCOPE_VIOLATION', `refusing to scan ${t.ip}: outside scope or excluded`);
      }
      await store.createIntent({ id, region: r.name, appliance: appliance.name, createdAt: now }, ok);
      return ok;
    });
    if (targets.length === 0) return droppedAny; // all dropped: look at the next ones
    let scanRef: string;
    try {
      const res = await this.core.budget.call('launch scan', 'launch', () => this.core.scanner.launch({
        // the profile: the region's when it names one (regions[].optionProfile), else the scanner's own configuration
        intentId: id, title: `${this.core.opts.titlePrefix} ${id} ${r.name}`, targets: targets.map((t) => t.ip), appliance: appliance.name,
        ...(r.optionProfile !== undefined ? { optionProfile: r.optionProfile } : {}),
      }));
      scanRef = res.scanRef;
    } catch (err) {
      counters.launchFailures++;
      const o = err instanceof FailedCall ? err.outcome : undefined;
      if (o?.launched === 'no' && o.refused?.length) {
        // refused for some targets by name: those back with back-off (given up after maxAttempts), the others again at once
        const at = clock.now();
        const refused = new Set(o.refused.map((ip) => canonicalIp(ip) ?? ip));
        const retried: number[] = [];
        if (this.refusedRiders.size > 10_000) this.refusedRiders.clear();
        for (const t of targets) {
          if (refused.has(t.ip) && (await this.core.results.droppedByScanner(id, t, undefined, at, retried))) counters.droppedByScanner++;
          // a refused rider goes back to wait for room, not into the next launch at once, where it would be refused again
          if (refused.has(t.ip) && t.ride) {
            const n = (this.refusedRiders.get(t.bindingId)?.n ?? 0) + 1;
            this.refusedRiders.set(t.bindingId, { until: at + Math.min(86_400_000, this.core.opts.retryBackoffS * 1000 * 2 ** (n - 1)), n });
          }
        }
        if (!(await store.endIntent(id, 'error', at, `${o.code}: ${o.message}`, { notBefore: at, countAttempt: false }))) transitionRefused(this.core, id, 'recording a refused launch (launching → error)');
        // a refused rider (back with back-off) leaves the queue again, as after any scan without a result
        else await this.core.decide.requeued([...retried, ...targets.filter((t) => !refused.has(t.ip)).map((t) => t.bindingId)]);
      } else if (o?.launched === 'no') {
        // certainly not launched: the targets go back to the queue; a wait or stop is no fault of theirs
        const at = clock.now();
        const attempts = Math.max(0, ...await Promise.all(targets.map(async (t) => (await store.queued(t.bindingId))?.attempts ?? 0)));
        const retry = o.next === 'retry'
          ? { notBefore: at + this.core.opts.retryBackoffS * 1000 * 2 ** attempts, countAttempt: true }
          : { notBefore: Math.max(at, o.untilMs ?? at), countAttempt: false };
        if (!(await store.endIntent(id, 'error', at, `${o.code}: ${o.message}`, retry))) transitionRefused(this.core, id, 'recording a failed launch (launching → error)');
        // riders (second looks, ahead of time) were queued only to ride: out of the queue again
        else await this.core.decide.requeued(targets.map((t) => t.bindingId));
      }
      // otherwise a scan may exist: the intent stays 'launching' and reconcile() settles it by its id
      return false;
    }
    const at = clock.now();
    if (!(await store.setRunning(id, scanRef, at))) {
      // the intent moved on while the call was out (a new leader abandoned it): its scan is the
      // new leader's to adopt or cancel (late.ts); nothing more is written here
      transitionRefused(this.core, id, `recording launched scan ${scanRef} (launching → running)`);
      return false;
    }
    this.core.follow.launched(id, targets.map((t) => t.ip));
    for (const t of targets) {
      const place = this.churnPlace(t.b);
      if (place) this.churn.launched(place.key, t.identityId, at);
    }
    for (const t of targets) this.core.results.rejoins.launched(t.b, at);
    counters.launches++;
    counters.targetsLaunched += targets.length;
    counters.scannedAhead += targets.filter((t) => t.ride === 'ahead').length;
    (counters.byRegion[r.name] ??= { launched: 0, finished: 0, failed: 0 }).launched++;
    (counters.byAppliance[appliance.name] ??= { launched: 0 }).launched++;
    for (const t of targets) await store.decide({ at, ip: t.ip, identityId: t.identityId, decision: 'launched', reason: `scan ${scanRef} on ${appliance.name} (${r.name})` });
    this.core.hooks.onLaunch?.({ intentId: id, scanRef, region: r.name, appliance: appliance.name, applianceWhy: appliance.why, targets: targets.map((t) => ({ ip: t.ip, why: t.why, dueSince: t.ride ? undefined : t.dueSince })) });
    return true;
  }
}
