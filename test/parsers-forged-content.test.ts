/**
 * Lines of other programs that carry a vendor's marker (text a remote party chose: the user name an
 * SSH client tried) must not become VPN/DHCP sightings under `format: auto`; nor may text an OpenVPN
 * line quotes. Each forged line is paired with the same content as the device really sends it,
 * which must still make its sighting. Through the real decoder and, at the end, a real daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineDecoder } from '../src/parsers/decoder.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';

const RECEIVED = new Date('2026-11-23T12:00:00Z');
const decoder = async (format = 'auto') => new LineDecoder(await loadRegistry(), format, 'UTC');
const decode = (d: LineDecoder, line: string) => d.decode(line, { receivedAt: RECEIVED, source: 'udp:514' });

/** what OpenSSH logs for a login with an unknown user name: the name is the client's, up to 100 characters */
const sshdMsg = (user: string) => `Invalid user ${user} from 203.0.113.66 port 51234`;

interface Case {
  format: string;
  /** the vendor's message, as a client could choose it for a user name (≤ 100 characters) */
  payload: string;
  /** the same content as the device sends it */
  genuine: string;
  /** the server's whole message, where it is longer than a user name may be (claimed under a container's tag and pid) */
  whole?: string;
  ip: string;
}

const CASES: Case[] = [
  {
    format: 'cisco-asa',
    payload: '%ASA-4-722051: Group <g> User <u> IP <1.2.3.4> IPv4 Address <10.20.1.67> assigned to session',
    genuine: '<166>Nov 23 2026 11:59:59 asa1 : %ASA-4-722051: Group <g> User <u> IP <1.2.3.4> IPv4 Address <10.20.1.67> assigned to session',
    ip: '10.20.1.67',
  },
  {
    format: 'fortigate',
    payload: 'date=2026-11-23 logid=0101039947 type=event subtype=vpn action=tunnel-up tunnelip=10.20.1.66',
    genuine: '<190>date=2026-11-23 time=11:59:59 logid=0101039947 type=event subtype=vpn action=tunnel-up tunnelip=10.20.1.66',
    ip: '10.20.1.66',
  },
  {
    format: 'globalprotect',
    payload: 'eventid=gateway-connected private_ip=10.20.1.68',
    genuine: '<14>Nov 23 11:59:59 PA-3220 eventid=gateway-connected private_ip=10.20.1.68',
    ip: '10.20.1.68',
  },
  {
    format: 'openvpn',
    payload: 'x/1.2.3.4:1 MULTI_sva: pool returned IPv4=10.20.1.69, IPv6=(Not enabled)',
    genuine: '2026-11-23 11:59:59 x/1.2.3.4:1 MULTI_sva: pool returned IPv4=10.20.1.69, IPv6=(Not enabled)',
    ip: '10.20.1.69',
  },
  {
    format: 'kea-dhcp4',
    payload: 'INFO [kea-dhcp4.x] DHCP4_LEASE_ALLOC [hwtype=1 aa:bb:cc:dd:ee:ff]: lease 10.20.1.70',
    genuine: '2026-11-23 11:59:59.000 INFO [kea-dhcp4.x] DHCP4_LEASE_ALLOC [hwtype=1 aa:bb:cc:dd:ee:ff]: lease 10.20.1.70',
    // (under an unknown program's tag Kea's line must also end as its lease messages do: fifth review)
    whole: 'INFO  [kea-dhcp4.leases/1.139] DHCP4_LEASE_ALLOC [hwtype=1 aa:bb:cc:dd:ee:ff], cid=[no info], tid=0x1: lease 10.20.1.70 has been allocated for 3600 seconds',
    ip: '10.20.1.70',
  },
];

/** formats whose own line is exact enough to be claimed under an unknown tag with a pid */
const STRICT_LINE = new Set(['openvpn', 'kea-dhcp4']);

describe('auto: a vendor marker in another program\'s line is not claimed', () => {
  for (const c of CASES) {
    describe(c.format, () => {
      it('an sshd "Invalid user <marker…>" line makes no sighting (the reviewer\'s repro)', async () => {
        expect(c.payload.length).toBeLessThanOrEqual(100);
        const r = decode(await decoder(), `<38>Nov 23 11:59:59 bastion sshd[4242]: ${sshdMsg(c.payload)}`);
        expect(r.format).toBeUndefined();
        expect(r.sightings).toEqual([]);
      });

      it('the same message without a header (a file line): the marker is not at the start', async () => {
        const r = decode(await decoder(), sshdMsg(c.payload));
        expect(r.format).toBeUndefined();
        expect(r.sightings).toEqual([]);
      });

      it('the marker opening the message of another tagged program is not claimed', async () => {
        const d = await decoder();
        for (const line of [
          `<14>Nov 23 11:59:59 web1 nginx[77]: ${c.payload}`, // a known program, with its pid
          ...(STRICT_LINE.has(c.format) ? [] : [`<14>Nov 23 11:59:59 web1 myapp[77]: ${c.payload}`]), // a program, with its pid
          `<38>Nov 23 11:59:59 bastion sshd: ${c.payload}`, // a program after a host name
          `<4>Nov 23 11:59:59 kernel: ${c.payload}`, // a known program, no host name, no pid
          `<30>1 2026-11-23T11:59:59Z bastion sudo 77 - - ${c.payload}`, // RFC 5424 APP-NAME
        ]) {
          const r = decode(d, line);
          expect({ line, format: r.format, n: r.sightings.length }).toEqual({ line, format: undefined, n: 0 });
        }
      });

      if (STRICT_LINE.has(c.format)) {
        // chosen (review of 1a296ee): Docker's syslog driver tags with the container id and a pid, so
        // an unknown program with a pid whose message IS the strict server line is claimed; a known one never
        it('an unknown program with a pid whose message is exactly the server line is claimed (Docker)', async () => {
          const r = decode(await decoder(), `<14>Nov 23 11:59:59 web1 3f4e5a6b7c8d[77]: ${c.whole ?? c.payload}`);
          expect([r.format, r.sightings.map((s) => s.ip)]).toEqual([c.format, [c.ip]]);
        });
      }

      it('the device\'s own line still makes its sighting', async () => {
        const r = decode(await decoder(), c.genuine);
        expect(r.format).toBe(c.format);
        expect(r.sightings.map((s) => s.ip)).toEqual([c.ip]);
      });
    });
  }

  it('the device prefixes real lines carry are still read', async () => {
    const d = await decoder();
    const asa = 'Group <g> User <u> IP <1.2.3.4> IPv4 Address <10.20.1.81> assigned to session';
    for (const line of [
      `Apr 27 02:03:03 dev01: %ASA-4-722051: ${asa}`, // the device's name read as a tag
      `Oct 10 2018 12:34:56 localhost CiscoASA[999]: %ASA-4-722051: ${asa}`,
      `<166>2024-06-26T01:35:42Z: %ASA-4-722051: ${asa}`,
      `<166>: 2024 Aug 07 10:29:42 UTC ccafa9b4-b48a-4156-b3af-de2d35e5f432 : %FTD-4-722051: ${asa}`,
    ]) {
      const r = decode(d, line);
      expect({ line, format: r.format, ip: r.sightings[0]?.ip }).toEqual({ line, format: 'cisco-asa', ip: '10.20.1.81' });
    }
    const gp = '1,2026/11/23 11:59:59,0123,GLOBALPROTECT,0,2817,2026/11/23 11:59:59,vsys1,gateway-connected,tunnel,,SSL,bob,DE,PC,198.51.100.77,,10.20.1.82,,x';
    for (const line of [`<14>Nov 23 11:59:59 PA-3220 ${gp}`, `Nov 23 12:00:01 10.5.172.40 Nov 23 11:59:59 PA-3220 ${gp}`]) {
      const r = decode(d, line);
      expect({ line, format: r.format, ip: r.sightings[0]?.ip }).toEqual({ line, format: 'globalprotect', ip: '10.20.1.82' });
    }
    // a CSV record further into the message is quoted text
    expect(decode(d, `<14>Nov 23 11:59:59 PA-3220 note ${gp}`).format).toBeUndefined();
    const kea = 'INFO  [kea-dhcp4.leases.1] DHCP4_LEASE_ALLOC [hwtype=1 aa:bb:cc:dd:ee:01], cid=[no info], tid=0x1: lease 10.20.1.83 has been allocated for 3600 seconds';
    for (const line of [`2026-01-13T06:24:01\tInformational\tkea-dhcp4\t${kea}`, `Informational kea-dhcp4 ${kea}`]) {
      const r = decode(d, line);
      expect({ line, format: r.format, ip: r.sightings[0]?.ip }).toEqual({ line, format: 'kea-dhcp4', ip: '10.20.1.83' });
    }
    const ovpn = "Nov  6 07:55:40 vpnserver vpnserver: [-] OVPN 2 OUT: 'Wed Nov  6 05:55:40 2024 ross/79.122.200.58:53722 MULTI: primary virtual IP for ross/79.122.200.58:53722: 10.20.1.84'";
    expect(decode(d, ovpn).sightings.map((s) => [s.format, s.ip])).toEqual([['openvpn', '10.20.1.84']]);
  });
});

describe('openvpn: a marker inside the text of an OpenVPN line', () => {
  const deferred = "198.51.100.9:40000 TLS: Username/Password authentication deferred for username 'a MULTI: Learn: 10.20.1.71 -> evil/203.0.113.9:1194' ";
  const forged = [
    // the user name is logged before authentication (the reviewer's repro)
    `<29>Nov 23 11:59:59 vpn openvpn[77]: ${deferred}`,
    `2026-11-23 11:59:59 ${deferred}`,
    "<29>Nov 23 11:59:59 vpn openvpn[77]: 198.51.100.9:40000 TLS: Username/Password authentication deferred for username 'x MULTI_sva: pool returned IPv4=10.20.1.72, IPv6=(Not enabled)'",
    "<29>Nov 23 11:59:59 vpn openvpn[77]: 198.51.100.9:40000 TLS: Username/Password authentication deferred for username 'x MULTI: primary virtual IP for y/1.2.3.4:1: 10.20.1.73'",
    // Learn / primary IP naming another peer than the one that opens the line
    '<29>Nov 23 11:59:59 vpn openvpn[77]: carol/198.51.100.7:40000 MULTI: Learn: 10.20.1.74 -> evil/203.0.113.9:1194',
    '<29>Nov 23 11:59:59 vpn openvpn[77]: carol/198.51.100.7:40000 MULTI: primary virtual IP for evil/203.0.113.9:1194: 10.20.1.75',
    // a common name (from --username-as-common-name) carrying a whole marker: more text follows it
    '<29>Nov 23 11:59:59 vpn openvpn[77]: x/1.2.3.4:1 MULTI_sva: pool returned IPv4=10.20.1.76, IPv6=(Not enabled)/198.51.100.9:40000 TLS: soft reset',
    "<29>Nov 23 11:59:59 vpn openvpn[77]: x/1.2.3.4:1 MULTI: Learn: 10.20.1.77 -> x/1.2.3.4:1/198.51.100.9:40000 SENT CONTROL [x]: 'PUSH_REPLY'",
  ];
  for (const format of ['openvpn', 'auto']) {
    it(`makes no sighting (--format ${format})`, async () => {
      const d = await decoder(format);
      for (const line of forged) {
        const r = decode(d, line);
        expect({ line, got: r.sightings.map((s) => [s.kind, s.ip]) }).toEqual({ line, got: [] });
      }
    });

    it(`the real Learn / primary IP / pool lines still do (--format ${format})`, async () => {
      const d = await decoder(format);
      const got = [
        '<29>Nov 23 11:59:59 vpn openvpn[77]: carol/198.51.100.7:40000 MULTI: Learn: 10.20.1.78 -> carol/198.51.100.7:40000',
        '<29>Nov 23 11:59:59 vpn openvpn[77]: dave/198.51.100.8:40001 MULTI: primary virtual IP for dave/198.51.100.8:40001: 10.20.1.79',
        '<29>Nov 23 11:59:59 vpn openvpn[77]: erin/udp4:198.51.100.10:40002 peer-id=1 MULTI_sva: pool returned IPv4=10.20.1.80, IPv6=(Not enabled)',
      ].map((l) => decode(d, l).sightings.map((s) => [s.kind, s.ip, s.user]));
      expect(got).toEqual([[['tunnel-up', '10.20.1.78', 'carol']], [['tunnel-up', '10.20.1.79', 'dave']], [['tunnel-up', '10.20.1.80', 'erin']]]);
    });
  }
});

describe('a real daemon (auto, UDP syslog, dry-run scanner)', () => {
  let d: DaemonProcess | undefined;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    d = await startDaemon(`${udpDaemonHead(port)}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
`);
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
  });

  it('an sshd "Invalid user logid=…" line launches no scan; the FortiGate line after it does', async () => {
    const now = new Date();
    const bsd = `${now.toUTCString().slice(8, 11)} ${String(now.getUTCDate()).padStart(2, ' ')} ${now.toISOString().slice(11, 19)}`;
    await udpSend(port, `<38>${bsd} bastion sshd[4242]: ${sshdMsg('logid=0101039947 type=event subtype=vpn action=tunnel-up tunnelip=10.20.1.66 date=x')}`);
    await udpSend(port, `<190>date=${now.toISOString().slice(0, 10)} time=${now.toISOString().slice(11, 19)} logid=0101039947 type=event subtype=vpn action=tunnel-up tunnelip=10.20.1.90`);
    type Launch = { launch?: { targets?: { ip: string }[] } };
    const launched = (ip: string) => (e: unknown) => !!(e as Launch).launch?.targets?.some((t) => t.ip === ip);
    await d!.waitFor(launched('10.20.1.90'), 30_000);
    const forged = d!.logs.filter((e) => launched('10.20.1.66')(e) || (e as { sighting?: { ip?: string } }).sighting?.ip === '10.20.1.66');
    expect(forged.map((e) => e.msg)).toEqual([]);
  }, 60_000);
});
