/**
 * Syslog listeners: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425), each with an allow-list,
 * counters and, for streams, a connection cap, an idle timeout and backpressure. Each runs in its
 * receive thread (receiveThread, the default: udp-client.ts, stream-client.ts) or, without one,
 * here on the main thread (UDP below, streams in stream-server.ts).
 */
import { createSocket, type Socket as UdpSocket, type RemoteInfo } from 'node:dgram';
import type { Logger } from '../../log.js';
import type { InputHandle, LineSink, RawLine, SourceCounters, SyslogInputOptions } from '../types.js';
import { DatagramReader, UnclaimedTally, readUdpKernelDrops, udpSocketInode } from './receive.js';
import { startUdpThread } from './udp-client.js';
import { startStreamServer } from './stream-server.js';
import { startStreamThread } from './stream-client.js';
import { parseListen, type ListenAddress } from './address.js';
import { OnsightError } from '../../errors.js';

export { parseListen, type ListenAddress } from './address.js';

export async function startSyslogInput(opts: SyslogInputOptions, sink: LineSink, log: Logger): Promise<InputHandle> {
  const addr = parseListen(opts.listen);
  if (addr.proto === 'udp') return startUdp(addr, opts, sink, log);
  return startStream(addr, opts, sink, log);
}

/** TCP or TLS: in the stream receive thread (receiveThread, the default), else on this thread. */
async function startStream(addr: ListenAddress, opts: SyslogInputOptions, sink: LineSink, log: Logger): Promise<InputHandle> {
  if (opts.receiveThread) {
    const threaded = await startStreamThread(addr, opts, sink, log);
    if (threaded) return threaded;
  }
  const h = await startStreamServer(addr, opts, sink, log);
  log.info({ input: h.name, address: h.address?.host }, `syslog ${addr.proto.toUpperCase()} listening`);
  return h;
}

// ---------------------------------------------------------------------------------------------
// UDP

export { readUdpKernelDrops } from './receive.js';

/** How many datagrams we still hand to a sink that has said "stop" before dropping them. */
export const UDP_PAUSED_SLACK = 10_000;
/** and how many bytes of them (10,000 datagrams of 64 KiB would be 640 MB) */
export const UDP_PAUSED_SLACK_BYTES = 16 * 1024 * 1024;

async function startUdp(addr: ListenAddress, opts: SyslogInputOptions, sink: LineSink, log: Logger): Promise<InputHandle> {
  if (!opts.receiveThread && opts.udpReceiver === 'native') {
    throw new OnsightError('ONSIGHT_UDP_RECEIVER', `${opts.listen}: udpReceiver: native runs in the receive thread (receiveThread: true)`);
  }
  if (opts.receiveThread) {
    const threaded = await startUdpThread(addr, opts, sink, log);
    if (threaded) return threaded;
  }
  const family = addr.host.includes(':') ? 6 : 4;
  const reader = new DatagramReader(opts);
  const c = reader.counters;
  // lines no parser can claim are counted, not pushed (LineSink.claims); the counts go once per event-loop turn
  const tally = new UnclaimedTally(sink, opts.format);
  let reporting = false;
  const report = () => {
    reporting = false;
    tally.report(name);
  };
  const sock: UdpSocket = createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: opts.udpRecvBufferBytes || undefined });
  let paused = false;
  let pausedCount = 0;
  let pausedBytes = 0;
  let name = `udp:${addr.port}`;
  const onDrain = () => {
    paused = false;
    pausedCount = 0;
    pausedBytes = 0;
  };
  const onLine = (text: string, sender: string) => {
    if (tally.screened(text, sender, Date.now())) {
      c.received++;
      if (!reporting) setImmediate(report);
      reporting = true;
      return;
    }
    if (paused && (++pausedCount > UDP_PAUSED_SLACK || (pausedBytes += text.length) > UDP_PAUSED_SLACK_BYTES)) return c.drop('backpressure');
    c.received++;
    const line: RawLine = { text, receivedAt: new Date(), source: name, sender, format: opts.format };
    if (!sink.push(line) && !paused) {
      paused = true;
      sink.onDrain(onDrain);
    }
  };
  const onMessage = (msg: Buffer, rinfo: RemoteInfo) => {
    try {
      const got = reader.read(msg, rinfo.address);
      if (!got) return;
      for (const text of got.texts) onLine(text, got.sender);
    } catch (err) {
      c.drop('error');
      log.debug({ err, input: name }, 'udp message handling failed');
    }
  };
  sock.on('message', onMessage);
  sock.on('error', (err) => log.warn({ err, input: name }, 'udp socket error'));
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error) => reject(err);
    sock.once('error', onErr);
    sock.bind({ address: addr.host, port: addr.port, exclusive: true }, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
  const bound = sock.address();
  name = `udp:${bound.port}`;
  let granted: number | undefined;
  try {
    const got = sock.getRecvBufferSize();
    granted = got;
    if (opts.udpRecvBufferBytes && got < opts.udpRecvBufferBytes) {
      log.warn({ input: name, requested: opts.udpRecvBufferBytes, got }, 'UDP receive buffer smaller than asked for (raise net.core.rmem_max)');
    }
  } catch {
    /* not fatal */
  }
  const inode = udpSocketInode(sock);
  const baseDrops = readUdpKernelDrops(bound.port, family, inode) ?? 0;
  log.info({ input: name, address: bound.address, socketInode: inode }, 'syslog UDP listening');
  let closed = false;
  return {
    name,
    address: { host: bound.address, port: bound.port },
    counters(): SourceCounters {
      const k = closed ? undefined : readUdpKernelDrops(bound.port, family, inode);
      if (k !== undefined) c.dropped.kernel = Math.max(0, k - baseDrops);
      return { received: c.received, dropped: { ...c.dropped }, events: { ...c.events }, recvBufferBytes: granted, udpReceiver: 'dgram' };
    },
    async close() {
      if (closed) return;
      const k = readUdpKernelDrops(bound.port, family, inode);
      if (k !== undefined) c.dropped.kernel = Math.max(0, k - baseDrops);
      closed = true;
      await new Promise<void>((resolve) => sock.close(() => resolve()));
      tally.report(name);
    },
  };
}
