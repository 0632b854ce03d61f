/**
 * Is a device due for a scan? Due = present now, inside policy.scope, not in policy.exclude,
 * mapped to a region, not scanned within its rescan window (rule > region > default), and inside
 * the region's scan windows. Every answer carries its reason, for the decision log.
 * In a cluster the scope and exclusions of the other live nodes narrow ours (`withPeers`).
 */
import { MAX_AHEAD_MS } from '../sighting.js';
import { CidrSet, neverTargetReason, parseCidr } from '../util/ip.js';
import { allowedRanges } from '../util/ip-ranges.js';
import type { BindingView } from '../inventory/inventory.js';
import { RegionMap, type RegionDef } from './regions.js';
import { inBlackout, insideWindows, parseBlackout, parseWindow, type Blackout, type ScanWindow } from './windows.js';

export interface PolicyRegion extends RegionDef {
  rescanAfter?: number;
  scanWindows?: string[];
  /** dates or spans with no scans, besides the weekly windows (windows.ts); a blackout stops our scans going when it begins */
  blackouts?: string[];
  /** what becomes of our scans still going when the region's scan windows close: run to their end (the default) or stop */
  scanWindowEnd?: 'finish' | 'stop';
  timezone?: string;
}

export interface PolicyOptions {
  scope: string[];
  exclude: string[];
  /** seconds */
  rescanAfter: number;
  rules: { cidrs: string[]; rescanAfter: number }[];
  regions: PolicyRegion[];
  timezone: string;
  /**
   * seconds before its rescan window runs out that a present device is due again, so that it is
   * rescanned while still inside the window rather than on the last day or after it (default:
   * rescanLeadFor(window), a seventh of the window and at most a day)
   */
  rescanLead?: number;
}

/** The default lead: a seventh of the window, at most one day (7 d → 1 d, 30 d → 1 d, 1 d → 3.4 h). */
export function rescanLeadFor(windowS: number): number {
  return Math.min(86400, windowS / 7);
}

/** A node's policy.scope and policy.exclude as published in cluster_nodes.policy (addresses and CIDRs: no secret). */
export interface NodePolicyLists {
  scope: string[];
  exclude: string[];
}

/** Another cluster node's lists. */
export interface PeerPolicy extends NodePolicyLists {
  node: string;
}

/** A list as nodes compare it: each entry trimmed, once, sorted (anything but a list as it is). */
export function comparableList(l: unknown): unknown {
  return Array.isArray(l) ? [...new Set(l.map((c) => String(c).trim()))].sort() : l;
}

/** Two nodes' lists are the same when these keys are (the order and repeats of entries aside). */
export function policyListsKey(p: { scope?: unknown; exclude?: unknown }): string {
  return JSON.stringify([comparableList(p.scope), comparableList(p.exclude)]);
}

/** What is wrong with a peer's lists (naming the node, the key and the entry), or undefined when they are usable. */
export function peerPolicyProblem(p: PeerPolicy): string | undefined {
  for (const key of ['scope', 'exclude'] as const) {
    const list = p[key] as unknown;
    if (!Array.isArray(list)) return `node ${p.node}'s policy.${key} is not a list`;
    const bad = list.findIndex((c) => typeof c !== 'string' || parseCidr(c) === undefined);
    if (bad >= 0) return `node ${p.node}'s policy.${key}[${bad}] (${JSON.stringify(list[bad])?.slice(0, 80)}) is not a CIDR or IP address`;
  }
  return undefined;
}

/**
 * The part of a peer's lists this node can apply: each entry that parses (an entry that does not
 * is left out: for scope that narrows, for exclude it loses only that entry, where ignoring the
 * peer whole would lose every other exclusion it has). Undefined when a list is no list at all.
 */
export function usablePeerLists(p: PeerPolicy): PeerPolicy | undefined {
  if (!Array.isArray(p.scope) || !Array.isArray(p.exclude)) return undefined;
  const parses = (c: unknown): c is string => typeof c === 'string' && parseCidr(c) !== undefined;
  return { node: p.node, scope: p.scope.filter(parses), exclude: p.exclude.filter(parses) };
}

interface Peer {
  node: string;
  scopeList: string[];
  excludeList: string[];
  scope: CidrSet<string>;
  exclude: CidrSet<string>;
}

const PEERS_DIFFER = "cluster nodes' policies differ: scanned only where every live node's policy allows";

export type Reason =
  | 'due' | 'out-of-scope' | 'excluded' | 'no-region' | 'not-present' | 'scanned-recently' | 'outside-scan-window'
  /** an operator's `onsight skip` (scheduler/marks.ts) */
  | 'skipped';

export interface Verdict {
  due: boolean;
  reason: Reason;
  /** human explanation */
  detail: string;
  region?: string;
  /** the CIDR that mapped the address to its region */
  regionCidr?: string;
}

/** allowedRanges' answers kept (a region's targets, its aims: a few per region) */
const ALLOWED_CACHE_MAX = 256;

export class Policy {
  private readonly scope = new CidrSet<string>();
  private readonly exclude = new CidrSet<string>();
  private readonly rules = new CidrSet<number>();
  readonly regions: RegionMap<PolicyRegion>;
  private readonly windows = new Map<string, ScanWindow[]>();
  private readonly blackouts = new Map<string, Blackout[]>();
  /** Does any region stop our scans when it closes (a blackout, or scanWindowEnd: stop)? Asked at every scheduler pass. */
  readonly stopsScans: boolean;
  /** other live cluster nodes whose scope and exclusions narrow ours (never widen them) */
  private readonly peers: Peer[];
  /** allowedRanges' answers by the ranges asked for */
  private readonly allowedCache = new Map<string, string[]>();

  constructor(private readonly opts: PolicyOptions, peers: PeerPolicy[] = []) {
    for (const c of opts.scope) this.scope.add(parseCidr(c)!, c);
    for (const c of opts.exclude) this.exclude.add(parseCidr(c)!, c);
    this.peers = peers.map((p) => {
      const problem = peerPolicyProblem(p);
      if (problem) throw new Error(problem);
      const peer: Peer = { node: p.node, scopeList: [...p.scope], excludeList: [...p.exclude], scope: new CidrSet(), exclude: new CidrSet() };
      for (const c of p.scope) peer.scope.add(parseCidr(c)!, c);
      for (const c of p.exclude) peer.exclude.add(parseCidr(c)!, c);
      return peer;
    });
    for (const r of opts.rules) for (const c of r.cidrs) this.rules.add(parseCidr(c)!, r.rescanAfter);
    this.regions = new RegionMap(opts.regions);
    for (const r of opts.regions) {
      if (r.blackouts) {
        this.blackouts.set(r.name, r.blackouts.map((b) => {
          const parsed = parseBlackout(b);
          if (!parsed) throw new Error(`region ${r.name}: blackout "${b}" does not parse`);
          return parsed;
        }));
      }
      if (!r.scanWindows) continue;
      // a window that does not parse must never mean "any time" (config validation refuses it first)
      this.windows.set(r.name, r.scanWindows.map((w) => {
        const parsed = parseWindow(w);
        if (!parsed) throw new Error(`region ${r.name}: scan window "${w}" does not parse`);
        return parsed;
      }));
    }
    this.stopsScans = this.blackouts.size > 0 || opts.regions.some((r) => r.scanWindowEnd === 'stop' && !!r.scanWindows);
  }

  /**
   * This policy narrowed by other cluster nodes' lists: an address is allowed only where this
   * policy and every peer's scope and exclusions allow it. A peer with a wider scope changes nothing.
   * Throws (naming the node and key) on a peer list that does not parse.
   */
  withPeers(peers: PeerPolicy[]): Policy {
    return new Policy(this.opts, peers);
  }

  /** The nodes whose lists narrow this policy (withPeers), by name. */
  get peerNodes(): string[] {
    return this.peers.map((p) => p.node);
  }

  /** The hard rule, checked again right before every launch: scope and not excluded (by this node and every peer). */
  allowed(ip: string): boolean {
    return neverTargetReason(ip) === undefined && this.scope.contains(ip) && !this.exclude.contains(ip)
      && this.peers.every((p) => p.scope.contains(ip) && !p.exclude.contains(ip));
  }

  /** What a range scan of `wanted` may cover: clipped to the scope, exclusions cut out (addresses and a-b ranges), then each peer's in turn. */
  allowedRanges(wanted: string[]): string[] {
    // (the scheduler asks for the same region's ranges at every pass: parsing the lists each time was
    // half of a range-scan simulation's time; a policy never changes, a reload makes a new one)
    const key = wanted.join(',');
    let out = this.allowedCache.get(key);
    if (!out) {
      out = allowedRanges(wanted, this.opts.scope, this.opts.exclude);
      for (const p of this.peers) {
        if (!out.length) break;
        out = allowedRanges(out, p.scopeList, p.excludeList);
      }
      if (this.allowedCache.size >= ALLOWED_CACHE_MAX) this.allowedCache.clear();
      this.allowedCache.set(key, out);
    }
    return [...out];
  }

  rescanAfterS(ip: string, region?: string): number {
    const rule = this.rules.lookup(ip);
    if (rule !== undefined) return rule;
    const r = region ? this.regions.byName(region) : undefined;
    return r?.rescanAfter ?? this.opts.rescanAfter;
  }

  /** Seconds after its last scan that a device is due again: its rescan window less the lead. */
  dueAfterS(ip: string, region?: string): number {
    const window = this.rescanAfterS(ip, region);
    return Math.max(window / 2, window - (this.opts.rescanLead ?? rescanLeadFor(window)));
  }

  /** Is `region`'s scan window open at `now` (no windows: always) and the region outside its blackouts? */
  windowOpen(region: string, now: number): boolean {
    const r = this.regions.byName(region);
    const zone = r?.timezone ?? this.opts.timezone;
    return insideWindows(this.windows.get(region), now, zone) && !inBlackout(this.blackouts.get(region), now, zone);
  }

  /**
   * Why our scans going in `region` must stop at `now`, if they must: a blackout has begun, or its
   * scan windows have closed and the region says `scanWindowEnd: stop`. Undefined: they run on.
   */
  stopReason(region: string, now: number): string | undefined {
    const r = this.regions.byName(region);
    if (!r) return undefined;
    const zone = r.timezone ?? this.opts.timezone;
    if (inBlackout(this.blackouts.get(region), now, zone)) return `region ${region} is in a blackout (${r.blackouts?.join(', ')})`;
    if (r.scanWindowEnd === 'stop' && !insideWindows(this.windows.get(region), now, zone)) return `region ${region}'s scan windows (${r.scanWindows?.join(', ')}) have closed (scanWindowEnd: stop)`;
    return undefined;
  }

  evaluate(b: BindingView, now: number): Verdict {
    const ip = b.ip;
    const never = neverTargetReason(ip);
    if (never) return { due: false, reason: 'out-of-scope', detail: `${ip} is ${never}: never scanned, whatever policy.scope says` };
    if (!this.scope.contains(ip)) return { due: false, reason: 'out-of-scope', detail: `${ip} is outside policy.scope` };
    const ex = this.exclude.lookup(ip);
    if (ex) return { due: false, reason: 'excluded', detail: `${ip} is excluded by ${ex}` };
    for (const p of this.peers) {
      if (!p.scope.contains(ip)) return { due: false, reason: 'out-of-scope', detail: `${ip} is outside node ${p.node}'s policy.scope: ${PEERS_DIFFER}` };
      const pex = p.exclude.lookup(ip);
      if (pex) return { due: false, reason: 'excluded', detail: `node ${p.node}'s policy excludes ${ip} (${pex}): ${PEERS_DIFFER}` };
    }
    const m = this.regions.lookup(ip);
    if (!m) return { due: false, reason: 'no-region', detail: `${ip} matches no region's CIDRs` };
    const region = m.region.name;
    const base = { region, regionCidr: m.cidr };
    if (b.endAt !== undefined || (b.expiresAt !== undefined && b.expiresAt < now)) {
      return { ...base, due: false, reason: 'not-present', detail: b.endAt !== undefined ? `binding ended (${b.endReason})` : 'lease ran out' };
    }
    const window = this.rescanAfterS(ip, region);
    const dueAfter = this.dueAfterS(ip, region);
    // (a last scan dated over a day ahead of now is a bad date, a skewed clock's or a platform's: not trusted, or it held the device for good)
    if (b.lastScannedAt !== undefined && b.lastScannedAt <= now + MAX_AHEAD_MS && now - b.lastScannedAt < dueAfter * 1000) {
      return {
        ...base, due: false, reason: 'scanned-recently',
        detail: `scanned ${new Date(b.lastScannedAt).toISOString()} (${b.lastScannedVia ?? 'onsight'}), rescan after ${fmtDuration(dueAfter)} (window ${fmtDuration(window)})`,
      };
    }
    const zone = m.region.timezone ?? this.opts.timezone;
    if (!insideWindows(this.windows.get(region), now, zone)) {
      return { ...base, due: false, reason: 'outside-scan-window', detail: `region ${region} allows scans only ${m.region.scanWindows?.join(', ')}` };
    }
    if (inBlackout(this.blackouts.get(region), now, zone)) {
      return { ...base, due: false, reason: 'outside-scan-window', detail: `region ${region} is in a blackout (${m.region.blackouts?.join(', ')})` };
    }
    const why = b.lastScannedAt === undefined ? 'never scanned' : `last scanned ${new Date(b.lastScannedAt).toISOString()}, older than ${fmtDuration(dueAfter)} (window ${fmtDuration(window)})`;
    return { ...base, due: true, reason: 'due', detail: why };
  }
}

export function fmtDuration(s: number): string {
  if (s % 86400 === 0) return `${s / 86400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
