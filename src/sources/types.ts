/**
 * What sources hand downstream. Sources know nothing of parsers or the inventory: they frame
 * bytes into lines, attach where and when each came from, and respect the sink's backpressure.
 */
import type { SyslogMessage } from './syslog/header.js';

/** Where a file line ends: committed with its sightings in one SQLite transaction. */
export interface FileCheckpoint {
  /** the input's key: its configured path (or glob match) */
  path: string;
  dev: number;
  ino: number;
  /** byte offset just past this line */
  offset: number;
  /** hex digest of the file's first bytes, to tell a rotated-in file from the old one */
  fingerprint: string;
}

export interface RawLine {
  /** the line, without framing and trailing newline */
  text: string;
  receivedAt: Date;
  /** `udp:5514`, `tcp:5514`, `tls:6514`, `file:/var/log/dhcpd.log` */
  source: string;
  /** sender address for network inputs */
  sender?: string;
  /** 1-based line number, for file inputs */
  line?: number;
  /** the input's configured format (`auto` or a parser id) */
  format?: string;
  /** header already parsed by the source, if it did */
  syslog?: SyslogMessage;
  checkpoint?: FileCheckpoint;
}

/**
 * Downstream of every source. `push` returns false when the sink is over its high-water mark:
 * the source must stop reading (pause the socket / stop the file read) until `onDrain` fires.
 */
export interface LineSink {
  push(line: RawLine): boolean;
  onDrain(cb: () => void): void;
}

/** Counters every source keeps (exposed on /metrics). */
export interface SourceCounters {
  received: number;
  dropped: Record<string, number>;
}
