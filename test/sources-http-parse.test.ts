/**
 * The HTTP input's and lease readers' parsers take attacker-controlled bytes: they never throw, on
 * anything (fast-check), nor on deeply nested or huge JSON.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHecEvents, splitConcatenatedJson } from '../src/sources/http/hec.js';
import { checkSighting, parseSightingBody } from '../src/sources/http/sightings.js';
import { parseDnsmasqLeases } from '../src/sources/lease/dnsmasq.js';
import { IscLeasesReader } from '../src/sources/lease/isc.js';
import { KeaCsvReader } from '../src/sources/lease/kea.js';

const at = new Date('2026-12-01T10:00:00Z');

describe('HTTP input and lease parsers on hostile input', () => {
  it('never throw on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => {
      parseHecEvents(s);
      const b = parseSightingBody(s);
      if (b.ok) for (const item of b.items) checkSighting(item, 'http:1', at);
      parseDnsmasqLeases(s);
      const isc = new IscLeasesReader();
      const kea = new KeaCsvReader();
      for (const l of s.split('\n')) {
        isc.line(l);
        kea.line(l);
      }
    }), { numRuns: 2000 });
  });

  it('never throw on JSON-shaped input', () => {
    fc.assert(fc.property(fc.array(fc.jsonValue(), { maxLength: 5 }), (vs) => {
      const body = vs.map((v) => JSON.stringify({ event: v })).join('');
      const r = parseHecEvents(body);
      if (r.ok) expect(r.events.length).toBe(vs.length);
      for (const v of vs) checkSighting(v, 'http:1', at);
    }), { numRuns: 1000 });
  });

  it('handles deep nesting and a large batch', () => {
    const deep = '{"event":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    expect(() => parseHecEvents(deep)).not.toThrow();
    expect(splitConcatenatedJson('{'.repeat(100_000))).toEqual({ badIndex: 0 });
    const many = Array.from({ length: 20_000 }, (_, i) => `{"event":"line ${i}"}`).join('\n');
    const r = parseHecEvents(many);
    expect(r.ok && r.events.length).toBe(20_000);
  });

  it('reads Kea v6 rows by the header names; skips prefix delegations and declined leases', () => {
    const kea = new KeaCsvReader();
    kea.line('address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source,pool_id');
    const na = kea.line('2001:db8:1::10,00:03:00:01:52:54:00:aa:bb:cc,4000,1796158000,1,3000,0,1,128,0,0,laptop&#x2c7.example.,52:54:00:aa:bb:cc,0,,1,2,0');
    expect(na.records).toEqual([{ state: 'active', ip: '2001:db8:1::10', mac: '52:54:00:aa:bb:cc', duid: '00:03:00:01:52:54:00:aa:bb:cc', hostname: 'laptop,7.example', startAt: 1796154000000, expiresAt: 1796158000000, durationS: 4000 }]);
    expect(kea.line('2001:db8:2::,00:03:00:01:52:54:00:aa:bb:cc,4000,1796158000,1,3000,2,1,64,0,0,,,0,,1,2,0').records).toEqual([]);
    expect(kea.line('2001:db8:1::11,00:01,4000,1796158000,1,3000,0,1,128,0,0,,,1,,1,2,0').records).toEqual([]);
    expect(kea.line('2001:db8:1::10,00:03:00:01:52:54:00:aa:bb:cc,0,1796154100,1,0,0,1,128,0,0,,,0,,1,2,0').records[0].state).toBe('released');
  });

  it('checks Sighting JSON fields: canonical ip and mac, ISO times, no control characters, source is ours', () => {
    const ok = checkSighting({ kind: 'lease', ip: '10.0.0.10', mac: '52-54-00-AA-BB-CC', at: '2026-12-01T09:00:00+01:00', source: 'spoofed' }, 'http:8088:nac', at);
    expect(ok).toEqual({ ok: true, sighting: { kind: 'lease', ip: '10.0.0.10', mac: '52:54:00:aa:bb:cc', at: '2026-12-01T08:00:00.000Z', format: 'json', source: 'http:8088:nac' } });
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.1', hostname: 'evil\u001b[2J' }, 's', at)).toEqual({ ok: false, error: expect.stringMatching(/hostname/) });
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.1', at: 'yesterday' }, 's', at)).toEqual({ ok: false, error: expect.stringMatching(/^at:/) });
    expect(checkSighting({ kind: 'up', ip: '10.0.0.1' }, 's', at)).toEqual({ ok: false, error: expect.stringMatching(/^kind/) });
    expect(checkSighting({ kind: 'lease', ip: '10.0.0.1', extra: 1 }, 's', at)).toEqual({ ok: false, error: 'unknown field(s): extra' });
  });
});
