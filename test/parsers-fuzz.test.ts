/**
 * Property / fuzz test over EVERY parser plug-in in the registry: mutated corpus lines, random strings
 * and 1 MiB lines go through the real LineDecoder (fixed format and `auto`). No parser may throw (the
 * decoder counts a throw in `parserErrors`), and no line may take longer than a generous bound — the
 * bound is there to catch quadratic (or worse) scans, not timing noise.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry, type ParserRegistry } from '../src/parsers/registry.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import { CORPUS, REPO } from './helpers/paths.js';

const MIB = 1 << 20;
/** per 1 MiB line, per decoder: a linear scan takes a few ms; quadratic would take minutes */
const BIG_LINE_MS = 200;
/** per short line (< 4 KiB) */
const SHORT_LINE_MS = 100;
const RECEIVED_AT = new Date('2026-11-23T12:00:00Z');

/** Corpus lines: ../shared/corpus when present, else the parsers' own cases (testdata/extra.log). */
function corpusLines(): string[] {
  const files: string[] = [];
  if (existsSync(CORPUS)) {
    for (const d of readdirSync(CORPUS)) {
      const f = join(CORPUS, d, 'lines.log');
      if (existsSync(f)) files.push(f);
    }
  }
  if (files.length === 0) {
    const parsers = join(REPO, 'parsers');
    for (const d of readdirSync(parsers)) {
      const td = join(parsers, d, 'testdata');
      if (!existsSync(td)) continue;
      for (const f of readdirSync(td)) if (f.endsWith('.log')) files.push(join(td, f));
    }
  }
  const out: string[] = [];
  for (const f of files) for (const l of readFileSync(f, 'utf8').split('\n')) if (l) out.push(l.endsWith('\r') ? l.slice(0, -1) : l);
  return out;
}

/** The 1 MiB lines: long runs of the characters and words parsers scan for. */
function bigLines(): { name: string; text: string }[] {
  const r = (s: string) => s.repeat(Math.ceil(MIB / s.length)).slice(0, MIB);
  return [
    { name: 'DHCPACK on + 1M digits', text: 'DHCPACK on ' + '1'.repeat(MIB) },
    { name: 'syslog header + DHCPACK on + 1M digits', text: '<30>Nov 22 19:54:11 gw dhcpd[812]: DHCPACK on ' + '1'.repeat(MIB) },
    { name: 'spaces', text: r(' ') },
    { name: 'header + spaces', text: '<30>Nov 22 19:54:11 gw dhcpd[812]: ' + r(' ') + 'x' },
    { name: 'quotes', text: r('"') },
    { name: 'commas', text: r(',') },
    { name: 'windows record + commas', text: '10,11/22/26,08:01:02,Assign,10.0.0.1' + r(',') },
    { name: 'windows record + quotes', text: '10,11/22/26,08:01:02,"' + r('a""') },
    { name: 'equals', text: r('=') },
    { name: 'key=value pairs', text: r('k=v ') },
    { name: 'key=" unterminated', text: 'devname="x" ' + r('a="') },
    { name: 'brackets', text: r('[') },
    { name: 'kea label', text: 'INFO  [kea-dhcp4.leases.1] DHCP4_LEASE_ALLOC ' + r('[hwtype=1 ') },
    { name: 'parens', text: r('(') },
    { name: 'colons', text: r(':') },
    { name: 'dnsmasq tag + digits', text: 'dnsmasq-dhcp[1]: ' + r('9') },
    { name: 'dnsmasq verb run', text: 'dnsmasq-dhcp[1]: 123 ' + r('DHCPACK(') },
    { name: 'ASA marker run', text: '<166>' + r('%ASA-6-') },
    { name: 'slashes and at', text: r('/@') },
    { name: 'tabs', text: r('\t') },
    { name: 'ipv4ish', text: r('1.2.3.4 ') },
    { name: 'ipv6ish', text: r('fe80::1:') },
    { name: 'RFC 5424 structured data', text: '<134>1 2024-04-05T21:44:27+00:00 h app 1 - ' + r('[a b="\\"') },
    { name: 'backslashes', text: r('\\') },
    { name: 'words', text: r('for from to on via lease address ') },
  ];
}

/** Mutations of a corpus line: insertions, deletions, duplications, truncations. */
function mutated(lines: string[]): fc.Arbitrary<string> {
  const junk = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom(' ', '  ', '\t', '"', ',', '=', '[', ']', '(', ')', ':', '%', '\\n', '\u0000', '\uFFFD', '0x', 'DHCPACK', 'lease',
      'to', 'on', 'from', 'via', '(RENEW)', 'TransID', 'lease-duration', '[hwtype=1 ', 'cid=[', 'duid=[', '11002,', '10,01/01/01,'),
  );
  return fc.tuple(fc.constantFrom(...lines), fc.nat(), fc.nat(), junk, fc.integer({ min: 0, max: 4 })).map(([line, a, b, j, op]) => {
    const n = line.length;
    const i = n ? a % (n + 1) : 0;
    const k = n ? b % (n + 1) : 0;
    const [lo, hi] = i <= k ? [i, k] : [k, i];
    switch (op) {
      case 0:
        return line.slice(0, i) + j + line.slice(i);
      case 1:
        return line.slice(0, lo) + line.slice(hi);
      case 2:
        return line.slice(0, hi) + line.slice(lo, hi) + line.slice(lo);
      case 3:
        return line.slice(0, i);
      default:
        return line.slice(0, lo) + j + line.slice(hi);
    }
  });
}

describe('every parser plug-in survives fuzzed and huge lines', () => {
  let registry: ParserRegistry;
  let ids: string[];
  const lines = corpusLines();

  beforeAll(async () => {
    registry = await loadRegistry();
    ids = registry.ids();
  });

  function decoders(): { name: string; d: LineDecoder }[] {
    return [...ids.map((id) => ({ name: id, d: new LineDecoder(registry, id, 'UTC') })), { name: 'auto', d: new LineDecoder(registry, 'auto', 'UTC') }];
  }

  /**
   * Decode once and time it; when over the bound, decode again (up to 3 tries) and keep the fastest, so a
   * GC pause or a busy CI core is not mistaken for a quadratic scan (which is slow every time).
   */
  function timed(name: string, d: LineDecoder, text: string, source: string, boundMs: number): number {
    let best = Infinity;
    for (let attempt = 0; attempt < 3 && best > boundMs; attempt++) {
      const t0 = performance.now();
      try {
        d.decode(text, { receivedAt: RECEIVED_AT, source, line: 1 });
      } catch (err) {
        throw new Error(`${name}: decode() threw on ${JSON.stringify(text.slice(0, 200))}: ${String(err)}`);
      }
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  }

  function feed(all: { name: string; d: LineDecoder }[], text: string, boundMs: number, source = 'fuzz'): void {
    for (const { name, d } of all) {
      const ms = timed(name, d, text, source, boundMs);
      if (ms > boundMs) throw new Error(`${name}: ${ms.toFixed(1)} ms for a ${text.length}-char line (bound ${boundMs} ms): ${JSON.stringify(text.slice(0, 80))}`);
    }
  }

  function noErrors(all: { name: string; d: LineDecoder }[]): void {
    for (const { name, d } of all) expect(d.counters.parserErrors, `${name} threw`).toBe(0);
  }

  it('has plug-ins and corpus lines to work with', () => {
    console.log(`fuzzing ${ids.length} plug-ins (${ids.join(', ')}) with ${lines.length} corpus lines`);
    expect(ids.length).toBeGreaterThan(0);
    expect(lines.length).toBeGreaterThan(0);
  });

  it('mutated corpus lines: no throw, no slow line', () => {
    const all = decoders();
    // warm up every code path once so JIT compilation is not timed
    for (const l of lines) feed(all, l, 5_000);
    fc.assert(fc.property(mutated(lines), fc.constantFrom('a', 'b', 'c'), (text, src) => {
      feed(all, text, SHORT_LINE_MS, src);
    }), { numRuns: 10_000, seed: 20261123 });
    noErrors(all);
  });

  it('random strings: no throw, no slow line', () => {
    const all = decoders();
    const tokens = fc.constantFrom('<30>', '<134>1 ', 'Nov 22 19:54:11 ', '2024-01-13T06:24:01 ', 'gw ', 'dhcpd[1]: ', 'dnsmasq-dhcp[2]: ',
      'kea-dhcp4: ', 'INFO  [kea-dhcp4.leases.1] ', 'DHCP4_LEASE_ALLOC ', 'DHCPACK ', 'DHCPACK(br0) ', 'on ', 'to ', '10.0.0.1 ',
      '52:54:00:aa:bb:cc ', '(host) ', 'via eth0 ', '10,', '11002,', '01/01/01,', '01:01:01,', '%ASA-6-722051: ', 'user="a" ',
      'assigning virtual IP ', '"', ',', '=', ' ', '[', ']');
    const arb = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ maxLength: 300, unit: 'grapheme' }),
      fc.array(tokens, { maxLength: 40 }).map((a) => a.join('')),
    );
    fc.assert(fc.property(arb, (text) => {
      feed(all, text, SHORT_LINE_MS);
    }), { numRuns: 5000, seed: 424242 });
    noErrors(all);
  });

  it('a stray token after the header time (once read as a year, giving NaN) never makes decode() throw, and every sighting has a valid time', () => {
    const line = '<30>Nov 22 19:55:00 5:00 5:00 gw dhcpd[812]: DHCPACK on 10.20.1.8 to 52:54:00:aa:bb:dd via eth0';
    for (const id of ['isc-dhcpd', 'infoblox', 'kea-dhcp4', 'dnsmasq', 'windows-dhcp'].filter((x) => ids.includes(x))) {
      const d = new LineDecoder(registry, id, 'UTC');
      const variants = [line, line.replace('gw dhcpd[812]: DHCPACK on', 'gw dnsmasq-dhcp[1]: DHCPACK(br0)').replace(' to ', ' ').replace(' via eth0', ''),
        line.replace('gw dhcpd[812]: DHCPACK on 10.20.1.8 to 52:54:00:aa:bb:dd via eth0', 'gw kea-dhcp4: INFO  [kea-dhcp4.leases.1] DHCP4_LEASE_ALLOC [hwtype=1 52:54:00:aa:bb:dd], cid=[no info], tid=0x1: lease 10.20.1.8 has been allocated for 60 seconds'),
        line.replace('gw dhcpd[812]: DHCPACK on 10.20.1.8 to 52:54:00:aa:bb:dd via eth0', 'dhcp01 DhcpSrvLog: 10,13/45/26,99:01:02,Assign,10.20.1.8,pc,525400AABBDD,,1,0')];
      for (const v of variants) {
        const r = d.decode(v, { receivedAt: RECEIVED_AT, source: 'nan', line: 1 });
        for (const s of r.sightings) expect(Number.isFinite(Date.parse(s.at)), `${id}: ${v}`).toBe(true);
      }
      expect(d.counters.parserErrors).toBe(0);
    }
  });

  it(`1 MiB lines: each decoded in under ${BIG_LINE_MS} ms by every plug-in and by auto`, () => {
    const all = decoders();
    feed(all, 'warm up', 5_000);
    const slowest: string[] = [];
    for (const { name, text } of bigLines()) {
      let worst = 0;
      for (const { name: p, d } of all) {
        const ms = timed(p, d, text, 'big', BIG_LINE_MS);
        if (ms > worst) worst = ms;
        expect(ms, `${p} on "${name}" took ${ms.toFixed(1)} ms`).toBeLessThan(BIG_LINE_MS);
      }
      slowest.push(`${name}: ${worst.toFixed(1)} ms`);
    }
    console.log(`slowest decoder per 1 MiB line:\n  ${slowest.join('\n  ')}`);
    noErrors(all);
  });
});
