/**
 * keyValues (the key=value splitter of the FortiGate and GlobalProtect parsers): a value a client
 * chose (a DHCP host name, a user name) must not end early on an escaped quote, and a key it repeats
 * must not replace the device's own field. Unit cases, then the real decoder on FortiGate and
 * GlobalProtect lines.
 */
import { describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { keyValues } from '../src/parsers/text.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');
const decode = async (format: string, line: string) =>
  new LineDecoder(await loadRegistry(), format, 'UTC').decode(line, { receivedAt: RECEIVED, source: 'udp:514' });

describe('keyValues', () => {
  it('reads \\" and \\\\ inside a quoted value as a quote and a backslash', () => {
    const kv = keyValues('a="x\\" b=1 c=\\"" d="e\\\\" f=2 g="corp\\bob"');
    expect(Object.fromEntries(kv)).toEqual({ a: 'x" b=1 c="', d: 'e\\', f: '2', g: 'corp\\bob' });
  });

  it('keeps the first of a repeated key', () => {
    expect(Object.fromEntries(keyValues('ip=10.0.0.1 hostname="pc" ip=10.0.0.2 ip="10.0.0.3"'))).toEqual({ ip: '10.0.0.1', hostname: 'pc' });
  });

  it('an unterminated value runs to the end; a trailing backslash is kept', () => {
    expect(Object.fromEntries(keyValues('a=1 b="x\\" c=2'))).toEqual({ a: '1', b: 'x" c=2' });
    expect(Object.fromEntries(keyValues('a="x\\'))).toEqual({ a: 'x\\' });
  });

  it('stays linear on a MiB of escapes and of repeated keys', () => {
    const mib = 1 << 20;
    for (const text of ['a="' + '\\"'.repeat(mib / 2), 'k=v '.repeat(mib / 4), 'a="' + '\\\\'.repeat(mib / 2) + '"']) {
      const t = performance.now();
      keyValues(text);
      // (not a speed figure: a rescan per escape or key would take minutes on a MiB; linear takes ~50 ms, a loaded CI box 10x that)
      expect(performance.now() - t).toBeLessThan(10_000);
    }
  });
});

describe('a client-chosen value cannot replace the device\'s fields', () => {
  const ack = 'date=2026-11-23 time=11:59:59 logid="0100026001" type="event" subtype="system" level="information" logdesc="DHCP Ack log" interface="port2" dhcp_msg="Ack" mac="AA:BB:CC:DD:EE:01" ip=10.20.1.5 lease=3600';

  for (const auto of [false, true]) {
    const fmt = (id: string) => (auto ? 'auto' : id);
    it(`FortiGate DHCP Ack: a host name with \\" or a raw quote keeps ip= (auto: ${auto})`, async () => {
      for (const [host, shown] of [['pc\\" ip=10.20.1.72 x=\\"', 'pc" ip=10.20.1.72 x="'], ['pc" ip=10.20.1.72 x="', 'pc']]) {
        const r = await decode(fmt('fortigate'), `<189>${ack} hostname="${host}" msg="DHCP server sends a DHCPACK"`);
        expect(r.sightings.map((s) => [s.kind, s.ip, s.mac, s.hostname])).toEqual([['lease', '10.20.1.5', 'aa:bb:cc:dd:ee:01', shown]]);
      }
    });

    it(`FortiGate SSL VPN: a user name carrying tunnelip= does not name the address (auto: ${auto})`, async () => {
      const r = await decode(fmt('fortigate'), '<190>date=2026-11-23 time=11:59:59 logid="0101039947" type="event" subtype="vpn" action="tunnel-up" tunnelip=10.20.1.6 user="bob\\" tunnelip=10.20.1.73 x=\\"" remip=198.51.100.7 tunneltype="ssl-tunnel"');
      expect(r.sightings.map((s) => [s.kind, s.ip, s.user])).toEqual([['tunnel-up', '10.20.1.6', 'bob" tunnelip=10.20.1.73 x="']]);
    });

    it(`GlobalProtect key=value: a machine name carrying private_ip= does not name the address (auto: ${auto})`, async () => {
      const r = await decode(fmt('globalprotect'), '<14>Nov 23 11:59:59 PA-3220 type=GLOBALPROTECT eventid=gateway-connected srcuser=corp\\carol private_ip=10.31.0.30 machinename="pc\\" private_ip=10.20.1.74 x=\\"" private_ip=10.20.1.75 status=success');
      expect(r.sightings.map((s) => [s.kind, s.ip, s.hostname])).toEqual([['tunnel-up', '10.31.0.30', 'pc" private_ip=10.20.1.74 x="']]);
    });
  }
});
