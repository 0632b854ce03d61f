/**
 * The `scanner:` section for `type: tenable` (zod), with its defaults. config/onsight.example.yaml
 * documents every key; the backend table (src/scanners/registry.ts) takes it into the scanner union.
 */
import { z } from 'zod';

export const tenableScannerSchema = z.object({
  type: z.literal('tenable'),
  /** Tenable Vulnerability Management's API, https://cloud.tenable.com (the emulator: its http URL) */
  url: z.string().url().default('https://cloud.tenable.com'),
  /** file holding `accessKey=…; secretKey=…` (the X-ApiKeys value) */
  apiKeysFile: z.string().optional(),
  /** environment variable holding it */
  apiKeysEnv: z.string().optional(),
  /** systemd credential (LoadCredential=NAME:…) holding it */
  credential: z.string().optional(),
  /**
   * The scan definition per appliance (a scanner or scanner group name, as the regions name them):
   * its id or its name. Each launch copies it (name = our title) and launches the copy with the due
   * hosts as alt_targets. Unnamed appliances use the definition named `onsight-master <appliance>`,
   * created from `template` when it does not exist.
   */
  definitions: z.record(z.string(), z.union([z.number().int().positive(), z.string().min(1)])).default({}),
  /** scan template (title or name, e.g. "Basic Network Scan" / "basic") for definitions onsight creates */
  template: z.string().min(1).optional(),
  /** folder for the per-launch copies (default: Tenable's own, "My Scans") */
  folderId: z.number().int().positive().optional(),
  maxTargetsPerScan: z.number().int().positive().max(10000).default(50),
  /** active scans a container may run (Tenable: 25, counting agent scan processing) */
  maxConcurrentScans: z.number().int().positive().default(25),
  /** longest Retry-After the client sleeps through itself; longer ones become a `wait` for the scheduler */
  maxRetryAfterS: z.number().nonnegative().default(30),
  /** addresses per last-scanned (workbench assets) call */
  assetBatchSize: z.number().int().positive().max(200).default(50),
  timeoutS: z.number().positive().default(60),
}).strict();

export type TenableScannerOptions = z.output<typeof tenableScannerSchema>;
