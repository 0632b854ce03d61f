/**
 * The table of scanner backends: one folder under src/scanners/ and one entry here each. The
 * config's `scanner:` union, the factory and doctor's checks all come from this table; nothing
 * else in onsight names a backend. src/scanners/README.md says how to add one.
 */
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { BackendConfig, ScannerBackend, SendGuard } from './backend.js';
import { dryRunBackend } from './dry-run/index.js';
import { qualysBackend } from './qualys/backend.js';
import { rapid7Backend } from './rapid7/backend.js';
import { tenableBackend } from './tenable/backend.js';
import type { Scanner } from './types.js';

/** Every backend, by `scanner.type`. */
export const BACKENDS = [dryRunBackend, qualysBackend, tenableBackend, rapid7Backend] as const;

/** The `scanner:` config section: one of the backends' schemas, by `type`. */
export const scannerConfigSchema = z.discriminatedUnion('type', [dryRunBackend.schema, qualysBackend.schema, tenableBackend.schema, rapid7Backend.schema]);

export type ScannerConfig = z.output<typeof scannerConfigSchema>;

/** The backend of a (validated) scanner section. */
export function backendFor(config: { type: string }): ScannerBackend {
  const b = BACKENDS.find((x) => x.type === config.type);
  if (!b) throw new Error(`no scanner backend "${config.type}" (known: ${BACKENDS.map((x) => x.type).join(', ')})`);
  return b as unknown as ScannerBackend<BackendConfig>;
}

/** Build the configured scanner. `allowed`: the policy's scope-and-exclusion test, asked afresh at every launch. */
export async function createScanner(config: { scanner: ScannerConfig; regions: { appliances: { name: string }[] }[] }, log: Logger, allowed: (ip: string) => boolean, env: NodeJS.ProcessEnv = process.env, sendGuard?: SendGuard): Promise<Scanner> {
  return backendFor(config.scanner).create(config.scanner, {
    log, allowed, env, sendGuard, appliances: config.regions.flatMap((r) => r.appliances.map((a) => a.name)),
  });
}
