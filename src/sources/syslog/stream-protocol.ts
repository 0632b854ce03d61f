/** Messages between a TCP/TLS syslog input and its receive thread (stream-thread.ts). */
import type { Claims } from '../../parsers/plugin.js';
import type { SourceCounters, SyslogInputOptions } from '../types.js';
import type { ListenAddress } from './address.js';
import type { UnclaimedCount } from './udp-screen.js';

export interface StreamThreadData {
  addr: ListenAddress;
  /** the input's options (receiveThread off: the thread runs the server itself) */
  opts: SyslogInputOptions;
  /** the sink's claims for the input's format, when it counts unclaimed lines: the thread screens with them */
  claims?: Claims;
  /** claimable lines the thread holds while the main thread is not taking them; beyond, connections pause */
  hold: number;
  /** the daemon logs at debug: the thread posts its debug lines (connection errors) too */
  debug: boolean;
}

export type StreamLogLevel = 'debug' | 'info' | 'warn';

export type FromStreamThread =
  | { type: 'bound'; address: string; port: number }
  | { type: 'bindFailed'; message: string; code?: string }
  | { type: 'log'; level: StreamLogLevel; obj: Record<string, unknown>; msg: string }
  | {
    /** the lines some parser may claim, in the order received (per connection) */
    type: 'lines'; texts: string[]; senders: string[]; senderIdx: Uint32Array; times: Float64Array;
    unclaimed: UnclaimedCount[]; counters: SourceCounters;
  }
  /** counts only: lines no parser can claim, by sender, and the counters */
  | { type: 'unclaimed'; unclaimed: UnclaimedCount[]; counters: SourceCounters }
  | { type: 'counters'; counters: SourceCounters }
  | { type: 'reloaded'; id: number; error?: string }
  | { type: 'closed'; counters: SourceCounters };

/**
 * `ack`: a `lines` batch was taken and the sink wants more; `stop`: the sink said stop (pause every
 * connection; the acks that follow once it drains resume them).
 */
export type ToStreamThread = { type: 'ack' } | { type: 'stop' } | { type: 'reload'; id: number } | { type: 'close' };
