/**
 * `onsight parse` runs user plug-ins on the main thread with no watchdog: a plug-in regex that
 * backtracks without end (a nested quantifier) on a crafted line hung it (review: over 30 s on 34
 * letters and a `!`). The CLI now lets V8 finish such a regex on its linear engine, as the daemon
 * does. The real CLI from dist/, a real plug-in file and config.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';
import { CRAFTED, stallLine, stallPlugin } from './helpers/stall-plugin.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-parse-bt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('onsight parse with a backtracking plug-in regex', () => {
  it('finishes the crafted line and reads the next one (it hung)', () => {
    mkdirSync(join(dir, 'plugins'));
    writeFileSync(join(dir, 'plugins', 'naive.mjs'), stallPlugin('naive-vpn', String.raw`^ip=(\S+) user=((?:\w+\s?)+)$`));
    writeFileSync(join(dir, 'onsight.yaml'), `state: ${join(dir, 'state.db')}
parsers: { directory: ${join(dir, 'plugins')} }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]
scanner: { type: dry-run }
`);
    const input = `${stallLine('naive-vpn', '10.20.1.8', CRAFTED)}\n${stallLine('naive-vpn', '10.20.1.7', 'alice')}\n`;
    const t0 = Date.now();
    // (a bound far from both: the linear engine takes milliseconds, the backtracking one hours)
    const r = spawnSync(process.execPath, [CLI, 'parse', '--format', 'auto', '--config', join(dir, 'onsight.yaml'), '--zone', 'UTC'], { input, encoding: 'utf8', timeout: 60_000 });
    const tookMs = Date.now() - t0;
    expect(r.signal, `killed after ${tookMs} ms: the regex backtracked`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ip: string; user?: string; format: string });
    expect(out.map((s) => [s.format, s.ip, s.user])).toEqual([['naive-vpn', '10.20.1.7', 'alice']]);
  }, 90_000);
});
