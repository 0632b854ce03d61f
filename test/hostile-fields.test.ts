/**
 * Field values no honest log writes, from a review of the decoders (session 31): times no Date can
 * hold, object property names as message ids or months, extra fields from a user plug-in, and a
 * lease-file statement built to make a regex backtrack. Each is dropped or contained, never thrown.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { checkSighting } from '../src/sources/http/sightings.js';
import { IscLeasesReader, statementText } from '../src/sources/lease/isc.js';
import { KeaCsvReader } from '../src/sources/lease/kea.js';
import { recordToSighting } from '../src/sources/lease/record.js';
import { monthNumber } from '../src/util/time.js';

const RECEIVED = new Date('2026-12-01T10:00:00Z');
const NOW = RECEIVED.getTime();

describe('field values no honest log writes', () => {
  it('an OpenVPN status line whose connected-since no Date can hold is still a tunnel-up, at the line\'s time', async () => {
    const d = new LineDecoder(await loadRegistry(), 'openvpn', 'UTC');
    const line = (since: string) => `<30>Dec  1 09:59:00 vpn openvpn[1]: CLIENT_LIST,alice,198.51.100.7:5555,10.8.0.6,,100,200,Mon Nov 30 13:42:00 2026,${since},UNDEF,0,0,AES-256-GCM`;
    const huge = d.decode(line('1e20'), { receivedAt: RECEIVED, source: 'test' });
    expect(d.counters.parserErrors).toBe(0);
    expect(huge.sightings.map((s) => [s.kind, s.ip, s.at])).toEqual([['tunnel-up', '10.8.0.6', '2026-12-01T09:59:00.000Z']]);
    const d2 = new LineDecoder(await loadRegistry(), 'openvpn', 'UTC');
    expect(d2.decode(line('1796046120'), { receivedAt: RECEIVED, source: 'test' }).sightings[0].at).toBe('2026-11-30T13:42:00.000Z');
  });

  it('a Kea message id that is an object property name (constructor) is no message', async () => {
    const d = new LineDecoder(await loadRegistry(), 'auto', 'UTC');
    const line = (id: string) => `2026-12-01 09:59:00.000 INFO  [kea-dhcp4.leases/1234.140] ${id} [hwtype=1 aa:bb:cc:dd:ee:ff], cid=[no info], tid=0x1: lease 10.0.0.99 has been allocated for 3600 seconds`;
    for (const id of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) expect(d.decode(line(id), { receivedAt: RECEIVED, source: 'test' }).sightings, id).toEqual([]);
    expect(d.decode(line('DHCP4_LEASE_ALLOC'), { receivedAt: RECEIVED, source: 'test' }).sightings.map((s) => s.kind)).toEqual(['lease']);
    expect(monthNumber('constructor')).toBeUndefined();
    expect(monthNumber('Dec')).toBe(12);
  });

  it('a user plug-in\'s extra or odd-typed fields go no further; a lease of 1e20 s is cut to ten years', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-odd-plugin-'));
    try {
      writeFileSync(join(dir, 'odd.mjs'), `export default {
  id: 'odd', description: 'returns odd fields',
  detect: (input) => input.syslog.appName === 'odd',
  create: () => ({ parse: () => [{ kind: 'lease', ip: '10.0.0.7', mac: 'AA-BB-CC-DD-EE-01', hostname: 42, user: 'u', extra: () => 1, durationS: 1e20, line: 99 }] }),
};\n`);
      const d = new LineDecoder(await loadRegistry(dir), 'auto', 'UTC');
      const r = d.decode('<30>Dec  1 09:59:00 h odd[1]: x', { receivedAt: RECEIVED, source: 'test', line: 3 });
      expect(d.counters.invalid).toBe(0);
      expect(r.sightings).toEqual([{ kind: 'lease', ip: '10.0.0.7', mac: 'aa:bb:cc:dd:ee:01', user: 'u', at: '2026-12-01T09:59:00.000Z', durationS: 10 * 365 * 86400, expiresAt: new Date(Date.parse('2026-12-01T09:59:00Z') + 10 * 365 * 86_400_000).toISOString(), format: 'odd', source: 'test', line: 3 }]);
      expect(() => structuredClone(r.sightings)).not.toThrow(); // what the decode thread posts
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lease files: times no Date can hold neither throw nor expire the lease', () => {
    const kea = new KeaCsvReader();
    kea.line('address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context');
    const [rec] = kea.line('10.0.0.5,52:54:00:aa:bb:cc,,4000,99999999999999,1,0,0,,0,').records;
    const s = recordToSighting(rec, NOW, 'kea-leases', 'test');
    expect(s.kind).toBe('lease');
    expect(s.expiresAt).toBeUndefined();
    expect(Number.isFinite(Date.parse(s.at))).toBe(true);
    const isc = new IscLeasesReader();
    const out = ['lease 10.0.0.6 {', '  starts epoch 1796115600;', '  ends epoch 99999999999999;', '  binding state active;', '  hardware ethernet 52:54:00:aa:bb:cd;', '}'].flatMap((l) => isc.line(l).records);
    expect(out).toHaveLength(1);
    expect(() => recordToSighting(out[0], NOW, 'isc-leases', 'test')).not.toThrow();
    expect(recordToSighting(out[0], NOW, 'isc-leases', 'test').kind).toBe('lease');
  });

  it('an ISC statement is cut at its first ; or # outside quotes, in one pass', () => {
    expect(statementText('starts epoch 1700000000; # Tue Nov 14 22:13:20 2023')).toBe('starts epoch 1700000000');
    expect(statementText('client-hostname "a;#b";')).toBe('client-hostname "a;#b"');
    expect(statementText('client-hostname "q\\"x;y";')).toBe('client-hostname "q\\"x;y"');
    expect(statementText('binding state active')).toBe('binding state active');
    const isc = new IscLeasesReader();
    const hostname = ['lease 10.0.0.8 {', '  binding state active;', '  hardware ethernet 52:54:00:aa:bb:ce;', '  client-hostname "semi;colon";', '}'].flatMap((l) => isc.line(l).records);
    expect(hostname[0].hostname).toBe('semi;colon');
    // the crafted statement that made the old regex quadratic: 200,000 `;#` and a CR before the quote closes
    const crafted = `client-hostname "${';#'.repeat(100_000)}\rx";`;
    expect(statementText(crafted)).toBe(crafted.slice(0, -1));
  });

  it('Sighting JSON: an `at` more than a day after receipt is refused; an expiry over ten years after it is cut to ten years', () => {
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.9', at: '9999-12-31T00:00:00Z' }, 'http:1', RECEIVED)).toEqual({ ok: false, error: 'at: more than a day after it was received (2026-12-01T10:00:00.000Z)' });
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.9', at: '2026-12-02T09:00:00Z' }, 'http:1', RECEIVED).ok).toBe(true);
    // a HEC envelope's time is the default `at`; the day is counted from the receipt
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.9', at: '2026-12-03T00:00:00Z' }, 'http:1', new Date('2026-12-02T09:00:00Z'), RECEIVED).ok).toBe(false);
    // an expiry over ten years on is an infinite lease: cut to ten years, not refused (an exporter may write 9999-12-31)
    const far = checkSighting({ kind: 'lease', ip: '10.0.0.9', at: '2026-12-01T09:00:00Z', expiresAt: '9999-12-31T00:00:00Z' }, 'http:1', RECEIVED);
    expect(far.ok && far.sighting.expiresAt).toBe(new Date(Date.parse('2026-12-01T09:00:00Z') + 10 * 365 * 86_400_000).toISOString());
  });
});
