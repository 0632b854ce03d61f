/** Coverage over time for the status model: per day, per region, devices seen and scanned within policy (src/coverage/report.ts). */
import type { CoverageRow } from '../coverage/report.js';
import type { DaemonView } from './view.js';

export interface CoveragePoint {
  /** YYYY-MM-DD (UTC) */
  day: string;
  /** the same rows every day, in the same order (the page reads them by position) */
  regions: { region: string; seen: number; scanned: number; coveragePct: number; missed: number; noRegion?: true }[];
}

export async function coverageTimeline(d: DaemonView, days: number): Promise<CoveragePoint[]> {
  // (none asked: the count's cache of the page's days is left as it is)
  if (days <= 0) return [];
  const counted = await d.coverageByDay(days);
  // a day's count has the "(no region)" row only if a device was there that day (and a reload may
  // add or drop regions between cached days): every day gets every row, none seen where it had none
  const rows = new Map<string, Pick<CoverageRow, 'region' | 'noRegion'>>();
  for (const p of counted) for (const r of p.regions) if (!rows.has(rowKey(r))) rows.set(rowKey(r), r);
  // the regions as first counted, the unmapped devices last (as in the report)
  const order = [...rows].sort(([, a], [, b]) => Number(a.noRegion ?? false) - Number(b.noRegion ?? false));
  return counted.map((p) => {
    const byKey = new Map(p.regions.map((r) => [rowKey(r), r]));
    return {
      day: p.day,
      regions: order.map(([key, { region, noRegion }]) => {
        const r = byKey.get(key);
        return { region, seen: r?.seen ?? 0, scanned: r?.scanned ?? 0, coveragePct: r?.coveragePct ?? 100, missed: r?.missed ?? 0, ...(noRegion ? { noRegion } : {}) };
      }),
    };
  });
}

/** a region named "(no region)" is not the row of unmapped devices */
const rowKey = (r: Pick<CoverageRow, 'region' | 'noRegion'>) => (r.noRegion ? '\0' : 'r:') + r.region;
