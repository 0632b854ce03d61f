/**
 * Options of the Qualys client, with the defaults in one place. Anything the reference marks as
 * unconfirmed ([U]) is an option here rather than a constant.
 */

/** The four Qualys "fo" APIs we call; each has its own rate and concurrency budget. */
export type QualysApi = 'scan' | 'appliance' | 'host' | 'ip' | 'schedule' | 'optionProfile';

/** Each call we make, with its own path and version (Qualys versions each call separately). */
export type QualysEndpoint = 'launch' | 'scanList' | 'cancel' | 'applianceList' | 'hostList' | 'ipAdd' | 'schedule' | 'optionProfile';

/**
 * The version Qualys serves today for each call (Qualys API (VM, PC) User Guide 10.39.1, July 2026,
 * "API Version History" tables): the scan list moved to 3.0 and the host list to 5.0 (their older
 * versions reached End of Support in December 2025, End of Life six months later); launch and
 * cancel exist only at 2.0; the appliance list and the IP add call have no newer version. The
 * scheduled-scan calls (list, create, update, delete) are documented at 2.0 only (README).
 */
export const DEFAULT_ENDPOINTS: Record<QualysEndpoint, string> = {
  launch: '/api/2.0/fo/scan/',
  scanList: '/api/3.0/fo/scan/',
  cancel: '/api/2.0/fo/scan/',
  applianceList: '/api/2.0/fo/appliance/',
  hostList: '/api/5.0/fo/asset/host/',
  ipAdd: '/api/2.0/fo/asset/ip/',
  schedule: '/api/2.0/fo/schedule/scan/',
  // the VM option profile list (the guide's "List VM Option Profile"; the 2.0 path most clients call)
  optionProfile: '/api/2.0/fo/subscription/option_profile/vm/',
};

/** Whose rate and concurrency budget a call spends (Qualys counts per API, not per version). */
export const ENDPOINT_API: Record<QualysEndpoint, QualysApi> = {
  launch: 'scan', scanList: 'scan', cancel: 'scan', applianceList: 'appliance', hostList: 'host', ipAdd: 'ip', schedule: 'schedule', optionProfile: 'optionProfile',
};

/**
 * The time zone our scheduled scans are written in. Qualys takes a `time_zone_code` (the guide's
 * samples show `US-CA`, `IN`) and `observe_dst`; none of the pages we read names the code of UTC
 * itself, so the default is the United Kingdom's zone (GMT+0000) with daylight saving off, which
 * is UTC all year. Configurable (`scheduleTimeZoneCode`) until a real answer confirms the code.
 */
export const DEFAULT_SCHEDULE_TIME_ZONE_CODE = 'GB';

/**
 * The domains of the Qualys platforms (Qualys's platform identification page, as qualysdk's platform
 * table has it: US1-4 qualys.com, EU1-2 qualys.eu, EU3 qualys.it, IN1 qualys.in, CA1 qualys.ca,
 * AE1 qualys.ae, UK1 qualys.co.uk, AU1 qualys.com.au, KSA1 qualysksa.com).
 */
export const PLATFORM_DOMAINS = ['qualys.com', 'qualys.eu', 'qualys.it', 'qualys.in', 'qualys.ca', 'qualys.ae', 'qualys.co.uk', 'qualys.com.au', 'qualysksa.com'];

export type OptionProfileRef = string | { title: string } | { id: number };

export interface RetryOptions {
  /** attempts for 5xx / network / 202 answers, including the first (default 4) */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface ThrottleOptions {
  /** longest single wait we accept on a 409 before failing with QualysRateLimitError (default 120 s) */
  maxWaitSec: number;
  /** 409s waited out per call before giving up (default 20) */
  maxRetries: number;
  /** wait after a 1960 (concurrency) 409, which carries no ToWait value (default 1000 ms, jittered) */
  concurrencyBackoffMs: number;
  /** wait after a 1965 that gives no wait (no X-RateLimit-ToWait-Sec, no SECONDS_TO_WAIT): one usual window (qualysdk: 3601 s; default 3600 s) */
  missingToWaitSec: number;
}

/** addresses per host-list call, unless hostListBatchSize says otherwise (the simulator charges host lists by it too) */
export const DEFAULT_HOST_LIST_BATCH_SIZE = 300;

export interface QualysClientOptions {
  /** platform API base URL, e.g. https://qualysapi.qualys.eu (no credentials in it) */
  baseUrl: string;
  username: string;
  password: string;
  /** X-Requested-With value (default "onsight") */
  requestedWith?: string;
  /** default option profile for launches (title, or { id }) */
  optionProfile?: OptionProfileRef;
  /** path (with its version) per call, e.g. { hostList: '/api/5.0/fo/asset/host/' }; defaults: DEFAULT_ENDPOINTS */
  endpoints?: Partial<Record<QualysEndpoint, string>>;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** overall deadline for one HTTP exchange (default 120 s) */
  requestTimeoutMs?: number;
  /** keep-alive connections in the pool (default 4) */
  connections?: number;
  /** answers bigger than this fail instead of exhausting memory (default 64 MiB) */
  maxResponseBytes?: number;
  retry?: Partial<RetryOptions>;
  throttle?: Partial<ThrottleOptions>;
  /** our own cap on calls in flight per API before the first response tells us the real one (default 1) */
  initialConcurrency?: number;
  /** leave this many of X-Concurrency-Limit-Limit to other users of the subscription (default 0) */
  concurrencyHeadroom?: number;
  /** refuse a launch when any target fails this (defence in depth behind the policy) */
  allowTarget?: (ip: string) => boolean;
  /** refuse launches with more targets than this (default 1000) */
  maxTargetsPerScan?: number;
  /** add targets to the subscription (asset/ip action=add) when a launch says they are missing */
  addToSubscription?: boolean;
  /** tracking method for added IPs (default IP; DNS suits DHCP/VPN pools) */
  trackingMethod?: 'IP' | 'DNS' | 'NETBIOS';
  /** Qualys TEXT that means "target not in subscription" ([U] in the reference) */
  notInSubscriptionPattern?: RegExp;
  /** extra parameters for every launch, e.g. { ip_network_id: '0', priority: '5' } */
  launchParams?: Record<string, string>;
  /** pause before looking for a possibly-created scan (Qualys lists lag; default 2000 ms) */
  reconcileDelayMs?: number;
  /** how far back (before the launch call) reconciliation looks in the scan list (default 600 s) */
  reconcileLookbackSec?: number;
  /**
   * A poll for several scans asks for those launched since the oldest ref's epoch less this (default
   * 86400 s): the ref's epoch is the launch time in the guide's sample, but one real launch answer
   * shows a ref hours older than its DATETIME
   */
  scanRefSlackSec?: number;
  /**
   * Domains whose https hosts may serve a next page (Qualys names the host it calls itself, which may
   * differ from the base URL's): only the one the base URL is under applies. Default PLATFORM_DOMAINS;
   * a private-cloud platform adds its own. The base URL's own origin is always allowed.
   */
  platformDomains?: string[];
  /** IPs per host-list call (default 300) */
  hostListBatchSize?: number;
  /** truncation_limit sent with host lists (default: Qualys's own, 1000) */
  hostListTruncationLimit?: number;
  /** reported as Allowance.maxConcurrentScans (the API does not tell) */
  maxConcurrentScans?: number;
  /** Qualys time_zone_code of a zone at GMT+0000, for scheduled scans (sent with observe_dst=no; default DEFAULT_SCHEDULE_TIME_ZONE_CODE) */
  scheduleTimeZoneCode?: string;
  /** time source for allowance bookkeeping (default Date.now) */
  now?: () => number;
}

export interface ResolvedOptions {
  baseUrl: URL;
  requestedWith: string;
  endpoints: Record<QualysEndpoint, string>;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  requestTimeoutMs: number;
  connections: number;
  maxResponseBytes: number;
  retry: RetryOptions;
  throttle: ThrottleOptions;
  maxTargetsPerScan: number;
  addToSubscription: boolean;
  trackingMethod: 'IP' | 'DNS' | 'NETBIOS';
  notInSubscriptionPattern: RegExp;
  launchParams: Record<string, string>;
  reconcileDelayMs: number;
  reconcileLookbackSec: number;
  hostListBatchSize: number;
  hostListTruncationLimit?: number;
  scanRefSlackSec: number;
  platformDomains: string[];
  scheduleTimeZoneCode: string;
}

export const DEFAULT_NOT_IN_SUBSCRIPTION =
  /not in (?:the |your )?(?:subscription|account)|not (?:in|part of) .*host list|no valid (?:ip|target)|none of the (?:specified )?ips/i;

export function resolveEndpoints(given: Partial<Record<QualysEndpoint, string>> | undefined): Record<QualysEndpoint, string> {
  const out = { ...DEFAULT_ENDPOINTS };
  for (const [k, p] of Object.entries(given ?? {}) as [QualysEndpoint, string | undefined][]) {
    if (!(k in out) || !p) continue;
    if (!p.startsWith('/') || /[?#]/.test(p)) throw new TypeError(`qualys endpoint ${k} must be a path such as /api/3.0/fo/scan/, not ${JSON.stringify(p)}`);
    out[k] = p.endsWith('/') ? p : `${p}/`;
  }
  return out;
}

/** Validates the base URL without ever echoing credentials that someone put into it. */
export function parseBaseUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new TypeError('qualys baseUrl is not a valid URL');
  }
  if (u.username || u.password) throw new TypeError('qualys baseUrl must not contain credentials; use username and passwordFile');
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`qualys baseUrl must be http(s), not ${u.protocol}`);
  return new URL(u.origin);
}

/**
 * Launch parameters that say what is scanned, or where: ours alone (the scope is checked against
 * `ip`; asset groups, tags, FQDNs or another appliance would reach past it). Qualys VM API v2,
 * /api/2.0/fo/scan/ action=launch.
 */
const OWN_LAUNCH_PARAMS = new Set([
  'action', 'scan_title', 'ip', 'asset_groups', 'asset_group_ids', 'fqdn', 'target_from', 'tag_include_selector',
  'tag_exclude_selector', 'tag_set_by', 'tag_set_include', 'tag_set_exclude', 'use_ip_nt_range_tags',
  'use_ip_nt_range_tags_include', 'use_ip_nt_range_tags_exclude', 'ec2_instance_ids', 'connector_name', 'ec2_endpoint',
  'iscanner_name', 'iscanner_id', 'default_scanner', 'scanners_in_ag', 'scanners_in_tagset', 'scanners_in_network',
]);

function launchParamsOf(p: Record<string, string> | undefined): Record<string, string> {
  const own = Object.keys(p ?? {}).filter((k) => OWN_LAUNCH_PARAMS.has(k.toLowerCase()));
  if (own.length) throw new TypeError(`launchParams: ${own.join(', ')} ${own.length > 1 ? 'are' : 'is'} onsight's own (what is scanned, or where: the scope is checked against its targets alone)`);
  return p ?? {};
}

export function resolveOptions(o: QualysClientOptions): ResolvedOptions {
  return {
    baseUrl: parseBaseUrl(o.baseUrl),
    requestedWith: o.requestedWith ?? 'onsight',
    endpoints: resolveEndpoints(o.endpoints),
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    headersTimeoutMs: o.headersTimeoutMs ?? 60_000,
    bodyTimeoutMs: o.bodyTimeoutMs ?? 60_000,
    requestTimeoutMs: o.requestTimeoutMs ?? 120_000,
    connections: o.connections ?? 4,
    maxResponseBytes: o.maxResponseBytes ?? 64 * 1024 * 1024,
    retry: { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 30_000, ...o.retry },
    throttle: { maxWaitSec: 120, maxRetries: 20, concurrencyBackoffMs: 1000, missingToWaitSec: 3600, ...o.throttle },
    maxTargetsPerScan: o.maxTargetsPerScan ?? 1000,
    addToSubscription: o.addToSubscription ?? false,
    trackingMethod: o.trackingMethod ?? 'IP',
    notInSubscriptionPattern: o.notInSubscriptionPattern ?? DEFAULT_NOT_IN_SUBSCRIPTION,
    launchParams: launchParamsOf(o.launchParams),
    reconcileDelayMs: o.reconcileDelayMs ?? 2000,
    reconcileLookbackSec: o.reconcileLookbackSec ?? 600,
    hostListBatchSize: o.hostListBatchSize ?? DEFAULT_HOST_LIST_BATCH_SIZE,
    hostListTruncationLimit: o.hostListTruncationLimit,
    scanRefSlackSec: o.scanRefSlackSec ?? 86_400,
    platformDomains: (o.platformDomains ?? PLATFORM_DOMAINS).map((d) => d.toLowerCase().replace(/^\.+|\.+$/g, '')),
    scheduleTimeZoneCode: o.scheduleTimeZoneCode ?? DEFAULT_SCHEDULE_TIME_ZONE_CODE,
  };
}

/** The platform domain `host` is under (the longest match), if any. */
export function platformDomainOf(host: string, domains: string[]): string | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  return domains.filter((d) => h === d || h.endsWith(`.${d}`)).sort((a, b) => b.length - a.length)[0];
}

/**
 * May a next-page URL given by Qualys be followed with our credentials? Yes on the base URL's own
 * origin; else only https on the default port, without user info, under the same platform domain
 * as the base URL. Returns why not, or undefined when it may.
 */
export function nextPageRefusal(base: URL, next: URL, domains: string[]): string | undefined {
  if (next.username || next.password) return 'carries user info';
  if (next.origin === base.origin) return undefined;
  if (next.protocol !== 'https:') return 'not https';
  if (next.port !== '') return `names port ${next.port}`;
  const platform = platformDomainOf(base.hostname, domains);
  if (!platform) return `the base URL ${base.host} is not under a known Qualys platform domain (scanner.platformDomains)`;
  if (platformDomainOf(next.hostname, [platform]) !== platform) return `not under ${platform}, the domain of ${base.host}`;
  return undefined;
}
