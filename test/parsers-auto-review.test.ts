/**
 * Review of 1a296ee (format auto, claim by content): real device lines it refused, an old ASA/FTD
 * gap, and the forged lines still claimed. Through the real registry and decoder, no mocks.
 */
import { describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { parseSyslog, unwrapInnerTag } from '../src/parsers/syslog-header.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');
const decoder = async (format = 'auto') => new LineDecoder(await loadRegistry(), format, 'UTC');
const got = async (line: string, format = 'auto') => {
  const r = (await decoder(format)).decode(line, { receivedAt: RECEIVED, source: 'udp:514' });
  return r.sightings.map((s) => [s.format, s.kind, s.ip]);
};
const POOL = (ip: string) => `bob/198.51.100.7:50123 MULTI_sva: pool returned IPv4=${ip}, IPv6=(Not enabled)`;
const KEA = (ip: string) =>
  `2026-11-23 11:59:59.123 INFO  [kea-dhcp4.leases/1.139] DHCP4_LEASE_ALLOC [hwtype=1 aa:bb:cc:dd:ee:01], cid=[no info], tid=0x1: lease ${ip} has been allocated for 3600 seconds`;

describe('real OpenVPN / Kea lines under auto (1a296ee refused them)', () => {
  it('OPNsense: tag openvpn_server1 (daemon openvpn_{role}{vpnid}), RFC 5424 with a pid: pool, Learn, SIGTERM', async () => {
    const h = '<29>1 2026-11-23T11:59:59+01:00 OPNsense.localdomain openvpn_server1 12345 - [meta sequenceId="42"]';
    expect(await got(`${h} ${POOL('10.8.1.6')}`)).toEqual([['openvpn', 'tunnel-up', '10.8.1.6']]);
    expect(await got(`${h} bob/198.51.100.7:50123 MULTI: Learn: 10.8.1.7 -> bob/198.51.100.7:50123`)).toEqual([['openvpn', 'tunnel-up', '10.8.1.7']]);
    const d = await decoder();
    const lines = [`${h} ${POOL('10.8.1.8')}`, `${h} bob/198.51.100.7:50123 SIGTERM[soft,remote-exit] received, client-instance exiting`];
    const out = lines.map((l) => d.decode(l, { receivedAt: RECEIVED, source: 'udp:514' }).sightings.map((s) => [s.kind, s.ip]));
    expect(out).toEqual([[['tunnel-up', '10.8.1.8']], [['tunnel-down', '10.8.1.8']]]);
  });
  it('openvpn --daemon openvpn_udp (BSD, with a pid)', async () => {
    expect(await got(`<30>Nov 23 11:59:59 vpnhost openvpn_udp[812]: ${POOL('10.8.1.11')}`)).toEqual([['openvpn', 'tunnel-up', '10.8.1.11']]);
  });
  it('Docker syslog driver (tag = container id, dockerd pid): OpenVPN and Kea', async () => {
    expect(await got(`<30>Nov 23 11:59:59 3f4e5a6b7c8d[812]: 2026-11-23 11:59:59 ${POOL('10.8.1.9')}`)).toEqual([['openvpn', 'tunnel-up', '10.8.1.9']]);
    expect(await got(`<30>Nov 23 11:59:59 dockerhost 3f4e5a6b7c8d[812]: ${KEA('10.30.0.5')}`)).toEqual([['kea-dhcp4', 'lease', '10.30.0.5']]);
  });
  it('an unknown tag with a pid: only the strict server line, never a known program or a phrase further in', async () => {
    for (const line of [
      `<38>Nov 23 11:59:59 bastion sshd[4242]: ${POOL('10.66.1.1')}`, // a known program: never by content
      `<38>Nov 23 11:59:59 web nginx[5]: ${KEA('10.66.1.2')}`,
      `<14>Nov 23 11:59:59 web app[5]: note ${POOL('10.66.1.3')}`, // not at the start (a common name with blanks)
      `<14>Nov 23 11:59:59 web app[5]: login failed for user a/1.2.3.4:1 MULTI_sva: pool returned IPv4=10.66.1.6, IPv6=(Not enabled)`,
      `<14>Nov 23 11:59:59 web app[5]: login failed for user a/1.2.3.4:1 MULTI: Learn: 10.66.1.7 -> login failed for user a/1.2.3.4:1`,
      `<14>Nov 23 11:59:59 web app[5]: ${POOL('10.66.1.4')} by x`, // more after the pool line
      `<14>Nov 23 11:59:59 web app[5]: note INFO [kea-dhcp4.x] DHCP4_LEASE_ALLOC [hwtype=1 aa:bb:cc:dd:ee:ff]: lease 10.66.1.5`,
    ]) expect({ line, got: await got(line) }).toEqual({ line, got: [] });
  });
});

describe('ASA / FTD: the marker the header reads as the tag', () => {
  for (const fmt of ['auto', 'cisco-asa']) {
    it(`${fmt}: relay / file form of ASA's default output (TIMESTAMP HOST %ASA-…)`, async () => {
      expect(await got('Nov 23 11:59:59 10.1.1.1 %ASA-4-722051: Group <g> User <u> IP <1.2.3.4> IPv4 Address <10.20.1.3> assigned to session', fmt))
        .toEqual([['cisco-asa', 'tunnel-up', '10.20.1.3']]);
    });
    it(`${fmt}: FTD <166>May 01 2026 09:24:32Z  %FTD-…`, async () => {
      expect(await got('<166>May 01 2026 09:24:32Z  %FTD-6-722051: Group <g> User <u> IP <1.2.3.4> IPv4 Address <10.20.1.6> assigned to session', fmt))
        .toEqual([['cisco-asa', 'tunnel-up', '10.20.1.6']]);
    });
  }
});

describe('forged lines still claimed in 1a296ee', () => {
  it('an inner tag is not unwrapped from a known program\'s line (nginx, sshd)', async () => {
    expect(await got('<14>Nov 23 12:00:00 web nginx[5]: dhcpd[1]: DHCPACK on 10.66.7.1 to aa:bb:cc:dd:ee:ff via eth0')).toEqual([]);
    expect(await got('<14>Nov 23 12:00:00 web sshd[5]: openvpn[1]: a/1.2.3.4:1 MULTI_sva: pool returned IPv4=10.66.7.2, IPv6=(Not enabled)')).toEqual([]);
    expect(await got('<14>Nov 23 12:00:00 web app[5]: dhcpd[1]: DHCPACK on 10.66.7.3 to aa:bb:cc:dd:ee:ff via eth0')).toEqual([]);
  });
  it('a relay\'s tag is still unwrapped (logger, logger with a pid); a made-up tag after a host name is no relay (third review: a web log shipped as `relay1 relay:` forged a lease)', async () => {
    expect(await got('<14>Nov 23 12:00:00 relay1 relay: dhcpd[1]: DHCPACK on 10.66.7.5 to aa:bb:cc:dd:ee:ff via eth0')).toEqual([]);
    for (const [line, ip] of [
      ['<14>Nov 23 12:00:00 relay1 logger: dhcpd[1]: DHCPACK on 10.20.7.1 to aa:bb:cc:dd:ee:ff via eth0', '10.20.7.1'],
      ['<14>Nov 23 12:00:00 relay1 logger[99]: dhcpd[1]: DHCPACK on 10.20.7.2 to aa:bb:cc:dd:ee:ff via eth0', '10.20.7.2'],
    ]) expect({ line, got: await got(line) }).toEqual({ line, got: [['isc-dhcpd', 'lease', ip]] });
    const m = unwrapInnerTag(parseSyslog('<14>Nov 23 12:00:00 web sudo: dhcpd[1]: DHCPACK on 10.66.7.4', { receivedAt: RECEIVED, zone: 'UTC' }));
    expect([m.appName, m.procId]).toEqual(['sudo', undefined]);
  });
  it('the Access Server wrapper only under its own service names (not php, gunicorn)', async () => {
    const w = (ip: string) => `[-] OVPN 1 OUT: 'a/1.2.3.4:1 MULTI_sva: pool returned IPv4=${ip}, IPv6=(Not enabled)'`;
    expect(await got(`<14>Nov 23 12:00:00 web php[5]: ${w('10.66.6.8')}`)).toEqual([]);
    expect(await got(`<14>Nov 23 12:00:00 web gunicorn: ${w('10.66.6.9')}`)).toEqual([]);
    expect(await got(`<14>Nov 23 12:00:00 vpnas openvpnas[77]: ${w('10.20.6.1')}`)).toEqual([['openvpn', 'tunnel-up', '10.20.6.1']]);
    expect(await got(`<14>Nov 23 12:00:00 vpnserver vpnserver: ${w('10.20.6.2')}`)).toEqual([['openvpn', 'tunnel-up', '10.20.6.2']]);
  });
});
