/**
 * The UDP receive thread's entry (worker_threads): owns the socket, so the kernel's receive buffer
 * is drained while the main thread commits or collects garbage. It does as little per datagram as
 * it can, because it alone must keep up with the sender: the checks made before any text
 * (DatagramGate: allow-list, empty, too large), then the bytes are copied into a batch buffer.
 * The buffer goes to the main thread whole (transferred, not copied), which makes the text, drops
 * what is not a log line and screens out what no parser can claim (udp-client.ts). At most two
 * batches are out unacknowledged; beyond that datagrams wait here, up to `hold`, then are dropped
 * and counted as `backpressure`. Acknowledgements bring the buffers back for reuse.
 *
 * That is node's dgram receiver. When the native receiver was built (native/udp-recv) and is not
 * ruled out (`receiver: dgram`), it replaces all of the above: see udp-thread-native.ts.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { DatagramGate, udpSocketInode } from './receive.js';
import type { FromUdpThread, ToUdpThread, UdpThreadData } from './udp-protocol.js';
import { loadNativeUdp } from './native-udp.js';
import { receiveNative } from './udp-thread-native.js';

const port = parentPort!;
const data = workerData as UdpThreadData;
const post = (m: FromUdpThread, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
const gate = new DatagramGate(data);
const c = gate.counters;
const MAX_UNACKED = 2;
/**
 * A batch leaves this long after its first datagram (unless two are out unacknowledged): a few
 * hundred posts a second at most, however the datagrams trickle in, and little added latency.
 */
const FLUSH_MS = 5;
/** bytes of a batch buffer (about 1,500 firewall lines); a larger datagram gets a buffer of its own size */
const BATCH_BYTES = 256 * 1024;

class Batch {
  used = 0;
  /** where each datagram ends in `buf` (each starts where the one before ended) */
  ends: number[] = [];
  senderIdx: number[] = [];
  senders: string[] = [];
  private readonly senderAt = new Map<string, number>();
  times: number[] = [];

  constructor(readonly buf: Buffer) {}

  fits(n: number): boolean {
    return this.used + n <= this.buf.length;
  }

  add(msg: Buffer, end: number, sender: string, at: number): void {
    if (end === msg.length) this.buf.set(msg, this.used); // a plain memcpy, no view made
    else msg.copy(this.buf, this.used, 0, end);
    this.used += end;
    this.ends.push(this.used);
    let s = this.senderAt.get(sender);
    if (s === undefined) this.senderAt.set(sender, (s = this.senders.push(sender) - 1));
    this.senderIdx.push(s);
    this.times.push(at);
  }
}

/** buffers the main thread gave back */
const free: ArrayBuffer[] = [];
const newBatch = (need: number): Batch => {
  const b = need <= BATCH_BYTES ? free.pop() : undefined;
  return new Batch(b ? Buffer.from(b) : Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, need)));
};

/** full batches waiting for the main thread, oldest first, then the one being filled */
const full: Batch[] = [];
let current: Batch | undefined;
/** datagrams here, not yet posted, and their bytes */
let held = 0;
let heldBytes = 0;
let unacked = 0;
let timer: NodeJS.Timeout | undefined;
let closing = false;

const snapshot = () => ({ received: c.received, dropped: { ...c.dropped }, events: { ...c.events } });

function postBatch(b: Batch): void {
  held -= b.ends.length;
  heldBytes -= b.used;
  // the buffer's own ArrayBuffer (allocUnsafeSlow: not pooled), handed over without a copy
  const ab = b.buf.buffer as ArrayBuffer;
  post({
    type: 'lines', buf: ab, bytes: b.used, ends: Uint32Array.from(b.ends), senders: b.senders, senderIdx: Uint32Array.from(b.senderIdx),
    times: Float64Array.from(b.times), counters: snapshot(),
  }, [ab]);
  unacked++;
}

function flush(force = false): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  while (force || unacked < MAX_UNACKED) {
    const b = full.shift() ?? current;
    if (!b) return;
    if (b === current) current = undefined;
    postBatch(b);
  }
}

function schedule(): void {
  if (timer || unacked >= MAX_UNACKED) return;
  timer = setTimeout(flush, FLUSH_MS);
}

function receiveDgram(nativeUnavailable?: string): void {
  const sock = createSocket({ type: data.family === 6 ? 'udp6' : 'udp4', recvBufferSize: data.recvBufferBytes || undefined });
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    try {
      const end = gate.check(msg, rinfo.address);
      if (end < 0) return;
      if (held >= data.hold || heldBytes + end > data.holdBytes) return c.drop('backpressure');
      if (!current || !current.fits(end)) {
        if (current) full.push(current);
        current = newBatch(end);
      }
      current.add(msg, end, gate.sender, Date.now());
      held++;
      heldBytes += end;
      c.received++;
      schedule();
    } catch {
      c.drop('error');
    }
  });
  sock.on('error', (err) => post({ type: 'error', message: err.message }));
  port.on('message', (m: ToUdpThread) => {
    if (m.type === 'ack') {
      unacked--;
      if (m.buf && m.buf.byteLength === BATCH_BYTES && free.length < 4) free.push(m.buf);
      if (full.length || current) schedule();
    } else if (m.type === 'close' && !closing) {
      closing = true;
      sock.close(() => {
        flush(true);
        post({ type: 'closed', counters: snapshot() });
      });
    }
  });
  // drops while the main thread is not taking lines still reach its counters
  setInterval(() => post({ type: 'counters', counters: snapshot() }), 500).unref();
  sock.once('error', (err) => post({ type: 'bindFailed', message: err.message }));
  sock.bind({ address: data.host, port: data.port, exclusive: true }, () => {
    const a = sock.address();
    let granted: number | undefined;
    try {
      granted = sock.getRecvBufferSize();
    } catch {
      granted = undefined;
    }
    post({ type: 'bound', address: a.address, port: a.port, inode: udpSocketInode(sock), granted, receiver: 'dgram', nativeUnavailable });
  });
}

/** the native receiver unless ruled out or not built (then why, for the log) */
function receive(): void {
  if (data.receiver === 'dgram') return receiveDgram();
  const native = loadNativeUdp();
  if ('reason' in native) {
    if (data.receiver === 'native') return post({ type: 'bindFailed', code: 'ONSIGHT_UDP_RECEIVER', message: `${data.listen}: udpReceiver is native, but the native UDP receiver cannot be used: ${native.reason}` });
    return receiveDgram(native.reason);
  }
  const r = receiveNative(native.addon, data, post);
  if (!r) return;
  let closing = false;
  port.on('message', (m: ToUdpThread) => {
    if (m.type === 'ack') r.ack();
    else if (m.type === 'close' && !closing) {
      closing = true;
      r.close();
      post({ type: 'closed', counters: r.counters() });
    }
  });
  setInterval(() => post({ type: 'counters', counters: r.counters() }), 500).unref();
}

receive();
