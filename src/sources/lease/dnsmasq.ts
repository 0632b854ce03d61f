/**
 * dnsmasq.leases: dnsmasq rewrites the whole file on every change (lease-file.c, lease_update_file),
 * one lease per line:
 *
 *   <expiry epoch s, 0 = infinite> <MAC or hwtype-hex> <IPv4> <hostname or *> <client-id or *>
 *   duid <server DUID>                                   (then, for DHCPv6:)
 *   <expiry> <IAID> <IPv6> <hostname or *> <client DUID or *>
 *
 * A snapshot format: what changed is found by comparing with the previous snapshot (kept as the
 * input's position). Parsing never throws and is linear in the file.
 */
import { canonicalIp } from '../../util/ip.js';
import { normalizeMac } from '../../util/mac.js';

export interface SnapshotLease {
  ip: string;
  /** epoch ms; undefined = infinite */
  expiresAt?: number;
  mac?: string;
  duid?: string;
  clientId?: string;
  hostname?: string;
}

export interface SnapshotParse {
  leases: SnapshotLease[];
  /** malformed lines: 1-based line number and why */
  errors: { line: number; why: string }[];
  /** the file did not end with a newline: probably read while being rewritten */
  truncated: boolean;
  /** how many addresses the leases list, each once, when the parser counts them */
  distinct?: number;
}

const field = (v: string | undefined) => (v === undefined || v === '*' ? undefined : v);

/** One line's reading: a lease, why it is malformed, or nothing (blank, the server's `duid` line). */
type Row = SnapshotLease | { why: string } | null;

function parseLine(text: string): Row {
  const l = text.trim();
  if (l === '') return null;
  const f = l.split(/\s+/);
  if (f[0] === 'duid') return f.length !== 2 ? { why: 'duid line without exactly one value' } : null;
  if (f.length < 4 || f.length > 5) return { why: `expected 4 or 5 fields, found ${f.length}` };
  if (!/^\d{1,12}$/.test(f[0])) return { why: 'expiry is not a number' };
  const ip = canonicalIp(f[2]);
  if (!ip) return { why: `not an address: ${f[2].slice(0, 64)}` };
  const exp = Number(f[0]);
  const lease: SnapshotLease = { ip, expiresAt: exp === 0 ? undefined : exp * 1000 };
  const host = field(f[3]);
  if (host && host.length <= 255) lease.hostname = host;
  const cid = field(f[4]);
  if (ip.includes(':')) {
    if (cid) lease.duid = cid;
  } else {
    // Ethernet as aa:bb:..; other hardware types as <type>-<hex> (kept as the client id)
    const mac = normalizeMac(f[1]);
    if (mac) lease.mac = mac;
    if (cid) lease.clientId = cid;
    if (!mac && !cid) lease.clientId = f[1];
  }
  return lease;
}

export function parseDnsmasqLeases(text: string): SnapshotParse {
  const out: SnapshotParse = { leases: [], errors: [], truncated: text.length > 0 && !text.endsWith('\n') };
  const lines = text.split('\n');
  if (out.truncated) lines.pop();
  for (let i = 0; i < lines.length; i++) take(out, parseLine(lines[i]), i);
  return out;
}

function take(out: SnapshotParse, row: Row, i: number): void {
  if (row === null) return;
  if ('why' in row) out.errors.push({ line: i + 1, why: row.why });
  else out.leases.push(row);
}

/** A file as read: its bytes, where each whole line starts (then where the last one ends), and what each gave. */
interface Read {
  bytes: Buffer;
  starts: number[];
  rows: Row[];
}

/**
 * parseDnsmasqLeases over a file's bytes, for one input. dnsmasq rewrites the whole file for each
 * lease that changes: only the lines between what the file shares with the one read before, at its
 * start and at its end, are parsed (50,000 leases parsed whole took 130-260 ms a rewrite). A line
 * kept so gives the same lease object as before, which the snapshot's comparison passes over.
 */
export function dnsmasqParser(): (bytes: Buffer) => SnapshotParse {
  let last: Read = { bytes: Buffer.alloc(0), starts: [0], rows: [] };
  // the addresses listed, and by how many lines each
  const listed = new Map<string, number>();
  const count = (row: Row, d: number) => {
    if (row === null || 'why' in row) return;
    const k = (listed.get(row.ip) ?? 0) + d;
    if (k) listed.set(row.ip, k);
    else listed.delete(row.ip);
  };
  return (bytes) => {
    // (a last line without its newline, read during a rewrite, is not a line yet: truncated)
    const whole = bytes.lastIndexOf(0x0a) + 1;
    const { starts: was, rows: had } = last;
    const n = had.length;
    const wasWhole = was[n];
    // lines wholly within the bytes both files start with, and within those they end with, are the lines read before
    const a = lastAtOrBelow(was, commonPrefix(bytes, last.bytes, Math.min(whole, wasWhole)));
    const from = was[a];
    const tail = wasWhole - commonSuffix(bytes, whole, last.bytes, wasWhole, Math.min(whole, wasWhole) - from);
    // (a line is kept from the end when its start and the newline before it lie in what both end with)
    const b = firstAbove(was, tail, a);
    const shift = whole - wasWhole;
    for (let i = a; i < b; i++) count(had[i], -1);
    const newStarts: number[] = [];
    const newRows: Row[] = [];
    for (let at = from, end = was[b] + shift; at < end; ) {
      const nl = bytes.indexOf(0x0a, at);
      // (decoded on its own: a slice of one string of the whole file, kept in a lease, would keep all of it)
      const row = parseLine(bytes.toString('utf8', at, nl));
      count(row, 1);
      newStarts.push(at);
      newRows.push(row);
      at = nl + 1;
    }
    // (in place: not two new tables of 50,000 entries, for the garbage collector, at each rewrite)
    const starts = splice(was, a, b, newStarts);
    const rows = splice(had, a, b, newRows);
    if (shift !== 0) for (let i = a + newStarts.length; i < starts.length; i++) starts[i] += shift;
    last = { bytes, starts, rows };
    const out: SnapshotParse = { leases: [], errors: [], truncated: bytes.length > whole, distinct: listed.size };
    for (let i = 0; i < rows.length; i++) take(out, rows[i], i);
    return out;
  };
}

/** `v` with its entries from `a` to before `b` replaced by `by` (in place, but for a large change). */
function splice<T>(v: T[], a: number, b: number, by: T[]): T[] {
  if (by.length > 10_000) return [...v.slice(0, a), ...by, ...v.slice(b)];
  v.splice(a, b - a, ...by);
  return v;
}

const BLOCK = 64 * 1024;

/** How many bytes `x` and `y` have in common from their start, at most `max`. */
function commonPrefix(x: Buffer, y: Buffer, max: number): number {
  let p = 0;
  // (by blocks, compared natively, then byte by byte within the block that differs)
  while (p < max) {
    const e = Math.min(max, p + BLOCK);
    if (x.compare(y, p, e, p, e) !== 0) break;
    p = e;
  }
  while (p < max && x[p] === y[p]) p++;
  return p;
}

/** How many bytes `x` before `xEnd` and `y` before `yEnd` have in common at their end, at most `max`. */
function commonSuffix(x: Buffer, xEnd: number, y: Buffer, yEnd: number, max: number): number {
  let s = 0;
  while (s < max) {
    const k = Math.min(BLOCK, max - s);
    if (x.compare(y, yEnd - s - k, yEnd - s, xEnd - s - k, xEnd - s) !== 0) break;
    s += k;
  }
  while (s < max && x[xEnd - s - 1] === y[yEnd - s - 1]) s++;
  return s;
}

/** The last index of ascending `v` whose value is at most `x` (v[0] is at most x). */
function lastAtOrBelow(v: number[], x: number): number {
  let lo = 0;
  let hi = v.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (v[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The first index from `lo` of ascending `v` whose value is above `x`; the last index when none is. */
function firstAbove(v: number[], x: number, lo: number): number {
  let hi = v.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
