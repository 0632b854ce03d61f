/** `onsight report --since 7d [--csv|--html|--json] [--region R]`: coverage per region (src/coverage/report.ts). Read-only. */
import { OperatorMarks } from '../scheduler/marks.js';
import type { Config } from '../config/schema.js';
import { policyFor } from '../config/derive.js';
import { coverageReport, MISSED_KEYS, type CoverageCounts, type CoverageReport } from '../coverage/report.js';
import { UsageError } from '../errors.js';
import { printable, safeJson } from './printable.js';
import { table, withStateView } from './views.js';

export type ReportFormat = 'table' | 'csv' | 'html' | 'json';

export async function buildReport(config: Config, from: number, now: number, region?: string): Promise<CoverageReport> {
  if (region !== undefined && !config.regions.some((r) => r.name === region)) {
    throw new UsageError(`--region: no region "${printable(region)}" in the config (known: ${config.regions.map((r) => r.name).join(', ')})`);
  }
  return withStateView(config, 'report', async ({ inventory, scheduler: store, history }) =>
    coverageReport({ inventory, store, history, policy: policyFor(config), marks: await new OperatorMarks(store).all(), from, to: now, now, region }));
}

/** The total's label in the table, CSV and HTML (JSON has it apart, as `total`). */
const TOTAL = '(total)';

/** What the rows and the total mean when a device was in several places (under the table; in the HTML page's heading). */
const COUNTING = 'A device seen in several regions counts in each, and once in the total (as the region it was last seen in counts it). '
  + '"(no region)": devices in scope that no region maps; onsight never scans them.';

// columns added later go last, so that a script reading the CSV by position still finds the others
const FIRST_MISSED_KEYS = MISSED_KEYS.filter((k) => k !== 'no-region');
const LATER_MISSED_KEYS = MISSED_KEYS.filter((k) => k === 'no-region');
const missedColumn = (k: string) => `missed_${k.replace(/-/g, '_')}`;
const COLUMNS = ['region', 'seen', 'scanned', 'coverage_pct', 'pending', 'skipped', 'missed', ...FIRST_MISSED_KEYS.map(missedColumn), 'excluded', ...LATER_MISSED_KEYS.map(missedColumn)];

function cells(name: string, r: CoverageCounts): string[] {
  return [name, String(r.seen), String(r.scanned), r.coveragePct.toFixed(1), String(r.pending), String(r.skipped), String(r.missed),
    ...FIRST_MISSED_KEYS.map((k) => String(r.missedBy[k])), String(r.excluded), ...LATER_MISSED_KEYS.map((k) => String(r.missedBy[k]))];
}

/** the regions' rows, then the total's */
const rows = (r: CoverageReport): [string, CoverageCounts][] => [...r.regions.map((x): [string, CoverageCounts] => [x.region, x]), [TOTAL, r.total]];

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled; a leading =+-@ is defused for spreadsheets */
function csvField(s: string): string {
  const t = /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

const html = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderReport(r: CoverageReport, format: ReportFormat): string {
  if (format === 'json') return safeJson(r) + '\n';
  if (format === 'csv') return [COLUMNS, ...rows(r).map(([name, x]) => cells(name, x))].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
  if (format === 'html') {
    const head = COLUMNS.map((c) => `<th>${html(c.replace(/_/g, ' '))}</th>`).join('');
    const body = rows(r).map(([name, x]) => `<tr>${cells(name, x).map((c, i) => `<td${i ? ' class="n"' : ''}>${html(c)}</td>`).join('')}</tr>`).join('\n');
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>onsight coverage ${html(r.from)} – ${html(r.to)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px}td.n{text-align:right}</style></head>
<body><h1>onsight coverage</h1><p>${html(r.from)} to ${html(r.to)}: devices seen per region, scanned within policy, still pending, skipped by an operator, and missed by reason. ${html(COUNTING)}</p>
<table><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table></body></html>
`;
  }
  const missedText = (x: CoverageCounts) => MISSED_KEYS.filter((k) => x.missedBy[k]).map((k) => `${k} ${x.missedBy[k]}`).join(', ');
  return `coverage ${r.from} to ${r.to}\n` + table(['REGION', 'SEEN', 'SCANNED', 'COVERAGE', 'PENDING', 'SKIPPED', 'MISSED', 'MISSED BY', 'EXCLUDED'],
    rows(r).map(([name, x]) => [name, String(x.seen), String(x.scanned), `${x.coveragePct.toFixed(1)}%`, String(x.pending), String(x.skipped), String(x.missed), missedText(x), String(x.excluded)]))
    + `${COUNTING}\n`;
}
