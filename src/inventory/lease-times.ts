/**
 * Lease times of DHCP pools whose lines state none. ISC dhcpd's syslog lines, dnsmasq's and
 * Windows DHCP's audit log carry no lease time, so a binding was taken to last
 * `inventory.defaultLeaseS` (1 h) after each line: on pools with 12-h leases a laptop looked gone
 * an hour after its DHCPACK until its renewal six hours later, and its queued scan was dropped as
 * "lease ran out" (the simulator: 13 points of coverage with 16-min hosts). A client renews at T1,
 * half its lease (RFC 2131 §4.4.5), and the parsers tell a renewal from a new lease (ISC's
 * DHCPREQUEST state, dnsmasq's DHCPRENEW, Windows event 11): the time from a device's previous
 * line at an address to its renewal there is half a lease. But a laptop back in the morning asks
 * for its address again (INIT-REBOOT) and is logged as a renewal too, its interval the night's
 * absence: in an office that is one such sample a day for each laptop's one real renewal, and a
 * median would land between them. So a pool (an IPv4 /24, an IPv6 /64) learns the lease time its
 * renewals agree on: of its last SAMPLES, the most common to within BIN_S, once MIN_SAMPLES agree
 * (real renewals come at the same point of the same lease; absences spread); while none agree, their
 * median (once MIN_SAMPLES are in). Not kept across restarts: a pool's renewals teach it again.
 *
 * The lines are the clients' to make: one client renewing every minute taught its whole /24 a
 * 5-min lease, and the devices queued there were dropped as gone (identity probe, session 41). So a
 * device keeps at most PER_DEVICE samples in its pool (its newest), the samples that agree are
 * counted by device (one device, one vote), and a lease time is taken only from MIN_DEVICES devices
 * or more (the median, when none agree, from MEDIAN_DEVICES). A pool where one device alone renews
 * learns nothing: its lines keep defaultLeaseS. One vote per device is one vote per MAC: a client
 * that renews under as many MACs as the pool has devices that agree still wins (left as it is).
 */
import { isIpv6, parseIp } from '../util/ip.js';

const SAMPLES = 50;
/** renewals that must agree (to within BIN_S) before a pool's lease time is taken */
const MIN_SAMPLES = 3;
/** a device's samples kept in its pool, at most (its newest) */
const PER_DEVICE = 3;
/** devices whose samples must be among those agreeing */
const MIN_DEVICES = 2;
/** devices that must have given samples before their median is taken (when none agree) */
const MEDIAN_DEVICES = 3;
/** lease times this close count as one (log delays, a client's own fuzz around T1) */
const BIN_S = 600;
/** renewals closer than this to the line before are repeats (a client's retries, two log lines), not a half-lease */
const MIN_HALF_LEASE_MS = 60_000;
/** learned lease times are held to this range */
const MIN_LEASE_S = 300;
const MAX_LEASE_S = 14 * 86400;
/** devices whose last line is remembered, at most (forgotten all at once beyond: learning starts again) */
const MAX_DEVICES = 200_000;

export class LeaseTimes {
  /** `${ip} ${identity key}` → when that device's last line without a lease time came there */
  private readonly lastLine = new Map<string, number>();
  /** pool → learned lease times in seconds with the device that taught each, newest last */
  private readonly pools = new Map<string, { s: number; device: string }[]>();
  /** pool → the lease time its samples agree on (undefined: none yet), until its next sample */
  private readonly agreed = new Map<string, number | undefined>();

  /**
   * A DHCP line without a lease time: a renewal teaches its pool (twice the time since the
   * device's previous line at that address). Lines come in time order per address (older ones are
   * ignored before this: apply.ts staleForAddress).
   */
  seen(ip: string, identityKey: string, kind: string, at: number): void {
    const key = `${ip} ${identityKey}`;
    const prev = this.lastLine.get(key);
    if (this.lastLine.size >= MAX_DEVICES) this.lastLine.clear();
    this.lastLine.set(key, at);
    if (kind !== 'renew' || prev === undefined || at - prev < MIN_HALF_LEASE_MS) return;
    const pool = poolOf(ip);
    if (!pool) return;
    const s = this.pools.get(pool) ?? [];
    const own = s.filter((x) => x.device === identityKey);
    if (own.length >= PER_DEVICE) s.splice(s.indexOf(own[0]), 1);
    s.push({ s: Math.min(MAX_LEASE_S, Math.max(MIN_LEASE_S, (2 * (at - prev)) / 1000)), device: identityKey });
    if (s.length > SAMPLES) s.shift();
    this.pools.set(pool, s);
    this.agreed.delete(pool);
  }

  /** The lease time learned for `ip`'s pool, in seconds: the one MIN_SAMPLES renewals or more agree on to within BIN_S (the shortest of equals), else their median; undefined before MIN_SAMPLES. */
  leaseS(ip: string): number | undefined {
    const pool = poolOf(ip);
    if (!pool) return undefined;
    // (asked at every line without a lease time: answered once per pool and sample)
    if (!this.agreed.has(pool)) this.agreed.set(pool, this.agreedOn(this.pools.get(pool)));
    return this.agreed.get(pool);
  }

  private agreedOn(samples: { s: number; device: string }[] | undefined): number | undefined {
    if (!samples || samples.length < MIN_SAMPLES || devicesIn(samples) < MIN_DEVICES) return undefined;
    // the sample with the most devices within BIN_S of it (one device, one vote; then the most
    // samples; the shortest of equals), and those
    const sorted = [...samples].sort((a, b) => a.s - b.s);
    let best: { s: number; device: string }[] = [];
    let bestDevices = 0;
    for (const x of sorted) {
      const near = samples.filter((y) => Math.abs(y.s - x.s) <= BIN_S);
      const d = devicesIn(near);
      if (d > bestDevices || (d === bestDevices && near.length > best.length)) [best, bestDevices] = [near, d];
    }
    if (best.length >= MIN_SAMPLES && bestDevices >= MIN_DEVICES) return best.reduce((a, b) => a + b.s, 0) / best.length;
    // none agree (a pool of laptops only, none staying past T1: every sample an absence): their
    // median, hours or days, is nearer the truth than defaultLeaseS's hour, which dropped devices
    // still present from the queue (the simulator: 16-min hosts 70 % with the hour, 82 % with the
    // median, 84 % with the lease in the lines)
    // (each device's own median, then theirs, the lower of two middles: one device, one vote; from
    // MEDIAN_DEVICES devices, or one device back after a week set a steady pool's lease to 14 days)
    const byDevice = new Map<string, number[]>();
    for (const x of sorted) {
      const v = byDevice.get(x.device);
      if (v) v.push(x.s);
      else byDevice.set(x.device, [x.s]);
    }
    if (byDevice.size < MEDIAN_DEVICES) return undefined;
    const votes = [...byDevice.values()].map((v) => v[Math.floor((v.length - 1) / 2)]).sort((a, b) => a - b);
    return votes[Math.floor((votes.length - 1) / 2)];
  }
}

function devicesIn(samples: { device: string }[]): number {
  return new Set(samples.map((x) => x.device)).size;
}

/** The pool an address is taken to belong to: its IPv4 /24 or IPv6 /64. */
function poolOf(ip: string): string | undefined {
  const a = parseIp(ip);
  if (!a) return undefined;
  const b = a.toByteArray();
  if (!isIpv6(a.toString())) return `${b[0]}.${b[1]}.${b[2]}.0/24`;
  const hex = (i: number) => ((b[i] << 8) | b[i + 1]).toString(16);
  return `${hex(0)}:${hex(2)}:${hex(4)}:${hex(6)}::/64`;
}
