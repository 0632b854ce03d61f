import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { parseSyslog } from '../../src/parsers/syslog-header.js';
import plugin from './index.js';

parserSuite('cisco-asa');

describe('cisco-asa: an offset-less ISO stamp before the marker in the fall-back hour', () => {
  // the header parser finds no time in `<166>STAMP: %ASA-...`, so the parser reads the stamp itself, as local time; New York repeats 01:00–01:59 on 2026-11-01
  const at = (received: string) => {
    const line = '<166>2026-11-01T01:10:00: %ASA-6-737026: IPAA: Session=0x00b1, Client assigned 10.50.0.40 from local pool RA-POOL';
    const receivedAt = new Date(received);
    return plugin.create().parse({ raw: line, syslog: parseSyslog(line, { receivedAt, zone: 'America/New_York' }), receivedAt, zone: 'America/New_York', source: 'test' })[0]?.at;
  };
  it('a line of the second 01:10 is read as the second; one read as it came in the first, or a backlog, as the first', () => {
    expect(at('2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z');
    expect(at('2026-11-01T05:10:01Z')).toBe('2026-11-01T05:10:00.000Z');
    expect(at('2026-11-04T00:00:00Z')).toBe('2026-11-01T05:10:00.000Z');
  });
});
