/**
 * Devices that come due soon, scanned ahead of time in the room of scans launched anyway, while the
 * allowance is scarce (`scheduler.scanAheadH`).
 *
 * With a scarce allowance the day's launches are set by the calls, not by the devices, and a scan
 * launched for due devices often leaves room in its first wave. Devices come due in waves: an
 * office's laptops scanned on one day all come due together, and those due on a weekend all come
 * back on the Monday, more than a scarce allowance's launches hold in a day. A present device that
 * comes due within `scanAheadH` fills that room, so its next scan need not wait for the crowded day.
 * A rider never causes a launch, a poll or a hold on a region; it goes after first scans and second
 * looks (launch.ts), the most recently seen first.
 */
import type { BindingView } from '../store/types.js';
import { RegionWaitlist, type Waiting } from './waitlist.js';

interface Rider extends Waiting {
  /** when the device comes due (its last scan plus the policy's rescan time) */
  dueAt: number;
}

export class ScanAhead {
  /** present devices found scanned recently, by region */
  private readonly riders = new RegionWaitlist<Rider>();

  /** A binding found scanned recently, due again at `dueAt`. */
  note(region: string, b: Pick<BindingView, 'id' | 'ip' | 'identityId' | 'lastSeen'>, dueAt: number): void {
    this.riders.put({ bindingId: b.id, ip: b.ip, identityId: b.identityId, region, lastSeen: b.lastSeen, dueAt });
  }

  gone(bindingId: number): void {
    this.riders.gone(bindingId);
  }

  /** The devices of `region` due by `until`, the most recently seen first. */
  in(region: string, until: number): Waiting[] {
    return this.riders.in(region, (r) => r.dueAt <= until);
  }

  clear(): void {
    this.riders.clear();
  }
}
