/**
 * What sources hand downstream. Sources know nothing of parsers or the inventory: they frame
 * bytes into lines, attach where and when each came from, and respect the sink's backpressure.
 */
import type { Claims } from '../parsers/plugin.js';
import type { SyslogMessage } from '../parsers/syslog-header.js';
import type { Sighting } from '../sighting.js';

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
  /**
   * Optional (file sources always set it; a store may keep it or not): hex sha256 of the up-to-256
   * bytes just before `offset`. Tells a file overwritten with the same preamble (Windows DHCP audit
   * logs, weekly) from the one we read, where the first-bytes fingerprint alone cannot.
   */
  tailFingerprint?: string;
}

/**
 * Any source's position or acknowledgement, committed in the same SQLite transaction as the
 * sightings that came before it (files keep their own FileCheckpoint). `key` is unique across
 * inputs (`lease:/var/lib/misc/dnsmasq.leases`, `http:0.0.0.0:8088:idem:KEY`); `value` is JSON.
 */
export interface SourcePosition {
  key: string;
  value: unknown;
}

/**
 * Lines that must be committed together (one HTTP request, one lease-file snapshot): the ingest
 * never splits a group across transactions, commits its position with it, and then calls
 * `committed` (or `failed` when it gives up on them, e.g. at shutdown).
 */
export interface CommitGroup {
  position?: SourcePosition;
  /** a per-sender allow-list: sightings decoded from the group's lines that it refuses are dropped (the source counts them) */
  accept?(s: Sighting): boolean;
  committed?(): void;
  failed?(err: Error): void;
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
  /** sightings the source decoded itself (Sighting JSON, lease databases): the parsers are skipped */
  sightings?: Sighting[];
  /** the commit group this line belongs to; consecutive lines with the same group are committed together */
  group?: CommitGroup;
}

/**
 * Downstream of every source. `push` returns false when the sink is over its high-water mark:
 * the source must stop reading (pause the socket / stop the file read) until `onDrain` fires.
 * `onDrain(cb)` is one-shot: cb runs once, the next time the sink drains (sources register again
 * each time push returns false). A sink that is not over its mark when onDrain is called may call
 * cb at once (synchronously or on a later tick).
 */
export interface LineSink {
  push(line: RawLine): boolean;
  onDrain(cb: () => void): void;
  /**
   * Optional: what a line of `format` must contain for some parser to claim it (the prefilter's
   * merged claims, src/parsers/prefilter.ts), or undefined when any line may be claimed. A source
   * that tests its lines with it (Prefilter.fromClaims(..).mayClaimLine) reports those no parser
   * can claim with `unclaimed` instead of pushing them: counted as decoded and unrecognized.
   */
  claims?(format: string): Claims | undefined;
  unclaimed?(lines: UnclaimedLines): void;
}

/** Lines a source did not push because no parser could claim them (LineSink.claims). */
export interface UnclaimedLines {
  source: string;
  format: string;
  /** network inputs: who sent them */
  sender?: string;
  count: number;
  /** when the last of them arrived (epoch ms) */
  lastAt: number;
}

/** Counters every source keeps (exposed on /metrics). */
export interface SourceCounters {
  received: number;
  dropped: Record<string, number>;
  /** network inputs: connections open now */
  connections?: number;
  /** TCP/TLS: connections refused before any line was read, by reason (notAllowed, connectionLimit, senderConnectionLimit) */
  refused?: Record<string, number>;
  /** file inputs: files tailed now */
  files?: number;
  /** UDP: the receive buffer the kernel granted (getsockopt SO_RCVBUF; Linux reports twice what it lets data use) */
  recvBufferBytes?: number;
  /** UDP: what receives the datagrams, the native receiver (native/udp-recv, recvmmsg) or node's dgram */
  udpReceiver?: 'native' | 'dgram';
  /** other events worth a metric: accepted, idleTimeout, tlsError, resync, rotated, truncated, overwritten ... */
  events?: Record<string, number>;
}

/** One `type: syslog` input, as validated from the config (defaults filled in). */
export interface SyslogInputOptions {
  /** `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT` (IPv6 hosts in brackets) */
  listen: string;
  /** sender CIDRs; others are dropped and counted. Empty or absent: everyone. */
  allow?: string[];
  /** `auto` or a parser id */
  format: string;
  /** longest message accepted (bytes); longer frames are dropped and counted. Default 65536. */
  maxMessageBytes: number;
  /** TCP/TLS: close a connection idle this long (seconds). Default 300. */
  idleTimeoutS: number;
  /** TCP/TLS: most connections at once; more are refused and counted. Default 1000. */
  maxConnections: number;
  /** TCP/TLS: most connections at once from one sender address; more are refused and counted. Default 32. */
  maxConnectionsPerSender?: number;
  /** UDP: SO_RCVBUF to ask for (bytes). Default 8 MiB. */
  udpRecvBufferBytes: number;
  /** receive in a worker thread: UDP, so the kernel buffer drains while the main thread commits; TCP/TLS, the whole server (framing, screening) */
  receiveThread?: boolean;
  /** UDP with the receive thread: `auto` (default) the native receiver if it was built, else dgram; `native` or fail; `dgram` */
  udpReceiver?: 'auto' | 'native' | 'dgram';
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean };
  /** how to read a message that is not valid UTF-8 (kept and counted as event `notUtf8`): as Latin-1 (default) or UTF-8 with U+FFFD */
  invalidUtf8?: 'latin1' | 'replace';
}

/** One `type: file` input. */
export interface FileInputOptions {
  /** a path or a glob */
  path: string;
  format: string;
  /** where to start a file never seen before: `beginning` (default) or `end` */
  startAt: 'beginning' | 'end';
  /** how often to poll for growth and rotation, ms (fs events also trigger reads). Default 250. */
  pollMs: number;
  /** after a rename rotation, keep reading the old file this long for late writes before switching. Default 1000. */
  rotateWaitMs?: number;
  /** longest line (bytes); longer lines are skipped and counted as tooLarge. Default 1 MiB. */
  maxLineBytes?: number;
  /**
   * where logrotate keeps this file's rotations when not beside it (its `olddir`): absolute, or
   * relative to the file's folder (each matched file's, for a glob), as logrotate takes it
   */
  rotatedDir?: string;
  /** a file with no data for this long is polled every 8th poll only (its watcher's events still wake it). Default 60 s. */
  idlePollAfterMs?: number;
}

/** Reads the last committed checkpoint of a file input (from the store). */
export type CheckpointReader = (path: string) => Promise<FileCheckpoint | undefined>;

/** Reads a committed SourcePosition's value (undefined if none). */
export type PositionReader = (key: string) => Promise<unknown>;

/** What the store offers inputs to resume from. */
export interface ResumeStore {
  checkpoint: CheckpointReader;
  position: PositionReader;
  /** forget positions under a key prefix not updated since `before` (epoch ms) */
  prunePositions(prefix: string, before: number): Promise<number>;
}

/** A running input. */
export interface InputHandle {
  /** `udp:5514`, `file:/var/log/dhcpd.log` ... */
  readonly name: string;
  /** network inputs: the address actually bound (port 0 in the config picks an ephemeral port) */
  readonly address?: { host: string; port: number };
  counters(): SourceCounters;
  /** re-read certificates and the like (SIGHUP) without dropping connections */
  reload?(): Promise<void>;
  /** stop accepting, flush what was read to the sink, release sockets/files */
  close(): Promise<void>;
}
