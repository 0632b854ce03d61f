/**
 * A gzip rotation (logrotate's `compress`) damaged on disk, found at a restart from a checkpoint
 * inside it: its first member's CRC-32 wrong, or a byte of its deflate data changed. Real gzip
 * files (node's zlib, bytes changed afterwards), the real file input with a checkpoint. The damage
 * is counted and said naming the file, every line that decompresses sound is read, none of a
 * damaged member's garbage, and the live file follows from its start.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, inflateRawSync } from 'node:zlib';
import { pino } from 'pino';
import { startFileInput } from '../src/sources/index.js';
import type { FileCheckpoint, InputHandle } from '../src/sources/types.js';
import { CollectSink } from './helpers/sink.js';
import { sleep, until } from './helpers/wait.js';

let dir: string;
const handles: InputHandle[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-gz-crc-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1} ${'x'.repeat(i % 40)}`);
const textOf = (l: string[]) => l.join('\n') + '\n';
const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');

/** the checkpoint a previous run committed after the first `offset` bytes of `content` (its inode gone: found by content) */
function checkpointOf(path: string, content: string, offset: number): FileCheckpoint {
  const b = Buffer.from(content);
  return { path, dev: 1, ino: 987654323, offset, fingerprint: sha(b.subarray(0, Math.min(1024, offset))), tailFingerprint: sha(b.subarray(offset - Math.min(256, offset), offset)) };
}

/** two bytes of a gzip member's CRC-32 flipped (bits lost on disk; the length beside it intact) */
function badCrc(gz: Buffer): Buffer {
  gz[gz.length - 8] ^= 0xff;
  gz[gz.length - 6] ^= 0x5a;
  return gz;
}

/**
 * One byte of a gzip member's deflate data changed (at `at` of it) where it still inflates without
 * an error into other bytes (most changed bytes do: fragments of nearby lines spliced together),
 * which only the CRC-32 catches; `damagedLines`: how many of the raw output's lines are not `of`'s.
 */
function badData(gz: Buffer, of: string[], at: number): { gz: Buffer; damagedLines: number } {
  const known = new Set(of);
  for (let i = Math.floor(10 + (gz.length - 18) * at); i < gz.length - 8; i++) {
    const b = Buffer.from(gz);
    b[i] ^= 0x55;
    let out: string;
    try {
      out = inflateRawSync(b.subarray(10)).toString('latin1');
    } catch {
      continue; // (an error inside the stream: a break, read up to it as a truncated one is)
    }
    const damagedLines = out.split('\n').filter((l) => l !== '' && !known.has(l)).length;
    if (damagedLines > 0) return { gz: b, damagedLines };
  }
  throw new Error('no byte to change');
}

interface Said { level: number; msg: string; rotated?: string }

async function resume(p: string, cp: FileCheckpoint, live: string[]) {
  const said: Said[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void said.push(JSON.parse(l) as Said) });
  const sink = new CollectSink();
  const h = await startFileInput({ path: p, format: 'openvpn', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100 }, sink, async (x) => (x === p ? cp : undefined), log);
  handles.push(h);
  await until(() => sink.texts().includes(live.at(-1)!), 5000, 'the live file');
  await sleep(150);
  const warned = said.filter((s) => s.level === 40);
  return { got: sink.texts(), events: (h.counters() as { events: Record<string, number> }).events, warned };
}

describe('a damaged gzip rotation at a restart', () => {
  it('two members, the first one\'s CRC-32 wrong, checkpoint in the first: the rest of it and all of the second, then the live file', async () => {
    const p = join(dir, 'vpn.log');
    const a = lines('a', 3000), b = lines('b', 2000), live = ['n1', 'n2'];
    writeFileSync(p + '.1.gz', Buffer.concat([badCrc(gzipSync(textOf(a))), gzipSync(textOf(b))]));
    writeFileSync(p, textOf(live));
    const r = await resume(p, checkpointOf(p, textOf(a) + textOf(b), Buffer.byteLength(textOf(a.slice(0, 100)))), live);
    // (before: the second member was lost, said only as a wrong CRC)
    expect(r.got).toEqual([...a.slice(100), ...b, ...live]);
    expect(r.events.compressedBroken).toBe(1);
    expect(r.events.resumedCompressed).toBe(1);
    expect(r.warned.filter((s) => s.rotated === p + '.1.gz')).toHaveLength(1);
  });

  it('two members, the first one\'s CRC-32 wrong, checkpoint in the second: the rest of the second, then the live file', async () => {
    const p = join(dir, 'vpn.log');
    const a = lines('a', 3000), b = lines('b', 2000), live = ['n1'];
    writeFileSync(p + '.1.gz', Buffer.concat([badCrc(gzipSync(textOf(a))), gzipSync(textOf(b))]));
    writeFileSync(p, textOf(live));
    const r = await resume(p, checkpointOf(p, textOf(a) + textOf(b), Buffer.byteLength(textOf(a) + textOf(b.slice(0, 500)))), live);
    // (before: the search stopped at the first member's trailer and found no rotation: the live file
    // was read from its start and the second member's 1,500 lines were lost, said as 'not found')
    expect(r.got).toEqual([...b.slice(500), ...live]);
    expect(r.events.compressedBroken).toBe(1);
    expect(r.events.resumedCompressed).toBe(1);
  });

  it('one member, a byte of its deflate data changed: none of its garbage is read; counted, said naming the file, then the live file from its start', async () => {
    const p = join(dir, 'vpn.log');
    const old = lines('c', 6000), live = ['n1', 'n2'];
    const bad = badData(gzipSync(textOf(old)), old, 0.5);
    expect(bad.damagedLines).toBeGreaterThan(0);
    writeFileSync(p + '.1.gz', bad.gz);
    writeFileSync(p, textOf(live));
    const r = await resume(p, checkpointOf(p, textOf(old), Buffer.byteLength(textOf(old.slice(0, 100)))), live);
    // (before: every line of the raw output after the checkpoint, its garbage among them)
    expect(r.got).toEqual(live);
    expect(r.events.compressedBroken).toBe(1);
    const w = r.warned.filter((s) => s.rotated === p + '.1.gz');
    expect(w).toHaveLength(1);
    expect(w[0].msg).toMatch(/damaged/);
  });

  it('two members, a byte of the first one\'s deflate data changed, checkpoint in it: the second member whole, none of the first one\'s garbage, then the live file', async () => {
    const p = join(dir, 'vpn.log');
    const a = lines('a', 3000), b = lines('b', 2000), live = ['n1'];
    const bad = badData(gzipSync(textOf(a)), a, 0.6);
    writeFileSync(p + '.1.gz', Buffer.concat([bad.gz, gzipSync(textOf(b))]));
    writeFileSync(p, textOf(live));
    const r = await resume(p, checkpointOf(p, textOf(a) + textOf(b), Buffer.byteLength(textOf(a.slice(0, 100)))), live);
    expect(r.got).toEqual([...b, ...live]);
    expect(r.events.compressedBroken).toBe(1);
  });
});
