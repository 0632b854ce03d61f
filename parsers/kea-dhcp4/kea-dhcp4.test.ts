import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { loadRegistry } from '../../src/parsers/registry.js';
import { LineDecoder } from '../../src/parsers/decoder.js';
import { fallBackSuite } from '../../test/helpers/fall-back.js';
import plugin from './index.js';

parserSuite('kea-dhcp4');

describe('kea-dhcp4 event time', () => {
  it("Kea's own full stamp (milliseconds) wins over a year-less syslog header", async () => {
    const d = new LineDecoder(await loadRegistry(), 'auto', 'Europe/Berlin');
    const line = '<30>Nov 23 13:06:00 dhcp-srv kea-dhcp4: 2026-11-23 13:04:59.871 INFO  [kea-dhcp4.leases/812.1] DHCP4_LEASE_ALLOC ' +
      '[hwtype=1 52:54:00:d5:20:07], cid=[no info], tid=0x1: lease 10.213.0.107 has been allocated for 3600 seconds';
    const r = d.decode(line, { receivedAt: new Date('2026-11-23T12:06:01Z'), source: 'test' });
    expect(r.format).toBe('kea-dhcp4');
    expect(r.sightings.map((s) => s.at)).toEqual(['2026-11-23T12:04:59.871Z']);
  });
});

// Kea's log writes local time without an offset
fallBackSuite('kea-dhcp4: its own local stamp in the fall-back hour', plugin, '2026-11-01 01:10:00.239 INFO  [kea-dhcp4.leases/8191.140485064798720] DHCP4_LEASE_ALLOC [hwtype=1 52:54:00:d5:20:03], cid=[no info], tid=0x6d7de4a: lease 10.213.0.23 has been allocated for 3600 seconds', '.239');
