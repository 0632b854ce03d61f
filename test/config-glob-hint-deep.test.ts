/**
 * `config check` and a file input's glob whose broken folder is higher up than the file part's own
 * folder: `a(b/*\/*.log` (a group `(` opens takes in the rest of the path), `a(b/**\/*.log`, or a
 * folder named `dhcp(a)` below a `*`. The input would tail nothing there; config check says so,
 * naming the folder at fault with its escaped spelling, at any depth (before: said only when the
 * broken folder held the files, or when every folder above it was written by its name). The escaped
 * spelling is checked clean and tailed. Real folders and files, the real CLI, the real file input.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startFileInput } from '../src/sources/index.js';
import type { InputHandle } from '../src/sources/types.js';
import { silentLogger } from '../src/log.js';
import { CLI } from './helpers/paths.js';
import { CollectSink } from './helpers/sink.js';
import { until } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-glob-deep-'));
const handles: InputHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** `config check` on a config whose one file input is `path` (line 7): its stderr and exit code */
function check(path: string): { stderr: string; status: number | null; cfg: string } {
  const cfg = join(dir, `c${++n}.yaml`);
  writeFileSync(cfg, `state: ${join(dir, 's.db')}
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
http: { enabled: false }
inputs:
  - type: file
    path: ${JSON.stringify(path)}
`);
  const r = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', cfg], { encoding: 'utf8', timeout: 20_000 });
  return { stderr: r.stderr, status: r.status, cfg };
}

/** `rel` made under dir (folders too), holding one line */
function made(rel: string): string {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, `${rel} 1\n`);
  return p;
}

/** the lines the real file input reads through `glob` */
async function tailed(glob: string): Promise<string[]> {
  const sink = new CollectSink();
  const h = await startFileInput({ path: glob, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100 }, sink, async () => undefined, silentLogger());
  handles.push(h);
  await until(() => sink.lines.length >= 1, 3000, `a line through ${glob}`).catch(() => undefined);
  return sink.texts();
}

describe('config check: a glob broken by a folder higher up', () => {
  it('a(b/*/*.log (a wildcard folder below the broken one): the warning names a(b and its escaped spelling, which is clean and tailed', async () => {
    made('one/a(b/x/dhcpd.log');
    const r = check(join(dir, 'one/a(b/*/*.log'));
    // (before: nothing said, exit 0, and the input tailed nothing)
    expect(r.stderr).toBe(`warning: ${r.cfg}:7: inputs[0].path: ${join(dir, 'one/a(b')} is there and holds 1 file(s) matching "*/*.log", but the glob matches none of them: "a(b" is glob syntax there (write it "a\\(b")\n`);
    expect(r.status).toBe(0);
    expect(await tailed(join(dir, 'one/a(b/*/*.log'))).toEqual([]);
    const fixed = join(dir, 'one/a\\(b/*/*.log');
    expect(check(fixed)).toMatchObject({ stderr: '', status: 0 });
    expect(await tailed(fixed)).toEqual(['one/a(b/x/dhcpd.log 1']);
  });

  it('a(b/**/*.log, the file two folders down: said, with the escaped spelling', () => {
    made('two/a(b/x/y/dhcpd.log');
    const r = check(join(dir, 'two/a(b/**/*.log'));
    expect(r.stderr).toBe(`warning: ${r.cfg}:7: inputs[0].path: ${join(dir, 'two/a(b')} is there and holds 1 file(s) matching "**/*.log", but the glob matches none of them: "a(b" is glob syntax there (write it "a\\(b")\n`);
    expect(check(join(dir, 'two/a\\(b/**/*.log')).stderr).toBe('');
  });

  it('a(b/x/*.log: the warning names a(b, the folder at fault (before: a(b/x, the files\' folder)', () => {
    made('three/a(b/x/dhcpd.log');
    const r = check(join(dir, 'three/a(b/x/*.log'));
    expect(r.stderr).toBe(`warning: ${r.cfg}:7: inputs[0].path: ${join(dir, 'three/a(b')} is there and holds 1 file(s) matching "x/*.log", but the glob matches none of them: "a(b" is glob syntax there (write it "a\\(b")\n`);
  });

  it('a folder named dhcp(a) below a wildcard (*/dhcp(a)/*.log): said, naming the folder reached', () => {
    made('four/site1/dhcp(a)/dhcpd.log');
    const r = check(join(dir, 'four/*/dhcp(a)/*.log'));
    expect(r.stderr).toBe(`warning: ${r.cfg}:7: inputs[0].path: ${join(dir, 'four/site1/dhcp(a)')} is there, but "dhcp(a)" is glob syntax that does not match that name: nothing in it would be tailed (write it "dhcp\\(a\\)")\n`);
    expect(check(join(dir, 'four/*/dhcp\\(a\\)/*.log')).stderr).toBe('');
  });

  it('a glob that matches (wildcards at several depths, names with no syntax): nothing said', () => {
    made('five/s1/vpn/a.log');
    made('five/s2/vpn/b.log');
    expect(check(join(dir, 'five/*/vpn/*.log'))).toMatchObject({ stderr: '', status: 0 });
    expect(check(join(dir, 'five/**/*.log'))).toMatchObject({ stderr: '', status: 0 });
  });
});
