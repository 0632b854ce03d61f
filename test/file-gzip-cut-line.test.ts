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
import { gzipSync } from 'node:zlib';
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
