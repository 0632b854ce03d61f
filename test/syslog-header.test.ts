import { describe, expect, it } from 'vitest';
import { parseSyslog } from '../src/parsers/syslog-header.js';

const opts = { receivedAt: new Date('2026-11-23T12:00:00Z'), zone: 'UTC' };
const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());

describe('RFC 5424 headers', () => {
  it('reads every field, structured data with escapes, fractional seconds and an offset', () => {
    const m = parseSyslog('<165>1 2003-10-11T22:14:15.003-07:00 mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Appl\\"ica\\]tion\\\\x"][examplePriority@32473 class="high"] An application event', opts);
    expect(m.format).toBe('rfc5424');
    expect(m.pri).toBe(165);
    expect(m.facility).toBe(20);
    expect(m.severity).toBe(5);
    expect(iso(m.time)).toBe('2003-10-12T05:14:15.003Z');
    expect(m.hostname).toBe('mymachine.example.com');
    expect(m.appName).toBe('evntslog');
    expect(m.procId).toBe('1234');
    expect(m.msgId).toBe('ID47');
    expect(m.structuredData).toEqual([
      { id: 'exampleSDID@32473', params: { iut: '3', eventSource: 'Appl"ica]tion\\x' } },
      { id: 'examplePriority@32473', params: { class: 'high' } },
    ]);
    expect(m.msg).toBe('An application event');
  });

  it('NILVALUEs everywhere, and a BOM before the message', () => {
    const m = parseSyslog('<34>1 - - - - - - \uFEFFhello', opts);
    expect(m.format).toBe('rfc5424');
    expect(m.time).toBeUndefined();
    expect(m.hostname).toBeUndefined();
    expect(m.appName).toBeUndefined();
    expect(m.msg).toBe('hello');
  });

  it('Z and microsecond stamps', () => {
    expect(iso(parseSyslog('<13>1 2026-11-23T13:08:27.226162+00:00 vm root - - [timeQuality tzKnown="1"] x', opts).time)).toBe('2026-11-23T13:08:27.226Z');
    expect(iso(parseSyslog('<13>1 1985-04-12T23:20:50.52Z h a - - - x', opts).time)).toBe('1985-04-12T23:20:50.520Z');
  });

  it('a broken structured-data block falls back without throwing', () => {
    const m = parseSyslog('<13>1 2026-11-23T13:08:27Z h a - - [unterminated x="1 msg', opts);
    expect(m.msg.length).toBeGreaterThan(0);
  });
});

describe('RFC 3164 headers as they really are', () => {
  it('pfSense: no hostname, space-padded day, year from the receive time', () => {
    const m = parseSyslog('<190>Jul  4 09:39:40 dhcpd[64305]: DHCPDISCOVER from 4c:55:41:a0:fa:99 via eth0.60', opts);
    expect(m.format).toBe('rfc3164');
    expect(m.hostname).toBeUndefined();
    expect(m.appName).toBe('dhcpd');
    expect(m.procId).toBe('64305');
    expect(iso(m.time)).toBe('2026-07-04T09:39:40.000Z');
    expect(m.msg).toBe('DHCPDISCOVER from 4c:55:41:a0:fa:99 via eth0.60');
  });

  it('a December line received in January belongs to last year', () => {
    const m = parseSyslog('<30>Dec 31 23:59:59 host dhcpd: x', { receivedAt: new Date('2027-01-01T00:00:10Z'), zone: 'UTC' });
    expect(iso(m.time)).toBe('2026-12-31T23:59:59.000Z');
  });

  it('hostname and tag', () => {
    const m = parseSyslog('<30>Apr 18 05:02:05 10.50.1.227 dhcpd[2301]: DHCPREQUEST for 192.168.0.4', opts);
    expect(m.hostname).toBe('10.50.1.227');
    expect(m.appName).toBe('dhcpd');
    expect(m.msg).toBe('DHCPREQUEST for 192.168.0.4');
  });

  it('Cisco: a year in the stamp, and an empty tag', () => {
    const m = parseSyslog('Oct 10 2018 12:34:56 localhost CiscoASA[999]: %ASA-4-113029: Group VPN', opts);
    expect(iso(m.time)).toBe('2018-10-10T12:34:56.000Z');
    expect(m.hasYear).toBe(true);
    expect(m.appName).toBe('CiscoASA');
    expect(m.msg).toBe('%ASA-4-113029: Group VPN');
    const c = parseSyslog('<140>Jun 27 00:53:12 host-1.example.local : %ASA-6-737016: IPAA', opts);
    expect(c.hostname).toBe('host-1.example.local');
    expect(c.msg).toBe('%ASA-6-737016: IPAA');
  });

  it('OpenWrt logread: weekday and a trailing year', () => {
    const m = parseSyslog('Mon Apr 11 15:02:46 2022 daemon.info dnsmasq-dhcp[2985]: DHCPACK(br-lan) 192.168.100.242', opts);
    expect(iso(m.time)).toBe('2022-04-11T15:02:46.000Z');
    expect(m.appName).toBe('dnsmasq-dhcp');
  });

  it('stamps read in the configured zone', () => {
    const m = parseSyslog('<30>Jul  4 09:39:40 dhcpd[1]: x', { receivedAt: opts.receivedAt, zone: 'Europe/Berlin' });
    expect(iso(m.time)).toBe('2026-07-04T07:39:40.000Z');
  });

  it('the fall-back hour: a stamp of the repeated hour is read by when the line came, so a renewal in the second is not older than one in the first', () => {
    const at = (stamp: string, received: string) => iso(parseSyslog(`<30>${stamp} gw dhcpd[7]: DHCPACK on 10.0.1.5`, { receivedAt: new Date(received), zone: 'America/New_York' }).time);
    expect(at('Nov  1 01:50:00', '2026-11-01T05:50:01Z')).toBe('2026-11-01T05:50:00.000Z'); // EDT
    expect(at('Nov  1 01:10:00', '2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z'); // EST, an hour later (was 05:10)
    expect(at('Nov  1 2026 01:10:00', '2026-11-01T06:10:01Z')).toBe('2026-11-01T06:10:00.000Z'); // with a year too
    expect(at('Nov  1 01:10:00', '2026-11-03T12:00:00Z')).toBe('2026-11-01T05:10:00.000Z'); // a backlog: the first, as before
    // the same stamp text read twice an hour apart (a quiet sender) is read afresh, not from the last line's
    expect(at('Nov  1 01:20:00', '2026-11-01T05:20:01Z')).toBe('2026-11-01T05:20:00.000Z');
    expect(at('Nov  1 01:20:00', '2026-11-01T06:20:01Z')).toBe('2026-11-01T06:20:00.000Z');
  });

  it('no header at all: the whole line is the message', () => {
    const m = parseSyslog('30,09/20/21,09:16:15,DNS Update Request,172.28.43.169', opts);
    expect(m.format).toBe('none');
    expect(m.msg).toBe('30,09/20/21,09:16:15,DNS Update Request,172.28.43.169');
    const f = parseSyslog('<189>date=2020-04-23 time=12:32:48 devname="x"', opts);
    expect(f.pri).toBe(189);
    expect(f.msg).toBe('date=2020-04-23 time=12:32:48 devname="x"');
  });

  it('a time followed by something that is not a year is not read as one', () => {
    const m = parseSyslog('Jan 17 17:31:26 5:00 charon: x', opts);
    expect(Number.isFinite(m.time)).toBe(true);
    expect(iso(m.time)).toBe('2026-01-17T17:31:26.000Z');
  });

  it('never throws on garbage', () => {
    const samples = ['', '<', '<999>', '<1>1 ', '<13>1 2026-13-45T99:99:99Z', 'Jan', 'Jan 99 99:99:99', '\u0000\uffff\ud800', '<13>' + '['.repeat(100000), '<13>1 - - - - - ' + '[a b="'.repeat(10000)];
    for (const s of samples) expect(() => parseSyslog(s, opts)).not.toThrow();
  });

  it('runs in linear time on hostile input', () => {
    const big = '<13>1 2026-11-23T13:08:27Z h a - - ' + '[x a="\\"'.repeat(50000);
    const t0 = performance.now();
    parseSyslog(big, opts);
    parseSyslog('<13>Jan  1 00:00:00 ' + 'a: '.repeat(300000), opts);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

// Issue 14 "Syslog header defects": each test below failed before its fix.
describe('RFC 3164: HOSTNAME follows TIMESTAMP whether or not a tag: follows (§4.1.2)', () => {
  it('a hostname followed by plain text', () => {
    const m = parseSyslog('<13>Mar  2 08:15:00 192.0.2.7 backup finished in 12 s', opts);
    expect(m.hostname).toBe('192.0.2.7');
    expect(m.appName).toBeUndefined();
    expect(m.msg).toBe('backup finished in 12 s');
  });

  it('a hostname alone, or followed by spaces only', () => {
    for (const line of ['<14>Mar  2 08:15:00 edge7', '<14>Mar  2 08:15:00 edge7  ', '<14>2026-03-02T08:15:00Z edge7']) {
      const m = parseSyslog(line, opts);
      expect(m.hostname, line).toBe('edge7');
      expect(m.msg, line).toBe('');
    }
  });

  it('an IPv6 hostname (colons inside) is not read as a tag', () => {
    const m = parseSyslog('<0>Mar  2 08:15:00 2001:db8:0:1::7 sched started', opts);
    expect(m.hostname).toBe('2001:db8:0:1::7');
    expect(m.msg).toBe('sched started');
  });

  it('a Windows DHCP line forwarded with a syslog header keeps its CSV as the message', () => {
    const m = parseSyslog('<134>Nov 23 10:01:02 dhcp01 10,11/23/26,10:01:02,Assign,10.1.2.3,pc1.example.org,00155D010203,,0,6,,,,0x0,,,,', opts);
    expect(m.hostname).toBe('dhcp01');
    expect(m.msg.startsWith('10,11/23/26,')).toBe(true);
  });

  it('a tag written name[pid] without a colon is still a tag', () => {
    const m = parseSyslog('<175>Mar  2 08:15:00 edge7 backupd[88] run 4 done', opts);
    expect(m.hostname).toBe('edge7');
    expect(m.appName).toBe('backupd');
    expect(m.procId).toBe('88');
    expect(m.msg).toBe('run 4 done');
  });
});

describe('RFC 3164: a tag followed directly by text', () => {
  it('name[pid]:text and name:text after a hostname', () => {
    const a = parseSyslog('<30>Mar  2 08:15:00 gw dhcpd[1]:DHCPACK on 10.0.0.5 to 00:11:22:33:44:55 via em0', opts);
    expect(a.hostname).toBe('gw');
    expect(a.appName).toBe('dhcpd');
    expect(a.procId).toBe('1');
    expect(a.msg).toBe('DHCPACK on 10.0.0.5 to 00:11:22:33:44:55 via em0');
    const b = parseSyslog('<129>Mar  2 08:15:00 edge7 app:seq:9', opts);
    expect(b.hostname).toBe('edge7');
    expect(b.appName).toBe('app');
    expect(b.msg).toBe('seq:9');
  });
});

describe('RFC 3164: no words dropped between the hostname and a later tag', () => {
  it('only the token after the hostname can be the tag', () => {
    const m = parseSyslog('<165>Mar  2 08:15:00 EST 2001 relay2 worker[3]: queue empty', opts);
    expect(m.hostname).toBe('EST');
    expect(m.msg).toBe('2001 relay2 worker[3]: queue empty');
  });
});

describe('impossible values are rejected, not rolled over', () => {
  it('a newline inside an RFC 5424 header field', () => {
    for (const line of ['<1>1 - edge\n7 app - - - x', '<1>1 - - a\npp - - - x', '<1>1 - - - 4\n2 - - x', '<1>1 - - - - ID\n1 - x', '<1>1 - \nedge7 - - - x']) {
      const m = parseSyslog(line, opts);
      expect(m.format, JSON.stringify(line)).toBe('none');
    }
  });

  it('a date that does not exist', () => {
    expect(parseSyslog('<13>1 2025-06-31T10:00:00Z h a - - - x', opts).format).toBe('none');
    expect(parseSyslog('<13>1 2025-02-29T10:00:00Z h a - - - x', opts).format).toBe('none');
    expect(iso(parseSyslog('<13>1 2024-02-29T10:00:00Z h a - - - x', opts).time)).toBe('2024-02-29T10:00:00.000Z');
    expect(parseSyslog('<13>Jun 31 10:00:00 h a: x', opts).time).toBeUndefined();
    expect(parseSyslog('<13>Nov 31 2025 10:00:00 h a: x', opts).time).toBeUndefined();
  });

  it('a year-less Feb 29 received in a non-leap year is the last leap year\'s', () => {
    const m = parseSyslog('<13>Feb 29 10:00:00 h a: x', { receivedAt: new Date('2027-06-01T00:00:00Z'), zone: 'UTC' });
    expect(iso(m.time)).toBe('2024-02-29T10:00:00.000Z');
  });
});

describe('RFC 3164: name:text is a tag only right after the hostname and its single space', () => {
  it('two spaces after the hostname: the rest is message', () => {
    const m = parseSyslog('<129>Mar  2 08:15:00 edge7  seq:4', opts);
    expect(m.hostname).toBe('edge7');
    expect(m.appName).toBeUndefined();
    expect(m.msg).toBe('seq:4');
  });
});

describe('RFC 3164: a first word no host could have is message, not hostname', () => {
  it('a strongSwan thread marker and a PAN-OS CSV record after a hostless stamp', () => {
    const a = parseSyslog('Mar  2 08:15:00 07[IKE] IKE_SA home[3] established', opts);
    expect(a.hostname).toBeUndefined();
    expect(a.msg).toBe('07[IKE] IKE_SA home[3] established');
    const b = parseSyslog('Mar  2 08:15:00 1,2026/03/02 08:15:00,0001,GLOBALPROTECT,0', opts);
    expect(b.hostname).toBeUndefined();
    expect(b.msg).toBe('1,2026/03/02 08:15:00,0001,GLOBALPROTECT,0');
  });
});

describe('RFC 5424 §6.4: MSG encodings', () => {
  it('a MSG that is not UTF-8 and has no BOM is a message (as the listener decodes it, Latin-1)', () => {
    const m = parseSyslog(Buffer.from([...Buffer.from('<13>1 - h a - - - Gr'), 0xfc, 0xdf, 0x65]).toString('latin1'), opts);
    expect(m.format).toBe('rfc5424');
    expect(m.msg).toBe('Gr\u00fc\u00dfe');
  });

  it('a BOM followed by bytes that are not UTF-8 is not a valid RFC 5424 message: no header, text kept', () => {
    const text = Buffer.from([...Buffer.from('<13>1 - h a - - - '), 0xef, 0xbb, 0xbf, 0xc3, 0x28]).toString('latin1');
    const m = parseSyslog(text, opts);
    expect(m.format).toBe('none');
    expect(m.msg).toBe(text.slice(4));
  });
});

describe('ctime stamps (`Www Mmm DD HH:MM:SS YYYY`) come from file logs, which carry no hostname', () => {
  it('an OpenVPN log line: the peer is not a hostname, MULTI is not a tag', () => {
    const m = parseSyslog('Mon Nov 23 13:41:00 2026 dave-pc/198.18.0.41:40200 MULTI: Learn: 10.213.0.10 -> dave-pc/198.18.0.41:40200', opts);
    expect(iso(m.time)).toBe('2026-11-23T13:41:00.000Z');
    expect(m.hostname).toBeUndefined();
    expect(m.appName).toBeUndefined();
    expect(m.msg).toBe('dave-pc/198.18.0.41:40200 MULTI: Learn: 10.213.0.10 -> dave-pc/198.18.0.41:40200');
  });

  it('OpenWrt logread: facility.level, then the tag', () => {
    const m = parseSyslog('Mon Nov 23 13:41:00 2026 daemon.info dnsmasq-dhcp[2985]: DHCPACK(br-lan) 192.168.1.5 aa:bb:cc:dd:ee:ff', opts);
    expect(m.hostname).toBeUndefined();
    expect(m.appName).toBe('dnsmasq-dhcp');
    expect(m.msg).toBe('DHCPACK(br-lan) 192.168.1.5 aa:bb:cc:dd:ee:ff');
  });
});

describe('journal lines in other locales (journalctl -o short prints %b of LC_TIME)', () => {
  const cases: [string, string][] = [
    ['Mär 02 08:15:00 gw dhcpd[1]: x', '2026-03-02T08:15:00.000Z'], // de
    ['Okt 02 08:15:00 gw dhcpd[1]: x', '2026-10-02T08:15:00.000Z'], // de, nl
    ['Dez 02 08:15:00 gw dhcpd[1]: x', '2025-12-02T08:15:00.000Z'], // de, pt (December: last year, received in November)
    ['mai 02 08:15:00 gw dhcpd[1]: x', '2026-05-02T08:15:00.000Z'], // fr, pt
    ['févr. 02 08:15:00 gw dhcpd[1]: x', '2026-02-02T08:15:00.000Z'], // fr
    ['juil. 02 08:15:00 gw dhcpd[1]: x', '2026-07-02T08:15:00.000Z'], // fr
    ['août 02 08:15:00 gw dhcpd[1]: x', '2026-08-02T08:15:00.000Z'], // fr
    ['ene 02 08:15:00 gw dhcpd[1]: x', '2026-01-02T08:15:00.000Z'], // es
    ['ago 02 08:15:00 gw dhcpd[1]: x', '2026-08-02T08:15:00.000Z'], // es, it, pt
    ['mag 02 08:15:00 gw dhcpd[1]: x', '2026-05-02T08:15:00.000Z'], // it
    ['mrt 02 08:15:00 gw dhcpd[1]: x', '2026-03-02T08:15:00.000Z'], // nl
  ];
  for (const [line, want] of cases) {
    it(line.slice(0, 6), () => {
      const m = parseSyslog(line, opts);
      expect(iso(m.time)).toBe(want);
      expect(m.hostname).toBe('gw');
      expect(m.appName).toBe('dhcpd');
    });
  }
});

describe('the last stamp is reused only when its reading holds (header fast path)', () => {
  it('same text, another zone / receive year / a year or fraction after it: read afresh', () => {
    const at = (line: string, receivedAt: string, zone = 'UTC') => iso(parseSyslog(line, { receivedAt: new Date(receivedAt), zone }).time);
    expect(at('<13>Jun  1 10:00:00 h a: x', '2026-06-01T12:00:00Z')).toBe('2026-06-01T10:00:00.000Z');
    expect(at('<13>Jun  1 10:00:00 h a: x', '2026-06-01T12:00:00Z', 'Europe/Berlin')).toBe('2026-06-01T08:00:00.000Z');
    expect(at('<13>Jun  1 10:00:00 h a: x', '2027-06-01T12:00:00Z', 'Europe/Berlin')).toBe('2027-06-01T08:00:00.000Z');
    expect(at('<13>Jun  1 10:00:00 2020 h a: x', '2027-06-01T12:00:00Z', 'Europe/Berlin')).toBe('2020-06-01T08:00:00.000Z');
    expect(at('<13>Jun  1 10:00:00.250 h a: x', '2027-06-01T12:00:00Z', 'Europe/Berlin')).toBe('2027-06-01T08:00:00.250Z');
    // a stamp more than a day ahead belongs to last year, and the same text a day later to this year
    expect(at('<13>Dec 31 23:00:00 h a: x', '2026-12-31T00:00:00Z')).toBe('2026-12-31T23:00:00.000Z');
    expect(at('<13>Dec 31 23:00:00 h a: x', '2026-01-01T00:10:00Z')).toBe('2025-12-31T23:00:00.000Z');
    expect(at('<13>Jun  3 10:00:00 h a: x', '2026-06-01T12:00:00Z')).toBe('2025-06-03T10:00:00.000Z');
    expect(at('<13>Jun  3 10:00:00 h a: x', '2026-06-02T12:00:00Z')).toBe('2026-06-03T10:00:00.000Z');
  });
});
