/**
 * UDP (and TCP) inputs whose sink offers the prefilter's claims (LineSink.claims, as the daemon's ingest
 * does): the lines no parser can claim go no further than the listener (the receive thread, or
 * the main thread), yet every one of them is counted, by sender; the lines a parser may claim
 * still arrive, in order. Then through the whole daemon: noise counted as decoded and
 * unrecognized, the sender fresh, the DHCP line among the noise a sighting.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { Prefilter } from '../src/parsers/prefilter.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startSyslogInput } from '../src/sources/index.js';
import type { InputHandle, SyslogInputOptions } from '../src/sources/types.js';
import { ScreeningSink } from './helpers/sink.js';
import { sleep, until } from './helpers/wait.js';
import { loadNativeUdp } from '../src/sources/syslog/native-udp.js';

const noise = (i: number) =>
  `<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,${i},0,DF,6,tcp,60,203.0.113.${i % 250},10.0.0.1,${1024 + i},443,0,S,123456,,64240,,mss`;
const dhcp = (k: number) => `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.0.1.${k} to 52:54:00:00:01:${k.toString(16).padStart(2, '0')} via eth0`;


async function send(port: number, lines: string[]): Promise<void> {
  const s = createSocket('udp4');
  for (let i = 0; i < lines.length; i++) {
    await new Promise<void>((r) => s.send(lines[i], port, '127.0.0.1', () => r()));
    if (i % 100 === 99) await sleep(2); // a small loopback buffer must not overflow
  }
  s.close();
}

const handles: InputHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});

const native = loadNativeUdp();
if ('reason' in native) console.log(`SKIP native UDP receiver tests: ${native.reason}`);
/** the native receiver's thread screens; with dgram the main thread does */
const udpModes = [
  ...('addon' in native ? [{ receiveThread: true, receiver: 'native' as const }] : []),
  { receiveThread: true, receiver: 'dgram' as const },
  { receiveThread: false, receiver: 'dgram' as const },
];

describe.each(udpModes)('UDP with the sink\'s claims (receiveThread $receiveThread, $receiver)', ({ receiveThread, receiver }) => {
  const opts = (extra: Partial<SyslogInputOptions> = {}): SyslogInputOptions => ({
    listen: 'udp://127.0.0.1:0', format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, udpRecvBufferBytes: 4 << 20, receiveThread,
    udpReceiver: receiver, ...extra,
  });

  it('pushes only the lines a parser may claim, in order, and counts every other line by sender', async () => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    const lines: string[] = [];
    const wanted: string[] = [];
    for (let i = 0; i < 600; i++) {
      if (i % 100 === 50) {
        wanted.push(dhcp(i / 100));
        lines.push(dhcp(i / 100));
      } else lines.push(noise(i));
    }
    // the tag of a relayed line is inside its message: claimable, as the decoder reads it
    const relayed = '<13>Nov 23 10:00:01 gw logger: dhcpd[9]: DHCPACK on 10.0.2.1 to 52:54:00:00:02:01 via eth0';
    lines.push(relayed);
    wanted.push(relayed);
    const t0 = Date.now();
    await send(h.address!.port, lines);
    await until(() => sink.lines.length === wanted.length && sink.unclaimedCount === lines.length - wanted.length, 5000, 'every line pushed or counted');
    expect(sink.texts()).toEqual(wanted);
    expect(new Set(sink.reports.map((r) => `${r.source} ${r.format} ${r.sender}`))).toEqual(new Set([`udp:${h.address!.port} auto 127.0.0.1`]));
    for (const r of sink.reports) expect(r.lastAt).toBeGreaterThanOrEqual(t0);
    const c = h.counters();
    expect(c.received).toBe(lines.length);
    expect(Object.entries(c.dropped).filter(([, n]) => n > 0)).toEqual([]);
  });

  it.runIf(receiveThread)('while the sink says stop, the thread keeps datagrams in several buffers and hands them all over, in order', async () => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    sink.blockAfter = 1;
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    // about 550 KB: more than two batch buffers (256 KiB each) wait in the thread
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? noise(i) : `${dhcp(i % 250)} ${'x'.repeat(60)} ${i}`));
    await send(h.address!.port, lines);
    await until(() => h.counters().received === lines.length, 5000, 'every datagram taken by the thread');
    expect(sink.lines.length).toBeLessThan(2000);
    sink.drain();
    await until(() => sink.lines.length === 2000 && sink.unclaimedCount === 1000, 5000, 'every line pushed or counted');
    expect(sink.texts()).toEqual(lines.filter((_, i) => i % 3 !== 0));
    expect(Object.entries(h.counters().dropped).filter(([, n]) => n > 0)).toEqual([]);
  });

  it.runIf(receiver === 'native')('native: while the sink says stop, the noise is still screened and counted; only the claimable lines wait', async () => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    sink.blockAfter = 1;
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    // three batches of claimable lines: the first is pushed and stops the sink, two more fill the posts allowed out
    for (let k = 0; k < 3; k++) {
      await send(h.address!.port, [dhcp(k)]);
      await sleep(30);
    }
    await send(h.address!.port, Array.from({ length: 500 }, (_, i) => noise(i)));
    await send(h.address!.port, [dhcp(3)]);
    await until(() => sink.unclaimedCount === 500, 5000, 'the noise counted while the sink says stop');
    expect(sink.lines.length).toBeLessThan(4);
    sink.drain();
    await until(() => sink.lines.length === 4, 5000, 'the claimable lines, once the sink takes more');
    expect(sink.texts()).toEqual([0, 1, 2, 3].map(dhcp));
    expect(Object.entries(h.counters().dropped).filter(([, n]) => n > 0)).toEqual([]);
  });

  it('a stream of noise alone is counted too; a fixed format pushes every line', async () => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    await send(h.address!.port, Array.from({ length: 50 }, (_, i) => noise(i)));
    await until(() => sink.unclaimedCount === 50, 5000, 'fifty noise lines counted');
    expect(sink.lines).toEqual([]);
    // format isc-dhcpd: the sink offers no claims, nothing is screened
    const fixed = new ScreeningSink(claims);
    const hf = await startSyslogInput(opts({ format: 'isc-dhcpd' }), fixed, silentLogger());
    handles.push(hf);
    await send(hf.address!.port, [noise(1), dhcp(1)]);
    await until(() => fixed.lines.length === 2, 5000, 'both lines pushed');
    expect(fixed.unclaimedCount).toBe(0);
  });
});

describe.each([false, true])('TCP with the sink\'s claims: the same screening (receiveThread %s)', (receiveThread) => {
  const opts = (extra: Partial<SyslogInputOptions> = {}): SyslogInputOptions => ({
    listen: 'tcp://127.0.0.1:0', format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, receiveThread, ...extra,
  });
  const sendTcp = (port: number, lines: string[]) => new Promise<void>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(lines.map((l) => `${l}\n`).join('')));
    s.on('close', () => resolve());
    s.on('error', reject);
  });

  it('pushes only the lines a parser may claim, in order, and counts every other line by sender; a fixed format pushes every line', async () => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 100 === 50 ? dhcp(i / 100) : noise(i)));
    const wanted = lines.filter((_, i) => i % 100 === 50);
    await sendTcp(h.address!.port, lines);
    await until(() => sink.lines.length === wanted.length && sink.unclaimedCount === lines.length - wanted.length, 5000, 'every line pushed or counted');
    expect(sink.texts()).toEqual(wanted);
    expect(new Set(sink.reports.map((r) => `${r.source} ${r.format} ${r.sender}`))).toEqual(new Set([`tcp:${h.address!.port} auto 127.0.0.1`]));
    await until(() => h.counters().received === lines.length, 2000, 'every line received'); // a receive thread's counters lag by up to 100 ms
    const fixed = new ScreeningSink(claims);
    const hf = await startSyslogInput(opts({ format: 'isc-dhcpd' }), fixed, silentLogger());
    handles.push(hf);
    await sendTcp(hf.address!.port, [noise(1), dhcp(1)]);
    await until(() => fixed.lines.length === 2, 5000, 'both lines pushed');
    expect(fixed.unclaimedCount).toBe(0);
  });

  it('40 connections at once, in chunks: each connection\'s claimable lines arrive in its order, every other line is counted', async () => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    const h = await startSyslogInput(opts(), sink, silentLogger());
    handles.push(h);
    const conns = 40;
    const perConn = 2_000;
    // connection c's claimable lines carry c and their rank (in the MAC), one in 20 lines
    const lineOf = (c: number, i: number) => (i % 20 === 7 ? `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.1.${c}.1 to 52:54:00:${c.toString(16).padStart(2, '0')}:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0` : noise(c * perConn + i));
    await Promise.all(Array.from({ length: conns }, (_, c) => new Promise<void>((resolve, reject) => {
      const s = connect(h.address!.port, '127.0.0.1', async () => {
        for (let i = 0; i < perConn; i += 250) {
          s.write(Array.from({ length: 250 }, (_, k) => `${lineOf(c, i + k)}\n`).join(''));
          await sleep(1);
        }
        s.end();
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    })));
    const claimable = conns * (perConn / 20);
    await until(() => sink.lines.length === claimable && sink.unclaimedCount === conns * perConn - claimable, 10_000, 'every line pushed or counted');
    for (let c = 0; c < conns; c++) {
      const mine = sink.texts().filter((t) => t.includes(`DHCPACK on 10.1.${c}.1 `));
      expect(mine).toEqual(Array.from({ length: perConn }, (_, i) => i).filter((i) => i % 20 === 7).map((i) => lineOf(c, i)));
    }
    await until(() => h.counters().received === conns * perConn, 2000, 'every line received');
  });
});

describe('UDP noise through the whole daemon', () => {
  it('counts the noise as decoded and unrecognized, keeps its sender fresh, and commits the DHCP line among it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-udp-unclaimed-'));
    const { config } = validateConfig({
      state: join(dir, 'state.db'),
      timezone: 'Europe/Berlin',
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
      const lines = [...Array.from({ length: 200 }, (_, i) => noise(i)), dhcp(7), ...Array.from({ length: 99 }, (_, i) => noise(1000 + i))];
      await send(input.address!.port, lines);
      await until(() => daemon.ingest.counters.lines === lines.length && daemon.ingest.counters.sightings === 1, 10_000, 'every line counted, one sighting');
      const unrecognized = daemon.ingest.decoderCounters().reduce((a, c) => a + c.unrecognized, 0);
      expect(unrecognized).toBe(299);
      expect(input.counters().received).toBe(300);
      expect(daemon.freshness.get(input.name)?.senders.has('127.0.0.1')).toBe(true);
      expect((await daemon.inventory.openBinding('10.0.1.7'))?.ip).toBe('10.0.1.7');
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
