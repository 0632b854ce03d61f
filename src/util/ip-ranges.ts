/**
 * Address ranges as integer intervals: what a range scan may cover is its wanted CIDRs and ranges,
 * clipped to the scope and with the exclusions cut out, written as the scanner takes them
 * (`10.0.0.5`, `10.0.0.7-10.0.0.200`). IPv4 and IPv6, never mixed within one interval.
 */
import ipaddr from 'ipaddr.js';
import { parseCidr } from './ip.js';

interface Interval {
  v6: boolean;
  lo: bigint;
  hi: bigint;
}

function toBig(a: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  let n = 0n;
  for (const b of a.toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBig(n: bigint, v6: boolean): string {
  const bytes: number[] = [];
  for (let i = 0; i < (v6 ? 16 : 4); i++) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** One CIDR, address or `a-b` range as an interval; undefined when it is none of those. */
export function parseInterval(text: string): Interval | undefined {
  const t = text.trim();
  const dash = t.indexOf('-');
  if (dash > 0) {
    const a = parseCidr(t.slice(0, dash)), b = parseCidr(t.slice(dash + 1));
    if (!a || !b || a.text.includes('/') || b.text.includes('/') || a.addr.kind() !== b.addr.kind()) return undefined;
    const lo = toBig(a.addr), hi = toBig(b.addr);
    return lo <= hi ? { v6: a.addr.kind() === 'ipv6', lo, hi } : undefined;
  }
  const c = parseCidr(t);
  if (!c) return undefined;
  const width = c.addr.kind() === 'ipv6' ? 128 : 32;
  const host = (1n << BigInt(width - c.bits)) - 1n;
  const lo = toBig(c.addr) & ~host;
  return { v6: width === 128, lo, hi: lo | host };
}

function merge(list: Interval[]): Interval[] {
  const sorted = [...list].sort((a, b) => Number(a.v6) - Number(b.v6) || (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && last.v6 === i.v6 && i.lo <= last.hi + 1n) {
      if (i.hi > last.hi) last.hi = i.hi;
    } else out.push({ ...i });
  }
  return out;
}

/** Two merged (sorted, disjoint) lists' common addresses, in one pass over both. */
function intersect(a: Interval[], b: Interval[]): Interval[] {
  const x = merge(a), y = merge(b);
  const out: Interval[] = [];
  const before = (p: Interval, q: Interval) => (p.v6 !== q.v6 ? !p.v6 : p.hi < q.hi);
  for (let i = 0, j = 0; i < x.length && j < y.length;) {
    const p = x[i], q = y[j];
    if (p.v6 === q.v6) {
      const lo = p.lo > q.lo ? p.lo : q.lo, hi = p.hi < q.hi ? p.hi : q.hi;
      if (lo <= hi) out.push({ v6: p.v6, lo, hi });
    }
    // the one that ends first can meet nothing further on
    if (before(p, q)) i++;
    else j++;
  }
  return out;
}

/** `a` less `cut`, in one pass over both merged (sorted, disjoint) lists. */
function subtract(a: Interval[], cut: Interval[]): Interval[] {
  const rest = merge(a), cuts = merge(cut);
  const out: Interval[] = [];
  // (a cut wholly before x: another family first, or ending below it)
  const before = (c: Interval, x: Interval) => (c.v6 !== x.v6 ? !c.v6 : c.hi < x.lo);
  let j = 0;
  for (const x of rest) {
    while (j < cuts.length && before(cuts[j], x)) j++;
    let lo = x.lo;
    for (let k = j; k < cuts.length && cuts[k].v6 === x.v6 && cuts[k].lo <= x.hi; k++) {
      const c = cuts[k];
      if (c.lo > lo) out.push({ v6: x.v6, lo, hi: c.lo - 1n });
      if (c.hi + 1n > lo) lo = c.hi + 1n;
      if (c.hi >= x.hi) break;
    }
    if (lo <= x.hi) out.push({ v6: x.v6, lo, hi: x.hi });
  }
  return out;
}

function parseAll(list: string[], what: string): Interval[] {
  return list.map((t) => {
    const i = parseInterval(t);
    if (!i) throw new Error(`${what}: "${t}" is not an address, CIDR or a-b range`);
    return i;
  });
}

/** How many addresses the ranges hold. */
export function rangeSize(ranges: string[]): bigint {
  return parseAll(ranges, 'range').reduce((n, i) => n + i.hi - i.lo + 1n, 0n);
}

/**
 * `wanted` clipped to `scope`, less `exclude`, merged and sorted, as addresses and `a-b` ranges.
 * Throws (naming the entry) on anything that is not an address, CIDR or range.
 */
export function allowedRanges(wanted: string[], scope: string[], exclude: string[]): string[] {
  const inside = subtract(intersect(parseAll(wanted, 'range'), parseAll(scope, 'scope')), parseAll(exclude, 'exclude'));
  return inside.map((i) => (i.lo === i.hi ? fromBig(i.lo, i.v6) : `${fromBig(i.lo, i.v6)}-${fromBig(i.hi, i.v6)}`));
}

/** Every address of the ranges, in order (for a simulator or an emulator expanding a target list; bounded by `max`). */
export function expandRanges(ranges: string[], max = 1 << 20): string[] {
  const out: string[] = [];
  for (const i of merge(parseAll(ranges, 'range'))) {
    for (let n = i.lo; n <= i.hi; n++) {
      if (out.length >= max) throw new Error(`more than ${max} addresses in ${ranges.join(',')}`);
      out.push(fromBig(n, i.v6));
    }
  }
  return out;
}

/** A test for whether an address lies in the ranges (merged once; a binary search per address). Unreadable addresses are outside. */
export function rangeMatcher(ranges: string[]): (ip: string) => boolean {
  const list = merge(parseAll(ranges, 'range'));
  return (ip) => {
    const a = parseInterval(ip);
    if (!a || a.lo !== a.hi) return false;
    let lo = 0, hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, m = list[mid];
      if (m.v6 !== a.v6 ? !m.v6 : m.hi < a.lo) lo = mid + 1;
      else if (m.v6 !== a.v6 || m.lo > a.lo) hi = mid - 1;
      else return true;
    }
    return false;
  };
}

/** Do the two lists of addresses, CIDRs and ranges share an address? (throws, naming the entry, on one that is none of those) */
export function rangesOverlap(a: string[], b: string[]): boolean {
  return intersect(parseAll(a, 'range'), parseAll(b, 'range')).length > 0;
}

/** What of one entry the cover and the entries before it leave (uncoveredParts). */
export interface UncoveredPart {
  /** the pieces, each a CIDR where it is one, else an address or `a-b` range, the largest first */
  pieces: { text: string; size: bigint }[];
  /** addresses left, and in the entry */
  size: bigint;
  entrySize: bigint;
}

/**
 * For each of `entries` in order, the addresses that neither `cover` nor an earlier entry holds
 * (`cumulative` false: `cover` alone; undefined for an entry that is no address, CIDR or range). Each list is parsed once, and each
 * entry is cut against the part of the merged cover it overlaps (found by binary search), so
 * thousands of entries against thousands of CIDRs take milliseconds (config check's scope warning
 * took 137 s for 2,000 of each, cutting each entry against every CIDR parsed again).
 */
export function uncoveredParts(entries: string[], cover: string[], cumulative = true): (UncoveredPart | undefined)[] {
  const covered = merge(parseAll(cover, 'range'));
  const key = (i: Interval) => (i.v6 ? 1n << 129n : 0n) + i.lo; // (IPv4 before IPv6, as merge sorts)
  return entries.map((text) => {
    const e = parseInterval(text);
    if (!e) return undefined;
    // the first covered interval that may overlap e: the last one starting at or before e's start
    let lo = 0, hi = covered.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (key(covered[mid]) <= key(e)) lo = mid + 1;
      else hi = mid;
    }
    const from = Math.max(0, lo - 1);
    let to = from;
    while (to < covered.length && (covered[to].v6 !== e.v6 ? covered[to].v6 === false : covered[to].lo <= e.hi)) to++;
    const window = covered.slice(from, to);
    const left = subtract([e], window);
    // the entry joins the cover (what it leaves is said under it, not again under a later one)
    if (cumulative) covered.splice(from, to - from, ...merge([...window, e]));
    const pieces = left.map((i) => ({ text: intervalText(i), size: i.hi - i.lo + 1n })).sort((a, b) => (a.size > b.size ? -1 : a.size < b.size ? 1 : 0));
    return { pieces, size: pieces.reduce((n, p) => n + p.size, 0n), entrySize: e.hi - e.lo + 1n };
  });
}

/** An interval as a CIDR where it is one, else an address or an `a-b` range. */
function intervalText(i: Interval): string {
  const n = i.hi - i.lo + 1n;
  const width = i.v6 ? 128 : 32;
  if (n === 1n) return fromBig(i.lo, i.v6);
  if ((n & (n - 1n)) === 0n && (i.lo & (n - 1n)) === 0n) {
    const bits = width - (n.toString(2).length - 1);
    return `${fromBig(i.lo, i.v6)}/${bits}`;
  }
  return `${fromBig(i.lo, i.v6)}-${fromBig(i.hi, i.v6)}`;
}
