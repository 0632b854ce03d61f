/**
 * `--since`/`--until` style times on the command line (cli/target.ts parseWhen): durations from now,
 * and dates, UTC unless they name a zone, whatever the machine's time zone (a time without a zone
 * was read as local time while a date alone was UTC).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseWhen } from '../src/cli/target.js';
import { REPO } from './helpers/paths.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

describe('parseWhen', () => {
  it('durations, and dates in UTC unless they name a zone', () => {
    expect(parseWhen('2h', NOW, '--since', -1)).toBe(NOW - 7_200_000);
    expect(parseWhen('7d', NOW, '--until', 1)).toBe(NOW + 7 * 86_400_000);
    expect(parseWhen('2026-12-01', NOW, '--since', -1)).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(parseWhen('2026-12-01T08:00', NOW, '--since', -1)).toBe(Date.parse('2026-12-01T08:00:00Z'));
    expect(parseWhen('2026-12-01T08:00:30.5', NOW, '--since', -1)).toBe(Date.parse('2026-12-01T08:00:30.500Z'));
    expect(parseWhen('2026-12-01T08:00+01:00', NOW, '--since', -1)).toBe(Date.parse('2026-12-01T07:00:00Z'));
    expect(() => parseWhen('yesterday', NOW, '--since', -1)).toThrow(/--since: expected a duration/);
    // strictly: junk after a date (Date.parse read "2026-12-01 junk" as June), a day no calendar has, a bare number, a start in the future, a duration past any date
    expect(parseWhen('2026-11-01 08:00', NOW, '--since', -1)).toBe(Date.parse('2026-11-01T08:00:00Z'));
    expect(() => parseWhen('2026-11-01 junk', NOW, '--since', -1)).toThrow(/--since: expected a duration/);
    expect(() => parseWhen('2026-02-30', NOW, '--since', -1)).toThrow(/--since: expected a duration/);
    expect(() => parseWhen('7', NOW, '--since', -1)).toThrow(/--since: "7" has no unit/);
    expect(() => parseWhen('2099-01-01', NOW, '--since', -1)).toThrow(/--since: 2099-01-01 is in the future/);
    expect(() => parseWhen('99999999999999d', NOW, '--since', -1)).toThrow(/--since: 99999999999999d is further than any date/);
  });

  it('the same under another machine time zone', () => {
    const code = `import('${REPO}/dist/src/cli/target.js').then((m) => console.log(m.parseWhen('2026-12-01T08:00', Date.parse('2027-01-01T00:00:00Z'), '--since', -1)))`;
    const out = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, TZ: 'Europe/Berlin' }, encoding: 'utf8' });
    expect(out.stdout.trim()).toBe(String(Date.parse('2026-12-01T08:00:00Z')));
  });
});

describe('parseTarget', () => {
  it('addresses, MACs in any common form, identity keys as onsight prints them, user names of digits; IP-shaped strings that are no address are refused', async () => {
    const { parseTarget } = await import('../src/cli/target.js');
    expect(parseTarget('10.1.2.3')).toEqual({ kind: 'ip', value: '10.1.2.3' });
    expect(parseTarget('5254.00AA.bb09')).toEqual({ kind: 'mac', value: '52:54:00:aa:bb:09' });
    expect(parseTarget('mac:52-54-00-aa-bb-09')).toEqual({ kind: 'mac', value: '52:54:00:aa:bb:09' });
    expect(parseTarget('duid:00:01:00:01:AB')).toEqual({ kind: 'key', value: 'duid:00:01:00:01:ab' });
    expect(parseTarget('user:Bob|Laptop')).toEqual({ kind: 'key', value: 'user:bob|laptop' });
    expect(parseTarget('user:bob')).toEqual({ kind: 'user', value: 'bob' }); // every host's sessions
    // an employee number is a user name (the first cut refused it as "not an IP address")
    expect(parseTarget('20231234')).toEqual({ kind: 'user', value: '20231234' });
    expect(parseTarget('j.smith')).toEqual({ kind: 'user', value: 'j.smith' });
    for (const bad of ['10.1.2.999', '10.1.2.0/24', '10.1/16', 'fd00::1::2', 'fd00::1/64']) expect(() => parseTarget(bad), bad).toThrow(/is not an IP address/);
  });
});
