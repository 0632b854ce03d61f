import { parserSuite } from '../../test/helpers/parser-suite.js';
import { describe, expect, it } from 'vitest';
import { fallBackSuite, sightingAt } from '../../test/helpers/fall-back.js';
import plugin from './index.js';

parserSuite('globalprotect');

// PAN-OS writes its log times in the device's zone without an offset
fallBackSuite('globalprotect: the generated time in the fall-back hour', plugin, '<14>1,2026/11/01 01:10:00,012801000001,GLOBALPROTECT,0,2817,2026/11/01 01:10:00,vsys1,gateway-connected,tunnel,,SSL,corp\\bob,DE,BOB-PC,198.51.100.77,,10.31.0.8,,6f1e2d3c-aaaa-bbbb-cccc-0123456789ab,SN123456,6.2.1,Microsoft Windows,"Microsoft Windows 11 Pro , 64-bit",1,,,"",success,,0,on-demand,0,GP-GW-EXT,7000000000000001,0x8000000000000000');

describe('globalprotect: the High Res Timestamp (PAN-OS 10.0+) dates a line exactly', () => {
  // the documented column order: … Portal, Sequence Number, Action Flags, High Res Timestamp, …
  const line = (highRes: string) => `<14>1,2026/11/01 01:10:00,012801000001,GLOBALPROTECT,0,2817,2026/11/01 01:10:00,vsys1,gateway-connected,tunnel,,SSL,corp\\bob,DE,BOB-PC,198.51.100.77,,10.31.0.8,,6f1e2d3c-aaaa-bbbb-cccc-0123456789ab,SN123456,6.2.1,Microsoft Windows,"Microsoft Windows 11 Pro , 64-bit",1,,,"",success,,0,on-demand,0,GP-GW-EXT,7000000000000001,0x8000000000000000,${highRes},preferred,50,highest,,GP-GW-EXT`;
  it('the second 01:10 by its offset, read as a backlog days later; without an offset, or a placeholder, the generated time as before', () => {
    expect(sightingAt(plugin, line('2026-11-01T01:10:00.123-05:00'), '2026-11-04T00:00:00Z')).toBe('2026-11-01T06:10:00.123Z');
    expect(sightingAt(plugin, line('2026-11-01T01:10:00.123-04:00'), '2026-11-04T00:00:00Z')).toBe('2026-11-01T05:10:00.123Z');
    expect(sightingAt(plugin, line('2026-11-01T01:10:00.123'), '2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z');
    // (a placeholder some devices send: the generated time stands)
    expect(sightingAt(plugin, line('1970-01-01T00:00:00.000+00:00'), '2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z');
  });
});
