/**
 * The dry-run scanner: launches nothing, says what it would launch, and reports each pretend scan
 * finished after `scanDurationS`. The embedded default uses it so a newcomer sees decisions safely.
 */
import type {
  Allowance, ApplianceStatus, FailureOutcome, LastScanned, LaunchRequest, LaunchResult, RangeSchedule, Scanner, ScannerCall, ScanFilter, ScanStatus, ScheduleStatus,
} from '../types.js';
import { OnsightError } from '../../errors.js';
import { ScanEndedBeforeCancel, statedOutcome } from '../failure.js';

export interface DryRunOptions {
  appliances: string[];
  scanDurationS: number;
  now?: () => number;
  /** where the "would launch" (and "would keep scheduled scan") lines go; `req` for launches */
  print: (line: string, req?: LaunchRequest) => void;
}

interface PretendScan {
  ref: string;
  title: string;
  appliance: string;
  targets: string[];
  launchedAt: number;
  canceled: boolean;
}

/** the dry-run scanner's kind, which its pretend scans are recorded under (options.ts scannedVia) */
export const DRY_RUN_KIND = 'dry-run';

export class DryRunScanner implements Scanner {
  readonly kind = DRY_RUN_KIND;
  readonly pretend = true;
  /** its scans end scanDurationS after launch and calls cost nothing: follow them at that pace */
  readonly pollPaceS: number;
  private readonly scans = new Map<string, PretendScan>();
  private seq = 0;
  private readonly now: () => number;

  constructor(private readonly opts: DryRunOptions) {
    this.now = opts.now ?? Date.now;
    this.pollPaceS = Math.max(1, opts.scanDurationS);
  }

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    const ref = `dry-run/${++this.seq}`;
    this.scans.set(ref, { ref, title: req.title, appliance: req.appliance, targets: req.targets, launchedAt: this.now(), canceled: false });
    this.opts.print(`DRY RUN: would launch scan "${req.title}" on appliance ${req.appliance} for ${req.targets.join(', ')}`, req);
    return { scanRef: ref };
  }

  private status(s: PretendScan): ScanStatus {
    const done = this.now() - s.launchedAt >= this.opts.scanDurationS * 1000;
    const state = s.canceled ? 'canceled' : done ? 'finished' : 'running';
    const st: ScanStatus = { scanRef: s.ref, title: s.title, state, targets: s.targets, appliance: s.appliance, launchedAt: new Date(s.launchedAt).toISOString() };
    if (state === 'finished') st.endedAt = new Date(s.launchedAt + this.opts.scanDurationS * 1000).toISOString();
    return st;
  }

  async listScans(filter: ScanFilter): Promise<ScanStatus[]> {
    let list = [...this.scans.values()];
    if (filter.scanRefs) list = list.filter((s) => filter.scanRefs!.includes(s.ref));
    if (filter.launchedAfter) list = list.filter((s) => s.launchedAt >= filter.launchedAfter!.getTime());
    let out = list.map((s) => this.status(s));
    if (filter.states) out = out.filter((s) => filter.states!.includes(s.state));
    return out;
  }

  async cancel(scanRef: string): Promise<void> {
    const s = this.scans.get(scanRef);
    if (!s) return;
    const { state } = this.status(s);
    if (state === 'finished') throw new ScanEndedBeforeCancel(scanRef, state); // as the vendors' backends
    s.canceled = true;
  }

  async appliances(): Promise<ApplianceStatus[]> {
    return this.opts.appliances.map((name) => ({
      name, online: true,
      runningScans: [...this.scans.values()].filter((s) => s.appliance === name && this.status(s).state === 'running').length,
    }));
  }

  /**
   * Schedules nothing: says which scheduled scans it would keep, and answers each want as created
   * (a dry run has no platform to remember them, so every sync would create them again).
   */
  async syncSchedules(want: RangeSchedule[], titlePrefix: string): Promise<ScheduleStatus[]> {
    return want.map((w, i) => {
      if (!w.title.startsWith(titlePrefix)) throw new OnsightError('ONSIGHT_SCANNER', `schedule "${w.title}" does not start with the prefix "${titlePrefix}"`);
      this.opts.print(`DRY RUN: would create or update the daily scheduled scan "${w.title}" at ${w.timeUtc} UTC on appliance ${w.appliance} for ${w.targets.join(', ')}${w.endAfterMin !== undefined ? `, each run canceled ${w.endAfterMin} min after its time if still going` : ''}`);
      return { ...w, id: `dry-run-schedule/${i + 1}`, active: true, action: 'created' };
    });
  }

  async lastScanned(_ips: string[]): Promise<LastScanned[]> {
    return [];
  }

  allowance(): Allowance {
    return { waitSec: 0 };
  }

  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
    return statedOutcome(err, call);
  }

  async close(): Promise<void> {}
}
