/**
 * A scanner for scheduler tests: it records every call and lets the test decide appliance status
 * and scan outcomes. (End-to-end tests use the Qualys emulator over real HTTP instead.)
 */
import type { Allowance, ApplianceStatus, LastScanned, LaunchRequest, Scanner, ScanFilter, ScanState, ScanStatus } from '../../src/scanners/types.js';
import { OnsightError } from '../../src/errors.js';

export class ScriptedScanner implements Scanner {
  readonly kind = 'scripted';
  launches: (LaunchRequest & { ref: string })[] = [];
  states = new Map<string, ScanState>();
  appliancesState: ApplianceStatus[] = [];
  lastScannedDates = new Map<string, string>();
  calls: string[] = [];
  /** make the next launch fail: 'api' (known not launched), 'network-after' (launched, answer lost) */
  failNext?: 'api' | 'network-after';
  private seq = 0;

  async launch(req: LaunchRequest) {
    this.calls.push('launch');
    const ref = `scan/${++this.seq}`;
    if (this.failNext === 'api') {
      this.failNext = undefined;
      throw new OnsightError('ONSIGHT_QUALYS_API', 'CODE 999: refused');
    }
    this.launches.push({ ...req, ref });
    this.states.set(ref, 'running');
    if (this.failNext === 'network-after') {
      this.failNext = undefined;
      throw new OnsightError('ONSIGHT_QUALYS_NETWORK', 'socket hang up');
    }
    return { scanRef: ref };
  }

  async listScans(f: ScanFilter): Promise<ScanStatus[]> {
    this.calls.push('list');
    return this.launches
      .filter((l) => !f.scanRefs || f.scanRefs.includes(l.ref))
      .map((l) => ({ scanRef: l.ref, title: l.title, state: this.states.get(l.ref)!, targets: l.targets, appliance: l.appliance }));
  }

  async cancel(ref: string) {
    this.calls.push('cancel');
    this.states.set(ref, 'canceled');
  }

  async appliances(): Promise<ApplianceStatus[]> {
    this.calls.push('appliances');
    return this.appliancesState.map((a) => ({ ...a }));
  }

  async lastScanned(ips: string[]): Promise<LastScanned[]> {
    this.calls.push('lastScanned');
    return ips.map((ip) => ({ ip, lastScannedAt: this.lastScannedDates.get(ip) }));
  }

  allowance(): Allowance {
    return { waitSec: 0 };
  }

  async close() {}

  finish(ref: string, state: ScanState = 'finished') {
    this.states.set(ref, state);
  }
}
