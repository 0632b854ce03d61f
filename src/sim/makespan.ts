/**
 * Server-night makespan diagnosis: where a run's makespan exceeds the lower bound (sim.ts
 * `makespanBound`), and what list order inside a region's scan would have been worth.
 *  - `nightBreakdown`: per region, its first night's hosts (start, realized work, last host,
 *    scan end), and for the region that ends last the excess over the bound in four parts:
 *    makespan − bound = start delay (first host after the bound's setup + pickup)
 *    + work noise (realized host time − expected, over its places) + tail (last host's end past
 *    start + realized work / places) − bound gap (how far that region's own bound is below the
 *    night's).
 *  - `listOrderMonteCarlo`: the seed's own servers, each region one scan from its earliest start
 *    on its places (no slot contention), host times drawn as the scanner draws them, greedy list
 *    scheduling in three orders: unrelated to the hosts' times (what a scheduler that knows none
 *    can do), by the host's persistent factor (longest expected first: it would need per-host
 *    times from earlier scans), by the drawn times (clairvoyant).
 * `onsight simulate` does not print it; `node dist/src/sim/makespan.js SCENARIO SEEDS [REPS]` does
 * (SEEDS: `1,2,3` or `8` for 1–8).
 */
import { loadScenario, type Scenario } from './scenario.js';
import { makespanBound, runOnce, type MakespanBound } from './sim.js';
import { drawHostMs, type SimScanner } from './scanner.js';
import { Rng } from './rng.js';
import { generateWorkload, type Workload } from './workload.js';

const MIN = 60_000;
/** a night's scans: launched within this long after the window opened */
const NIGHT_MS = 12 * 3_600_000;

export interface RegionNight {
  region: string;
  appliances: string[];
  /** minutes after the window opened */
  firstStart: number;
  startMin: number;
  expectedWork: number;
  realizedWork: number;
  lastHostStart: number;
  lastHostMin: number;
  hostsEnd: number;
  scanEnd: number;
}

export interface NightBreakdown {
  boundMin: number;
  makespanMin: number;
  regions: RegionNight[];
  last: RegionNight;
  startDelay: number;
  workNoise: number;
  tail: number;
  boundGap: number;
}

/** The first night's scans of ours, region by region (undefined when some region has none). */
export function nightBreakdown(sc: Scenario, bound: MakespanBound, scanner: SimScanner): NightBreakdown | undefined {
  const { open } = bound;
  const regions: RegionNight[] = [];
  for (const [i, r] of sc.regions.entries()) {
    const scans = scanner.scans.filter((s) => !s.other && s.region === r.name && s.launchedAt >= open - NIGHT_MS / 12 && s.launchedAt < open + NIGHT_MS);
    const jobs = scans.flatMap((s) => s.jobs).filter((j) => j.start !== undefined && j.end !== undefined);
    if (jobs.length === 0) return undefined;
    let last = jobs[0];
    for (const j of jobs) if (j.end! > last.end!) last = j;
    const at = (t: number) => (t - open) / MIN;
    regions.push({
      region: r.name, appliances: [...new Set(scans.map((s) => s.appliance))],
      firstStart: at(Math.min(...jobs.map((j) => j.start!))), startMin: bound.startMinMs[i] / MIN,
      expectedWork: bound.workMin[i] / bound.places[i],
      realizedWork: jobs.reduce((a, j) => a + j.end! - j.start!, 0) / MIN / bound.places[i],
      lastHostStart: at(last.start!), lastHostMin: (last.end! - last.start!) / MIN, hostsEnd: at(last.end!),
      scanEnd: at(Math.max(...scans.map((s) => s.endedAt ?? Infinity))),
    });
  }
  const last = regions.reduce((a, b) => (b.hostsEnd > a.hostsEnd ? b : a));
  const boundMin = bound.lowerBoundH * 60;
  return {
    boundMin, makespanMin: last.hostsEnd, regions, last,
    startDelay: last.firstStart - last.startMin,
    workNoise: last.realizedWork - last.expectedWork,
    tail: last.hostsEnd - last.firstStart - last.realizedWork,
    boundGap: boundMin - (last.startMin + last.expectedWork),
  };
}

/** Greedy list scheduling (a host starts on the first place free, in list order): when the last ends. */
export function listMakespan(times: readonly number[], places: number): number {
  const free = new Array<number>(places).fill(0);
  for (const t of times) {
    let k = 0;
    for (let i = 1; i < places; i++) if (free[i] < free[k]) k = i;
    free[k] += t;
  }
  return Math.max(...free);
}

export type ListOrder = 'unrelated' | 'by-last-night' | 'by-last-7-nights' | 'by-host-factor' | 'clairvoyant';
export const LIST_ORDERS: readonly ListOrder[] = ['unrelated', 'by-last-night', 'by-last-7-nights', 'by-host-factor', 'clairvoyant'];

/** Makespan / bound of `reps` draws of the night, per list order. */
export function listOrderMonteCarlo(sc: Scenario, w: Workload, bound: MakespanBound, reps: number, seed: number): Record<ListOrder, number[]> {
  const rng = new Rng(seed, 91);
  const factors = sc.regions.map(() => [] as number[]);
  for (const h of w.hosts) if (h.kind === 'server') factors[h.region].push(h.mult);
  const s = sc.scan;
  const out = Object.fromEntries(LIST_ORDERS.map((o) => [o, []])) as unknown as Record<ListOrder, number[]>;
  for (let rep = 0; rep < reps; rep++) {
    const end = Object.fromEntries(LIST_ORDERS.map((o) => [o, 0])) as Record<ListOrder, number>;
    for (const [r, mult] of factors.entries()) {
      if (mult.length === 0) continue;
      // as the scanner draws a host's time
      // earlier nights' times of the same host (what a host list's LAST_VM_SCANNED_DURATION gives)
      const hosts = mult.map((m) => {
        const past = Array.from({ length: 7 }, () => drawHostMs(rng, s, m) / MIN);
        return { t: drawHostMs(rng, s, m) / MIN, m, key: rng.next(), last: past[6], mean7: past.reduce((a, b) => a + b, 0) / 7 };
      });
      const orders: Record<ListOrder, number[]> = {
        unrelated: [...hosts].sort((a, b) => a.key - b.key).map((h) => h.t),
        'by-last-night': [...hosts].sort((a, b) => b.last - a.last).map((h) => h.t),
        'by-last-7-nights': [...hosts].sort((a, b) => b.mean7 - a.mean7).map((h) => h.t),
        'by-host-factor': [...hosts].sort((a, b) => b.m - a.m).map((h) => h.t),
        clairvoyant: hosts.map((h) => h.t).sort((a, b) => b - a),
      };
      for (const o of LIST_ORDERS) end[o] = Math.max(end[o], bound.startMinMs[r] / MIN + listMakespan(orders[o], bound.places[r]));
    }
    for (const o of LIST_ORDERS) out[o].push(end[o] / (bound.lowerBoundH * 60));
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const [name, seedArg, repsArg] = argv;
  if (!name || !seedArg) {
    process.stderr.write('usage: node dist/src/sim/makespan.js SCENARIO SEEDS [REPS]   (SEEDS: 1,2,3 or N for 1..N)\n');
    process.exit(2);
  }
  const sc = loadScenario(name);
  const seeds = seedArg.includes(',') ? seedArg.split(',').map(Number) : Array.from({ length: Number(seedArg) }, (_, i) => i + 1);
  const reps = Number(repsArg ?? 200);
  const f = (x: number) => x.toFixed(1);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const seed of seeds) {
    const w = generateWorkload(sc, seed);
    let scanner: SimScanner | undefined;
    const m = await runOnce(sc, 'onsight', seed, { workload: w, afterRun: (s) => { scanner = s; } });
    const bound = makespanBound(sc, w, scanner!);
    const b = nightBreakdown(sc, bound, scanner!);
    console.log(`seed ${seed}: makespan ${m.makespanH?.toFixed(3)} h, bound ${bound.lowerBoundH.toFixed(3)} h, ratio ${m.makespanRatio?.toFixed(4)}`);
    if (b) {
      const l = b.last;
      console.log(`  last: ${l.region} on ${l.appliances.join('+')}: +${f(b.makespanMin - b.boundMin)} min = start delay ${f(b.startDelay)} + work noise ${f(b.workNoise)} + tail ${f(b.tail)} (its last host started ${f(l.lastHostStart)}, ran ${f(l.lastHostMin)} min) − bound gap ${f(b.boundGap)}`);
      for (const r of [...b.regions].sort((x, y) => x.appliances.join().localeCompare(y.appliances.join()) || x.hostsEnd - y.hostsEnd)) {
        console.log(`  ${r.appliances.join('+')} ${r.region}: first host ${f(r.firstStart)} (bound ${f(r.startMin)}), work/places ${f(r.realizedWork)} (expected ${f(r.expectedWork)}), last host ${f(r.lastHostStart)}–${f(r.hostsEnd)}, scan ended ${f(r.scanEnd)} min`);
      }
    }
    const mc = listOrderMonteCarlo(sc, w, bound, reps, seed);
    for (const o of LIST_ORDERS) {
      const xs = mc[o];
      console.log(`  list order ${o}: makespan/bound mean ${mean(xs).toFixed(4)}, max ${Math.max(...xs).toFixed(4)}, over 1.05 in ${(100 * xs.filter((x) => x > 1.05).length / xs.length).toFixed(0)} % of ${reps}`);
    }
  }
}

// node dist/src/sim/makespan.js SCENARIO|FILE SEEDS [REPS]
if (process.argv[1]?.endsWith('makespan.js')) await main(process.argv.slice(2));
