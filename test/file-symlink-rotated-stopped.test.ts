/**
 * A file input whose path is a symlink (`/var/log/dhcpd.log -> /data/logs/dhcpd.log`), the TARGET
 * rotated by real logrotate (which rotates files, never symlinks) while onsight is stopped: the
 * rotation is made beside the target, under the target's name. A real first run commits a
 * checkpoint and stops; the second finds the rotated file beside the target (by inode, or by
 * content once gzipped) and reads on from the checkpoint, then the newer ones, then the new file.
 * Before, only the symlink's folder was listed: "checkpointed file not found", and every line
 * written to the old file after the checkpoint was lost.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startFileInput } from '../src/sources/index.js';
import type { FileCheckpoint, FileInputOptions, InputHandle } from '../src/sources/types.js';
import { CollectSink } from './helpers/sink.js';
import { sleep, until } from './helpers/wait.js';

const LOGROTATE = '/usr/sbin/logrotate';
const hasLogrotate = spawnSync(LOGROTATE, ['--version']).status === 0;
if (!hasLogrotate) console.log(`SKIP symlink rotation tests: ${LOGROTATE} not found (Debian package logrotate: apt-get install -y logrotate)`);

let dir: string;
const handles: InputHandle[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-symlink-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
const text = (ls: string[]) => ls.map((l) => `${l}\n`).join('');

/** real logrotate on the symlink's target, forced, with its own state file */
function rotate(target: string, extra: string): void {
  const conf = join(dir, 'lr.conf');
  writeFileSync(conf, `${target} {\n  rotate 5\n  create\n  missingok\n  ${extra}\n}\n`);
  execFileSync(LOGROTATE, ['-f', '-s', join(dir, 'lr.state'), conf], { stdio: 'pipe' });
}

const opts = (path: string): FileInputOptions => ({ path, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100 });

interface Run {
  texts: string[];
  checkpoint?: FileCheckpoint;
  said: { msg: string; rotated?: string }[];
}

/** a run of the file input on `link` (from `cp`, else from the beginning) until `expected` lines came, then stopped */
async function run(link: string, expected: number, cp?: FileCheckpoint): Promise<Run> {
  const said: Run['said'] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void said.push(JSON.parse(l) as Run['said'][number]) });
  const sink = new CollectSink();
  const h = await startFileInput(opts(link), sink, async (p) => (p === link ? cp : undefined), log);
  handles.push(h);
  await until(() => sink.lines.length >= expected, 4000, `${expected} lines`).catch(() => undefined);
  await sleep(200); // (nothing more, nothing twice)
  await h.close();
  handles.splice(handles.indexOf(h), 1);
  return { texts: sink.texts(), checkpoint: sink.committed(link), said };
}

describe.skipIf(!hasLogrotate)('a symlinked log whose target real logrotate rotates while onsight is stopped', () => {
  it('/var/log/dhcpd.log -> /data/logs/dhcpd.log: the rest of the old file from data/logs/dhcpd.log.1, then the new file (before: its 70 lines after the checkpoint lost)', async () => {
    mkdirSync(join(dir, 'var-log'));
    mkdirSync(join(dir, 'data-logs'));
    const target = join(dir, 'data-logs', 'dhcpd.log');
    const link = join(dir, 'var-log', 'dhcpd.log');
    writeFileSync(target, text(lines('l', 1, 50)));
    symlinkSync(target, link);
    const first = await run(link, 50);
    expect(first.texts).toEqual(lines('l', 1, 50));
    expect(first.checkpoint).toBeDefined();

    // stopped: the server writes on, logrotate renames the target beside itself and creates a new one
    appendFileSync(link, text(lines('l', 51, 120)));
    rotate(target, 'nocompress');
    expect(existsSync(`${target}.1`)).toBe(true);
    expect(readdirSync(join(dir, 'var-log'))).toEqual(['dhcpd.log']); // (nothing beside the symlink)
    appendFileSync(link, text(lines('n', 1, 5)));

    const want = [...lines('l', 51, 120), ...lines('n', 1, 5)];
    const second = await run(link, want.length, first.checkpoint);
    expect(second.texts).toEqual(want);
    const resumed = second.said.find((e) => e.msg === 'resuming in the rotated file, then the newer ones');
    expect(resumed?.rotated).toBe(`${target}.1`);
    expect(second.said.some((e) => e.msg.startsWith('checkpointed file not found'))).toBe(false);
  });

  it('a relative symlink under another name (dhcp.log -> ../data/dhcpd-server.log), two rotations, the older gzipped (compress, delaycompress): every line after the checkpoint once', async () => {
    mkdirSync(join(dir, 'log'));
    mkdirSync(join(dir, 'data'));
    const target = join(dir, 'data', 'dhcpd-server.log');
    const link = join(dir, 'log', 'dhcp.log');
    writeFileSync(target, text(lines('a', 1, 40)));
    symlinkSync('../data/dhcpd-server.log', link);
    const first = await run(link, 40);
    expect(first.texts).toEqual(lines('a', 1, 40));

    appendFileSync(link, text(lines('a', 41, 60)));
    rotate(target, 'compress\n  delaycompress');
    appendFileSync(link, text(lines('b', 1, 30)));
    await sleep(20); // (distinct mtimes for the listing's order)
    rotate(target, 'compress\n  delaycompress');
    expect(existsSync(`${target}.2.gz`)).toBe(true);
    expect(existsSync(`${target}.1`)).toBe(true);
    appendFileSync(link, text(lines('c', 1, 3)));

    const want = [...lines('a', 41, 60), ...lines('b', 1, 30), ...lines('c', 1, 3)];
    const second = await run(link, want.length, first.checkpoint);
    expect(second.texts).toEqual(want);
    expect(second.said.find((e) => e.msg.startsWith('resuming in the compressed rotation'))?.rotated).toBe(`${target}.2.gz`);
  });
});

describe.skipIf(!hasLogrotate)('a relative symlink reached through a symlinked folder (review)', () => {
  it('linkdir -> real/sub, real/sub/dhcp.log -> ../data/dhcpd.log: the kernel resolves .. in real/sub, and so does the listing (before: 10 of 13 lines lost)', async () => {
    mkdirSync(join(dir, 'real', 'sub'), { recursive: true });
    mkdirSync(join(dir, 'real', 'data'));
    symlinkSync(join(dir, 'real', 'sub'), join(dir, 'linkdir'));
    const target = join(dir, 'real', 'data', 'dhcpd.log');
    writeFileSync(target, text(lines('l', 1, 20)));
    symlinkSync('../data/dhcpd.log', join(dir, 'real', 'sub', 'dhcp.log'));
    const link = join(dir, 'linkdir', 'dhcp.log');
    const first = await run(link, 20);
    expect(first.texts).toEqual(lines('l', 1, 20));
    appendFileSync(target, text(lines('l', 21, 30)));
    rotate(target, 'nocompress');
    appendFileSync(target, text(lines('n', 1, 3)));
    const want = [...lines('l', 21, 30), ...lines('n', 1, 3)];
    expect((await run(link, want.length, first.checkpoint)).texts).toEqual(want);
  });
});

describe.skipIf(!hasLogrotate)('a symlinked log whose target real logrotate copies and truncates while it is read', () => {
  it('the copy beside the target is finished from our offset (before: the lines between our offset and the truncation lost)', async () => {
    mkdirSync(join(dir, 'var-log'));
    mkdirSync(join(dir, 'data-logs'));
    const target = join(dir, 'data-logs', 'dhcpd.log');
    const link = join(dir, 'var-log', 'dhcpd.log');
    writeFileSync(target, text(lines('a', 1, 100)));
    symlinkSync(target, link);
    const sink = new CollectSink();
    sink.blockAfter = 10; // the daemon's ingest behind: the tailer is held at line 10
    handles.push(await startFileInput(opts(link), sink, async () => undefined, pino({ level: 'silent' })));
    await until(() => sink.waiting > 0, 3000, 'held back');
    rotate(target, 'copytruncate\n  nocompress');
    expect(existsSync(`${target}.1`)).toBe(true);
    appendFileSync(link, text(lines('b', 1, 3)));
    sink.blockAfter = Infinity;
    sink.drain();
    const want = [...lines('a', 1, 100), ...lines('b', 1, 3)];
    await until(() => sink.lines.length >= want.length, 5000).catch(() => undefined);
    await sleep(300);
    expect(sink.texts()).toEqual(want);
  });
});
