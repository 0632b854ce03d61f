/**
 * A UDP syslog input whose socket lives in a receive thread (udp-thread.ts): this side turns the
 * thread's batches of datagrams into lines (dropping and counting what is not a log line),
 * counts those no parser can claim (UnclaimedTally) and pushes the others to the sink,
 * acknowledges each batch once the sink takes more (so a paused sink stops the flow and the
 * thread holds, then drops and counts), and restarts the thread if it dies.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.js';
import { threadEntry } from '../../util/thread-entry.js';
import type { InputHandle, LineSink, SourceCounters, SyslogInputOptions } from '../types.js';
import { Counters, DatagramSplitter, UnclaimedTally, addCounts, datagramText, readUdpKernelDrops } from './receive.js';
import type { FromUdpThread, ToUdpThread, UdpReceiverKind, UdpThreadCounters, UdpThreadData } from './udp-protocol.js';
import { OnsightError, type ErrorCode } from '../../errors.js';
import type { UnclaimedCount } from './udp-screen.js';

/** datagrams the receive thread keeps while the main thread is busy: 0.5 s at 200k msg/s (about 20 MB) */
export const UDP_THREAD_HOLD = 100_000;
/** and at most this many bytes of them: 100,000 datagrams of 64 KiB would be 6 GB */
export const UDP_THREAD_HOLD_BYTES = 64 * 1024 * 1024;

interface Address {
  host: string;
  port: number;
}

/** the fallback to dgram is said once per process, not once per input or thread restart */
let saidNativeUnavailable = false;

/** Undefined when there is no compiled thread entry (the caller listens in-thread). */
export async function startUdpThread(addr: Address, opts: SyslogInputOptions, sink: LineSink, log: Logger): Promise<InputHandle | undefined> {
  const entry = threadEntry(import.meta.url, 'udp-thread');
  if (!entry) {
    log.warn({ listen: opts.listen }, 'receiveThread: no compiled UDP receive thread (run npx tsc); receiving on the main thread');
    return undefined;
  }
  const family: 4 | 6 = addr.host.includes(':') ? 6 : 4;
  let name = `udp:${addr.port}`;
  /** counters of threads that have exited (a restart starts from zero) */
  let base: UdpThreadCounters = { received: 0, dropped: {}, events: {} };
  let last: UdpThreadCounters = { received: 0, dropped: {}, events: {} };
  let bound: { address: string; port: number; inode?: number; granted?: number; receiver: UdpReceiverKind; nativeUnavailable?: string } | undefined;
  let closing = false;
  let worker!: Worker;
  let closed!: Promise<void>;
  /** what happens on this thread: datagrams that are no log line (binary), not UTF-8; `received`: the messages of split datagrams past their first */
  const mine = new Counters();
  const tally = new UnclaimedTally(sink, opts.format);
  /** counts the native receiver's thread made (it screens; the dgram one leaves that to this side) */
  const reportUnclaimed = (counts: UnclaimedCount[]) => {
    for (const u of counts) sink.unclaimed?.({ source: name, format: opts.format, ...u });
  };

  const spawn = (port: number): Promise<void> => new Promise((resolve, reject) => {
    const data: UdpThreadData = {
      host: addr.host, port, family, recvBufferBytes: opts.udpRecvBufferBytes, allow: opts.allow,
      maxMessageBytes: opts.maxMessageBytes || 65536, invalidUtf8: opts.invalidUtf8, hold: UDP_THREAD_HOLD, holdBytes: UDP_THREAD_HOLD_BYTES,
      listen: opts.listen, receiver: opts.udpReceiver ?? 'auto', format: opts.format,
      claims: sink.unclaimed ? sink.claims?.(opts.format) : undefined,
    };
    const w = new Worker(entry, { workerData: data });
    worker = w;
    let settle: () => void;
    closed = new Promise((r) => (settle = r));
    const ack = (buf: ArrayBuffer) => w.postMessage({ type: 'ack', buf } satisfies ToUdpThread, [buf]);
    w.on('message', (m: FromUdpThread) => {
      switch (m.type) {
        case 'bound':
          bound = m;
          return resolve();
        case 'bindFailed':
          return reject(m.code ? new OnsightError(m.code as ErrorCode, m.message) : new Error(m.message));
        case 'error':
          return log.warn({ input: name, err: { message: m.message } }, 'udp socket error');
        case 'counters':
          last = m.counters;
          return;
        case 'unclaimed':
          last = m.counters;
          return reportUnclaimed(m.unclaimed);
        case 'lines': {
          last = m.counters;
          const buf = Buffer.from(m.buf, 0, m.bytes);
          let more = true;
          const line = (i: number, start: number, end: number) => {
            const text = datagramText(buf, start, end, mine, opts.invalidUtf8);
            if (text === undefined) return;
            const sender = m.senders[m.senderIdx[i]];
            if (!m.screened && tally.screened(text, sender, m.times[i])) return;
            more = sink.push({ text, receivedAt: new Date(m.times[i]), source: name, sender, format: opts.format }) && more;
          };
          // (a batch the native thread screened comes split already: `split`, below)
          const splitter = new DatagramSplitter(buf);
          let start = 0;
          for (let i = 0; i < m.ends.length; i++) {
            const end = m.ends[i];
            // (the thread split it already: its last message may still hold lines past the cap, not to be split again)
            const cuts = m.split ? undefined : splitter.split(start, end, mine);
            if (!cuts) line(i, start, end);
            else {
              mine.received += cuts.length / 2 - 1; // the thread counted the datagram once
              for (let k = 0; k < cuts.length; k += 2) line(i, cuts[k], cuts[k + 1]);
            }
            start = end;
          }
          tally.report(name);
          if (m.unclaimed) reportUnclaimed(m.unclaimed);
          if (more) ack(m.buf);
          else sink.onDrain(() => ack(m.buf));
          return;
        }
        case 'closed':
          last = m.counters;
          return settle();
      }
    });
    w.on('error', (err) => log.error({ input: name, err: { message: err.message } }, 'the UDP receive thread failed'));
    w.on('exit', (code) => {
      settle();
      if (closing || w !== worker || !bound) return;
      base = { received: base.received + last.received, dropped: addCounts(base.dropped, last.dropped), events: addCounts(base.events, { ...last.events, threadRestart: 1 }) };
      last = { received: 0, dropped: {}, events: {} };
      log.error({ input: name, code }, 'the UDP receive thread exited; starting it again on the same port');
      spawn(bound.port).catch((err: Error) => log.error({ input: name, err: { message: err.message } }, 'the UDP receive thread could not listen again'));
    });
  });

  try {
    await spawn(addr.port);
  } catch (err) {
    await worker.terminate(); // nothing bound: no restart (a failed restart keeps its thread, as before)
    throw err;
  }
  name = `udp:${bound!.port}`;
  const baseDrops = readUdpKernelDrops(bound!.port, family, bound!.inode) ?? 0;
  if (opts.udpRecvBufferBytes && bound!.granted !== undefined && bound!.granted < opts.udpRecvBufferBytes) {
    log.warn({ input: name, requested: opts.udpRecvBufferBytes, got: bound!.granted }, 'UDP receive buffer smaller than asked for (raise net.core.rmem_max)');
  }
  if (bound!.nativeUnavailable && !saidNativeUnavailable) {
    saidNativeUnavailable = true;
    log.warn({ input: name, reason: bound!.nativeUnavailable }, `native UDP receiver not available (${bound!.nativeUnavailable}); receiving with node dgram`);
  }
  log.info({ input: name, address: bound!.address, socketInode: bound!.inode, receiveThread: true, receiver: bound!.receiver }, 'syslog UDP listening');
  /** undefined when /proc/net/udp cannot be read (then no kernel figure is reported) */
  let kernel: number | undefined;
  const readKernel = () => {
    const k = readUdpKernelDrops(bound!.port, family, bound!.inode);
    if (k !== undefined) kernel = Math.max(0, k - baseDrops);
  };
  return {
    name,
    address: { host: bound!.address, port: bound!.port },
    counters(): SourceCounters {
      if (!closing) readKernel();
      const dropped = addCounts(addCounts(base.dropped, last.dropped), mine.dropped);
      if (kernel !== undefined) dropped.kernel = kernel;
      // the thread counted every datagram it took; those found here to be no log line were dropped, not received
      const notLines = Object.values(mine.dropped).reduce((a, b) => a + b, 0);
      return { received: base.received + last.received + mine.received - notLines, dropped, events: addCounts(addCounts(base.events, last.events), mine.events), recvBufferBytes: bound!.granted, udpReceiver: bound!.receiver };
    },
    async close() {
      if (closing) return;
      readKernel();
      closing = true;
      worker.postMessage({ type: 'close' } satisfies ToUdpThread);
      await closed; // the thread has handed over every line it held
      await worker.terminate();
    },
  };
}
