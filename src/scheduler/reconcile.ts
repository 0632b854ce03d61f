/**
 * Reconciling launches whose outcome we do not know. Owns whether the start-up look has been made
 * and when this term began.
 */
import type { ScanStatus } from '../scanners/types.js';
import type { Intent } from './queue.js';
import { hasOurPrefix, intentIdIn, launchedAfter, transitionRefused, type SchedulerCore } from './core.js';
import { LIST_RETRY_MS, RetryAfterFailure } from './retry.js';

export class Reconciler {
  private startupReconciled = false;
  /** after a failed list, when the next may go */
  private readonly listRetry = new RetryAfterFailure(LIST_RETRY_MS);
  /** when this scheduler began (cluster mode: when this node's term began) */
  private readonly startedAt: number;

  constructor(private readonly core: SchedulerCore) {
    this.startedAt = core.clock.now();
  }

  /**
   * When an unconfirmed launch may be given up. Our own: `reconcileGraceS` after it was recorded.
   * Another epoch's (cluster mode: the previous leader's, recorded on its clock): not before that
   * grace has also passed since this term began, so a launch request the old leader still had in
   * flight at the takeover can land and be adopted; one landing later still is a late launch
   * (late.ts cancels it).
   */
  private ripeAt(i: Intent): number {
    const grace = this.core.opts.reconcileGraceS * 1000;
    const epoch = this.core.store.epoch;
    const foreign = epoch !== undefined && i.epoch !== epoch;
    return (foreign ? Math.max(i.createdAt, this.startedAt) : i.createdAt) + grace;
  }

  /**
   * Intents recorded but never confirmed (the daemon died mid-launch, the launch failed with
   * outcome `launched: unknown`, or in cluster mode the previous leader lost its term mid-launch):
   * look for a scan whose title carries the intent id. Found: adopt it. Not found once the grace
   * period is over (a launch request still in flight on the scanner's side could yet create it):
   * the launch never happened, so the targets go back to the queue. Nothing launches twice. The
   * list is read once at start-up (each term's start in cluster mode) and then only when an
   * intent's grace has run out. Running intents of earlier epochs need nothing here: their scan
   * ref is recorded, and the poll follows them like our own.
   */
  async reconcile(): Promise<void> {
    const { clock, store, counters, log, budget } = this.core;
    const now = clock.now();
    const active = await store.activeIntents();
    const pending = active.filter((i) => i.state === 'launching');
    const ripe = pending.filter((i) => now >= this.ripeAt(i));
    if (!this.startupReconciled && store.epoch !== undefined) this.takingOver(active);
    // A single node looks at start-up (its pending intents are mostly ripe by then). A cluster's new
    // leader waits for the first pending intent to ripen (another term's ripen `reconcileGraceS` after
    // this one began): one list then adopts every scan that landed and gives up the rest, where a
    // look at the takeover as well cost a second list whenever the old leader's launch was still on
    // the wire (issue 17: at most 2 calls per failover, the session login and this list).
    if (pending.length === 0 || ((this.startupReconciled || store.epoch !== undefined) && ripe.length === 0)) {
      this.startupReconciled = true;
      return;
    }
    if (!budget.canSpend(true) || !this.listRetry.ready(now)) return;
    const since = Math.min(...pending.map((i) => i.createdAt - 10 * 60_000), this.core.late.enabled ? this.core.late.since() : Infinity);
    let scans: ScanStatus[];
    try {
      scans = await budget.call('list scans (reconcile)', 'listScans', () => this.core.scanner.listScans({ launchedAfter: launchedAfter(this.core, since) }));
    } catch {
      this.listRetry.failed(now);
      return;
    }
    this.listRetry.answered();
    this.startupReconciled = true;
    for (const i of pending) {
      // ours only: the title starts with our prefix (another deployment's scans are never adopted)
      const found = scans.find((s) => hasOurPrefix(s.title, this.core.opts.titlePrefix) && intentIdIn(s.title) === i.id);
      const foreign = store.epoch !== undefined && i.epoch !== store.epoch;
      if (found) {
        if (!(await store.setRunning(i.id, found.scanRef, found.launchedAt ? Date.parse(found.launchedAt) : now))) {
          transitionRefused(this.core, i.id, 'adopting its scan (launching → running)');
          continue;
        }
        counters.reconciled++;
        if (foreign) counters.adoptedAcrossEpochs++;
        log.info({ intent: i.id, scanRef: found.scanRef, intentEpoch: i.epoch, epoch: store.epoch },
          `reconciled an unconfirmed launch${foreign ? ` of epoch ${i.epoch ?? '(none)'}` : ''}: the scan exists, adopted it`);
      } else if (now >= this.ripeAt(i)) {
        if (!(await store.endIntent(i.id, 'abandoned', now, 'launch not confirmed and no scan carries this intent id', { notBefore: now, countAttempt: false }))) {
          transitionRefused(this.core, i.id, 'abandoning it (launching → abandoned)');
          continue;
        }
        counters.abandoned++;
        await this.core.decide.requeued((await store.targets(i.id)).map((t) => t.bindingId));
        log.info({ intent: i.id, intentEpoch: i.epoch, epoch: store.epoch }, `reconciled an unconfirmed launch${foreign ? ` of epoch ${i.epoch ?? '(none)'}` : ''}: no such scan, targets requeued`);
      }
    }
    // the list is by launch time: a deposed leader's late launch may be in it already
    await this.core.late.inspect(scans);
  }

  /** A new term: say what the previous leaders left in flight. */
  private takingOver(active: Intent[]): void {
    const foreign = active.filter((i) => i.epoch !== this.core.store.epoch);
    if (foreign.length === 0) return;
    const n = (s: string) => foreign.filter((i) => i.state === s).length;
    this.core.log.info({ epoch: this.core.store.epoch, epochs: [...new Set(foreign.map((i) => i.epoch ?? null))] },
      `epoch ${this.core.store.epoch}: taking over ${n('launching')} unconfirmed and ${n('running')} running scan intent(s) of earlier epochs (matched by the intent id in the scan title)`);
  }
}
