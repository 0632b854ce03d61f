/** The Qualys backend's entry in the table of backends (src/scanners/registry.ts). */
import { defineBackend } from '../backend.js';
import { qualysScannerFromConfig } from './factory.js';
import { qualysDoctor } from './doctor.js';
import { qualysFailureOutcome } from './outcome.js';
import { qualysScannerSchema } from './schema.js';

export const qualysBackend = defineBackend({
  type: 'qualys',
  description: 'Qualys VMDR over its XML API (scans on scanner appliances)',
  // the password comes from a file, the environment or a systemd credential, never the config itself
  schema: qualysScannerSchema.refine((c) => c.passwordFile !== undefined || c.passwordEnv !== undefined || c.credential !== undefined, {
    message: 'qualys needs one of passwordFile, passwordEnv or credential (never the password itself)',
  }),
  async create(sc, ctx) {
    return qualysScannerFromConfig(sc, ctx.log, ctx.allowed, ctx.env, ctx.sendGuard);
  },
  doctor: qualysDoctor,
  describe: (sc) => `at ${sc.url} as ${sc.username}`,
  callTimeoutMs: (sc) => sc.timeoutS * 1000 + 30_000,
  failureOutcome: qualysFailureOutcome,
});
