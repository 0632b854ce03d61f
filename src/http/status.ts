/**
 * The status model behind `/api/status`, the status page and part of `/metrics`: per region, the
 * hosts seen now, due, queued, being scanned, scanned within their rescan window, and the ones
 * that left unscanned (missed) with why; appliance load; recent decisions. Read-only.
 */
import { readFileSync } from 'node:fs';
import type { Reason } from '../policy/policy.js';
import type { Allowance } from '../scanners/types.js';
import type { Decision } from '../scheduler/queue.js';
import type { LearnedAppliance, LearnedLag, HostsInParallelStatus, LearnedStateStatus, RangeScanStatus, ScannerBlock } from '../scheduler/scheduler.js';
import type { DaemonView } from './view.js';
import type { DisabledReason } from '../daemon/decode-client.js';
import { disabledWhy } from '../daemon/decoders.js';
import type { AddressReuse } from '../store/types.js';
import { classifyMissed, decisionIndexFor } from '../coverage/missed.js';
import { inputStaleness, type InputStaleness } from './staleness.js';
import { coverageTimeline, type CoveragePoint } from './coverage.js';
import { describeState } from '../cluster/config.js';
import { costlyFiguresOf, type Costly } from './costly.js';

export interface ApplianceView {
  name: string;
  online: boolean;
  /** scans running on it (ours and others') as the scheduler last knew */
  load: number;
  /** ours among them */
  ours: number;
  /** maxScans from the config */
  capacity: number;
  /** what the scheduler learned (slots seen, full at, the capacity it uses now, pickup) and how */
  learned: LearnedAppliance;
}

export interface MissedReason {
  /** left-while-queued | left-during-scan | scan-failed | outside-scan-window | no-decision | other */
  key: string;
  text: string;
  count: number;
  examples: string[];
}

export interface RegionStatus {
  name: string;
  cidrs: string[];
  /** devices present now with an address in the region */
  seen: number;
  /** present and due now (includes the queued and the ones being scanned) */
  due: number;
  /** waiting in the queue for a scan slot */
  queued: number;
  /** targets of a scan in flight */
  scanning: number;
  /** targets of a scan that has ended, whose credit waits for the scanner's host list (verifyResults) */
  confirming: number;
  /** present and scanned within their rescan window */
  scannedInWindow: number;
  /** present, not due, by reason (scanned-recently, outside-scan-window, excluded, out-of-scope) */
  notDue: Partial<Record<Reason, number>>;
  /** devices that left in the last `missedWindowH` hours without being scanned */
  missed: number;
  missedWhy: MissedReason[];
  scans: { running: number; launched: number; finished: number; failed: number };
  appliances: ApplianceView[];
}

export interface InputStatus extends Partial<InputStaleness> {
  name: string;
  received: number;
  dropped: Record<string, number>;
  connections?: number;
  /** UDP: `native` (native/udp-recv, recvmmsg) or `dgram` (node's) */
  receiver?: 'native' | 'dgram';
}

/** a user parser plug-in the decode thread's watchdog turned off (until the daemon restarts) */
export interface DisabledPluginStatus {
  plugin: string;
  disabledAt: string;
  /** stalls, exits: it did that MAX_STALLS times within windowMin; threadGivenUp: it did either once, then the thread was given up */
  reason: DisabledReason;
  stalls: number;
  exits: number;
  windowMin: number;
  why: string;
}

/** the decode thread's watchdog (decode-client.ts) */
export interface DecoderStatus {
  /** lines dropped because a parser stayed on them past the line bound (also counted as parser errors) */
  timedOut: number;
  timedOutBySource: Record<string, number>;
  /** lines dropped because the thread ended on them (process.exit, out of memory; also parser errors); absent until the first */
  exited?: number;
  exitedBySource?: Record<string, number>;
  disabledPlugins: DisabledPluginStatus[];
}

export interface Status {
  version: string;
  now: string;
  startedAt: string;
  uptimeS: number;
  state: string;
  /** waitUntil: no call before this time (the scanner asked to wait); stopped: why onsight stopped calling it; callsHeldUntil: per kind of call, a wait that holds back that kind only */
  scanner: { kind: string; allowance: Allowance; apiCalls: number; processingLag: LearnedLag; hostsInParallel: HostsInParallelStatus; rangeScans: RangeScanStatus; learnedState: LearnedStateStatus } & ScannerBlock;
  totals: {
    identities: number; present: number; sightings: number; lines: number; due: number; queued: number; scanning: number; confirming: number;
    missed: number; launched: number; finished: number; failed: number;
  };
  inputs: InputStatus[];
  regions: RegionStatus[];
  /** present devices whose address maps to no region */
  unmapped: { seen: number; notDue: Partial<Record<Reason, number>> };
  /** when the present devices (seen, due, not due) were last evaluated: a large fleet is re-evaluated less often */
  presentEvaluatedAt: string;
  /** when the missed devices were last counted (as presentEvaluatedAt) */
  missedEvaluatedAt: string;
  missedWindowH: number;
  decisions: (Omit<Decision, 'at'> & { at: string })[];
  scans: { id: string; region: string; appliance: string; state: string; scanRef?: string; createdAt: string; targets: number }[];
  /** coverage per region for each of the last days (UTC), oldest first; today's up to a minute old, earlier days' up to an hour (a day that took T to count: up to 50 T) */
  coverage: CoveragePoint[];
  /** cluster mode: this node, whether it leads, and the leader as it last saw the lease (a follower's page says who schedules) */
  cluster?: ClusterStatusView;
  /**
   * Addresses another device took after a binding ended, over the last `windowH` hours, per channel,
   * and how many it took within `quickMin` minutes: a VPN hub that hands a freed address to the next
   * user at once lets a probe of a user who just left reach the next one (README, wrong hosts).
   */
  addressReuse: { windowH: number; quickMin: number; channels: AddressReuse[] };
  /** the decode thread's watchdog; absent without a decode thread (ingest.decodeThread: then nothing cuts a line short) */
  decoder?: DecoderStatus;
}

/** The period and the limit of the status's address reuse figures. */
export const ADDRESS_REUSE = { windowH: 24, quickMin: 10 };

export interface ClusterStatusView {
  name: string;
  node: string;
  role: 'scheduler' | 'collector';
  /** leader: this node holds the lease; follower: another does, or nobody (leader null) */
  state: 'leader' | 'follower';
  leader: string | null;
  epoch: number;
  /** when the leader took the lease (database time) */
  leaderSince: string | null;
  leaseExpiresAt: string | null;
}

function clusterStatus(d: DaemonView): ClusterStatusView | undefined {
  const c = d.clusterNode?.();
  if (!c) return undefined;
  return {
    name: c.name, node: c.node, role: c.role, state: c.leading ? 'leader' : 'follower', leader: c.leader, epoch: c.epoch,
    leaderSince: c.leaderSince?.toISOString() ?? null, leaseExpiresAt: c.leaseExpiresAt?.toISOString() ?? null,
  };
}

function decoderStatus(d: DaemonView): DecoderStatus | undefined {
  const wd = d.decodeWatchdog();
  if (!wd) return undefined;
  const exited = Object.values(wd.exited).reduce((n, x) => n + x, 0);
  return {
    timedOut: Object.values(wd.timedOut).reduce((n, x) => n + x, 0),
    timedOutBySource: wd.timedOut,
    ...(exited ? { exited, exitedBySource: wd.exited } : {}),
    disabledPlugins: wd.disabled.map((p) => ({
      plugin: p.plugin, disabledAt: new Date(p.at).toISOString(), reason: p.reason, stalls: p.stalls, exits: p.exits, windowMin: p.windowMin,
      why: `${disabledWhy(p)}: ${[
        p.stalls ? `${p.stalls === 1 ? 'it' : 'each time it'} stayed on one line past the line bound (a regex that backtracks)` : '',
        p.exits ? `${p.exits === 1 ? 'it' : 'each time it'} ended the thread (process.exit, an error thrown from a timer or promise, or a line that makes it run out of memory)` : '',
      ].filter(Boolean).join('; ')}${p.reason === 'threadGivenUp' ? '; the main thread, which decodes now, has no watchdog' : ''}`,
    })),
  };
}

let versionCache: string | undefined;

/** onsight's version, from the nearest package.json named onsight (src/ and dist/src/ layouts). */
export function onsightVersion(): string {
  if (versionCache) return versionCache;
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'onsight' && p.version) return (versionCache = p.version);
    } catch {
      /* try the next layout */
    }
  }
  return (versionCache = 'unknown');
}


export interface StatusOptions {
  /** how far back "missed" looks, hours (default 24) */
  missedWindowH?: number;
  /** how many days of coverage (default 7) */
  coverageDays?: number;
  /** how many decisions to return (default 50) */
  decisions?: number;
}

interface Tally {
  seen: number;
  due: number;
  scannedInWindow: number;
  notDue: Partial<Record<Reason, number>>;
}

interface PresentTally {
  regions: Map<string, Tally>;
  unmapped: { seen: number; notDue: Partial<Record<Reason, number>> };
}

/**
 * Present devices by region (http/costly.ts: reused while the last evaluation of a large fleet is
 * fresh, and served while a fresh one runs). Bindings are read a page at a time.
 */
export function presentTally(d: DaemonView, now: number, version: string, evaluate: Evaluate): Promise<Costly<PresentTally>> {
  return costlyFiguresOf(d).get('present', now, version, () => evaluatePresent(d, now, evaluate));
}

/** the verdict for a binding at a time, operators' marks applied (DaemonView.markedEvaluator) */
type Evaluate = Awaited<ReturnType<DaemonView['markedEvaluator']>>;

async function evaluatePresent(d: DaemonView, now: number, evaluate: Evaluate): Promise<PresentTally> {
  const regions = new Map<string, Tally>();
  const unmapped = { seen: 0, notDue: {} as Partial<Record<Reason, number>> };
  const known = new Set(d.config().regions.map((r) => r.name));
  for await (const page of d.presentBindingPages(now)) {
    for (const b of page) {
      const v = evaluate(b, now);
      const name = v.region ?? d.regionOf(b.ip);
      if (!name || !known.has(name)) {
        unmapped.seen++;
        unmapped.notDue[v.reason] = (unmapped.notDue[v.reason] ?? 0) + 1;
        continue;
      }
      let r = regions.get(name);
      if (!r) regions.set(name, (r = { seen: 0, due: 0, scannedInWindow: 0, notDue: {} }));
      r.seen++;
      if (v.due) r.due++;
      else {
        r.notDue[v.reason] = (r.notDue[v.reason] ?? 0) + 1;
        if (v.reason === 'scanned-recently') r.scannedInWindow++;
      }
    }
  }
  return { regions, unmapped };
}

/** per region, the devices that left in the window unscanned, and why (count and examples by reason) */
type MissedTally = Map<string, { count: number; why: MissedReason[] }>;

/**
 * Devices that left in the last `windowH` hours, in scope and mapped, not covered by a scan within
 * their rescan window (http/costly.ts, as the present devices: a fleet that churns ends many
 * bindings a day). Reasons come from the last decision about the device itself
 * (src/coverage/missed.ts): the log is read a page at a time and only the decisions about the
 * devices that left are kept.
 */
function missedTally(d: DaemonView, now: number, windowH: number, version: string, evaluate: Evaluate): Promise<Costly<MissedTally>> {
  return costlyFiguresOf(d).get(`missed:${windowH}`, now, version, async () => {
    const since = now - windowH * 3600_000;
    const ended = await d.endedBindings(since, now);
    const decisions = await decisionIndexFor(ended.map((e) => e.view), d.decisionPagesSince(since - 7 * 86400_000));
    const whyMaps = new Map<string, Map<string, MissedReason>>();
    for (const x of classifyMissed(ended, decisions, evaluate)) {
      let m = whyMaps.get(x.region);
      if (!m) whyMaps.set(x.region, (m = new Map()));
      let w = m.get(x.key);
      if (!w) m.set(x.key, (w = { key: x.key, text: x.text, count: 0, examples: [] }));
      w.count++;
      if (w.examples.length < 5) w.examples.push(x.ip);
    }
    const out: MissedTally = new Map();
    for (const [region, m] of whyMaps) {
      const why = [...m.values()].sort((a, b) => b.count - a.count);
      out.set(region, { count: why.reduce((n, w) => n + w.count, 0), why });
    }
    return out;
  });
}

export async function buildStatus(d: DaemonView, opts: StatusOptions = {}): Promise<Status> {
  const now = Date.now();
  const windowH = opts.missedWindowH ?? 24;
  const config = d.config();
  const sc = d.schedulerCounters();
  // operators' skips count here as the scheduler counts them (a skipped device is not due, not missed)
  const evaluate = await d.markedEvaluator();

  const regions = new Map<string, RegionStatus>();
  for (const r of config.regions) {
    const bucket = sc.byRegion[r.name] ?? { launched: 0, finished: 0, failed: 0 };
    const appliances = [];
    for (const a of r.appliances) appliances.push({ name: a.name, capacity: a.maxScans, ...await d.applianceLoad(a.name), learned: d.applianceLearned(a.name) });
    regions.set(r.name, {
      name: r.name, cidrs: r.cidrs, seen: 0, due: 0, queued: 0, scanning: 0, confirming: 0, scannedInWindow: 0, notDue: {}, missed: 0, missedWhy: [],
      scans: { running: 0, launched: bucket.launched, finished: bucket.finished, failed: bucket.failed },
      appliances,
    });
  }
  const unmapped = { seen: 0, notDue: {} as Partial<Record<Reason, number>> };

  // present devices, and those that left unscanned: counted over the whole fleet (costly.ts), afresh
  // when an operator's mark or the config changed
  const version = await d.countsVersion();
  const [present, missed] = await Promise.all([presentTally(d, now, version, evaluate), missedTally(d, now, windowH, version, evaluate)]);
  for (const [name, t] of present.value.regions) {
    const r = regions.get(name);
    if (!r) continue;
    r.seen = t.seen;
    r.due = t.due;
    r.scannedInWindow = t.scannedInWindow;
    r.notDue = { ...t.notDue };
  }
  unmapped.seen = present.value.unmapped.seen;
  unmapped.notDue = { ...present.value.unmapped.notDue };

  // the queue (a target stays queued under its scan's intent after the scan ended, until the host
  // list confirms it was found: confirming, not scanning, as `onsight hosts` says)
  const active = await d.activeIntents();
  const inFlight = new Set(active.map((i) => i.id));
  for (const q of await d.queue()) {
    const r = regions.get(q.region);
    if (!r) continue;
    if (q.intentId && inFlight.has(q.intentId)) r.scanning++;
    else if (q.intentId) r.confirming++;
    else r.queued++;
  }
  for (const i of active) {
    const r = regions.get(i.region);
    if (r) r.scans.running++;
  }

  for (const [name, m] of missed.value) {
    const r = regions.get(name);
    if (!r) continue;
    r.missed = m.count;
    r.missedWhy = m.why;
  }

  const counts = await d.inventoryCounts(now);
  const reuse = await d.addressReuse(now - ADDRESS_REUSE.windowH * 3600_000, ADDRESS_REUSE.quickMin * 60_000);
  const cluster = clusterStatus(d);
  const list = [...regions.values()];
  const sum = (f: (r: RegionStatus) => number) => list.reduce((n, r) => n + f(r), 0);
  const scanner = d.scanner();
  const ic = d.ingestCounters();
  const decoder = decoderStatus(d);
  return {
    version: onsightVersion(),
    now: new Date(now).toISOString(),
    startedAt: new Date(d.startedAt).toISOString(),
    uptimeS: Math.round((now - d.startedAt) / 1000),
    state: describeState(config.state),
    scanner: { kind: scanner.kind, allowance: scanner.allowance, apiCalls: sc.apiCalls, processingLag: d.processingLag(), hostsInParallel: d.hostsInParallel(), rangeScans: d.rangeScans(), learnedState: d.learnedState(), ...scanner.block },
    totals: {
      identities: counts.identities, present: counts.present, sightings: ic.sightings, lines: ic.lines,
      due: sum((r) => r.due), queued: sum((r) => r.queued), scanning: sum((r) => r.scanning), confirming: sum((r) => r.confirming), missed: sum((r) => r.missed),
      launched: sc.launches, finished: sc.finished, failed: sc.failed,
    },
    inputs: d.inputs().map((i) => {
      const c = i.counters();
      const s: InputStatus = { name: i.name, received: c.received, dropped: c.dropped };
      if (c.connections !== undefined) s.connections = c.connections;
      if (c.udpReceiver !== undefined) s.receiver = c.udpReceiver;
      return { ...s, ...inputStaleness(d, i.name, now) };
    }),
    regions: list,
    coverage: await coverageTimeline(d, opts.coverageDays ?? 7),
    unmapped,
    presentEvaluatedAt: new Date(present.at).toISOString(),
    missedEvaluatedAt: new Date(missed.at).toISOString(),
    missedWindowH: windowH,
    decisions: (await d.recentDecisions(opts.decisions ?? 50)).map((x) => ({ ...x, at: new Date(x.at).toISOString() })),
    scans: (await d.recentIntents(10)).map((i) => ({
      id: i.id, region: i.region, appliance: i.appliance, state: i.state, scanRef: i.scanRef, createdAt: new Date(i.createdAt).toISOString(),
      targets: i.targets,
    })),
    ...(cluster ? { cluster } : {}),
    addressReuse: { ...ADDRESS_REUSE, channels: reuse },
    ...(decoder ? { decoder } : {}),
  };
}
