/**
 * The emulated InsightVM console: engines and engine pools, sites, scans and the assets' scan
 * history. A scan is `dispatched` until its engine picks it up (only while the engine is up), then
 * `running` for a time per host, then `finished` (each host gets a SCAN entry in its history). A
 * pool's scan goes to its up member with the fewest active scans.
 */
import type { Clock } from '../qualys/clock.js';

export interface R7EmEngine {
  id: number;
  name: string;
  up: boolean;
  /** epoch ms (real time) from which it is down */
  downFrom?: number;
}

export interface R7EmPool {
  id: number;
  name: string;
  engines: number[];
}

export interface R7EmScan {
  id: number;
  siteId: number;
  name: string;
  hosts: string[];
  /** the engine or pool asked for */
  engineId: number;
  /** the engine that runs it */
  runOn?: number;
  launchedAt: number;
  startedAt?: number;
  endedAt?: number;
  stopped?: boolean;
}

export interface R7Timing {
  /** seconds (scan clock) before an engine picks a scan up */
  pickupSec: number;
  /** seconds (scan clock) per host */
  hostSec: number;
}

export class Rapid7Model {
  readonly engines: R7EmEngine[] = [];
  readonly pools: R7EmPool[] = [];
  readonly sites: { id: number; name: string }[] = [];
  readonly scans: R7EmScan[] = [];
  /** ip → dates (scan clock ms) of the scans that found it */
  readonly history = new Map<string, { date: number; scanId?: number }[]>();
  private nextScan = 5000;

  constructor(readonly now: Clock, readonly timing: R7Timing, private readonly realNow: () => number = Date.now) {}

  isUp(e: R7EmEngine): boolean {
    return e.up && !(e.downFrom !== undefined && this.realNow() >= e.downFrom);
  }

  /** When the console last heard from the engine (frozen once it is down). */
  lastRefreshed(e: R7EmEngine): number {
    if (this.isUp(e)) return this.realNow();
    return e.downFrom !== undefined && e.downFrom > 0 ? Math.min(e.downFrom, this.realNow()) - 3600_000 : this.realNow() - 86_400_000;
  }

  launch(siteId: number, name: string, hosts: string[], engineId: number): R7EmScan {
    this.advance();
    const s: R7EmScan = { id: this.nextScan++, siteId, name, hosts, engineId, launchedAt: this.now() };
    if (this.engines.some((e) => e.id === engineId)) s.runOn = engineId;
    this.scans.push(s);
    return s;
  }

  /** A running (or paused) scan stops; one ended or still dispatched cannot be: "to stop a scan the scan must be running or paused" (SOURCES.md). */
  stop(s: R7EmScan): boolean {
    this.advance();
    if (s.endedAt !== undefined || s.startedAt === undefined) return false;
    s.stopped = true;
    s.endedAt = this.now();
    return true;
  }

  active(): R7EmScan[] {
    this.advance();
    return this.scans.filter((s) => s.endedAt === undefined);
  }

  load(engineId: number): number {
    return this.scans.filter((s) => s.runOn === engineId && s.startedAt !== undefined && s.endedAt === undefined).length;
  }

  advance(): void {
    const now = this.now();
    for (const s of this.scans) {
      if (s.endedAt !== undefined) continue;
      if (s.startedAt === undefined) {
        if (now < s.launchedAt + this.timing.pickupSec * 1000) continue;
        const engine = s.runOn !== undefined ? this.engines.find((e) => e.id === s.runOn) : this.pick(s.engineId);
        if (!engine || !this.isUp(engine)) continue;
        s.runOn = engine.id;
        // picked up on time (the model cannot tell when a down engine came back: it was checked now)
        s.startedAt = s.launchedAt + this.timing.pickupSec * 1000;
      }
      const end = s.startedAt + this.timing.hostSec * 1000 * s.hosts.length;
      if (now >= end) {
        s.endedAt = end;
        for (const ip of s.hosts) this.history.set(ip, [...(this.history.get(ip) ?? []), { date: end, scanId: s.id }]);
      }
    }
  }

  private pick(poolId: number): R7EmEngine | undefined {
    const p = this.pools.find((x) => x.id === poolId);
    if (!p) return undefined;
    return this.engines.filter((e) => p.engines.includes(e.id) && this.isUp(e)).sort((a, b) => this.load(a.id) - this.load(b.id))[0];
  }

  status(s: R7EmScan): string {
    this.advance();
    if (s.stopped) return 'stopped';
    if (s.endedAt !== undefined) return 'finished';
    if (s.startedAt !== undefined) return 'running';
    return 'dispatched';
  }
}
