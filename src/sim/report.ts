/**
 * Aggregation over seeds (mean and 95 % confidence interval), the terminal table, and a
 * self-contained HTML report with inline SVG plots (coverage over time per policy, appliance load).
 */
import type { RunMetrics } from './sim.js';

export interface Stat {
  mean: number;
  /** half-width of the 95 % confidence interval (Student t over seeds) */
  ci: number;
  n: number;
}

const T95 = [NaN, 12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];

export function stat(xs: (number | undefined)[]): Stat | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (!v.length) return undefined;
  const n = v.length;
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci: 0, n };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const t = n - 1 < T95.length ? T95[n - 1] : 1.96;
  return { mean, ci: (t * sd) / Math.sqrt(n), n };
}

export interface PolicySummary {
  policy: string;
  runs: number;
  metrics: Record<string, Stat | undefined>;
  /** runs in which every server was scanned (server scenarios): makespan means are over these only */
  finishedRuns?: number;
  /** the reference (onsight unless said) minus this policy, paired by seed (positive: the reference ahead); not on the reference */
  paired?: Record<string, Stat | undefined>;
  violations: number;
  violationSamples: string[];
  coverageCurve: number[];
  loadCurve: number[][];
}

export interface ScenarioSummary {
  scenario: string;
  /** the policy the others' `paired` figures are against */
  ref: string;
  seeds: number[];
  policies: PolicySummary[];
  workload: Record<string, number>;
}

const KEYS: [string, (m: RunMetrics) => number | undefined][] = [
  // the headline: steady-state rolling compliance (see RunMetrics.compliance)
  ['coverage', (m) => m.compliance],
  ['coverageStrict', (m) => m.complianceStrict],
  ['coverageSteady', (m) => m.coverageSteady],
  ['coverageWindow', (m) => Object.values(m.coverage)[0]],
  ['coverageLast', (m) => Object.values(m.coverage).at(-1)],
  ['wastedShare', (m) => m.wastedShare],
  ['wastedHostHPerDay', (m) => m.wastedHostHPerDay],
  ['lostHostHPerDay', (m) => m.lostHostHPerDay],
  ['wrongHost', (m) => m.wrongHost],
  ['wrongHostMidProbe', (m) => m.wrongHostMidProbe],
  ['targets', (m) => m.targets],
  ['duplicates', (m) => m.duplicates],
  ['apiCallsPerDay', (m) => m.apiCallsPerDay],
  ['apiPeakHour', (m) => m.apiPeakHour],
  ['api409', (m) => m.api409],
  ['utilisation', (m) => m.utilisation],
  ['idleWhileBacklogMin', (m) => m.idleWhileBacklogMin],
  ['othersOverdue', (m) => m.othersOverdue],
  ['latencyP50Min', (m) => m.latencyP50Min],
  ['latencyP99Min', (m) => m.latencyP99Min],
  ['launchLatencyP50Min', (m) => m.launchLatencyP50Min],
  ['launchLatencyP99Min', (m) => m.launchLatencyP99Min],
  ['fairnessJain', (m) => m.fairnessJain],
  ['minRegionCoverage', (m) => m.minRegionCoverage],
  ['makespanH', (m) => m.makespanH],
  ['lowerBoundH', (m) => m.lowerBoundH],
  ['makespanRatio', (m) => m.makespanRatio],
  ['finishedBy8hShare', (m) => m.finishedBy8hShare],
  ['wallMs', (m) => m.wallMs],
];

/** `ref`: the policy the others are paired against (onsight, or `onsight+ranges` in the matrix). */
export function summarize(runs: RunMetrics[], ref = 'onsight'): ScenarioSummary {
  const byPolicy = new Map<string, RunMetrics[]>();
  for (const r of runs) {
    let l = byPolicy.get(r.policy);
    if (!l) byPolicy.set(r.policy, (l = []));
    l.push(r);
  }
  const policies: PolicySummary[] = [];
  for (const [policy, rs] of byPolicy) {
    const metrics: Record<string, Stat | undefined> = {};
    for (const [k, f] of KEYS) metrics[k] = stat(rs.map(f));
    const curve = (pick: (m: RunMetrics) => number[]) => {
      const len = Math.min(...rs.map((r) => pick(r).length));
      return Array.from({ length: len }, (_, i) => rs.reduce((a, r) => a + pick(r)[i], 0) / rs.length);
    };
    policies.push({
      policy, runs: rs.length, metrics,
      finishedRuns: rs.some((r) => r.lowerBoundH !== undefined) ? rs.filter((r) => r.makespanH !== undefined).length : undefined,
      violations: rs.reduce((a, r) => a + Object.values(r.violations).reduce((x, y) => x + y, 0), 0),
      violationSamples: rs.flatMap((r) => r.violationSamples).slice(0, 5),
      coverageCurve: curve((m) => m.coverageCurve),
      loadCurve: rs[0].loadCurve,
    });
  }
  const refRuns = byPolicy.get(ref);
  if (refRuns) {
    for (const p of policies) {
      if (p.policy === ref) continue;
      const other = new Map(byPolicy.get(p.policy)!.map((r) => [r.seed, r]));
      p.paired = {};
      for (const k of PAIRED) {
        const f = KEYS.find(([n]) => n === k)![1];
        p.paired[k] = stat(refRuns.map((r) => {
          const o = other.get(r.seed);
          const a = f(r), b = o && f(o);
          return a === undefined || b === undefined ? undefined : a - b;
        }));
      }
    }
  }
  return { scenario: runs[0]?.scenario ?? '', ref, seeds: [...new Set(runs.map((r) => r.seed))], policies, workload: runs[0]?.workload ?? {} };
}

/** metrics compared pair-wise (same seed, same workload) between the reference (onsight unless said) and each other policy */
const PAIRED = ['coverage', 'coverageStrict', 'apiCallsPerDay', 'wastedShare', 'wastedHostHPerDay'];

/** "reference − policy" lines, with the 95 % CI of the paired difference; `BEHIND` marks a CI wholly below 0. */
export function pairedTable(sum: ScenarioSummary): string {
  const lines: string[] = [];
  for (const p of sum.policies) {
    if (!p.paired) continue;
    const d = p.paired.coverage, ds = p.paired.coverageStrict, api = p.paired.apiCallsPerDay;
    if (!d) continue;
    const pts = (s: Stat | undefined) => (s ? `${s.mean >= 0 ? '+' : ''}${(s.mean * 100).toFixed(1)}±${(s.ci * 100).toFixed(1)} pts` : '—');
    const verdict = d.n < 2 ? 'one seed: no interval' : d.mean - d.ci > 0 ? `${sum.ref} ahead` : d.mean + d.ci < 0 ? `${sum.ref} BEHIND` : 'no significant difference';
    lines.push(`${sum.ref} − ${p.policy}: coverage ${pts(d)} (${verdict}); strict ${pts(ds)}; API/day ${api ? `${api.mean >= 0 ? '+' : ''}${api.mean.toFixed(0)}±${api.ci.toFixed(0)}` : '—'}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

function fmt(s: Stat | undefined, kind: 'pct' | 'num' | 'int' | 'ratio'): string {
  if (!s) return '—';
  const f = (x: number) => (kind === 'pct' ? `${(x * 100).toFixed(1)}%` : kind === 'int' ? x.toFixed(0) : kind === 'ratio' ? x.toFixed(2) : x.toFixed(1));
  return s.n > 1 && s.ci > 0 ? `${f(s.mean)}±${kind === 'pct' ? (s.ci * 100).toFixed(1) : kind === 'ratio' ? s.ci.toFixed(2) : s.ci.toFixed(kind === 'int' ? 0 : 1)}` : f(s.mean);
}

export function table(sum: ScenarioSummary, windows: string[], servers: boolean): string {
  const cols: [string, (p: PolicySummary) => string][] = [
    ['policy', (p) => p.policy],
    ['coverage', (p) => fmt(p.metrics.coverage, 'pct')],
    ['strict', (p) => fmt(p.metrics.coverageStrict, 'pct')],
    [`cov ${windows[0]}`, (p) => fmt(p.metrics.coverageWindow, 'pct')],
  ];
  if (windows.length > 1) cols.push([`cov ${windows.at(-1)}`, (p) => fmt(p.metrics.coverageLast, 'pct')]);
  cols.push(
    ['wasted', (p) => fmt(p.metrics.wastedShare, 'pct')],
    ['wasted host-h/d', (p) => fmt(p.metrics.wastedHostHPerDay, 'num')],
    ['wrong-host', (p) => fmt(p.metrics.wrongHost, 'int')],
    ['dup', (p) => fmt(p.metrics.duplicates, 'int')],
    ['API/day', (p) => fmt(p.metrics.apiCallsPerDay, 'int')],
    ['peak/h', (p) => fmt(p.metrics.apiPeakHour, 'int')],
    ['409s', (p) => fmt(p.metrics.api409, 'int')],
    ['util', (p) => fmt(p.metrics.utilisation, 'pct')],
    ['idle-backlog min', (p) => fmt(p.metrics.idleWhileBacklogMin, 'int')],
  );
  if (servers) {
    cols.push(['finished', (p) => (p.finishedRuns === undefined ? '—' : `${p.finishedRuns}/${p.runs}`)], ['makespan h', (p) => fmt(p.metrics.makespanH, 'num')], ['LB h', (p) => fmt(p.metrics.lowerBoundH, 'num')],
      ['ratio', (p) => fmt(p.metrics.makespanRatio, 'ratio')], ['done 8h', (p) => fmt(p.metrics.finishedBy8hShare, 'pct')]);
  } else {
    cols.push(['p50 min', (p) => fmt(p.metrics.latencyP50Min, 'num')], ['p99 min', (p) => fmt(p.metrics.latencyP99Min, 'num')]);
  }
  cols.push(['Jain', (p) => fmt(p.metrics.fairnessJain, 'ratio')], ['violations', (p) => String(p.violations)], ['wall s', (p) => fmt(p.metrics.wallMs && { ...p.metrics.wallMs, mean: p.metrics.wallMs.mean / 1000, ci: p.metrics.wallMs.ci / 1000 }, 'num')]);
  const rows = [cols.map((c) => c[0]), ...sum.policies.map((p) => cols.map((c) => c[1](p)))];
  const w = cols.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, k) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + (k === 0 ? '\n' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n') + '\n';
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function lineChart(title: string, series: { name: string; ys: number[] }[], xLabel: string, xStep: number, yMax?: number, yPct = false): string {
  const W = 720, Hh = 260, L = 50, B = 30, T = 24, R = 150;
  const n = Math.max(1, ...series.map((s) => s.ys.length));
  const ymax = yMax ?? Math.max(1, ...series.flatMap((s) => s.ys));
  const x = (i: number) => L + ((W - L - R) * i) / Math.max(1, n - 1);
  const y = (v: number) => T + (Hh - T - B) * (1 - v / ymax);
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="11">`;
  out += `<text x="${L}" y="14" font-weight="bold">${esc(title)}</text>`;
  out += `<line x1="${L}" y1="${y(0)}" x2="${W - R}" y2="${y(0)}" stroke="#999"/><line x1="${L}" y1="${T}" x2="${L}" y2="${y(0)}" stroke="#999"/>`;
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    out += `<text x="${L - 4}" y="${y(v) + 4}" text-anchor="end">${yPct ? `${Math.round(v * 100)}%` : Math.round(v)}</text>`;
  }
  for (let k = 0; k <= 5; k++) {
    const i = Math.round(((n - 1) * k) / 5);
    out += `<text x="${x(i)}" y="${Hh - B + 14}" text-anchor="middle">${((i * xStep)).toFixed(xStep < 1 ? 1 : 0)}</text>`;
  }
  out += `<text x="${(W - R + L) / 2}" y="${Hh - 2}" text-anchor="middle">${esc(xLabel)}</text>`;
  series.forEach((s, k) => {
    const pts = s.ys.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out += `<polyline fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="1.5" points="${pts}"/>`;
    out += `<rect x="${W - R + 10}" y="${T + k * 16}" width="10" height="10" fill="${COLORS[k % COLORS.length]}"/><text x="${W - R + 24}" y="${T + k * 16 + 9}">${esc(s.name)}</text>`;
  });
  return out + '</svg>';
}

export function htmlReport(sums: { summary: ScenarioSummary; table: string; appliances: string[] }[], title: string): string {
  let body = '';
  for (const { summary, table: t, appliances } of sums) {
    body += `<h2>${esc(summary.scenario)}</h2><p>seeds: ${summary.seeds.join(', ')}; workload: ${esc(Object.entries(summary.workload).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`).join(', '))}</p>`;
    body += `<pre>${esc(t)}</pre>`;
    body += lineChart('Hosts validly scanned at least once (share of hosts present ≥ 30 min)', summary.policies.map((p) => ({ name: p.policy, ys: p.coverageCurve })), 'hours', 1, 1, true);
    for (const p of summary.policies) {
      const series = appliances.map((a, i) => ({ name: a, ys: p.loadCurve.map((l) => l[i]) }));
      body += lineChart(`Appliance load (host jobs running), ${p.policy}, first seed`, series, 'hours', 10 / 60);
      if (p.violationSamples.length) body += `<p style="color:#b00">violations: ${esc(p.violationSamples.join('; '))}</p>`;
    }
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}pre{background:#f6f6f6;padding:8px;overflow-x:auto}svg{display:block;margin:8px 0}</style></head>
<body><h1>${esc(title)}</h1><p>Means over seeds with 95 % confidence intervals (±). Metrics: workload model §4.7; see src/sim/README.md.</p>${body}</body></html>\n`;
}
