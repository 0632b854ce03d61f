/**
 * The `scanner:` section for `type: qualys` (zod), with its defaults. config/onsight.example.yaml
 * documents every key; the backend table (src/scanners/registry.ts) takes it into the scanner union.
 */
import { z } from 'zod';
import { DEFAULT_ENDPOINTS, DEFAULT_SCHEDULE_TIME_ZONE_CODE } from './options.js';

const endpointPath = z.string().regex(/^\/[^?#\s]*$/, { message: 'expected a path such as /api/3.0/fo/scan/' });

/** Path and version of each call; the defaults are the versions Qualys serves today (see README). */
const endpoints = z.object({
  launch: endpointPath.default(DEFAULT_ENDPOINTS.launch),
  scanList: endpointPath.default(DEFAULT_ENDPOINTS.scanList),
  cancel: endpointPath.default(DEFAULT_ENDPOINTS.cancel),
  applianceList: endpointPath.default(DEFAULT_ENDPOINTS.applianceList),
  hostList: endpointPath.default(DEFAULT_ENDPOINTS.hostList),
  ipAdd: endpointPath.default(DEFAULT_ENDPOINTS.ipAdd),
  schedule: endpointPath.default(DEFAULT_ENDPOINTS.schedule),
  optionProfile: endpointPath.default(DEFAULT_ENDPOINTS.optionProfile),
}).strict();

export const qualysScannerSchema = z.object({
  type: z.literal('qualys'),
  url: z.string().url(),
  username: z.string().min(1),
  passwordFile: z.string().optional(),
  passwordEnv: z.string().optional(),
  /** name of a systemd credential (LoadCredential=NAME:...) holding the password */
  credential: z.string().optional(),
  optionProfile: z.string().min(1),
  /** targets per scan; past that, settled ones (leases running a day longer) join it, up to maxTargetsPerLaunch */
  maxTargetsPerScan: z.number().int().positive().max(10000).default(50),
  /**
   * the most targets one launch may carry (the client refuses more). Qualys documents no maximum
   * (../shared/reference/qualys-api.md §3.1 "Size limits": the POST body carries the list)
   */
  maxTargetsPerLaunch: z.number().int().positive().max(10000).default(10000),
  xRequestedWith: z.string().default('onsight'),
  addToSubscription: z.boolean().default(false),
  timeoutS: z.number().positive().default(60),
  endpoints: endpoints.prefault({}),
  /** time_zone_code of a GMT+0000 zone for onsight's scheduled scans (sent with observe_dst=no); the code of UTC itself is not documented */
  scheduleTimeZoneCode: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).default(DEFAULT_SCHEDULE_TIME_ZONE_CODE),
  /** domains whose https hosts may serve host-list next pages (default: Qualys's platform domains; a private cloud adds its own) */
  platformDomains: z.array(z.string().regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i, { message: 'expected a domain such as qualys.eu' })).optional(),
}).strict();

export type QualysScannerOptions = z.output<typeof qualysScannerSchema>;
