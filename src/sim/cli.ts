/**
 * `onsight simulate`: run a scenario under one or all policies over seeds; print a table, or JSON
 * with --json; write a self-contained HTML report with --report FILE.
 */
import { writeFileSync } from 'node:fs';
import { OnsightError } from '../errors.js';
import { expandPolicies, isPolicyName, POLICY_NAMES } from './policies.js';
import { htmlReport, pairedTable, summarize, table, type ScenarioSummary } from './report.js';
import { loadScenario, type Scenario } from './scenario.js';
import { runOnce, type RunMetrics } from './sim.js';
import { matrixTable, runMatrix, type MatrixOptions } from './matrix.js';
import { generateWorkload } from './workload.js';

export interface SimulateArgs {
  scenario: string;
  policy?: string;
  seed?: number;
  seeds?: number;
  json?: boolean;
  report?: string;
  days?: number;
}

export interface SimulateResult {
  scenario: Scenario;
  runs: RunMetrics[];
  summary: ScenarioSummary;
}

/** Run without printing (bench, tests). */
export async function simulate(args: SimulateArgs, progress?: (line: string) => void): Promise<SimulateResult> {
  const sc = loadScenario(args.scenario);
  if (args.days !== undefined) {
    if (!(args.days > 0)) throw new OnsightError('ONSIGHT_USAGE', `--days must be a positive number, got ${args.days}`);
    sc.days = args.days;
  }
  const policies = expandPolicies(sc, args.policy);
  for (const p of policies) if (!isPolicyName(p)) throw new OnsightError('ONSIGHT_USAGE', `unknown policy "${p}" (known: ${POLICY_NAMES.join(', ')})`);
  const first = args.seed ?? 1;
  const n = args.seeds ?? (args.seed !== undefined ? 1 : sc.seeds);
  if (!Number.isInteger(first) || !Number.isInteger(n) || n < 1) throw new OnsightError('ONSIGHT_USAGE', '--seed and --seeds take whole numbers (seeds ≥ 1)');
  const runs: RunMetrics[] = [];
  for (let seed = first; seed < first + n; seed++) {
    const w = generateWorkload(sc, seed);
    for (const p of policies) {
      const m = await runOnce(sc, p, seed, { workload: w });
      runs.push(m);
      progress?.(`${sc.name} seed ${seed} ${p}: ${(m.wallMs / 1000).toFixed(1)} s`);
    }
  }
  return { scenario: sc, runs, summary: summarize(runs) };
}

export async function runSimulateCli(args: SimulateArgs, out: NodeJS.WritableStream): Promise<number> {
  let r: SimulateResult;
  try {
    r = await simulate(args, args.json ? undefined : (l) => process.stderr.write(`${l}\n`));
  } catch (err) {
    const code = (err as OnsightError).code;
    process.stderr.write(`onsight simulate: ${(err as Error).message}\n`);
    return code === 'ONSIGHT_CONFIG_INVALID' || code === 'ONSIGHT_USAGE' ? 2 : 1;
  }
  const windows = r.scenario.metrics.windowsDays.map((d) => `${d}d`);
  const t = table(r.summary, windows, !!r.scenario.servers);
  if (args.json) {
    out.write(JSON.stringify({
      scenario: r.scenario.name, days: r.scenario.days, seeds: r.summary.seeds,
      summary: r.summary.policies.map(({ coverageCurve: _c, loadCurve: _l, ...p }) => p),
      runs: r.runs.map(({ coverageCurve: _c, loadCurve: _l, ...m }) => m),
    }, null, 2) + '\n');
  } else {
    const paired = pairedTable(r.summary);
    out.write(`scenario ${r.scenario.name}: ${r.scenario.description}\n${r.scenario.days} days, seeds ${r.summary.seeds.join(', ')}; mean ± 95 % CI over seeds\n\n${t}${paired ? `\n${paired}` : ''}`);
  }
  if (args.report) {
    writeFileSync(args.report, htmlReport([{ summary: r.summary, table: t, appliances: r.scenario.appliances.map((a) => a.name) }], `onsight simulate: ${r.scenario.name}`));
    if (!args.json) out.write(`\nreport written to ${args.report}\n`);
  }
  const onsight = r.summary.policies.find((p) => p.policy === 'onsight');
  return onsight && onsight.violations > 0 ? 1 : 0;
}

/** `onsight simulate --matrix`: progress on stderr, the per-cell table (or JSON) on stdout. */
export async function runMatrixCli(o: MatrixOptions, json: boolean, out: NodeJS.WritableStream): Promise<number> {
  try {
    const t0 = Date.now();
    const res = await runMatrix(o, (l) => process.stderr.write(`${l} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`));
    if (json) {
      out.write(JSON.stringify(res.map((r) => ({
        knob: r.cell.knob, value: r.cell.value, limitPerDay: r.limitPerDay,
        summary: r.summary.policies.map(({ coverageCurve: _c, loadCurve: _l, ...p }) => p),
        // the same runs paired against each subject (summary[].paired is against onsight)
        pairedBySubject: Object.fromEntries(Object.entries(r.bySubject).map(([s, sum]) => [s, Object.fromEntries(sum.policies.filter((p) => p.paired).map((p) => [p.policy, p.paired]))])),
      })), null, 2) + '\n');
    } else {
      out.write(`matrix around ${o.base}: ${o.days ?? 'scenario'} days, ${o.seeds ?? 2} seed(s)${o.laptops ? `, ${o.laptops} laptops` : ''}; coverage = steady-state rolling compliance (src/sim/README.md)\n\n${matrixTable(res)}`);
    }
    return 0;
  } catch (err) {
    const code = (err as OnsightError).code;
    process.stderr.write(`onsight simulate --matrix: ${(err as Error).message}\n`);
    return code === 'ONSIGHT_CONFIG_INVALID' || code === 'ONSIGHT_USAGE' ? 2 : 1;
  }
}
