import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { sightingAt } from '../../test/helpers/fall-back.js';
import plugin from './index.js';

parserSuite('windows-dhcp', ['windows-dhcp', 'windows-dhcpv6']);

describe('windows-dhcp: local times of the fall-back hour', () => {
  // the audit log writes local time without an offset
  const at = (line: string, received: string) => sightingAt(plugin, line, received);
  it('a line of the repeated hour is read by when it came; a backlog keeps the first reading', () => {
    const line = '10,11/01/26,01:10:00,Assign,10.20.1.5,laptop-5.corp,525400AABB05,,0,6,,,,0x00,,,,,0';
    expect(at(line, '2026-11-01T05:10:01Z')).toBe('2026-11-01T05:10:00.000Z');
    expect(at(line, '2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z');
    expect(at(line, '2026-11-05T00:00:00Z')).toBe('2026-11-01T05:10:00.000Z');
  });
});
