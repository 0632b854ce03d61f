/**
 * A host name (a DHCP client chooses its own) holding C1 controls (U+009B CSI drives a terminal,
 * U+0085 NEL ends a line for some readers), a line separator or a bidi override (U+202E shows the
 * rest backwards) reached the notify syslog line, the JSON log, `onsight why` and `onsight parse`
 * as it was. They become U+FFFD where a name is stored and shown, as C0 controls do, and spaces in
 * the notify line. Through the real daemon (UDP syslog in, dry-run scan, syslog notify to a UDP
 * collector on loopback, SQLite) and the real CLI.
 */
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSyslog } from '../src/notify/syslog.js';
import { storableText } from '../src/util/text.js';
import { type DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { CLI } from './helpers/paths.js';
import { udpSend } from './helpers/net.js';

/** what must not reach a log, a terminal or a collector as it is */
const UNSHOWABLE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const HOSTILE = 'ev\u009b2J\u202e\u0085x\u2028y\u2066z';
const codes = (s: string) => [...s].filter((c) => UNSHOWABLE.test(c)).map((c) => c.codePointAt(0)!.toString(16));

describe('storableText', () => {
  it('replaces C1 controls, line separators and bidi overrides as it does C0 controls; other text is kept', () => {
    expect(storableText(HOSTILE)).toBe('ev\ufffd2J\ufffd\ufffdx\ufffdy\ufffdz');
    expect(storableText('a\u0000b\tc\u007f\u0080\u009f\u2029\u202a\u2069d')).toBe('a\ufffdb\tc\ufffd\ufffd\ufffd\ufffd\ufffd\ufffdd');
    // Latin-1 letters, a no-break space, other scripts, LRM and emoji are text
    for (const ok of ['café-\u00a0pc', 'Ünïcødé', '\u05e9\u05dc\u05d5\u05dd-pc', 'a\u200eb', 'laptop-\ud83d\ude00']) expect(storableText(ok)).toBe(ok);
    expect(storableText('x\ud800y')).toBe('x\ufffdy');
  });
});

describe('the notify syslog formatter', () => {
  it('writes such characters as spaces, in structured data and message text alike', () => {
    // (a name stored before names were cleaned reaches it as it is)
    const line = formatSyslog({
      id: '00000000-0000-5000-8000-000000000000', event: 'host-scanned', at: '2026-11-23T12:00:00.000Z',
      host: { ip: '10.20.1.74', device: 'mac:52:54:00:aa:bb:cd', hostname: HOSTILE, reason: 'scan x' },
    }, { facility: 19, appName: 'onsight', host: 'h', pid: 1 });
    expect(codes(line)).toEqual([]);
    expect(line).toContain('hostname="ev 2J  x y z"');
    expect(line).toContain('(ev 2J  x y z)');
  });
});

describe('through the real daemon and CLI', () => {
  let d: DaemonProcess;
  let port: number;
  let collector: Socket;
  const notes: string[] = [];
  beforeAll(async () => {
    collector = createSocket('udp4');
    collector.on('message', (m) => notes.push(m.toString('utf8')));
    await new Promise<void>((r) => collector.bind(0, '127.0.0.1', r));
    port = await freePort();
    d = await startDaemon(`${udpDaemonHead(port)}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
notify:
  syslog: { target: "udp://127.0.0.1:${(collector.address() as { port: number }).port}", facility: local3 }
`);
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
    collector?.close();
  });

  it('a host name with them is shown with U+FFFD in the JSON log and `onsight why`, and without them in the notify line', async () => {
    await udpSend(port, Buffer.from(`<30>1 ${new Date().toISOString()} gw dnsmasq-dhcp 1 - - DHCPACK(eth0) 10.20.1.74 52:54:00:aa:bb:cd ${HOSTILE}`, 'utf8'));
    const e = await d.waitFor((x) => (x as { sighting?: { ip?: string } }).sighting?.ip === '10.20.1.74', 20_000) as unknown as { sighting: { hostname: string }; msg: string };
    expect(e.sighting.hostname).toBe(storableText(HOSTILE));
    expect(codes(e.msg)).toEqual([]);
    const end = Date.now() + 20_000;
    while (!notes.some((n) => n.includes('10.20.1.74')) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    const mine = notes.filter((n) => n.includes('10.20.1.74'));
    expect(mine.length).toBeGreaterThan(0);
    for (const n of mine) expect(codes(n)).toEqual([]);
    const why = execFileSync(process.execPath, [CLI, 'why', '--config', join(d.dir, 'onsight.yaml'), '10.20.1.74'], { encoding: 'utf8' });
    expect(why).toContain('ev\ufffd2J');
    expect(codes(why.replaceAll('\n', ''))).toEqual([]);
  }, 60_000);

  it('`onsight parse` prints the name with U+FFFD', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'onsight-c1-')), 'dnsmasq.log');
    writeFileSync(file, `<30>Nov 23 11:59:59 gw dnsmasq-dhcp[1]: DHCPACK(eth0) 10.20.1.75 52:54:00:aa:bb:ce ${HOSTILE}\n`);
    const out = execFileSync(process.execPath, [CLI, 'parse', '--format', 'auto', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(codes(out.trimEnd())).toEqual([]);
    expect((JSON.parse(out) as { hostname: string }).hostname).toBe(storableText(HOSTILE));
  });
});
