/**
 * The UDP receive thread's entry (worker_threads): owns the socket, so the kernel's receive buffer
 * is drained while the main thread commits or collects garbage. Datagrams become lines here (the
 * same checks and counters as in-thread, DatagramReader) and go to the main thread in batches,
 * at most two unacknowledged; beyond that the lines wait here, up to `hold`, then are dropped and
 * counted as `backpressure`. With the sink's claims (LineSink.claims), a line no parser can claim
 * (firewall noise, most of a busy stream) goes no further than this thread: it is counted per
 * sender and the counts travel with the next batch.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { Prefilter } from '../../parsers/prefilter.js';
import { DatagramReader, udpSocketInode } from './receive.js';
import type { FromUdpThread, ToUdpThread, UdpThreadData } from './udp-protocol.js';

const port = parentPort!;
const data = workerData as UdpThreadData;
const post = (m: FromUdpThread) => port.postMessage(m);
const reader = new DatagramReader(data);
const c = reader.counters;
const MAX_UNACKED = 2;
const prefilter = Prefilter.fromClaims(data.claims);
/**
 * A batch leaves this long after its first line or count (unless two are out unacknowledged): a
 * few hundred posts a second at most, however the lines trickle in, and little added latency.
 */
const FLUSH_MS = 5;

let texts: string[] = [];
let senders: string[] = [];
let senderAt = new Map<string, number>();
let senderIdx: number[] = [];
let times: number[] = [];
/** lines no parser can claim since the last batch, by sender */
let unclaimed = new Map<string, number>();
let unacked = 0;
let timer: NodeJS.Timeout | undefined;
let closing = false;

const snapshot = () => ({ received: c.received, dropped: { ...c.dropped }, events: { ...c.events } });

function flush(force = false): void {
  if (timer) clearTimeout(timer);
  timer = undefined;
  if ((!texts.length && !unclaimed.size) || (!force && unacked >= MAX_UNACKED)) return;
  post({
    type: 'lines', texts, senders, senderIdx: Uint32Array.from(senderIdx), times: Float64Array.from(times), counters: snapshot(),
    unclaimed, at: Date.now(),
  });
  unacked++;
  texts = [];
  senders = [];
  senderAt = new Map();
  senderIdx = [];
  times = [];
  unclaimed = new Map();
}

function schedule(): void {
  if (timer || unacked >= MAX_UNACKED) return;
  timer = setTimeout(flush, FLUSH_MS);
}

const sock = createSocket({ type: data.family === 6 ? 'udp6' : 'udp4', recvBufferSize: data.recvBufferBytes || undefined });
sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
  try {
    const got = reader.read(msg, rinfo.address);
    if (!got) return;
    if (prefilter && !prefilter.mayClaimLine(got.text)) {
      c.received++;
      unclaimed.set(got.sender, (unclaimed.get(got.sender) ?? 0) + 1);
      return schedule();
    }
    if (texts.length >= data.hold) return c.drop('backpressure');
    c.received++;
    texts.push(got.text);
    let s = senderAt.get(got.sender);
    if (s === undefined) senderAt.set(got.sender, (s = senders.push(got.sender) - 1));
    senderIdx.push(s);
    times.push(Date.now());
    schedule();
  } catch {
    c.drop('error');
  }
});
sock.on('error', (err) => post({ type: 'error', message: err.message }));
port.on('message', (m: ToUdpThread) => {
  if (m.type === 'ack') {
    unacked--;
    if (texts.length || unclaimed.size) schedule();
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
  post({ type: 'bound', address: a.address, port: a.port, inode: udpSocketInode(sock), granted });
});
