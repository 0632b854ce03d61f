/**
 * `onsight simulate --matrix`: one assumption at a time (workload model §4.4 marks them [A]) swept
 * around a base scenario; each cell runs the subjects (onsight; onsight+ranges when asked for), the
 * baselines and the relaxation bound on the same workloads, and prints each subject against each of
 * them (paired over seeds), so the conditions where a subject loses or misses a target are printed
 * next to those where it wins.
 */
import { loadScenario, parseScenarioText, type Scenario } from './scenario.js';
import { runOnce, type RunMetrics } from './sim.js';
import { summarize, type PolicySummary, type ScenarioSummary, type Stat } from './report.js';
import { UsageError } from '../errors.js';
import { generateWorkload } from './workload.js';

export interface MatrixCell {
  /** the assumption swept, e.g. `scan.medianMin` */
  knob: string;
  value: string;
  /** scenario-file overrides (merged into the base as a scenario file would be) */
  override: Record<string, unknown>;
}

/** The cells: each assumption at values below and above the base's. */
export function matrixCells(base: Scenario): MatrixCell[] {
  const cells: MatrixCell[] = [{ knob: 'base', value: base.name, override: {} }];
  const add = (knob: string, value: string | number, override: Record<string, unknown>) => cells.push({ knob, value: String(value), override });
  for (const v of [4, 16]) add('scan.medianMin (per-host time)', v, { scan: { medianMin: v } });
  for (const v of [1.0, 1.5]) add('scan.sigma (tail)', v, { scan: { sigma: v } });
  // at a fixed median a wider tail is also a longer mean (σ 1.5: 2.7× σ 0.5's), which lengthens other
  // tools' nightly scans too: the same tail at the base's mean separates the shape from the work
  const s0 = base.scan;
  const sameMean = +(s0.medianMin * Math.exp((s0.sigma ** 2 - 1.5 ** 2) / 2)).toFixed(3);
  add('scan.sigma (tail) at the base mean', `1.5 (median ${sameMean} min)`, { scan: { sigma: 1.5, medianMin: sameMean } });
  // what the operator configures (maxScans; absent = the daemon's default, 1) against the truth
  for (const [conf, truth] of [[undefined, 1], [undefined, 4], [2, 2], [4, 2], [4, 1]] as const) {
    add('appliance slots (configured/true)', `${conf ?? 'default'}/${truth}`, {
      appliances: base.appliances.map((a) => ({ ...a, slots: truth })), ...(conf === undefined ? {} : { policy: { applianceMaxScans: conf } }),
    });
  }
  for (const [conf, poll] of [[120, 190], [360, 600], [900, 190]] as const) {
    add('pickupS (configured/true poll s)', `${conf}/${poll}`, { appliances: base.appliances.map((a) => ({ ...a, pollIntervalS: poll })), policy: { pickupS: conf } });
  }
  // the option profile's hosts in parallel as configured (absent = the daemon's default, 10) against the truth,
  // where onsight cannot read the profile (api.optionProfileHidden): configured above the truth, a transient
  // target can come in a later wave than onsight thinks. Then the same mismatch where it reads the profile.
  for (const [conf, truth] of [[undefined, 30], [30, 30], [30, 10]] as const) {
    add('hostsInParallel (configured/true)', `${conf ?? 'default'}/${truth}`, {
      appliances: base.appliances.map((a) => ({ ...a, hostsInParallel: truth })), ...(conf === undefined ? {} : { policy: { hostsInParallel: conf } }),
      api: { optionProfileHidden: true },
    });
  }
  add('hostsInParallel (configured/true)', '30/10, profile read', { appliances: base.appliances.map((a) => ({ ...a, hostsInParallel: 10 })), policy: { hostsInParallel: 30 } });
  for (const v of [60, 600]) add('appliance poll interval s', v, { appliances: base.appliances.map((a) => ({ ...a, pollIntervalS: v })) });
  for (const v of [0, 300]) add('policy.logDelayS', v, { policy: { logDelayS: v } });
  for (const v of [0, 60, 120]) add('scan.hostListLagMin', v, { scan: { hostListLagMin: v } });
  add('scan.canceledProcessed', 'true', { scan: { canceledProcessed: true } });
  if (base.fleet) {
    for (const v of [0.5, 0.95]) add('fleet.utilisation (pool)', v, { fleet: { utilisation: v } });
    for (const v of [2, 4]) add('fleet.stayMedianH (visit)', v, { fleet: { stayMedianH: v } });
    // how the VPN hub picks a free address [A]: the base's lowest-free hands a freed address to the
    // next user at once (a probe of the one who left reaches the next); least recently released
    // (OpenVPN's pool, src/sim/README.md) or random spread reuse out. It drives mid-probe wrong hosts
    for (const v of ['lru', 'random'] as const) if (v !== base.fleet.vpnAlloc) add('fleet.vpnAlloc (VPN pool)', v, { fleet: { vpnAlloc: v } });
  }
  add('daytime foreign scans', '1500/region at 10:00', { background: { hostsPerRegion: 1500, at: '10:00' } });
  for (const [v, api] of [['50/day', { limit: 50, windowS: 86400, concurrency: 1 }], ['300/day', { limit: 300, windowS: 86400 }], ['2000/h', { limit: 2000, windowS: 3600, concurrency: 10 }]] as const) {
    add('API tier', v, { api });
  }
  // a daemon is restarted (an upgrade, a reboot) and a scheduled scan is not: what onsight keeps
  // across a restart (scheduler/memory.ts) against what it loses (last in the list: the cells before keep their places)
  add('onsight restarted (upgrade, reboot)', 'daily', { policy: { restartEveryH: 24 } });
  return cells;
}

export interface MatrixResult {
  cell: MatrixCell;
  /** every policy, paired against onsight */
  summary: ScenarioSummary;
  /** the same runs paired against each subject run (onsight, and onsight+ranges when asked for) */
  bySubject: Record<string, ScenarioSummary>;
  limitPerDay: number;
  /**
   * What other tools' scans leave, from the bound's runs (which launch nothing): the largest share
   * of the run that they held every slot of one appliance (mean over seeds, and the appliance most
   * often so), and where some of theirs waited over a day for a slot (their queue grows every night:
   * they overrun it). A bound that ignores capacity cannot be reached where this is high. Undefined
   * when the bound did not run.
   */
  othersAlone?: { fullShare: number; fullOn?: string; overrunOn: string[]; overrunSeeds: number; seeds: number };
}

/** The policies judged against the baselines, each in a row of its own; neither is a baseline of the other. */
export const MATRIX_SUBJECTS = ['onsight', 'onsight+ranges'];

export interface MatrixOptions {
  base: string;
  days?: number;
  seeds?: number;
  /** laptops in the fleet (smaller = faster; contention changes with it, so say so when reporting) */
  laptops?: number;
  policies?: string[];
  /** run only the cells whose knob contains one of these texts, separated by commas (the base cell always runs) */
  only?: string;
}

export const MATRIX_POLICIES = ['onsight', 'twice-daily', 'twice-daily-scheduled', 'twice-daily-informed', 'batch-15min', 'batch-15min-verified', 'oracle', 'bound'];

/** A cell's runs summed up: every policy paired against onsight, and against each subject that ran. */
export function matrixResult(cell: MatrixCell, runs: RunMetrics[], limitPerDay: number): MatrixResult {
  const bySubject: Record<string, ScenarioSummary> = Object.fromEntries(MATRIX_SUBJECTS.filter((sub) => runs.some((r) => r.policy === sub)).map((sub) => [sub, summarize(runs, sub)]));
  return { cell, summary: bySubject.onsight ?? summarize(runs), bySubject, limitPerDay, othersAlone: othersAlone(runs.filter((r) => r.policy === 'bound')) };
}

function othersAlone(alone: RunMetrics[]): MatrixResult['othersAlone'] {
  if (!alone.length) return undefined;
  const over = alone.filter((r) => r.othersOverdue > 0);
  const on = new Map<string, number>();
  for (const r of alone) if (r.othersFullOn) on.set(r.othersFullOn, (on.get(r.othersFullOn) ?? 0) + 1);
  const fullOn = [...on].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
  return {
    fullShare: alone.reduce((a, r) => a + r.othersFullShare, 0) / alone.length, ...(fullOn ? { fullOn } : {}),
    overrunOn: [...new Set(over.flatMap((r) => r.othersOverdueOn))].sort(), overrunSeeds: over.length, seeds: alone.length,
  };
}

/** A policy a subject is judged against: not an onsight variant, not the oracle heuristic or the bound. */
export function isBaseline(policy: string): boolean {
  return !policy.startsWith('onsight') && policy !== 'oracle' && policy !== 'bound';
}

/** The policies a matrix runs: those named must include a subject and a baseline, or nothing would be judged. */
export function matrixPolicies(named: string[] | undefined): string[] {
  if (!named) return MATRIX_POLICIES;
  if (!named.some((p) => MATRIX_SUBJECTS.includes(p)) || !named.some(isBaseline)) {
    throw new UsageError(`--matrix --policy needs a subject (${MATRIX_SUBJECTS.join(', ')}) and at least one baseline (e.g. ${MATRIX_POLICIES.filter(isBaseline).join(', ')}); got ${named.join(', ')}`);
  }
  return named;
}

/**
 * The cells `--only` picks: those whose knob contains one of its comma-separated texts, and the base
 * (every cell is paired against it in the table). A text that names no knob is refused, naming the
 * knobs, rather than quietly running the base alone.
 */
export function cellsOnly(cells: MatrixCell[], only: string | undefined): MatrixCell[] {
  if (only === undefined) return cells;
  const texts = only.split(',').map((t) => t.trim()).filter((t) => t);
  if (!texts.length) throw new UsageError('--only needs the text of at least one knob');
  const knobs = [...new Set(cells.map((c) => c.knob))].filter((k) => k !== 'base');
  const unknown = texts.filter((t) => !knobs.some((k) => k.includes(t)));
  if (unknown.length) throw new UsageError(`--only: no knob contains ${unknown.map((t) => `"${t}"`).join(', ')}; the knobs: ${knobs.join('; ')}`);
  return cells.filter((c) => c.knob === 'base' || texts.some((t) => c.knob.includes(t)));
}

export async function runMatrix(o: MatrixOptions, progress?: (line: string) => void): Promise<MatrixResult[]> {
  const base = loadScenario(o.base);
  const policies = matrixPolicies(o.policies);
  const out: MatrixResult[] = [];
  const cells = cellsOnly(matrixCells(base), o.only);
  for (const cell of cells) {
    const file: Record<string, unknown> = { extends: o.base, name: `${base.name} | ${cell.knob}=${cell.value}`, ...cell.override };
    if (o.days !== undefined) file.days = o.days;
    if (o.laptops !== undefined && base.fleet) file.fleet = { ...(file.fleet as object ?? {}), laptops: o.laptops };
    const sc = parseScenarioText(JSON.stringify(file), `matrix cell ${cell.knob}`);
    const seeds = o.seeds ?? 2;
    const runs: RunMetrics[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      const w = generateWorkload(sc, seed);
      for (const p of policies) runs.push(await runOnce(sc, p, seed, { workload: w }));
    }
    out.push(matrixResult(cell, runs, sc.api.limit * (86400 / sc.api.windowS)));
    progress?.(`matrix: ${cell.knob} = ${cell.value} done`);
  }
  return out;
}

/** What the scheduler is held to in every cell, besides coverage not below any baseline's and calls within the allowance. */
export const TARGETS = { boundShare: 0.9, wrongHostPerTarget: 1 / 10_000, wastedTimeShare: 1 / 3 };

const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);

/** One line per cell and subject (onsight; onsight+ranges when run), then the cells where a subject loses or misses a target. */
export function matrixTable(results: MatrixResult[]): string {
  const rows: string[][] = [['assumption', 'value', 'policy', 'coverage', 'best baseline', '− best (paired)', 'bound', '/bound', 'API/day (limit)', 'wrong-host /10k', 'wasted vs 2×daily', 'wasted time vs 2×daily', 'others alone: all slots held']];
  const losses: string[] = [];
  const oneSeed: string[] = [];
  // each target's list, and how many rows it could judge (a cell without the bound or twice-daily cannot be)
  const short = { bound: { l: [] as string[], judged: 0 }, wrongHost: { l: [] as string[], judged: 0 }, wasted: { l: [] as string[], judged: 0 } };
  let judgedRows = 0;
  const overrunCells: string[] = [];
  for (const { cell, bySubject, limitPerDay, othersAlone: oa } of results) {
    const held = oa ? `${pct(oa.fullShare)}${oa.fullOn ? ` ${oa.fullOn}` : ''}${oa.overrunSeeds ? `, overrun ${oa.overrunOn.join(',')} (${oa.overrunSeeds}/${oa.seeds})` : ''}` : '—';
    if (oa?.overrunSeeds) overrunCells.push(`${cell.knob} = ${cell.value}: ${oa.overrunOn.join(', ')}, in ${oa.overrunSeeds} of ${oa.seeds} seeds`);
    // a loss, a bound missed or time wasted where others alone hold an appliance's slots over half the run is judged on what they leave
    const mark = oa && oa.fullShare > 0.5 ? ` [others alone hold every slot of ${oa.fullOn} ${pct(oa.fullShare)} of the run${oa.overrunSeeds ? `, overrun ${oa.overrunOn.join(', ')}` : ''}]` : '';
    for (const [subject, summary] of Object.entries(bySubject)) {
      const get = (n: string) => summary.policies.find((p) => p.policy === n);
      const o = get(subject);
      if (!o) continue;
      judgedRows++;
      const baselines = summary.policies.filter((p) => isBaseline(p.policy));
      const best = baselines.sort((a, b) => (b.metrics.coverage?.mean ?? 0) - (a.metrics.coverage?.mean ?? 0))[0] as PolicySummary | undefined;
      const d = best?.paired?.coverage;
      const bound = get('bound')?.metrics.coverage?.mean;
      // a probe that went on after the address changed hands reached the new holder too
      const wrong = (o.metrics.wrongHost?.mean ?? 0) + (o.metrics.wrongHostMidProbe?.mean ?? 0);
      const targets = o.metrics.targets?.mean;
      const twice = get('twice-daily')?.metrics.wastedShare?.mean;
      const twiceTime = get('twice-daily')?.metrics.wastedHostHPerDay?.mean;
      const wastedTime = o.metrics.wastedHostHPerDay?.mean ?? 0;
      const coverage = o.metrics.coverage?.mean ?? 0;
      // each ratio once, for the row and the target's list (undefined: the run it needs is missing)
      const ofBound = bound ? coverage / bound : undefined;
      const wrongPer10k = targets ? (wrong / targets) * 10_000 : undefined;
      const ofTwiceTime = twiceTime === undefined ? undefined : twiceTime ? (wastedTime / twiceTime).toFixed(2) : wastedTime ? '∞' : '0';
      const diff = (x: Stat) => `${x.mean >= 0 ? '+' : ''}${(x.mean * 100).toFixed(1)}${x.n > 1 ? `±${(x.ci * 100).toFixed(1)}` : ' (one seed)'}`;
      rows.push([
        cell.knob, cell.value, subject, pct(o.metrics.coverage?.mean), best ? `${best.policy} ${pct(best.metrics.coverage?.mean)}` : '—',
        d ? diff(d) : '—',
        pct(bound), ofBound?.toFixed(2) ?? '—',
        `${(o.metrics.apiCallsPerDay?.mean ?? 0).toFixed(0)} (${limitPerDay.toFixed(0)})`,
        wrongPer10k?.toFixed(1) ?? '—',
        twice ? ((o.metrics.wastedShare?.mean ?? 0) / twice).toFixed(2) : '—',
        ofTwiceTime ?? '—',
        held,
      ]);
      const at = `${cell.knob} = ${cell.value}: ${subject}`;
      for (const b of baselines) {
        const pd = b.paired?.coverage;
        if (!pd || pd.mean >= 0) continue;
        const line = `${at} ${pct(o.metrics.coverage?.mean)} < ${b.policy} ${pct(b.metrics.coverage?.mean)} (${diff(pd)} pts)${mark}`;
        if (pd.n < 2) oneSeed.push(line);
        else if (pd.mean + pd.ci < 0) losses.push(line);
      }
      if ((o.metrics.apiCallsPerDay?.mean ?? 0) > limitPerDay) losses.push(`${at} over the API allowance`);
      // the mean a day can hide a window spent early: a call the platform refused was over it
      if ((o.metrics.api409?.mean ?? 0) > 0) losses.push(`${at} had calls refused by the allowance (${(o.metrics.api409!.mean).toFixed(1)} a run)`);
      if (ofBound !== undefined) {
        short.bound.judged++;
        if (coverage < TARGETS.boundShare * bound!) short.bound.l.push(`${at} ${ofBound.toFixed(2)} of the bound (${pct(bound)})${mark}`);
      }
      if (wrongPer10k !== undefined) {
        short.wrongHost.judged++;
        if (wrong / targets! > TARGETS.wrongHostPerTarget) short.wrongHost.l.push(`${at} ${wrongPer10k.toFixed(1)} per 10,000 (${wrong.toFixed(1)} of ${targets!.toFixed(0)} a run)`);
      }
      if (twiceTime !== undefined) {
        short.wasted.judged++;
        if (wastedTime > TARGETS.wastedTimeShare * twiceTime) short.wasted.l.push(`${at} ${ofTwiceTime} of twice-daily's (${wastedTime.toFixed(1)} against ${twiceTime.toFixed(1)} host-h a day)${mark}`);
      }
    }
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const text = rows.map((r, k) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (k === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
  const list = (title: string, l: string[], judged = judgedRows) => {
    const partly = judged < judgedRows ? `judged in ${judged} of ${judgedRows} rows: the others lack the run it needs (the bound, twice-daily)` : '';
    return `\n${title}:\n${l.length ? l.map((x) => `  ${x}`).join('\n') + (partly ? `\n  (${partly})` : '') : `  none${partly ? ` (${partly})` : ''}`}\n`;
  };
  return `${text}\n` +
    list('where a subject loses (paired 95 % CI wholly below 0, over the allowance, or calls refused by it)', losses) +
    (oneSeed.length ? list('behind with one seed (no interval: run more seeds to judge)', oneSeed) : '') +
    list(`below ${TARGETS.boundShare * 100} % of the relaxation bound`, short.bound.l, short.bound.judged) +
    list(`wrong-host above ${TARGETS.wrongHostPerTarget * 10_000} per 10,000 targets`, short.wrongHost.l, short.wrongHost.judged) +
    list('wasted appliance time above a third of twice-daily\'s', short.wasted.l, short.wasted.judged) +
    list('where other tools\' scans alone overrun an appliance (in the bound\'s runs, which launch nothing, some of theirs waited over a day for a slot: their queue grows every night, and every policy shares what is left)', overrunCells);
}
