/**
 * The receive thread's side of the native receiver (native/udp-recv): its own thread drains the
 * socket with recvmmsg and hands over batches already laid out as the main thread wants them
 * (bytes end to end, where each ends, senders, times; empty and too-large datagrams counted and
 * left out), so this thread only applies the allow-list per sender and posts them on. At most
 * two batches are out unacknowledged; meanwhile batches wait in the addon, which drops and counts
 * datagrams beyond `hold` as `backpressure` while it keeps draining the kernel buffer.
 */
import { SenderCache, makeAllow } from './receive.js';
import { nativeUdpError, type NativeUdpBatch, type NativeUdpReceiver, type loadNativeUdp } from './native-udp.js';
import type { FromUdpThread, UdpThreadCounters, UdpThreadData } from './udp-protocol.js';

type Post = (m: FromUdpThread, transfer?: ArrayBuffer[]) => void;
type Addon = Extract<ReturnType<typeof loadNativeUdp>, { addon: unknown }>['addon'];

const MAX_UNACKED = 2;
/** the addon's batches (256 KiB, or 5 ms of datagrams) that wait are merged into posts of up to this much */
const POST_BYTES = 1 << 20;

/** The batch without the datagrams of senders the allow-list refuses (counted); undefined when none is left. */
function allowedOnly(b: NativeUdpBatch, allowed: boolean[], dropped: { n: number }): NativeUdpBatch | undefined {
  const src = new Uint8Array(b.buf, 0, b.bytes);
  const keep: number[] = [];
  for (let i = 0; i < b.ends.length; i++) if (allowed[b.senderIdx[i]]) keep.push(i);
  dropped.n += b.ends.length - keep.length;
  if (!keep.length) return undefined;
  const bytes = keep.reduce((n, i) => n + b.ends[i] - (i ? b.ends[i - 1] : 0), 0);
  const buf = new Uint8Array(bytes);
  const ends = new Uint32Array(keep.length);
  const senderIdx = new Uint32Array(keep.length);
  const times = new Float64Array(keep.length);
  let used = 0;
  keep.forEach((i, k) => {
    const start = i ? b.ends[i - 1] : 0;
    buf.set(src.subarray(start, b.ends[i]), used);
    used += b.ends[i] - start;
    ends[k] = used;
    senderIdx[k] = b.senderIdx[i];
    times[k] = b.times[i];
  });
  return { buf: buf.buffer, bytes, ends, senderIdx, times, senders: b.senders };
}

/** Receive with the addon; undefined (after posting `bindFailed`) when the socket could not be opened. */
export function receiveNative(addon: Addon, data: UdpThreadData, post: Post): { ack(): void; close(): void; counters(): UdpThreadCounters } | undefined {
  const senders = new SenderCache(makeAllow(data.allow));
  const notAllowed = { n: 0 };
  let postError = 0;
  let unacked = 0;
  let receiver: NativeUdpReceiver;

  const counters = (): UdpThreadCounters => {
    const c = receiver.counters();
    const dropped: Record<string, number> = {};
    const add = (reason: string, n: number) => {
      if (n > 0) dropped[reason] = n;
    };
    add('notAllowed', notAllowed.n);
    add('empty', c.empty);
    add('tooLarge', c.tooLarge);
    add('backpressure', c.backpressure);
    add('error', c.error + postError);
    return { received: c.received - notAllowed.n, dropped, events: {} };
  };

  const postBatch = (b: NativeUdpBatch) => {
    const allowed: boolean[] = [];
    let all = true;
    b.senders = b.senders.map((raw, i) => {
      const [sender, ok] = senders.get(raw);
      allowed[i] = ok;
      all &&= ok;
      return sender;
    });
    const out = all ? b : allowedOnly(b, allowed, notAllowed);
    if (!out) return;
    post({ type: 'lines', ...out, counters: counters() }, [out.buf]);
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
