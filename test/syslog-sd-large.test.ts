/**
 * RFC 5424 structured data in large lines: the header parser checks it with an index scan and
 * reads the parameters only when `structuredData` is asked for, at most MAX_SD_PARAMS of them (and
 * MAX_SD_ELEMENTS elements). Before, every line's parameters were read, all of them, a character at
 * a time (16 MiB: 3 s, twice: the receive thread's prefilter and the decoder). Through the real
 * daemon, a 16 MiB line over TCP and the UDP line after it both become sightings. The per-MiB
 * figures are in the bench (bench/syslog-sd.ts).
 */
import { describe, expect, it, afterAll } from 'vitest';
import { MAX_SD_ELEMENTS, MAX_SD_PARAMS, parseSyslog, unwrapInnerTag } from '../src/parsers/syslog-header.js';
import { DaemonProcess, freePort, startDaemon } from './helpers/daemon.js';
import { tcpSend, udpSend } from './helpers/net.js';

const opts = { receivedAt: new Date('2026-11-23T12:00:00Z'), zone: 'UTC' };
const HEAD = '<30>1 2026-11-23T10:00:00Z gw dhcpd 7 - ';
const ACK = (ip: string, mac: string) => `DHCPACK on ${ip} to ${mac} via eth0`;

/** ` k0="v0" k1="v1" ...` of about `bytes` characters */
function manyParams(bytes: number): string {
  const parts: string[] = [];
  for (let len = 0, i = 0; len < bytes; i++) {
    const p = ` k${i}="v${i}"`;
    parts.push(p);
    len += p.length;
  }
  return parts.join('');
}

describe('structured data: checked in full, read when asked, capped', () => {
  it('a line of 5,000 parameters and 300 elements: the header and message are read, structuredData holds the first MAX_SD_PARAMS and MAX_SD_ELEMENTS', () => {
    const m = parseSyslog(`${HEAD}[big${manyParams(60_000)}]${'[e]'.repeat(300)} ${ACK('10.20.3.1', '52:54:00:aa:bb:01')}`, opts);
    expect(m.format).toBe('rfc5424');
    expect(m.appName).toBe('dhcpd');
    expect(m.msg).toBe(ACK('10.20.3.1', '52:54:00:aa:bb:01'));
    const sd = m.structuredData!;
    expect(sd[0].id).toBe('big');
    expect(Object.keys(sd[0].params).length).toBe(MAX_SD_PARAMS);
    expect(sd[0].params.k0).toBe('v0');
    expect(sd[0].params[`k${MAX_SD_PARAMS - 1}`]).toBe(`v${MAX_SD_PARAMS - 1}`);
    // the parameters took the whole allowance: the later elements are left out
    expect(sd.length).toBe(1);
    const els = parseSyslog(`${HEAD}${'[e a="1"]'.repeat(300)} x`, opts).structuredData!;
    expect(els.length).toBe(MAX_SD_ELEMENTS);
    expect(els[MAX_SD_ELEMENTS - 1]).toEqual({ id: 'e', params: { a: '1' } });
  });

  it('a 16 MiB value with escapes: the message after it is read; the value, asked for, unescaped', () => {
    const value = 'x'.repeat(16 << 20);
    const m = parseSyslog(`${HEAD}[a k="${value}" e="q\\"b\\\\s\\]c\\d"] ${ACK('10.20.3.2', '52:54:00:aa:bb:02')}`, opts);
    expect(m.msg).toBe(ACK('10.20.3.2', '52:54:00:aa:bb:02'));
    const [el] = m.structuredData!;
    expect(el.params.k.length).toBe(value.length);
    expect(el.params.e).toBe('q"b\\s]c\\d');
    // asked twice: the same objects
    expect(m.structuredData![0]).toBe(el);
  });

  it('broken structured data still makes no RFC 5424 header, however long the valid part before it', () => {
    const big = manyParams(1 << 20);
    for (const bad of [`[a${big} k="never closed`, `[a${big} k="v"`, `[a${big} k=v]`, `[a${big} k="v\\"]`, `[${big}]`, `[a${big}][] x`]) {
      const m = parseSyslog(`${HEAD}${bad}`, opts);
      expect(m.format, bad.slice(-20)).not.toBe('rfc5424');
    }
  });

  it('kept through a tag inside the message (unwrapInnerTag), and can be set', () => {
    const m = unwrapInnerTag(parseSyslog('<30>1 2026-11-23T10:00:00Z gw logger - - [o x="1"] dhcpd[12]: DHCPACK', opts));
    expect(m).toMatchObject({ format: 'rfc5424', pri: 30, appName: 'dhcpd', procId: '12', msg: 'DHCPACK', hostname: 'gw' });
    expect(m.structuredData).toEqual([{ id: 'o', params: { x: '1' } }]);
    m.structuredData = [];
    expect(m.structuredData).toEqual([]);
    expect(parseSyslog('<30>1 2026-11-23T10:00:00Z gw a - - - x', opts).structuredData).toBeUndefined();
  });
});

describe('through the daemon', () => {
  let d: DaemonProcess | undefined;
  afterAll(async () => {
    await d?.stop();
  });

  it('a 16 MiB line of structured data over TCP becomes a sighting, and so does the UDP line sent after it', async () => {
    const port = await freePort();
    d = await startDaemon(`state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
  - { type: syslog, listen: "tcp://127.0.0.1:${port}", format: auto, maxMessageBytes: 16777216 }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"] }
regions:
  - { name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
`);
    const big = `${HEAD}[big${manyParams((16 << 20) - 200)}] ${ACK('10.20.3.3', '52:54:00:aa:bb:03')}`;
    expect(big.length).toBeLessThan(16 << 20);
    const t0 = Date.now();
    await tcpSend(port, `${big}\n`);
    await udpSend(port, `<30>Nov 23 10:00:01 gw dhcpd[7]: ${ACK('10.20.3.4', '52:54:00:aa:bb:04')}`);
    const sightingOf = (ip: string) => (e: { sighting?: { ip?: string } }) => e.sighting?.ip === ip;
    const a = await d.waitFor(sightingOf('10.20.3.3'), 60_000);
    expect(a.sighting).toMatchObject({ kind: 'lease', mac: '52:54:00:aa:bb:03', format: 'isc-dhcpd', source: `tcp:${port}` });
    const b = await d.waitFor(sightingOf('10.20.3.4'), 60_000);
    console.log(`16 MiB structured-data line: its sighting ${Number(a.receivedAtMs) - t0} ms after the send, the UDP line's ${Number(b.receivedAtMs) - t0} ms`);
  }, 120_000);
});
