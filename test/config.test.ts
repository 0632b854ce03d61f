import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfigText } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { CLI, REPO } from './helpers/paths.js';

function issuesOf(text: string) {
  try {
    parseConfigText(text, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('the embedded default is valid and is what `onsight run` uses without --config', () => {
    const { config, origin } = loadConfig();
    expect(origin).toBe('(embedded default)');
    expect(config.state).toBe('./data/onsight.db');
    expect(config.inputs.map((i) => (i.type === 'syslog' ? i.listen : i.path))).toEqual(['udp://127.0.0.1:5514', 'tcp://127.0.0.1:5514']);
    expect(config.scanner.type).toBe('dry-run');
  });

  it('the documented example validates (with its plug-in directory pointed somewhere real)', () => {
    const text = readFileSync(join(REPO, 'config/onsight.example.yaml'), 'utf8');
    const { config } = parseConfigText(text, 'onsight.example.yaml');
    expect(config.regions.map((r) => r.name)).toEqual(['emea', 'amer']);
    expect(config.regions[1].appliances[0]).toEqual({ name: 'amer-sa-1', maxScans: 2 });
    expect(config.policy.rescanAfter).toBe(30 * 86400);
    expect(config.regions[0].rescanAfter).toBe(14 * 86400);
  });

  it('errors name the key path and the line', () => {
    const issues = issuesOf(['policy:', '  scope: ["10.0.0.0/8", "10.0.0.0/33"]', 'regions:', '  - name: a', '    cidrs: [10.1.0.0/16]', '    appliances: [x]', '    maxConcurrentScans: "two"'].join('\n'));
    expect(issues).toContainEqual({ path: 'policy.scope[1]', line: 2, message: 'not a CIDR or IP address' });
    expect(issues.find((i) => i.path === 'regions[0].maxConcurrentScans')?.line).toBe(7);
  });

  it('unknown keys, bad durations, YAML syntax and a password in the file are refused', () => {
    expect(issuesOf('policy: {scope: [10.0.0.0/8], rescanAfter: 3x}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n')[0].message).toMatch(/not a duration/);
    expect(issuesOf('policy: {scope: [10.0.0.0/8], colour: red}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n')[0].path).toBe('policy');
    expect(issuesOf('policy: [\n')[0].message).toMatch(/^YAML/);
    const q = issuesOf('policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\nscanner: {type: qualys, url: "https://q.example", username: u, password: hunter2, optionProfile: p}\n');
    expect(q[0].path).toBe('scanner');
  });

  it('overlapping regions: the same network twice is an error, a nested one a warning', () => {
    const same = issuesOf('policy: {scope: [10.0.0.0/8]}\nregions:\n  - {name: a, cidrs: [10.0.0.0/16], appliances: [x]}\n  - {name: b, cidrs: [10.0.0.0/16], appliances: [y]}\n');
    expect(same[0]).toMatchObject({ path: 'regions[1].cidrs[0]', line: 4 });
    const nested = parseConfigText('policy: {scope: [10.0.0.0/8]}\nregions:\n  - {name: a, cidrs: [10.0.0.0/8], appliances: [x]}\n  - {name: b, cidrs: [10.5.0.0/16], appliances: [y]}\n', 't.yaml');
    expect(nested.warnings[0].message).toMatch(/longest prefix wins/);
  });

  it('`onsight config check` exits 0 / 2 and prints path and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-cfg-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n');
    expect(execFileSync('node', [CLI, 'config', 'check', '--config', good], { encoding: 'utf8' })).toMatch(/ok/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\ninputs:\n  - {type: file, path: /x, format: nonesuch}\n');
    const r = spawnSync('node', [CLI, 'config', 'check', '--config', bad], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:4: inputs\[0\]\.format: unknown format "nonesuch"/);
    const missing = spawnSync('node', [CLI, 'config', 'check', '--config', join(dir, 'nope.yaml')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config/);
  });
});
