import ipaddr from 'ipaddr.js';

/** Canonical form of an IP address (IPv4 dotted quad, IPv6 compressed lower-case), or undefined. */
export function canonicalIp(text: string | undefined): string | undefined {
  if (!text || text.length > 64 || !ipChars(text)) return undefined;
  let t = text.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const pct = t.indexOf('%');
  if (pct >= 0) {
    t = t.slice(0, pct); // zone index (fe80::1%eth0) is not part of the address
    // (IPv6 only, RFC 4007: `10.0.0.1%<junk>` is no address, not 10.0.0.1)
    if (!t.includes(':')) return undefined;
  }
  if (fastIPv4(t)) return t; // already canonical
  try {
    if (ipaddr.IPv4.isValidFourPartDecimal(t)) return ipaddr.IPv4.parse(t).toString();
    if (t.includes(':')) t = quadAsHex(t);
    if (t.includes(':') && ipaddr.IPv6.isValid(t)) {
      const a = ipaddr.IPv6.parse(t);
      if (a.isIPv4MappedAddress()) return a.toIPv4Address().toString();
      return a.toString();
    }
  } catch {
    /* fall through */
  }
  return undefined;
}

/**
 * An IPv6 text whose last 32 bits are written as a dotted quad, with those bits in hex instead:
 * ipaddr.js reads every `::a.b.c.d` as IPv4-mapped (`::10.0.0.1` became 10.0.0.1, another host),
 * where only `::ffff:a.b.c.d` is. Other text is returned as it is.
 */
function quadAsHex(t: string): string {
  if (!t.includes('.')) return t;
  const colon = t.lastIndexOf(':');
  const quad = t.slice(colon + 1);
  if (colon < 0 || !ipaddr.IPv4.isValidFourPartDecimal(quad)) return t;
  const b = ipaddr.IPv4.parse(quad).toByteArray();
  return `${t.slice(0, colon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
}

/**
 * Only characters an address can have (hex digits, `.`, `:`, `%zone`, brackets, spaces)? A cheap
 * test that spares ipaddr.js (which throws, slowly) the host names it is so often asked about.
 */
function ipChars(t: string): boolean {
  const pct = t.indexOf('%');
  const n = pct >= 0 ? pct : t.length;
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    const ok = (c >= 48 && c <= 58) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) || c === 46 || c === 91 || c === 93 || c === 32 || c === 9;
    if (!ok) return false;
  }
  return true;
}

export function isIpv6(ip: string): boolean {
  return ip.includes(':');
}

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;

export interface Cidr {
  text: string;
  addr: Parsed;
  bits: number;
}

export function parseCidr(text: string): Cidr | undefined {
  try {
    const t = text.trim();
    if (!t.includes('/')) {
      const a = canonicalIp(t);
      if (!a) return undefined;
      const p = ipaddr.parse(a);
      return { text: t, addr: p, bits: p.kind() === 'ipv4' ? 32 : 128 };
    }
    const slash = t.indexOf('/');
    const [addr, bits] = ipaddr.parseCIDR(`${quadAsHex(t.slice(0, slash))}${t.slice(slash)}`);
    if (addr.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(t.slice(0, t.indexOf('/')))) return undefined;
    // ::ffff:10.99.0.0/112 is 10.99.0.0/16: addresses are compared as IPv4 once canonical
    if (addr.kind() === 'ipv6' && bits >= 96 && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
      return { text: t, addr: (addr as ipaddr.IPv6).toIPv4Address(), bits: bits - 96 };
    }
    return { text: t, addr, bits };
  } catch {
    return undefined;
  }
}

/**
 * A canonical dotted quad (no leading zeros, which ipaddr.js reads as octal) without ipaddr.js's
 * regex parser: the status page and the policy parse every present address (about 20% of a status
 * build at 200k went to ipaddr.parse). Anything else returns undefined and goes to ipaddr.js.
 */
export function fastIPv4(s: string): ipaddr.IPv4 | undefined {
  if (s.length < 7 || s.length > 15) return undefined;
  const octets = [0, 0, 0, 0];
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return undefined;
      octets[part++] = val;
      val = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57 || (digits > 0 && val === 0)) return undefined;
    val = val * 10 + (c - 48);
    if (++digits > 3 || val > 255) return undefined;
  }
  if (part !== 3 || digits === 0) return undefined;
  octets[3] = val;
  return new ipaddr.IPv4(octets);
}

/** An address as ipaddr.js sees it, IPv4-mapped IPv6 (::ffff:10.0.0.1) as IPv4; undefined if not one. */
export function parseIp(ip: string): Parsed | undefined {
  const v4 = fastIPv4(ip);
  if (v4) return v4;
  try {
    const a = ipaddr.parse(quadAsHex(ip));
    return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
  } catch {
    return undefined;
  }
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const a = parseIp(ip);
  if (!a || a.kind() !== c.addr.kind()) return false;
  return (a as ipaddr.IPv4).match(c.addr as ipaddr.IPv4, c.bits);
}

/** ipaddr.js ranges that are never a device to scan, whatever the scope says. */
const NEVER_TARGETS: Record<string, string> = {
  loopback: 'a loopback address', broadcast: 'the broadcast address', multicast: 'a multicast address', linkLocal: 'a link-local address',
  unspecified: 'an unspecified address',
};

/** Why an address can never be a scan target (`a loopback address` …), or undefined when it can be. */
export function neverTargetReason(ip: string): string | undefined {
  const a = parseIp(ip);
  if (!a) return 'not an address';
  return NEVER_TARGETS[a.range()];
}

/** A set of CIDRs answering "is this address inside?" and "which is the longest prefix?". */
export class CidrSet<T = string> {
  private readonly entries: { cidr: Cidr; value: T }[] = [];

  add(cidr: Cidr, value: T): void {
    this.entries.push({ cidr, value });
    this.entries.sort((a, b) => b.cidr.bits - a.cidr.bits); // longest prefix first
  }

  /** value of the longest matching prefix */
  lookup(ip: string): T | undefined {
    const a = parseIp(ip);
    if (!a) return undefined;
    for (const e of this.entries) {
      if (e.cidr.addr.kind() === a.kind() && (a as ipaddr.IPv4).match(e.cidr.addr as ipaddr.IPv4, e.cidr.bits)) return e.value;
    }
    return undefined;
  }

  contains(ip: string): boolean {
    return this.lookup(ip) !== undefined;
  }

  get size(): number {
    return this.entries.length;
  }

  cidrs(): Cidr[] {
    return this.entries.map((e) => e.cidr);
  }
}

/** Two CIDRs overlap when one contains the other's network address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.addr.kind() !== b.addr.kind()) return false;
  const bits = Math.min(a.bits, b.bits);
  return (a.addr as ipaddr.IPv4).match(b.addr as ipaddr.IPv4, bits);
}
