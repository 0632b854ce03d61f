/**
 * What onsight knows of each appliance's load: the scanner's appliance list when last read, plus
 * our own launches and ended scans since. Pure bookkeeping (the scheduler makes the calls): when
 * to read the list again, the load now, and which appliance a region's next scan goes to.
 */
import type { Logger } from '../log.js';
import type { ApplianceStatus } from '../scanners/types.js';
import type { Intent } from './queue.js';

export interface RegionAppliances {
  name: string;
  appliances: { name: string; maxScans: number }[];
}

interface ApplianceState {
  status?: ApplianceStatus;
  refreshedAt: number;
  launchedSince: number;
  endedSince: number;
}

export class ApplianceBook {
  private readonly states = new Map<string, ApplianceState>();
  /** the list is read this many times less often while it shows no room (doubles up to 6) */
  private backoff = 1;
  /**
   * ... and while others' load and online states stay as they were (doubles up to 12: a scan
   * stuck behind others' is caught by the scheduler, which then reads the list again)
   */
  private steady = 1;
  private lastForeign = '';

  constructor(private readonly log: Logger) {}

  /** Is the list older than `refreshS` (stretched by the back-offs)? Never read: yes. */
  stale(now: number, refreshS: number): boolean {
    if (this.states.size === 0) return true;
    const oldest = Math.min(...[...this.states.values()].map((a) => a.refreshedAt));
    return now - oldest >= refreshS * 1000 * Math.max(this.backoff, this.steady);
  }

  get known(): boolean {
    return this.states.size > 0;
  }

  /** Forget when the list was read (one appliance, or all): the next look reads it again. */
  invalidate(name?: string): void {
    for (const [n, a] of this.states) if (name === undefined || n === name) a.refreshedAt = 0;
  }

  /** A fresh list. */
  update(list: ApplianceStatus[], regions: RegionAppliances[], active: Intent[], now: number): void {
    const byName = new Map(list.map((a) => [a.name, a]));
    // what only the list can tell (others' scans, online states): when it has not changed since the
    // last read, our own count of our scans is as good as a fresh list, so read it less often
    const foreign = list.map((a) => `${a.name}:${a.online ? 1 : 0}:${Math.max(0, a.runningScans - active.filter((i) => i.appliance === a.name).length)}`).sort().join(',');
    this.steady = foreign === this.lastForeign ? Math.min(12, this.steady * 2) : 1;
    this.lastForeign = foreign;
    for (const r of regions) {
      for (const ap of r.appliances) {
        const status = byName.get(ap.name);
        if (!status) this.log.warn({ appliance: ap.name, region: r.name }, 'configured appliance is not in the scanner\'s appliance list; treated as offline');
        this.states.set(ap.name, { status, refreshedAt: now, launchedSince: 0, endedSince: 0 });
      }
    }
  }

  /** One launch on `name` (or one taken back: -1). */
  launched(name: string, n = 1): void {
    const a = this.states.get(name);
    if (a) a.launchedSince += n;
  }

  ended(name: string): void {
    const a = this.states.get(name);
    if (a) a.endedSince++;
  }

  /** After a launch pass: a list that showed no room is not worth re-reading often, until a launch. */
  afterPass(launches: number, blocked: boolean, refreshed: boolean): void {
    if (launches > 0) this.backoff = 1;
    else if (blocked && refreshed) this.backoff = Math.min(6, this.backoff * 2);
  }

  /** Load now: the scanner's count at refresh plus our launches since, less our scans ended since; never below our own. */
  load(name: string, active: Intent[]): { online: boolean; load: number; ours: number } {
    const ours = active.filter((i) => i.appliance === name).length;
    const a = this.states.get(name);
    if (!a?.status) return { online: false, load: ours, ours };
    const load = Math.max(ours, a.status.runningScans + a.launchedSince - a.endedSince);
    return { online: a.status.online, load, ours };
  }

  /**
   * The least-loaded online appliance of the region with room; between equally loaded ones, the
   * one fewer other waiting regions depend on (a region's only appliance is left for that region).
   */
  pick(r: RegionAppliances, regions: RegionAppliances[], active: Intent[], waiting: Set<string> = new Set()): { name: string; why: string } | undefined {
    let best: { name: string; ratio: number; demand: number; why: string } | undefined;
    const skipped: string[] = [];
    for (const ap of r.appliances) {
      const { online, load } = this.load(ap.name, active);
      if (!online) {
        skipped.push(`${ap.name} offline`);
        continue;
      }
      if (load >= ap.maxScans) {
        skipped.push(`${ap.name} busy ${load}/${ap.maxScans}`);
        continue;
      }
      const ratio = load / ap.maxScans;
      let demand = 0;
      for (const other of regions) {
        if (other.name !== r.name && waiting.has(other.name) && other.appliances.some((a) => a.name === ap.name)) demand += 1 / other.appliances.length;
      }
      if (!best || ratio < best.ratio || (ratio === best.ratio && demand < best.demand)) {
        best = { name: ap.name, ratio, demand, why: `${ap.name} online, load ${load}/${ap.maxScans}` };
      }
    }
    if (!best) return undefined;
    return { name: best.name, why: skipped.length ? `${best.why} (${skipped.join(', ')})` : best.why };
  }
}
