import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { parseSyslog } from '../../src/parsers/syslog-header.js';
import plugin from './index.js';

parserSuite('globalprotect');

describe('globalprotect: the generated time in the fall-back hour', () => {
  // PAN-OS writes its log times in the device's zone without an offset; New York repeats 01:00–01:59 on 2026-11-01
  const at = (received: string) => {
    const line = '<14>1,2026/11/01 01:10:00,012801000001,GLOBALPROTECT,0,2817,2026/11/01 01:10:00,vsys1,gateway-connected,tunnel,,SSL,corp\\bob,DE,BOB-PC,198.51.100.77,,10.31.0.8,,6f1e2d3c-aaaa-bbbb-cccc-0123456789ab,SN123456,6.2.1,Microsoft Windows,"Microsoft Windows 11 Pro , 64-bit",1,,,"",success,,0,on-demand,0,GP-GW-EXT,7000000000000001,0x8000000000000000';
    const receivedAt = new Date(received);
    return plugin.create().parse({ raw: line, syslog: parseSyslog(line, { receivedAt, zone: 'America/New_York' }), receivedAt, zone: 'America/New_York', source: 'test' })[0]?.at;
  };
  it('a line of the second 01:10 is read as the second; one read as it came in the first, or a backlog, as the first', () => {
    expect(at('2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z');
    expect(at('2026-11-01T05:10:01Z')).toBe('2026-11-01T05:10:00.000Z');
    expect(at('2026-11-04T00:00:00Z')).toBe('2026-11-01T05:10:00.000Z');
  });
});
