/**
 * What every syslog listener shares: counters, the sender allow-list (cached per address for UDP),
 * and turning one UDP datagram into its line (or lines, when a relay batched several) or a counted
 * drop, in the listener's thread or in the UDP receive thread alike.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import type { Socket as UdpSocket } from 'node:dgram';
import { CidrSet, canonicalIp, parseCidr } from '../../util/ip.js';
import { Prefilter } from '../../parsers/prefilter.js';
import type { LineSink } from '../types.js';
import { frameText, type InvalidUtf8 } from './text.js';

export class Counters {
  received = 0;
  dropped: Record<string, number> = {};
  events: Record<string, number> = {};
  /** stream connections refused before a byte was read: counted apart from lines */
  refused: Record<string, number> = {};
  drop(reason: string, n = 1): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + n;
  }
  refuse(reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }
  event(name: string, n = 1): void {
    this.events[name] = (this.events[name] ?? 0) + n;
  }
}

/** Two sets of named counts added up (a receive thread's, across its restarts). */
export function addCounts(a: Record<string, number> = {}, b: Record<string, number> = {}): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function makeAllow(allow: string[] | undefined): ((ip: string) => boolean) {
  if (!allow || allow.length === 0) return () => true;
  const set = new CidrSet<true>();
  for (const a of allow) {
    const c = parseCidr(a);
    if (!c) throw new Error(`allow: "${a}" is not an address or CIDR`);
    set.add(c, true);
  }
  return (ip) => set.contains(ip);
}

/** Normalise a peer address: IPv4-mapped IPv6 (::ffff:10.0.0.1) becomes plain IPv4. */
export function peer(addr: string | undefined): string {
  return canonicalIp(addr) ?? addr ?? 'unknown';
}

/** Per-listener cache of sender → [canonical address, allowed?]: UDP pays this per datagram. */
export class SenderCache {
  private readonly m = new Map<string, [string, boolean]>();
  constructor(private readonly allow: (ip: string) => boolean) {}
  get(raw: string | undefined): [string, boolean] {
    const k = raw ?? '';
    let v = this.m.get(k);
    if (!v) {
      const p = peer(raw);
      v = [p, this.allow(p)];
      if (this.m.size >= 10_000) this.m.clear();
      this.m.set(k, v);
    }
    return v;
  }
}

export interface DatagramOptions {
  allow?: string[];
  maxMessageBytes: number;
  invalidUtf8?: InvalidUtf8;
}

/**
 * The checks of a datagram made before any text (in the UDP receive thread, or in-line): the
 * sender's allow-list, trailing LF/CR/NUL (not part of the message), empty, too large. `check`
 * returns where the message ends (`sender` then holds the canonical address), or -1 when it was
 * dropped (and counted).
 */
export class DatagramGate {
  readonly counters = new Counters();
  sender = '';
  private readonly senders: SenderCache;
  private readonly maxBytes: number;

  constructor(opts: DatagramOptions) {
    this.senders = new SenderCache(makeAllow(opts.allow));
    this.maxBytes = opts.maxMessageBytes || 65536;
  }

  check(msg: Uint8Array, address: string | undefined): number {
    const c = this.counters;
    const [sender, allowed] = this.senders.get(address);
    if (!allowed) return c.drop('notAllowed'), -1;
    let e = msg.length;
    while (e > 0 && (msg[e - 1] === 0x0a || msg[e - 1] === 0x0d || msg[e - 1] === 0)) e--;
    if (e === 0) return c.drop('empty'), -1;
    if (e > this.maxBytes) return c.drop('tooLarge'), -1;
    this.sender = sender;
    return e;
  }
}

/** Is there a syslog PRI (`<` 1 to 3 digits, at most 191, `>`) at `i` of `buf`, before `end`? */
function priAt(buf: Uint8Array, i: number, end: number): boolean {
  if (i >= end || buf[i] !== 0x3c) return false;
  let v = 0;
  let j = i + 1;
  while (j < end && j - i <= 3 && buf[j] >= 0x30 && buf[j] <= 0x39) v = v * 10 + buf[j++] - 0x30;
  return j > i + 1 && j < end && buf[j] === 0x3e && v <= 191;
}

/**
 * At most this many messages from one datagram: past it the rest stays in the last one (event
 * `splitCapped`, one per message so folded). A relay's batch fills an MTU (a dozen lines); 64 KB of "\n<1>" would be 16,000,
 * and the receive thread's hold and the kernel's buffer count datagrams, not lines (review).
 */
export const MAX_MESSAGES_PER_DATAGRAM = 64;

/**
 * The syslog messages of gated datagrams laid end to end in one buffer (a batch, or one datagram),
 * asked for in order. RFC 5426 puts one message in a datagram, but some relays batch lines in one:
 * a line that starts with a PRI begins a message of its own; any other line continues the one
 * before (a stack trace, a wrapped line), as a datagram was always read. Kept in one place for
 * every UDP path (in-line, dgram thread, native thread), so they split alike.
 */
export class DatagramSplitter {
  /** where the LF search last started, and the first LF at or after it (-1: none in the buffer) */
  private from = -1;
  private lf = -1;

  constructor(private buf: Buffer) {}

  /** Another buffer to split (the in-line receiver's next datagram). */
  use(buf: Buffer): this {
    this.buf = buf;
    this.from = -1;
    return this;
  }

  /**
   * [start, end, start, end, ...] of the messages in `start`..`end` (their trailing CR, LF and NUL
   * left out), counted as event `splitDatagram` in `c`; undefined when the datagram is one message
   * (nearly all: no allocation). Datagrams must be asked for in order: one LF search serves those
   * up to the LF it finds, so a batch costs one pass however few LFs it holds.
   */
  split(start: number, end: number, c: Counters): number[] | undefined {
    const b = this.buf;
    if (this.from < 0 || start < this.from || (this.lf >= 0 && this.lf < start)) {
      this.from = start;
      this.lf = b.indexOf(0x0a, start);
    }
    if (this.lf < 0 || this.lf >= end) return undefined;
    let cuts: number[] | undefined;
    let at = start;
    let lf = this.lf;
    for (; lf >= 0 && lf < end; lf = b.indexOf(0x0a, lf + 1)) {
      if (!priAt(b, lf + 1, end)) continue;
      if (cuts && cuts.length >= 2 * (MAX_MESSAGES_PER_DATAGRAM - 1)) {
        // each message left in the last one counted (`splitCapped`): the parsers see none of them
        let folded = 0;
        for (; lf >= 0 && lf < end; lf = b.indexOf(0x0a, lf + 1)) if (priAt(b, lf + 1, end)) folded++;
        c.event('splitCapped', folded);
        break;
      }
      let e = lf;
      while (e > at && (b[e - 1] === 0x0a || b[e - 1] === 0x0d || b[e - 1] === 0)) e--;
      if (e > at) (cuts ??= []).push(at, e);
      at = lf + 1;
    }
    this.from = end;
    this.lf = lf;
    if (!cuts) return undefined;
    cuts.push(at, end);
    c.event('splitDatagram');
    return cuts;
  }
}

/** A gated message's text (`buf` from `start` to `end`), or undefined when it is not a log line (counted). */
export function datagramText(buf: Buffer, start: number, end: number, c: Counters, invalidUtf8?: InvalidUtf8): string | undefined {
  const t = frameText(buf, invalidUtf8, start, end);
  if (!t.ok) return void c.drop(t.reason);
  if (t.notUtf8) c.event('notUtf8');
  return t.text;
}

/**
 * One datagram, one message (RFC 5426), or several when a relay batched lines (DatagramSplitter):
 * their texts, those that are no log line left out (counted); undefined when the datagram was dropped (and counted).
 */
export class DatagramReader {
  private readonly gate: DatagramGate;
  private readonly splitter = new DatagramSplitter(Buffer.alloc(0));
  readonly counters: Counters;

  constructor(private readonly opts: DatagramOptions) {
    this.gate = new DatagramGate(opts);
    this.counters = this.gate.counters;
  }

  read(msg: Buffer, address: string | undefined): { texts: string[]; sender: string } | undefined {
    const e = this.gate.check(msg, address);
    if (e < 0) return undefined;
    const c = this.counters;
    const cuts = this.splitter.use(msg).split(0, e, c) ?? [0, e];
    const texts: string[] = [];
    for (let k = 0; k < cuts.length; k += 2) {
      const text = datagramText(msg, cuts[k], cuts[k + 1], c, this.opts.invalidUtf8);
      if (text !== undefined) texts.push(text);
    }
    return { texts, sender: this.gate.sender };
  }
}

/**
 * The sink's side of UDP lines. With the sink's claims (LineSink.claims), a line no parser can
 * claim (firewall noise, most of a busy stream) is not pushed: `screened` counts it by sender, and
 * `report` hands the counts to the sink (LineSink.unclaimed), once per sender and batch.
 */
export class UnclaimedTally {
  private readonly prefilter: Prefilter | undefined;
  /** sender → [lines, when the last arrived (ms)] since the last report */
  private counts = new Map<string, [number, number]>();

  constructor(private readonly sink: Pick<LineSink, 'claims' | 'unclaimed'>, private readonly format: string) {
    this.prefilter = sink.unclaimed ? Prefilter.fromClaims(sink.claims?.(format)) : undefined;
  }

  /** true when no parser can claim `text`: it is counted, not to be pushed */
  screened(text: string, sender: string, at: number): boolean {
    if (!this.prefilter || this.prefilter.mayClaimLine(text)) return false;
    const t = this.counts.get(sender);
    if (!t) this.counts.set(sender, [1, at]);
    else {
      t[0]++;
      if (at > t[1]) t[1] = at;
    }
    return true;
  }

  get pending(): boolean {
    return this.counts.size > 0;
  }

  report(source: string): void {
    if (!this.counts.size) return;
    const counts = this.counts;
    this.counts = new Map();
    for (const [sender, [count, lastAt]] of counts) this.sink.unclaimed!({ source, format: this.format, sender, count, lastAt });
  }
}

/** The socket inode behind a dgram socket (Linux: /proc/self/fd/N → socket:[INODE]), if we can tell. */
export function udpSocketInode(sock: UdpSocket): number | undefined {
  try {
    // the handle lives under node's internal state symbol (reading `_handle` would print DEP0112)
    const sym = Object.getOwnPropertySymbols(sock).find((x) => x.description === 'state symbol');
    const fd = sym ? (sock as unknown as Record<symbol, { handle?: { fd?: number } } | undefined>)[sym]?.handle?.fd : undefined;
    if (typeof fd !== 'number' || fd < 0) return undefined;
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Kernel drop counter of our UDP socket, from /proc/net/udp{,6} ("drops", the last column): the row
 * with our socket's inode when we know it, else the rows bound to `port`. Undefined if unreadable.
 */
export function readUdpKernelDrops(port: number, family: 4 | 6, inode?: number): number | undefined {
  const file = family === 6 ? '/proc/net/udp6' : '/proc/net/udp';
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
  const hexPort = ':' + port.toString(16).toUpperCase().padStart(4, '0');
  let total: number | undefined;
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f.length < 13) continue;
    if (inode !== undefined ? f[9] !== String(inode) : !f[1].endsWith(hexPort)) continue;
    const d = Number(f[12]);
    if (Number.isFinite(d)) total = (total ?? 0) + d;
  }
  return total;
}
