/**
 * Under an unknown program's tag and pid (Docker's syslog driver: the container id and dockerd's
 * pid) a Kea line is claimed only when the text after its client label is Kea's catalogue sentence
 * for its message ID, word for word, numbers only where Kea prints them. Any word set let an app's
 * tail through: `…: lease 10.66.6.1 203.0.113.5 200 512` (an access log's fields), `…: lease … has
 * expired`, `DHCP4_RELEASE …: address … was deleted` made sightings (review 47, finding B).
 * Through the real decoder and registry, under `auto`.
 */
import { describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');
const got = async (line: string) => {
  const r = new LineDecoder(await loadRegistry(), 'auto', 'UTC').decode(line, { receivedAt: RECEIVED, source: 'udp:514' });
  return r.sightings.map((s) => [s.format, s.kind, s.ip]);
};

const DOCKER = '<30>Nov 23 11:59:59 host1 3f4e5a6b7c8d[812]:';
const V4 = '[hwtype=1 aa:bb:cc:dd:ee:01], cid=[no info], tid=0x1';
const V6 = 'duid=[00:03:00:01:aa:bb:cc:dd:ee:01], [hwtype=1 aa:bb:cc:dd:ee:01], tid=0x1';
const line = (tag: string, id: string, label: string, text: string) => `${tag} 2026-11-23 11:59:59.123 INFO  [kea-dhcp4.leases/1.139] ${id} ${label}: ${text}`;

/** Kea 2.x's sentences (dhcp4/dhcp6/alloc-engine message catalogues) and the sighting each makes */
const GENUINE: [id: string, label: string, text: string, kind: string, ip: string][] = [
  ['DHCP4_LEASE_ALLOC', V4, 'lease 10.30.0.6 has been allocated for 3600 seconds', 'lease', '10.30.0.6'],
  ['DHCP4_LEASE_REUSE', V4, 'lease 10.30.0.7 has been reused for 3300 seconds', 'renew', '10.30.0.7'],
  ['DHCP4_RELEASE', V4, 'address 10.30.0.8 was released properly.', 'release', '10.30.0.8'],
  ['DHCP4_RELEASE_EXPIRED', V4, 'address 10.30.0.9 expired on release', 'release', '10.30.0.9'],
  ['DHCP4_RELEASE_DELETED', V4, 'address 10.30.0.10 was deleted on release', 'release', '10.30.0.10'],
  ['ALLOC_ENGINE_V4_LEASE_RECLAIM', '[hwtype=1 aa:bb:cc:dd:ee:01], cid=[no info]', 'reclaiming expired lease for address 10.30.0.11', 'expire', '10.30.0.11'],
  ['DHCP6_LEASE_ALLOC', V6, 'lease for address 2001:db8::6 and iaid=5 has been allocated for 3600 seconds', 'lease', '2001:db8::6'],
  ['DHCP6_LEASE_RENEW', V6, 'lease for address 2001:db8::7 and iaid=5 has been allocated', 'renew', '2001:db8::7'],
  ['DHCP6_LEASE_REUSE', V6, 'lease for address 2001:db8::8 and iaid=5 has been reused for 3000 seconds', 'renew', '2001:db8::8'],
  ['DHCP6_RELEASE_NA', V6, 'binding for address 2001:db8::9 and iaid=5 was released properly', 'release', '2001:db8::9'],
];

describe('Kea\'s own sentences under a Docker tag and pid', () => {
  it('each is claimed, with and without a closing full stop', async () => {
    for (const [id, label, text, kind, ip] of GENUINE) {
      const bare = text.endsWith('.') ? text.slice(0, -1) : text;
      for (const t of [bare, `${bare}.`]) expect(await got(line(DOCKER, id, label, t)), `${id}: ${t}`).toEqual([['kea-dhcp4', kind, ip]]);
    }
  });
  it('and under Kea\'s own tag', async () => {
    for (const [id, label, text, kind, ip] of GENUINE) {
      expect(await got(line('<30>Nov 23 11:59:59 gw kea-dhcp4[812]:', id, label, text)), id).toEqual([['kea-dhcp4', kind, ip]]);
    }
  });
});

describe('an app\'s tail after a Kea-looking opening, under a Docker tag and pid', () => {
  const F = (id: string, text: string) => `${DOCKER} INFO [kea-dhcp4.leases/1.2] ${id} [hwtype=1 de:ad:be:ef:00:01], cid=[no info], tid=0x1: ${text}`;
  it('the reviewer\'s lines make no sighting', async () => {
    expect(await got(F('DHCP4_LEASE_ALLOC', 'lease 10.66.6.1 203.0.113.5 200 512'))).toEqual([]);
    expect(await got(F('DHCP4_LEASE_ALLOC', 'lease 10.66.6.2 has expired'))).toEqual([]);
    expect(await got(F('DHCP4_RELEASE', 'address 10.66.6.3 was deleted'))).toEqual([]);
  });
  it('nor Kea\'s words out of their sentence, another ID\'s sentence, the other family, or a sentence with more after it', async () => {
    expect(await got(F('DHCP4_LEASE_ALLOC', 'lease 10.66.6.4 has been allocated for 200 seconds 512'))).toEqual([]);
    expect(await got(F('DHCP4_LEASE_ALLOC', 'lease 10.66.6.5 has been allocated for 0.004 seconds'))).toEqual([]);
    expect(await got(F('DHCP4_RELEASE', 'lease 10.66.6.6 has been allocated for 3600 seconds'))).toEqual([]);
    expect(await got(F('DHCP4_LEASE_ALLOC', 'lease 2001:db8::66 has been allocated for 3600 seconds'))).toEqual([]);
    expect(await got(F('DHCP4_RELEASE', 'address 10.66.6.7 released properly'))).toEqual([]);
    expect(await got(F('DHCP4_RELEASE', 'address 10.66.6.8 was released properly. 200'))).toEqual([]);
    expect(await got(F('DHCP6_LEASE_ALLOC', 'lease for address 2001:db8::67 and iaid=x has been allocated'))).toEqual([]);
    expect(await got(F('DHCP6_RELEASE_NA', 'binding for address 2001:db8::68 was released properly'))).toEqual([]);
  });
});
