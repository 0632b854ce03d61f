/**
 * The config shape (DESIGN.md), validated with zod. Every key is documented in
 * config/onsight.example.yaml; defaults live here and nowhere else.
 */
import { z } from 'zod';
import { parseCidr } from '../util/ip.js';
import { isValidZone, parseDuration } from '../util/time.js';
import { parseBlackout, parseWindow } from '../policy/windows.js';
import { parseHttpListen } from '../http/server.js';
import { CLIENT_CERT_NEEDS_CA, clientCertHasCa, webConfigShape } from '../net/webconfig.js';
import { httpInput } from '../sources/http/schema.js';
import { leaseInput } from '../sources/lease/schema.js';
import { schedulerConfigSchema } from '../scheduler/options.js';
import { scannerConfigSchema } from '../scanners/registry.js';
import { notifySchema } from '../notify/schema.js';
import { clusterConfigSchema, stateSchema } from '../cluster/config.js';

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, { message: 'not a CIDR or IP address' });

/** the longest duration a config takes: longer is a typo (99999999999999999999d read as 8.64e+24 s) */
const MAX_DURATION_S = 100 * 365 * 86400;

/** `30d`, `12h`, `90s`, or seconds as a number → seconds */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = parseDuration(v);
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${v}" (use e.g. 30d, 12h, 15m, 90s)` });
    return z.NEVER;
  }
  if (s > MAX_DURATION_S) {
    ctx.addIssue({ code: 'custom', message: `${v} is longer than 100 years: a typo?` });
    return z.NEVER;
  }
  return s;
});

/** a rescan window: 0 would make every device due at every pass */
const rescanWindow = duration.refine((s) => s > 0, { message: 'must be longer than 0 (0 makes every device due again at every pass: a scan loop)' });

const listenUrl = z.string().refine((s) => /^(udp|tcp|tls):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, {
  message: 'expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT with a port 0..65535',
});

/** what the HTTP server will bind: refused here rather than when the daemon has already started */
const httpListen = z.string().superRefine((s, ctx) => {
  try {
    parseHttpListen(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (e.g. 127.0.0.1:9321, [::1]:9321, localhost:9321)` });
  }
});

const syslogInput = z.object({
  type: z.literal('syslog'),
  listen: listenUrl,
  allow: z.array(cidr).optional(),
  format: z.string().default('auto'),
  maxMessageBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(65536),
  idleTimeoutS: z.number().positive().default(300),
  maxConnections: z.number().int().positive().default(1000),
  maxConnectionsPerSender: z.number().int().positive().default(32),
  udpRecvBufferBytes: z.number().int().positive().default(8 * 1024 * 1024),
  // the input's socket lives in a worker thread: UDP drains the kernel buffer while the main thread
  // commits; TCP/TLS run their whole server there (framing, screening), the main thread gets the claimable lines
  receiveThread: z.boolean().default(true),
  // UDP, in the receive thread: native/udp-recv (recvmmsg in its own thread) when it was built (auto),
  // required (native: the input fails to start without it) or never (dgram: node's dgram socket)
  udpReceiver: z.enum(['auto', 'native', 'dgram'], { error: 'udpReceiver must be auto, native or dgram' }).default('auto'),
  // a message that is not UTF-8 is kept (RFC 5424 §6.4) and read as Latin-1 or UTF-8 with U+FFFD
  invalidUtf8: z.enum(['latin1', 'replace']).default('latin1'),
  tls: z.object({
    cert: z.string(),
    key: z.string(),
    ca: z.string().optional(),
    requireClientCert: z.boolean().default(false),
  }).strict().refine(clientCertHasCa, CLIENT_CERT_NEEDS_CA).optional(),
}).strict();

const fileInput = z.object({
  type: z.literal('file'),
  path: z.string().min(1),
  format: z.string().default('auto'),
  startAt: z.enum(['beginning', 'end']).default('beginning'),
  pollMs: z.number().int().min(10).default(250),
  /** logrotate's olddir for this file: its rotations are looked for there too (absolute, or relative to the file's folder) */
  rotatedDir: z.string().min(1).optional(),
}).strict();

/** `Mon-Fri 08:00-18:00`, `Sat 00:00-24:00`, `* 22:00-06:00` (wraps midnight) */
const scanWindow = z.string().refine((s) => parseWindow(s) !== undefined, {
  message: 'expected "DAYS HH:MM-HH:MM" with days Mon..Sun (or *), times 00:00..24:00 and an end other than the start, e.g. "Mon-Fri 08:00-18:00", "* 22:00-06:00" or, all day, "* 00:00-24:00"',
});

/** `2026-12-24`, `2026-12-24..2026-12-26`, `2026-12-31T18:00..2027-01-01T06:00` (the region's time zone) */
const blackout = z.string().refine((s) => parseBlackout(s) !== undefined, {
  message: 'expected a date YYYY-MM-DD, a span of dates YYYY-MM-DD..YYYY-MM-DD, or YYYY-MM-DDTHH:MM..YYYY-MM-DDTHH:MM (from before until), e.g. "2026-12-24..2026-12-26"',
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
  rescanAfter: rescanWindow.optional(),
  // (an empty list would mean "any time", as no list does: one emptied to pause a region scanned it round the clock; a blackout pauses it)
  scanWindows: z.array(scanWindow).min(1, 'an empty list would allow scans at any time: leave scanWindows out for any time, or pause the region with blackouts').optional(),
  /** dates or spans with no scans in the region, besides the weekly scanWindows; our scans going when one begins are stopped */
  blackouts: z.array(blackout).optional(),
  /** our scans still going when the scan windows close: `finish` (run to their end) or `stop` (canceled, targets requeued) */
  scanWindowEnd: z.enum(['finish', 'stop']).optional(),
  /** the scanner's option profile for this region's scans (Qualys: its title), instead of scanner.optionProfile */
  optionProfile: z.string().min(1).max(256).optional(),
  timezone: z.string().refine(isValidZone, { message: 'unknown time zone' }).optional(),
}).strict();

const rule = z.object({
  cidrs: z.array(cidr).min(1),
  rescanAfter: rescanWindow,
}).strict();

export const configSchema = z.object({
  /** a SQLite file (the embedded default), or a PostgreSQL connection: { postgres: URL, passwordFile | passwordEnv | credential } */
  state: stateSchema.default('./data/onsight.db'),
  /** cluster mode (needs a PostgreSQL state): this node's name and role */
  cluster: clusterConfigSchema.optional(),
  timezone: z.string().refine(isValidZone, { message: 'unknown time zone' }).default('local'),
  inputs: z.array(z.discriminatedUnion('type', [syslogInput, fileInput, httpInput, leaseInput])).default([]),
  parsers: z.object({ directory: z.string().optional() }).strict().default({}),
  inventory: z.object({
    /** how long a DHCP binding is assumed to last when the log gives no lease time (and none is learned yet) */
    defaultLeaseS: duration.default(3600),
    /** learn each DHCP pool's lease time from its clients' renewals (at half the lease) when lines state none */
    learnLeaseTimes: z.boolean().default(true),
    /** a VPN session without a tunnel-down is assumed gone after this long */
    maxSessionS: duration.default(86400),
    /** sightings, ended bindings and ended scans older than this are pruned; devices gone this long (or the longest rescanAfter) are forgotten */
    retention: duration.default(90 * 86400),
    /** identities with the same specific hostname (a laptop's DHCP and VPN views) share their last scan */
    linkHostnames: z.boolean().default(true),
    /** host-name globs handed out centrally (e.g. lt-*): these link on the name alone; others need the same user on both sides */
    linkHostPatterns: z.array(z.string().min(1).max(253)).default([]),
  }).strict().default({ defaultLeaseS: 3600, learnLeaseTimes: true, maxSessionS: 86400, retention: 90 * 86400, linkHostnames: true, linkHostPatterns: [] }),
  ingest: z.object({
    /**
     * decode (header, detection, parsing) in a worker thread, so a second core does it; commits stay
     * on the main thread. auto: on when the process may use two or more cores (decodeThreadOn)
     */
    decodeThread: z.union([z.boolean(), z.literal('auto')]).default('auto'),
    /**
     * seconds a parser plug-in may take on one line (2 s more per MiB of line) before the decode
     * thread's watchdog ends the thread and drops the line (parsers/README.md rule 2)
     */
    decodeLineTimeoutS: z.number().min(1).max(600).default(10),
  }).strict().default({ decodeThread: 'auto', decodeLineTimeoutS: 10 }),
  policy: z.object({
    rescanAfter: rescanWindow.default(30 * 86400),
    /** a present device is due this long before its rescan window runs out (default: a seventh of the window, at most a day) */
    rescanLead: duration.optional(),
    scope: z.array(cidr).min(1),
    exclude: z.array(cidr).default([]),
    rules: z.array(rule).default([]),
  }).strict(),
  regions: z.array(region).min(1),
  scanner: scannerConfigSchema.prefault({ type: 'dry-run' }),
  scheduler: schedulerConfigSchema.prefault({}),
  /** the status page, /metrics and the API: where, and the shared web config (TLS, tokens, allowed Host names) */
  http: z.object({ listen: httpListen.default('127.0.0.1:9321'), enabled: z.boolean().default(true), allowUnauthenticated: z.boolean().optional(), ...webConfigShape }).strict()
    .default({ listen: '127.0.0.1:9321', enabled: true }),
  /** webhook and syslog notifications of scans ended, hosts scanned and hosts missed (src/notify) */
  notify: notifySchema.default({}),
  log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') }).strict()
    .default({ level: 'info' }),
}).strict();

export type Config = z.output<typeof configSchema>;
export type RegionConfig = Config['regions'][number];
export type InputConfig = Config['inputs'][number];
export type { ScannerConfig } from '../scanners/registry.js';
