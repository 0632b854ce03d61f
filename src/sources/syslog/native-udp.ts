/**
 * The native UDP receiver (native/udp-recv: a socket drained by its own thread with recvmmsg),
 * loaded if `npm ci` built it. When it did not, `loadNativeUdp` says why and the input receives
 * with node's dgram instead. Its errors (codes UDPRECV_*) become OnsightErrors here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { OnsightError } from '../../errors.js';

/** One batch: datagrams end to end in `buf`, `ends[i]` where the i-th ends, its sender `senders[senderIdx[i]]`, `times[i]` when it came (ms). */
export interface NativeUdpBatch {
  buf: ArrayBuffer;
  bytes: number;
  ends: Uint32Array;
  senderIdx: Uint32Array;
  senders: string[];
  times: Float64Array;
}

export interface NativeUdpCounters {
  /** datagrams kept (queued for take()) */
  received: number;
  backpressure: number;
  empty: number;
  tooLarge: number;
  /** datagrams lost to an error (out of memory) */
  error: number;
  /** failed receive calls and callbacks that threw: no datagram lost, but worth a look */
  failures: number;
  /** errno of the last failed receive, 0 if none */
  lastErrno: number;
  /** datagrams waiting for take() */
  queued: number;
  /** memory the batches waiting for take() hold (their bytes and fixed arrays) */
  queuedBytes: number;
}

export interface NativeUdpReceiver {
  address: string;
  port: number;
  family: 4 | 6;
  /** the socket's inode (for /proc/net/udp), -1 if unknown */
  inode: number;
  /** SO_RCVBUF as the kernel reports it (Linux: twice what it grants for data) */
  recvBufferBytes: number;
  /** the size was forced past net.core.rmem_max (SO_RCVBUFFORCE, CAP_NET_ADMIN) */
  recvBufferForced: boolean;
  /** the oldest queued batches, merged while they fit in `maxBytes` (at least one); undefined when none */
  take(maxBytes?: number): NativeUdpBatch | undefined;
  counters(): NativeUdpCounters;
  /** joins the thread and closes the socket; batches still queued can be taken */
  close(): void;
}

export interface NativeUdpOpenOptions {
  host: string;
  port: number;
  family: 4 | 6;
  recvBufferBytes?: number;
  maxMessageBytes?: number;
  /** datagrams waiting for take() beyond which more are dropped (backpressure) */
  maxQueued?: number;
  /**
   * memory the batches waiting for take() may hold (default 256 MiB, at least 1 MiB): a slow
   * trickle flushed every `flushMs` queues a batch per datagram, so the count alone does not bound it
   */
  maxQueuedBytes?: number;
  batchBytes?: number;
  flushMs?: number;
}

interface Addon {
  open(o: NativeUdpOpenOptions, onReadable: () => void): NativeUdpReceiver;
}

const ADDON = 'native/udp-recv/build/Release/udp_recv.node';

/** the package root: two levels above src/sources/syslog from the sources, three from dist/ */
function addonPath(): string | undefined {
  for (const up of ['../../../', '../../../../']) {
    const p = fileURLToPath(new URL(up + ADDON, import.meta.url));
    if (existsSync(p)) return p;
  }
  return undefined;
}

let loaded: { addon: Addon } | { reason: string } | undefined;

/** The addon, or why it cannot be used (not built, failed to build, failed to load). */
export function loadNativeUdp(): { addon: Addon } | { reason: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { reason: `recvmmsg receiver is Linux only (platform ${process.platform})` });
  const path = addonPath();
  if (!path) {
    // the install step leaves the build's last words there when the build failed
    const failed = fileURLToPath(new URL('../../../native/udp-recv/build-failed.txt', import.meta.url));
    const failedDist = fileURLToPath(new URL('../../../../native/udp-recv/build-failed.txt', import.meta.url));
    const why = [failed, failedDist].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8').trim())[0];
    return (loaded = { reason: why ? `its build failed at install: ${why}` : `not built (${ADDON} is missing; npm ci builds it with node-gyp)` });
  }
  try {
    return (loaded = { addon: createRequire(import.meta.url)(path) as Addon });
  } catch (err) {
    return (loaded = { reason: `cannot load ${ADDON}: ${(err as Error).message}` });
  }
}

/** An addon error as an OnsightError: socket and bind failures are ONSIGHT_LISTEN, the rest ONSIGHT_UDP_RECEIVER. */
export function nativeUdpError(err: unknown, listen: string): OnsightError {
  const e = err as Error & { code?: string };
  const code = e.code === 'UDPRECV_BIND' || e.code === 'UDPRECV_SOCKET' || e.code === 'UDPRECV_ADDRESS' ? 'ONSIGHT_LISTEN' : 'ONSIGHT_UDP_RECEIVER';
  return new OnsightError(code, `${listen}: ${e.message}${e.code ? ` (${e.code})` : ''}`, { cause: err });
}
