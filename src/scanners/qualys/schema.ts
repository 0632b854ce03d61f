/**
 * The `scanner:` section for `type: qualys` (zod), with its defaults. config/onsight.example.yaml
 * documents every key; the backend table (src/scanners/registry.ts) takes it into the scanner union.
 */
import { z } from 'zod';

export const qualysScannerSchema = z.object({
  type: z.literal('qualys'),
  url: z.string().url(),
  username: z.string().min(1),
  passwordFile: z.string().optional(),
  passwordEnv: z.string().optional(),
  /** name of a systemd credential (LoadCredential=NAME:...) holding the password */
  credential: z.string().optional(),
  optionProfile: z.string().min(1),
  maxTargetsPerScan: z.number().int().positive().max(10000).default(50),
  xRequestedWith: z.string().default('onsight'),
  addToSubscription: z.boolean().default(false),
  timeoutS: z.number().positive().default(60),
}).strict();

export type QualysScannerOptions = z.output<typeof qualysScannerSchema>;
