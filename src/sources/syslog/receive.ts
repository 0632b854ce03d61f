/**
 * What every syslog listener shares: counters, the sender allow-list (cached per address for UDP),
 * and turning one UDP datagram into a line (or a counted drop), in the listener's thread or in the
 * UDP receive thread alike.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import type { Socket as UdpSocket } from 'node:dgram';
import { CidrSet, canonicalIp, parseCidr } from '../../util/ip.js';
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

/** One datagram, one message (RFC 5426): its text, or undefined when it was dropped (and counted). */
export class DatagramReader {
  readonly counters = new Counters();
  private readonly senders: SenderCache;
  private readonly maxBytes: number;

  constructor(private readonly opts: DatagramOptions) {
    this.senders = new SenderCache(makeAllow(opts.allow));
    this.maxBytes = opts.maxMessageBytes || 65536;
  }

  read(msg: Buffer, address: string | undefined): { text: string; sender: string } | undefined {
    const c = this.counters;
    const [sender, allowed] = this.senders.get(address);
    if (!allowed) return void c.drop('notAllowed');
    // trailing LF/CR/NUL are not part of the message
    let e = msg.length;
    while (e > 0 && (msg[e - 1] === 0x0a || msg[e - 1] === 0x0d || msg[e - 1] === 0)) e--;
    if (e === 0) return void c.drop('empty');
    if (e > this.maxBytes) return void c.drop('tooLarge');
    const t = frameText(msg.subarray(0, e), this.opts.invalidUtf8);
    if (!t.ok) return void c.drop(t.reason);
    if (t.notUtf8) c.event('notUtf8');
    return { text: t.text, sender };
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
