/** The Tenable backend's entry in the table of backends (src/scanners/registry.ts). */
import { defineBackend } from '../backend.js';
import { TenableClient } from './client.js';
import { apiKeysHeader, loadApiKeys } from './credentials.js';
import { tenableDoctor } from './doctor.js';
import { tenableFailureOutcome } from './outcome.js';
import { tenableScannerSchema } from './schema.js';

export const tenableBackend = defineBackend({
  type: 'tenable',
  description: 'Tenable Vulnerability Management (cloud) over its REST API (scans on scanners and scanner groups)',
  // the keys come from a file, the environment or a systemd credential, never the config itself
  schema: tenableScannerSchema.refine((c) => [c.apiKeysFile, c.apiKeysEnv, c.credential].filter((x) => x !== undefined).length === 1, {
    message: 'tenable needs exactly one of apiKeysFile, apiKeysEnv or credential (never the keys themselves)',
  }),
  async create(sc, ctx) {
    return new TenableClient({
      sendGuard: ctx.sendGuard,
      baseUrl: sc.url, apiKeys: apiKeysHeader(loadApiKeys(sc, ctx.env)), definitions: sc.definitions, template: sc.template, folderId: sc.folderId,
      maxTargetsPerScan: sc.maxTargetsPerScan, maxConcurrentScans: sc.maxConcurrentScans, maxRetryAfterS: sc.maxRetryAfterS,
      assetBatchSize: sc.assetBatchSize, timeoutMs: sc.timeoutS * 1000, appliances: ctx.appliances,
      // defence in depth: the client itself refuses targets the policy would not allow
      allowTarget: ctx.allowed, log: ctx.log.child({ stage: 'tenable' }),
    });
  },
  doctor: tenableDoctor,
  describe: (sc) => `at ${sc.url}`,
  callTimeoutMs: (sc) => sc.timeoutS * 1000 + 30_000,
  failureOutcome: tenableFailureOutcome,
});
