/** Builds the configured scanner. */
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import type { Policy } from '../policy/policy.js';
import { DryRunScanner } from './dryrun.js';
import { createQualysScanner } from './qualys/index.js';
import type { Scanner } from './types.js';

export async function createScanner(config: Config, log: Logger, policy: Policy): Promise<Scanner> {
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
    allowTarget: (ip) => policy.allowed(ip),
  }, log.child({ stage: 'qualys' }));
}
