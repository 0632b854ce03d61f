import { describe, expect, it } from 'vitest';
import { parserSuite } from '../../test/helpers/parser-suite.js';
import { fallBackSuite, sightingAt } from '../../test/helpers/fall-back.js';
import plugin from './index.js';

parserSuite('fortigate');

// without tz= FortiOS's date and time are local time
fallBackSuite('fortigate: date= and time= without tz= in the fall-back hour', plugin, '<190>date=2026-11-01 time=01:10:00 logid="0101039947" type="event" subtype="vpn" level="information" vd="root" logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-tunnel" tunnelid=9 remip=2001:db8:77::5 tunnelip=10.212.134.202 user="lee" group="vpn-users" msg="SSL tunnel established"');

describe('fortigate: eventtime= tells the fall-back hour apart', () => {
  const at = (eventtime: string, received: string) =>
    sightingAt(plugin, `<190>date=2026-11-01 time=01:10:00 eventtime=${eventtime} logid="0101039947" type="event" subtype="vpn" level="information" vd="root" logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-tunnel" tunnelid=9 remip=2001:db8:77::5 tunnelip=10.212.134.202 user="lee" group="vpn-users" msg="SSL tunnel established"`, received);
  it('a line read as a backlog days later is dated by the reading its eventtime= (nanoseconds) points at', () => {
    expect(at(String(Date.parse('2026-11-01T06:10:00Z')) + '000000', '2026-11-04T00:00:00Z')).toBe('2026-11-01T06:10:00.000Z');
    expect(at(String(Date.parse('2026-11-01T05:10:00Z')) + '000000', '2026-11-04T00:00:00Z')).toBe('2026-11-01T05:10:00.000Z');
  });
});
