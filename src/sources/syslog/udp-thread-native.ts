/**
 * The receive thread's side of the native receiver (native/udp-recv): its own thread drains the
 * socket with recvmmsg and hands over batches already laid out as the main thread wants them
 * (bytes end to end, where each ends, senders, times; empty and too-large datagrams counted and
 * left out), so this thread only sorts them (udp-screen.ts: allow-list, and what no parser can
 * claim counted by sender) and posts the rest on. It takes every batch as it comes, so a main
 * thread that is slow to acknowledge holds up only the lines it is to get, not the noise: at most
 * two posts are out unacknowledged, the lines for the next wait here (up to `hold`, then they are
 * dropped and counted as `backpressure`), the counts of unclaimed lines go at once. Should this
 * thread itself fall behind, batches wait in the addon (which drops and counts datagrams beyond
 * `hold` the same way while it keeps draining the kernel buffer), and past SPILL_QUEUED some go to
 * the main thread unscreened, for it to screen as it does with dgram.
 */
import { nativeUdpError, type NativeUdpBatch, type NativeUdpReceiver, type loadNativeUdp } from './native-udp.js';
import { BatchScreen, type UnclaimedCount } from './udp-screen.js';
import { concatBatches } from './udp-batch.js';
import type { FromUdpThread, UdpThreadCounters, UdpThreadData } from './udp-protocol.js';

type Post = (m: FromUdpThread, transfer?: ArrayBuffer[]) => void;
type Addon = Extract<ReturnType<typeof loadNativeUdp>, { addon: unknown }>['addon'];

const MAX_UNACKED = 2;
/** the addon's batches (256 KiB, or 5 ms of datagrams) that wait are merged into posts of up to this much */
const POST_BYTES = 1 << 20;
/**
 * datagrams waiting in the addon beyond which this thread hands batches to the main thread
 * unscreened (while fewer than this many lines wait for it), so both screen until it has caught up
 */
const SPILL_QUEUED = 20_000;
/**
 * memory the addon's waiting batches may hold: each holds about 390 KiB whatever it carries, so a
 * trickle of one datagram a batch (flushed every 5 ms) while this thread is stalled keeps some 680
 * batches, over 3 s of such a trickle at 200 a second, before it drops and counts (backpressure)
 */
const NATIVE_QUEUE_BYTES = 256 << 20;

type WaitingBatch = NativeUdpBatch & { spilled?: boolean };

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
    // (the addon counts datagrams; the screen adds the messages of split ones past their first)
    return { received: c.received + mine.received - mineDropped, dropped, events };
  };

  /** batches waiting for an acknowledgement (screened here, or `spilled` for the main thread to screen), and their datagrams */
  const waiting: WaitingBatch[] = [];
  let waitingCount = 0;
  let waitingBytes = 0;
  let unclaimed: UnclaimedCount[] = [];

  /** waiting lines to the main thread (merged up to POST_BYTES a post), at most MAX_UNACKED posts out unless `all`; the unclaimed counts in any case */
  const postWaiting = (all = false) => {
    while (waiting.length && (all || unacked < MAX_UNACKED)) {
      const some: WaitingBatch[] = [];
      let bytes = 0;
      while (waiting.length && (!some.length || (bytes + waiting[0].bytes <= POST_BYTES && waiting[0].spilled === some[0].spilled))) {
        bytes += waiting[0].bytes;
        some.push(waiting.shift()!);
      }
      const b = concatBatches(some);
      waitingCount -= b.ends.length;
      waitingBytes -= b.bytes;
      // (a spilled batch was allowed only, not split: the main thread splits and screens it)
      post({ type: 'lines', ...b, screened: !some[0].spilled, split: !some[0].spilled && screen.splits, unclaimed, counters: counters() }, [b.buf]);
      unclaimed = [];
      unacked++;
    }
    if (unclaimed.length) {
      post({ type: 'unclaimed', unclaimed, counters: counters() });
      unclaimed = [];
    }
  };

  /** every batch the addon holds: screened, its lines to wait for the main thread */
  const pump = (all = false) => {
    try {
      for (let b = receiver.take(POST_BYTES); b; b = receiver.take(POST_BYTES)) {
        // this thread is behind (busy machine, cold code): the main thread screens some batches too
        const spill = receiver.counters().queued > SPILL_QUEUED && waitingCount < SPILL_QUEUED;
        const screened = screen.screen(b, spill);
        unclaimed.push(...screened.unclaimed);
        const kept: WaitingBatch | undefined = screened.kept;
        if (!kept) continue;
        if (spill) {
          kept.spilled = true;
          mine.event('spilled', kept.ends.length); // datagrams the main thread screens
        }
        // held by count and by bytes (64 KiB datagrams: the count alone would let GBs wait)
        if (waitingCount + kept.ends.length > data.hold || waitingBytes + kept.bytes > data.holdBytes) mine.drop('backpressure', kept.ends.length);
        else {
          waiting.push(kept);
          waitingCount += kept.ends.length;
          waitingBytes += kept.bytes;
        }
      }
    } catch {
      postError++;
    }
    postWaiting(all);
  };

  try {
    receiver = addon.open({
      host: data.host, port: data.port, family: data.family, recvBufferBytes: data.recvBufferBytes || 0,
      maxMessageBytes: Math.min(data.maxMessageBytes || 65536, 65536), maxQueued: data.hold, maxQueuedBytes: NATIVE_QUEUE_BYTES,
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
