/**
 * The search for a sound member after a damaged one in a gzip rotation (review of d07fcc4): bounded,
 * and not fooled by a gzip member inside the logged data. A file of crafted headers had each search
 * test-decode from each header to the file's end (1 MB: 31 s through a CRC-32 failure, about 70 s
 * through a damaged first header; 2 MB: 130 s), holding the input that long; a whole gzip member in
 * the logged bytes (stored as it is by deflate) was taken for the member a damaged stream ran into,
 * and its lines, whoever wrote them, replaced the rotation's. Real gzip files, the real copy.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { copyLinesOf } from './helpers/gzip-damage.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-gz-search-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `size` bytes of one deflate stream of stored blocks, a gzip header every 64 bytes inside the block
 * before's data, so that a member seems to begin at each and decodes on to the file's end.
 */
function headers(size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < Math.floor(size / 64); i++) {
    const b = Buffer.alloc(64, 0x41);
    Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]).copy(b, 0);
    b[10] = 0;
    b.writeUInt16LE(59, 11);
    b.writeUInt16LE(59 ^ 0xffff, 13);
    parts.push(b);
  }
  return Buffer.concat([...parts, Buffer.alloc(10, 0x42), Buffer.from([1, 0, 0, 0xff, 0xff]), Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0])]);
}

const dhcp = (n: number, net: number) => Array.from({ length: n }, (_, i) => `Dec  7 10:00:${String(i % 60).padStart(2, '0')} gw dhcpd[9]: DHCPACK on 10.${net}.0.${i} to 52:54:00:00:${net}:${(i % 256).toString(16).padStart(2, '0')} via eth0`);

describe('gzip rotations: the search for the next sound member', () => {
  it('is bounded: 2 MB of crafted headers, the first one damaged, is read at once and the stop is said', async () => {
    const b = headers(2 * 1024 * 1024);
    b[0] = 0x1e;
    const p = join(dir, 'crafted.log.1.gz');
    writeFileSync(p, Buffer.concat([b, gzipSync(Buffer.from(dhcp(3, 9).join('\n') + '\n'))]));
    const got = await copyLinesOf(p);
    expect(got.broken).toMatch(/the search for sound members after damaged ones stopped at its bound/);
  });

  for (const [what, damage] of [
    ['its CRC-32', (gz: Buffer) => gz.writeUInt32LE((gz.readUInt32LE(gz.length - 8) ^ 1) >>> 0, gz.length - 8)],
    ['its CRC-32 and length', (gz: Buffer) => (gz.writeUInt32LE((gz.readUInt32LE(gz.length - 8) ^ 1) >>> 0, gz.length - 8), (gz[gz.length - 3] ^= 0x10))],
  ] as const) {
    it(`a gzip member inside the logged data is not read as the member a damaged stream ran into (${what} damaged)`, async () => {
      const noise = (n: number) => {
        const x = randomBytes(n);
        for (let i = 0; i < n; i++) if (x[i] === 0x1f) x[i] = 0x20;
        return x;
      };
      const forged = gzipSync(Buffer.from('Dec  7 10:01:00 gw dhcpd[9]: DHCPACK on 10.66.6.6 to de:ad:be:ef:66:66 via eth0\n'));
      const content = Buffer.concat([Buffer.from(dhcp(50, 1).join('\n') + '\n'), noise(40_000), forged, noise(40_000), Buffer.from('\n' + dhcp(50, 2).join('\n') + '\n')]);
      const member = gzipSync(content);
      expect(member.indexOf(forged)).toBeGreaterThan(0);
      damage(member);
      const after = dhcp(5, 3);
      const p = join(dir, `embedded-${what.length}.log.1.gz`);
      writeFileSync(p, Buffer.concat([member, gzipSync(Buffer.from(after.join('\n') + '\n'))]));
      const got = await copyLinesOf(p, 'utf8');
      expect(got.lines.filter((l) => l.includes('10.66.6.6'))).toEqual([]);
      expect(got.lines.filter((l) => l.includes('DHCPACK'))).toEqual(after);
    });
  }
});
