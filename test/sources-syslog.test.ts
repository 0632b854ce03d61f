/**
 * Syslog listeners on real sockets (ephemeral loopback ports), fed by util-linux `logger` and by
 * node net/tls/dgram clients. Mutual TLS certificates are made at test time with the openssl CLI.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSyslogInput } from '../src/sources/index.js';
import type { InputHandle, LineSink, SyslogInputOptions } from '../src/sources/types.js';
import { CollectSink } from './helpers/sink.js';
import { pino } from 'pino';
import { silentLogger } from '../src/log.js';
import { parseSyslog } from '../src/parsers/syslog-header.js';
import { sleep, until } from './helpers/wait.js';
import { loadNativeUdp } from '../src/sources/syslog/native-udp.js';

const log = silentLogger();

/** listeners in the describe block running now: in a receive thread (for UDP: native or dgram receiver) or on the main thread */
let receiveThread = false;
let udpReceiver: SyslogInputOptions['udpReceiver'] = 'auto';

function opts(listen: string, extra: Partial<SyslogInputOptions> = {}): SyslogInputOptions {
  return { listen, format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, udpRecvBufferBytes: 1 << 20, receiveThread, udpReceiver, ...extra };
}

const native = loadNativeUdp();
if ('reason' in native) console.log(`SKIP native UDP receiver tests: ${native.reason}`);
/** the UDP modes: main thread (dgram), receive thread with node's dgram, receive thread with the native receiver */
const udpModes = [
  { receiveThread: false, receiver: 'dgram' as const },
  { receiveThread: true, receiver: 'dgram' as const },
  ...('addon' in native ? [{ receiveThread: true, receiver: 'native' as const }] : []),
];
/** TCP and TLS: the server in the stream receive thread, or on the main thread */
const streamModes = [{ receiveThread: false }, { receiveThread: true }];
/** sets `receiveThread` for the describe block it is called in */
function inMode(mode: { receiveThread: boolean }): void {
  beforeAll(() => {
    receiveThread = mode.receiveThread;
  });
  afterAll(() => {
    receiveThread = false;
  });
}

const hasLogger = spawnSync('logger', ['--version']).status === 0;
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasLogger) console.log('SKIP logger tests: util-linux `logger` not found (Debian package bsdutils)');
if (!hasOpenssl) console.log('SKIP TLS tests: `openssl` CLI not found (Debian package openssl)');

function logger(args: string[]): void {
  execFileSync('logger', args, { stdio: 'pipe', timeout: 5000 });
}

function tcpClient(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ port, host }, () => resolve(s));
    s.on('error', reject);
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

const handles: InputHandle[] = [];
async function start(o: SyslogInputOptions, sink: LineSink): Promise<InputHandle> {
  const h = await startSyslogInput(o, sink, log);
  handles.push(h);
  return h;
}
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});

describe.each(udpModes)('UDP listener (receiveThread $receiveThread, $receiver)', (mode) => {
  beforeAll(() => {
    receiveThread = mode.receiveThread;
    udpReceiver = mode.receiver;
  });
  afterAll(() => {
    receiveThread = false;
    udpReceiver = 'auto';
  });

  it.runIf(hasLogger)('receives RFC 3164 and RFC 5424 messages from logger -d', async () => {
    const sink = new CollectSink();
    const h = await start(opts('udp://127.0.0.1:0'), sink);
    const port = h.address!.port;
    expect(h.name).toBe(`udp:${port}`);
    logger(['-n', '127.0.0.1', '-P', String(port), '-d', '--rfc3164', '-t', 'dhcpd', 'DHCPACK on 10.0.0.5 to 52:54:00:12:34:56 via eth0']);
    logger(['-n', '127.0.0.1', '-P', String(port), '-d', '--rfc5424', '-t', 'openvpn', 'héllo 5424']);
    await until(() => sink.lines.length === 2, 5000, 'two datagrams');
    const [a, b] = sink.lines;
    expect(a.source).toBe(`udp:${port}`);
    expect(a.sender).toBe('127.0.0.1');
    expect(a.format).toBe('auto');
    const ha = parseSyslog(a.text, { receivedAt: a.receivedAt, zone: 'UTC' });
    expect(ha.format).toBe('rfc3164');
    expect(ha.appName).toBe('dhcpd');
    expect(ha.msg).toBe('DHCPACK on 10.0.0.5 to 52:54:00:12:34:56 via eth0');
    const hb = parseSyslog(b.text, { receivedAt: b.receivedAt, zone: 'UTC' });
    expect(hb.format).toBe('rfc5424');
    expect(hb.appName).toBe('openvpn');
    expect(hb.msg).toBe('héllo 5424');
    expect(h.counters().received).toBe(2);
  });

  it('listens on IPv6 and counts drops: not allowed, too large, binary, invalid UTF-8', async () => {
    const sink = new CollectSink();
    let h: InputHandle;
    try {
      h = await start(opts('udp://[::1]:0', { allow: ['::1/128'], maxMessageBytes: 100 }), sink);
    } catch (err) {
      console.log(`SKIP IPv6 UDP: cannot bind ::1 (${(err as Error).message})`);
      return;
    }
    const port = h.address!.port;
    const c6 = createSocket('udp6');
    const send = (m: Buffer | string) => new Promise<void>((r) => c6.send(m, port, '::1', () => r()));
    await send('<13>Oct 11 22:14:15 host app: ok one\n');
    await send('x'.repeat(200));
    await send(Buffer.from([0x3c, 0x31, 0x3e, 0x00, 0x01, 0x02, 0xff, 0x41]));
    await send(Buffer.from([0x3c, 0x31, 0x3e, 0x41, 0xc3, 0x28, 0x42]));
    await send('<13>Oct 11 22:14:15 host app: ok two');
    c6.close();
    await until(() => sink.lines.length === 3, 5000, 'three good datagrams');
    await until(() => Object.values(h.counters().dropped).reduce((a, b) => a + b, 0) >= 2, 2000, 'drops counted');
    // not UTF-8: kept (RFC 5424 §6.4), read as Latin-1 by default, and counted
    expect(sink.texts()).toEqual(['<13>Oct 11 22:14:15 host app: ok one', '<1>A\u00c3(B', '<13>Oct 11 22:14:15 host app: ok two']);
    expect(sink.lines[0].sender).toBe('::1');
    const d = h.counters().dropped;
    expect(d.tooLarge).toBe(1);
    expect(d.binary).toBe(1);
    expect(d.badEncoding).toBeUndefined();
    expect(h.counters().events?.notUtf8).toBe(1);

    // a sender outside the allow-list (IPv4 listener allowing only 10/8)
    const sink4 = new CollectSink();
    const h4 = await start(opts('udp://127.0.0.1:0', { allow: ['10.0.0.0/8'] }), sink4);
    const c4 = createSocket('udp4');
    await new Promise<void>((r) => c4.send('<13>hello', h4.address!.port, '127.0.0.1', () => r()));
    c4.close();
    await until(() => h4.counters().dropped.notAllowed === 1, 2000, 'notAllowed');
    expect(sink4.lines).toEqual([]);
  });

  it('counts kernel drops of its own socket from /proc/net/udp', async () => {
    const sink = new CollectSink();
    const h = await start(opts('udp://127.0.0.1:0', { udpRecvBufferBytes: 8192 }), sink);
    if (h.counters().dropped.kernel === undefined) {
      console.log('SKIP kernel drop count: /proc/net/udp not readable here');
      return;
    }
    expect(h.counters().dropped.kernel).toBe(0);
    // another process floods us while our event loop is blocked (execFileSync): the small buffer overflows
    const n = 3000;
    const sender = `const s=require('dgram').createSocket('udp4');let k=0;const m=Buffer.alloc(400,65);m.write('<13>',0);` +
      `(function go(){for(let i=0;i<100&&k<${n};i++,k++)s.send(m,${h.address!.port},'127.0.0.1');if(k<${n})setImmediate(go);else setTimeout(()=>s.close(),100)})()`;
    execFileSync(process.execPath, ['-e', sender], { timeout: 10_000 });
    await sleep(300);
    const c = h.counters();
    console.log(`UDP flood with a small buffer (receiveThread ${receiveThread}): sent ${n}, received ${c.received}, kernel drops ${c.dropped.kernel}`);
    // on the main thread the blocked loop cannot drain the socket; the receive thread still may
    if (!receiveThread) expect(c.dropped.kernel).toBeGreaterThan(0);
    expect(c.received + c.dropped.kernel!).toBe(n);
    expect(sink.lines.length).toBe(c.received);
  });

  it.runIf(receiveThread)('receive thread: holds lines while the sink says stop, hands them over on drain, never more than two batches out', async () => {
    const sink = new CollectSink();
    sink.blockAfter = 1;
    const h = await start(opts('udp://127.0.0.1:0'), sink);
    const s = createSocket('udp4');
    const n = 500;
    for (let i = 0; i < n; i++) {
      s.send(`<13>Nov 23 10:00:00 host app: message ${i}`, h.address!.port, '127.0.0.1');
      if (i % 50 === 49) await sleep(5);
    }
    await until(() => h.counters().received === n, 5000);
    await sleep(100);
    // stopped after the first batch: the rest waits in the thread, none dropped
    const before = sink.lines.length;
    expect(before).toBeLessThan(n);
    // each batch out waits for the sink: at most two
    expect(sink.waiting).toBeGreaterThanOrEqual(1);
    expect(sink.waiting).toBeLessThanOrEqual(2);
    sink.drain();
    await until(() => sink.lines.length === n, 5000);
    expect(sink.texts().map((t) => Number(t.split(' ').at(-1)))).toEqual([...Array(n).keys()]);
    expect(Object.entries(h.counters().dropped).filter(([, k]) => k > 0)).toEqual([]);
    s.close();
  });
});

describe.each(streamModes)('TCP listener (receiveThread $receiveThread)', (mode) => {
  inMode(mode);
  it('broken octet counts are logged at most once a minute with the sender and how many, and counted', async () => {
    const sink = new CollectSink();
    const logs: { level: number; msg: string; sender?: string; badFrames?: number }[] = [];
    const captured = pino({ level: 'info' }, { write: (x: string) => void logs.push(JSON.parse(x)) });
    const h = await startSyslogInput(opts('tcp://127.0.0.1:0'), sink, captured);
    handles.push(h);
    const m = '<13>1 - h a - - - fine';
    for (let i = 0; i < 3; i++) {
      const s = await tcpClient(h.address!.port);
      // a good frame, a count that is no number, then a good frame the framer resynchronises on
      s.end(`${m.length} ${m}12x4 <13>broken${m.length} ${m}`);
      await closed(s);
    }
    await until(() => (h.counters().dropped.badFrame ?? 0) >= 3, 3000, 'bad frames counted');
    await sleep(100);
    const lines = logs.filter((l) => l.msg.includes('broken octet-counted frame'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, sender: '127.0.0.1', badFrames: 1 });
  });

  it.runIf(hasLogger)('receives from logger -T, LF framed and octet counted, RFC 3164 and 5424', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0'), sink);
    const port = String(h.address!.port);
    logger(['-n', '127.0.0.1', '-P', port, '-T', '--rfc3164', '-t', 'dhcpd', 'lf framed 3164']);
    logger(['-n', '127.0.0.1', '-P', port, '-T', '--rfc5424', '-t', 'kea', 'lf framed 5424']);
    logger(['-n', '127.0.0.1', '-P', port, '-T', '--octet-count', '--rfc5424', '-t', 'kea', 'octet counted 5424 with\nnewline']);
    logger(['-n', '127.0.0.1', '-P', port, '-T', '--octet-count', '--rfc3164', '-t', 'x', 'octet counted 3164']);
    await until(() => sink.lines.length >= 4, 5000, 'four messages');
    await sleep(50);
    const msgs = sink.lines.map((l) => parseSyslog(l.text, { receivedAt: l.receivedAt, zone: 'UTC' }));
    expect(msgs.map((m) => m.msg)).toEqual(['lf framed 3164', 'lf framed 5424', 'octet counted 5424 with\nnewline', 'octet counted 3164']);
    expect(msgs.map((m) => m.format)).toEqual(['rfc3164', 'rfc5424', 'rfc5424', 'rfc3164']);
    expect(sink.lines.every((l) => l.source === `tcp:${port}` && l.sender === '127.0.0.1')).toBe(true);
  });

  it('drops a 1 MiB line, a broken octet count, binary garbage and invalid UTF-8, and keeps going', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0'), sink);
    const port = h.address!.port;
    // LF framing
    const s = await tcpClient(port);
    s.write('<13>first\n');
    s.write('<13>' + 'A'.repeat(1 << 20) + '\n');
    s.write(Buffer.from([0x01, 0x02, 0x03, 0xfe, 0xff, 0x0a]));
    s.write(Buffer.from('<13>caf\xe9 latin1\n', 'latin1'));
    s.end('<13>last without newline');
    await closed(s);
    // octet counting with a broken count in the middle
    const o = await tcpClient(port);
    o.write('10 <13>first2');
    o.write('99x<13>junk ');
    o.end('11 <13>second2');
    await closed(o);
    await until(() => sink.lines.length >= 5, 5000, 'good lines');
    await until(() => h.counters().dropped.badFrame === 1 && h.counters().events?.notUtf8 === 1, 2000, 'drops counted');
    await sleep(150); // anything counted twice would show by now
    expect(sink.texts()).toEqual(['<13>first', '<13>caf\u00e9 latin1', '<13>last without newline', '<13>first2', '<13>second2']);
    const d = h.counters().dropped;
    expect(d.tooLarge).toBe(1);
    expect(d.binary).toBe(1);
    expect(d.badEncoding).toBeUndefined();
    expect(h.counters().events?.notUtf8).toBe(1);
    expect(d.badFrame).toBe(1);
  });

  it('listens on IPv6 loopback too', async () => {
    const sink = new CollectSink();
    let h: InputHandle;
    try {
      h = await start(opts('tcp://[::1]:0'), sink);
    } catch (err) {
      console.log(`SKIP IPv6 TCP: cannot bind ::1 (${(err as Error).message})`);
      return;
    }
    const s = await tcpClient(h.address!.port, '::1');
    s.end('<13>over v6\n');
    await until(() => sink.lines.length === 1, 3000, 'v6 line');
    expect(sink.lines[0]).toMatchObject({ text: '<13>over v6', sender: '::1', source: `tcp:${h.address!.port}` });
  });

  it('random binary from many connections never takes the listener down', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0', { maxMessageBytes: 512 }), sink);
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let c = 0; c < 20; c++) {
      const s = await tcpClient(h.address!.port);
      for (let k = 0; k < 20; k++) {
        const b = Buffer.alloc(1 + (rnd() % 3000));
        for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
        s.write(b);
      }
      s.end();
      await closed(s);
    }
    const ok = await tcpClient(h.address!.port);
    ok.end('<13>still alive\n');
    await until(() => sink.texts().includes('<13>still alive'), 3000, 'listener alive');
    expect(sink.lines.every((l) => Buffer.byteLength(l.text) <= 512)).toBe(true);
  });

  it('a port already in use fails the start with the system\'s error, and a bad TLS key names it', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0'), sink);
    const taken = start(opts(`tcp://127.0.0.1:${h.address!.port}`), sink);
    await expect(taken).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const dir = mkdtempSync(join(tmpdir(), 'onsight-badtls-'));
    try {
      writeFileSync(join(dir, 'k'), 'not a key');
      writeFileSync(join(dir, 'c'), 'not a certificate');
      await expect(start(opts('tls://127.0.0.1:0', { tls: { cert: join(dir, 'c'), key: join(dir, 'nokey') } }), sink)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(start(opts('tls://127.0.0.1:0', { tls: { cert: join(dir, 'c'), key: join(dir, 'k') } }), sink)).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // the listener that holds the port still works
    const s = await tcpClient(h.address!.port);
    s.end('<13>still here\n');
    await until(() => sink.texts().includes('<13>still here'), 3000, 'first listener still receives');
  });

  it('allow-list refuses other senders and counts them', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0', { allow: ['10.0.0.0/8', '192.168.1.1'] }), sink);
    const s = await tcpClient(h.address!.port);
    s.write('<13>hello\n');
    await closed(s);
    await until(() => h.counters().refused!.notAllowed === 1, 2000, 'refusal counted');
    expect(sink.lines).toEqual([]);
  });

  it('caps connections and closes idle ones', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0', { maxConnections: 2, idleTimeoutS: 0.4 }), sink);
    const port = h.address!.port;
    const a = await tcpClient(port);
    const b = await tcpClient(port);
    const bConnected = Date.now();
    await until(() => h.counters().connections === 2, 2000, 'two connections');
    const c = await tcpClient(port);
    await closed(c);
    await until(() => h.counters().refused!.connectionLimit === 1, 2000, 'refusal counted');
    // a keeps talking, b stays silent: b is closed after 0.4 s, a is not
    const keep = setInterval(() => a.write('<13>tick\n'), 100);
    await closed(b);
    const idleFor = Date.now() - bConnected;
    clearInterval(keep);
    expect(idleFor).toBeGreaterThanOrEqual(350);
    expect(a.destroyed).toBe(false);
    await until(() => h.counters().events!.idleTimeout === 1, 2000, 'idle timeout counted');
    a.destroy();
    // a slot is free again, once the listener has seen a close (a connection made before that is refused: the cap holds)
    await until(() => h.counters().connections === 0, 2000, 'both connections gone');
    const d = await tcpClient(port);
    d.end('<13>after\n');
    await until(() => sink.texts().includes('<13>after'), 2000, 'line after cap');
  });

  it('a connection closed as idle hands on its last line without LF, and counts a cut octet frame (both were dropped without a trace)', async () => {
    const sink = new CollectSink();
    const h = await start(opts('tcp://127.0.0.1:0', { idleTimeoutS: 0.4 }), sink);
    const port = h.address!.port;
    const a = await tcpClient(port);
    a.write('<13>first\n<13>unfinished last line');
    const b = await tcpClient(port);
    b.write(`${'<13>whole frame ok.'.length} <13>whole frame ok.50 <13>cut short`);
    await closed(a);
    await closed(b);
    await until(() => h.counters().events!.idleTimeout === 2, 2000, 'both idle');
    await until(() => sink.texts().includes('<13>unfinished last line'), 2000, 'the unfinished line handed on');
    expect(sink.texts()).toEqual(expect.arrayContaining(['<13>first', '<13>whole frame ok.']));
    expect(sink.texts()).not.toContain('<13>cut short');
    await until(() => h.counters().dropped.badFrame === 1, 2000, 'the cut frame counted');
  });

  it('a paused connection is not idle; once resumed, idleness counts again', async () => {
    const sink = new CollectSink();
    sink.blocked = true;
    const h = await start(opts('tcp://127.0.0.1:0', { idleTimeoutS: 0.3 }), sink);
    const s = await tcpClient(h.address!.port);
    s.write('<13>one\n');
    await until(() => sink.lines.length === 1);
    await sleep(700);
    expect(s.destroyed).toBe(false);
    expect(h.counters().events!.idleTimeout).toBeUndefined();
    sink.drain();
    await closed(s);
    await until(() => h.counters().events!.idleTimeout === 1, 2000, 'idle timeout counted');
  });

  it('backpressure: a sink that says stop pauses the socket; buffered bytes stay bounded', async () => {
    const sink = new CollectSink();
    sink.blocked = true;
    const h = await start(opts('tcp://127.0.0.1:0'), sink);
    const s = await tcpClient(h.address!.port);
    const line = '<13>Oct 11 22:14:15 fw kernel: DROP IN=eth0 SRC=10.1.2.3 DST=10.3.2.1 LEN=60 PROTO=TCP\n';
    const chunk = Buffer.from(line.repeat(1000)); // ~90 KB
    let written = 0;
    let writerBlocked = false;
    const total = 64 << 20; // try to push 64 MiB
    const heap0 = process.memoryUsage().rss;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!s.write(chunk)) {
            writerBlocked = true;
            s.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
      setTimeout(resolve, 1500);
    });
    await sleep(300);
    const receivedWhileBlocked = sink.lines.length;
    console.log(`backpressure: client wrote ${(written / 1048576).toFixed(1)} MiB before blocking; listener took ${receivedWhileBlocked} lines (${((receivedWhileBlocked * line.length) / 1024).toFixed(0)} KiB) before pausing`);
    // the listener read at most a few chunks before pausing: far less than what the client tried to send
    expect(writerBlocked).toBe(true);
    expect(receivedWhileBlocked * line.length).toBeLessThan(4 << 20);
    expect(sink.waiting).toBe(1);
    expect(process.memoryUsage().rss - heap0).toBeLessThan(64 << 20);
    await sleep(300);
    expect(sink.lines.length).toBe(receivedWhileBlocked); // nothing more while paused
    // paused is not idle
    sink.drain();
    await until(() => sink.lines.length > receivedWhileBlocked + 1000, 5000, 'resume after drain');
    s.destroy();
  });
});

describe.runIf(hasOpenssl)('TLS listener (RFC 5425)', () => {
  let dir: string;
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  function makeCa(name: string): void {
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  }
  function makeCert(name: string, ca: string, cn: string, server: boolean): void {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), server ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  }
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'onsight-tls-'));
    makeCa('ca');
    makeCa('evilca');
    makeCert('server1', 'ca', 'server-one', true);
    makeCert('server2', 'ca', 'server-two', true);
    makeCert('client', 'ca', 'client', false);
    makeCert('evilclient', 'evilca', 'evil', false);
    copyFileSync(join(dir, 'server1.crt'), join(dir, 'server.crt'));
    copyFileSync(join(dir, 'server1.key'), join(dir, 'server.key'));
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function client(port: number, certName?: string): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({
        port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(join(dir, 'ca.crt')),
        cert: certName ? readFileSync(join(dir, `${certName}.crt`)) : undefined,
        key: certName ? readFileSync(join(dir, `${certName}.key`)) : undefined,
      }, () => resolve(s));
      s.on('error', reject);
    });
  }

  describe.each(streamModes)('receiveThread $receiveThread', (mode) => {
    inMode(mode);

    it('mutual TLS: octet-counted messages from a client with a good certificate; others refused; reload keeps connections', async () => {
      const sink = new CollectSink();
      const h = await start(opts('tls://127.0.0.1:0', {
        tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt'), requireClientCert: true },
      }), sink);
      const port = h.address!.port;
      expect(h.name).toBe(`tls:${port}`);
      const good = await client(port, 'client');
      expect(good.getPeerCertificate().subject.CN).toBe('server-one');
      const m1 = '<165>1 2003-10-11T22:14:15.003Z host dhcpd - - - DHCPACK on 10.0.0.5';
      good.write(`${Buffer.byteLength(m1)} ${m1}`);
      await until(() => sink.lines.length === 1, 5000, 'first TLS message');
      expect(sink.lines[0]).toMatchObject({ text: m1, source: `tls:${port}`, sender: '127.0.0.1' });

      // no client certificate, or one from another CA: refused, counted
      const noCert = await client(port).then((s) => new Promise<string>((resolve) => {
        s.on('error', (e) => resolve(e.message));
        s.on('close', () => resolve('closed'));
        s.write('5 <13>x');
      }), (e: Error) => e.message);
      expect(noCert).toBeTruthy();
      const evil = await client(port, 'evilclient').then((s) => new Promise<string>((resolve) => {
        s.on('error', (e) => resolve(e.message));
        s.on('close', () => resolve('closed'));
        s.write('5 <13>x');
      }), (e: Error) => e.message);
      expect(evil).toBeTruthy();
      await until(() => (h.counters().events?.tlsError ?? 0) >= 2, 3000, 'tls errors counted');
      expect(sink.lines.length).toBe(1);

      // certificate rotation: SIGHUP → reload(); the open connection survives, new ones see the new cert
      copyFileSync(join(dir, 'server2.crt'), join(dir, 'server.crt'));
      copyFileSync(join(dir, 'server2.key'), join(dir, 'server.key'));
      await h.reload!();
      const m2 = '<165>1 - host dhcpd - - - after reload';
      good.write(`${Buffer.byteLength(m2)} ${m2}`);
      await until(() => sink.lines.length === 2, 5000, 'message on the old connection after reload');
      const fresh = await client(port, 'client');
      expect(fresh.getPeerCertificate().subject.CN).toBe('server-two');
      fresh.end('<13>lf framing over TLS works too\n');
      await until(() => sink.lines.length === 3, 5000, 'message on a new connection');
      expect(sink.texts()).toEqual([m1, m2, '<13>lf framing over TLS works too']);
      // a broken certificate file: reload fails, the old context stays
      writeFileSync(join(dir, 'server.crt'), 'not a certificate');
      await expect(h.reload!()).rejects.toThrow();
      const after = await client(port, 'client');
      expect(after.getPeerCertificate().subject.CN).toBe('server-two');
      after.destroy();
      good.destroy();
      copyFileSync(join(dir, 'server1.crt'), join(dir, 'server.crt'));
      copyFileSync(join(dir, 'server1.key'), join(dir, 'server.key'));
    });

    it('plain TCP garbage on the TLS port is a counted handshake failure, nothing more', async () => {
      const sink = new CollectSink();
      const h = await start(opts('tls://127.0.0.1:0', { tls: { cert: join(dir, 'server1.crt'), key: join(dir, 'server1.key') } }), sink);
      const raw = await tcpClient(h.address!.port);
      raw.on('error', () => undefined);
      raw.write('<13>this is not TLS\n'.repeat(50));
      await closed(raw);
      await until(() => (h.counters().events?.tlsError ?? 0) === 1, 3000, 'tlsError');
      const s = await client(h.address!.port);
      s.end('<13>fine\n');
      await until(() => sink.lines.length === 1, 3000, 'good client after garbage');
    });

    it('a refused client certificate is logged with its cause, and nothing it sends is read', async () => {
      for (const [certName, cause] of [['evilclient', /its client certificate is not signed by tls\.ca \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/], [undefined, /no client certificate \(\w+\): the sender must present one signed by tls\.ca/]] as const) {
        const sink = new CollectSink();
        const logs: { level: number; msg: string; sender?: string }[] = [];
        const captured = pino({ level: 'info' }, { write: (x: string) => void logs.push(JSON.parse(x)) });
        const h = await startSyslogInput(opts('tls://127.0.0.1:0', {
          tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt'), requireClientCert: true },
        }), sink, captured);
        handles.push(h);
        // a port scanner's plain TCP first: its line must not hide the refusal below (once a minute per cause)
        const scan = await tcpClient(h.address!.port);
        scan.on('error', () => undefined);
        scan.write('GET / HTTP/1.0\r\n\r\n');
        await closed(scan);
        await until(() => h.counters().events?.tlsError === 1, 3000, 'the scan counted');
        const refused = await client(h.address!.port, certName).then((c) => new Promise<void>((resolve) => {
          c.on('error', () => undefined);
          c.on('close', () => resolve());
          c.write('5 <13>x');
        }), () => undefined);
        expect(refused).toBeUndefined();
        await until(() => logs.some((l) => cause.test(l.msg)), 3000, 'the refusal logged');
        const line = logs.find((l) => cause.test(l.msg))!;
        expect(line).toMatchObject({ level: 40, sender: '127.0.0.1' });
        expect(logs.filter((l) => l.msg.includes('TLS handshake'))).toHaveLength(2);
        await until(() => h.counters().events?.tlsError === 2, 3000, 'the refusal counted');
        await sleep(100);
        expect(sink.lines).toEqual([]);
      }
    });

    it('handshake failures are logged at most once a minute, naming the sender, the reason and how many failed', async () => {
      const sink = new CollectSink();
      const logs: { level: number; msg: string; sender?: string }[] = [];
      const captured = pino({ level: 'info' }, { write: (x: string) => void logs.push(JSON.parse(x)) });
      const h = await startSyslogInput(opts('tls://127.0.0.1:0', { tls: { cert: join(dir, 'server1.crt'), key: join(dir, 'server1.key') } }), sink, captured);
      handles.push(h);
      for (let i = 0; i < 5; i++) {
        const raw = await tcpClient(h.address!.port);
        raw.on('error', () => undefined);
        raw.write('<13>this is not TLS\n');
        await closed(raw);
      }
      await until(() => (h.counters().events?.tlsError ?? 0) === 5, 3000, 'five tlsErrors');
      await sleep(100);
      const lines = logs.filter((l) => l.msg.includes('TLS handshake'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 40, sender: '127.0.0.1' });
      expect(lines[0].msg).toMatch(/^TLS handshake with 127\.0\.0\.1 failed: wrong version number \(ERR_SSL_WRONG_VERSION_NUMBER\): the sender does not speak TLS \(plain TCP to a tls:\/\/ port\?\) \(1 failed since the last such line; logged at most once a minute/);
    });

    it('a handshake that never finishes is closed after the timeout, frees its slot, and counts as a connection meanwhile', async () => {
      const sink = new CollectSink();
      const h = await start(opts('tls://127.0.0.1:0', { maxConnections: 1, idleTimeoutS: 0.3, tls: { cert: join(dir, 'server1.crt'), key: join(dir, 'server1.key') } }), sink);
      const port = h.address!.port;
      const silent = await tcpClient(port); // connects, never says hello
      silent.on('error', () => undefined);
      await until(() => h.counters().connections === 1, 2000, 'handshaking connection counted');
      await until(() => silent.destroyed, 3000, 'server closes the silent connection');
      await until(() => h.counters().connections === 0, 2000, 'slot freed');
      expect(h.counters().events?.tlsError ?? 0).toBeGreaterThanOrEqual(1);
      const s = await client(port);
      s.end('<13>after a stalled handshake\n');
      await until(() => sink.lines.length === 1, 3000, 'good client gets the freed slot');
    });

    it('caps connections per sender so one slow sender cannot hold every slot', async () => {
      const sink = new CollectSink();
      const h = await start(opts('tcp://127.0.0.1:0', { maxConnections: 10, maxConnectionsPerSender: 2 }), sink);
      const port = h.address!.port;
      const a = await tcpClient(port);
      const b = await tcpClient(port);
      await until(() => h.counters().connections === 2, 2000, 'two connections');
      const c = await tcpClient(port);
      await closed(c);
      await until(() => h.counters().refused!.senderConnectionLimit === 1, 2000, 'refusal counted');
      // another sender address (127.0.0.2 is loopback too) still gets in
      const other = await new Promise<Socket>((resolve, reject) => {
        const s = netConnect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => resolve(s));
        s.on('error', reject);
      });
      other.end('<13>from another sender\n');
      await until(() => sink.texts().includes('<13>from another sender'), 2000, 'other sender admitted');
      a.destroy();
      await until(() => h.counters().connections === 1, 2000, 'only b left');
      const d = await tcpClient(port);
      d.end('<13>slot back\n');
      await until(() => sink.texts().includes('<13>slot back'), 2000, 'sender slot freed');
      b.destroy();
    });

    it('without requireClientCert any client may send', async () => {
      const sink = new CollectSink();
      const h = await start(opts('tls://127.0.0.1:0', { tls: { cert: join(dir, 'server1.crt'), key: join(dir, 'server1.key') } }), sink);
      const s = await client(h.address!.port);
      s.end('8 <13>anon');
      await until(() => sink.lines.length === 1, 5000, 'anonymous TLS message');
      expect(sink.texts()).toEqual(['<13>anon']);
    });
  });
});
