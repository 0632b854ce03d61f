/** Messages between a UDP syslog input and its receive thread (udp-thread.ts). */
import type { Claims } from '../../parsers/plugin.js';
import type { InvalidUtf8 } from './text.js';

export interface UdpThreadData {
  host: string;
  port: number;
  family: 4 | 6;
  recvBufferBytes?: number;
  allow?: string[];
  maxMessageBytes: number;
  invalidUtf8?: InvalidUtf8;
  /** lines kept in the thread while the main thread is not taking them; more are dropped */
  hold: number;
  /** the sink's claims (LineSink.claims): lines no parser can claim are counted here, not sent */
  claims?: Claims;
}

export interface UdpThreadCounters {
  received: number;
  dropped: Record<string, number>;
  events: Record<string, number>;
}

export type FromUdpThread =
  | { type: 'bound'; address: string; port: number; inode?: number; granted?: number }
  | { type: 'bindFailed'; message: string }
  | { type: 'error'; message: string }
  | {
    type: 'lines'; texts: string[]; senders: string[]; senderIdx: Uint32Array; times: Float64Array; counters: UdpThreadCounters;
    /** lines no parser can claim since the last batch, by sender; `at`: when this batch left (epoch ms) */
    unclaimed: Map<string, number>; at: number;
  }
  | { type: 'counters'; counters: UdpThreadCounters }
  | { type: 'closed'; counters: UdpThreadCounters };

export type ToUdpThread = { type: 'ack' } | { type: 'close' };
