/** The Rapid7 backend's entry in the table of backends (src/scanners/registry.ts). */
import { readFileSync } from 'node:fs';
import { defineBackend } from '../backend.js';
import { httpFailureOutcome } from '../json-transport.js';
import { loadPassword } from '../qualys/credentials.js';
import { Rapid7Client } from './client.js';
import { rapid7Doctor } from './doctor.js';
import { rapid7ScannerSchema } from './schema.js';

export const rapid7Backend = defineBackend({
  type: 'rapid7',
  description: 'Rapid7 InsightVM Security Console over its API v3 (ad-hoc site scans on engines and engine pools)',
  // the password comes from a file, the environment or a systemd credential, never the config itself
  schema: rapid7ScannerSchema.refine((c) => [c.passwordFile, c.passwordEnv, c.credential].filter((x) => x !== undefined).length === 1, {
    message: 'rapid7 needs exactly one of passwordFile, passwordEnv or credential (never the password itself)',
  }),
  async create(sc, ctx) {
    return new Rapid7Client({
      sendGuard: ctx.sendGuard,
      baseUrl: sc.url, username: sc.username, password: loadPassword({ passwordFile: sc.passwordFile, passwordEnv: sc.passwordEnv, credential: sc.credential }, ctx.env),
      ca: sc.ca !== undefined ? readFileSync(sc.ca, 'utf8') : undefined, siteId: sc.siteId, sites: sc.sites, engines: sc.engines, templateId: sc.templateId,
      maxTargetsPerScan: sc.maxTargetsPerScan, engineStaleS: sc.engineStaleS, assetBatchSize: sc.assetBatchSize, timeoutMs: sc.timeoutS * 1000,
      // defence in depth: the client itself refuses targets the policy would not allow
      allowTarget: ctx.allowed, log: ctx.log.child({ stage: 'rapid7' }),
    });
  },
  doctor: rapid7Doctor,
  describe: (sc) => `at ${sc.url} as ${sc.username}`,
  callTimeoutMs: (sc) => sc.timeoutS * 1000 + 30_000,
  failureOutcome: httpFailureOutcome,
});
