/** What the daemon and the commands beside it build from a config alike: the inventory's settings and the policy. */
import { availableParallelism } from 'node:os';
import type { Config } from './schema.js';
import type { InventoryOptions } from '../store/types.js';
import { Policy } from '../policy/policy.js';
import { buildSchedulerOptions, type SchedulerOptions } from '../scheduler/options.js';
import type { Scanner } from '../scanners/types.js';

export function inventoryOptions(config: Pick<Config, 'inventory'> & Partial<Pick<Config, 'policy' | 'regions'>>): InventoryOptions {
  return {
    defaultLeaseS: config.inventory.defaultLeaseS, learnLeaseTimes: config.inventory.learnLeaseTimes, maxSessionS: config.inventory.maxSessionS, retentionS: config.inventory.retention,
    forgetAfterS: longestRescanWindowS(config),
    linkHostnames: config.inventory.linkHostnames, linkHostPatterns: config.inventory.linkHostPatterns,
  };
}

/** The longest rescan window anywhere in the policy: a device away for less keeps its last scan (the prune forgets none sooner). */
function longestRescanWindowS(config: Partial<Pick<Config, 'policy' | 'regions'>>): number | undefined {
  if (!config.policy) return undefined;
  return Math.max(config.policy.rescanAfter, ...config.policy.rules.map((r) => r.rescanAfter), ...(config.regions ?? []).map((r) => r.rescanAfter ?? 0));
}

export function policyFor(config: Pick<Config, 'policy' | 'regions' | 'timezone'>): Policy {
  return new Policy({
    scope: config.policy.scope, exclude: config.policy.exclude, rescanAfter: config.policy.rescanAfter, rescanLead: config.policy.rescanLead, rules: config.policy.rules,
    regions: config.regions, timezone: config.timezone,
  });
}

/**
 * The scheduler's options as the daemon runs them, title prefix included (cluster.name in cluster
 * mode): `onsight doctor` counts our scans by the same prefix the daemon launches them with.
 */
export function schedulerOptionsFor(config: Pick<Config, 'regions' | 'scanner' | 'scheduler' | 'cluster'>, scanner: Scanner): SchedulerOptions {
  return buildSchedulerOptions({
    regions: config.regions, maxTargetsPerScan: config.scanner.maxTargetsPerScan, scheduler: config.scheduler, scanner,
    titlePrefix: config.cluster?.name, node: config.cluster?.node,
  });
}

/**
 * Whether lines are decoded in the decode thread. `auto` turns it on when the process may use two
 * or more cores: the thread then takes most of the main thread's work (the bench's TCP figures on
 * 2 cores: 343-374k msg/s against 207-298k on the main thread), for more CPU in all.
 */
export function decodeThreadOn(config: { ingest: Pick<Config['ingest'], 'decodeThread'> }, cores = availableParallelism()): boolean {
  const v = config.ingest.decodeThread;
  return v === 'auto' ? cores >= 2 : v;
}
