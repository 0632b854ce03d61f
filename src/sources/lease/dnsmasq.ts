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
}

const field = (v: string | undefined) => (v === undefined || v === '*' ? undefined : v);

export function parseDnsmasqLeases(text: string): SnapshotParse {
  const out: SnapshotParse = { leases: [], errors: [], truncated: text.length > 0 && !text.endsWith('\n') };
  const lines = text.split('\n');
  if (out.truncated) lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    if (l === '') continue;
    const f = l.split(/\s+/);
    if (f[0] === 'duid') {
      if (f.length !== 2) out.errors.push({ line: i + 1, why: 'duid line without exactly one value' });
      continue;
    }
    if (f.length < 4 || f.length > 5) {
      out.errors.push({ line: i + 1, why: `expected 4 or 5 fields, found ${f.length}` });
      continue;
    }
    if (!/^\d{1,12}$/.test(f[0])) {
      out.errors.push({ line: i + 1, why: 'expiry is not a number' });
      continue;
    }
    const ip = canonicalIp(f[2]);
    if (!ip) {
      out.errors.push({ line: i + 1, why: `not an address: ${f[2].slice(0, 64)}` });
      continue;
    }
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
    out.leases.push(lease);
  }
  return out;
}
