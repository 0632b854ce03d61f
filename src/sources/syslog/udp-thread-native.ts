/**
 * The receive thread's side of the native receiver (native/udp-recv): its own thread drains the
 * socket with recvmmsg and hands over batches already laid out as the main thread wants them
 * (bytes end to end, where each ends, senders, times; empty and too-large datagrams counted and
 * left out), so this thread only sorts them (udp-screen.ts: allow-list, and what no parser can
 * claim counted by sender) and posts the rest on. At most two batches are out unacknowledged;
 * meanwhile batches wait in the addon, which drops and counts datagrams beyond `hold` as
 * `backpressure` while it keeps draining the kernel buffer.
 */
import { nativeUdpError, type NativeUdpBatch, type NativeUdpReceiver, type loadNativeUdp } from './native-udp.js';
import { BatchScreen } from './udp-screen.js';
import type { FromUdpThread, UdpThreadCounters, UdpThreadData } from './udp-protocol.js';

type Post = (m: FromUdpThread, transfer?: ArrayBuffer[]) => void;
type Addon = Extract<ReturnType<typeof loadNativeUdp>, { addon: unknown }>['addon'];

const MAX_UNACKED = 2;
/** the addon's batches (256 KiB, or 5 ms of datagrams) that wait are merged into posts of up to this much */
const POST_BYTES = 1 << 20;

/** Receive with the addon; undefined (after posting `bindFailed`) when the socket could not be opened. */
export function receiveNative(addon: Addon, data: UdpThreadData, post: Post): { ack(): void; close(): void; counters(): UdpThreadCounters } | undefined {
  const screen = new BatchScreen({ allow: data.allow, claims: data.claims, format: data.format, invalidUtf8: data.invalidUtf8 });
  const mine = screen.counters;
  let postError = 0;
  let unacked = 0;
  let receiver: NativeUdpReceiver;

  const counters = (): UdpThreadCounters => {
    const c = receiver.counters();
    const dropped: Record<string, number> = { ...mine.dropped };
    const add = (reason: string, n: number) => {
      if (n > 0) dropped[reason] = (dropped[reason] ?? 0) + n;
    };
    add('empty', c.empty);
    add('tooLarge', c.tooLarge);
    add('backpressure', c.backpressure);
    add('error', c.error + postError);
    const mineDropped = Object.values(mine.dropped).reduce((x, y) => x + y, 0);
    const events: Record<string, number> = { ...mine.events };
    if (c.failures) events.receiveError = c.failures;
    return { received: c.received - mineDropped, dropped, events };
  };

  const postBatch = (b: NativeUdpBatch) => {
    const { kept, unclaimed } = screen.screen(b);
    if (!kept) {
      if (unclaimed.length) post({ type: 'unclaimed', unclaimed, counters: counters() });
      return;
    }
    post({ type: 'lines', ...kept, screened: true, unclaimed, counters: counters() }, [kept.buf]);
    unacked++;
  };

  /** batches from the addon to the main thread, at most MAX_UNACKED out unless `all` */
  const pump = (all = false) => {
    try {
      while (all || unacked < MAX_UNACKED) {
        const b = receiver.take(POST_BYTES);
        if (!b) return;
        postBatch(b);
      }
    } catch {
      postError++;
    }
  };

  try {
    receiver = addon.open({
      host: data.host, port: data.port, family: data.family, recvBufferBytes: data.recvBufferBytes || 0,
      maxMessageBytes: Math.min(data.maxMessageBytes || 65536, 65536), maxQueued: data.hold,
    }, () => pump());
  } catch (err) {
    const e = nativeUdpError(err, data.listen);
    post({ type: 'bindFailed', message: e.message, code: e.code });
    return undefined;
  }
  post({ type: 'bound', address: receiver.address, port: receiver.port, inode: receiver.inode >= 0 ? receiver.inode : undefined, granted: receiver.recvBufferBytes, receiver: 'native' });
  return {
    ack() {
      unacked--;
      pump();
    },
    close() {
      receiver.close(); // the thread has queued what it received
      pump(true);
    },
    counters,
  };
}
