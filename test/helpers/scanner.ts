/**
 * A scanner for scheduler tests, and a backend like any other (the contract suite runs it): it
 * records every call and lets the test decide appliance status, scan outcomes and failures. Its
 * failures are its own (ScannerFailure with the outcome they mean), not any vendor's codes.
 * (End-to-end tests use the Qualys emulator over real HTTP instead.)
 */
import type { Allowance, ApplianceStatus, FailureOutcome, LastScanned, LaunchRequest, RangeLaunch, RangeSchedule, Scanner, ScannerCall, ScanFilter, ScanState, ScanStatus, ScheduleStatus } from '../../src/scanners/types.js';
import { cancelRefused, ScannerFailure, ScheduleSyncIncomplete, statedOutcome } from '../../src/scanners/failure.js';
import { planScheduleSync } from '../../src/scanners/schedule-plan.js';

/**
 * How the next launch fails: `refused` (the scanner said no: nothing launched, retry later),
 * `lost-answer` (the scan was created but the answer never came: launched unknown), `rate-limited`
 * (nothing launched; no call before `waitUntil`), `api-limited` (the same, for calls of this kind only:
 * a vendor's per-API limit), `denied` (nothing launched; only an operator can fix it).
 */
export type ScriptedFailure = 'refused' | 'lost-answer' | 'rate-limited' | 'api-limited' | 'denied';

/** A launch refused for these targets by name: nothing launched, the others may go again at once. */
class TargetsRefused extends ScannerFailure {
  constructor(readonly targets: string[]) {
    super('ONSIGHT_SCANNER_REFUSED', `scripted: refused for ${targets.join(', ')}`, 'no', 'retry');
  }
}

/** A wait asked by one API's own limit: it holds back calls of that kind only. */
class OwnApiLimited extends ScannerFailure {
  constructor(untilMs: number) {
    super('ONSIGHT_SCANNER_RATE_LIMIT', 'scripted: this API\'s own limit', 'no', 'wait', untilMs);
  }
}

export class ScriptedScanner implements Scanner {
  readonly kind = 'scripted';
  launches: (LaunchRequest & { ref: string })[] = [];
  states = new Map<string, ScanState>();
  /** a scan's own target list as the scanner reports it, when it differs from what was sent */
  reportedTargets = new Map<string, string[]>();
  appliancesState: ApplianceStatus[] = [];
  lastScannedDates = new Map<string, string>();
  /** launch and end times a scan's status reports, on the scanner's own clock (ISO), when a test sets them */
  times = new Map<string, { launchedAt?: string; endedAt?: string }>();
  calls: string[] = [];
  /** the API limit the scanner states (as Qualys's X-RateLimit-Limit / -Window-Sec / -Remaining headers), when a test sets one */
  limit?: { limit: number; windowSec: number; remaining?: number };
  /** the client's hard cap on one launch's targets, when a test sets one */
  maxTargetsPerLaunch?: number;
  failNext?: ScriptedFailure;
  /** runs as a cancel reaches the scanner (a scan that ends between the poll and the cancel, say) */
  beforeCancel?: (ref: string) => void;
  /** the next launch naming any of these is refused for them by name (as Qualys refuses addresses outside the subscription) */
  refuseNext?: string[];
  /** for `rate-limited`: when the scanner lets us call again (epoch ms) */
  waitUntil = 0;
  /** make every call of this kind fail with this failure (until cleared) */
  failing = new Map<ScannerCall, ScriptedFailure>();
  private seq = 0;

  private fail(how: ScriptedFailure): never {
    switch (how) {
      case 'refused': throw new ScannerFailure('ONSIGHT_SCANNER_REFUSED', 'scripted: refused', 'no', 'retry');
      case 'lost-answer': throw new ScannerFailure('ONSIGHT_SCANNER_UNREACHABLE', 'scripted: answer lost', 'unknown', 'retry');
      case 'rate-limited': throw new ScannerFailure('ONSIGHT_SCANNER_RATE_LIMIT', 'scripted: rate limited', 'no', 'wait', this.waitUntil);
      case 'api-limited': throw new OwnApiLimited(this.waitUntil);
      case 'denied': throw new ScannerFailure('ONSIGHT_SCANNER_DENIED', 'scripted: account disabled', 'no', 'stop');
    }
  }

  private check(call: ScannerCall): void {
    const f = this.failing.get(call);
    if (f) this.fail(f);
  }

  async launch(req: LaunchRequest) {
    this.calls.push('launch');
    this.check('launch');
    const named = this.refuseNext?.filter((ip) => req.targets.includes(ip)) ?? [];
    if (named.length) {
      this.refuseNext = undefined;
      throw new TargetsRefused(named);
    }
    const ref = `scan/${++this.seq}`;
    const how = this.failNext;
    if (how && how !== 'lost-answer') {
      this.failNext = undefined;
      this.fail(how);
    }
    this.launches.push({ ...req, ref });
    this.states.set(ref, 'running');
    if (how === 'lost-answer') {
      this.failNext = undefined;
      this.fail(how);
    }
    return { scanRef: ref };
  }

  async listScans(f: ScanFilter): Promise<ScanStatus[]> {
    this.calls.push('list');
    this.check('listScans');
    return this.launches
      .filter((l) => !f.scanRefs || f.scanRefs.includes(l.ref))
      .map((l) => ({
        scanRef: l.ref, title: l.title, state: this.states.get(l.ref)!, targets: this.reportedTargets.get(l.ref) ?? l.targets, appliance: l.appliance, ...this.times.get(l.ref),
        ...(this.typeUnsaid ? {} : { scheduled: this.scheduledRefs.has(l.ref) }),
      }))
      .filter((s) => !f.states || f.states.includes(s.state));
  }

  async cancel(ref: string) {
    this.calls.push('cancel');
    this.check('cancel');
    this.beforeCancel?.(ref);
    // as every backend: a scan canceled already is done, an ended one is not canceled
    const now = this.states.get(ref);
    if (now === 'canceled') return;
    if (now === 'finished' || now === 'error') cancelRefused(ref, now, undefined);
    this.states.set(ref, 'canceled');
  }

  async appliances(): Promise<ApplianceStatus[]> {
    this.calls.push('appliances');
    this.check('appliances');
    return this.appliancesState.map((a) => ({ ...a }));
  }

  async lastScanned(ips: string[]): Promise<LastScanned[]> {
    this.calls.push('lastScanned');
    this.check('lastScanned');
    return ips.map((ip) => ({ ip, lastScannedAt: this.lastScannedDates.get(ip) }));
  }

  allowance(): Allowance {
    return this.limit ? { waitSec: 0, ...this.limit } : { waitSec: 0 };
  }

  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
    if (err instanceof OwnApiLimited) return { ...statedOutcome(err, call), holds: 'call' };
    if (err instanceof TargetsRefused) return { ...statedOutcome(err, call), refused: err.targets };
    return statedOutcome(err, call);
  }

  async close() {}

  /** the option profiles' facts, once a test states them (stateProfile): absent, the scanner states none, as most do */
  scanProfiles?: (names: (string | undefined)[]) => Promise<(ScanProfileFacts | undefined)[]>;
  /** the names the scheduler last asked about */
  profileNames: (string | undefined)[] = [];
  /**
   * From now on the scanner states these facts of its option profile (undefined: not listed), or
   * per name (its own: the key ''); a call each read.
   */
  stateProfile(facts: ScanProfileFacts | undefined | Record<string, ScanProfileFacts | undefined>): void {
    const byName = (n: string | undefined) => (facts !== undefined && !('title' in facts) ? (facts as Record<string, ScanProfileFacts | undefined>)[n ?? ''] : facts as ScanProfileFacts | undefined);
    this.scanProfiles = async (names) => {
      this.calls.push('scanProfiles');
      this.check('scanProfiles');
      this.profileNames = [...names];
      return names.map((n) => {
        const f = byName(n);
        return f && { ...f };
      });
    };
  }

  finish(ref: string, state: ScanState = 'finished') {
    this.states.set(ref, state);
  }

  /** the platform's scheduled scans (syncSchedules keeps ours; a test may add others') */
  schedules: ScheduleStatus[] = [];

  /**
   * a sync fails once it has made this many changes and has more to make: `refused` (the next
   * change not made), or `lost-answer` (the next change made, its answer lost)
   */
  schedulesFailAfter?: number;
  schedulesFailHow: 'refused' | 'lost-answer' = 'refused';

  async syncSchedules(want: RangeSchedule[], prefix: string, exact = false): Promise<ScheduleStatus[]> {
    this.calls.push('listSchedules');
    this.check('syncSchedules');
    const out: ScheduleStatus[] = [];
    let changes = 0;
    for (const step of planScheduleSync(this.schedules.filter((h) => !exact || h.title === prefix), want, prefix)) {
      if (step.action !== 'kept' && this.schedulesFailAfter !== undefined && changes++ >= this.schedulesFailAfter) {
        // (as the Qualys client: what was made goes with the failure, and what may have been)
        const calls = out.filter((s) => s.action !== 'kept').length + 1;
        if (this.schedulesFailHow === 'refused') throw new ScheduleSyncIncomplete(new ScannerFailure('ONSIGHT_SCANNER_REFUSED', 'scripted: refused', 'no', 'retry'), out, [], calls);
        const title = step.action === 'created' ? step.want.title : step.have.title;
        if (step.action === 'created') this.schedules.push({ ...step.want, id: `sched-${++this.seq}`, active: step.want.active !== false, action: 'created' });
        throw new ScheduleSyncIncomplete(new ScannerFailure('ONSIGHT_SCANNER_UNREACHABLE', 'scripted: answer lost', 'unknown', 'retry'), out, [title], calls);
      }
      if (step.action === 'kept') out.push({ ...step.have, action: 'kept' });
      else if (step.action === 'deleted') {
        this.calls.push('deleteSchedule');
        this.schedules.splice(this.schedules.indexOf(step.have), 1);
        out.push({ ...step.have, action: 'deleted' });
      } else if (step.action === 'updated') {
        this.calls.push('updateSchedule');
        delete step.have.endAfterMin;
        Object.assign(step.have, step.want, { active: step.want.active !== false, action: 'updated' });
        out.push({ ...step.have });
      } else {
        this.calls.push('createSchedule');
        const s: ScheduleStatus = { ...step.want, id: `sched-${++this.seq}`, active: step.want.active !== false, action: 'created' };
        this.schedules.push(s);
        out.push({ ...s });
      }
    }
    return out;
  }

  /** range scans launched by API (launchRanges), also listed as scans */
  rangeLaunches: (RangeLaunch & { ref: string })[] = [];

  async launchRanges(req: RangeLaunch) {
    this.calls.push('launchRanges');
    this.check('launch');
    const ref = `scan/${++this.seq}`;
    this.rangeLaunches.push({ ...req, ref });
    this.launches.push({ intentId: '', title: req.title, targets: req.targets, appliance: req.appliance, ref });
    this.states.set(ref, 'running');
    return { scanRef: ref };
  }

  /** runs launched by the platform's schedules (the list says `scheduled`, unless `typeUnsaid`: a scanner that does not say) */
  scheduledRefs = new Set<string>();
  typeUnsaid = false;

  /** The platform launches a schedule's run (no API call): a scan titled as the schedule, running. */
  runSchedule(title: string, launchedAt: number): string {
    const s = this.schedules.find((x) => x.title === title)!;
    const ref = `scan/${++this.seq}`;
    this.scheduledRefs.add(ref);
    this.launches.push({ intentId: '', title, targets: s.targets, appliance: s.appliance, ref });
    this.states.set(ref, 'running');
    this.times.set(ref, { launchedAt: new Date(launchedAt).toISOString() });
    return ref;
  }
}
