/**
 * A TCP/TLS syslog input whose server lives in a receive thread (stream-thread.ts): this side
 * pushes the thread's batches of claimable lines to the sink and hands on its counts of the rest,
 * acknowledges each batch once the sink takes more (so a paused sink stops the flow, and the
 * thread pauses its connections), forwards reloads, and restarts the thread if it dies (senders
 * reconnect, as they do when a daemon restarts). Counters come from the thread, at most about
 * 100 ms old.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.js';
import { WORKER_YOUNG_MB, threadEntry } from '../../util/thread-entry.js';
import type { InputHandle, LineSink, SourceCounters, SyslogInputOptions } from '../types.js';
import type { ListenAddress } from './address.js';
import type { FromStreamThread, StreamThreadData, ToStreamThread } from './stream-protocol.js';
import type { UnclaimedCount } from './udp-screen.js';
import { addCounts } from './receive.js';

/** claimable lines the receive thread keeps while the main thread is not taking them, before it pauses its connections */
export const STREAM_THREAD_HOLD = 5_000;

const empty = (): SourceCounters => ({ received: 0, dropped: {}, refused: {}, events: {}, connections: 0 });

/** Undefined when there is no compiled thread entry (the caller listens on its own thread). */
export async function startStreamThread(addr: ListenAddress, opts: SyslogInputOptions, sink: LineSink, log: Logger): Promise<InputHandle | undefined> {
  const entry = threadEntry(import.meta.url, 'stream-thread');
  if (!entry) {
    log.warn({ listen: opts.listen }, 'receiveThread: no compiled stream receive thread (run npx tsc); receiving on the main thread');
    return undefined;
  }
  let name = `${addr.proto}:${addr.port}`;
  /** counters of threads that have exited (a restart starts from zero) */
  let base = empty();
  let last = empty();
  let bound: { address: string; port: number } | undefined;
  let closing = false;
  let worker!: Worker;
  let closed!: Promise<void>;
  let reloadId = 0;
  const reloads = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  /** the sink said stop and has not drained: batches taken meanwhile are acknowledged when it does */
  let stopped = false;
  let owed = 0;

  const report = (counts: UnclaimedCount[]) => {
    for (const u of counts) sink.unclaimed?.({ source: name, format: opts.format, ...u });
  };

  const spawn = (port: number): Promise<void> => new Promise((resolve, reject) => {
    const data: StreamThreadData = {
      addr: { ...addr, port }, opts: { ...opts, receiveThread: false }, hold: STREAM_THREAD_HOLD,
      claims: sink.unclaimed ? sink.claims?.(opts.format) : undefined, debug: log.isLevelEnabled('debug'),
    };
    const w = new Worker(entry, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
    worker = w;
    let settle: () => void;
    closed = new Promise((r) => (settle = r));
    // the thread running now (a drain registered before a restart acknowledges the new one's batches)
    const ack = () => worker.postMessage({ type: 'ack' } satisfies ToStreamThread);
    w.on('message', (m: FromStreamThread) => {
      switch (m.type) {
        case 'bound':
          bound = m;
          return resolve();
        case 'bindFailed':
          return reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        case 'log':
          return log[m.level]({ ...m.obj, input: name }, m.msg);
        case 'counters':
          last = m.counters;
          return;
        case 'unclaimed':
          last = m.counters;
          return report(m.unclaimed);
        case 'lines': {
          last = m.counters;
          report(m.unclaimed);
          let more = true;
          for (let i = 0; i < m.texts.length; i++) {
            more = sink.push({ text: m.texts[i], receivedAt: new Date(m.times[i]), source: name, sender: m.senders[m.senderIdx[i]], format: opts.format }) && more;
          }
          if (!more && !stopped) {
            // pause the thread's connections now, not when its own backlog fills
            stopped = true;
            worker.postMessage({ type: 'stop' } satisfies ToStreamThread);
            sink.onDrain(() => {
              stopped = false;
              for (; owed > 0; owed--) ack();
            });
          }
          if (stopped) owed++;
          else ack();
          return;
        }
        case 'reloaded': {
          const r = reloads.get(m.id);
          reloads.delete(m.id);
          return m.error === undefined ? r?.resolve() : r?.reject(new Error(m.error));
        }
        case 'closed':
          last = m.counters;
          return settle();
      }
    });
    w.on('error', (err) => log.error({ input: name, err: { message: err.message } }, 'the stream receive thread failed'));
    w.on('exit', (code) => {
      settle();
      for (const r of reloads.values()) r.reject(new Error('the stream receive thread exited'));
      reloads.clear();
      owed = 0; // a drain still to come acknowledges nothing to a thread that is gone
      if (closing || w !== worker || !bound) return;
      base = {
        received: base.received + last.received, dropped: addCounts(base.dropped, last.dropped), refused: addCounts(base.refused, last.refused),
        events: addCounts(base.events, { ...last.events, threadRestart: 1 }), connections: 0,
      };
      last = empty();
      log.error({ input: name, code }, 'the stream receive thread exited; its connections are closed; starting it again on the same port');
      spawn(bound.port).catch((err: Error) => log.error({ input: name, err: { message: err.message } }, 'the stream receive thread could not listen again'));
    });
  });

  try {
    await spawn(addr.port);
  } catch (err) {
    await worker.terminate(); // nothing bound: no restart
    throw err;
  }
  name = `${addr.proto}:${bound!.port}`;
  log.info({ input: name, address: bound!.address, receiveThread: true }, `syslog ${addr.proto.toUpperCase()} listening`);
  return {
    name,
    address: { host: bound!.address, port: bound!.port },
    counters(): SourceCounters {
      return {
        received: base.received + last.received, dropped: addCounts(base.dropped, last.dropped), refused: addCounts(base.refused, last.refused),
        connections: last.connections, events: addCounts(base.events, last.events),
      };
    },
    reload(): Promise<void> {
      if (addr.proto !== 'tls' || closing) return Promise.resolve();
      const id = ++reloadId;
      return new Promise((resolve, reject) => {
        reloads.set(id, { resolve, reject });
        worker.postMessage({ type: 'reload', id } satisfies ToStreamThread);
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      worker.postMessage({ type: 'close' } satisfies ToStreamThread);
      await closed; // the thread has handed over every line it had cut
      await worker.terminate();
    },
  };
}
