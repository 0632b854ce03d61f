/**
 * Devices whose rescan window runs out soon, scanned ahead of it in the room of scans launched
 * anyway, while the allowance is scarce (`scheduler.scanAheadH`).
 *
 * With a scarce allowance the day's launches are set by the calls, not by the devices, and a scan
 * launched for due devices often leaves room in its first wave. Windows run out in waves: an
 * office's laptops scanned on one day all come due a week later, and those due on a weekend all
 * come back on the Monday, more than a scarce allowance's launches hold in a day. A present device
 * whose window runs out within `scanAheadH` fills that room, so its next scan need not wait for the
 * crowded day. A rider never causes a launch, a poll or a hold on a region; it goes after first
 * scans and second looks (launch.ts), the most recently seen first.
 */
import type { BindingView } from '../store/types.js';

const KEEP = 500_000;

export interface Rider {
  bindingId: number;
  ip: string;
  identityId: number;
  region: string;
  lastSeen: number;
  /** when the device's rescan window runs out */
  dueAt: number;
}

export class ScanAhead {
  /** present devices found scanned recently, by region (a launch reads only its own region's) */
  private readonly byRegion = new Map<string, Map<number, Rider>>();
  private readonly regionOf = new Map<number, string>();

  /** A binding found scanned recently, its window running out at `dueAt`. */
  note(region: string, b: Pick<BindingView, 'id' | 'ip' | 'identityId' | 'lastSeen'>, dueAt: number): void {
    if (!this.regionOf.has(b.id) && this.regionOf.size >= KEEP) {
      this.byRegion.clear();
      this.regionOf.clear();
    }
    const was = this.regionOf.get(b.id);
    if (was !== undefined && was !== region) this.byRegion.get(was)?.delete(b.id);
    let inRegion = this.byRegion.get(region);
    if (!inRegion) this.byRegion.set(region, (inRegion = new Map()));
    inRegion.set(b.id, { bindingId: b.id, ip: b.ip, identityId: b.identityId, region, lastSeen: b.lastSeen, dueAt });
    this.regionOf.set(b.id, region);
  }

  gone(bindingId: number): void {
    const region = this.regionOf.get(bindingId);
    if (region === undefined) return;
    this.regionOf.delete(bindingId);
    this.byRegion.get(region)?.delete(bindingId);
  }

  /** The devices of `region` whose window runs out by `until`, the most recently seen first. */
  in(region: string, until: number): Rider[] {
    return [...(this.byRegion.get(region)?.values() ?? [])].filter((r) => r.dueAt <= until).sort((a, b) => b.lastSeen - a.lastSeen);
  }

  get size(): number {
    return this.regionOf.size;
  }
}
