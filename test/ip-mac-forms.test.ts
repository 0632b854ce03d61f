/**
 * Addresses and MACs as log lines write them, and text that only looks like them: a zone id is
 * IPv6's alone (`10.0.0.1%<junk>` was read as 10.0.0.1); a MAC is taken only in the groupings
 * logs use (`1:aa:bb:cc:dd:ee:f` was read as 1a:ab:bc:cd:de:ef, its digits regrouped), and old
 * ISC dhcpd's `%x` groups (`0:c:29:5b:2f:1`) are padded, not refused. Also through the real decoder.
 */
import { describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { canonicalIp } from '../src/util/ip.js';
import { normalizeMac } from '../src/util/mac.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');

describe('canonicalIp and zone ids', () => {
  it('keeps an IPv6 zone off the address, refuses one on IPv4', () => {
    expect(canonicalIp('fe80::1%eth0')).toBe('fe80::1');
    expect(canonicalIp('[FE80::1%25]')).toBe('fe80::1');
    expect(canonicalIp('::ffff:10.0.0.1%eth0')).toBe('10.0.0.1');
    for (const bad of ['10.0.0.1%anything', '10.0.0.1%', '10.20.1.73%<b>junk', '%eth0']) expect(canonicalIp(bad), bad).toBeUndefined();
    expect(canonicalIp('10.0.0.1')).toBe('10.0.0.1');
  });
});

describe('normalizeMac', () => {
  it('takes the groupings logs write', () => {
    for (const [text, mac] of [
      ['52:54:00:AA:bb:09', '52:54:00:aa:bb:09'],
      ['52-54-00-AA-BB-09', '52:54:00:aa:bb:09'],
      ['5254.00aa.bb09', '52:54:00:aa:bb:09'], // Cisco
      ['5254-00aa-bb09', '52:54:00:aa:bb:09'], // HPE Comware
      ['525400AABB09', '52:54:00:aa:bb:09'], // Windows DHCP audit log
      ['0:c:29:5b:2f:1', '00:0c:29:5b:2f:01'], // old ISC dhcpd print_hw_addr (%x)
      ['0:1a:2b:3c:4d:5e', '00:1a:2b:3c:4d:5e'],
    ]) expect(normalizeMac(text), text).toBe(mac);
  });

  it('refuses other groupings, mixed separators and other lengths', () => {
    for (const bad of [
      '1:aa:bb:cc:dd:ee:f', // 12 digits in 7 groups: regrouped it named another device
      'aab:bcc:dde:eff', '52:54:00:aa:bb', '52:54:00:aa:bb:09:01', '52:54:00-aa:bb:09', '5254.00aa.bb09.0000',
      '52.54.00.aa.bb.09', '5254:00aa:bb09', '525400aabb0', '525400aabb09a', '52:54:00:aa:bb:', ':52:54:00:aa:bb', '52::54:00:aa:bb:09',
      '52:54:00:aa:bb:0g', ' 52:54:00:aa:bb:09', '',
      '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:7b:e1', // 20-octet InfiniBand: no MAC
    ]) expect(normalizeMac(bad), bad).toBeUndefined();
  });
});

describe('through the decoder', () => {
  const one = async (fmt: string, line: string) => new LineDecoder(await loadRegistry(), fmt, 'UTC').decode(line, { receivedAt: RECEIVED, source: 'udp:514' });

  it('a lease to 10.20.1.73%<b>junk is no lease of 10.20.1.73', async () => {
    const r = await one('isc-dhcpd', '<30>Nov 23 11:59:59 gw dhcpd[1]: DHCPACK on 10.20.1.73%<b>junk to 52:54:00:aa:bb:cc via eth0');
    expect(r.sightings).toEqual([]);
  });

  it('an old dhcpd\'s one-digit groups give the MAC, seven groups give none', async () => {
    const r = await one('isc-dhcpd', '<30>Nov 23 11:59:59 gw dhcpd[1]: DHCPACK on 10.20.1.75 to 0:c:29:5b:2f:1 via eth0');
    expect(r.sightings.map((s) => [s.ip, s.mac])).toEqual([['10.20.1.75', '00:0c:29:5b:2f:01']]);
    const f = await one('isc-dhcpd', '<30>Nov 23 11:59:59 gw dhcpd[1]: DHCPACK on 10.20.1.76 to 1:aa:bb:cc:dd:ee:f via eth0');
    expect(f.sightings.map((s) => s.mac)).not.toContain('1a:ab:bc:cd:de:ef');
  });
});
