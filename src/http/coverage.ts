/** Coverage over time for the status model: per day, per region, devices seen and scanned within policy (src/coverage/report.ts). */
import type { DaemonView } from './view.js';

export interface CoveragePoint {
  /** YYYY-MM-DD (UTC) */
  day: string;
  regions: { region: string; seen: number; scanned: number; coveragePct: number; missed: number }[];
}

export async function coverageTimeline(d: DaemonView, days: number): Promise<CoveragePoint[]> {
  return (await d.coverageByDay(days)).map((p) => ({
    day: p.day,
    regions: p.regions.map((r) => ({ region: r.region, seen: r.seen, scanned: r.scanned, coveragePct: r.coveragePct, missed: r.missed })),
  }));
}
