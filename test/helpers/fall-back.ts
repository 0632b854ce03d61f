/**
 * The DST fall-back hour for parser tests: New York repeats 01:00–01:59 on 2026-11-01 (first
 * reading 05:xx Z, EDT; second 06:xx Z, EST). A parser reads an offset-less local stamp of that
 * hour by when the line came (src/util/time.ts wallToUtc).
 */
import { describe, expect, it } from 'vitest';
import { parseSyslog } from '../../src/parsers/syslog-header.js';
import type { ParserPlugin } from '../../src/parsers/plugin.js';

export const FALL_BACK_ZONE = 'America/New_York';

/** The time the plugin's first sighting of `line` carries, had the line come at `received`. */
export function sightingAt(plugin: ParserPlugin, line: string, received: string, zone = FALL_BACK_ZONE): string | undefined {
  const receivedAt = new Date(received);
  return plugin.create().parse({ raw: line, syslog: parseSyslog(line, { receivedAt, zone }), receivedAt, zone, source: 'test' })[0]?.at;
}

/**
 * The three readings a line stamped 01:10:00`fraction` local on 2026-11-01 must get: read as the
 * second when it came just after the second 01:10; as the first when it came just after the first,
 * or as a backlog days later.
 */
export function fallBackSuite(what: string, plugin: ParserPlugin, line: string, fraction = '.000'): void {
  describe(what, () => {
    it('a line of the second 01:10 is read as the second; one read as it came in the first, or a backlog, as the first', () => {
      expect(sightingAt(plugin, line, '2026-11-01T06:10:01Z')).toBe(`2026-11-01T06:10:00${fraction}Z`);
      expect(sightingAt(plugin, line, '2026-11-01T05:10:01Z')).toBe(`2026-11-01T05:10:00${fraction}Z`);
      expect(sightingAt(plugin, line, '2026-11-04T00:00:00Z')).toBe(`2026-11-01T05:10:00${fraction}Z`);
    });
  });
}
