/**
 * The native UDP receiver (native/udp-recv) on real loopback sockets: it hands over exactly what
 * was sent (sizes up to the largest datagram, IPv4 and IPv6, many senders, each in order), counts
 * what it drops while JavaScript does not take batches, closes cleanly (thread joined, port free,
 * also when its worker thread is terminated), and throws coded errors for bad arguments. Then the
 * syslog input: `udpReceiver` picks native or dgram, and says which in its counters.
 * Skipped, with the reason printed, when the addon was not built.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { loadNativeUdp, type NativeUdpBatch, type NativeUdpReceiver } from '../src/sources/syslog/native-udp.js';
import { startSyslogInput } from '../src/sources/index.js';
import type { InputHandle, SyslogInputOptions } from '../src/sources/types.js';
import { CollectSink, ScreeningSink } from './helpers/sink.js';
import { Prefilter } from '../src/parsers/prefilter.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { sleep, until } from './helpers/wait.js';

const native = loadNativeUdp();
const addon = 'addon' in native ? native.addon : undefined;
if (!addon) console.log(`SKIP native UDP receiver tests: ${'reason' in native ? native.reason : ''}`);

const open: NativeUdpReceiver[] = [];
const clients: Socket[] = [];
const handles: InputHandle[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) r.close();
  for (const c of clients.splice(0)) c.close();
  for (const h of handles.splice(0)) await h.close();
});

/** a receiver that gathers every batch it is told of */
function receiver(o: { host?: string; family?: 4 | 6; maxQueued?: number; maxQueuedBytes?: number; flushMs?: number; take?: boolean } = {}) {
  const batches: NativeUdpBatch[] = [];
  let take = o.take ?? true;
  const takeAll = () => {
    for (let b = r.take(); b; b = r.take()) batches.push(b);
  };
  const r = addon!.open({ host: o.host ?? '127.0.0.1', port: 0, family: o.family ?? 4, recvBufferBytes: 8 << 20, maxQueued: o.maxQueued, maxQueuedBytes: o.maxQueuedBytes, flushMs: o.flushMs }, () => {
    if (take) takeAll();
  });
  open.push(r);
  /** every datagram so far: [sender, bytes] */
  const datagrams = () => batches.flatMap((b) => [...b.ends].map((end, i) => [b.senders[b.senderIdx[i]], Buffer.from(b.buf, i ? b.ends[i - 1] : 0, end - (i ? b.ends[i - 1] : 0))] as const));
  const takeNow = () => {
    take = true;
    takeAll();
  };
  return { r, batches, datagrams, takeNow };
}

async function client(type: 'udp4' | 'udp6', host: string): Promise<Socket> {
  const s = createSocket(type);
  clients.push(s);
  await new Promise<void>((resolve) => s.bind(0, host, () => resolve()));
  return s;
}

const send = (s: Socket, msg: Buffer | string, port: number, host: string) => new Promise<void>((resolve, reject) => s.send(msg, port, host, (err) => (err ? reject(err) : resolve())));

/** the receive threads alive in this process (named udp-recv by the addon; other threads come and go) */
const threads = () => readdirSync('/proc/self/task').filter((t) => {
  try {
    return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === 'udp-recv';
  } catch {
    return false; // ended while we looked
  }
}).length;

const noise = (i: number) => `<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,${i},0,DF,6,tcp,60,203.0.113.${i % 250},10.0.0.1,${1024 + i},443,0,S`;
const dhcp = (k: number) => `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.0.1.${k % 250} to 52:54:00:00:01:${(k % 250).toString(16).padStart(2, '0')} via eth0 #${k}`;


describe.runIf(addon)('native UDP receiver (native/udp-recv)', () => {
  it('hands over exactly what was sent: every size up to the largest IPv4 datagram, trailing newlines trimmed', async () => {
    const { r, datagrams } = receiver();
    const s = await client('udp4', '127.0.0.1');
    const sizes = [1, 2, 100, 1400, 1500, 9000, 32768, 65000, 65507];
    const sent = sizes.map((n, k) => Buffer.alloc(n, 0x41 + k));
    for (const m of sent) await send(s, m, r.port, '127.0.0.1');
    await send(s, 'with a newline\r\n', r.port, '127.0.0.1');
    await until(() => datagrams().length === sent.length + 1, 5000, 'every datagram');
    expect(datagrams().map(([, b]) => b.length)).toEqual([...sizes, 14]);
    expect(datagrams().slice(0, -1).every(([, b], i) => b.equals(sent[i]))).toBe(true);
    expect(datagrams().at(-1)![1].toString()).toBe('with a newline');
    expect(datagrams().every(([from]) => from === '127.0.0.1')).toBe(true);
    expect(r.counters()).toMatchObject({ received: sent.length + 1, backpressure: 0, empty: 0, tooLarge: 0, error: 0, queued: 0 });
  });

  it('IPv6 loopback, up to the largest IPv6 datagram; IPv4 senders on a dual-stack socket come out as IPv4', async () => {
    let rx: ReturnType<typeof receiver>;
    try {
      rx = receiver({ host: '::', family: 6 });
    } catch (err) {
      console.log(`SKIP IPv6: ${(err as Error).message}`);
      return;
    }
    const { r, datagrams } = rx;
    expect(r.family).toBe(6);
    const s6 = await client('udp6', '::1');
    const s4 = await client('udp4', '127.0.0.1');
    await send(s6, Buffer.alloc(65527, 0x36), r.port, '::1');
    await send(s6, 'six', r.port, '::1');
    await send(s4, 'four', r.port, '127.0.0.1');
    await until(() => datagrams().length === 3, 5000, 'three datagrams');
    expect(datagrams().map(([from, b]) => `${from} ${b.length}`)).toEqual(['::1 65527', '::1 3', '127.0.0.1 4']);
  });

  it('many senders at once: every datagram, each sender\'s in the order it sent them', async () => {
    const { r, datagrams } = receiver();
    const senders = await Promise.all(Array.from({ length: 80 }, (_, k) => client('udp4', `127.0.0.${k + 1}`)));
    const per = 200;
    for (let i = 0; i < per; i++) {
      await Promise.all(senders.map((s, k) => send(s, `sender ${k} message ${i}`, r.port, '127.0.0.1')));
    }
    await until(() => datagrams().length === senders.length * per, 10_000, 'every datagram');
    const bySender = new Map<string, number[]>();
    for (const [from, b] of datagrams()) {
      const [, k, , i] = b.toString().split(' ');
      expect(from).toBe(`127.0.0.${Number(k) + 1}`);
      bySender.set(from, [...(bySender.get(from) ?? []), Number(i)]);
    }
    expect(bySender.size).toBe(senders.length);
    for (const order of bySender.values()) expect(order).toEqual([...Array(per).keys()]);
    expect(r.counters().backpressure).toBe(0);
  });

  it('counts what it drops while JavaScript takes nothing, and keeps the oldest, in order', async () => {
    const { r, datagrams, takeNow } = receiver({ maxQueued: 100, take: false });
    const s = await client('udp4', '127.0.0.1');
    const n = 1000;
    for (let i = 0; i < n; i++) {
      await send(s, `message ${i}`, r.port, '127.0.0.1');
      if (i % 100 === 99) await sleep(2);
    }
    await until(() => r.counters().received + r.counters().backpressure === n, 5000, 'every datagram kept or counted');
    expect(r.counters()).toMatchObject({ received: 100, backpressure: n - 100, queued: 100 });
    takeNow();
    expect(datagrams().length).toBe(100);
    await send(s, 'one more', r.port, '127.0.0.1'); // room again: kept, and taken on its notice
    await until(() => datagrams().length === 101, 5000, 'the kept datagrams taken');
    expect(datagrams().map(([, b]) => b.toString())).toEqual([...Array.from({ length: 100 }, (_, i) => `message ${i}`), 'one more']);
    expect(r.counters()).toMatchObject({ received: 101, backpressure: n - 100, queued: 0 });
  });

  it('bounds the memory its waiting batches hold, not only their datagrams: a trickle of one datagram a batch stops at maxQueuedBytes', async () => {
    // each batch holds its arrays and 256 KiB of bytes, whatever it carries: 4 MiB is room for about ten
    const { r, datagrams, takeNow } = receiver({ maxQueued: 100_000, maxQueuedBytes: 4 << 20, flushMs: 0, take: false });
    const s = await client('udp4', '127.0.0.1');
    const n = 60;
    for (let i = 0; i < n; i++) {
      await send(s, `trickle ${i}`, r.port, '127.0.0.1');
      await sleep(3); // the receive thread flushes each datagram in a batch of its own
    }
    await until(() => r.counters().received + r.counters().backpressure === n, 5000, 'every datagram kept or counted');
    const c = r.counters();
    expect(c.backpressure).toBeGreaterThan(0);
    expect(c.received).toBeGreaterThanOrEqual(5);
    // full: another batch (about 390 KiB) would not fit (the count, 100,000, is far off)
    expect(c.queuedBytes).toBeLessThanOrEqual(4 << 20);
    expect(c.queuedBytes).toBeGreaterThan((4 << 20) - 512 * 1024);
    takeNow();
    expect(datagrams().map(([, b]) => b.toString())).toEqual(Array.from({ length: c.received }, (_, i) => `trickle ${i}`)); // the oldest kept
    expect(r.counters()).toMatchObject({ queued: 0, queuedBytes: 0 });
  });

  it('counts empty datagrams and those over maxMessageBytes without handing them over', async () => {
    const batches: NativeUdpBatch[] = [];
    const r = addon!.open({ host: '127.0.0.1', port: 0, family: 4, maxMessageBytes: 100 }, () => {
      for (let b = r.take(); b; b = r.take()) batches.push(b);
    });
    open.push(r);
    const s = await client('udp4', '127.0.0.1');
    for (const m of ['\n', '\r\n\0', 'x'.repeat(101), 'x'.repeat(100), 'kept']) await send(s, m, r.port, '127.0.0.1');
    await until(() => batches.reduce((n, b) => n + b.ends.length, 0) === 2, 5000, 'two datagrams');
    expect(r.counters()).toMatchObject({ received: 2, empty: 2, tooLarge: 1 });
  });

  it('datagrams the kernel holds when close() is called are taken too (a stop lost those sent just before it)', async () => {
    const s = await client('udp4', '127.0.0.1');
    let sent = 0, got = 0;
    for (let round = 0; round < 50; round++) {
      const r = addon!.open({ host: '127.0.0.1', port: 0, family: 4 }, () => undefined);
      for (let i = 0; i < 5; i++) await send(s, `m${round}-${i}`, r.port, '127.0.0.1');
      sent += 5;
      r.close();
      for (let b = r.take(1 << 20); b; b = r.take(1 << 20)) got += b.ends.length;
    }
    expect(got).toBe(sent);
  });

  it('closes cleanly: the thread ends, the port is free, queued batches can still be taken, close twice is harmless', async () => {
    const before = threads();
    const r = addon!.open({ host: '127.0.0.1', port: 0, family: 4 }, () => undefined);
    expect(threads()).toBe(before + 1);
    const s = await client('udp4', '127.0.0.1');
    for (let i = 0; i < 10; i++) await send(s, `m${i}`, r.port, '127.0.0.1');
    await until(() => r.counters().received === 10, 5000, 'ten datagrams');
    r.close();
    r.close();
    expect(threads()).toBe(before);
    const b = r.take(1 << 20);
    expect(b && b.ends.length).toBe(10);
    expect(r.take()).toBeUndefined();
    // the same port binds again: the socket is closed
    const again = addon!.open({ host: '127.0.0.1', port: r.port, family: 4 }, () => undefined);
    expect(again.port).toBe(r.port);
    again.close();
    // many opens and closes leave no descriptor and no thread behind
    const fds = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 200; i++) addon!.open({ host: '127.0.0.1', port: 0, family: 4 }, () => undefined).close();
    expect(readdirSync('/proc/self/fd').length).toBe(fds);
    expect(threads()).toBe(before);
  });

  it('a worker thread that ends without close() leaves no thread and no socket behind', async () => {
    const before = threads();
    const path = (await import('node:url')).fileURLToPath(new URL('../native/udp-recv/build/Release/udp_recv.node', import.meta.url));
    const w = new Worker(`const { parentPort } = require('node:worker_threads');
      const r = require(${JSON.stringify(path)}).open({ host: '127.0.0.1', port: 0, family: 4 }, () => {});
      parentPort.postMessage(r.port);`, { eval: true });
    const port = await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    await until(() => threads() === before, 5000, 'the worker and the receive thread gone');
    const again = addon!.open({ host: '127.0.0.1', port, family: 4 }, () => undefined);
    again.close();
  });

  it('bad arguments and a port in use are errors with stable codes, never a crash', () => {
    const bad: unknown[][] = [[], [{}], [{ host: '127.0.0.1', port: 0 }], [{ host: '', port: 0 }, () => 0], [{ host: '127.0.0.1', port: 70000 }, () => 0],
      [{ host: '127.0.0.1', port: 1.5 }, () => 0], [{ host: '127.0.0.1', port: 0, family: 5 }, () => 0], [{ host: 42, port: 0 }, () => 0],
      [{ host: '127.0.0.1', port: 0, maxQueued: -1 }, () => 0], [{ host: '127.0.0.1', port: 0, recvBufferBytes: 'big' }, () => 0]];
    const call = addon!.open as unknown as (...a: unknown[]) => unknown;
    for (const args of bad) expect(() => call(...args), JSON.stringify(args)).toThrow(expect.objectContaining({ code: 'UDPRECV_BAD_ARGUMENT' }));
    expect(() => call({ host: 'no such host.invalid', port: 0 }, () => 0)).toThrow(expect.objectContaining({ code: 'UDPRECV_ADDRESS' }));
    const r = addon!.open({ host: '127.0.0.1', port: 0, family: 4 }, () => undefined);
    try {
      expect(() => addon!.open({ host: '127.0.0.1', port: r.port, family: 4 }, () => undefined)).toThrow(expect.objectContaining({ code: 'UDPRECV_BIND', errno: 98, syscall: 'bind' }));
    } finally {
      r.close();
    }
    const take = r.take as unknown as (this: unknown) => unknown;
    expect(() => take.call({})).toThrow(expect.objectContaining({ code: 'UDPRECV_BAD_ARGUMENT' }));
  });
});

describe('syslog UDP input: udpReceiver', () => {
  const opts = (udpReceiver: SyslogInputOptions['udpReceiver'], listen = 'udp://127.0.0.1:0'): SyslogInputOptions => ({
    listen, format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, udpRecvBufferBytes: 1 << 20, receiveThread: true, udpReceiver,
  });

  it.each([['auto', addon ? 'native' : 'dgram'], ['dgram', 'dgram'], ...(addon ? [['native', 'native']] : [])])('udpReceiver %s receives with %s and says so', async (choice, kind) => {
    const sink = new CollectSink();
    const h = await startSyslogInput(opts(choice as SyslogInputOptions['udpReceiver']), sink, silentLogger());
    handles.push(h);
    expect(h.counters().udpReceiver).toBe(kind);
    const s = await client('udp4', '127.0.0.1');
    for (let i = 0; i < 50; i++) await send(s, `<13>Nov 23 10:00:00 host app: message ${i}\n`, h.address!.port, '127.0.0.1');
    await until(() => sink.lines.length === 50, 5000, 'fifty lines');
    expect(sink.texts()).toEqual(Array.from({ length: 50 }, (_, i) => `<13>Nov 23 10:00:00 host app: message ${i}`));
    expect(h.counters().received).toBe(50);
  });

  it.each([...(addon ? ['native'] : []), 'dgram'])('%s: allowed and refused senders in one batch, noise among the lines: every datagram pushed, counted unclaimed, or dropped as notAllowed/binary', async (choice) => {
    const claims = Prefilter.of((await loadRegistry()).list())!.claims;
    const sink = new ScreeningSink(claims);
    const h = await startSyslogInput({ ...opts(choice as SyslogInputOptions['udpReceiver']), allow: ['127.0.0.1/32'] }, sink, silentLogger());
    handles.push(h);
    const ok = await client('udp4', '127.0.0.1');
    const refused = await client('udp4', '127.0.0.2');
    const wanted: string[] = [];
    for (let i = 0; i < 300; i++) {
      const line = i % 10 === 0 ? dhcp(i) : noise(i);
      if (i % 10 === 0) wanted.push(line);
      await send(ok, line, h.address!.port, '127.0.0.1');
      await send(refused, dhcp(i), h.address!.port, '127.0.0.1');
      if (i % 50 === 0) await send(ok, Buffer.from([0x3c, 0x31, 0x33, 0x3e, 0x01, 0x02]), h.address!.port, '127.0.0.1'); // binary: dropped
    }
    await until(() => sink.lines.length === wanted.length && sink.unclaimedCount === 270, 5000, 'every line pushed or counted');
    expect(sink.texts()).toEqual(wanted);
    expect(new Set(sink.reports.map((r) => r.sender))).toEqual(new Set(['127.0.0.1']));
    await until(() => h.counters().dropped.notAllowed === 300, 2000, 'the refused sender counted');
    const c = h.counters();
    expect(c.dropped).toMatchObject({ notAllowed: 300, binary: 6 });
    expect(c.received).toBe(300);
  });

  it.runIf(addon)('native: a port in use is ONSIGHT_LISTEN; udpReceiver native needs the receive thread', async () => {
    const sink = new CollectSink();
    const h = await startSyslogInput(opts('native'), sink, silentLogger());
    handles.push(h);
    await expect(startSyslogInput(opts('native', `udp://127.0.0.1:${h.address!.port}`), sink, silentLogger())).rejects.toMatchObject({ code: 'ONSIGHT_LISTEN' });
    await expect(startSyslogInput({ ...opts('native'), receiveThread: false }, sink, silentLogger())).rejects.toMatchObject({ code: 'ONSIGHT_UDP_RECEIVER' });
  });
});
