/**
 * The config shape (DESIGN.md), validated with zod. Every key is documented in
 * config/onsight.example.yaml; defaults live here and nowhere else.
 */
import { z } from 'zod';
import { parseCidr } from '../util/ip.js';
import { isValidZone, parseDuration } from '../util/time.js';
import { schedulerConfigSchema } from '../scheduler/options.js';
import { scannerConfigSchema } from '../scanners/registry.js';

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, { message: 'not a CIDR or IP address' });

/** `30d`, `12h`, `90s`, or seconds as a number → seconds */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = parseDuration(v);
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${v}" (use e.g. 30d, 12h, 15m, 90s)` });
    return z.NEVER;
  }
  return s;
});

const listenUrl = z.string().refine((s) => /^(udp|tcp|tls):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$/.test(s), {
  message: 'expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT',
});

const syslogInput = z.object({
  type: z.literal('syslog'),
  listen: listenUrl,
  allow: z.array(cidr).optional(),
  format: z.string().default('auto'),
  maxMessageBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(65536),
  idleTimeoutS: z.number().positive().default(300),
  maxConnections: z.number().int().positive().default(1000),
  udpRecvBufferBytes: z.number().int().positive().default(8 * 1024 * 1024),
  tls: z.object({
    cert: z.string(),
    key: z.string(),
    ca: z.string().optional(),
    requireClientCert: z.boolean().default(false),
  }).strict().optional(),
}).strict();

const fileInput = z.object({
  type: z.literal('file'),
  path: z.string().min(1),
  format: z.string().default('auto'),
  startAt: z.enum(['beginning', 'end']).default('beginning'),
  pollMs: z.number().int().min(10).default(250),
}).strict();

/** `Mon-Fri 08:00-18:00`, `Sat 00:00-24:00`, `* 22:00-06:00` (wraps midnight) */
const scanWindow = z.string().refine((s) => /^(\*|[A-Za-z]{3}(-[A-Za-z]{3})?(,[A-Za-z]{3}(-[A-Za-z]{3})?)*) \d\d:\d\d-\d\d:\d\d$/.test(s), {
  message: 'expected "DAYS HH:MM-HH:MM", e.g. "Mon-Fri 08:00-18:00" or "* 22:00-06:00"',
});

const appliance = z.union([
  z.string().min(1).transform((name) => ({ name, maxScans: 1 })),
  z.object({ name: z.string().min(1), maxScans: z.number().int().positive().default(1) }).strict(),
]);

const region = z.object({
  name: z.string().min(1),
  cidrs: z.array(cidr).min(1),
  appliances: z.array(appliance).min(1),
  maxConcurrentScans: z.number().int().positive().default(1),
  rescanAfter: duration.optional(),
  scanWindows: z.array(scanWindow).optional(),
  timezone: z.string().refine(isValidZone, { message: 'unknown time zone' }).optional(),
}).strict();

const rule = z.object({
  cidrs: z.array(cidr).min(1),
  rescanAfter: duration,
}).strict();

export const configSchema = z.object({
  state: z.string().default('./data/onsight.db'),
  timezone: z.string().refine(isValidZone, { message: 'unknown time zone' }).default('local'),
  inputs: z.array(z.discriminatedUnion('type', [syslogInput, fileInput])).default([]),
  parsers: z.object({ directory: z.string().optional() }).strict().default({}),
  inventory: z.object({
    /** how long a DHCP binding is assumed to last when the log gives no lease time */
    defaultLeaseS: duration.default(3600),
    /** a VPN session without a tunnel-down is assumed gone after this long */
    maxSessionS: duration.default(86400),
    /** sightings and ended bindings older than this are pruned */
    retention: duration.default(90 * 86400),
    /** identities with the same specific hostname (a laptop's DHCP and VPN views) share their last scan */
    linkHostnames: z.boolean().default(true),
  }).strict().default({ defaultLeaseS: 3600, maxSessionS: 86400, retention: 90 * 86400, linkHostnames: true }),
  policy: z.object({
    rescanAfter: duration.default(30 * 86400),
    /** a present device is due this long before its rescan window runs out (default: a seventh of the window, at most a day) */
    rescanLead: duration.optional(),
    scope: z.array(cidr).min(1),
    exclude: z.array(cidr).default([]),
    rules: z.array(rule).default([]),
  }).strict(),
  regions: z.array(region).min(1),
  scanner: scannerConfigSchema.prefault({ type: 'dry-run' }),
  scheduler: schedulerConfigSchema.prefault({}),
  http: z.object({ listen: z.string().default('127.0.0.1:9321'), enabled: z.boolean().default(true) }).strict()
    .default({ listen: '127.0.0.1:9321', enabled: true }),
  log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') }).strict()
    .default({ level: 'info' }),
}).strict();

export type Config = z.output<typeof configSchema>;
export type RegionConfig = Config['regions'][number];
export type InputConfig = Config['inputs'][number];
export type { ScannerConfig } from '../scanners/registry.js';
