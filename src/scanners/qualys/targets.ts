/**
 * Target lists as Qualys writes them (`10.0.0.1,10.0.0.5-10.0.0.9`, host names, asset UUIDs) ↔ the
 * canonical addresses we launch. Linear in the text; ranges expand only up to a bound.
 */
import { canonicalIp } from '../../util/ip.js';

const MAX_EXPANDED = 65_536;
/** an address or a range of them inside free text; validated afterwards */
const TOKEN = /[0-9A-Fa-f:.]{3,45}(?:-[0-9A-Fa-f:.]{3,45})?/g;

interface Item {
  /** the IPv4 range as integers, or one IPv6 address */
  v4?: [number, number];
  v6?: string;
}

function v4int(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function v4text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function item(token: string): Item | undefined {
  const dash = token.indexOf('-');
  const a = canonicalIp(dash < 0 ? token : token.slice(0, dash));
  const b = dash < 0 ? a : canonicalIp(token.slice(dash + 1));
  if (!a || !b) return undefined;
  if (!a.includes(':') && !b.includes(':')) {
    const lo = v4int(a);
    const hi = v4int(b);
    return lo <= hi ? { v4: [lo, hi] } : undefined;
  }
  return a === b ? { v6: a } : undefined; // IPv6 ranges: not seen in Qualys answers, not guessed at
}

/**
 * A scan's TARGET as canonical addresses (ranges expanded, up to 65 536 in all); items that are not
 * addresses (host names, EC2/Azure ids) are kept as written.
 */
export function expandTargets(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const t = raw.trim();
    if (!t) continue;
    const it = item(t);
    if (it?.v6) out.push(it.v6);
    else if (it?.v4 && it.v4[1] - it.v4[0] < MAX_EXPANDED - out.length) for (let n = it.v4[0]; n <= it.v4[1]; n++) out.push(v4text(n));
    else out.push(t);
  }
  return out;
}

/** Of the addresses we sent, those a Qualys message names (singly or inside a range). */
export function addressesNamed(message: string, sent: string[]): string[] {
  const items: Item[] = [];
  for (const m of message.matchAll(TOKEN)) {
    const it = item(m[0]);
    if (it) items.push(it);
  }
  if (items.length === 0) return [];
  return sent.filter((ip) => {
    if (ip.includes(':')) return items.some((i) => i.v6 === ip);
    const n = v4int(ip);
    return items.some((i) => i.v4 !== undefined && i.v4[0] <= n && n <= i.v4[1]);
  });
}

/**
 * A target list as a set: IPv4 ranges merged and sorted, IPv6 addresses sorted. Two lists that
 * name the same addresses (`10.0.0.0/30` and `10.0.0.0-10.0.0.3`) give the same set, however
 * Qualys rewrites a schedule's TARGET. Items that are not addresses, ranges or IPv4 CIDRs are `bad`.
 */
export interface RangeSet {
  v4: [number, number][];
  v6: string[];
  bad: string[];
}

function rangeItem(token: string): Item | undefined {
  const slash = token.indexOf('/');
  if (slash < 0) return item(token);
  const base = canonicalIp(token.slice(0, slash));
  const bitsText = token.slice(slash + 1);
  if (!base || base.includes(':') || !/^\d{1,2}$/.test(bitsText) || Number(bitsText) > 32) return undefined; // IPv6 CIDRs: not expandable here
  const size = 2 ** (32 - Number(bitsText));
  const lo = Math.floor(v4int(base) / size) * size;
  return { v4: [lo, lo + size - 1] };
}

export function rangeSet(items: string[]): RangeSet {
  const v4: [number, number][] = [];
  const v6 = new Set<string>();
  const bad: string[] = [];
  for (const raw of items.flatMap((t) => t.split(','))) {
    const t = raw.trim();
    if (!t) continue;
    const it = rangeItem(t);
    if (it?.v4) v4.push(it.v4);
    else if (it?.v6) v6.add(it.v6);
    else bad.push(t);
  }
  v4.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of v4) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return { v4: merged, v6: [...v6].sort(), bad };
}

/** The set as Qualys's `ip` parameter takes it: addresses and `a-b` ranges, comma-separated. */
export function rangeSetText(s: RangeSet): string {
  const v4 = s.v4.map(([lo, hi]) => (lo === hi ? v4text(lo) : `${v4text(lo)}-${v4text(hi)}`));
  return [...v4, ...s.v6].join(',');
}

export function sameRangeSet(a: RangeSet, b: RangeSet): boolean {
  return rangeSetText(a) === rangeSetText(b) && a.bad.length === 0 && b.bad.length === 0;
}

export function rangeSetSize(s: RangeSet): number {
  return s.v4.reduce((n, [lo, hi]) => n + hi - lo + 1, 0) + s.v6.length;
}

/** Every address of the set, one at a time (the caller bounds the size first). */
export function* rangeSetAddresses(s: RangeSet): Generator<string> {
  for (const [lo, hi] of s.v4) for (let n = lo; n <= hi; n++) yield v4text(n);
  yield* s.v6;
}
