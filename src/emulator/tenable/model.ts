/**
 * The emulated Tenable container: scanners and scanner groups, scan definitions and their runs,
 * templates, and the assets' last scan dates. Scans progress on the scan clock: a launched run is
 * `pending` until its scanner picks it up (only while the scanner is on), `running` for a time per
 * target, then `completed` (the targets' NESSUS_SCAN source is dated then). A group's run goes to
 * its online member with the fewest active scans, as Tenable routes it.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../qualys/clock.js';

export interface EmScanner {
  id: number;
  uuid: string;
  name: string;
  online: boolean;
  /** epoch ms (real time) from which it is offline, from the fault plan */
  offlineFrom?: number;
}

export interface EmGroup {
  id: number;
  uuid: string;
  name: string;
  members: string[];
}

export interface EmRun {
  uuid: string;
  targets: string[];
  launchedAt: number;
  /** the scanner chosen (for a group: when it is picked up) */
  scanner?: string;
  startedAt?: number;
  endedAt?: number;
  stopped?: boolean;
}

export interface EmScan {
  id: number;
  uuid: string;
  name: string;
  /** uuid of the scanner or scanner group the definition names */
  scannerUuid: string;
  textTargets: string;
  templateUuid: string;
  folderId?: number;
  createdAt: number;
  modifiedAt: number;
  runs: EmRun[];
}

export interface ScanTiming {
  /** seconds (scan clock) before a scanner picks a pending scan up */
  pickupSec: number;
  /** seconds (scan clock) per target */
  hostSec: number;
}

export const TEMPLATES = [
  { uuid: '731a8e52-3ea6-a291-ec0a-d2ff0619c19d7bd788d6be818b65', name: 'basic', title: 'Basic Network Scan' },
  { uuid: 'ad629e16-03b6-8c1d-cef6-ef8c9dd3c658d24bd260ef5f9e66', name: 'advanced', title: 'Advanced Scan' },
  { uuid: 'bbd4f805-3966-d464-b2d1-0079eb89d69708c3a05ec2812bcf', name: 'discovery', title: 'Host Discovery' },
];

export class TenableModel {
  readonly scanners: EmScanner[] = [];
  readonly groups: EmGroup[] = [];
  readonly scans: EmScan[] = [];
  /** ip → last NESSUS_SCAN date (scan clock ms) */
  readonly assets = new Map<string, number>();
  private nextScanId = 100;

  constructor(readonly now: Clock, readonly timing: ScanTiming, private readonly realNow: () => number = Date.now) {}

  addScanner(name: string, online = true, offlineFrom?: number): EmScanner {
    const s = { id: this.scanners.length + 1, uuid: randomUUID(), name, online, offlineFrom };
    this.scanners.push(s);
    return s;
  }

  addGroup(name: string, members: string[]): EmGroup {
    const g = { id: 1000 + this.groups.length + 1, uuid: randomUUID(), name, members };
    this.groups.push(g);
    return g;
  }

  isOnline(s: EmScanner): boolean {
    return s.online && !(s.offlineFrom !== undefined && this.realNow() >= s.offlineFrom);
  }

  scanner(name: string | undefined): EmScanner | undefined {
    return this.scanners.find((s) => s.name === name);
  }

  createScan(name: string, scannerUuid: string, templateUuid: string, textTargets: string, folderId?: number): EmScan {
    const t = this.now();
    const s: EmScan = { id: this.nextScanId++, uuid: randomUUID(), name, scannerUuid, textTargets, templateUuid, folderId, createdAt: t, modifiedAt: t, runs: [] };
    this.scans.push(s);
    return s;
  }

  copy(src: EmScan, name: string, folderId?: number): EmScan {
    return this.createScan(name, src.scannerUuid, src.templateUuid, src.textTargets, folderId ?? src.folderId);
  }

  /** Runs not yet ended, on the whole container (what the active-scan limit counts). */
  activeRuns(): EmRun[] {
    this.advance();
    return this.scans.flatMap((s) => s.runs).filter((r) => r.endedAt === undefined);
  }

  launch(scan: EmScan, targets: string[]): EmRun {
    this.advance();
    const run: EmRun = { uuid: randomUUID(), targets, launchedAt: this.now() };
    const direct = this.scanners.find((x) => x.uuid === scan.scannerUuid);
    if (direct) run.scanner = direct.name;
    scan.runs.push(run);
    scan.modifiedAt = run.launchedAt;
    return run;
  }

  stop(scan: EmScan): boolean {
    this.advance();
    const run = scan.runs.at(-1);
    if (!run || run.endedAt !== undefined) return false;
    run.stopped = true;
    run.endedAt = this.now();
    scan.modifiedAt = run.endedAt;
    return true;
  }

  /** Moves every run along to the scan clock's now. */
  advance(): void {
    const now = this.now();
    for (const scan of this.scans) {
      for (const run of scan.runs) {
        if (run.endedAt !== undefined) continue;
        if (run.startedAt === undefined) {
          if (now < run.launchedAt + this.timing.pickupSec * 1000) continue;
          const sc = run.scanner ? this.scanner(run.scanner) : this.pickFromGroup(scan.scannerUuid);
          if (!sc || !this.isOnline(sc)) continue; // waits for its scanner
          run.scanner = sc.name;
          // picked up on time (the model cannot tell when an offline scanner came back: it was checked now)
          run.startedAt = run.launchedAt + this.timing.pickupSec * 1000;
          scan.modifiedAt = now;
        }
        const end = run.startedAt + this.timing.hostSec * 1000 * run.targets.length;
        if (now >= end) {
          run.endedAt = end;
          scan.modifiedAt = now;
          for (const ip of run.targets) this.assets.set(ip, Math.max(this.assets.get(ip) ?? 0, end));
        }
      }
    }
  }

  /** A group's member with the fewest active scans, among those online. */
  private pickFromGroup(groupUuid: string): EmScanner | undefined {
    const g = this.groups.find((x) => x.uuid === groupUuid);
    if (!g) return undefined;
    const live = g.members.map((m) => this.scanner(m)).filter((s): s is EmScanner => !!s && this.isOnline(s));
    return live.sort((a, b) => this.load(a.name) - this.load(b.name))[0];
  }

  load(scanner: string): number {
    return this.scans.flatMap((s) => s.runs).filter((r) => r.scanner === scanner && r.startedAt !== undefined && r.endedAt === undefined).length;
  }

  status(scan: EmScan): string {
    this.advance();
    const run = scan.runs.at(-1);
    if (!run) return 'empty';
    if (run.stopped) return 'canceled';
    if (run.endedAt !== undefined) return 'completed';
    if (run.startedAt !== undefined) return 'running';
    return 'pending';
  }
}
