/** The dry-run backend: launches nothing, says what it would launch (the embedded default). */
import { defineBackend } from '../backend.js';
import { statedOutcome } from '../failure.js';
import { DryRunScanner } from './scanner.js';
import { dryRunSchema } from './schema.js';

export { DryRunScanner, type DryRunOptions } from './scanner.js';
export { dryRunSchema, type DryRunConfig } from './schema.js';

export const dryRunBackend = defineBackend({
  type: 'dry-run',
  description: 'launches nothing; logs the scans it would launch and reports each finished after scanDurationS',
  schema: dryRunSchema,
  async create(config, ctx) {
    return new DryRunScanner({ appliances: ctx.appliances, scanDurationS: config.scanDurationS, print: (line) => ctx.log.debug(line) });
  },
  doctor: () => [{ mark: 'ok', what: 'credentials', text: 'the dry-run scanner needs none' }],
  describe: () => '',
  callTimeoutMs: () => 30_000,
  failureOutcome: statedOutcome,
});
