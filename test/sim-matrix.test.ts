import { describe, expect, it } from 'vitest';
import { MATRIX_SUBJECTS, matrixTable, type MatrixResult } from '../src/sim/matrix.js';
import { summarize } from '../src/sim/report.js';
import type { RunMetrics } from '../src/sim/sim.js';

/** A run with only what the matrix reads: coverage (compliance), calls, targets, waste. */
function run(policy: string, seed: number, compliance: number, wastedHostHPerDay = 10): RunMetrics {
  return {
    scenario: 'cell', policy, seed, compliance, complianceStrict: compliance, coverage: {}, apiCallsPerDay: 40,
    api409: policy === 'onsight' && seed === 2 ? 3 : 0, wrongHost: policy === 'onsight+ranges' ? 1 : 0, targets: 5000, wastedShare: 0.5, wastedHostHPerDay,
    violations: {}, violationSamples: [], coverageCurve: [], loadCurve: [], workload: {},
  } as unknown as RunMetrics;
}

function cell(runs: RunMetrics[]): MatrixResult {
  const bySubject = Object.fromEntries(MATRIX_SUBJECTS.map((s) => [s, summarize(runs, s)]));
  return { cell: { knob: 'scan.sigma (tail)', value: '1.5', override: {} }, summary: summarize(runs), bySubject, limitPerDay: 50 };
}

describe('the matrix table', () => {
  it('judges each subject against the baselines by its own paired differences, not the other subject', () => {
    const runs: RunMetrics[] = [];
    for (const [seed, d] of [[1, 0], [2, 0.01], [3, 0.02]]) {
      runs.push(run('onsight', seed, 0.9 + d), run('onsight+ranges', seed, 0.8 + d, 5), run('twice-daily-scheduled', seed, 0.85 + d), run('twice-daily', seed, 0.84 + d, 20), run('bound', seed, 1));
    }
    const text = matrixTable([cell(runs)]);
    const rows = text.split('\n').filter((l) => l.startsWith('scan.sigma'));
    expect(rows).toHaveLength(2);
    const ranges = rows.find((l) => l.includes('onsight+ranges'))!;
    // 0.80 − 0.85 in every seed: −5.0 with no spread; onsight is +5.0 against the same baseline
    expect(ranges).toMatch(/twice-daily-scheduled 86\.0%\s+-5\.0±0\.0/);
    expect(rows.find((l) => !l.includes('onsight+ranges'))).toMatch(/\+5\.0±0\.0/);
    // wrong-host per 10k targets and wasted time against twice-daily's, per subject
    expect(ranges).toMatch(/\s2\.0\s/);
    expect(ranges).toMatch(/0\.25$/);
    const section = (title: string) => text.slice(text.indexOf(title)).split('\n\n')[0];
    const losses = section('where a subject loses');
    expect(losses).toContain('onsight+ranges 81.0% < twice-daily-scheduled 86.0%');
    expect(losses).toContain('onsight+ranges 81.0% < twice-daily 85.0%');
    // onsight's only loss: a seed with 3 calls refused (a mean of 1 a run)
    expect(losses.split('\n').filter((l) => /: onsight /.test(l))).toEqual(['  scan.sigma (tail) = 1.5: onsight had calls refused by the allowance (1.0 a run)']);
    // the other targets, per subject: onsight+ranges' 1 wrong host in 5,000 is over 1 in 10,000;
    // its wasted time (5 against 20) is under a third, onsight's (10 against 20) is not; both under 0.9 of the bound
    expect(section('wrong-host above')).toContain('onsight+ranges 2.0 per 10,000');
    expect(section('wrong-host above')).not.toMatch(/: onsight \d/);
    expect(section('wasted appliance time')).toContain(': onsight 0.50 of twice-daily');
    expect(section('wasted appliance time')).not.toContain('onsight+ranges');
    expect(section('below 90 % of the relaxation bound')).toContain('onsight+ranges 0.81 of the bound');
    expect(section('below 90 % of the relaxation bound')).not.toMatch(/: onsight \d/);
  });
});
