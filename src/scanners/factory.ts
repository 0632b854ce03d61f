/** Builds the configured scanner. */
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import type { Policy } from '../policy/policy.js';
import { DryRunScanner } from './dryrun.js';
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
  void policy;
  throw new Error('the qualys scanner is not wired yet');
}
