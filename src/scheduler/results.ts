/**
 * Recording what scans did: a finished scan's targets are recorded scanned (or held until the
 * scanner's host list confirms it found them: verifyResults), a failed scan's targets go back to
 * the queue with back-off, a canceled scan's targets that were already scanned are credited.
 * Targets the scanner dropped from a scan (its own target list lacks them) are not recorded.
 * Owns when held results are next confirmed.
 */
import ipaddr from 'ipaddr.js';
import { canonicalIp } from '../util/ip.js';
import type { ScanStatus } from '../scanners/types.js';
import type { BindingView } from '../store/types.js';
import type { Intent, IntentTarget } from './queue.js';
import { foundInScan, transitionRefused, type SchedulerCore } from './core.js';
import { ProcessingLag } from './lag.js';
import { Rejoins } from './rejoin.js';

/** a transition refused inside a transaction: everything it recorded rolls back */
class Refused extends Error {}

export class Results {
  /** when the results of finished scans are next confirmed (0: look at start-up) */
  private verifyDueAt = 0;
  /** how long the scanner takes to date a finished scan's hosts */
  readonly lag = new ProcessingLag();
  private readonly lagSeen = new Set<string>();
  readonly rejoins = new Rejoins();

  constructor(private readonly core: SchedulerCore) {}

  async finishOk(i: Intent, st: ScanStatus): Promise<void> {
    const { clock, store, inventory, opts, counters } = this.core;
    const now = clock.now();
    const endedAt = localEnd(i, st, now);
    const scannedIds: number[] = [];
    const credits: { identityId: number; b: BindingView; whole: boolean }[] = [];
    const held = new Set<number>();
    const reported = reportedTargets(st.targets);
    const targets = await store.targets(i.id);
    // one transaction: the intent's end (conditional: it must still be running, and in cluster mode
    // this node must hold the lease) and what it records stand or fall together
    let dropped = 0;
    const otherHolders: string[] = [];
    // targets the scanner left out, back in the queue to be tried again (decided again after the transaction)
    const retried: number[] = [];
    const ended = await store.atomically(async () => {
      for (const t of targets) {
        const b = await inventory.binding(t.bindingId);
        if (reported && !reported(t.ip)) {
          if (await this.droppedByScanner(i.id, t, st.scanRef, now, retried)) dropped++;
          continue;
        } else if (b && b.identityId === t.identityId && (b.endAt === undefined || b.endAt >= endedAt)) {
          // only a device that still held the address when the scan ended was surely the one scanned (one
          // that left earlier may have left mid-scan: a partial result, not one to skip its next scan for)
          if (opts.verifyResults) {
            held.add(t.bindingId); // recorded once the scanner confirms it found the host (verify())
            continue;
          }
          const { rejoined, whole } = this.rejoins.check(b, t.bindingId, endedAt);
          if (rejoined) {
            counters.rejoined++;
            await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'not-scanned', reason: `scan ${st.scanRef}: ${rejoined}` });
            continue;
          }
          scannedIds.push(t.identityId);
          credits.push({ identityId: t.identityId, b, whole });
          await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'scanned', reason: `scan ${st.scanRef} finished on ${i.appliance}` });
        } else {
          this.rejoins.forget(t.bindingId);
          // another device held the address while the scan ran: the scan may have probed it, a wrong host the cancels could not prevent (said and counted)
          const other = await inventory.heldByAnotherAt(t.ip, i.launchedAt ?? i.createdAt, t.identityId, endedAt);
          if (other) otherHolders.push(t.ip);
          await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'not-scanned', reason: `left the address before scan ${st.scanRef} ended${other ? '; another device held it during the scan, which may have probed that device (wrong host)' : ''}` });
        }
      }
      await inventory.markScanned(scannedIds, endedAt, opts.scannedVia);
      const ok = held.size ? await store.finishKeeping(i.id, now, held) : await store.endIntent(i.id, 'finished', now, null);
      if (!ok) throw new Refused();
    }).then(() => true, (err: unknown) => {
      if (err instanceof Refused) return false;
      throw err;
    });
    if (!ended) return transitionRefused(this.core, i.id, `recording finished scan ${st.scanRef} (running → finished)`);
    for (const c of credits) await this.core.decide.credited(c.identityId, endedAt, c.b, c.whole);
    counters.droppedByScanner += dropped;
    await this.core.decide.requeued(retried); // a rider the scanner left out leaves the queue again
    if (otherHolders.length) {
      counters.otherHolder += otherHolders.length;
      this.core.log.warn({ intent: i.id, scanRef: st.scanRef, appliance: i.appliance, targets: otherHolders },
        `scan ${st.scanRef}: ${otherHolders.join(', ')} changed hands while the scan ran: it may have probed another device (wrong host); not recorded as scanned`);
    }
    for (const t of targets) if (!held.has(t.bindingId) && (!reported || reported(t.ip))) this.core.decide.recheck(t.bindingId, now); // out of the queue: the next sweep decides again
    await this.core.follow.ended(i, endedAt);
    if (held.size) this.verifyDueAt = Math.min(this.verifyDueAt, now + this.confirmDelayMs());
    counters.finished++;
    (counters.byRegion[i.region] ??= { launched: 0, finished: 0, failed: 0 }).finished++;
    const total = targets.length;
    this.core.log.info({ intent: i.id, scanRef: st.scanRef, appliance: i.appliance, region: i.region, scanned: scannedIds.length, awaitingHostList: held.size, targets: total },
      `scan ${st.scanRef} finished on ${i.appliance}: ${scannedIds.length} of ${total} target(s) recorded scanned${held.size ? `, ${held.size} to be confirmed by the host list` : ''}`);
    this.core.hooks.onScanEnd?.(i, { state: 'finished', endedAt, targets: total, scanned: scannedIds.length });
  }

  /**
   * The scanner left a target out of the scan it launched (outside its subscription, say): nothing
   * was scanned there. Not recorded as scanned; back to the queue as after a failed scan (with
   * back-off, given up after maxAttempts), and `onsight hosts` says why. True when recorded (count it);
   * a target back in the queue and not given up is added to `retried`.
   */
  async droppedByScanner(intentId: string, t: IntentTarget, scanRef: string | undefined, now: number, retried: number[]): Promise<boolean> {
    const { store, opts } = this.core;
    const q = await store.queued(t.bindingId);
    const backoff = opts.retryBackoffS * 1000 * 2 ** (q?.attempts ?? 0);
    const reason = scanRef !== undefined ? `scan ${scanRef} left ${t.ip} out of its target list (outside the scanner's subscription?); not scanned`
      : `the scanner refused to launch a scan of ${t.ip}: outside its subscription; not scanned`;
    await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'dropped-by-scanner', reason });
    if (!q) return true;
    if (!(await store.releaseTarget(t.bindingId, { notBefore: now + backoff, countAttempt: true }, intentId))) return false; // the intent's end is refused too
    if (q.attempts + 1 >= opts.maxAttempts) {
      await store.dequeue(t.bindingId);
      this.core.decide.recheck(t.bindingId, now + backoff);
      await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'failed', reason: `gave up after ${q.attempts + 1} scans that left it out` });
    } else retried.push(t.bindingId);
    return true;
  }

  /**
   * Did the scan we launched at `launchedAt` (our clock) find a host dated `date` (the scanner's
   * clock)? Our launch time put on the scanner's clock first (skew.ts): a node 15 min ahead found
   * every host of a scan shorter than that "not found".
   */
  private found(date: number | undefined, launchedAt: number): boolean {
    return foundInScan(date, launchedAt - this.core.scannerClock.aheadMs());
  }

  /**
   * Confirm finished scans' targets with the scanner's last-scan dates (one call for many scans):
   * a target whose address the scanner scanned in that scan is recorded scanned; one it found no
   * host at is not, and its device is not due again until it is seen again (a renewal, a new
   * lease), so an address a laptop left without a release is not probed scan after scan.
   */
  async verify(): Promise<void> {
    const { clock, store, inventory, budget, counters } = this.core;
    const now = clock.now();
    if (now < this.verifyDueAt) return;
    const rows = await store.awaitingVerification(1000);
    if (rows.length === 0) {
      this.verifyDueAt = Infinity;
      return;
    }
    if (!budget.canSpend(false)) return;
    const dates = await this.scanDates('host list (verify results)', rows.map((r) => r.ip));
    if (!dates) {
      this.verifyDueAt = now + this.core.opts.pollIntervalS * 1000;
      return;
    }
    const at = clock.now();
    // a scan none of whose targets is dated yet may simply not be processed: its undated targets
    // wait (up to processingWaitS) instead of being judged "no host"
    const processed = new Set(rows.filter((r) => this.found(dates.get(r.ip), r.launchedAt)).map((r) => r.scanRef));
    for (const r of rows) {
      if (processed.has(r.scanRef) && !this.lagSeen.has(r.scanRef)) {
        this.lagSeen.add(r.scanRef);
        this.lag.add(at - r.endedAt);
      }
    }
    if (this.lagSeen.size > 10_000) this.lagSeen.clear();
    const waitMs = this.lag.waitMs(this.core.opts.processingWaitS);
    let waiting = false;
    for (const r of rows) {
      const found = this.found(dates.get(r.ip), r.launchedAt);
      if (!found && !processed.has(r.scanRef) && at - r.endedAt < waitMs) {
        waiting = true;
        continue;
      }
      // the address is this device's result only if no other device held it while the scan ran
      if (found && await inventory.heldByAnotherAt(r.ip, r.launchedAt, r.identityId, r.endedAt)) {
        // a wrong host the cancels could not prevent (the change reached us late, or after the probe began): said and counted
        counters.otherHolder++;
        this.core.log.warn({ scanRef: r.scanRef, ip: r.ip, identityId: r.identityId, appliance: r.appliance },
          `scan ${r.scanRef}: ${r.ip} changed hands while the scan ran and the scanner found a host there: it may have probed another device (wrong host); not recorded as scanned`);
        await store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'not-scanned', reason: `scan ${r.scanRef}: ${r.ip} changed hands while it ran; the result is not this device's (it may have probed the other device)` });
      } else if (found) {
        const b = await inventory.binding(r.bindingId);
        const { rejoined, whole } = this.rejoins.check(b, r.bindingId, r.endedAt);
        if (rejoined) {
          // not credited (the scan may have lost it mid-way), but found: its no-host count ends
          if (b) this.core.decide.hostFound(b.id);
          counters.rejoined++;
          await store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'not-scanned', reason: `scan ${r.scanRef}: ${rejoined}` });
        } else {
          await inventory.markScanned([r.identityId], r.endedAt, 'onsight');
          await this.core.decide.credited(r.identityId, r.endedAt, b, whole);
          await store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'scanned', reason: `scan ${r.scanRef} finished on ${r.appliance}; the scanner reports the host scanned` });
        }
      } else {
        const b = await inventory.binding(r.bindingId);
        if (b) this.core.decide.silence(b.id, b.lastSeen);
        counters.noHost++;
        await store.decide({ at, ip: r.ip, identityId: r.identityId, decision: 'not-scanned', reason: `scan ${r.scanRef} found no host at ${r.ip} (the device left without a release?)` });
      }
      await store.dequeue(r.bindingId);
      this.core.decide.recheck(r.bindingId, at);
    }
    this.verifyDueAt = waiting ? at + this.confirmDelayMs() : rows.length === 1000 ? at : Infinity;
  }

  /**
   * How long after a scan ends (or a read found scans unprocessed) the host list is read:
   * verifyDelayS, so that one call confirms many scans; three times that with a scarce allowance.
   * (Not the learned lag: it is measured at these reads, so timing them by it would feed on itself.)
   */
  private confirmDelayMs(): number {
    return this.core.opts.verifyDelayS * 1000 * (this.core.budget.scarce() ? 3 : 1);
  }

  async finishFailed(i: Intent, state: 'error' | 'canceled', why: string): Promise<void> {
    const { clock, store, opts, counters } = this.core;
    const now = clock.now();
    const targets = await store.targets(i.id);
    const attempts = Math.max(0, ...await Promise.all(targets.map(async (t) => (await store.queued(t.bindingId))?.attempts ?? 0)));
    const backoff = opts.retryBackoffS * 1000 * 2 ** attempts;
    if (!(await store.endIntent(i.id, state, now, why, { notBefore: now + backoff, countAttempt: true }))) return transitionRefused(this.core, i.id, `recording it ${state} (${why})`);
    const retried: number[] = [];
    for (const t of targets) {
      const q = await store.queued(t.bindingId);
      if (!q) continue;
      if (q.attempts < opts.maxAttempts) retried.push(t.bindingId);
      else {
        await store.dequeue(t.bindingId);
        this.core.decide.recheck(t.bindingId, now + backoff);
        await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'failed', reason: `gave up after ${q.attempts} failed scans (${why})` });
      }
    }
    await this.core.decide.requeued(retried); // not those given up: deciding them now would queue them again
    counters.failed++;
    (counters.byRegion[i.region] ??= { launched: 0, finished: 0, failed: 0 }).failed++;
    this.core.log.warn({ intent: i.id, scanRef: i.scanRef, state }, `scan ${why}; targets requeued with backoff`);
    this.core.hooks.onScanEnd?.(i, { state, endedAt: now, targets: targets.length, scanned: 0, why });
  }

  /** Targets a canceled (or given-up) scan had already scanned (by the scanner's host list) are recorded, not relaunched. */
  async creditPartial(i: Intent, targets: IntentTarget[], ended: 'canceled' | 'given up' = 'canceled'): Promise<void> {
    const { store, inventory } = this.core;
    if (!this.core.opts.verifyResults || !this.core.budget.canSpend(false)) return;
    const launchedAt = i.launchedAt ?? i.createdAt;
    const dates = await this.scanDates(`host list (${ended} scan)`, targets.map((t) => t.ip));
    if (!dates) return;
    const now = this.core.clock.now();
    for (const t of targets) {
      if (!this.found(dates.get(t.ip), launchedAt) || await inventory.heldByAnotherAt(t.ip, launchedAt, t.identityId, now)) continue;
      const b = await inventory.binding(t.bindingId);
      if (!b || b.identityId !== t.identityId || b.endAt !== undefined) continue;
      await inventory.markScanned([t.identityId], now, 'onsight');
      await this.core.decide.credited(t.identityId, now, b, false);
      await store.dequeue(t.bindingId);
      this.core.decide.recheck(t.bindingId, now);
      await store.decide({ at: now, ip: t.ip, identityId: t.identityId, decision: 'scanned', reason: `scanned before scan ${i.scanRef} was ${ended} (the scanner's host list)` });
    }
  }

  /** The scanner's last-scan date per address (a call per batch); undefined when the calls cannot be made now or failed. */
  private async scanDates(what: string, ips: string[]): Promise<Map<string, number> | undefined> {
    try {
      const list = await this.core.budget.hostList(what, ips);
      return list && new Map(list.filter((d) => d.lastScannedAt).map((d) => [d.ip, Date.parse(d.lastScannedAt!)]));
    } catch {
      return undefined;
    }
  }
}

/**
 * A test for "is this address in the scan's own target list" (addresses and IPv4 ranges `a-b`, as
 * a scanner may compact them); undefined when the scanner reported no list or one we cannot read
 * (then nothing is taken as dropped).
 */
export function reportedTargets(list: string[] | undefined): ((ip: string) => boolean) | undefined {
  if (!list || list.length === 0) return undefined;
  const single = new Set<string>();
  const ranges: [number, number][] = [];
  for (const entry of list) {
    const dash = entry.indexOf('-');
    if (dash < 0) {
      const ip = canonicalIp(entry);
      if (!ip) return undefined;
      single.add(ip);
      continue;
    }
    const a = canonicalIp(entry.slice(0, dash).trim()), b = canonicalIp(entry.slice(dash + 1).trim());
    if (!a || !b || a.includes(':') || b.includes(':')) return undefined;
    ranges.push([v4(a), v4(b)]);
  }
  return (ip) => {
    if (single.has(ip)) return true;
    if (ip.includes(':') || ranges.length === 0) return false;
    const n = v4(ip);
    return ranges.some(([lo, hi]) => n >= lo && n <= hi);
  };
}

function v4(ip: string): number {
  return ipaddr.IPv4.parse(ip).toByteArray().reduce((n, o) => n * 256 + o, 0);
}

/**
 * When a scan ended, on our clock. One clock per question: the scanner's clock may be off from
 * ours, so its end time is never compared with ours; its launch-to-end span (both on its clock) is
 * laid from our own launch time, and never past now. Without both times: when we saw it end.
 */
export function localEnd(i: Intent, st: ScanStatus, now: number): number {
  const end = st.endedAt ? Date.parse(st.endedAt) : NaN;
  const start = st.launchedAt ? Date.parse(st.launchedAt) : NaN;
  if (i.launchedAt === undefined || !(end >= start)) return now;
  return Math.min(now, i.launchedAt + (end - start));
}
