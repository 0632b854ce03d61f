/**
 * Late launches (cluster mode; design memo §3.6): a deposed leader frozen between its transport
 * guard and the socket write (SIGSTOP, a VM pause) sends its launch when it resumes, after the new
 * leader has abandoned that intent and relaunched its targets. Every scan list the scheduler reads
 * by launch time (reconcile, poll, and a watch: every poll interval for an hour after a launch was
 * given up or another term's adopted, else at the idle poll's pace) is searched for scans
 * of ours (the title starts with our prefix) that must not run: their intent ended (it is not the
 * intent's own scan), a second scan for a running intent, or an intent we do not know whose
 * targets an active intent of ours already scans. Each is canceled, counted, logged and decided.
 * A scan without our prefix is another deployment's and is never touched. Owns which scans it
 * canceled, which are their intent's own, and when the list was last looked through.
 */
import { TERMINAL_STATES, type ScanStatus } from '../scanners/types.js';
import type { Intent } from './queue.js';
import { hasOurPrefix, intentIdIn, launchedAfter, type SchedulerCore } from './core.js';
import { reportedTargets } from './results.js';

/** a scan's launch date is the scanner's clock: lists reach this far before the last one looked at */
const SLACK_MS = 10 * 60_000;
/**
 * How long after a launch was given up unconfirmed (abandoned), or another term's launch adopted,
 * the list is read every poll interval: the launch that a paused or deposed leader (or a slow
 * scanner) still had on the wire lands in this window, if ever. Outside it the list is read at the
 * idle poll's pace only (a backstop: default once an hour instead of 1,440 calls a day).
 */
const EXPOSURE_MS = 3600_000;

export class LateLaunches {
  /** when a list by launch time was last looked through (0: not yet this term) */
  private lastListAt = 0;
  /** no exposure found: not looked up again before this */
  private quietUntil = 0;
  private readonly startedAt: number;
  /** scans canceled already (a canceled scan stays listed for a while) */
  private readonly canceled = new Set<string>();
  /** scans found to be their intent's own (never late later): not looked up again */
  private readonly own = new Set<string>();
  /** unknown intents of ours already reported (once each) */
  private readonly orphans = new Set<string>();

  constructor(private readonly core: SchedulerCore) {
    this.startedAt = core.clock.now();
  }

  get enabled(): boolean {
    return this.core.store.epoch !== undefined;
  }

  since(): number {
    // the first list of a term reaches back over the previous leader's last launches
    return (this.lastListAt || this.startedAt - this.core.opts.reconcileGraceS * 1000) - SLACK_MS;
  }

  /**
   * The scan list was not read for a poll interval (nothing running to poll): read it for late
   * launches while a launch given up or adopted lately may still have a duplicate on the wire
   * (EXPOSURE_MS), else only at the idle poll's pace.
   */
  async watch(): Promise<void> {
    const { clock, opts, budget } = this.core;
    if (!this.enabled) return;
    const now = clock.now();
    const scarce = budget.scarce() ? 6 : 1;
    const every = opts.pollIntervalS * 1000 * scarce;
    if (now - this.lastListAt < every || now < this.quietUntil || !budget.canSpend(false)) return;
    const idle = (opts.idlePollS ?? 60 * opts.pollIntervalS) * 1000 * scarce;
    if (now - (this.lastListAt || this.startedAt) < idle && !(await this.exposed(now))) {
      this.quietUntil = now + every; // the exposure is looked up (in the store) once a poll interval
      return;
    }
    let scans: ScanStatus[];
    try {
      scans = await budget.call('list scans (late launches)', 'listScans', () => this.core.scanner.listScans({ launchedAfter: launchedAfter(this.core, this.since()) }));
    } catch {
      return;
    }
    await this.inspect(scans);
  }

  /** A launch given up unconfirmed, or another term's adopted, within EXPOSURE_MS. */
  private async exposed(now: number): Promise<boolean> {
    const since = now - EXPOSURE_MS, epoch = this.core.store.epoch;
    return (await this.core.store.recentIntents(200)).some((i) => (i.state === 'abandoned' && (i.endedAt ?? now) >= since)
      || (i.epoch !== epoch && i.state === 'running' && (i.launchedAt ?? i.createdAt) >= since));
  }

  async inspect(scans: ScanStatus[]): Promise<void> {
    if (!this.enabled) return;
    const { store, opts } = this.core;
    this.lastListAt = this.core.clock.now();
    let active: Map<string, Intent> | undefined; // target address → active intent
    for (const s of scans) {
      if (TERMINAL_STATES.has(s.state) || this.canceled.has(s.scanRef) || this.own.has(s.scanRef) || !hasOurPrefix(s.title, opts.titlePrefix)) continue;
      const id = intentIdIn(s.title);
      if (!id) continue;
      const i = await store.intent(id);
      let why: string | undefined;
      if (i?.scanRef === s.scanRef) {
        if (this.own.size > 10_000) this.own.clear();
        this.own.add(s.scanRef);
        continue;
      }
      if (i?.state === 'launching') continue; // reconcile's to adopt
      if (i?.state === 'running') why = `a second scan for intent ${id}, whose scan is ${i.scanRef}`;
      else if (i) why = `its intent ${id}${i.epoch !== undefined ? ` (epoch ${i.epoch})` : ''} ended ${i.state}${i.error ? ` (${i.error})` : ''} before the launch reached the scanner`;
      else {
        active ??= await this.activeTargets();
        const inScan = reportedTargets(s.targets);
        const dup = inScan && [...active.keys()].find((ip) => inScan(ip));
        if (dup) why = `intent ${id} is unknown here and target ${dup} is in scan ${active.get(dup)!.scanRef ?? active.get(dup)!.id} already`;
        else if (!this.orphans.has(id)) {
          if (this.orphans.size > 10_000) this.orphans.clear();
          this.orphans.add(id);
          this.core.log.warn({ scanRef: s.scanRef, intent: id }, `scan ${s.scanRef} carries our prefix "${opts.titlePrefix}" but no intent ${id} is recorded, and it duplicates none of ours: left alone`);
        }
      }
      if (why) await this.cancel(s, i, why);
    }
  }

  private async activeTargets(): Promise<Map<string, Intent>> {
    const out = new Map<string, Intent>();
    for (const i of await this.core.store.activeIntents()) for (const t of await this.core.store.targets(i.id)) out.set(t.ip, i);
    return out;
  }

  private async cancel(s: ScanStatus, i: Intent | undefined, why: string): Promise<void> {
    const { budget, store, counters, clock, log } = this.core;
    if (!budget.canSpend(true)) return; // the next list finds it again
    try {
      await budget.call('cancel scan (late launch)', 'cancel', () => this.core.scanner.cancel(s.scanRef));
    } catch {
      return;
    }
    if (this.canceled.size > 10_000) this.canceled.clear();
    this.canceled.add(s.scanRef);
    counters.lateLaunchesCanceled++;
    const at = clock.now();
    const reason = `late launch canceled: scan ${s.scanRef} ${why}`;
    log.warn({ scanRef: s.scanRef, intent: i?.id, intentEpoch: i?.epoch, epoch: store.epoch, targets: s.targets }, reason);
    const targets = i ? await store.targets(i.id) : (s.targets ?? []).map((ip) => ({ ip, identityId: undefined }));
    for (const t of targets) await store.decide({ at, ip: t.ip, identityId: t.identityId, decision: 'canceled', reason });
  }
}
