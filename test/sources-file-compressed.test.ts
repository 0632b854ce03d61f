/**
 * A file input restarted after logrotate compressed the file it was reading (`compress`, and
 * `delaycompress` across two rotations): the lines after the checkpoint are read from the gzip
 * rotation, then the newer rotations and the live file, each once. Real files, real gzip (node's
 * zlib, and real logrotate where installed), real restarts of the input.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startFileInput } from '../src/sources/index.js';
import type { FileCheckpoint, FileInputOptions, InputHandle } from '../src/sources/types.js';
import { CollectSink } from './helpers/sink.js';
import { silentLogger } from '../src/log.js';
import { sleep, until } from './helpers/wait.js';

const hasLogrotate = spawnSync('logrotate', ['--version']).status === 0;
if (!hasLogrotate) console.log('SKIP the logrotate cases of compressed rotations: `logrotate` not found (Debian package logrotate)');

const log = silentLogger();
let dir: string;
const handles: InputHandle[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-tail-gz-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

function fopts(path: string): FileInputOptions {
  return { path, format: 'openvpn', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100 };
}

/** the checkpoint a previous run committed after the first `offset` bytes of `content`, a file now at `path` (its inode) */
function checkpointOf(path: string, content: string, offset: number, ino: number, dev: number): FileCheckpoint {
  const b = Buffer.from(content);
  const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');
  return { path, dev, ino, offset, fingerprint: sha(b.subarray(0, Math.min(1024, offset))), tailFingerprint: sha(b.subarray(offset - Math.min(256, offset), offset)) };
}

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1} ${'x'.repeat(i % 40)}`);

async function start(p: string, cp: FileCheckpoint | undefined, sink = new CollectSink()): Promise<{ sink: CollectSink; h: InputHandle }> {
  const h = await startFileInput(fopts(p), sink, async (path) => (path === p ? cp : undefined), log);
  handles.push(h);
  return { sink, h };
}

describe('file input restart: a compressed rotation', () => {
  it('gzip rotation made while down (compress): the rest of the old file, then the live file; a restart inside the decompressed copy resumes after its last line', async () => {
    const p = join(dir, 'vpn.log');
    const old = lines('a', 300);
    const text = old.join('\n') + '\n';
    const cut = Buffer.byteLength(old.slice(0, 100).join('\n') + '\n');
    writeFileSync(p, text);
    const cp = checkpointOf(p, text, cut, 987654321, 1); // (the inode is gone by the restart: found by content)
    // while down: compressed (app.log → app.log.1.gz), a new live file
    writeFileSync(p + '.1.gz', gzipSync(Buffer.from(text)));
    unlinkSync(p);
    writeFileSync(p, 'n1\nn2\n');
    const first = await start(p, cp);
    await until(() => first.sink.lines.length >= 202, 5000, 'the rest and the live file');
    await sleep(150);
    expect(first.sink.texts()).toEqual([...old.slice(100), 'n1', 'n2']);
    expect((first.h.counters() as { events: Record<string, number> }).events.resumedCompressed).toBe(1);
    // a restart in the middle of the decompressed copy: its checkpoint names a copy that is gone
    const mid = first.sink.lines[49].checkpoint!;
    expect(mid.offset).toBe(Buffer.byteLength(old.slice(0, 150).join('\n') + '\n'));
    await first.h.close();
    handles.splice(handles.indexOf(first.h), 1);
    const second = await start(p, mid);
    await until(() => second.sink.lines.length >= 152, 5000, 'the rest after the copy');
    await sleep(150);
    expect(second.sink.texts()).toEqual([...old.slice(150), 'n1', 'n2']);
  });

  it.skipIf(!hasLogrotate)('real logrotate, delaycompress, two rotations while down: the rest of the .2.gz, all of .1, then the live file', async () => {
    const p = join(dir, 'vpn.log');
    const a = lines('a', 50), b = lines('b', 40), c = lines('c', 3);
    const textA = a.join('\n') + '\n';
    writeFileSync(p, textA.slice(0, Buffer.byteLength(a.slice(0, 20).join('\n') + '\n')));
    const cutA = Buffer.byteLength(a.slice(0, 20).join('\n') + '\n');
    const conf = join(dir, 'lr.conf');
    writeFileSync(conf, `${p} {\n  rotate 5\n  missingok\n  compress\n  delaycompress\n  create\n}\n`);
    // the first run read 20 lines of A, then stopped
    const run1 = await start(p, undefined);
    await until(() => run1.sink.lines.length >= 20, 5000, 'A1-20');
    const cp = run1.sink.committed(p)!;
    expect(cp.offset).toBe(cutA);
    await run1.h.close();
    handles.splice(handles.indexOf(run1.h), 1);
    // while down: A finished, rotated (kept plain: delaycompress), B written, rotated again (A compressed), C
    appendFileSync(p, textA.slice(cutA));
    execFileSync('logrotate', ['-f', '-s', join(dir, 'state'), conf], { stdio: 'pipe' });
    writeFileSync(p, b.join('\n') + '\n');
    execFileSync('logrotate', ['-f', '-s', join(dir, 'state'), conf], { stdio: 'pipe' });
    expect(readFileSync(p + '.2.gz').subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    writeFileSync(p, c.join('\n') + '\n');
    const run2 = await start(p, cp);
    await until(() => run2.sink.lines.length >= 30 + 40 + 3, 5000, 'the rest of A, B and C');
    await sleep(150);
    expect(run2.sink.texts()).toEqual([...a.slice(20), ...b, ...c]);
  });

  it('a truncated gzip rotation: its member cut short gives no line (unchecked: a crash\'s zero-filled tail decodes into repeats and garbage), said and counted, then the live file; a newer rotation that is not gzip at all is passed over', async () => {
    const p = join(dir, 'vpn.log');
    const old = lines('a', 3000);
    const text = old.join('\n') + '\n';
    const cut = Buffer.byteLength(old.slice(0, 100).join('\n') + '\n');
    const cp = checkpointOf(p, text, cut, 987654321, 1);
    const gz = gzipSync(Buffer.from(text));
    writeFileSync(p + '.1.gz', gz.subarray(0, Math.floor(gz.length * 0.8))); // (a copy cut short: a full disk, a crash while compressing)
    writeFileSync(p + '-20991231.gz', Buffer.from('not gzip at all\n')); // (another series, newest: looked at first, matches nothing)
    writeFileSync(p, 'n1\n');
    const { sink, h } = await start(p, cp);
    await until(() => sink.texts().includes('n1'), 5000, 'n1');
    await sleep(150);
    expect(sink.texts()).toEqual(['n1']);
    const ev = (h.counters() as { events: Record<string, number> }).events;
    expect(ev.compressedBroken).toBe(1);
    expect(ev.resumedCompressed).toBe(1);
  });

  it.each([100, 5990])('a gzip rotation whose CRC is wrong, checkpoint after line %i: found, none of its lines read (a member failing its check is not trusted: said and counted as broken), then the live file', async (line) => {
    const p = join(dir, 'vpn.log');
    const old = lines('c', 6000);
    const text = old.join('\n') + '\n';
    const cut = Buffer.byteLength(old.slice(0, line).join('\n') + '\n');
    const cp = checkpointOf(p, text, cut, 987654322, 1);
    const gz = gzipSync(Buffer.from(text));
    gz[gz.length - 6] ^= 0xff; // (a bit flipped in the CRC-32: zcat says "invalid compressed data--crc error" and writes it all)
    writeFileSync(p + '.1.gz', gz);
    writeFileSync(p, 'n1\n');
    const { sink, h } = await start(p, cp);
    await until(() => sink.texts().includes('n1'), 5000, 'n1');
    await sleep(150);
    // (session 44: its lines were read, as zcat writes them; a wrong CRC cannot be told from a changed
    // byte of data, which decodes into spliced lines: none are read now, file-gzip-damaged.test.ts)
    expect(sink.texts()).toEqual(['n1']);
    const ev = (h.counters() as { events: Record<string, number> }).events;
    expect(ev.compressedBroken).toBe(1);
    expect(ev.resumedCompressed).toBe(1);
  });

  it('only a compressed rotation onsight cannot read (.xz) could hold it: counted and said, and the live file is read from its start', async () => {
    const p = join(dir, 'vpn.log');
    const text = lines('a', 10).join('\n') + '\n';
    const cp = checkpointOf(p, text, 30, 987654321, 1);
    writeFileSync(p + '.1.xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])); // (an xz header: not ours to read)
    writeFileSync(p + '.2.gz', gzipSync(Buffer.from('someone else\n'.repeat(10))));
    writeFileSync(p, 'n1\n');
    const { sink, h } = await start(p, cp);
    await until(() => sink.lines.length >= 1, 5000, 'n1');
    await sleep(150);
    expect(sink.texts()).toEqual(['n1']);
    const ev = (h.counters() as { events: Record<string, number> }).events;
    expect(ev.compressedUnreadable).toBe(1);
    expect(ev.resumedCompressed).toBeUndefined();
  });
});
