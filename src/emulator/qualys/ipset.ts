/**
 * Address sets as Qualys writes them: single IPs, `a-b` ranges (IPv4) and CIDRs, comma-separated.
 * Used for the subscription's IP list and for `ip=` / `ips=` parameters.
 */
import ipaddr from 'ipaddr.js';
import { canonicalIp } from '../../util/ip.js';

interface V4Range {
  start: number;
  end: number;
}

export function v4ToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

export function intToV4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** One item of an address list, or undefined when it is not an address, range or CIDR. */
export function parseItem(item: string): { v4?: V4Range; v6?: string } | undefined {
  const t = item.trim();
  if (t.includes('/')) {
    try {
      const [addr, bits] = ipaddr.parseCIDR(t);
      if (addr.kind() === 'ipv4') {
        const base = v4ToInt(addr.toString()) >>> 0;
        const size = 2 ** (32 - bits);
        const start = Math.floor(base / size) * size;
        return { v4: { start, end: start + size - 1 } };
      }
      return undefined; // IPv6 CIDRs are not needed here
    } catch {
      return undefined;
    }
  }
  const dash = t.indexOf('-');
  if (dash > 0) {
    const a = canonicalIp(t.slice(0, dash));
    const b = canonicalIp(t.slice(dash + 1));
    if (!a || !b || a.includes(':') || b.includes(':')) return undefined;
    const start = v4ToInt(a);
    const end = v4ToInt(b);
    return start <= end ? { v4: { start, end } } : undefined;
  }
  const ip = canonicalIp(t);
  if (!ip) return undefined;
  return ip.includes(':') ? { v6: ip } : { v4: { start: v4ToInt(ip), end: v4ToInt(ip) } };
}

export class IpSet {
  private ranges: V4Range[] = [];
  private readonly v6 = new Set<string>();

  /** Adds a comma list; returns the items that are not addresses. */
  add(list: string | string[]): string[] {
    const bad: string[] = [];
    for (const item of splitList(list)) {
      const p = parseItem(item);
      if (!p) bad.push(item);
      else if (p.v6) this.v6.add(p.v6);
      else if (p.v4) this.ranges.push(p.v4);
    }
    this.ranges = mergeRanges(this.ranges);
    return bad;
  }

  has(ip: string): boolean {
    const c = canonicalIp(ip);
    if (!c) return false;
    if (c.includes(':')) return this.v6.has(c);
    const n = v4ToInt(c);
    return this.ranges.some((r) => r.start <= n && n <= r.end);
  }

  /** Does the set hold every address of this item? */
  covers(item: string): boolean {
    const p = parseItem(item);
    if (!p) return false;
    if (p.v6) return this.v6.has(p.v6);
    return this.ranges.some((r) => r.start <= p.v4!.start && p.v4!.end <= r.end);
  }

  /** The set as Qualys lists it: single IPs and ranges. */
  items(): { ips: string[]; ranges: string[] } {
    const ips = [...this.v6];
    const ranges: string[] = [];
    for (const r of this.ranges) {
      if (r.start === r.end) ips.push(intToV4(r.start));
      else ranges.push(`${intToV4(r.start)}-${intToV4(r.end)}`);
    }
    return { ips, ranges };
  }
}

/** A list as the emulator writes a schedule's TARGET back [U]: single addresses, then merged ranges. */
export function normalisedList(items: string[]): string[] {
  const set = new IpSet();
  set.add(items);
  const { ips, ranges } = set.items();
  return [...ips, ...ranges];
}

export function splitList(list: string | string[]): string[] {
  const arr = Array.isArray(list) ? list : [list];
  return arr.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

function mergeRanges(rs: V4Range[]): V4Range[] {
  const sorted = [...rs].sort((a, b) => a.start - b.start);
  const out: V4Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}
