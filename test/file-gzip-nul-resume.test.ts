/**
 * Gzip rotations (review rv46): (1) a zeroed stretch (a crash's zero-filled block) in a
 * multi-member file: a damaged member's deflate stream that runs on over it past the start of a
 * sound member, and NULs after a damaged first member; (2) a restart whose checkpoint lies after a
 * member whose data and trailer length are both damaged. Real gzip files (node's zlib, bytes
 * changed afterwards), real decompressed copies, the real file input restarted from a checkpoint
 * taken before compression.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, inflateRawSync } from 'node:zlib';
import type { FileCheckpoint, InputHandle } from '../src/sources/types.js';
import { badData, bytesOf, copyLinesOf, lines, markOf, resume as resumeInput, sha } from './helpers/gzip-damage.js';

let dir: string;
const handles: InputHandle[] = [];
const resume = (p: string, cp: FileCheckpoint, last: string, timeoutMs?: number) => resumeInput(p, cp, last, handles, timeoutMs);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-gz-nul-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** DHCP lines, each address with its own MAC */
const dhcp = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `Dec  7 10:${String(i % 60).padStart(2, '0')}:00 ${tag} dhcpd[99]: DHCPACK on 10.${tag.length}.${i % 256}.${(i * 13) % 256} to ${sha(Buffer.from(tag + i)).slice(0, 12).replace(/(..)(?!$)/g, '$1:')} via eth0`);

const copyOf = (path: string) => copyLinesOf(path);

/**
 * Five whole-line members, a stretch of the second to the third zeroed, where the second's deflate
 * stream (inflated by zlib from its body) runs over the zeros without an error past the start of a
 * sound member, and ends where the bytes after its 8 would-be trailer bytes are `after`: a NUL (a
 * later header's zeros) or the file's end. The file, and the lines of the members wholly outside the zeros.
 */
function ranOver(after: 'nul' | 'end') {
  for (const n of [10, 20, 30, 15, 25, 40]) {
    const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee'].map((t) => dhcp(t, n));
    const mems = texts.map((l) => gzipSync(bytesOf(l)));
    const starts = mems.map((_, i) => mems.slice(0, i).reduce((s, m) => s + m.length, 0));
    const file = Buffer.concat(mems);
    for (let z0 = starts[1] + 12; z0 < starts[2] - 8; z0 += 5) {
      for (let z1 = starts[2] + 1; z1 < starts[4]; z1 += 3) {
        const b = Buffer.from(file).fill(0, z0, z1);
        let used: number;
        try {
          used = (inflateRawSync(b.subarray(starts[1] + 10), { info: true }) as unknown as { engine: { bytesWritten: number } }).engine.bytesWritten;
        } catch {
          continue;
        }
        const end = starts[1] + 10 + used;
        const past = starts.some((s) => s >= z1 && s < end + 8);
        if (past && (after === 'nul' ? end + 11 <= b.length && b[end + 8] === 0 : end + 11 > b.length)) {
          const want = texts.filter((_, k) => starts[k] + mems[k].length <= z0 || starts[k] >= z1).flat();
          return { file: b, want };
        }
      }
    }
  }
  throw new Error(`no zeroed stretch found (${after})`);
}

describe('a zeroed stretch in a multi-member rotation', () => {
  it.each([
    ['a NUL (a later header\'s zeros)', 'nul'],
    ['the file\'s end', 'end'],
  ] as const)('a damaged member\'s stream runs on over it past a sound member\'s start, its would-be trailer followed by %s: the members after the zeros are read, said', async (_, after) => {
    const p = join(dir, 'x.log.1.gz');
    const { file, want } = ranOver(after);
    writeFileSync(p, file);
    const got = await copyOf(p);
    // (before: the members after the zeros lost, from the one the stream ran into on)
    expect(got.lines).toEqual(want);
    expect(got.broken).toMatch(/member 2 .*its deflate stream ends past where a member begins \(the next member at byte \d+\)/);
  });

  it('NULs after a damaged first member (it decodes into other lines), NULs at the end (padding): every line of the members between, the first one too', async () => {
    const p = join(dir, 'x.log.1.gz');
    const a = dhcp('a', 300), b = dhcp('bb', 300), c = dhcp('ccc', 300);
    const A = bytesOf(a);
    writeFileSync(p, Buffer.concat([badData(gzipSync(A), A, 0.5), Buffer.alloc(4096), gzipSync(bytesOf(b)), gzipSync(bytesOf(c)), Buffer.alloc(3000)]));
    const got = await copyOf(p);
    // (before: b's first line lost)
    expect(got.lines).toEqual([...b, ...c]);
    // (the padding at the end: nothing said of it)
    expect(got.broken).toMatch(/^member 1 [^;]*incorrect data check[^;]*; member 2 [^;]*NULs after member 1 \(the next member at byte \d+\)[^;]*$/);
  });

});

/** `gz` (a member of `text`) with its deflate data changed so that it decodes, without an error, into other lines of another length */
function otherLength(gz: Buffer, text: Buffer): Buffer {
  for (const at of [0.5, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9]) {
    const bad = badData(gz, text, at);
    if (inflateRawSync(bad.subarray(10)).length !== text.length) return bad;
  }
  throw new Error('no byte to change');
}

describe('a restart after a member whose data and trailer length are both damaged', () => {
  it('the checkpoint (taken before compression) in a sound member after it, where its trailer\'s length would put a blank: not found by position, said; no line read twice', async () => {
    const p = join(dir, 'vpn.log');
    const parts = ['a', 'b', 'c', 'd', 'e', 'f'].map((t) => lines(t, 120));
    const texts = parts.map((l) => bytesOf(l));
    const mems: Buffer[] = texts.map((t) => gzipSync(t));
    // the fourth member: a byte of its data changed (decoding into other lines, a few bytes
    // longer or shorter), and its length field 32,768 more (bit 15): 33 KB of blanks in the copy
    const bad = otherLength(mems[3], texts[3]);
    bad[bad.length - 3] ^= 0x80;
    mems[3] = bad;
    writeFileSync(p + '.2.gz', Buffer.concat(mems));
    const live = ['n1', 'n2'];
    writeFileSync(p, bytesOf(live));
    // after f's 60th line: its last 256 bytes in f (sound), where the copy's count has d's blank
    const all = Buffer.concat(texts);
    const before = texts.slice(0, 5).reduce((s, t) => s + t.length, 0);
    const at = before + bytesOf(parts[5].slice(0, 60)).length;
    expect(at - 256).toBeGreaterThan(before);
    expect(at).toBeLessThan(texts.slice(0, 3).reduce((s, t) => s + t.length, 0) + texts[3].length + 32768);
    const r = await resume(p, markOf(p, all, at), 'n2');
    // (before: found by position in d's blank and read from there: e's lines and f's first 60 again)
    const already = new Set(parts.flat().filter((_, i) => i < 5 * 120 + 60));
    expect(r.got.filter((l) => already.has(l))).toEqual([]);
    expect(r.warned.some((s) => /first KiB and its position/.test(s.msg))).toBe(false);
    expect(r.warned.some((s) => Array.isArray(s.damaged) && s.damaged.includes(p + '.2.gz'))).toBe(true);
    expect(r.got).toEqual(live);
  });
});
