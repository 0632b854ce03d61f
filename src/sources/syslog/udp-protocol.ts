/** Messages between a UDP syslog input and its receive thread (udp-thread.ts). */
import type { Claims } from '../../parsers/plugin.js';
import type { InvalidUtf8 } from './text.js';
import type { UnclaimedCount } from './udp-screen.js';

export interface UdpThreadData {
  host: string;
  port: number;
  family: 4 | 6;
  recvBufferBytes?: number;
  allow?: string[];
  maxMessageBytes: number;
  invalidUtf8?: InvalidUtf8;
  /** datagrams kept in the thread while the main thread is not taking them; more are dropped */
  hold: number;
  /** and bytes of them (64 KiB datagrams: `hold` alone would let GBs wait); more are dropped as well */
  holdBytes: number;
  /** the input's `listen` (for error messages) */
  listen: string;
  /** `auto`: the native receiver if it was built, else node's dgram */
  receiver: UdpReceiverChoice;
  format: string;
  /** the sink's claims for `format`, when it counts unclaimed lines: the native receiver's thread screens with them */
  claims?: Claims;
}

export type UdpReceiverChoice = 'auto' | 'native' | 'dgram';
/** what receives the datagrams: native/udp-recv (recvmmsg in its own thread) or node's dgram */
export type UdpReceiverKind = 'native' | 'dgram';

export interface UdpThreadCounters {
  /** datagrams the thread took (held or posted); those the main thread finds are no log line are dropped there */
  received: number;
  dropped: Record<string, number>;
  events: Record<string, number>;
}

export type FromUdpThread =
  | {
    type: 'bound'; address: string; port: number; inode?: number; granted?: number; receiver: UdpReceiverKind;
    /** why the native receiver is not used, when it was not ruled out by `receiver: dgram` */
    nativeUnavailable?: string;
  }
  | { type: 'bindFailed'; message: string; code?: string }
  | { type: 'error'; message: string }
  | {
    /** datagrams that passed the thread's checks: bytes end to end in `buf` (transferred), `ends[i]` where the i-th ends */
    type: 'lines'; buf: ArrayBuffer; bytes: number; ends: Uint32Array; senders: string[]; senderIdx: Uint32Array; times: Float64Array;
    counters: UdpThreadCounters;
    /** the thread already left out what no parser can claim (counted in `unclaimed`, by sender) */
    screened?: boolean;
    /** the thread already split each datagram into its messages (DatagramSplitter): not to be split again */
    split?: boolean;
    unclaimed?: UnclaimedCount[];
  }
  /** a batch of which no line is left to post: only the counts of those no parser can claim */
  | { type: 'unclaimed'; unclaimed: UnclaimedCount[]; counters: UdpThreadCounters }
  | { type: 'counters'; counters: UdpThreadCounters }
  | { type: 'closed'; counters: UdpThreadCounters };

/** `ack` gives the batch's buffer back (transferred) for the thread to fill again */
export type ToUdpThread = { type: 'ack'; buf?: ArrayBuffer } | { type: 'close' };
