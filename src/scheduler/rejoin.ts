/**
 * A DHCP client that rejoins the network while its scan runs was off the network for part of it:
 * the scan may have lost it mid-way, and the scanner's host list dates such a host all the same
 * (it answered when its probe started). A client renews its lease at T1, half the lease after its
 * last ACK (RFC 2131 §4.4.5); a request well before T1 is a client (re)joining (INIT-REBOOT after
 * a Wi-Fi drop, a lid closed and opened). Such a target is not recorded scanned: it is due again,
 * instead of passing for scanned for a whole rescan window (the simulator's per-device diagnosis,
 * src/sim/README.md, found these false credits behind most of the devices onsight missed).
 *
 * The first request after the launch is noted as it arrives (`seen`, from consider()): by the time
 * a scan's result is recorded (a poll, a host-list confirmation up to an hour later) the binding may
 * have been renewed again, and its last request alone would hide the rejoin.
 *
 * What the binding looked like at launch is kept in the store too (memory.ts): a restart takes it
 * back. A request that came while onsight was down is seen as the binding's last one only.
 */
import type { BindingView } from '../store/types.js';
import { CLOCK_SKEW_MS, int, num, numberRows, type Remembers } from './memory.js';

/** a rejoin this long after the scan ended may still be the client coming back from a drop during the scan */
export const REJOIN_AFTER_END_MS = 30 * 60_000;
/** requests this close to T1 (share of the half lease) are taken for the scheduled renewal */
const T1_SLACK = 0.1;
const KEEP = 200_000;
/** bindings noted at a launch longer ago than this are not saved (a scan that old is given up: maxScanAgeS) */
const SAVE_WITHIN_MS = 7 * 86_400_000;

/** Is a request at `at` the scheduled renewal (T1, half the lease) of a lease last granted at `lease.lastSeen`? */
export function atT1(lease: { lastSeen: number; expiresAt: number }, at: number): boolean {
  const half = (lease.expiresAt - lease.lastSeen) / 2;
  return half > 0 && Math.abs(at - (lease.lastSeen + half)) <= half * T1_SLACK;
}

interface AtLaunch {
  lastSeen: number;
  expiresAt: number;
  /** the first request after the launch, when one came */
  firstAfter?: number;
  launchedAt: number;
}

export class Rejoins implements Remembers {
  private readonly atLaunch = new Map<number, AtLaunch>();

  /** for the store (memory.ts): [binding id, last grant, expiry, first request after the launch or 0, launch] of launches within SAVE_WITHIN_MS */
  snapshot(now: number): number[][] {
    const out: number[][] = [];
    for (const [id, s] of this.atLaunch) if (s.launchedAt >= now - SAVE_WITHIN_MS) out.push([id, s.lastSeen, s.expiresAt, s.firstAfter ?? 0, s.launchedAt]);
    return out;
  }

  /** Bindings noted before a restart; one noted since is newer and stays. */
  merge(data: unknown, now: number): string | undefined {
    const time = num(now + CLOCK_SKEW_MS);
    const rows = numberRows(data, [int(Number.MAX_SAFE_INTEGER), time, num(now + 400 * 86_400_000), time, time], KEEP);
    if (!rows) return undefined;
    let n = 0;
    for (const [id, lastSeen, expiresAt, firstAfter, launchedAt] of rows) {
      if (this.atLaunch.has(id) || expiresAt <= lastSeen || this.atLaunch.size >= KEEP) continue;
      this.atLaunch.set(id, { lastSeen, expiresAt, launchedAt, ...(firstAfter > lastSeen ? { firstAfter } : {}) });
      n++;
    }
    return `${n} DHCP binding(s) of scans in flight`;
  }

  /** A target's DHCP binding as it stood when its scan was launched at `at`. */
  launched(b: BindingView, at: number): void {
    if (b.channel !== 'dhcp' || b.expiresAt === undefined || b.expiresAt <= b.lastSeen) return;
    if (this.atLaunch.size >= KEEP) this.atLaunch.clear();
    this.atLaunch.set(b.id, { lastSeen: b.lastSeen, expiresAt: b.expiresAt, launchedAt: at });
  }

  /** A binding's request was committed: the first one after its scan's launch is kept. */
  seen(b: BindingView): void {
    const s = this.atLaunch.get(b.id);
    if (s && s.firstAfter === undefined && b.lastSeen > s.lastSeen) s.firstAfter = b.lastSeen;
  }

  /**
   * What the client's requests since the launch say of the target's result; forgets the binding.
   * `rejoined`: why it may be partial (the client rejoined between the launch and
   * REJOIN_AFTER_END_MS after the scan ended). `whole`: its first request after the launch came
   * at T1, its scheduled renewal, after the scan ended: it held its lease through the scan
   * (second-look.ts).
   */
  check(b: BindingView | undefined, bindingId: number, endedAt: number): { rejoined?: string; whole: boolean } {
    const s = this.atLaunch.get(bindingId);
    this.atLaunch.delete(bindingId);
    if (!s || !b || b.id !== bindingId) return { whole: false };
    const at = s.firstAfter ?? b.lastSeen;
    const whole = at > endedAt && atT1(s, at);
    if (at <= s.lastSeen || at > endedAt + REJOIN_AFTER_END_MS) return { whole };
    const half = (s.expiresAt - s.lastSeen) / 2;
    if (at >= s.lastSeen + half * (1 - T1_SLACK)) return { whole }; // the scheduled renewal at T1
    return { whole, rejoined: `the device rejoined the network at ${new Date(at).toISOString()} (a DHCP request ${Math.round((at - s.lastSeen) / 60_000)} min after the last, well before its renewal at T1): it was off the network for part of the scan, whose result may be partial` };
  }

  forget(bindingId: number): void {
    this.atLaunch.delete(bindingId);
  }
}
