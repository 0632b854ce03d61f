/**
 * File input paths whose real folder or file names hold glob metacharacters or a backslash
 * (`/var/log/dhcp[1]/`, `dhcp(a)`, a file named `dhcpd\.log`): a name that is there is tailed, as
 * written or escaped; where the glob as written cannot match it, `config check` (the same check run
 * makes at its start) says so with the escaped form, and that form is tailed. Real folders and
 * files, the real file input, the config check's own function on a config text.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFileInput } from '../src/sources/index.js';
import type { InputHandle } from '../src/sources/types.js';
import { checkConfigEnvironment } from '../src/config/check.js';
import { parseConfigText } from '../src/config/load.js';
import { CollectSink } from './helpers/sink.js';
import { silentLogger } from '../src/log.js';
import { sleep, until } from './helpers/wait.js';

let dir: string;
const handles: InputHandle[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-glob-lit-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** the lines the file input reads from `path` (what it has after a moment, none if it watches nothing) */
async function tailed(path: string): Promise<string[]> {
  const sink = new CollectSink();
  const h = await startFileInput({ path, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100 }, sink, async () => undefined, silentLogger());
  handles.push(h);
  await until(() => sink.lines.length >= 2, 1500, `lines of ${path}`).catch(() => undefined);
  await sleep(50);
  return sink.texts();
}

/** config check on a config with `path` as its one file input: what it refuses and what it warns of */
async function checked(path: string): Promise<{ refused: string[]; warned: { path: string; line?: number; message: string }[] }> {
  const loaded = parseConfigText(`policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\ninputs:\n  - type: file\n    path: ${JSON.stringify(path)}\n`, 't.yaml');
  const refused = await checkConfigEnvironment(loaded).then(() => [], (err: { issues?: { message: string }[] }) => (err.issues ?? []).map((i) => i.message));
  return { refused, warned: loaded.warnings.filter((w) => w.path.startsWith('inputs')) };
}

/** `folder/name` made under dir, holding two lines */
function made(folder: string, name: string): string[] {
  mkdirSync(join(dir, folder), { recursive: true });
  const lines = [`${folder}/${name} 1`, `${folder}/${name} 2`];
  writeFileSync(join(dir, folder, name), lines.join('\n') + '\n');
  return lines;
}

describe('file input: glob metacharacters in real names', () => {
  it.each([
    // (picomatch's classes match their own text too: dhcp[1] is dhcp1 or dhcp[1])
    ['dhcp[1]', 'dhcpd.log', 'dhcp[1]/dhcpd.log'],
    ['dhcp[1]', 'dhcpd.log', 'dhcp[1]/*.log'],
    ['dhcp[1]', 'dhcpd.log', 'dhcp\\[1\\]/dhcpd.log'],
    // (before: the escapes stayed in the folder watched, dhcp\[1\]: config check refused it as missing)
    ['dhcp[1]', 'dhcpd.log', 'dhcp\\[1\\]/*.log'],
    ['dhcp(a)', 'dhcpd.log', 'dhcp\\(a\\)/*.log'],
    ['dhcp(a)', 'dhcpd.log', 'dhcp(a)/dhcpd.log'],
    ['dhcp{a}', 'dhcpd.log', 'dhcp{a}/*.log'],
    ['logs', 'dhcpd\\.log', 'logs/dhcpd\\.log'],
  ])('%s/%s written %s: tailed, and config check says nothing against it', async (folder, name, written) => {
    const lines = made(folder, name);
    const path = join(dir, written);
    expect(await checked(path)).toEqual({ refused: [], warned: [] });
    expect(await tailed(path)).toEqual(lines);
  });

  it('a folder named dhcp(a), written so in a glob (a group to picomatch, matching dhcpa): config check says so, with the escaped form, which is tailed', async () => {
    const lines = made('dhcp(a)', 'dhcpd.log');
    const path = join(dir, 'dhcp(a)/*.log');
    const c = await checked(path);
    expect(c.refused).toEqual([]);
    // (before: nothing said, and the input watched nothing)
    expect(c.warned).toEqual([{ path: 'inputs[0].path', line: 5, message: `${join(dir, 'dhcp(a)')} is there, but "dhcp(a)" is glob syntax that does not match that name: nothing in it would be tailed (write it "dhcp\\(a\\)")` }]);
    expect(await tailed(path)).toEqual([]);
    expect(await tailed(join(dir, 'dhcp\\(a\\)/*.log'))).toEqual(lines);
  });

  it('a folder named a(b (an unbalanced group: the name alone matches itself, the whole path nothing): config check says so (review)', async () => {
    const lines = made('a(b', 'a.log');
    const path = join(dir, 'a(b/*.log');
    const c = await checked(path);
    expect(c.refused).toEqual([]);
    expect(c.warned).toEqual([{ path: 'inputs[0].path', line: 5, message: `${join(dir, 'a(b')} is there and holds 1 file(s) matching "*.log", but the glob matches none of them: "a(b" is glob syntax there (write it "a\\(b")` }]);
    expect(await tailed(path)).toEqual([]);
    expect(await tailed(join(dir, 'a\\(b/*.log'))).toEqual(lines);
  });
});
