/**
 * Emulator options, their defaults, and the options file (JSON or YAML) for
 * `onsight emulate qualys --config FILE`. Every behaviour the Qualys reference marks as
 * unconfirmed is a setting here.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, OnsightError } from '../../errors.js';
import type { Logger } from '../../log.js';

export type EmulatedApi = 'scan' | 'appliance' | 'host' | 'ip' | 'schedule' | 'optionProfile';
export const EMULATED_APIS: EmulatedApi[] = ['scan', 'appliance', 'host', 'ip', 'schedule', 'optionProfile'];

const limitSchema = z.object({
  /** calls allowed per window */
  limit: z.number().int().positive(),
  windowSec: z.number().positive(),
  /** calls that may run at once */
  concurrency: z.number().int().positive(),
}).strict();

const errorAnswerSchema = z.object({ status: z.number().int(), code: z.number().int(), text: z.string() }).strict();

const share = z.number().min(0).max(1);

const faultSchema = z.object({
  /** injected 409s (half concurrency 1960, half rate 1965) */
  conflictShare: share.default(0),
  conflictToWaitSec: z.number().nonnegative().default(1),
  /** 500 (CODE 999) or 503 (CODE 1999) before processing */
  serverErrorShare: share.default(0),
  /** answer delayed by slowMs (the call holds its concurrency slot meanwhile) */
  slowShare: share.default(0),
  slowMs: z.number().nonnegative().default(2000),
  /** socket destroyed before the request is processed */
  dropShare: share.default(0),
  /** request processed, then the socket destroyed: the answer is lost */
  dropAfterShare: share.default(0),
  /** request processed, answer cut in the middle of the XML */
  truncatedShare: share.default(0),
  /** request processed, answer is not XML at all */
  malformedShare: share.default(0),
  /** request processed, answered HTTP 202 CODE 1981 ("being processed, try the same request again later") */
  processingShare: share.default(0),
  /** scans that end in Error instead of Finished */
  scanErrorShare: share.default(0),
  /** appliances that go offline (and maybe come back) at times in emulated seconds from start */
  applianceOffline: z.array(z.object({ name: z.string(), atSec: z.number().nonnegative(), untilSec: z.number().positive().optional() }).strict()).default([]),
  /** only these APIs get request faults (default all) */
  apis: z.array(z.enum(['scan', 'appliance', 'host', 'ip', 'schedule', 'optionProfile'])).optional(),
  /** only these actions get request faults (default all) */
  actions: z.array(z.string()).optional(),
}).strict();

const applianceSchema = z.object({
  name: z.string().min(1),
  id: z.number().int().positive().optional(),
  online: z.boolean().default(true),
  /** hosts scanned in parallel */
  capacity: z.number().int().positive().default(10),
  /** scans running at once on this appliance (default unlimited; extra scans stay Queued) */
  maxScans: z.number().int().positive().optional(),
  pollingIntervalSec: z.number().int().positive().default(180),
  type: z.string().default('Virtual'),
}).strict();

/** A time zone the schedule calls accept: its offset from UTC and the TIME_ZONE_DETAILS text. Daylight saving is not modelled. */
const timeZoneSchema = z.object({ offsetMin: z.number().int().min(-720).max(840), details: z.string() }).strict();

/** A scheduled scan present at start (someone else's, say): daily at startHour:startMinute in its time zone. */
const scheduleSchema = z.object({
  title: z.string().min(1),
  targets: z.array(z.string()).min(1),
  appliance: z.string().min(1),
  optionTitle: z.string().optional(),
  startHour: z.number().int().min(0).max(23),
  startMinute: z.number().int().min(0).max(59).default(0),
  timeZoneCode: z.string().default('GB'),
  frequencyDays: z.number().int().min(1).max(365).default(1),
  active: z.boolean().default(true),
  /** owner shown as USER_LOGIN and on its runs (default the emulator's user) */
  userLogin: z.string().optional(),
}).strict();

const optionProfileSchema = z.object({
  title: z.string().min(1),
  hostsToScan: z.number().int().positive().default(30),
  parallelScaling: z.boolean().default(false),
}).strict();

const hostSchema = z.object({
  ip: z.string(),
  lastScannedAt: z.string().optional(),
  dns: z.string().optional(),
  netbios: z.string().optional(),
  trackingMethod: z.enum(['IP', 'DNS', 'NETBIOS', 'EC2', 'AGENT']).default('IP'),
}).strict();

export const emulatorFileSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
  username: z.string().min(1).default('onsight'),
  password: z.string().min(1).default('emulator'),
  userLogin: z.string().optional(),
  seed: z.number().int().default(1),
  /** emulated seconds per real second for scan progress */
  speed: z.number().positive().default(1),
  /** emulated start time (ISO 8601); default now */
  startAt: z.string().optional(),
  appliances: z.array(applianceSchema).prefault([{ name: 'emulated-sa-1' }]),
  /** the subscription's IP list: IPs, a-b ranges, CIDRs */
  subscription: z.array(z.string()).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']),
  hosts: z.array(hostSchema).default([]),
  /** scheduled scans present at start; the API creates, updates and deletes more */
  schedules: z.array(scheduleSchema).default([]),
  /**
   * time_zone_code values the schedule calls accept. The guide's samples show US-CA and IN; the code
   * of a GMT+0000 zone (GB here) is our assumption, as is everything else in this table
   */
  timeZones: z.record(z.string(), timeZoneSchema).default({
    GB: { offsetMin: 0, details: '(GMT+0000) United Kingdom: Europe/London' },
    'US-CA': { offsetMin: -480, details: '(GMT-0800) United States: America/Los_Angeles' },
    'US-NY': { offsetMin: -300, details: '(GMT-0500) United States: America/New_York' },
    IN: { offsetMin: 330, details: '(GMT+0530) India: Asia/Calcutta' },
  }),
  /**
   * accepted option profile titles (absent = any title); ids are 1.. in this order. An entry may
   * give the profile's performance settings the option profile list shows: hosts to scan in
   * parallel on scanner appliances (default 30, the "Normal" setting) and parallel scaling (default
   * off). A scan launched with a profile runs at most its hosts to scan at once on each appliance
   * (with parallel scaling, as many as the appliance's `capacity` allows), and an appliance at
   * most its `capacity` over all its scans.
   */
  optionProfiles: z.array(z.union([z.string().min(1), optionProfileSchema])).optional(),
  scanTiming: z.object({
    /** Submitted → Queued: about one appliance polling interval */
    submitDelaySec: z.number().nonnegative().default(5),
    hostSecMin: z.number().positive().default(60),
    hostSecMax: z.number().positive().default(180),
    /** Loading after the last host, before Finished */
    loadingSec: z.number().nonnegative().default(10),
  }).strict().prefault({}),
  /** scans the subscription runs at once (extra ones stay Queued) */
  maxConcurrentScans: z.number().int().positive().optional(),
  limits: z.object({
    default: limitSchema.prefault({ limit: 300, windowSec: 3600, concurrency: 2 }),
    scan: limitSchema.optional(),
    appliance: limitSchema.optional(),
    host: limitSchema.optional(),
    ip: limitSchema.optional(),
    schedule: limitSchema.optional(),
    optionProfile: limitSchema.optional(),
    /** do blocked (409) calls count against the window? Qualys's guide is ambiguous */
    countBlockedCalls: z.boolean().default(false),
  }).strict().prefault({}),
  hostListTruncationLimit: z.number().int().positive().default(1000),
  /** scheme://host[:port] named in host-list next-page URLs (default: the Host the client called), as a platform answering from another host does */
  nextPageOrigin: z.string().url().optional(),
  /**
   * A launch naming addresses outside the subscription: `refuse` it (the notInSubscription answer),
   * or `drop` them silently and scan the rest (its TARGET lists only those). Qualys documents neither.
   */
  outOfSubscription: z.enum(['refuse', 'drop']).default('refuse'),
  notInSubscription: errorAnswerSchema.default({ status: 400, code: 1905, text: 'The following IPs are not in your subscription: {ips}' }),
  missingRequestedWith: errorAnswerSchema.default({ status: 400, code: 1903, text: 'Missing required header X-Requested-With' }),
  /** a call on a version that does not serve it (retired, or never existed); the real answer is undocumented */
  retiredVersion: errorAnswerSchema.default({ status: 404, code: 1905, text: '{path} does not serve action={action}; it is served at {served}' }),
  /**
   * The account: `active`, or a problem answered to every authenticated call: `expired` (HTTP 200,
   * CODE 2001), `registration` not completed (409, CODE 2003), `securid` required (409, CODE 2011)
   */
  account: z.enum(['active', 'expired', 'registration', 'securid']).default('active'),
  /** an evaluation subscription: XML comments before and after the root of every 200 answer */
  evaluation: z.boolean().default(false),
  /** launch on an offline appliance: keep the scan Queued, or refuse it (CODE 1905) */
  launchOnOfflineAppliance: z.enum(['queue', 'reject']).default('queue'),
  faults: faultSchema.prefault({}),
}).strict();

export type EmulatorConfig = z.infer<typeof emulatorFileSchema>;
export type EmulatorFileOptions = z.input<typeof emulatorFileSchema>;
export type LimitConfig = z.infer<typeof limitSchema>;
export type FaultConfig = z.infer<typeof faultSchema>;
export type ScheduleConfig = z.infer<typeof scheduleSchema>;

/** Programmatic options: the file's keys plus an injectable clock. */
export interface EmulatorOptions extends EmulatorFileOptions {
  /** scan clock (epoch ms); overrides speed/startAt */
  now?: () => number;
  /** clock for rate/concurrency windows (default Date.now) */
  realNow?: () => number;
  /** one debug line per request (api, action, status, fault) */
  log?: Logger;
}

export function resolveEmulatorConfig(o: EmulatorFileOptions, file?: string): EmulatorConfig {
  const r = emulatorFileSchema.safeParse(o);
  if (!r.success) {
    throw new ConfigError(r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })), file);
  }
  return r.data;
}

export function loadEmulatorConfig(file: string): EmulatorConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OnsightError('ONSIGHT_CONFIG_UNREADABLE', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let data: unknown;
  try {
    data = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([{ path: '', message: `not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message}` }], file);
  }
  return resolveEmulatorConfig((data ?? {}) as EmulatorFileOptions, file);
}

export function limitFor(c: EmulatorConfig, api: EmulatedApi): LimitConfig {
  return c.limits[api] ?? c.limits.default;
}

/** The option profiles as the list call shows them (a bare title: the Normal performance settings). */
export function optionProfilesOf(c: EmulatorConfig): { title: string; hostsToScan: number; parallelScaling: boolean }[] | undefined {
  return c.optionProfiles?.map((p) => (typeof p === 'string' ? { title: p, hostsToScan: 30, parallelScaling: false } : p));
}
