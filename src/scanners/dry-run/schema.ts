/** The `scanner:` section for `type: dry-run` (zod), with its defaults. */
import { z } from 'zod';

export const dryRunSchema = z.object({
  type: z.literal('dry-run'),
  /** how long a pretend scan takes */
  scanDurationS: z.number().min(0).default(0),
  maxTargetsPerScan: z.number().int().positive().default(50),
}).strict();

export type DryRunConfig = z.output<typeof dryRunSchema>;
