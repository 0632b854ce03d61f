/**
 * What the Qualys range-run tests share: a clock set to a time of 2026-11-23 (UTC), the Qualys
 * emulator as the platform, a real Qualys client bound to a policy's scope, and a scheduler with
 * `scheduler.rangeScans` at 10:30 over a real SQLite store, its log lines kept.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { startQualysEmulator, type QualysEmulator } from '../../src/emulator/qualys/index.js';
import { Policy } from '../../src/policy/policy.js';
import { QualysClient } from '../../src/scanners/qualys/index.js';
import type { Scanner } from '../../src/scanners/types.js';
import { Scheduler, buildSchedulerOptions } from '../../src/scheduler/scheduler.js';
import type { Store } from '../../src/store/types.js';

export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
/** a time of day on the tests' day, 2026-11-23 UTC */
export const at = (hhmm: string) => Date.parse(`2026-11-23T${hhmm}:00Z`);
export type Clock = { t: number; now(): number };
export const clockAt = (hhmm: string): Clock => ({ t: at(hhmm), now() { return this.t; } });

export const EMEA = { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: [{ name: 'a1', maxScans: 2 }], maxConcurrentScans: 1 };
export const AMER = { name: 'amer', cidrs: ['10.30.0.0/16'], appliances: [{ name: 'a2', maxScans: 2 }], maxConcurrentScans: 1 };
export const STORE_OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 30 };

/** things a test closes after it (afterEach: while (open.length) await open.pop()!.close()) */
export type Closers = { close(): Promise<void> }[];

/** A logger whose lines (JSON) are kept in `lines`. */
export function logLines(level = 'info'): { lines: { level: number; msg: string }[]; log: Logger } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { lines, log: pino({ level }, sink) };
}

/** The Qualys emulator on `clock`, with these appliances; hosts take 30–40 min. */
export async function qualysPlatform(clock: Clock, appliances: string[], open: Closers): Promise<QualysEmulator> {
  const emu = await startQualysEmulator({
    now: () => clock.t, appliances: appliances.map((name) => ({ name })),
    scanTiming: { submitDelaySec: 0, hostSecMin: 1800, hostSecMax: 2400, loadingSec: 10 },
  });
  open.push(emu);
  return emu;
}

/** A real Qualys client of the emulator, its targets checked against `policy`. */
export function qualysClient(clock: Clock, emu: QualysEmulator, policy: Policy, open: Closers): QualysClient {
  const c = new QualysClient({
    baseUrl: emu.url, username: emu.username, password: emu.password, optionProfile: 'Initial Options', reconcileDelayMs: 0,
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, allowTarget: (ip) => policy.allowed(ip), now: () => clock.t,
  }, { log: pino({ level: 'silent' }) });
  open.push(c);
  return c;
}

export interface RangeRunSetup {
  regions: typeof EMEA[];
  /** each region's runs' targets */
  targets: Record<string, string[]>;
  exclude?: string[];
  aim?: 'ranges';
  log?: Logger;
}

/** The policy (scope 10.0.0.0/8) and a scheduler over `store` with range runs at 10:30, its scanner made for that policy. */
export function rangeRunScheduler(clock: Clock, store: Store, scanner: (p: Policy) => Scanner, s: RangeRunSetup): { sched: Scheduler; policy: Policy } {
  const policy = new Policy({ scope: ['10.0.0.0/8'], exclude: s.exclude ?? [], rescanAfter: 30 * 86400, rules: [], regions: s.regions, timezone: 'UTC' });
  const sc = scanner(policy);
  const opts = buildSchedulerOptions({
    regions: s.regions, maxTargetsPerScan: 10, scanner: sc,
    scheduler: { pollIntervalS: 60, applianceRefreshS: 300, verifyResults: false, rangeScans: { times: ['10:30'], targets: s.targets, ...(s.aim ? { aim: s.aim } : {}) } },
  });
  return { sched: new Scheduler(clock, store.inventory, policy, store.scheduler, sc, opts, s.log ?? pino({ level: 'silent' })), policy };
}
