/**
 * Addresses in policy.scope that no region's CIDRs cover are never scanned (their devices are
 * `no-region`): config check, doctor and run's start say so as a warning naming the uncovered part
 * (not an error: a wide scope with regions for the sites only is a choice). Real files, the real CLI
 * and the real functions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { uncoveredParts } from '../src/util/ip-ranges.js';
import { CLI } from './helpers/paths.js';
import { startDaemon } from './helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-cc-scope-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NEVER = 'devices there are never scanned (no-region';
const scopeWarnings = (text: string) => parseConfigText(text, 't.yaml').warnings.filter((w) => w.path.startsWith('policy.scope'));

describe('scope that no region covers', () => {
  it("config check warns, naming the scope entry, its line and what is uncovered; exit 0 (the tester's 10.40.0.0/16)", () => {
    const text = `state: ${join(dir, 's.db')}
policy:
  scope:
    - 10.20.0.0/16
    - 10.40.0.0/16
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }
http: { enabled: false }
`;
    const cfg = join(dir, 'tester.yaml');
    writeFileSync(cfg, text);
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', cfg], { encoding: 'utf8' });
    expect(r.stderr).toBe(`warning: ${cfg}:5: policy.scope[1]: 10.40.0.0/16: no region covers it: ${NEVER}; add a region for them, or narrow policy.scope)\n`);
    expect(r.stdout).toMatch(/: ok \(/);
    expect(r.status).toBe(0);

    // doctor shares the config's warnings
    const doc = spawnSync(process.execPath, [CLI, 'doctor', '--config', cfg], { encoding: 'utf8', cwd: dir, timeout: 60_000 });
    expect(doc.stdout).toContain(`! config: ${cfg}:5: policy.scope[1]: 10.40.0.0/16: no region covers it: ${NEVER}`);
  });

  it("the README's shape (scope 10.0.0.0/8, one region 10.20.0.0/16): a warning naming the uncovered ranges, the largest first, not an error", () => {
    const w = scopeWarnings('policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.20.0.0/16], appliances: [x]}]\n');
    expect(w).toEqual([{ path: 'policy.scope[0]', line: 1, message: `10.0.0.0/8: no region covers 10.21.0.0-10.255.255.255, 10.0.0.0-10.19.255.255 (99.6 % of its addresses): ${NEVER}; add a region for them, or narrow policy.scope)` }]);
    // (review) an exclusion of one address: the largest blocks are named, not the fragments around it
    const one = scopeWarnings('policy: {scope: [10.0.0.0/8], exclude: [10.0.0.1]}\nregions: [{name: a, cidrs: [10.20.0.0/16], appliances: [x]}]\n');
    expect(one[0].message).toMatch(/^10\.0\.0\.0\/8: no region covers 10\.21\.0\.0-10\.255\.255\.255, 10\.0\.0\.2-10\.19\.255\.255, 10\.0\.0\.0 \(99\.6 % of its addresses, outside policy\.exclude\)/);
  });

  it('2,000 scope entries against 2,000 region CIDRs: each entry\'s uncovered half, found entry by entry (review: the check took 137 s there; timed in the session note, not here)', () => {
    const n = 2000;
    const scope = Array.from({ length: n }, (_, k) => `10.${k >> 8}.${k & 255}.0/24`);
    const regions = Array.from({ length: n }, (_, k) => `10.${k >> 8}.${k & 255}.0/25`);
    const parts = uncoveredParts(scope, regions);
    expect(parts.every((p) => p?.pieces.length === 1 && p.pieces[0].text.endsWith('.128/25'))).toBe(true);
  });

  it('exclusions are cut out first; an entry another entry has already said is not said again; a scope the regions cover says nothing', () => {
    const base = (scope: string, exclude: string, cidrs: string) => `policy: {scope: [${scope}], exclude: [${exclude}]}\nregions: [{name: a, cidrs: [${cidrs}], appliances: [x]}]\n`;
    expect(scopeWarnings(base('10.40.0.0/16', '10.40.0.0/17', '10.20.0.0/16')).map((w) => w.message)).toEqual([
      `10.40.0.0/16: no region covers 10.40.128.0/17 (50.0 % of its addresses, outside policy.exclude): ${NEVER}; add a region for them, or narrow policy.scope)`,
    ]);
    // all of what no region covers is excluded: nothing to say
    expect(scopeWarnings(base('10.20.0.0/16, 10.40.0.0/16', '10.40.0.0/16', '10.20.0.0/16'))).toEqual([]);
    // the second entry lies inside the first: said once, under the first
    const twice = scopeWarnings(base('10.0.0.0/8, 10.40.0.0/16', '', '10.0.0.0/11, 10.64.0.0/10, 10.128.0.0/9'));
    expect(twice.map((w) => [w.path, w.message.split(':').slice(0, 2).join(':')])).toEqual([['policy.scope[0]', '10.0.0.0/8: no region covers 10.32.0.0/11 (12.5 % of its addresses)']]);
    // the whole scope mapped, across several regions and sizes
    expect(scopeWarnings('policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/9], appliances: [x]}, {name: b, cidrs: [10.128.0.0/9, 10.200.0.0/16], appliances: [y]}]\n')).toEqual([]);
  });

  it('IPv6 scope too (and an IPv4-mapped one as IPv4)', () => {
    const w = scopeWarnings('policy: {scope: ["fd00::/8", "::ffff:192.168.0.0/112"]}\nregions: [{name: a, cidrs: ["fd00::/9", "192.168.0.0/17"], appliances: [x]}]\n');
    expect(w.map((x) => x.message)).toEqual([
      `fd00::/8: no region covers fd80::/9 (50.0 % of its addresses): ${NEVER}; add a region for them, or narrow policy.scope)`,
      `::ffff:192.168.0.0/112: no region covers 192.168.128.0/17 (50.0 % of its addresses): ${NEVER}; add a region for them, or narrow policy.scope)`,
    ]);
  });

  it("run logs it at start, as the config's other warnings", async () => {
    const d = await startDaemon(`
state: STATE
inputs: []
policy: { scope: ["10.20.0.0/16", "10.40.0.0/16"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run }
http: { enabled: false }
`);
    try {
      const w = await d.waitFor((e) => e.msg.includes('policy.scope[1]'));
      expect(w.msg).toContain(`config: ${join(d.dir, 'onsight.yaml')}:4: policy.scope[1]: 10.40.0.0/16: no region covers it: ${NEVER}`);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});
