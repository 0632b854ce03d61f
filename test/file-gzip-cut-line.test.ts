/**
 * A gzip rotation whose writer cuts members mid-line (rsyslog's veryRobustZip flushing a full
 * buffer, BGZF), with one member damaged: where that member ended is not known, and the members that
 * passed before it all ended on line ends by chance, so it is taken to end on one. The next member's
 * first line is then the tail of a cut line, `smith/…` of `alice.smith/…`: read, it was a tunnel-up
 * for the wrong user at the right address (review). Now the first line after such a member is read
 * only if it opens like the file's other lines; a whole line there is still read. Real gzip members
 * (node's zlib, bytes changed afterwards), the real decompressed copy, the real line decoder.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, inflateRawSync } from 'node:zlib';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { badData, breaking, copyLinesOf } from './helpers/gzip-damage.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-gz-cut-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const copyLines = async (path: string) => (await copyLinesOf(path)).lines;

const tunnel = (who: string, ip: string) => `2026-11-23 11:59:59 ${who}/203.0.113.5:51234 MULTI_sva: pool returned IPv4=${ip}, IPv6=(Not enabled)`;
const filler = (n: number, p: string) =>
  Array.from({ length: n }, (_, i) => `2026-11-23 10:00:${String(i % 60).padStart(2, '0')} ${p}${i} ${'y'.repeat(i % 50)} TLS: Initial packet from [AF_INET]198.51.100.${i % 250}:1194`);
const text = (l: string[]) => l.join('\n') + '\n';

const DAMAGE = {
  'its deflate data breaks': (g: Buffer) => breaking(g, 0.3),
  'its deflate data decodes into other lines': (g: Buffer, t: Buffer) => badData(g, t, 0.3),
};

describe('gzip rotation cut mid-line, a member damaged', () => {
  for (const [how, damage] of Object.entries(DAMAGE)) {
    for (const first of [false, true]) {
      it(`${how}${first ? ', the first member' : ''}: a member of the cut line's tail alone is not read as a line (no line after it to compare with)`, async () => {
        const full = tunnel('alice.smith', '10.8.0.6');
        const cut = full.indexOf('smith');
        const t1 = Buffer.from(text(filler(40, 'b')) + full.slice(0, cut));
        const after = filler(5, 'c');
        const members = [damage(gzipSync(t1), t1), gzipSync(Buffer.from(full.slice(cut) + '\n')), gzipSync(Buffer.from(text(after)))];
        if (!first) members.unshift(gzipSync(Buffer.from(text(filler(5, 'a')))));
        const p = join(dir, 'vpn.log.4.gz');
        writeFileSync(p, Buffer.concat(members));
        const got = await copyLines(p);
        expect(got.filter((l) => l.includes('smith'))).toEqual([]);
        expect(got.filter((l) => l.includes(' c'))).toEqual(after);
      });

      it(`${how}${first ? ', the first member' : ''}: the next member's opening tail of a line is not read as a line; every whole line of the sound members is`, async () => {
        const full = tunnel('alice.smith', '10.8.0.6');
        const cut = full.indexOf('smith');
        const before = filler(40, 'a');
        const damagedLines = filler(40, 'b');
        const after = filler(5, 'c');
        // (the sound member before ends on a line end: no member seen to cut a line)
        const t1 = Buffer.from(text(damagedLines) + full.slice(0, cut));
        const members = [damage(gzipSync(t1), t1), gzipSync(Buffer.from(full.slice(cut) + '\n' + text(after)))];
        if (!first) members.unshift(gzipSync(Buffer.from(text(before))));
        const p = join(dir, 'vpn.log.2.gz');
        writeFileSync(p, Buffer.concat(members));

        const got = await copyLines(p);
        expect(got.filter((l) => l.includes('smith'))).toEqual([]);
        expect(got.filter((l) => l.includes(' c'))).toEqual(after);
        if (!first) expect(got.filter((l) => l.includes(' a'))).toEqual(before);
        const dec = new LineDecoder(await loadRegistry(), 'auto', 'UTC');
        const users = got.flatMap((l) => dec.decode(l, { receivedAt: new Date('2026-11-23T12:00:00Z'), source: 'file:vpn' }).sightings.map((s) => s.user));
        expect(users.filter((u) => u !== undefined)).toEqual([]);
      });
    }
  }

  it('the member after the damaged one straddling a 64 KiB read (its first output a few bytes of the tail): not read as a line', async () => {
    const vpn = (who: string, ip: string) => `Jul  3 21:42:57 gw openvpn[66026]: ${who}/203.0.113.5:51234 MULTI_sva: pool returned IPv4=${ip}, IPv6=(Not enabled)`;
    const lines = (n: number, p: string) => Array.from({ length: n }, (_, i) => `Jul  3 21:40:${String(i % 60).padStart(2, '0')} gw openvpn[66026]: ${p}${i} TLS: Initial packet from [AF_INET]198.51.100.${i % 250}:1194`);
    const full = vpn('alice.smith', '10.8.0.6');
    const cut = full.indexOf('smith');
    const t2 = Buffer.from(text(lines(40, 'b')) + full.slice(0, cut));
    // (a byte of its deflate data changed so that it decodes to its trailer into other lines, at another length: its end unknown)
    const m2 = (() => {
      const gz = gzipSync(t2);
      for (let i = 10 + Math.floor((gz.length - 18) * 0.3); i < gz.length - 8; i++) {
        for (const x of [0x55, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80]) {
          const b = Buffer.from(gz);
          b[i] ^= x;
          let r: { buffer: Buffer; engine: { bytesWritten: number } };
          try {
            r = inflateRawSync(b.subarray(10, b.length - 8), { info: true }) as unknown as typeof r;
          } catch {
            continue;
          }
          if (r.engine.bytesWritten === gz.length - 18 && r.buffer.length !== t2.length) return b;
        }
      }
      throw new Error('no byte to change');
    })();
    const m3 = gzipSync(Buffer.from(full.slice(cut) + '\n' + text(lines(5, 'c'))));
    const dec = new LineDecoder(await loadRegistry(), 'auto', 'UTC');
    for (let into = 40; into <= 52; into++) {
      // (a sound stored member sized so that m3's header and `into` bytes of its deflate data end the first 64 KiB read)
      const pad = (n: number) => gzipSync(Buffer.from(`Jul  3 21:39:00 gw openvpn[66026]: pad ${'x'.repeat(n)}\n` + text(lines(3, 'a'))), { level: 0 });
      let m1 = pad(60000);
      m1 = pad(60000 + 65536 - 10 - into - m2.length - m1.length);
      expect(m1.length + m2.length + 10 + into).toBe(65536);
      const p = join(dir, `vpn-${into}.log.1.gz`);
      writeFileSync(p, Buffer.concat([m1, m2, m3]));
      const got = await copyLines(p);
      expect(got.filter((l) => l.includes('smith')), `${into} bytes into the member`).toEqual([]);
      expect(got.flatMap((l) => dec.decode(l, { receivedAt: new Date('2026-11-23T12:00:00Z'), source: 'file:vpn' }).sightings.map((s) => s.user)).filter((u) => u)).toEqual([]);
    }
  });

  for (const [how, damage] of Object.entries(DAMAGE)) {
    it(`${how}: a file opening with a banner line, a damaged member, then a sound member: its first line is read (the banner is no reference)`, async () => {
      const t1 = Buffer.from(text(['# onsight test log, opened 2026-11-23', ...filler(20, 'a')]));
      const t2 = Buffer.from(text(filler(40, 'b')));
      const after = filler(20, 'c');
      const p = join(dir, `banner-${how.length}.log.1.gz`);
      writeFileSync(p, Buffer.concat([gzipSync(t1), damage(gzipSync(t2), t2), gzipSync(Buffer.from(text(after)))]));
      const got = await copyLines(p);
      expect(got.filter((l) => l.includes(' c'))).toEqual(after);
    });
  }

  it('a rotation of one-line members, every other one damaged (rsyslog veryRobustZip): every sound line is read, the searches within their bound', async () => {
    const ls = Array.from({ length: 5000 }, (_, i) => `2026-11-23 10:${String(i % 60).padStart(2, '0')}:00 bob/203.0.113.${i % 250}:${1024 + i} MULTI_sva: pool returned IPv4=10.8.${i % 9}.${i % 250} #${i}`);
    const members = ls.map((l, i) => {
      const m = gzipSync(l + '\n');
      if (i % 2 === 1) m[12] ^= 0xff;
      return m;
    });
    const p = join(dir, 'many.log.1.gz');
    writeFileSync(p, Buffer.concat(members));
    const got = new Set(await copyLines(p));
    // (before: a test decode charged 4 KiB at least, and the search stopped after about 2,000 of them)
    expect(ls.filter((l, i) => i % 2 === 0 && !got.has(l))).toEqual([]);
  }, 60_000);

  it('a whole line opening the member after a damaged one is still read (members cut on line ends)', async () => {
    const before = filler(30, 'a');
    const damagedLines = filler(30, 'b');
    const after = [tunnel('carol', '10.8.0.9'), ...filler(5, 'c')];
    const t1 = Buffer.from(text(damagedLines));
    const p = join(dir, 'vpn.log.3.gz');
    writeFileSync(p, Buffer.concat([gzipSync(Buffer.from(text(before))), breaking(gzipSync(t1), 0.3), gzipSync(Buffer.from(text(after)))]));
    const got = await copyLines(p);
    expect(got.filter((l) => !/ b\d/.test(l))).toEqual([...before, ...after]);
  });
});
