/** Builds the configured scanner. */
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import { DryRunScanner } from './dryrun.js';
import { createQualysScanner } from './qualys/index.js';
import type { Scanner } from './types.js';

/** `allowed`: the policy's scope-and-exclusion test, asked afresh at every launch (the policy may be reloaded). */
export async function createScanner(config: Config, log: Logger, allowed: (ip: string) => boolean): Promise<Scanner> {
  const sc = config.scanner;
  if (sc.type === 'dry-run') {
    return new DryRunScanner({
      appliances: config.regions.flatMap((r) => r.appliances.map((a) => a.name)),
      scanDurationS: sc.scanDurationS,
      print: (line) => log.debug(line),
    });
  }
  return createQualysScanner({
    url: sc.url,
    username: sc.username,
    passwordFile: sc.passwordFile,
    passwordEnv: sc.passwordEnv,
    credential: sc.credential,
    optionProfile: sc.optionProfile,
    requestedWith: sc.xRequestedWith,
    maxTargetsPerScan: sc.maxTargetsPerScan,
    addToSubscription: sc.addToSubscription,
    requestTimeoutMs: sc.timeoutS * 1000,
    // defence in depth: the client itself refuses targets the policy would not allow
    allowTarget: allowed,
  }, log.child({ stage: 'qualys' }));
}
