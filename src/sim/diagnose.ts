/**
 * Per-device diagnosis: why does one policy miss the (host, day) pairs another catches? Both run
 * on the same workload; each pair of the headline coverage (rolling compliance, sim.ts) that `b`
 * covers and `a` does not is put in one cause, from the simulator's ground truth:
 *  - `unprocessed`: `a` scanned the host validly in the window, but the results were never
 *    processed (a canceled or errored scan) or only after the day's end;
 *  - `left-mid-scan`: `a` targeted the host while due, and every target was truncated or dead;
 *  - `brief-while-due`: the host was present less than 30 min in all after it became due (by
 *    `a`'s last valid scan and the policy's due rule) and before the day's end;
 *  - `present-not-launched`: present longer, never targeted after it became due (queue, capacity,
 *    budget);
 *  - `never-scanned`: present, `a` never had a valid scan of it (split by presence as above).
 * `onsight simulate` does not print it; `node dist/src/sim/diagnose.js SCENARIO SEED [LAPTOPS] [DAYS]` does.
 */
import { loadScenario, type Scenario } from './scenario.js';
import { runOnce } from './sim.js';
import type { SimScanner } from './scanner.js';
import { generateWorkload, type Presence, type Workload } from './workload.js';
import { rescanLeadFor } from '../policy/policy.js';

const DAY = 86400_000;
const MIN = 60_000;

interface RunView {
  /** valid, processed scan ends per host (processed at) */
  valid: Map<number, { end: number; processedAt: number }[]>;
  /** every target meant for a host: launch time, start, outcome, scan state */
  targets: Map<number, { launchedAt: number; start: number; end: number; outcome: string }[]>;
  launches: number[];
  /** targets by outcome */
  outcomes: Record<string, number>;
}

function view(scanner: SimScanner, canceledProcessed: boolean): RunView {
  const valid = new Map<number, { end: number; processedAt: number }[]>();
  const targets = new Map<number, { launchedAt: number; start: number; end: number; outcome: string }[]>();
  for (const t of scanner.targets) {
    const s = scanner.scans[t.scan - 1];
    if (t.outcome === 'valid' && t.actual !== undefined && s.processedAt !== undefined && (s.state === 'finished' || canceledProcessed)) {
      (valid.get(t.actual) ?? valid.set(t.actual, []).get(t.actual)!).push({ end: t.end, processedAt: s.processedAt });
    }
    if (t.intended !== undefined) (targets.get(t.intended) ?? targets.set(t.intended, []).get(t.intended)!).push({ launchedAt: t.launchedAt, start: t.start, end: t.end, outcome: t.outcome });
  }
  const outcomes: Record<string, number> = {};
  for (const t of scanner.targets) outcomes[t.outcome] = (outcomes[t.outcome] ?? 0) + 1;
  return { valid, targets, outcomes, launches: scanner.scans.filter((s) => !s.other).map((s) => s.launchedAt) };
}

function presentWithin(ps: Presence[], s: number, t: number): number {
  let sum = 0;
  for (const p of ps) sum += Math.max(0, Math.min(p.end, t) - Math.max(p.start, s));
  return sum;
}

export interface Diagnosis {
  pairs: number;
  coveredA: number;
  coveredB: number;
  /** pairs b covers and a misses, by cause */
  missedByA: Record<string, number>;
  /** the reverse count (a covers, b misses) */
  missedByB: number;
  /** for present-not-launched pairs: minutes present while due (median) */
  presentWhileDueP50Min?: number;
  /** for targeted pairs: minutes from the host's first presence while due to the first launch */
  launchWaitMin?: { p50: number; max: number; n: number };
  /** a's launches per hour of day (all days) */
  launchesByHour: number[];
  /** a's targets by outcome, and its API calls */
  outcomesA: Record<string, number>;
  callsA: number;
}

export async function diagnose(sc: Scenario, seed: number, a = 'onsight', b = 'twice-daily-scheduled'): Promise<Diagnosis> {
  const w: Workload = generateWorkload(sc, seed);
  let va: RunView | undefined, vb: RunView | undefined;
  const ma = await runOnce(sc, a, seed, { workload: w, afterRun: (s) => (va = view(s, sc.scan.canceledProcessed)) });
  await runOnce(sc, b, seed, { workload: w, afterRun: (s) => (vb = view(s, sc.scan.canceledProcessed)) });
  const byHost = new Map<number, Presence[]>();
  for (const p of w.presences) (byHost.get(p.host) ?? byHost.set(p.host, []).get(p.host)!).push(p);
  const W = sc.metrics.windowsDays[0];
  const dueAfterMs = Math.max(sc.policy.rescanAfterH * 1800_000, sc.policy.rescanAfterH * 3600_000 - rescanLeadFor(sc.policy.rescanAfterH * 3600) * 1000);
  const days = Math.floor((w.end - w.start) / DAY + 1e-9);
  const out: Diagnosis = { pairs: 0, coveredA: 0, coveredB: 0, missedByA: {}, missedByB: 0, launchesByHour: new Array(24).fill(0), outcomesA: va!.outcomes, callsA: ma.apiCallsPerDay };
  const whileDue: number[] = [];
  const waits: number[] = [];
  const covered = (v: RunView, h: number, t: number) => (v.valid.get(h) ?? []).some((x) => x.end <= t && x.end > t - W * DAY && x.processedAt <= t);
  const bump = (k: string) => (out.missedByA[k] = (out.missedByA[k] ?? 0) + 1);
  for (let d = Math.ceil(W); d < days; d++) {
    const s = w.start + d * DAY, t = s + DAY;
    for (const [h, ps] of byHost) {
      if (presentWithin(ps, s, t) < sc.metrics.minPresenceMin * MIN) continue;
      out.pairs++;
      const ca = covered(va!, h, t), cb = covered(vb!, h, t);
      if (ca) out.coveredA++;
      if (cb) out.coveredB++;
      if (ca && !cb) out.missedByB++;
      if (!cb || ca) continue;
      const valid = (va!.valid.get(h) ?? []).filter((x) => x.end <= t);
      if (valid.some((x) => x.end > t - W * DAY)) {
        bump('unprocessed (valid scan, results after the day or never)');
        continue;
      }
      const last = valid.length ? Math.max(...valid.map((x) => x.end)) : undefined;
      const dueAt = last === undefined ? w.start : last + dueAfterMs;
      const tried = (va!.targets.get(h) ?? []).filter((x) => x.launchedAt >= dueAt && x.launchedAt < t);
      if (process.env.DIAG_DETAIL && tried.length) {
        const f = (x: number) => new Date(x).toISOString().slice(5, 16);
        console.error(`host ${h} day ${d} last ${last === undefined ? '-' : f(last)} due ${f(dueAt)}\n  presences: ${ps.filter((p) => p.end > dueAt - DAY && p.start < t).map((p) => `${p.net} ${p.ip} ${f(p.start)}–${f(p.end)}`).join('; ')}\n  targets: ${(va!.targets.get(h) ?? []).filter((x) => x.launchedAt >= dueAt - DAY).map((x) => `${x.outcome} launch ${f(x.launchedAt)} start ${f(x.start)}`).join('; ')}`);
      }
      const pres = presentWithin(ps, Math.max(dueAt, t - W * DAY), t);
      const prefix = last === undefined ? 'never scanned: ' : '';
      if (tried.length) {
        bump(`${prefix}targeted, ${[...new Set(tried.map((x) => x.outcome))].sort().join('/')}`);
        // a truncated target whose host came back on the same address soon after (a DHCP reconnect the logs show)
        const tr = tried.filter((x) => x.outcome === 'truncated');
        if (tr.some((x) => ps.some((p) => p.start > x.start && p.start <= x.end + 30 * MIN && p.net !== 'vpn'))) bump('  of which truncated, then a DHCP reconnect within 30 min of the target');
        const firstPres = ps.filter((p) => p.end > dueAt).map((p) => Math.max(p.start, dueAt)).sort((x, y) => x - y)[0];
        if (firstPres !== undefined) waits.push((Math.min(...tried.map((x) => x.launchedAt)) - firstPres) / MIN);
      }
      else if (pres < 30 * MIN) bump(`${prefix}present < 30 min while due`);
      else if (pres < 120 * MIN) bump(`${prefix}present 30–120 min while due, not launched`);
      else {
        bump(`${prefix}present ≥ 2 h while due, not launched`);
        whileDue.push(pres / MIN);
      }
    }
  }
  whileDue.sort((x, y) => x - y);
  if (whileDue.length) out.presentWhileDueP50Min = whileDue[whileDue.length >> 1];
  waits.sort((x, y) => x - y);
  if (waits.length) out.launchWaitMin = { p50: waits[waits.length >> 1], max: waits[waits.length - 1], n: waits.length };
  for (const l of va!.launches) out.launchesByHour[new Date(l).getUTCHours()]++;
  return out;
}

// node dist/src/sim/diagnose.js SCENARIO|FILE SEED [LAPTOPS] [DAYS]
if (process.argv[1]?.endsWith('diagnose.js')) {
  const [name = 'mobile-fleet', seed = '1', laptops = '500', days = '9'] = process.argv.slice(2);
  const sc = loadScenario(name);
  sc.days = Number(days);
  if (sc.fleet) sc.fleet = { ...sc.fleet, laptops: Number(laptops) };
  const r = await diagnose(sc, Number(seed), process.env.A ?? 'onsight', process.env.B ?? 'twice-daily-scheduled');
  console.log(JSON.stringify(r, null, 1));
}
