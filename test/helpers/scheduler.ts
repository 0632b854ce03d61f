/** A scheduler over an in-memory store, a scripted scanner and a hand-moved clock (scheduler tests). */
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { STORE_KINDS, type StoreKind } from './stores.js';
import { Policy } from '../../src/policy/policy.js';
import { Scheduler, buildSchedulerOptions } from '../../src/scheduler/scheduler.js';
import type { SchedulerConfig } from '../../src/scheduler/options.js';
import type { SchedulerStore } from '../../src/store/types.js';
import { silentLogger } from '../../src/log.js';
import type { Sighting } from '../../src/sighting.js';
import { ScriptedScanner } from './scanner.js';

export const T0 = Date.parse('2026-11-23T10:00:00Z');

type Over = Partial<SchedulerConfig> & { maxTargetsPerScan?: number; maxTargetsPerLaunch?: number; fullSweepS?: number };
type RegionOver = { name: string; cidrs: string[]; appliances: { name: string; maxScans: number }[]; maxConcurrentScans: number };
/** `regions` replaces the two regions below (their appliances listed online and idle) */
type PolicyOver = { exclude?: string[]; scanWindows?: string[]; blackouts?: string[]; scanWindowEnd?: 'finish' | 'stop'; regions?: RegionOver[] };

/** The scheduler over a SQLite store (`state`: a file, or a temp file when omitted). */
export function setup(over: Over = {}, policyOver: PolicyOver = {}, state?: string) {
  return setupOn(STORE_KINDS[0], over, policyOver, state);
}

/** The scheduler over a store of `kind` (the tests that run against every store). */
export async function setupOn(kind: StoreKind, over: Over = {}, policyOver: PolicyOver = {}, state?: string) {
  const st = await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 }, state);
  const db = st instanceof SqliteStore ? st.db : undefined;
  const clock = { t: T0, now() { return this.t; } };
  const inv = st.inventory;
  const regions = policyOver.regions ?? [
    { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'emea-1', maxScans: 1 }, { name: 'emea-2', maxScans: 1 }], maxConcurrentScans: 1, scanWindows: policyOver.scanWindows, blackouts: policyOver.blackouts, scanWindowEnd: policyOver.scanWindowEnd },
    { name: 'amer', cidrs: ['10.30.0.0/16'], appliances: [{ name: 'amer-1', maxScans: 2 }], maxConcurrentScans: 2 },
  ];
  const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: policyOver.exclude ?? ['10.20.9.0/24'], rescanAfter: 30 * 86400, rules: [], regions, timezone: 'UTC' });
  const scanner = new ScriptedScanner();
  scanner.appliancesState = [...new Set(regions.flatMap((r) => r.appliances.map((a) => a.name)))].map((name) => ({ name, online: true, runningScans: 0 }));
  const store = st.scheduler;
  const { maxTargetsPerScan = 3, maxTargetsPerLaunch, fullSweepS, ...section } = over;
  scanner.maxTargetsPerLaunch = maxTargetsPerLaunch;
  // a restart: a new scheduler over the same store (or a view of it) and scanner (what it knew in memory is gone), its config maybe changed
  const make = (over: SchedulerStore = store, config: Partial<SchedulerConfig> = {}) => new Scheduler(clock, inv, policy, over, scanner, buildSchedulerOptions({
    regions, maxTargetsPerScan, scanner, internal: fullSweepS === undefined ? {} : { fullSweepS },
    // results are taken as the scan list says unless a test confirms them with the host list
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, retryBackoffS: 600, maxAttempts: 3, verifyResults: false, ...section, ...config },
  }), silentLogger());
  let current = make();
  const restart = (over?: SchedulerStore, config?: Partial<SchedulerConfig>) => (current = make(over, config));
  const see = async (p: Partial<Sighting> & Pick<Sighting, 'ip'>) => {
    const [r] = await inv.commitBatch([{ kind: 'lease', at: new Date(clock.t).toISOString(), format: 'isc-dhcpd', source: 't', durationS: 3600, ...p } as Sighting]);
    await current.consider([r.bindingId!]);
    return r;
  };
  return { db, clock, inv, policy, scanner, store, sched: current, see, restart };
}

export const mac = (n: number) => `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`;


/** Range runs in emea at 10:30 and 14:30 over 10.20.1.0/24, aimed at the whole range (the range-skip tests). */
export const RANGES_TWO_TIMES = { rangeScans: { times: ['10:30', '14:30'], targets: { emea: ['10.20.1.0/24'], amer: [] }, aim: 'ranges' as const } };

/** `RANGES_TWO_TIMES` under a scarce allowance (300 calls a day: a skipped time is made up), after a first pass. */
export async function scarceRanges() {
  const t = await setup(RANGES_TWO_TIMES);
  t.scanner.limit = { limit: 300, windowSec: 86_400 };
  await t.sched.tick();
  return t;
}

/** One pass of `sched`; true when it launched a range run (a make-up: the platform's own runs are not launched by us). */
export async function tickLaunchedRange(sched: { tick(): Promise<unknown> }, scanner: { rangeLaunches: unknown[] }): Promise<boolean> {
  const before = scanner.rangeLaunches.length;
  await sched.tick();
  return scanner.rangeLaunches.length > before;
}
