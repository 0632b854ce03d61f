/**
 * Devices waiting, out of the queue, to ride in a scan launched in their region for devices due for
 * their first scan (second looks, second-look.ts; devices that come due soon, ahead.ts). Kept by
 * region, since a launch reads only its own region's; a launch takes the most recently seen first
 * (a laptop seen long ago may have left).
 */

/** a waiting device, as a launch takes it */
export interface Waiting {
  bindingId: number;
  ip: string;
  identityId: number;
  region: string;
  lastSeen: number;
}

/** more than this many waiting devices (a fleet far beyond any deployment): start over, they are noted again as they are considered */
const KEEP = 500_000;

export class RegionWaitlist<T extends Waiting = Waiting> {
  private readonly all = new Map<number, T>();
  private readonly byRegion = new Map<string, Map<number, T>>();

  /** `w` waits (replacing what its binding had); true when the binding was not waiting in that region already. */
  put(w: T): boolean {
    const had = this.all.get(w.bindingId);
    if (!had && this.all.size >= KEEP) this.clear();
    if (had && had.region !== w.region) this.byRegion.get(had.region)?.delete(w.bindingId);
    this.all.set(w.bindingId, w);
    let inRegion = this.byRegion.get(w.region);
    if (!inRegion) this.byRegion.set(w.region, (inRegion = new Map()));
    inRegion.set(w.bindingId, w);
    return had === undefined || had.region !== w.region;
  }

  gone(bindingId: number): void {
    const w = this.all.get(bindingId);
    if (!w) return;
    this.all.delete(bindingId);
    this.byRegion.get(w.region)?.delete(bindingId);
  }

  /** The devices waiting in `region` that `keep` accepts, the most recently seen first. */
  in(region: string, keep: (w: T) => boolean = () => true): T[] {
    return [...(this.byRegion.get(region)?.values() ?? [])].filter(keep).sort((a, b) => b.lastSeen - a.lastSeen);
  }

  clear(): void {
    this.all.clear();
    this.byRegion.clear();
  }
}
