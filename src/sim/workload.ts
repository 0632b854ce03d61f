/**
 * The workload generator: hosts, ground-truth presence (who physically held which IP when) and
 * the log events (Sightings) the DHCP servers and the VPN hub would write, per the workload model
 * §4.3. The scheduler under test sees only the Sightings, after the log delay.
 */
import type { Sighting } from '../sighting.js';
import { Rng } from './rng.js';
import type { FleetParams, Scenario } from './scenario.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

export interface SimHost {
  id: number;
  mac: string;
  hostname: string;
  user: string;
  region: number;
  kind: 'server' | 'laptop';
  /** per-host scan-time multiplier */
  mult: number;
}

/** A physical presence: `host` is on the network holding `ip` from `start` to `end` (ms). */
export interface Presence {
  host: number;
  ip: string;
  region: number;
  net: 'server' | 'wired' | 'wifi' | 'vpn';
  start: number;
  end: number;
  /** the first sighting of this presence (ms): for sighting → scan latency */
  sightedAt: number;
}

export interface LogEvent {
  at: number;
  s: Sighting;
}

export interface PoolInfo {
  region: number;
  kind: 'wired' | 'wifi' | 'vpn' | 'server';
  base: number;
  size: number;
}

export interface Workload {
  start: number;
  end: number;
  hosts: SimHost[];
  presences: Presence[];
  /** sorted by time */
  events: LogEvent[];
  /** per IP, presences sorted by start (they never overlap) */
  truth: Map<string, Presence[]>;
  /** per region: its CIDRs */
  regionCidrs: string[][];
  /** per region: the address ranges a blind range scan covers */
  pools: PoolInfo[];
  stats: Record<string, number>;
}

export function ipOf(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function regionBase(r: number): number {
  return ((10 << 24) | ((r + 1) << 16)) >>> 0;
}
const VPN_BASE = ((10 << 24) | (250 << 16)) >>> 0;

function macOf(id: number): string {
  const h = (id + 0x100).toString(16).padStart(8, '0');
  return `02:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}`;
}

function pickWeighted(rng: Rng, weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let x = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    x -= weights[i];
    if (x < 0) return i;
  }
  return weights.length - 1;
}

export function generateWorkload(sc: Scenario, seed: number): Workload {
  const start = Date.parse(sc.startAt);
  const end = start + sc.days * DAY;
  const regionCidrs = sc.regions.map((_, r) => [`${ipOf(regionBase(r))}/16`]);
  if (sc.fleet) {
    const vr = sc.regions.findIndex((r) => r.name === sc.fleet!.vpnRegion);
    regionCidrs[vr].push(`${ipOf(VPN_BASE)}/16`);
  }
  const w: Workload = { start, end, hosts: [], presences: [], events: [], truth: new Map(), regionCidrs, pools: [], stats: {} };
  const rng = new Rng(seed, 1);
  if (sc.servers) generateServers(sc, w, rng);
  if (sc.fleet) generateFleet(sc, sc.fleet, w, rng);
  w.events.sort((a, b) => a.at - b.at);
  w.presences.sort((a, b) => a.start - b.start);
  for (const p of w.presences) {
    let l = w.truth.get(p.ip);
    if (!l) w.truth.set(p.ip, (l = []));
    l.push(p);
  }
  return w;
}

function generateServers(sc: Scenario, w: Workload, rng: Rng): void {
  const multRng = new Rng(rng.int(2 ** 31), 7);
  let id = w.hosts.length;
  sc.servers!.perRegion.forEach((n, r) => {
    const base = regionBase(r) + 0x8000;
    w.pools.push({ region: r, kind: 'server', base, size: n });
    for (let i = 0; i < n; i++) {
      const h: SimHost = { id: id++, mac: macOf(id), hostname: `srv-${r + 1}-${i}`, user: '', region: r, kind: 'server', mult: multRng.logNormal(1, sc.scan.hostMultSigma) };
      w.hosts.push(h);
      const ip = ipOf(base + i);
      const at = w.start - HOUR;
      const until = w.end + 7 * DAY;
      w.presences.push({ host: h.id, ip, region: r, net: 'server', start: at, end: until, sightedAt: at });
      // a static reservation: one lease covering the whole run
      w.events.push({ at, s: { kind: 'lease', ip, mac: h.mac, hostname: h.hostname, at: new Date(at).toISOString(), durationS: Math.round((until - at) / 1000), format: 'sim-dhcp', source: 'sim' } });
    }
  });
}

type PoolKey = 'wired' | 'wifiA' | 'wifiB' | 'vpn';

interface Conn {
  host: number;
  region: number;
  pool: PoolKey;
  t0: number;
  t1: number;
  /** when the hub logs the tunnel-down (idle timeout), ≥ t1 */
  logEnd: number;
}

interface Pool {
  region: number;
  key: PoolKey;
  base: number;
  size: number;
  lease: number;
  holder: Int32Array;
  leaseEnd: Float64Array;
  freedAt: Float64Array;
  held: number;
  peak: number;
  exhausted: number;
}

function newPool(region: number, key: PoolKey, base: number, size: number, lease: number): Pool {
  return {
    region, key, base, size, lease, holder: new Int32Array(size).fill(-1), leaseEnd: new Float64Array(size), freedAt: new Float64Array(size).fill(-Infinity),
    held: 0, peak: 0, exhausted: 0,
  };
}

function generateFleet(sc: Scenario, f: FleetParams, w: Workload, rng: Rng): void {
  const nR = sc.regions.length;
  const vpnRegion = sc.regions.findIndex((r) => r.name === f.vpnRegion);
  const days = Math.ceil(sc.days);
  const hostRng = new Rng(rng.int(2 ** 31), 2);
  const first = w.hosts.length;
  const office: number[] = [];
  for (let i = 0; i < f.laptops; i++) {
    const id = first + i;
    const region = pickWeighted(hostRng, sc.regions.map((r) => r.weight));
    const rare = hostRng.chance(f.rareShare);
    let pi = hostRng.beta(2, 2) * (f.officeMean / 0.5);
    if (rare) pi *= f.rareFactor;
    office.push(pi);
    w.hosts.push({ id, mac: macOf(id), hostname: `lt-${id}`, user: `u${id}`, region, kind: 'laptop', mult: hostRng.logNormal(1, sc.scan.hostMultSigma) });
  }
  // VPN-day probability on non-office workdays, so that VPN tunnels are `vpnShare` of all sessions
  const meanSession = f.sessionMedianMin * Math.exp(f.sessionSigma ** 2 / 2);
  const meanGap = f.gapMedianMin * Math.exp(f.gapSigma ** 2 / 2);
  const officeSessions = (1 - f.wiredShare) * (f.stayMedianH * 60 + meanGap) / (meanSession + meanGap) + f.wiredShare;
  const officeRate = Math.min(0.99, office.reduce((a, b) => a + b, 0) / office.length);
  const tunnels = 1 + f.tunnelsExtraPoisson;
  const q = f.vpnShare <= 0 ? 0 : Math.min(1, (f.vpnShare / (1 - f.vpnShare)) * officeRate * officeSessions / ((1 - officeRate) * tunnels));

  const conns: Conn[] = [];
  const dayRng = new Rng(rng.int(2 ** 31), 3);
  const startDay = new Date(w.start);
  const day0 = Date.UTC(startDay.getUTCFullYear(), startDay.getUTCMonth(), startDay.getUTCDate());
  for (const h of w.hosts) {
    if (h.kind !== 'laptop') continue;
    const pi = office[h.id - first];
    for (let d = 0; d < days; d++) {
      const dayStart = day0 + d * DAY;
      const dow = new Date(dayStart).getUTCDay(); // 0 = Sunday
      const workday = dow >= 1 && dow <= 5;
      const pOffice = workday ? Math.min(1, pi * f.weekdayFactors[dow - 1]) : f.weekendProb * Math.min(1, pi / Math.max(0.01, f.officeMean));
      if (dayRng.chance(pOffice)) {
        const arrive = dayStart + dayRng.normal(f.arrivalMeanH * HOUR, f.arrivalSdMin * MIN);
        const leave = arrive + dayRng.logNormal(f.stayMedianH * HOUR, f.staySigma);
        if (dayRng.chance(f.wiredShare)) {
          conns.push({ host: h.id, region: h.region, pool: 'wired', t0: arrive, t1: leave, logEnd: leave });
        } else {
          let t = arrive;
          let pool: PoolKey = dayRng.chance(0.5) ? 'wifiA' : 'wifiB';
          while (t < leave) {
            const t1 = Math.min(leave, t + dayRng.logNormal(f.sessionMedianMin * MIN, f.sessionSigma));
            if (t1 - t >= MIN) conns.push({ host: h.id, region: h.region, pool, t0: t, t1, logEnd: t1 });
            t = t1 + dayRng.logNormal(f.gapMedianMin * MIN, f.gapSigma);
            if (dayRng.chance(f.pRoam)) pool = pool === 'wifiA' ? 'wifiB' : 'wifiA';
          }
        }
      } else if (workday && dayRng.chance(q)) {
        const n = 1 + dayRng.poisson(f.tunnelsExtraPoisson);
        let t = dayStart + dayRng.normal((f.arrivalMeanH + 0.25) * HOUR, 60 * MIN);
        for (let k = 0; k < n; k++) {
          let len = dayRng.logNormal(f.tunnelMedianH * HOUR, f.tunnelSigma);
          if (f.maxSessionMin > 0) len = Math.min(len, f.maxSessionMin * MIN);
          const t1 = t + len;
          const idle = dayRng.chance(f.pIdle);
          let logEnd = idle ? t1 + f.idleTimeoutMin * MIN : t1;
          if (f.maxSessionMin > 0) logEnd = Math.min(logEnd, t + f.maxSessionMin * MIN);
          if (len >= MIN) conns.push({ host: h.id, region: vpnRegion, pool: 'vpn', t0: t, t1, logEnd });
          t = logEnd + dayRng.logNormal(f.tunnelGapMedianMin * MIN, 1);
        }
      }
    }
  }
  conns.sort((a, b) => a.t0 - b.t0 || a.host - b.host);
  // a host's connections never overlap (VPN idle tails can reach into the next one: clip)
  const lastEnd = new Map<number, number>();
  const kept: Conn[] = [];
  for (const c of conns) {
    const le = lastEnd.get(c.host) ?? -Infinity;
    if (c.t0 < le) continue;
    lastEnd.set(c.host, c.logEnd);
    kept.push(c);
  }
  kept.forEach((c) => {
    if (c.t0 < w.start - DAY) c.t0 = w.start - DAY;
  });
  const inRange = kept.filter((c) => c.t1 > w.start && c.t0 < w.end);

  // pass 1: unbounded pools to find the peak number of held addresses; pass 2: pools sized by ρ
  const big = Math.max(64, f.laptops + 16);
  const sizes = new Map<string, number>();
  const p1 = allocate(sc, f, inRange, w, nR, vpnRegion, () => big, new Rng(rng.int(2 ** 31), 4), false);
  for (const p of p1) sizes.set(`${p.region}:${p.key}`, Math.max(8, Math.ceil(p.peak / f.utilisation)));
  const allocRng = new Rng(rng.int(2 ** 31), 5);
  const pools = allocate(sc, f, inRange, w, nR, vpnRegion, (r, k) => sizes.get(`${r}:${k}`) ?? 8, allocRng, true);
  for (const p of pools) {
    w.pools.push({ region: p.region, kind: p.key === 'wired' ? 'wired' : p.key === 'vpn' ? 'vpn' : 'wifi', base: p.base, size: p.size });
    w.stats.poolExhausted = (w.stats.poolExhausted ?? 0) + p.exhausted;
  }
  // calibration figures (workload model §4.3)
  const workdays: number[] = [];
  const seenDay = new Map<number, Set<number>>();
  for (const c of inRange) {
    const d = Math.floor((c.t0 - day0) / DAY);
    let s = seenDay.get(d);
    if (!s) seenDay.set(d, (s = new Set()));
    s.add(c.host);
  }
  for (let d = 0; d < days; d++) {
    const dow = new Date(day0 + d * DAY).getUTCDay();
    if (dow >= 1 && dow <= 5) workdays.push((seenDay.get(d)?.size ?? 0) / f.laptops);
  }
  const weekShare: number[] = [];
  for (let wk = 0; wk + 7 <= days; wk += 7) {
    const s = new Set<number>();
    for (let d = wk; d < wk + 7; d++) for (const h of seenDay.get(d) ?? []) s.add(h);
    weekShare.push(s.size / f.laptops);
  }
  const online = inRange.reduce((a, c) => a + (Math.min(c.t1, w.end) - Math.max(c.t0, w.start)), 0);
  w.stats.sessions = inRange.length;
  w.stats.vpnSessionShare = inRange.filter((c) => c.pool === 'vpn').length / Math.max(1, inRange.length);
  w.stats.seenPerWorkday = workdays.length ? workdays.reduce((a, b) => a + b, 0) / workdays.length : 0;
  w.stats.seenPerWeek = weekShare.length ? weekShare.reduce((a, b) => a + b, 0) / weekShare.length : 0;
  w.stats.onlineFraction = online / (f.laptops * (w.end - w.start));
  w.stats.vpnDayProb = q;
}

function allocate(sc: Scenario, f: FleetParams, conns: Conn[], w: Workload, nR: number, vpnRegion: number,
  sizeOf: (region: number, key: PoolKey) => number, rng: Rng, emit: boolean): Pool[] {
  const pools = new Map<string, Pool>();
  const pool = (region: number, key: PoolKey): Pool => {
    const k = `${region}:${key}`;
    let p = pools.get(k);
    if (!p) {
      const off = key === 'wired' ? 0x0000 : key === 'wifiA' ? 0x4000 : key === 'wifiB' ? 0x6000 : 0;
      const base = key === 'vpn' ? VPN_BASE + 0x10 : regionBase(region) + off + 0x10;
      const lease = key === 'wired' ? f.wiredLeaseS * 1000 : key === 'vpn' ? Infinity : f.wifiLeaseS * 1000;
      const size = Math.min(key === 'vpn' ? 0xfff0 : 0x1ff0, sizeOf(region, key));
      p = newPool(region, key, base, size, lease);
      pools.set(k, p);
    }
    return p;
  };
  void nR;
  void vpnRegion;
  // the last address each host had in each pool (sticky allocation)
  const lastIp = new Map<string, number>();
  // pending releases of VPN addresses (freed at the hub's tunnel-down)
  interface Ev { t: number; kind: 0 | 1; c: Conn }
  const evs: Ev[] = [];
  for (const c of conns) {
    evs.push({ t: c.t0, kind: 0, c });
    evs.push({ t: c.logEnd, kind: 1, c });
  }
  evs.sort((a, b) => a.t - b.t || b.kind - a.kind);
  const idxOf = new Map<Conn, number>();
  const released = new Map<Conn, boolean>();
  const countHeld = (p: Pool, t: number) => {
    // held = unexpired leases (DHCP) or open tunnels (VPN); cheap recount when needed
    let n = 0;
    for (let i = 0; i < p.size; i++) if (p.holder[i] >= 0 && p.leaseEnd[i] > t) n++;
    return n;
  };
  let sinceCount = 0;
  const S = (kind: Sighting['kind'], ip: string, h: SimHost, at: number, extra: Partial<Sighting> = {}): void => {
    if (!emit || at > w.end) return;
    const vpn = kind === 'tunnel-up' || kind === 'tunnel-down';
    const s: Sighting = vpn
      ? { kind, ip, user: h.user, hostname: h.hostname, at: new Date(at).toISOString(), format: 'sim-vpn', source: 'sim', ...extra }
      : { kind, ip, mac: h.mac, hostname: h.hostname, at: new Date(at).toISOString(), format: 'sim-dhcp', source: 'sim', ...extra };
    w.events.push({ at, s });
  };
  for (const e of evs) {
    const c = e.c;
    const h = w.hosts[c.host];
    const p = pool(c.region, c.pool);
    if (e.kind === 1) {
      // the connection ends: VPN tunnel-down frees the address; a DHCP client may release
      const i = idxOf.get(c);
      if (i === undefined) continue;
      if (c.pool === 'vpn') {
        if (p.holder[i] === c.host) {
          p.leaseEnd[i] = e.t;
          p.freedAt[i] = e.t;
          S('tunnel-down', ipOf(p.base + i), h, e.t);
        }
      } else if (released.get(c)) {
        if (p.holder[i] === c.host && p.leaseEnd[i] > e.t) {
          p.leaseEnd[i] = e.t;
          p.freedAt[i] = e.t;
          S('release', ipOf(p.base + i), h, e.t);
        }
      }
      continue;
    }
    const t = e.t;
    const key = `${c.host}:${c.region}:${c.pool}`;
    let i = -1;
    let kind: 'lease' | 'renew' | 'tunnel-up' = c.pool === 'vpn' ? 'tunnel-up' : 'lease';
    if (c.pool !== 'vpn') {
      const last = lastIp.get(key);
      if (last !== undefined && p.holder[last] === c.host && p.leaseEnd[last] > t) {
        i = last;
        kind = 'renew';
      } else if (last !== undefined && p.leaseEnd[last] <= t && f.alloc !== 'random') {
        i = last; // sticky: the old address is still free
      }
    }
    if (i < 0) {
      const policy = c.pool === 'vpn' ? f.vpnAlloc : f.alloc;
      let best = -1;
      if (policy === 'random') {
        for (let tries = 0; tries < 32 && best < 0; tries++) {
          const j = rng.int(p.size);
          if (p.leaseEnd[j] <= t) best = j;
        }
      }
      if (best < 0) {
        for (let j = 0; j < p.size; j++) {
          if (p.leaseEnd[j] > t) continue;
          if (policy === 'lru' || policy === 'sticky-lru') {
            if (best < 0 || p.freedAt[j] < p.freedAt[best]) best = j;
          } else {
            best = j;
            break;
          }
        }
      }
      if (best < 0) {
        // pool exhausted: the server hands out the address whose lease ends first (counted)
        p.exhausted++;
        best = 0;
        for (let j = 1; j < p.size; j++) if (p.leaseEnd[j] < p.leaseEnd[best]) best = j;
      }
      i = best;
    }
    const prevHolder = p.holder[i];
    if (prevHolder >= 0 && prevHolder !== c.host && p.leaseEnd[i] > t) {
      // truncate the previous holder's presence (stolen address)
    }
    p.holder[i] = c.host;
    lastIp.set(key, i);
    idxOf.set(c, i);
    const ip = ipOf(p.base + i);
    if (c.pool === 'vpn') {
      p.leaseEnd[i] = Infinity;
      S('tunnel-up', ip, h, t);
    } else {
      p.leaseEnd[i] = t + p.lease;
      const stated = f.leaseInLines ? { durationS: Math.round(p.lease / 1000) } : {};
      S(kind, ip, h, t, stated);
      // renewals at T1 while the client stays
      for (let r = t + p.lease / 2; r < c.t1; r += p.lease / 2) {
        p.leaseEnd[i] = r + p.lease;
        S('renew', ip, h, r, stated);
      }
      released.set(c, rng.chance(f.pRelease));
    }
    if (emit) w.presences.push({ host: c.host, ip, region: c.region, net: c.pool === 'vpn' ? 'vpn' : c.pool === 'wired' ? 'wired' : 'wifi', start: c.t0, end: c.t1, sightedAt: c.t0 });
    if (++sinceCount >= 64 || !emit) {
      sinceCount = 0;
      if (!emit) {
        // peak tracking (pass 1 only: the count is O(pool))
        p.held++;
        if (p.held % 16 === 0) {
          const n = countHeld(p, t);
          p.held = n;
          if (n > p.peak) p.peak = n;
        }
      }
    }
  }
  if (!emit) for (const p of pools.values()) p.peak = Math.max(p.peak, countHeld(p, w.end));
  void sc;
  return [...pools.values()];
}
