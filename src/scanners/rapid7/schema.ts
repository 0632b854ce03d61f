/**
 * The `scanner:` section for `type: rapid7` (zod), with its defaults. config/onsight.example.yaml
 * documents every key; the backend table (src/scanners/registry.ts) takes it into the scanner union.
 */
import { z } from 'zod';

export const rapid7ScannerSchema = z.object({
  type: z.literal('rapid7'),
  /** the Security Console, e.g. https://insightvm.example.com:3780 */
  url: z.string().url(),
  username: z.string().min(1),
  passwordFile: z.string().optional(),
  passwordEnv: z.string().optional(),
  /** systemd credential (LoadCredential=NAME:…) holding the password */
  credential: z.string().optional(),
  /** PEM file of the CA that signed the console's certificate (self-signed consoles); never "ignore TLS" */
  ca: z.string().optional(),
  /** the site every launch goes to, unless `sites` names one for the appliance */
  siteId: z.number().int().positive().optional(),
  /** site per appliance (engine or engine pool name, as the regions name them) */
  sites: z.record(z.string(), z.number().int().positive()).default({}),
  /** engine or pool id per appliance, when its name in the regions differs from the console's */
  engines: z.record(z.string(), z.number().int().positive()).default({}),
  /** scan template id for launches (the site's own when absent) */
  templateId: z.string().min(1).optional(),
  maxTargetsPerScan: z.number().int().positive().max(10000).default(50),
  /** an engine the console has not refreshed for this long is offline */
  engineStaleS: z.number().positive().default(900),
  /** addresses per asset search (last scanned) */
  assetBatchSize: z.number().int().positive().max(500).default(100),
  timeoutS: z.number().positive().default(60),
}).strict();

export type Rapid7ScannerOptions = z.output<typeof rapid7ScannerSchema>;
