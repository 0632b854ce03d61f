/**
 * A tag inside a message (`logger 'dhcpd[1]: DHCPACK …'`) is trusted as the line's own, so it may
 * be read only under a relay's tag. An application's log shipped under its own tag, without a pid,
 * after a host name (rsyslog imfile `Tag=`, nginx `access_log syslog:…,tag=`, fluent-bit/vector
 * with an app name and no PROCID) is no relay: an access log behind a load balancer opens with
 * X-Forwarded-For, which the client writes, so `dhcpd[1]: DHCPACK on <any> to <any MAC>` there was
 * a lease the attacker chose (security review, HIGH). Each forged line is paired with relayed and
 * shipped lines that must still be claimed, and Kea under a Kubernetes app name (`kea`, no pid),
 * which was not claimed (LOW). Through the real decoder and, at the end, a real daemon.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { parseSyslog, unwrapInnerTag } from '../src/parsers/syslog-header.js';
import Database from '../src/store/sqlite.js';
import { DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { CLI } from './helpers/paths.js';
import { sleep } from './helpers/wait.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');
const got = async (line: string) => {
  const r = new LineDecoder(await loadRegistry(), 'auto', 'UTC').decode(line, { receivedAt: RECEIVED, source: 'udp:514' });
  return r.sightings.map((s) => [s.format, s.kind, s.ip]);
};

/** an Apache/nginx access log whose first field is X-Forwarded-For (`%{X-Forwarded-For}i %h …`): the client's header */
const access = (xff: string) => `${xff}, 203.0.113.5 172.31.0.10 - - [23/Nov/2026:11:59:59 +0000] "GET / HTTP/1.1" 200 45 "-" "curl/8"`;
const BSD = '<134>Nov 23 11:59:59 web1 web-access:'; // rsyslog imfile Tag="web-access", nginx tag=
const R5424 = '<134>1 2026-11-23T11:59:59Z node1 shop-frontend - - -'; // fluent-bit / vector: app name, no PROCID
const R5424_NOHOST = '<134>1 2026-11-23T11:59:59Z - shop-frontend - - -'; // and no host name either

const DHCPD = (ip: string, mac: string) => `dhcpd[1]: DHCPACK on ${ip} to ${mac} via eth0`;
const KEA = (ip: string, mac: string) =>
  `INFO  [kea-dhcp4.leases/1.139] DHCP4_LEASE_ALLOC [hwtype=1 ${mac}], cid=[no info], tid=0x1: lease ${ip} has been allocated for 3600 seconds`;
const DNSMASQ = (ip: string, mac: string) => `DHCPACK(eth0) ${ip} ${mac} laptop`;
const POOL = (ip: string) => `198.51.100.7:50123 MULTI_sva: pool returned IPv4=${ip}, IPv6=(Not enabled)`;

/** the reviewer's forged lines, one or more per format: none may give a sighting */
const FORGED: [format: string, line: string][] = [
  ['isc-dhcpd', `${BSD} ${access(DHCPD('10.66.6.6', 'de:ad:be:ef:00:01'))}`],
  ['isc-dhcpd', `${R5424} ${access(DHCPD('10.66.6.7', 'de:ad:be:ef:00:02'))}`],
  ['isc-dhcpd', `${R5424_NOHOST} ${access(DHCPD('10.66.6.12', 'de:ad:be:ef:00:06'))}`],
  ['isc-dhcpd', `<134>Nov 23 11:59:59 web1 www: ${access(DHCPD('10.66.6.13', 'de:ad:be:ef:00:07'))}`], // nginx access_log syslog:…,tag=www
  ['kea-dhcp4', `${BSD} kea-dhcp4[1]: ${access(KEA('10.66.6.8', 'de:ad:be:ef:00:03'))}`],
  ['kea-dhcp4', `${R5424} kea-dhcp4[1]: ${access(KEA('10.66.6.14', 'de:ad:be:ef:00:08'))}`],
  ['dnsmasq', `${BSD} dnsmasq-dhcp[1]: ${DNSMASQ('10.66.6.10', 'de:ad:be:ef:00:04')}, 203.0.113.5 - -`],
  ['dnsmasq', `${R5424} dnsmasq-dhcp[1]: ${DNSMASQ('10.66.6.11', 'de:ad:be:ef:00:05')}, 203.0.113.5 - -`],
  ['openvpn', `${BSD} openvpn[1]: mallory/${POOL('10.66.6.9')}`],
  ['openvpn', `${R5424} openvpn[1]: mallory/${POOL('10.66.6.15')}`],
  // the app's own name as the inner tag gave the line a pid, and Kea and OpenVPN claim a pid-tagged line by content (fourth review)
  ['kea-dhcp4', `${BSD} ${access(`web-access[1]: ${KEA('10.66.6.16', 'de:ad:be:ef:00:09')}`)}`],
  ['kea-dhcp4', `${BSD} ${access(`web-access-x[1]: ${KEA('10.66.6.17', 'de:ad:be:ef:00:0a')}`)}`],
  ['kea-dhcp4', `${R5424} ${access(`shop-frontend[1]: ${KEA('10.66.6.18', 'de:ad:be:ef:00:0b')}`)}`],
  ['kea-dhcp4', `<134>Nov 23 11:59:59 web1 httpd: ${access(`httpd-x[1]: ${KEA('10.66.6.19', 'de:ad:be:ef:00:0c')}`)}`], // Apache |logger -t httpd
  ['kea-dhcp4', `<134>Nov 23 11:59:59 web1 haproxy[812]: haproxy-x[1]: ${KEA('10.66.6.20', 'de:ad:be:ef:00:0d')}`],
  ['openvpn', `${BSD} web-access[1]: mallory/${POOL('10.66.6.21')}`],
  ['openvpn', `${R5424} shop-frontend-a[1]: mallory/${POOL('10.66.6.22')}`],
  // nginx `access_log syslog:…,nohostname,tag=web_access`: a BSD tag with no host name before it is no relay either (fifth review)
  ['isc-dhcpd', `<134>Nov 23 11:59:59 web_access: ${access(DHCPD('10.66.6.23', 'de:ad:be:ef:00:0e'))}`],
  ['isc-dhcpd', `<134>Nov 23 11:59:59 webaccess: ${access(DHCPD('10.66.6.24', 'de:ad:be:ef:00:0f'))}`],
  // a Docker container's tag and pid over an access log opening with Kea's line: Kea must end the message too (fifth review)
  ['kea-dhcp4', `<30>Nov 23 11:59:59 dockerhost 3f2a1b9c8d7e[812]: ${access(KEA('10.66.6.25', 'de:ad:be:ef:00:10'))}`],
  ['kea-dhcp4', `<30>Nov 23 11:59:59 web1 php-fpm[812]: ${access(KEA('10.66.6.26', 'de:ad:be:ef:00:11'))}`],
  // the app's own words after Kea's ending: an ending alone let these through (sixth review)
  ...[': session expired', ', 203.0.113.5 GET /api 200 completed in 0.004 seconds', ', 203.0.113.5 login failed from address 203.0.113.5', ' - user=alice token renewed']
    .map((tail, i): [string, string] => ['kea-dhcp4', `<30>Nov 23 11:59:59 dockerhost 3f2a1b9c8d7e[812]: ${KEA(`10.66.7.${i + 1}`, 'de:ad:be:ef:00:99')}${tail}`]),
];

describe('an application\'s tag without a pid, after a host name, is no relay', () => {
  for (const [format, line] of FORGED) {
    it(`${format}: ${line.slice(0, 70)}…`, async () => {
      expect(await got(line)).toEqual([]);
    });
  }
  it('its inner tag is not read (the header\'s own stays), under BSD and RFC 5424', () => {
    for (const line of [`${BSD} ${DHCPD('10.66.6.6', 'de:ad:be:ef:00:01')}`, `${R5424} ${DHCPD('10.66.6.7', 'de:ad:be:ef:00:02')}`]) {
      const m = unwrapInnerTag(parseSyslog(line, { receivedAt: RECEIVED, zone: 'UTC' }));
      expect({ line, tag: [m.appName, m.procId] }).toEqual({ line, tag: [line.includes('web-access') ? 'web-access' : 'shop-frontend', undefined] });
    }
  });
  it('the same text without the inner tag was, and stays, refused', async () => {
    expect(await got(`${BSD} DHCPACK on 10.66.6.11 to de:ad:be:ef:00:05 via eth0`)).toEqual([]);
    expect(await got(`${R5424} ${KEA('10.66.6.16', 'de:ad:be:ef:00:09')}`)).toEqual([]);
  });
});

describe('relayed and shipped lines still claimed', () => {
  const CLAIMED: [line: string, format: string, ip: string][] = [
    // util-linux logger as root, byte for byte (tag = the user's name; -i adds a pid); RFC 5424 and --rfc3164
    ['<13>1 2026-11-23T11:59:59.056364+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] dhcpd[1]: DHCPACK on 10.20.7.1 to 52:54:00:aa:bb:01 via eth0', 'isc-dhcpd', '10.20.7.1'],
    ['<13>Nov 23 11:59:59 vm root: dhcpd[1]: DHCPACK on 10.20.7.2 to 52:54:00:aa:bb:02 via eth0', 'isc-dhcpd', '10.20.7.2'],
    ['<13>1 2026-11-23T11:59:59.064067+00:00 vm root 2569 - [timeQuality tzKnown="1" isSynced="0"] dnsmasq-dhcp[7]: DHCPACK(eth0) 10.20.7.3 52:54:00:aa:bb:03 x', 'dnsmasq', '10.20.7.3'],
    ['<14>Nov 23 11:59:59 relay1 logger: kea-dhcp4[1]: ' + KEA('10.20.7.4', '52:54:00:aa:bb:04'), 'kea-dhcp4', '10.20.7.4'],
    ['<14>Nov 23 11:59:59 relay1 logger[99]: openvpn[1]: bob/' + POOL('10.20.7.5'), 'openvpn', '10.20.7.5'],
    // no tag at all (RFC 5424 NILVALUE APP-NAME), and a BSD tag that may be the device's host name (none before it, no pid)
    ['<14>1 2026-11-23T11:59:59Z gw - - - - dhcpd[1]: DHCPACK on 10.20.7.6 to 52:54:00:aa:bb:06 via eth0', 'isc-dhcpd', '10.20.7.6'],
    // rsyslog relays keep the original tag: traditional, RSYSLOG_ForwardFormat, RSYSLOG_SyslogProtocol23Format
    ['<30>Nov 23 11:59:59 gw dhcpd[812]: DHCPACK on 10.20.7.8 to 52:54:00:aa:bb:08 via eth0', 'isc-dhcpd', '10.20.7.8'],
    ['<30>2026-11-23T11:59:59.123456+00:00 gw dhcpd[812]: DHCPACK on 10.20.7.9 to 52:54:00:aa:bb:09 via eth0', 'isc-dhcpd', '10.20.7.9'],
    ['<30>1 2026-11-23T11:59:59.123456+00:00 gw dnsmasq-dhcp 812 - - DHCPACK(br-lan) 10.20.7.10 52:54:00:aa:bb:0a laptop', 'dnsmasq', '10.20.7.10'],
    // OPNsense (RFC 5424, pid, [meta])
    ['<29>1 2026-11-23T11:59:59+01:00 OPNsense.localdomain openvpn_server1 12345 - [meta sequenceId="42"] bob/' + POOL('10.20.7.11'), 'openvpn', '10.20.7.11'],
    ['<134>1 2026-11-23T11:59:59+00:00 fw.example.com kea-dhcp4 91064 - [meta sequenceId="17351"] ' + KEA('10.20.7.12', '52:54:00:aa:bb:0c'), 'kea-dhcp4', '10.20.7.12'],
    // Docker's syslog driver: the container id with dockerd's pid
    ['<30>Nov 23 11:59:59 dockerhost 3f4e5a6b7c8d[812]: ' + KEA('10.20.7.13', '52:54:00:aa:bb:0d'), 'kea-dhcp4', '10.20.7.13'],
    // Kubernetes/Docker shippers (fluent-bit, vector): the container's name, no PROCID
    ['<30>1 2026-11-23T11:59:59Z node1 dhcpd - - - DHCPACK on 10.20.7.14 to 52:54:00:aa:bb:0e via eth0', 'isc-dhcpd', '10.20.7.14'], // dhcpd -d
    ['<30>1 2026-11-23T11:59:59Z node1 dnsmasq - - - dnsmasq-dhcp[1]: DHCPACK(eth0) 10.20.7.15 52:54:00:aa:bb:0f laptop', 'dnsmasq', '10.20.7.15'], // dnsmasq -k --log-facility=- (no stamp, its own tag; log.c)
    ['<30>1 2026-11-23T11:59:59Z node1 openvpn - - - bob/' + POOL('10.20.7.16'), 'openvpn', '10.20.7.16'],
  ];
  for (const [line, format, ip] of CLAIMED) {
    it(`${format}: ${line.slice(0, 80)}…`, async () => {
      expect(await got(line)).toEqual([[format, expect.any(String), ip]]);
    });
  }
});

describe('a host name read as a tag before the program\'s (`gw1: dhcpd[1]: …`)', () => {
  const line = '<14>Nov 23 11:59:59 gw1: dhcpd[1]: DHCPACK on 10.20.7.7 to 52:54:00:aa:bb:07 via eth0';
  it('is not read under auto (nginx\'s nohostname tag= access log has its shape), and is under the input\'s fixed format (the operator\'s word)', async () => {
    expect(await got(line)).toEqual([]);
    const r = new LineDecoder(await loadRegistry(), 'isc-dhcpd', 'UTC').decode(line, { receivedAt: RECEIVED, source: 'udp:514' });
    expect(r.sightings.map((s) => [s.format, s.kind, s.ip, s.mac])).toEqual([['isc-dhcpd', 'lease', '10.20.7.7', '52:54:00:aa:bb:07']]);
  });
});

describe('Kea under a Docker container\'s tag and pid: its sentence alone is claimed', () => {
  it('a lease, a release, and an IPv6 lease, each Kea\'s whole sentence', async () => {
    const tag = '<30>Nov 23 11:59:59 dockerhost 3f2a1b9c8d7e[812]:';
    const label = '[hwtype=1 52:54:00:aa:bb:21], cid=[no info], tid=0x1';
    expect(await got(`${tag} INFO  [kea-dhcp4.leases/1.139] DHCP4_LEASE_ALLOC ${label}: lease 10.20.8.1 has been allocated for 3600 seconds`)).toEqual([['kea-dhcp4', 'lease', '10.20.8.1']]);
    expect(await got(`${tag} INFO  [kea-dhcp4.leases/1.139] DHCP4_RELEASE ${label}: address 10.20.8.2 was released properly.`)).toEqual([['kea-dhcp4', 'release', '10.20.8.2']]);
  });
});

describe('Kea under a Kubernetes app name (kea, no pid)', () => {
  it('its own stamp, severity and [kea-dhcp4. opening the message: claimed', async () => {
    expect(await got(`<30>1 2026-11-23T11:59:59Z node1 kea - - - 2026-11-23 11:59:59.123 ${KEA('10.30.0.6', 'aa:bb:cc:dd:ee:01')}`)).toEqual([['kea-dhcp4', 'lease', '10.30.0.6']]);
    expect(await got(`<30>Nov 23 11:59:59 node1 kea: ${KEA('10.30.0.7', 'aa:bb:cc:dd:ee:02')}`)).toEqual([['kea-dhcp4', 'lease', '10.30.0.7']]);
  });
  it('a mark further into its message, or the same line under another app\'s name: not claimed', async () => {
    expect(await got(`<30>1 2026-11-23T11:59:59Z node1 kea - - - note ${KEA('10.66.0.6', 'aa:bb:cc:dd:ee:03')}`)).toEqual([]);
    expect(await got(`<30>1 2026-11-23T11:59:59Z node1 kea-frontend - - - 2026-11-23 11:59:59.123 ${KEA('10.66.0.8', 'aa:bb:cc:dd:ee:05')}`)).toEqual([]);
  });
});

describe('the real daemon (UDP syslog on loopback, dry-run scanner)', () => {
  let d: DaemonProcess | undefined;
  afterAll(async () => {
    await d?.stop();
  });

  it('the forged access-log line makes no sighting, binding or scan; a relayed line sent after it does', async () => {
    const port = await freePort();
    d = await startDaemon(`${udpDaemonHead(port)}regions: [{ name: lab, cidrs: ["10.66.0.0/16"], appliances: [lab-sa-1] }]\nscanner: { type: dry-run, scanDurationS: 1 }\nhttp: { enabled: false }\n`);
    const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    const now = new Date();
    const stamp = `${MON[now.getUTCMonth()]} ${String(now.getUTCDate()).padStart(2, ' ')} ${now.toISOString().slice(11, 19)}`;
    await udpSend(port, `<134>${stamp} web1 web-access: ${access(DHCPD('10.66.6.6', 'de:ad:be:ef:00:01'))}`);
    await udpSend(port, `<134>1 ${now.toISOString()} node1 shop-frontend - - - ${access(DHCPD('10.66.6.7', 'de:ad:be:ef:00:02'))}`);
    // the same lease relayed by logger (as root): claimed, and the barrier the forged lines came before
    await udpSend(port, `<13>${stamp} relay1 root: ${DHCPD('10.66.7.7', '52:54:00:aa:bb:77')}`);
    await d.waitFor((e) => (e as { sighting?: { ip?: string } }).sighting?.ip === '10.66.7.7');
    await d.waitFor((e) => !!(e as { launch?: { targets?: { ip: string }[] } }).launch?.targets?.some((t) => t.ip === '10.66.7.7'), 15_000);
    await sleep(300);
    const logged = JSON.stringify(d.logs);
    expect(logged).not.toContain('10.66.6.6');
    expect(logged).not.toContain('10.66.6.7');
    const cfg = join(d.dir, 'onsight.yaml');
    expect(await d.stop('SIGTERM')).toBe(0);
    const db = new Database(join(d.dir, 'state.db'), { readonly: true });
    const ips = (db.prepare('SELECT ip FROM bindings').all() as { ip: string }[]).map((r) => r.ip);
    db.close();
    expect(ips).toEqual(['10.66.7.7']);
    const scans = JSON.parse(execFileSync(process.execPath, [CLI, 'scans', '--json', '--config', cfg], { encoding: 'utf8' })) as { targets: string[] }[];
    expect(scans.flatMap((s) => s.targets)).toEqual(['10.66.7.7']);
  }, 90_000);
});
