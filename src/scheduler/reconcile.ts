/**
 * Reconciling launches whose outcome we do not know. Owns whether the start-up look has been made.
 */
import type { ScanStatus } from '../scanners/types.js';
import type { SchedulerCore } from './core.js';

export class Reconciler {
  private startupReconciled = false;

  constructor(private readonly core: SchedulerCore) {}

  /**
   * Intents recorded but never confirmed (the daemon died mid-launch, or the launch failed with
   * outcome `launched: unknown`): look for a scan whose title carries the intent id. Found: adopt
   * it. Not found once the grace period is over (a launch request still in flight on the scanner's
   * side could yet create it): the launch never happened, so the targets go back to the queue.
   * Nothing launches twice. The list is read once at start-up and then only when an intent's grace
   * has run out.
   */
  async reconcile(): Promise<void> {
    const { clock, store, counters, log, budget } = this.core;
    const now = clock.now();
    const grace = this.core.opts.reconcileGraceS * 1000;
    const pending = (await store.activeIntents()).filter((i) => i.state === 'launching');
    const ripe = pending.filter((i) => now - i.createdAt >= grace);
    if (pending.length === 0 || (this.startupReconciled && ripe.length === 0)) {
      this.startupReconciled = true;
      return;
    }
    if (!budget.canSpend(true)) return;
    const since = Math.min(...pending.map((i) => i.createdAt)) - 10 * 60_000;
    let scans: ScanStatus[];
    try {
      scans = await budget.call('list scans (reconcile)', 'listScans', () => this.core.scanner.listScans({ launchedAfter: new Date(since) }));
    } catch {
      return;
    }
    this.startupReconciled = true;
    for (const i of pending) {
      const found = scans.find((s) => s.title.includes(i.id));
      if (found) {
        await store.setRunning(i.id, found.scanRef, found.launchedAt ? Date.parse(found.launchedAt) : now);
        counters.reconciled++;
        log.info({ intent: i.id, scanRef: found.scanRef }, 'reconciled an unconfirmed launch: the scan exists, adopted it');
      } else if (now - i.createdAt >= grace) {
        await store.endIntent(i.id, 'abandoned', now, 'launch not confirmed and no scan carries this intent id', { notBefore: now, countAttempt: false });
        counters.abandoned++;
        log.info({ intent: i.id }, 'reconciled an unconfirmed launch: no such scan, targets requeued');
      }
    }
  }
}
