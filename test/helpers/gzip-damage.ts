/**
 * Gzip rotations damaged on purpose, for the file input's tests: lines and their bytes, a member's
 * deflate data changed so that it decodes wrong or breaks, the checkpoint a run would have taken,
 * and the real file input resumed from one. Real gzip members (node:zlib), bytes changed afterwards.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { pino } from 'pino';
import { inflate } from '../../src/sources/file/content.js';
import { startFileInput } from '../../src/sources/index.js';
import type { FileCheckpoint, InputHandle } from '../../src/sources/types.js';
import { CollectSink } from './sink.js';
import { sleep, until } from './wait.js';

export type Enc = 'utf8' | 'utf16le';

export const lines = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1} ${'x'.repeat(i % 40)}`);
export const bytesOf = (l: string[], enc: Enc = 'utf8') => Buffer.from(l.join('\n') + '\n', enc);
export const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');

/** the checkpoint a run committed after the first `offset` bytes of `content` (its inode gone: found by content) */
export function markOf(path: string, content: Buffer, offset: number): FileCheckpoint {
  return { path, dev: 1, ino: 987654323, offset, fingerprint: sha(content.subarray(0, Math.min(1024, offset))), tailFingerprint: sha(content.subarray(offset - Math.min(256, offset), offset)) };
}

/**
 * One byte of a gzip member's deflate data changed, from `at` (a fraction) of it on, where it still
 * inflates without an error into lines that are not `of`'s (spliced fragments). Lines are compared
 * as `enc` reads them (latin1: byte for byte, whatever the text's encoding).
 */
export function badData(gz: Buffer, of: Buffer, at: number, enc: BufferEncoding = 'latin1'): Buffer {
  const known = new Set(of.toString(enc).split('\n'));
  for (let i = Math.floor(10 + (gz.length - 18) * at); i < gz.length - 8; i++) {
    const b = Buffer.from(gz);
    b[i] ^= 0x55;
    let out: string;
    try {
      out = inflateRawSync(b.subarray(10)).toString(enc);
    } catch {
      continue; // (an error in the stream: a break, another case)
    }
    if (out.split('\n').some((l) => l !== '' && !known.has(l))) return b;
  }
  throw new Error('no byte to change');
}

/** One byte of a gzip member's deflate data changed, from `at` on (else from its start), where inflating it fails part-way (an invalid code, not the file's end). */
export function breaking(gz: Buffer, at: number): Buffer {
  const from = Math.floor(10 + (gz.length - 18) * at);
  for (let k = 0; k < gz.length - 18; k++) {
    const i = 10 + ((from - 10 + k) % (gz.length - 18));
    for (const x of [0x55, 0xff, 0x0f, 0x80]) {
      const b = Buffer.from(gz);
      b[i] ^= x;
      try {
        inflateRawSync(b.subarray(10));
      } catch (err) {
        if ((err as { code?: string }).code === 'Z_DATA_ERROR') return b;
      }
    }
  }
  throw new Error('no byte to change');
}

/** the decompressed copy inflate makes of `path`, and what inflate said (`error`: no copy) */
export async function inflatedCopy(path: string, signal?: AbortSignal) {
  const gz = await open(path, 'r');
  const r = await inflate(gz, signal);
  await gz.close();
  if ('error' in r) return { error: r.error };
  const copy = Buffer.alloc(r.size);
  await r.fh.read(copy, 0, r.size, 0);
  await r.fh.close();
  return { copy, r };
}

/** that copy's non-empty lines (none without a copy), its size and what inflate said */
export async function copyLinesOf(path: string, enc: Enc = 'utf8') {
  const c = await inflatedCopy(path);
  if ('error' in c) return { lines: [] as string[], size: 0, broken: c.error };
  return { lines: c.copy.toString(enc).split('\n').filter((l) => l !== ''), size: c.r.size, broken: c.r.broken };
}

/** the lines of `text` (bytes, `enc`) that lie wholly outside [from, to): those a damaged member there leaves */
export function linesOutside(text: Buffer, enc: Enc, from: number, to: number): string[] {
  const out: string[] = [];
  const nl = enc === 'utf8' ? 1 : 2;
  for (let start = 0; start < text.length; ) {
    let end = start;
    while (!(text[end] === 0x0a && (enc === 'utf8' || (end % 2 === 0 && text[end + 1] === 0)))) end++;
    if (end + nl <= from || start >= to) out.push(text.subarray(start, end).toString(enc));
    start = end + nl;
  }
  return out;
}

export interface Said { level: number; msg: string; rotated?: string; damaged?: string[] | number; err?: string }

/**
 * The real file input over `p` resumed from `cp` (OpenVPN format, from the beginning), until it has
 * read the line `last`, and a little after; its handle pushed on `handles` (closed by the test).
 */
export async function resume(p: string, cp: FileCheckpoint, last: string, handles: InputHandle[], timeoutMs = 8000) {
  const said: Said[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void said.push(JSON.parse(l) as Said) });
  const sink = new CollectSink();
  const h = await startFileInput({ path: p, format: 'openvpn', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100 }, sink, async (x) => (x === p ? cp : undefined), log);
  handles.push(h);
  await until(() => sink.texts().includes(last), timeoutMs, 'the live file');
  await sleep(150);
  return { sink, h, got: sink.texts(), events: (h.counters() as { events: Record<string, number> }).events, warned: said.filter((s) => s.level === 40) };
}
