/**
 * The prefilter before auto-detection (src/parsers/prefilter.ts) must never reject a line some
 * detector claims: checked on every line of ../shared (corpus, conformance, realworld) and of the
 * parsers' own test data; it must reject firewall noise; and a plug-in that does not say what it
 * needs turns it off.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/parsers/registry.js';
import { LineDecoder, unwrapInnerTag } from '../src/parsers/decoder.js';
import { Prefilter } from '../src/parsers/prefilter.js';
import { parseSyslog } from '../src/parsers/syslog-header.js';
import type { LineInput, ParserPlugin } from '../src/parsers/plugin.js';
import { REPO, SHARED } from './helpers/paths.js';

function files(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const n of readdirSync(dir)) {
    const f = join(dir, n);
    const s = statSync(f);
    if (s.isDirectory()) files(f, out);
    else if (s.size < 20e6) out.push(f);
  }
  return out;
}

function input(raw: string): LineInput {
  const receivedAt = new Date('2026-01-01T00:00:00Z');
  return { raw, syslog: unwrapInnerTag(parseSyslog(raw, { receivedAt, zone: 'UTC' })), receivedAt, zone: 'UTC', source: 't' };
}

const NOISE = '<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,DF,6,tcp,60,203.0.113.9,10.0.0.1,1024,443,0,S,123456,,64240,,mss';

describe('prefilter before auto-detection', () => {
  it('never rejects a line a detector claims, on every line of ../shared and of parsers/*/testdata', async () => {
    const plugins = (await loadRegistry()).list();
    const pf = Prefilter.of(plugins)!;
    expect(pf).toBeDefined();
    const dirs = ['corpus', 'conformance', 'realworld'].map((d) => join(SHARED, d)).filter(existsSync);
    if (!dirs.length) console.log('../shared absent: checking the parsers\' own test data only');
    let claimed = 0;
    let rejected = 0;
    const missed: string[] = [];
    for (const f of [...dirs.flatMap((d) => files(d)), ...files(join(REPO, 'parsers'))]) {
      for (const raw of readFileSync(f, 'utf8').split(/\r?\n/)) {
        if (!raw) continue;
        const i = input(raw);
        const any = plugins.some((p) => p.detect(i));
        const may = pf.mayClaim(i);
        if (any) claimed++;
        if (!may) rejected++;
        if (any && !may) missed.push(`${f}: ${raw.slice(0, 160)}`);
      }
    }
    expect(missed).toEqual([]);
    expect(claimed).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(0);
  });

  it('a source can test raw lines itself: mayClaimLine (header read in any zone) agrees with mayClaim on every line', async () => {
    const pf = Prefilter.of((await loadRegistry()).list())!;
    // what another thread gets: the merged claims, as plain data
    const copy = Prefilter.fromClaims(structuredClone(pf.claims))!;
    const receivedAt = new Date('2026-03-29T01:30:00Z');
    const dirs = ['corpus', 'conformance', 'realworld'].map((d) => join(SHARED, d)).filter(existsSync);
    const differ: string[] = [];
    let n = 0;
    for (const f of [...dirs.flatMap((d) => files(d)), ...files(join(REPO, 'parsers'))]) {
      for (const raw of readFileSync(f, 'utf8').split(/\r?\n/)) {
        if (!raw) continue;
        n++;
        // the zone only turns a stamp into a time: the tag and message the prefilter reads are the same
        const berlin = unwrapInnerTag(parseSyslog(raw, { receivedAt, zone: 'Europe/Berlin' }));
        const i = { ...input(raw), syslog: berlin, zone: 'Europe/Berlin' };
        if (copy.mayClaimLine(raw) !== pf.mayClaim(i)) differ.push(`${f}: ${raw.slice(0, 160)}`);
      }
    }
    expect(differ).toEqual([]);
    expect(n).toBeGreaterThan(100);
    expect(copy.mayClaimLine(NOISE)).toBe(false);
    expect(copy.mayClaimLine('<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.0.0.1 to 52:54:00:00:00:01 via eth0')).toBe(true);
    // the real tag inside the message of a relay (`logger`), as the decoder reads it
    expect(copy.mayClaimLine('<13>Nov 23 10:00:00 gw root: dnsmasq-dhcp[7]: something')).toBe(true);
    expect(Prefilter.fromClaims({ tags: 'x' } as never)).toBeUndefined();
  });

  it('rejects firewall traffic noise, and the decoder counts it unrecognized', async () => {
    const reg = await loadRegistry();
    expect(Prefilter.of(reg.list())!.mayClaim(input(NOISE))).toBe(false);
    const d = new LineDecoder(reg, 'auto', 'UTC');
    expect(d.decode(NOISE, { receivedAt: new Date(), source: 't' }).sightings).toEqual([]);
    expect(d.counters.unrecognized).toBe(1);
  });

  it('is off when a plug-in does not say what it needs (a user plug-in may claim anything)', async () => {
    const plugins = (await loadRegistry()).list();
    const anything: ParserPlugin = { id: 'anything', description: 'claims all', detect: () => true, create: () => ({ parse: () => [] }) };
    expect(Prefilter.of([anything, ...plugins])).toBeUndefined();
    const malformed = { ...anything, claims: { tags: 'anything' } } as unknown as ParserPlugin;
    expect(Prefilter.of([malformed, ...plugins])).toBeUndefined();
  });
});
