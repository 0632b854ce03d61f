/**
 * What a scanner backend is: one folder under src/scanners/ and one entry in the table
 * (src/scanners/registry.ts). src/scanners/README.md says how to write one.
 */
import type { z } from 'zod';
import type { Logger } from '../log.js';
import type { DoctorLine, FailureOutcome, Scanner, ScannerCall } from './types.js';

/** What every backend's `scanner:` section has besides its own keys. */
export interface BackendConfig {
  type: string;
  /** targets per launch (the scheduler batches up to this many) */
  maxTargetsPerScan: number;
}

/**
 * Cluster mode: consulted right before each HTTP attempt that could change scanner state (a
 * launch, a cancel). `check` throws (FencedError) when this node may not send: it is not the
 * leader, or its local lease deadline passed. `signal()` is the current term's: it ends waits at
 * the allowance gate and in back-offs when leadership ends (src/cluster/lease.ts provides both).
 */
export interface SendGuard {
  check(what: string): void;
  signal(): AbortSignal;
}

export interface BackendContext {
  log: Logger;
  /** cluster mode: only the leader sends (see SendGuard) */
  sendGuard?: SendGuard;
  /** the policy's scope-and-exclusion test, asked afresh at every launch (the policy may be reloaded): defence in depth */
  allowed: (ip: string) => boolean;
  /** every appliance the regions name */
  appliances: string[];
  env: NodeJS.ProcessEnv;
}

export interface ScannerBackend<C extends BackendConfig = BackendConfig> {
  /** `scanner.type` in the config */
  readonly type: string;
  readonly description: string;
  /** its `scanner:` section (zod object with `type: z.literal(...)`); the options type is z.output of it */
  readonly schema: z.ZodType<C>;
  create(config: C, ctx: BackendContext): Promise<Scanner>;
  /**
   * `onsight doctor`'s checks that need no call (credentials readable, files present); the API
   * checks (reachability, scans, allowance, appliances) run against every backend alike
   */
  doctor(config: C, ctx: { env: NodeJS.ProcessEnv }): DoctorLine[];
  /** where and as whom, for doctor's config line (never a credential; may be empty) */
  describe(config: C): string;
  /** the longest doctor waits for one call, ms */
  callTimeoutMs(config: C): number;
  /** how its failures map onto the seam's outcomes (its scanners answer the same) */
  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome;
}

/** A backend as declared: its schema keeps its own type (the config union is built from them). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type BackendEntry<S extends z.ZodObject<any, any>> = Omit<ScannerBackend<z.output<S> & BackendConfig>, 'schema'> & { readonly schema: S };

/** Declare a backend (keeps the config type of each entry checked). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function defineBackend<S extends z.ZodObject<any, any>>(b: BackendEntry<S>): BackendEntry<S> {
  return b;
}
