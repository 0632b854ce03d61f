/**
 * A UDP datagram that holds several syslog lines (a relay that batches them; RFC 5426 says one
 * message per datagram). Each line that starts with a PRI is a message of its own, in every UDP
 * path alike (main thread, receive thread with dgram, receive thread with the native receiver, with
 * and without the sink's claims); lines without a PRI stay in the message before (continuation
 * lines, as before). Before, the whole datagram was one line: the decoder read the first message
 * only and the rest was lost without a counter. Real loopback sockets, the real inputs and parsers,
 * and the whole daemon with a real SQLite state.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import { Prefilter } from '../src/parsers/prefilter.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startSyslogInput } from '../src/sources/index.js';
import { loadNativeUdp } from '../src/sources/syslog/native-udp.js';
import type { InputHandle, SyslogInputOptions } from '../src/sources/types.js';
import { CollectSink, ScreeningSink } from './helpers/sink.js';
import { sleep, until } from './helpers/wait.js';

const ack = (k: number) => `<134>Dec  7 10:00:0${k % 10} host dhcpd[1]: DHCPACK on 10.1.2.${k} to aa:bb:cc:dd:ee:${k.toString(16).padStart(2, '0')} via eth0`;
const noise = (i: number) => `<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,${i},0,DF,6,tcp,60,203.0.113.9,10.0.0.1,${1024 + i},443,0,S`;

async function send(port: number, datagrams: (string | Buffer)[]): Promise<void> {
  const s = createSocket('udp4');
  for (const d of datagrams) await new Promise<void>((r, j) => s.send(d, port, '127.0.0.1', (err) => (err ? j(err) : r())));
  s.close();
}

const handles: InputHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});

const native = loadNativeUdp();
if ('reason' in native) console.log(`SKIP native UDP receiver cases: ${native.reason}`);
const udpModes = [
  { receiveThread: false, receiver: 'dgram' as const },
  { receiveThread: true, receiver: 'dgram' as const },
  ...('addon' in native ? [{ receiveThread: true, receiver: 'native' as const }] : []),
];

describe.each(udpModes)('UDP datagram holding several syslog lines (receiveThread $receiveThread, $receiver)', ({ receiveThread, receiver }) => {
  const opts = (extra: Partial<SyslogInputOptions> = {}): SyslogInputOptions => ({
    listen: 'udp://127.0.0.1:0', format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, udpRecvBufferBytes: 1 << 20, receiveThread,
    udpReceiver: receiver, ...extra,
  });

  it('each line that starts with a PRI is a message of its own (LF, CRLF, blank lines between), each decoded to its sighting, counted', async () => {
    const sink = new CollectSink();
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    await send(h.address!.port, [
      `${ack(1)}\n${ack(2)}`,
      `${ack(3)}\r\n${ack(4)}\n\n${ack(5)}\n`,
      ack(6), // one message, as ever
    ]);
    await until(() => sink.lines.length >= 6, 5000, 'six messages');
    await sleep(50);
    expect(sink.texts()).toEqual([1, 2, 3, 4, 5, 6].map(ack));
    const decoder = new LineDecoder(await loadRegistry(), 'auto', 'UTC');
    const ips = sink.lines.flatMap((l) => decoder.decode(l.text, { receivedAt: l.receivedAt, source: l.source }).sightings.map((s) => `${s.ip} ${s.mac}`));
    expect(ips).toEqual([1, 2, 3, 4, 5, 6].map((k) => `10.1.2.${k} aa:bb:cc:dd:ee:${k.toString(16).padStart(2, '0')}`));
    const c = h.counters();
    expect(c.received).toBe(6);
    expect(c.events?.splitDatagram).toBe(2);
    expect(Object.entries(c.dropped).filter(([, n]) => n > 0)).toEqual([]);
  });

  it('lines without a PRI continue the message before (one message, as before); a later PRI line starts the next', async () => {
    const sink = new CollectSink();
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    const trace = '<11>Dec  7 10:00:00 app java[3]: failed\n\tat x.y(Z.java:1)\n  <not a pri> 12 <b>';
    // `<192>` is no PRI (over 191), nor `<1234>` (four digits): continuation lines too
    await send(h.address!.port, [trace, `${ack(7)}\n<192>x\n<1234>y\n${trace}`]);
    await until(() => sink.lines.length >= 3, 5000, 'three messages');
    await sleep(50);
    expect(sink.texts()).toEqual([trace, `${ack(7)}\n<192>x\n<1234>y`, trace]);
    const c = h.counters();
    expect(c.received).toBe(3);
    expect(c.events?.splitDatagram).toBe(1);
  });

  it('at most 64 messages a datagram: the rest stays in the 64th, counted (a datagram of 13,000 "<1>" lines is no relay\'s batch); the next datagram splits as before', async () => {
    const sink = new CollectSink();
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    const many = Array.from({ length: 200 }, (_, k) => ack(k % 250));
    await send(h.address!.port, [many.join('\n'), '<1>a\n'.repeat(13_000), `${ack(1)}\n${ack(2)}`]);
    await until(() => sink.lines.length >= 130, 5000, '64 + 64 + 2 messages');
    await sleep(50);
    const texts = sink.texts();
    expect(texts).toHaveLength(130);
    expect(texts.slice(0, 63)).toEqual(many.slice(0, 63));
    expect(texts[63]).toBe(many.slice(63).join('\n'));
    expect(texts[127]).toMatch(/^<1>a\n<1>a\n/);
    expect(texts.slice(128)).toEqual([ack(1), ack(2)]);
    const c = h.counters();
    expect(c.received).toBe(130);
    // (each message folded into a 64th: 200 - 64 and 13,000 - 64)
    expect(c.events?.splitCapped).toBe(200 - 64 + 13_000 - 64);
  });

  it('the 64-message cap with a sink that screens (as the daemon\'s): 64 messages, those past it counted once (the native thread\'s split was split again)', async () => {
    const sink = new ScreeningSink(Prefilter.of((await loadRegistry()).list())!.claims);
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    await send(h.address!.port, [Array.from({ length: 200 }, (_, k) => ack(k % 250)).join('\n')]);
    await until(() => sink.lines.length >= 64, 5000, '64 messages');
    await sleep(300);
    const c = h.counters();
    expect({ pushed: sink.lines.length, received: c.received, splitCapped: c.events?.splitCapped }).toEqual({ pushed: 64, received: 64, splitCapped: 136 });
  });

  it('a batched message that is no log line is dropped and counted as binary; the others of its datagram arrive', async () => {
    const sink = new CollectSink();
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    await send(h.address!.port, [Buffer.concat([Buffer.from(`${ack(8)}\n<134>`), Buffer.from([0x01, 0x02, 0x00, 0x41]), Buffer.from(`\n${ack(9)}`)])]);
    await until(() => sink.lines.length >= 2 && (h.counters().dropped.binary ?? 0) >= 1, 5000, 'two lines and a drop');
    expect(sink.texts()).toEqual([ack(8), ack(9)]);
    expect(h.counters().received).toBe(2);
    expect(h.counters().dropped.binary).toBe(1);
  });

  it('with the sink\'s claims, each message is screened on its own: the DHCP line behind a noise line arrives, the noise is counted', async () => {
    const sink = new ScreeningSink(Prefilter.of((await loadRegistry()).list())!.claims);
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    await send(h.address!.port, [`${noise(1)}\n${ack(10)}\n${noise(2)}`, `${ack(11)}\n${noise(3)}`]);
    await until(() => sink.lines.length >= 2 && sink.unclaimedCount >= 3, 5000, 'two lines pushed, three counted');
    await sleep(50);
    expect(sink.texts()).toEqual([ack(10), ack(11)]);
    expect(sink.unclaimedCount).toBe(3);
    const c = h.counters();
    expect(c.received).toBe(5);
    expect(c.events?.splitDatagram).toBe(2);
  });
});

describe('UDP datagram of two DHCPACK lines through the whole daemon', () => {
  it('both leases are stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-udp-multiline-'));
    const { config } = validateConfig({
      state: join(dir, 'state.db'),
      timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: 'udp://127.0.0.1:0' }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'r', cidrs: ['10.0.0.0/8'], appliances: ['a'] }],
      scanner: { type: 'dry-run' },
      http: { enabled: false },
    });
    const daemon = new Daemon({ config, log: silentLogger() });
    await daemon.start();
    try {
      const input = daemon.inputs[0];
      await send(input.address!.port, [`${ack(21)}\n${ack(22)}`]);
      await until(() => daemon.ingest.counters.sightings === 2, 10_000, 'two sightings');
      expect((await daemon.inventory.openBinding('10.1.2.21'))?.ip).toBe('10.1.2.21');
      expect((await daemon.inventory.openBinding('10.1.2.22'))?.ip).toBe('10.1.2.22');
      expect(input.counters().received).toBe(2);
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
