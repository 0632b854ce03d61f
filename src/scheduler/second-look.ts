/**
 * A second look at a device whose first scan in a rescan window may have been partial.
 *
 * A laptop that leaves while its probe runs, without a line (a Wi-Fi drop, a lid closed, no DHCP
 * release), still holds its binding, and the scanner's host list dates it (it answered when its
 * probe started): the scan is credited. Nothing onsight receives tells such a probe from a whole
 * one, and the device would then pass for scanned for the whole window (src/sim/README.md, "Why
 * onsight missed what twice-daily caught"; rejoin.ts catches only the clients that come back
 * within 30 min with a DHCP request). So a device's first credited scan in a window is looked at
 * again once the device is next seen, a line more than REJOIN_AFTER_END_MS after that scan ended:
 * it is owed one more scan, and waits for it out of the queue (so it causes no poll, appliance read
 * or range run give-way, and cannot crowd first scans out of a batch's candidates): launch.ts takes
 * waiting devices of a region, the most recently seen first, into the room a scan launched for
 * devices due for their first scan leaves in its first wave (no launch and no hold on the region of
 * their own: under slow or heavy-tailed scans that would keep first scans waiting), so they cost no
 * call even when the allowance is scarce (at 50 calls a day they are worth +4.4 points of coverage:
 * src/sim/README.md, session 15); and after the operator's marks (a rescan goes out as a first scan would). A second credit in
 * the same window, or a scan dated by the scanner itself (a range run, another tool's scan), ends it.
 * So does a DHCP client's scheduled renewal after the scan (at T1 of the lease it held when the scan
 * was credited, RFC 2131 §4.4.5), which says it kept its lease through the scan: one that leaves
 * and comes back asks at its return instead (rejoin.ts).
 *
 * The credits are kept in the store too (scan_credits): a restart reads them back, so a device
 * credited before it is still owed its look; the waiting set is rebuilt as devices are considered
 * again (the first sweep considers everyone present).
 */
import type { BindingView, ScanCredit } from '../store/types.js';
import { REJOIN_AFTER_END_MS, atT1 } from './rejoin.js';
import { RegionWaitlist, type Waiting } from './waitlist.js';

const KEEP = 500_000;
/** credits older than this are of no use to any window (the longest rescan window a second look serves) */
const FORGET_MS = 31 * 86_400_000;

interface Credit {
  /** when the credited scan ended (the device's lastScannedAt it set) */
  at: number;
  /** the credit before it, if any */
  prev?: number;
  /** the DHCP lease the device held when the scan was credited (its last grant and expiry) */
  lease?: { lastSeen: number; expiresAt: number };
  /** the result is known whole (the client renewed at T1 after the scan): nothing to look at again */
  whole?: true;
}

export class SecondLooks {
  private readonly credits = new Map<number, Credit>();
  /** devices whose credit changed since the last takeChanged() (found whole when owed() was asked) */
  private readonly changed = new Set<number>();
  /** bindings owed a second look, waiting for a scan of first scans in their region (not in the queue: they launch nothing) */
  private readonly waiting = new RegionWaitlist();

  /** A binding owed a second look waits for one; true when it was not waiting already. */
  wait(region: string, b: Pick<BindingView, 'id' | 'ip' | 'identityId' | 'lastSeen'>): boolean {
    return this.waiting.put({ bindingId: b.id, ip: b.ip, identityId: b.identityId, region, lastSeen: b.lastSeen });
  }

  gone(bindingId: number): void {
    this.waiting.gone(bindingId);
  }

  /** The bindings waiting in `region`, the most recently seen first (a laptop seen long ago may have left). */
  waitingIn(region: string): Waiting[] {
    return this.waiting.in(region);
  }

  /**
   * onsight recorded a scan of this device, ending at `at` (what markScanned was given), on the
   * binding `b` as it stands now; `whole` when the scan is known whole (rejoin.ts check).
   */
  credited(identityId: number, at: number, b: Pick<BindingView, 'channel' | 'lastSeen' | 'expiresAt'> | undefined, whole: boolean): ScanCredit {
    if (this.credits.size >= KEEP) this.prune(at);
    const c = this.credits.get(identityId);
    const lease = b?.channel === 'dhcp' && b.expiresAt !== undefined && b.lastSeen <= at ? { lastSeen: b.lastSeen, expiresAt: b.expiresAt } : undefined;
    const credit: Credit = { at, ...(c ? { prev: c.at } : {}), ...(lease ? { lease } : {}), ...(whole ? { whole: true } : {}) };
    this.credits.set(identityId, credit);
    this.changed.delete(identityId);
    return toStored(identityId, credit);
  }

  /** Credits read back from the store (after a restart); one known here already is newer and stays. */
  load(stored: readonly ScanCredit[]): void {
    for (const s of stored) {
      if (this.credits.has(s.identityId) || this.credits.size >= KEEP) continue;
      this.credits.set(s.identityId, fromStored(s));
    }
  }

  /** The credits changed since the last call (to be written to the store). */
  takeChanged(): ScanCredit[] {
    const out: ScanCredit[] = [];
    for (const id of this.changed) {
      const c = this.credits.get(id);
      if (c) out.push(toStored(id, c));
    }
    this.changed.clear();
    return out;
  }

  /**
   * Is this device, found scanned within its window (`dueAfterMs` after its last scan), owed a
   * second look? Its last scan is the one onsight credited, the first in the window, and the device
   * has been seen since.
   */
  owed(b: Pick<BindingView, 'identityId' | 'lastSeen' | 'lastScannedAt'>, dueAfterMs: number): boolean {
    const c = this.credits.get(b.identityId);
    if (!c || c.at !== b.lastScannedAt) return false;
    if (c.whole || (c.prev !== undefined && c.at - c.prev < dueAfterMs)) return false;
    if (c.lease && b.lastSeen > c.at && atT1(c.lease, b.lastSeen)) {
      c.whole = true; // its scheduled renewal, after the scan: it kept the lease through the scan
      this.changed.add(b.identityId);
      return false;
    }
    return b.lastSeen > c.at + REJOIN_AFTER_END_MS;
  }

  private prune(now: number): void {
    for (const [id, c] of this.credits) if (c.at < now - FORGET_MS) this.credits.delete(id);
    if (this.credits.size >= KEEP) this.credits.clear();
  }
}

/** Credits older than this serve no window: not read back, and pruned from the store. */
export const SECOND_LOOK_FORGET_MS = FORGET_MS;

function fromStored(s: ScanCredit): Credit {
  return { at: s.at, ...(s.prev === undefined ? {} : { prev: s.prev }), ...(s.lease ? { lease: s.lease } : {}), ...(s.whole ? { whole: true } : {}) };
}

function toStored(identityId: number, c: Credit): ScanCredit {
  return { identityId, at: c.at, ...(c.prev === undefined ? {} : { prev: c.prev }), ...(c.lease ? { lease: c.lease } : {}), whole: c.whole === true };
}
