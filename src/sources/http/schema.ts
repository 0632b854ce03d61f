/** `type: http` in the config (imported into the inputs union of src/config/schema.ts). */
import { z } from 'zod';
import { oneSecretSource, tokenSourceShape, webConfigShape } from '../../net/webconfig.js';
import { parseCidr } from '../../util/ip.js';

export const HTTP_ENDPOINTS = ['hec', 'sightings'] as const;

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, { message: 'not a CIDR or IP address' });

/** What one token may send; sightings outside it are dropped and counted as notAllowed. */
const allow = z.object({
  /** `hec` (/services/collector/...), `sightings` (/api/v1/sightings); default both */
  endpoints: z.array(z.enum(HTTP_ENDPOINTS)).min(1).optional(),
  /** parser ids (or Sighting JSON `format` values) it may produce */
  formats: z.array(z.string().min(1)).min(1).optional(),
  /** sighting kinds it may produce */
  kinds: z.array(z.enum(['lease', 'renew', 'release', 'expire', 'tunnel-up', 'tunnel-down'])).min(1).optional(),
  /** addresses it may speak for */
  cidrs: z.array(cidr).min(1).optional(),
}).strict();

const inputToken = z.object({ ...tokenSourceShape, allow: allow.optional() }).strict().superRefine(oneSecretSource);

export const httpInput = z.object({
  type: z.literal('http'),
  /** HOST:PORT, e.g. 0.0.0.0:8088 (Splunk's HEC port) */
  listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:/\s]*):\d{1,5}$/, 'expected HOST:PORT, e.g. 0.0.0.0:8088'),
  /** parser for HEC events and raw lines: `auto` or a parser id */
  format: z.string().default('auto'),
  ...webConfigShape,
  /** at least one: the HTTP input never runs without authentication */
  tokens: z.array(inputToken).min(1),
  /** largest request body, after gzip decompression (bytes) */
  maxBodyBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
  /** requests read or waiting for their commit at once; more are answered 503 with Retry-After */
  maxPendingRequests: z.number().int().positive().default(64),
  /** Retry-After (seconds) sent with 503 */
  retryAfterS: z.number().int().positive().default(5),
  /** a request whose commit takes longer is answered 503 (its client retries; see Idempotency-Key) */
  commitTimeoutS: z.number().positive().default(30),
  /** how long an Idempotency-Key's answer is kept (seconds) */
  idempotencyTtlS: z.number().int().positive().default(86400),
}).strict();

export type HttpInputConfig = z.output<typeof httpInput>;
export type HttpTokenConfig = HttpInputConfig['tokens'][number];
