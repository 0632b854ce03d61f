/**
 * Scenarios for the scheduling simulator: the built-in ones from the workload model
 * (/work/shared/reference/workload-model.md §4.5) and user scenario files (JSON or YAML) that
 * extend a built-in and override any parameter. Every parameter the model marks as an assumption
 * [A] is a field here, so it can be changed and swept. The file format is in src/sim/README.md.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';

const H = 3600;
const D = 86400;

export interface ApplianceDef {
  name: string;
  /** regions this appliance can reach */
  regions: string[];
  /** concurrent scan jobs (slots) [A, default 2] */
  slots: number;
  /** hosts scanned in parallel per scan ("Hosts to Scan in Parallel") [A, default 30] */
  hostsInParallel: number;
  /** parallel-scaling multiplier (1, or 3 on a performant appliance) */
  scaling: number;
  /** the appliance polls the platform for new jobs this often (s) */
  pollIntervalS: number;
  /** offline periods, hours from the simulation start; `toH` absent = never returns */
  outages: { fromH: number; toH?: number }[];
}

export interface FleetParams {
  laptops: number;
  /** fleet-mean office propensity (Kastle) */
  officeMean: number;
  /** Mon..Fri multipliers of the office propensity */
  weekdayFactors: number[];
  weekendProb: number;
  arrivalMeanH: number;
  arrivalSdMin: number;
  stayMedianH: number;
  staySigma: number;
  sessionMedianMin: number;
  sessionSigma: number;
  gapMedianMin: number;
  gapSigma: number;
  /** a reconnect lands on the other Wi-Fi subnet of the region (new IP) */
  pRoam: number;
  /** share of office days on a docked, wired connection (one session for the whole stay) [A] */
  wiredShare: number;
  rareShare: number;
  rareFactor: number;
  /** share of all sessions that are VPN tunnels; sets the VPN-day probability */
  vpnShare: number;
  tunnelsExtraPoisson: number;
  tunnelMedianH: number;
  tunnelSigma: number;
  tunnelGapMedianMin: number;
  pIdle: number;
  idleTimeoutMin: number;
  /** 0 = no maximum */
  maxSessionMin: number;
  wiredLeaseS: number;
  wifiLeaseS: number;
  /** peak pool utilisation ρ: pool sizes are set from it */
  utilisation: number;
  alloc: 'sticky-lru' | 'sticky-lowest' | 'random';
  vpnAlloc: 'lru' | 'lowest' | 'random';
  /** the client sends a DHCP RELEASE when it leaves */
  pRelease: number;
  /**
   * the DHCP lines state the lease time (Kea, Infoblox, FortiGate, lease files); false: they do
   * not (ISC dhcpd's syslog, dnsmasq, Windows DHCP): onsight takes inventory.defaultLeaseS until it
   * learns the pool's lease time from renewals
   */
  leaseInLines: boolean;
  /** the region whose VPN hub terminates tunnels (its pool belongs to that region) */
  vpnRegion: string;
}

export interface ServerParams {
  /** hosts per region (same order as regions) */
  perRegion: number[];
}

export interface Scenario {
  name: string;
  description: string;
  /** ISO start of the simulation (UTC; the model's local time is UTC here) */
  startAt: string;
  days: number;
  /** seeds run by default */
  seeds: number;
  regions: { name: string; weight: number }[];
  /** scans per region at once (the mandate allows one appliance per region; 1 = strict) */
  regionMaxScans: number;
  appliances: ApplianceDef[];
  servers?: ServerParams;
  fleet?: FleetParams;
  scan: {
    medianMin: number;
    sigma: number;
    /** per-host multiplier LogNormal(0, σ) */
    hostMultSigma: number;
    authMult: number;
    portsMult: number;
    /** cap per host (min); 0 = off */
    maxPerHostMin: number;
    deadProbeMin: [number, number];
    setupMin: [number, number];
    processingMedianMin: number;
    processingSigma: number;
    /** share of scans that end in Error */
    errorRate: number;
    /**
     * After a scan ends, its results are processed before the host list dates its hosts (Qualys
     * PROCESSED): LogNormal(median `hostListLagMin`, σ `hostListLagSigma`) minutes [A: "tens of
     * minutes or more"; sweep it]
     */
    hostListLagMin: number;
    hostListLagSigma: number;
    /** whether a canceled (or errored) scan's partial results are processed and dated [A: unknown] */
    canceledProcessed: boolean;
    /**
     * How long after an appliance goes down the platform lists it offline (minutes): until then the
     * appliance list shows it online with the scans it was running, and those scans as running
     * [A: Qualys lists STATUS and HEARTBEATS_MISSED and checks heartbeats every 4 h; how soon STATUS
     * turns is not published. 0 = at once, as before session 35; sweep 0–240]
     */
    offlineListedAfterMin: number;
  };
  api: {
    limit: number;
    windowS: number;
    concurrency: number;
    /** calls per hour spent by other integrations on the same subscription */
    otherCallsPerHour: number;
    /** whether 409-refused calls count against the window */
    blockedCount: boolean;
    /**
     * Schedule changes (create, update, delete) whose answer is lost after the platform made them
     * (lost for good: the Qualys transport retries an update whose answer it lost, so this is what
     * is left after its retries), and that the platform refuses before making them: shares of those
     * calls (absent: none) [A: unknown; a stress of the range runs' doubt paths, not a measured rate]
     */
    scheduleLostShare?: number;
    scheduleRefusedShare?: number;
    /**
     * The API user cannot see the option profile the scans run with (absent: it can, as Qualys's
     * option profile list shows it to users who may launch with it [A]): onsight then starts from
     * its configured `hostsInParallel` instead of the profile's true figure
     */
    optionProfileHidden?: boolean;
  };
  /** scans by other tools: one per region at `at` (HH:MM) daily, `hosts` targets each; 0 = none */
  background: { hostsPerRegion: number; at: string };
  policy: {
    rescanAfterH: number;
    /** allowed scan window for all regions, e.g. `* 22:00-06:00`; empty = always */
    scanWindow: string;
    maxTargetsPerScan: number;
    logDelayS: number;
    tickS: number;
    sweepS: number;
    pollIntervalS: number;
    applianceRefreshS: number;
    /** onsight confirms finished scans' targets with the scanner's host list (scheduler.verifyResults) */
    verifyResults: boolean;
    /**
     * What the operator configures, apart from the scenario's truth: each appliance's `maxScans` in
     * onsight.yaml (absent: the appliance named alone, so the daemon's default) and
     * `scheduler.pickupS` (absent: the daemon's default). The true slots and poll interval are the
     * appliances' `slots` and `pollIntervalS`.
     */
    applianceMaxScans?: number;
    pickupS?: number;
    /** `scheduler.cancelWhenTargetLeaves` (absent: the daemon's default) */
    cancelWhenTargetLeaves?: boolean;
    /** `scheduler.hostsInParallel` (absent: the daemon's default; the truth is the appliances' `hostsInParallel` × `scaling`) */
    hostsInParallel?: number;
    /** `scheduler.lastScannedFromScanner` (absent: the daemon's default, off) */
    lastScannedFromScanner?: boolean;
    /** `scheduler.secondLook` (absent: the daemon's default, on) */
    secondLook?: boolean;
    /** `scheduler.scanAheadH` (absent: the daemon's default) */
    scanAheadH?: number;
    /** `scheduler.rangeScans.aim` for onsight+ranges (absent: the daemon's default) */
    rangeScansAim?: 'auto' | 'held' | 'ranges';
    /**
     * onsight is restarted this often (h; an upgrade, a reboot): a final pass, what it learned
     * written, a new scheduler over the same state (what it held in memory is gone), reconcile and
     * sweep, as `onsight run` does at stop and start; the scanner and the lines go on. Absent: never.
     */
    restartEveryH?: number;
    /** at each restart the learned state (table learned_state) is emptied first: onsight before it was kept */
    restartForgetsLearned?: boolean;
  };
  baselines: {
    /** blind range scans at these local times (HH:MM) */
    rangeScanTimes: string[];
    batchIntervalMin: number;
    batchConcurrency: number;
    batchTargets: number;
    /** reservation = targets × Z × (mean per-host time / P), one run per value */
    reservationZ: number[];
    /** how often the range-scan baseline asks for its scans' status (min); its scheduled variant asks never */
    rangePollMin: number;
    /** how often the `-verified` baselines read the host list to confirm finished targets (min), as onsight's verifyDelayS */
    verifyEveryMin: number;
    /**
     * A scheduled baseline run (`twice-daily-scheduled`, `-informed`) whose time comes while the
     * region's previous run still goes: `queue` waits and starts the moment it ends (the default,
     * the one that favours the baseline), `skip` drops that time. What Qualys does is not known [A].
     */
    scheduledOverlap: 'queue' | 'skip';
  };
  metrics: {
    /** coverage windows in days */
    windowsDays: number[];
    minPresenceMin: number;
  };
}

const DEFAULT_APPLIANCE = { slots: 2, hostsInParallel: 30, scaling: 1, pollIntervalS: 190, outages: [] as { fromH: number; toH?: number }[] };

const RING = [
  { name: 'A1', regions: ['R1', 'R2', 'R3'] },
  { name: 'A2', regions: ['R3', 'R4', 'R5'] },
  { name: 'A3', regions: ['R5', 'R6', 'R1'] },
];

const REGIONS = ['R1', 'R2', 'R3', 'R4', 'R5', 'R6'].map((name) => ({ name, weight: 1 }));

const BASE: Omit<Scenario, 'name' | 'description' | 'servers' | 'fleet'> = {
  startAt: '2026-01-05T00:00:00.000Z', // a Monday
  days: 30,
  seeds: 3,
  regions: REGIONS,
  regionMaxScans: 1,
  appliances: RING.map((a) => ({ ...DEFAULT_APPLIANCE, ...a })),
  scan: {
    medianMin: 8, sigma: 0.5, hostMultSigma: 0.3, authMult: 1, portsMult: 1, maxPerHostMin: 0, deadProbeMin: [0.5, 2], setupMin: [1, 3],
    processingMedianMin: 5, processingSigma: 0.8, errorRate: 0.01, hostListLagMin: 20, hostListLagSigma: 0.8, canceledProcessed: false, offlineListedAfterMin: 30,
  },
  api: { limit: 300, windowS: H, concurrency: 2, otherCallsPerHour: 0, blockedCount: false },
  background: { hostsPerRegion: 0, at: '22:00' },
  policy: { rescanAfterH: 7 * 24, scanWindow: '', maxTargetsPerScan: 50, logDelayS: 30, tickS: 30, sweepS: 60, pollIntervalS: 60, applianceRefreshS: 300, verifyResults: true },
  baselines: { rangeScanTimes: ['10:30', '14:30'], batchIntervalMin: 15, batchConcurrency: 5, batchTargets: 50, reservationZ: [0.5, 1, 2], rangePollMin: 30, verifyEveryMin: 60, scheduledOverlap: 'queue' },
  metrics: { windowsDays: [7, 30], minPresenceMin: 30 },
};

export const DEFAULT_FLEET: FleetParams = {
  laptops: 5000, officeMean: 0.53, weekdayFactors: [0.95, 1.2, 1.15, 1.05, 0.65], weekendProb: 0.05,
  arrivalMeanH: 8.75, arrivalSdMin: 45, stayMedianH: 8, staySigma: 0.25, sessionMedianMin: 60, sessionSigma: 1.2,
  gapMedianMin: 15, gapSigma: 1.0, pRoam: 0.1, wiredShare: 0.3, rareShare: 0.1, rareFactor: 0.2, vpnShare: 0.2,
  tunnelsExtraPoisson: 0.8, tunnelMedianH: 2.5, tunnelSigma: 0.9, tunnelGapMedianMin: 45, pIdle: 0.3, idleTimeoutMin: 180, maxSessionMin: 0,
  wiredLeaseS: 8 * D, wifiLeaseS: 12 * H, utilisation: 0.7, alloc: 'sticky-lru', vpnAlloc: 'lowest', pRelease: 0.1, leaseInLines: true, vpnRegion: 'R1',
};

function patchNight(name: string, description: string, perRegion: number[]): Scenario {
  return {
    ...structuredClone(BASE), name, description,
    startAt: '2026-01-05T21:00:00.000Z', days: 1.5, seeds: 3,
    servers: { perRegion },
    // 8-hour night window, daily rescan, the daemon's default maxTargetsPerScan (50): the
    // scheduler sends a region's backlog out in one scan by itself (launch.ts batchSize)
    policy: { ...BASE.policy, rescanAfterH: 24, scanWindow: '* 22:00-06:00' },
    baselines: { ...BASE.baselines, rangeScanTimes: ['22:00'], batchTargets: 3000 },
    metrics: { windowsDays: [1], minPresenceMin: 30 },
  };
}

function mobileFleet(name: string, description: string): Scenario {
  return {
    ...structuredClone(BASE), name, description,
    fleet: { ...DEFAULT_FLEET },
    scan: { ...BASE.scan, authMult: 1.5 },
    background: { hostsPerRegion: 1500, at: '22:00' },
  };
}

function build(): Record<string, Scenario> {
  const out: Record<string, Scenario> = {};
  const add = (s: Scenario) => (out[s.name] = s);
  add(patchNight('patch-night', '9,000 static servers, 6 regions × 1,500, 3 appliances (ring), night window 22:00–06:00', [1500, 1500, 1500, 1500, 1500, 1500]));
  add(patchNight('patch-night-skewed', 'patch-night with skewed regions 3,000/2,000/1,500/1,000/1,000/500', [3000, 2000, 1500, 1000, 1000, 500]));
  add(mobileFleet('mobile-fleet', '5,000 laptops over 30 days: office DHCP (wired 8 d, Wi-Fi 12 h leases), VPN pool in R1, nightly server scans by other tools'));
  const tight = mobileFleet('tight-api', 'mobile-fleet with the API at 300 calls/day and 2 concurrent calls');
  tight.api = { ...tight.api, limit: 300, windowS: D, concurrency: 2 };
  add(tight);
  const express = mobileFleet('tight-api-express', 'mobile-fleet on the Express tier: 50 calls/day, 1 concurrent call');
  express.api = { ...express.api, limit: 50, windowS: D, concurrency: 1 };
  add(express);
  const shared = mobileFleet('tight-api-shared', 'mobile-fleet on Standard 300/h with 200/h already used by other integrations');
  shared.api = { ...shared.api, otherCallsPerHour: 200 };
  add(shared);
  const outage = patchNight('appliance-outage', 'patch-night (equal) with A2 offline from 2 h to 5 h into the night window', [1500, 1500, 1500, 1500, 1500, 1500]);
  outage.appliances[1].outages = [{ fromH: 3, toH: 6 }];
  add(outage);
  const perm = patchNight('appliance-outage-permanent', 'patch-night (equal) with A2 offline for good from 2 h into the night window', [1500, 1500, 1500, 1500, 1500, 1500]);
  perm.appliances[1].outages = [{ fromH: 3 }];
  add(perm);
  const fo = mobileFleet('appliance-outage-fleet', 'mobile-fleet with A2 offline 09:00–12:00 on day 3');
  fo.appliances[1].outages = [{ fromH: 2 * 24 + 9, toH: 2 * 24 + 12 }];
  add(fo);
  const churn = mobileFleet('dhcp-churn', 'mobile-fleet worst case for wrong-host scans: 1 h leases, ρ 0.95, lowest-free allocation, VPN idle timeout 10 min');
  churn.fleet = { ...churn.fleet!, wiredLeaseS: H, wifiLeaseS: H, utilisation: 0.95, alloc: 'sticky-lowest', idleTimeoutMin: 10 };
  add(churn);
  return out;
}

export const BUILTIN: Readonly<Record<string, Scenario>> = build();

export function builtinNames(): string[] {
  return Object.keys(BUILTIN);
}

// ---------------------------------------------------------------- scenario files

const num = z.number().finite();
const pos = num.positive();
const nonneg = num.nonnegative();
const share = num.min(0).max(1);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM');
const strict = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).partial();

const applianceSchema = z.strictObject({
  name: z.string().min(1),
  regions: z.array(z.string().min(1)).min(1),
  slots: z.number().int().positive().optional(),
  hostsInParallel: z.number().int().positive().optional(),
  scaling: pos.optional(),
  pollIntervalS: pos.optional(),
  outages: z.array(z.strictObject({ fromH: nonneg, toH: nonneg.optional() })).optional(),
});

/** The file schema: every key optional (it overrides the scenario it extends), unknown keys are errors. */
export const scenarioFileSchema = z.strictObject({
  extends: z.string().optional(),
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  startAt: z.iso.datetime({ offset: true }).optional(),
  days: pos.max(366).optional(),
  seeds: z.number().int().positive().max(1000).optional(),
  regions: z.array(z.strictObject({ name: z.string().min(1), weight: nonneg.default(1) })).min(1).optional(),
  regionMaxScans: z.number().int().positive().optional(),
  appliances: z.array(applianceSchema).min(1).optional(),
  servers: strict({ perRegion: z.array(z.number().int().nonnegative()) }).optional(),
  fleet: strict({
    laptops: z.number().int().positive(), officeMean: share, weekdayFactors: z.array(nonneg).length(5), weekendProb: share,
    arrivalMeanH: num.min(0).max(24), arrivalSdMin: nonneg, stayMedianH: pos, staySigma: nonneg, sessionMedianMin: pos, sessionSigma: nonneg,
    gapMedianMin: pos, gapSigma: nonneg, pRoam: share, wiredShare: share, rareShare: share, rareFactor: nonneg, vpnShare: num.min(0).max(0.95),
    tunnelsExtraPoisson: nonneg, tunnelMedianH: pos, tunnelSigma: nonneg, tunnelGapMedianMin: pos, pIdle: share, idleTimeoutMin: nonneg,
    maxSessionMin: nonneg, wiredLeaseS: pos, wifiLeaseS: pos, utilisation: num.gt(0).max(1), alloc: z.enum(['sticky-lru', 'sticky-lowest', 'random']),
    vpnAlloc: z.enum(['lru', 'lowest', 'random']), pRelease: share, leaseInLines: z.boolean(), vpnRegion: z.string().min(1),
  }).optional(),
  scan: strict({
    medianMin: pos, sigma: nonneg, hostMultSigma: nonneg, authMult: pos, portsMult: pos, maxPerHostMin: nonneg,
    deadProbeMin: z.tuple([nonneg, nonneg]), setupMin: z.tuple([nonneg, nonneg]), processingMedianMin: nonneg, processingSigma: nonneg, errorRate: share,
    hostListLagMin: nonneg, hostListLagSigma: nonneg, canceledProcessed: z.boolean(), offlineListedAfterMin: nonneg,
  }).optional(),
  api: strict({
    limit: z.number().int().positive(), windowS: pos, concurrency: z.number().int().positive(), otherCallsPerHour: nonneg, blockedCount: z.boolean(),
    scheduleLostShare: share, scheduleRefusedShare: share, optionProfileHidden: z.boolean(),
  }).optional(),
  background: strict({ hostsPerRegion: z.number().int().nonnegative(), at: hhmm }).optional(),
  policy: strict({
    rescanAfterH: pos, scanWindow: z.string(), maxTargetsPerScan: z.number().int().positive(), logDelayS: nonneg, tickS: pos.min(1),
    sweepS: pos.min(1), pollIntervalS: pos, applianceRefreshS: pos, verifyResults: z.boolean(),
    applianceMaxScans: z.number().int().positive(), pickupS: nonneg, cancelWhenTargetLeaves: z.boolean(), hostsInParallel: z.number().int().positive(),
    lastScannedFromScanner: z.boolean(), secondLook: z.boolean(), scanAheadH: z.number().nonnegative(), rangeScansAim: z.enum(['auto', 'held', 'ranges']),
    restartEveryH: pos, restartForgetsLearned: z.boolean(),
  }).optional(),
  baselines: strict({
    rangeScanTimes: z.array(hhmm), batchIntervalMin: pos, batchConcurrency: z.number().int().positive(), batchTargets: z.number().int().positive(),
    reservationZ: z.array(pos).min(1), rangePollMin: pos, verifyEveryMin: pos, scheduledOverlap: z.enum(['queue', 'skip']),
  }).optional(),
  metrics: strict({ windowsDays: z.array(pos).min(1), minPresenceMin: nonneg }).optional(),
});

export type ScenarioFile = z.infer<typeof scenarioFileSchema>;

function pathText(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function isPlain(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function merge<T>(base: T, over: unknown): T {
  if (!isPlain(base) || !isPlain(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) if (v !== undefined) out[k] = merge((base as Record<string, unknown>)[k], v);
  return out as T;
}

/** Parse scenario text (JSON or YAML); errors carry the key path and line. */
export function parseScenarioText(text: string, file = '(scenario)'): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ path: '(syntax)', line: e.linePos?.[0]?.line, message: e.message.split('\n')[0] })), file);
  }
  const locate = (path: PropertyKey[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as (string | number)[], true);
      if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const raw = doc.toJS() as unknown;
  if (!isPlain(raw)) throw new ConfigError([{ path: '(top level)', line: 1, message: 'a scenario file is a mapping (object) of keys' }], file);
  const r = scenarioFileSchema.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(r.error.issues.map((i) => {
      const path = i.path as PropertyKey[];
      // an unknown key is reported on its own line
      const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : [];
      return { path: pathText(path), line: locate(keys.length ? [...path, keys[0]] : path), message: i.message };
    }), file);
  }
  const f = r.data;
  const baseName = f.extends ?? (f.servers && !f.fleet ? 'patch-night' : 'mobile-fleet');
  const base = BUILTIN[baseName];
  if (!base) throw new ConfigError([{ path: 'extends', line: locate(['extends']), message: `unknown scenario "${baseName}" (built-in: ${builtinNames().join(', ')})` }], file);
  const { extends: _ext, ...over } = f;
  const s = merge(structuredClone(base), over) as Scenario;
  if (!f.name) s.name = `${baseName}+${file.replace(/^.*\//, '')}`;
  s.appliances = s.appliances.map((a) => ({ ...DEFAULT_APPLIANCE, ...a, outages: a.outages ?? [] }));
  if (f.fleet && base.fleet === undefined) s.fleet = { ...DEFAULT_FLEET, ...f.fleet };
  if (f.fleet && f.servers === undefined && base.servers) delete s.servers;
  if (f.servers && f.fleet === undefined && base.fleet) delete s.fleet;
  const issues = checkScenario(s).map((i) => ({ ...i, line: locate(i.pathKeys) }));
  if (issues.length) throw new ConfigError(issues.map(({ path, line, message }) => ({ path, line, message })), file);
  return s;
}

/** Cross-field checks; empty when the scenario is consistent. */
export function checkScenario(s: Scenario): (ConfigIssue & { pathKeys: PropertyKey[] })[] {
  const out: (ConfigIssue & { pathKeys: PropertyKey[] })[] = [];
  const at = (pathKeys: PropertyKey[], message: string) => out.push({ path: pathText(pathKeys), pathKeys, message });
  const names = new Set(s.regions.map((r) => r.name));
  if (names.size !== s.regions.length) at(['regions'], 'region names must be unique');
  if (s.regions.length > 200) at(['regions'], 'at most 200 regions');
  s.appliances.forEach((a, i) => a.regions.forEach((r, j) => {
    if (!names.has(r)) at(['appliances', i, 'regions', j], `unknown region "${r}" (regions: ${[...names].join(', ')})`);
  }));
  if (new Set(s.appliances.map((a) => a.name)).size !== s.appliances.length) at(['appliances'], 'appliance names must be unique');
  for (const r of s.regions) if (!s.appliances.some((a) => a.regions.includes(r.name))) at(['regions'], `region "${r.name}" is reached by no appliance`);
  if (!s.servers && !s.fleet) at([], 'a scenario needs `servers` or `fleet`');
  if (s.servers && s.servers.perRegion.length !== s.regions.length) at(['servers', 'perRegion'], `expected ${s.regions.length} numbers (one per region), got ${s.servers.perRegion.length}`);
  if (s.fleet && !names.has(s.fleet.vpnRegion)) at(['fleet', 'vpnRegion'], `unknown region "${s.fleet.vpnRegion}"`);
  if (s.scan.deadProbeMin[0] > s.scan.deadProbeMin[1]) at(['scan', 'deadProbeMin'], 'expected [low, high] with low ≤ high');
  if (s.scan.setupMin[0] > s.scan.setupMin[1]) at(['scan', 'setupMin'], 'expected [low, high] with low ≤ high');
  if (s.policy.scanWindow && !/^\S+ \d\d:\d\d-\d\d:\d\d$/.test(s.policy.scanWindow)) at(['policy', 'scanWindow'], 'expected e.g. "* 22:00-06:00" or "Mon-Fri 08:00-18:00"');
  if (Number.isNaN(Date.parse(s.startAt))) at(['startAt'], 'not a date');
  return out;
}

/** A built-in name, or a path to a .json / .yaml / .yml file. */
export function loadScenario(nameOrFile: string): Scenario {
  const b = BUILTIN[nameOrFile];
  if (b) return structuredClone(b);
  const ext = extname(nameOrFile).toLowerCase();
  if (!['.json', '.yaml', '.yml'].includes(ext)) {
    throw new ConfigError([{ path: 'scenario', message: `"${nameOrFile}" is neither a built-in scenario (${builtinNames().join(', ')}) nor a .json/.yaml/.yml file` }]);
  }
  let text: string;
  try {
    text = readFileSync(nameOrFile, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: 'scenario', message: `cannot read ${nameOrFile}: ${(err as Error).message}` }]);
  }
  return parseScenarioText(text, nameOrFile);
}

export const HOUR_S = H;
export const DAY_S = D;
