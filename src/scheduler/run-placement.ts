/**
 * Which appliance each region's range runs go on (ranges.ts asks). Two steps:
 *  - `runApplianceOf`, from the config alone: the runs spread over the regions' appliances;
 *  - `placeRuns`, when a time's hold begins: a region whose appliance is blocked (overrun: lists
 *    in a row have shown every slot held by other tools' scans for an hour; or offline) moves that run to
 *    another of its appliances that is not. A run queued behind others' scans waits as long as
 *    they go, which nobody can say, and its region stays held meanwhile; the runs of ours it may
 *    queue behind instead are spread (fewest per slot) and followed.
 */

export interface PlacementRegion {
  name: string;
  appliances: readonly { name: string; maxScans: number }[];
}

/**
 * Which of its appliances each region's range runs are scheduled on. Every region's runs come at
 * the same times, so they are spread: regions with fewer appliances choose first, each taking the
 * appliance with the fewest runs per configured slot so far (ties: the region's own order). All on
 * each region's first appliance, an appliance that three regions list first ran their three runs one
 * after another on its one slot, and the last region waited hours while its other appliance had
 * room (simulator, slots default/1: runs of 4.3 h, queued up to 400 min). Depends on the config
 * alone.
 */
export function runApplianceOf(regions: readonly PlacementRegion[], already: ReadonlyMap<string, number> = new Map()): Map<string, string> {
  // (`already`: scans each appliance carries before these runs, counted as runs; the simulator's informed baseline)
  const runs = new Map(already);
  const out = new Map<string, string>();
  for (const r of byFewestAppliances(regions)) {
    const best = fewestRunsPerSlot(r.appliances, runs);
    if (!best) continue;
    out.set(r.name, best);
    runs.set(best, (runs.get(best) ?? 0) + 1);
  }
  return out;
}

/**
 * The appliances of one time's runs: `spread` (runApplianceOf's), except that a region whose
 * appliance is in `blocked` and that has appliances that are not takes the one of those with the
 * fewest runs per configured slot (the runs counted as placed so far; regions with fewer
 * appliances move first). A region with only blocked appliances stays where the spread put it.
 */
export function placeRuns(regions: readonly PlacementRegion[], spread: ReadonlyMap<string, string>, blocked: ReadonlySet<string>): Map<string, string> {
  const out = new Map(spread);
  if (blocked.size === 0) return out;
  const runs = new Map<string, number>();
  for (const ap of spread.values()) runs.set(ap, (runs.get(ap) ?? 0) + 1);
  for (const r of byFewestAppliances(regions)) {
    const at = spread.get(r.name);
    if (at === undefined || !blocked.has(at)) continue;
    const best = fewestRunsPerSlot(r.appliances.filter((a) => !blocked.has(a.name)), runs);
    if (!best) continue;
    out.set(r.name, best);
    runs.set(at, runs.get(at)! - 1);
    runs.set(best, (runs.get(best) ?? 0) + 1);
  }
  return out;
}

function byFewestAppliances<R extends PlacementRegion>(regions: readonly R[]): R[] {
  return regions.map((r, i) => ({ r, i })).sort((a, b) => a.r.appliances.length - b.r.appliances.length || a.i - b.i).map((x) => x.r);
}

/** The appliance that would have the fewest runs per configured slot with one more (ties: the first listed). */
function fewestRunsPerSlot(appliances: readonly { name: string; maxScans: number }[], runs: ReadonlyMap<string, number>): string | undefined {
  let best: { name: string; share: number } | undefined;
  for (const a of appliances) {
    const share = ((runs.get(a.name) ?? 0) + 1) / a.maxScans;
    if (!best || share < best.share) best = { name: a.name, share };
  }
  return best?.name;
}
