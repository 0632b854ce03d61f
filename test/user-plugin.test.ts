/**
 * The worked example of parsers/README.md really works: examples/parsers/acme-vpn is loaded as a
 * user plug-in directory, listed next to the built-ins, and decodes its sample log.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistry, userPlugins } from '../src/parsers/registry.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import type { Sighting } from '../src/sighting.js';
import { readLines } from './helpers/corpus.js';
import { REPO } from './helpers/paths.js';

const DIR = join(REPO, 'examples', 'parsers');
const SAMPLE = join(DIR, 'acme-vpn', 'sample.log');
const RECEIVED = new Date('2026-11-30T00:00:00Z');

async function decodeSample(format: string): Promise<{ sightings: Sighting[]; formats: (string | undefined)[] }> {
  const decoder = new LineDecoder(await loadRegistry(DIR), format, 'UTC');
  const sightings: Sighting[] = [];
  const formats: (string | undefined)[] = [];
  readLines(SAMPLE).forEach((text, i) => {
    const r = decoder.decode(text, { receivedAt: RECEIVED, source: 'file:sample.log', line: i + 1 });
    formats.push(r.format);
    sightings.push(...r.sightings);
  });
  expect(decoder.counters.parserErrors).toBe(0);
  expect(decoder.counters.invalid).toBe(0);
  return { sightings, formats };
}

const ACME: Sighting[] = [
  { kind: 'tunnel-up', ip: '10.77.0.15', user: 'jdoe', remoteIp: '203.0.113.9', at: '2026-11-24T10:00:01.000Z', format: 'acme-vpn', source: 'file:sample.log', line: 2 },
  { kind: 'tunnel-up', ip: '10.77.0.16', user: 'asmith', remoteIp: '198.51.100.4', at: '2026-11-24T10:05:00.000Z', format: 'acme-vpn', source: 'file:sample.log', line: 3 },
  { kind: 'tunnel-down', ip: '10.77.0.15', user: 'jdoe', remoteIp: '203.0.113.9', at: '2026-11-24T11:00:01.000Z', durationS: 3600, format: 'acme-vpn', source: 'file:sample.log', line: 5 },
];

describe('user parser plug-ins (examples/parsers/acme-vpn)', () => {
  it('userPlugins() loads the example folder and it is a valid plug-in', async () => {
    const plugins = await userPlugins(DIR);
    expect(plugins.map((p) => p.id)).toEqual(['acme-vpn']);
    expect(plugins[0].description).toMatch(/ACME/);
  });

  it('loadRegistry(dir) lists it with the built-ins, marked as a user plug-in, tried first by auto', async () => {
    const registry = await loadRegistry(DIR);
    expect(registry.ids()[0]).toBe('acme-vpn');
    expect(registry.isUser('acme-vpn')).toBe(true);
    expect(registry.ids()).toContain('openvpn');
    expect(registry.isUser('openvpn')).toBe(false);
  });

  it('decodes the sample with --format acme-vpn', async () => {
    const { sightings } = await decodeSample('acme-vpn');
    expect(sightings).toEqual(ACME);
  });

  it('decodes the sample with --format auto, leaving the other line to its own parser', async () => {
    const { sightings, formats } = await decodeSample('auto');
    expect(formats).toEqual(['acme-vpn', 'acme-vpn', 'acme-vpn', 'isc-dhcpd', 'acme-vpn', 'acme-vpn']);
    expect(sightings.filter((s) => s.format === 'acme-vpn')).toEqual(ACME);
    expect(sightings.filter((s) => s.format === 'isc-dhcpd').map((s) => s.ip)).toEqual(['10.20.1.7']);
  });

  it('a broken plug-in is refused with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-bad-plugin-'));
    try {
      writeFileSync(join(dir, 'bad.mjs'), 'export default { id: "Bad Id", description: "x" };\n');
      await expect(userPlugins(dir)).rejects.toThrow(/not a parser plug-in/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
