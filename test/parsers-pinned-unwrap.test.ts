/**
 * An input with a fixed format reads a message's inner tag under a BSD tag with no pid and no host
 * name before it (`gw1: dhcpd[1]: …`, the device's host name read as a tag), and under a relay's
 * tag as `auto` does. Not under any other program's tag: a router's whole syslog is sent to a
 * `format: dnsmasq` input, and `nginx[5]: dnsmasq-dhcp[1]: DHCPACK …` there is nginx's access log
 * whose first field a client writes; dnsmasq's own tag test refused it until the fixed-format
 * unwrap handed it dnsmasq's tag (review 47, finding A). Through the real decoder and a real daemon
 * with a `format: dnsmasq` UDP input.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import Database from '../src/store/sqlite.js';
import { DaemonProcess, freePort, startDaemon } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { sleep } from './helpers/wait.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');
const got = async (format: string, line: string) => {
  const r = new LineDecoder(await loadRegistry(), format, 'UTC').decode(line, { receivedAt: RECEIVED, source: 'udp:514' });
  return r.sightings.map((s) => [s.format, s.kind, s.ip, s.mac]);
};
const DNSMASQ = (ip: string, mac: string) => `DHCPACK(eth0) ${ip} ${mac} laptop`;
const DHCPD = (ip: string, mac: string) => `DHCPACK on ${ip} to ${mac} via eth0`;

describe('format: dnsmasq, another program\'s line carrying dnsmasq\'s tag inside', () => {
  it('under a tag with a pid (nginx[5]:), with or without a host name: no sighting', async () => {
    expect(await got('dnsmasq', `<134>Nov 23 11:59:59 web1 nginx[5]: dnsmasq-dhcp[1]: ${DNSMASQ('10.66.1.2', 'de:ad:be:ef:01:02')}`)).toEqual([]);
    expect(await got('dnsmasq', `<134>Nov 23 11:59:59 nginx[5]: dnsmasq-dhcp[1]: ${DNSMASQ('10.66.1.3', 'de:ad:be:ef:01:03')}`)).toEqual([]);
    expect(await got('dnsmasq', `<134>1 2026-11-23T11:59:59Z web1 nginx 5 - - dnsmasq-dhcp[1]: ${DNSMASQ('10.66.1.4', 'de:ad:be:ef:01:04')}`)).toEqual([]);
  });
  it('under a tag with no pid after a host name (rsyslog imfile Tag=, RFC 5424 app name): no sighting', async () => {
    expect(await got('dnsmasq', `<134>Nov 23 11:59:59 web1 web-access: dnsmasq-dhcp[1]: ${DNSMASQ('10.66.1.5', 'de:ad:be:ef:01:05')}`)).toEqual([]);
    expect(await got('dnsmasq', `<134>1 2026-11-23T11:59:59Z node1 shop-frontend - - - dnsmasq-dhcp[1]: ${DNSMASQ('10.66.1.6', 'de:ad:be:ef:01:06')}`)).toEqual([]);
  });
  it('dnsmasq\'s own lines, a relay\'s and a host name read as a tag are still read', async () => {
    expect(await got('dnsmasq', `<30>Nov 23 11:59:59 gw dnsmasq-dhcp[1]: ${DNSMASQ('10.20.1.1', '52:54:00:aa:01:01')}`)).toEqual([['dnsmasq', 'lease', '10.20.1.1', '52:54:00:aa:01:01']]);
    expect(await got('dnsmasq', `<13>Nov 23 11:59:59 vm root: dnsmasq-dhcp[7]: ${DNSMASQ('10.20.1.2', '52:54:00:aa:01:02')}`)).toEqual([['dnsmasq', 'lease', '10.20.1.2', '52:54:00:aa:01:02']]);
    expect(await got('dnsmasq', `<30>Nov 23 11:59:59 gw1: dnsmasq-dhcp[1]: ${DNSMASQ('10.20.1.3', '52:54:00:aa:01:03')}`)).toEqual([['dnsmasq', 'lease', '10.20.1.3', '52:54:00:aa:01:03']]);
    expect(await got('isc-dhcpd', `<14>Nov 23 11:59:59 gw1: dhcpd[1]: ${DHCPD('10.20.1.4', '52:54:00:aa:01:04')}`)).toEqual([['isc-dhcpd', 'lease', '10.20.1.4', '52:54:00:aa:01:04']]);
  });
  it('under auto the host-name-as-tag shape is still not read (nginx nohostname,tag= sends it)', async () => {
    expect(await got('auto', `<30>Nov 23 11:59:59 gw1: dnsmasq-dhcp[1]: ${DNSMASQ('10.66.1.7', 'de:ad:be:ef:01:07')}`)).toEqual([]);
  });
});

describe('the real daemon, a format: dnsmasq UDP input on loopback', () => {
  let d: DaemonProcess | undefined;
  afterAll(async () => {
    await d?.stop();
  });

  it('the nginx line makes no binding; dnsmasq\'s own line sent after it does', async () => {
    const port = await freePort();
    d = await startDaemon(`state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: dnsmasq }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"] }
regions: [{ name: lab, cidrs: ["10.66.0.0/16"], appliances: [lab-sa-1] }]
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
`);
    const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const now = new Date();
    const stamp = `${MON[now.getUTCMonth()]} ${String(now.getUTCDate()).padStart(2, ' ')} ${now.toISOString().slice(11, 19)}`;
    await udpSend(port, `<134>${stamp} web1 nginx[5]: dnsmasq-dhcp[1]: ${DNSMASQ('10.66.6.6', 'de:ad:be:ef:00:01')}`);
    await udpSend(port, `<30>${stamp} gw dnsmasq-dhcp[812]: ${DNSMASQ('10.66.7.7', '52:54:00:aa:bb:77')}`);
    await d.waitFor((e) => (e as { sighting?: { ip?: string } }).sighting?.ip === '10.66.7.7');
    await sleep(300);
    expect(JSON.stringify(d.logs)).not.toContain('10.66.6.6');
    expect(await d.stop('SIGTERM')).toBe(0);
    const db = new Database(join(d.dir, 'state.db'), { readonly: true });
    const ips = (db.prepare('SELECT ip FROM bindings').all() as { ip: string }[]).map((r) => r.ip);
    db.close();
    expect(ips).toEqual(['10.66.7.7']);
  }, 90_000);
});
