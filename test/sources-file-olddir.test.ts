/**
 * Rotations that real logrotate moves into its `olddir` while onsight is stopped (the file input's
 * `rotatedDir`). The checkpoint names a file no longer beside the log: without the folder, the
 * tailer found nothing, said "checkpointed file not found" and read the new file from its start,
 * losing every line after the checkpoint in the rotated one. With it, the rotation is found there
 * (by inode, or its content once compressed) and read from the checkpoint, then the newer ones.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFileInput } from '../src/sources/index.js';
import type { FileCheckpoint, FileInputOptions, InputHandle } from '../src/sources/types.js';
import { loadConfig, validateConfig } from '../src/config/load.js';
import { checkConfigEnvironment } from '../src/config/check.js';
import { CollectSink } from './helpers/sink.js';
import { checkpointAt } from './helpers/checkpoint.js';
import { pino } from 'pino';
import { silentLogger } from '../src/log.js';
import { sleep, until } from './helpers/wait.js';

const hasLogrotate = spawnSync('logrotate', ['--version']).status === 0;
if (!hasLogrotate) console.log('SKIP olddir tests with logrotate: `logrotate` not found (Debian package logrotate: apt-get install -y logrotate)');

const log = silentLogger();
let dir: string;
const handles: InputHandle[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-olddir-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
const text = (ls: string[]) => ls.map((l) => `${l}\n`).join('');

/** logrotate with `olddir` (relative: beside the log, as logrotate resolves it), forced */
function rotate(p: string, extra: string): void {
  const conf = join(dir, 'lr.conf');
  writeFileSync(conf, `${p} {\n  rotate 5\n  olddir old\n  create\n  missingok\n  ${extra}\n}\n`);
  execFileSync('logrotate', ['-f', '-s', join(dir, 'lr.state'), conf], { stdio: 'pipe' });
}

const opts = (path: string, extra: Partial<FileInputOptions> = {}): FileInputOptions => ({ path, format: 'openvpn', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100, ...extra });

/** a run of the tailer from `cp` until `expected` lines came (or 4 s), and what it read */
async function resume(p: string, cp: FileCheckpoint, expected: number, extra: Partial<FileInputOptions>): Promise<string[]> {
  const sink = new CollectSink();
  const h = await startFileInput(opts(p, extra), sink, async (path) => (path === p ? cp : undefined), log);
  handles.push(h);
  await until(() => sink.lines.length >= expected, 4000, `${expected} lines`).catch(() => undefined);
  await sleep(200); // (nothing more, nothing twice)
  return sink.texts();
}

describe.skipIf(!hasLogrotate)('rotations in logrotate\'s olddir while stopped (real logrotate)', () => {
  it('one rotation: read on from the checkpoint in old/vpn.log.1, then the new file (without rotatedDir: its 70 lines after the checkpoint lost)', async () => {
    const p = join(dir, 'vpn.log');
    mkdirSync(join(dir, 'old'));
    writeFileSync(p, text(lines('l', 1, 50)));
    const cp = checkpointAt(p, statSync(p).size);
    // while onsight was stopped: more lines, the rotation into old/, a new file and its lines
    appendFileSync(p, text(lines('l', 51, 120)));
    rotate(p, 'nocompress');
    expect(existsSync(join(dir, 'old', 'vpn.log.1'))).toBe(true);
    appendFileSync(p, text(lines('n', 1, 5)));
    const want = [...lines('l', 51, 120), ...lines('n', 1, 5)];
    expect(await resume(p, cp, want.length, { rotatedDir: 'old' })).toEqual(want);
    // the same with the folder given absolute
    for (const h of handles.splice(0)) await h.close();
    expect(await resume(p, cp, want.length, { rotatedDir: join(dir, 'old') })).toEqual(want);
    // without it, as before: the new file from its start, the rotated lines lost
    for (const h of handles.splice(0)) await h.close();
    expect(await resume(p, cp, 5, {})).toEqual(lines('n', 1, 5));
  });

  it('two rotations, the older compressed (compress, delaycompress): the rest of the first from its gzip copy, then the second, then the new file', async () => {
    const p = join(dir, 'vpn.log');
    mkdirSync(join(dir, 'old'));
    writeFileSync(p, text(lines('a', 1, 40)));
    const cp = checkpointAt(p, statSync(p).size);
    appendFileSync(p, text(lines('a', 41, 60)));
    rotate(p, 'compress\n  delaycompress');
    appendFileSync(p, text(lines('b', 1, 30)));
    await sleep(20); // (distinct mtimes for the listing's order)
    rotate(p, 'compress\n  delaycompress');
    expect(existsSync(join(dir, 'old', 'vpn.log.2.gz'))).toBe(true);
    expect(existsSync(join(dir, 'old', 'vpn.log.1'))).toBe(true);
    appendFileSync(p, text(lines('c', 1, 3)));
    const want = [...lines('a', 41, 60), ...lines('b', 1, 30), ...lines('c', 1, 3)];
    expect(await resume(p, cp, want.length, { rotatedDir: 'old' })).toEqual(want);
  });
});

describe.skipIf(!hasLogrotate)('rotations in the olddir while running, and logrotate\'s renamecopy (real logrotate)', () => {
  it('two rotations while the sink holds the tailer back: the one in between is read from the olddir (without rotatedDir: its 30 lines lost)', async () => {
    const p = join(dir, 'vpn.log');
    mkdirSync(join(dir, 'old'));
    writeFileSync(p, text(lines('a', 1, 100)));
    const sink = new CollectSink();
    sink.blockAfter = 10;
    handles.push(await startFileInput(opts(p, { rotatedDir: 'old' }), sink, async () => undefined, log));
    await until(() => sink.waiting > 0, 3000, 'held back');
    rotate(p, 'nocompress');
    appendFileSync(p, text(lines('b', 1, 30)));
    await sleep(30);
    rotate(p, 'nocompress');
    appendFileSync(p, text(lines('c', 1, 3)));
    sink.blockAfter = Infinity;
    sink.drain();
    const want = [...lines('a', 1, 100), ...lines('b', 1, 30), ...lines('c', 1, 3)];
    await until(() => sink.lines.length >= want.length, 5000).catch(() => undefined);
    await sleep(300);
    expect(sink.texts()).toEqual(want);
  });

  // logrotate's renamecopy (olddir on another device): vpn.log is renamed vpn.log.tmp (our inode), a
  // new vpn.log made, then vpn.log.tmp copied into the olddir as vpn.log.1 (a new inode) and removed
  it('renamecopy, restart during the copy: our file found as vpn.log.tmp, the copy under way not read again (review: 61 lines came twice)', async () => {
    const p = join(dir, 'vpn.log');
    mkdirSync(join(dir, 'old'));
    writeFileSync(p, text(lines('a', 1, 50)));
    const cp = checkpointAt(p, statSync(p).size);
    appendFileSync(p, text(lines('a', 51, 100)));
    renameSync(p, `${p}.tmp`);
    writeFileSync(p, text(lines('b', 1, 3)));
    await sleep(20);
    const whole = readFileSync(`${p}.tmp`);
    writeFileSync(join(dir, 'old', 'vpn.log.1'), whole.subarray(0, Math.floor(whole.length * 0.6)));
    const want = [...lines('a', 51, 100), ...lines('b', 1, 3)];
    expect(await resume(p, cp, want.length + 1, { rotatedDir: 'old' })).toEqual(want);
  });

  it('renamecopy live, logrotate stopped mid-copy of a 60 MB file: every line once (review: 2,086 lines came twice)', async () => {
    const p = join(dir, 'vpn.log');
    mkdirSync(join(dir, 'old'));
    writeFileSync(p, text(lines('a', 1, 60_000).map((l) => l + 'x'.repeat(1000))));
    const sink = new CollectSink();
    handles.push(await startFileInput(opts(p, { startAt: 'end', rotatedDir: 'old' }), sink, async () => undefined, log));
    appendFileSync(p, text(lines('t', 1, 5)));
    await until(() => sink.lines.length >= 5, 3000, 'the first lines');
    const conf = join(dir, 'lr.conf');
    writeFileSync(conf, `${p} {\n  rotate 5\n  olddir old\n  renamecopy\n  create\n  nocompress\n}\n`);
    // logrotate, stopped (SIGSTOP) as soon as its copy in old/ exists
    const copy = join(dir, 'old', 'vpn.log.1');
    const lr = spawn('sh', ['-c', `logrotate -f -s ${join(dir, 'lr.state')} ${conf} & pid=$!; while [ ! -e ${copy} ]; do :; done; kill -STOP $pid; echo $pid`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    lr.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => lr.once('exit', r));
    const pid = Number(out.trim());
    try {
      expect(existsSync(`${p}.tmp`)).toBe(true);
      expect(statSync(copy).size).toBeLessThan(statSync(`${p}.tmp`).size);
      appendFileSync(p, text(lines('b', 1, 3)));
      await sleep(1500); // the tailer finishes its file and goes on
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await sleep(500);
    expect(sink.texts()).toEqual([...lines('t', 1, 5), ...lines('b', 1, 3)]);
  }, 30_000);
});

describe('rotatedDir in the config', () => {
  it('is accepted on a file input and refused empty', () => {
    const base = { state: join(tmpdir(), 'x.db'), policy: { scope: ['10.0.0.0/8'] }, regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['a'] }], scanner: { type: 'dry-run' } };
    const { config } = validateConfig({ ...base, inputs: [{ type: 'file', path: '/var/log/vpn.log', format: 'openvpn', rotatedDir: 'old' }] });
    expect(config.inputs[0]).toMatchObject({ type: 'file', rotatedDir: 'old' });
    expect(() => validateConfig({ ...base, inputs: [{ type: 'file', path: '/var/log/vpn.log', format: 'openvpn', rotatedDir: '' }] })).toThrow(/rotatedDir/);
  });

  it('a rotatedDir that cannot be listed (a file there, not a folder) is said once, naming it; the file is still read', async () => {
    const p = join(dir, 'vpn.log');
    writeFileSync(join(dir, 'old'), 'a file, not a folder');
    writeFileSync(p, text(lines('a', 1, 5)));
    const said: { msg: string; rotatedDir?: string; code?: string }[] = [];
    const warnLog = pino({ level: 'warn' }, { write: (l: string) => void said.push(JSON.parse(l) as { msg: string }) });
    const sink = new CollectSink();
    handles.push(await startFileInput(opts(p, { rotatedDir: 'old' }), sink, async () => undefined, warnLog));
    await until(() => sink.lines.length >= 5, 3000, 'the lines');
    // two rotations (rename, new file): the folder is listed at each
    for (const n of [1, 2]) {
      renameSync(p, `${p}.${n}`);
      writeFileSync(p, text(lines(`r${n}-`, 1, 2)));
      await until(() => sink.lines.length >= 5 + 2 * n, 3000, `rotation ${n}`);
    }
    expect(sink.texts()).toEqual([...lines('a', 1, 5), ...lines('r1-', 1, 2), ...lines('r2-', 1, 2)]);
    const warned = said.filter((e) => e.rotatedDir === join(dir, 'old'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ code: 'ENOTDIR' });
    expect(warned[0].msg).toContain('cannot be listed');
  });

  it('config check refuses a rotatedDir that is a file, naming the field; one not made yet passes (logrotate\'s createolddir)', async () => {
    const p = join(dir, 'vpn.log');
    writeFileSync(p, '');
    writeFileSync(join(dir, 'old'), 'a file, not a folder');
    const cfg = join(dir, 'onsight.yaml');
    const yaml = (rd: string) => `state: ${join(dir, 'state.db')}\ninputs:\n  - { type: file, path: ${p}, format: openvpn, rotatedDir: ${rd} }\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [a] }]\nscanner: { type: dry-run }\n`;
    writeFileSync(cfg, yaml('old'));
    await expect(checkConfigEnvironment(loadConfig(cfg))).rejects.toThrow(/inputs\[0\]\.rotatedDir.*is not a folder/s);
    writeFileSync(cfg, yaml('not-yet'));
    await expect(checkConfigEnvironment(loadConfig(cfg))).resolves.toBeDefined();
  });
});
