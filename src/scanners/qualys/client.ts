/**
 * The Qualys VM client behind the Scanner seam. Launches are crash-safe: the scan title carries
 * the intent id, and when a launch fails in a way that may have reached Qualys, we look for the
 * scan by that id before trying again, so one intent never yields two scans.
 */
import { OnsightError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { canonicalIp } from '../../util/ip.js';
import type { Allowance, FailureOutcome, LastScanned, LaunchRequest, LaunchResult, RangeLaunch, RangeSchedule, ScanFilter, Scanner, ScannerCall, ScanProfileFacts, ScheduleStatus } from '../types.js';
import { cancelRefused } from '../failure.js';
import { QualysAllowance } from './allowance.js';
import { latest, parseApplianceList, parseHostList, type QualysAppliance, type QualysHost } from './asset-xml.js';
import { sleep } from './backoff.js';
import { parseOptionProfiles } from './option-profile-xml.js';
import {
  ClientClosedError, QualysApiError, QualysError, QualysLaunchUnconfirmedError, QualysNotInSubscriptionError,
  QualysXmlError, ScopeViolationError,
} from './errors.js';
import { resolveOptions, type OptionProfileRef, type QualysApi, type QualysClientOptions, type ResolvedOptions } from './options.js';
import { parseLaunch, parseScanList, qualysDate, stateFilter, titleHasIntent, type QualysScan } from './scan-xml.js';
import { qualysFailureOutcome } from './outcome.js';
import { MAX_CHECKED_ADDRESSES, refusedRanges, syncSchedules } from './schedules.js';
import { QualysTransport } from './transport.js';
import { addressesNamed, rangeSet, rangeSetSize, rangeSetText } from './targets.js';
import { nextPageUrl } from './xml.js';
import type { SendGuard } from '../backend.js';

const MAX_TITLE = 2000;
const MAX_PAGES = 10_000;

export interface QualysClientDeps {
  log?: Logger;
  /** share one allowance between clients of the same subscription */
  allowance?: QualysAllowance;
  /** randomness for jitter (tests make it deterministic) */
  random?: () => number;
  /** cluster mode: only the leader sends */
  sendGuard?: SendGuard;
}

export interface HostListQuery {
  /** IPv4 addresses and ranges (`ips`) */
  ips?: string[];
  /** IPv6 addresses (`ipv6`: the ips parameter takes IPv4 only) */
  ipv6?: string[];
  /** only hosts not VM-scanned since this date */
  noVmScanSince?: Date;
  /** only hosts VM-scanned since this date */
  vmScanSince?: Date;
}

export class QualysClient implements Scanner {
  readonly kind = 'qualys';
  /** addresses per host-list call (lastScanned makes a call per batch) */
  get hostListBatchSize(): number {
    return this.o.hostListBatchSize;
  }
  /** the client's hard cap on one launch's targets (the scheduler's batches stay within it) */
  get maxTargetsPerLaunch(): number {
    return this.o.maxTargetsPerScan;
  }
  private readonly o: ResolvedOptions;
  private readonly transport: QualysTransport;
  private readonly gate: QualysAllowance;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly allowTarget?: (ip: string) => boolean;
  private readonly optionProfile?: OptionProfileRef;
  private readonly maxConcurrentScans?: number;
  private readonly now: () => number;
  /** the login we call with, as scan lists' USER_LOGIN name it (lower case: compared so) */
  private readonly login: string;
  /** Qualys STATE names we met and do not know: each is logged once */
  private readonly unknownStates = new Set<string>();

  constructor(options: QualysClientOptions, deps: QualysClientDeps = {}) {
    this.o = resolveOptions(options);
    this.log = (deps.log ?? silentLogger()).child({ scanner: 'qualys' });
    this.random = deps.random ?? Math.random;
    this.gate = deps.allowance ?? new QualysAllowance({ now: options.now, initialConcurrency: options.initialConcurrency, headroom: options.concurrencyHeadroom });
    this.transport = new QualysTransport(this.o, { username: options.username, password: options.password }, this.gate, this.log, this.random, deps.sendGuard);
    this.allowTarget = options.allowTarget;
    this.optionProfile = options.optionProfile;
    this.maxConcurrentScans = options.maxConcurrentScans;
    this.now = options.now ?? Date.now;
    this.login = options.username.toLowerCase();
  }

  // ---- launch -----------------------------------------------------------------------------

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    const targets = this.checkTargets(req.targets);
    const title = titleFor(req.title, req.intentId);
    const params: Record<string, string> = {
      // (ours last: what is scanned and where is never another's to say)
      ...profileParams(req.optionProfile ?? this.optionProfile),
      ...this.o.launchParams,
      action: 'launch',
      scan_title: title,
      ip: targets.join(','),
      iscanner_name: req.appliance,
    };
    const lookFrom = new Date(Date.now() - this.o.reconcileLookbackSec * 1000);
    let added = false;
    for (;;) {
      let cause: QualysError;
      try {
        const r = await this.transport.call({ endpoint: 'launch', method: 'POST', params, idempotent: false, expect: ['SIMPLE_RETURN'], beforeSend: () => void this.checkTargets(req.targets) });
        const { scanRef, text } = parseLaunch(r.doc);
        if (scanRef) {
          this.log.info({ intentId: req.intentId, scanRef, targets: targets.length, appliance: req.appliance }, 'qualys scan launched');
          return { scanRef };
        }
        cause = new QualysXmlError(`qualys scan launch: answer without REFERENCE (${this.transport.scrub(text ?? 'no TEXT')})`, { retryable: true, ambiguous: true });
      } catch (err) {
        if (err instanceof QualysNotInSubscriptionError && this.o.addToSubscription && !added) {
          added = true;
          await this.addToSubscription(targets); // a repair, then the launch once more
          continue;
        }
        if (err instanceof QualysNotInSubscriptionError) throw refusal(err, targets);
        if (!(err instanceof QualysError) || !err.ambiguous) throw err;
        cause = err;
      }
      // The launch may have reached Qualys: is there a scan for this intent? If the list does not
      // show one yet, it is never sent again from here: a launch can be listed late (the list lags),
      // and a second one would be a second scan. The scheduler's reconciliation looks again after
      // its grace and relaunches only what it still does not find.
      this.log.warn({ intentId: req.intentId, err: { code: cause.code, message: cause.message } }, 'qualys launch outcome unknown; reconciling');
      const found = await this.reconcile(req.intentId, lookFrom, cause);
      if (found) return { scanRef: found };
      throw new QualysLaunchUnconfirmedError(req.intentId, `qualys launch for intent ${req.intentId} failed ambiguously (${cause.message}) and the scan list does not show it yet: the scheduler looks again before launching it anew`, { cause });
    }
  }

  /**
   * A range scan launched now (a range run its schedule could not start on time), titled exactly
   * `req.title`: ranges checked against the scope as a schedule's are, one attempt. A lost answer is
   * not retried here: the scheduler looks for the title in its next scan list.
   */
  async launchRanges(req: RangeLaunch): Promise<LaunchResult> {
    const ranges = rangeSet(req.targets);
    const size = rangeSetSize(ranges);
    // (as many as a schedule sync checks one by one against the scope)
    if (size > MAX_CHECKED_ADDRESSES) throw new OnsightError('ONSIGHT_SCANNER', `range scan "${req.title}" names more than ${MAX_CHECKED_ADDRESSES} addresses: too many to check one by one against the scope`);
    const refused = refusedRanges(req.targets, this.allowTarget);
    if (refused.length > 0) throw new ScopeViolationError(refused);
    if (size === 0) throw new OnsightError('ONSIGHT_SCANNER', `range scan "${req.title}" without targets`);
    if (!req.title.trim() || req.title.length > MAX_TITLE || /[\r\n]/.test(req.title)) throw new OnsightError('ONSIGHT_SCANNER', `range scan title "${req.title.slice(0, 80)}" must be one line of at most ${MAX_TITLE} characters`);
    const params: Record<string, string> = {
      ...profileParams(req.optionProfile ?? this.optionProfile), ...this.o.launchParams,
      action: 'launch', scan_title: req.title, ip: rangeSetText(ranges), iscanner_name: req.appliance,
    };
    const r = await this.transport.call({ endpoint: 'launch', method: 'POST', params, idempotent: false, expect: ['SIMPLE_RETURN'] });
    const { scanRef, text } = parseLaunch(r.doc);
    if (!scanRef) throw new QualysXmlError(`qualys range scan launch: answer without REFERENCE (${this.transport.scrub(text ?? 'no TEXT')})`, { retryable: true, ambiguous: true });
    this.log.info({ scanRef, title: req.title, addresses: size, appliance: req.appliance }, 'qualys range scan launched');
    return { scanRef };
  }

  private async reconcile(intentId: string, lookFrom: Date, cause: QualysError): Promise<string | undefined> {
    await this.pause(this.o.reconcileDelayMs);
    let found: QualysScan[];
    try {
      found = await this.findScansForIntent(intentId, lookFrom);
    } catch (err) {
      if (err instanceof ClientClosedError) throw err;
      throw new QualysLaunchUnconfirmedError(intentId, `qualys launch for intent ${intentId} failed ambiguously (${cause.message}) and the scan list could not be read`, { cause: err });
    }
    if (found.length === 0) return undefined;
    found.sort((a, b) => (a.launchedAt ?? '').localeCompare(b.launchedAt ?? ''));
    if (found.length > 1) this.log.error({ intentId, scanRefs: found.map((s) => s.scanRef) }, 'more than one Qualys scan carries this intent id');
    this.log.info({ intentId, scanRef: found[0].scanRef }, 'qualys launch confirmed from the scan list');
    return found[0].scanRef;
  }

  private checkTargets(targets: string[]): string[] {
    if (targets.length === 0) throw new OnsightError('ONSIGHT_SCANNER', 'launch without targets');
    const out: string[] = [];
    const refused: string[] = [];
    for (const t of targets) {
      const ip = canonicalIp(t);
      if (!ip || (this.allowTarget && !this.allowTarget(ip))) refused.push(t);
      else if (!out.includes(ip)) out.push(ip);
    }
    if (refused.length > 0) throw new ScopeViolationError(refused);
    if (out.length > this.o.maxTargetsPerScan) {
      throw new OnsightError('ONSIGHT_SCANNER', `launch with ${out.length} targets exceeds maxTargetsPerScan (${this.o.maxTargetsPerScan})`);
    }
    return out;
  }

  // ---- scans ------------------------------------------------------------------------------

  /**
   * Lists scans. One ref is asked with `scan_ref`; several are found in one list call (`scan_ref`
   * takes one reference), narrowed to what can hold them: API-launched scans (`type=API`) launched
   * since the oldest ref's launch (a ref is `scan/<launch epoch>.<n>`), instead of every scan of the
   * subscription in the default 30-day window. Refs Qualys does not list are absent.
   */
  async listScans(filter: ScanFilter = {}, o: { apiLaunchedOnly?: boolean } = {}): Promise<QualysScan[]> {
    const refs = filter.scanRefs;
    if (refs && refs.length === 0) return [];
    const many = refs !== undefined && refs.length > 1;
    const after = latestDate(filter.launchedAfter, many ? this.launchedNotBefore(refs) : undefined);
    const params: Record<string, string | undefined> = {
      action: 'list',
      scan_ref: refs?.length === 1 ? refs[0] : undefined,
      state: stateFilter(filter.states),
      type: many || o.apiLaunchedOnly ? 'API' : undefined,
      launched_after_datetime: after ? qualysDate(after) : undefined,
    };
    const r = await this.transport.call({ endpoint: 'scanList', method: 'GET', params, idempotent: true, expect: ['SCAN_LIST_OUTPUT'] });
    let scans = parseScanList(r.doc);
    for (const s of scans) {
      if (s.state === 'unknown') this.noteUnknownState(s);
      // (case aside: a login read as ours in doubt only makes its scan judged as ours)
      if (s.userLogin !== undefined) s.byOurLogin = s.userLogin.toLowerCase() === this.login;
    }
    if (refs) scans = scans.filter((s) => refs.includes(s.scanRef));
    if (filter.states?.length) scans = scans.filter((s) => filter.states!.includes(s.state));
    return scans;
  }

  /** The earliest launch the refs can have (their epoch part, less a slack); undefined if one has none. */
  private launchedNotBefore(refs: string[]): Date | undefined {
    let min = Infinity;
    for (const r of refs) {
      const epoch = /^scan\/(\d{9,11})\.\d+$/.exec(r)?.[1];
      if (!epoch) return undefined;
      min = Math.min(min, Number(epoch) * 1000);
    }
    return new Date(min - this.o.scanRefSlackSec * 1000);
  }

  /** A STATE we cannot map is `unknown` to the seam (the scheduler bounds how long it waits); said once per name. */
  private noteUnknownState(s: QualysScan): void {
    if (this.unknownStates.has(s.qualysState)) return;
    this.unknownStates.add(s.qualysState);
    this.log.warn({ qualysState: s.qualysState || '(none)', scanRef: s.scanRef }, 'qualys scan state not known to onsight; treated as unknown');
  }

  /** Scans whose title contains `substring` (for crash reconciliation; Qualys has no title filter). */
  async findScansByTitle(substring: string, o: { launchedAfter?: Date } = {}): Promise<QualysScan[]> {
    const all = await this.listScans({ launchedAfter: o.launchedAfter });
    return all.filter((s) => s.title.includes(substring));
  }

  /** Scans carrying `intentId` as a whole token in their title. */
  async findScansForIntent(intentId: string, launchedAfter?: Date): Promise<QualysScan[]> {
    const all = await this.listScans({ launchedAfter }, { apiLaunchedOnly: true });
    return all.filter((s) => titleHasIntent(s.title, intentId));
  }

  /** Cancels a scan; a scan that has already ended counts as cancelled. */
  async cancel(scanRef: string): Promise<void> {
    try {
      await this.transport.call({ endpoint: 'cancel', method: 'POST', params: { action: 'cancel', scan_ref: scanRef }, idempotent: true, expect: ['SIMPLE_RETURN'] });
      this.log.info({ scanRef }, 'qualys scan cancel requested');
    } catch (err) {
      if (!(err instanceof QualysApiError) || err.code === 'ONSIGHT_QUALYS_AUTH') throw err;
      const [scan] = await this.listScans({ scanRefs: [scanRef] });
      cancelRefused(scanRef, scan?.state, err);
    }
  }

  // ---- appliances and hosts -----------------------------------------------------------------

  async appliances(): Promise<QualysAppliance[]> {
    const r = await this.transport.call({
      endpoint: 'applianceList', method: 'GET', params: { action: 'list', output_mode: 'full', scan_detail: '1' }, idempotent: true, expect: ['APPLIANCE_LIST_OUTPUT'],
    });
    return parseApplianceList(r.doc);
  }

  /** The host list, every page of it (WARNING 1980 URLs are followed on the platform host only). */
  async hostList(q: HostListQuery = {}): Promise<QualysHost[]> {
    const out: QualysHost[] = [];
    let r = await this.transport.call({
      endpoint: 'hostList', method: 'POST', idempotent: true, expect: ['HOST_LIST_OUTPUT'],
      params: {
        action: 'list',
        details: 'Basic',
        ips: q.ips?.length ? q.ips.join(',') : undefined,
        ipv6: q.ipv6?.length ? q.ipv6.join(',') : undefined,
        no_vm_scan_since: q.noVmScanSince ? qualysDate(q.noVmScanSince) : undefined,
        vm_scan_since: q.vmScanSince ? qualysDate(q.vmScanSince) : undefined,
        truncation_limit: this.o.hostListTruncationLimit?.toString(),
      },
    });
    const seen = new Set<string>();
    for (let page = 1; ; page++) {
      out.push(...parseHostList(r.doc));
      const next = nextPageUrl(r.doc);
      if (!next) return out;
      if (seen.has(next) || page >= MAX_PAGES) throw new QualysXmlError(`qualys host list: pagination does not advance (page ${page})`);
      seen.add(next);
      r = await this.transport.call({ endpoint: 'hostList', method: 'GET', url: next, idempotent: true, expect: ['HOST_LIST_OUTPUT'] });
    }
  }

  async lastScanned(ips: string[]): Promise<LastScanned[]> {
    const wanted = [...new Set(ips.map((ip) => canonicalIp(ip) ?? ip))];
    const found = new Map<string, string | undefined>();
    // IPv4 in ips, IPv6 in ipv6: each family in batches of its own (an IPv6 value in ips fails the whole call)
    const queries: HostListQuery[] = [];
    for (const [family, key] of [[false, 'ips'], [true, 'ipv6']] as const) {
      const of = wanted.filter((ip) => ip.includes(':') === family);
      for (let i = 0; i < of.length; i += this.o.hostListBatchSize) queries.push({ [key]: of.slice(i, i + this.o.hostListBatchSize) });
    }
    for (const q of queries) {
      for (const h of await this.hostList(q)) {
        const ip = canonicalIp(h.ip) ?? h.ip;
        found.set(ip, latest(found.get(ip), latest(h.lastVmScanned, h.lastVulnScan)));
      }
    }
    return ips.map((ip) => {
      const at = found.get(canonicalIp(ip) ?? ip);
      return at ? { ip, lastScannedAt: at, via: 'vm-scan' } : { ip };
    });
  }

  /** Adds addresses to the subscription's VM host list (uses licence; only when configured). */
  async addToSubscription(ips: string[]): Promise<void> {
    await this.transport.call({
      endpoint: 'ipAdd', method: 'POST', idempotent: true, expect: ['SIMPLE_RETURN'],
      params: { action: 'add', ips: ips.join(','), enable_vm: '1', tracking_method: this.o.trackingMethod },
    });
    this.log.info({ count: ips.length, trackingMethod: this.o.trackingMethod }, 'qualys: added IPs to the subscription');
  }

  // ---- scheduled scans ------------------------------------------------------------------------

  /**
   * Makes onsight's scheduled scans (titles starting with `titlePrefix`) equal to `want`: one list
   * call, then one call per schedule created, updated or deleted (schedules.ts). Qualys launches
   * each run itself, titled like its schedule, at no API call.
   */
  async syncSchedules(want: RangeSchedule[], titlePrefix: string, exact = false): Promise<ScheduleStatus[]> {
    return syncSchedules({
      transport: this.transport, log: this.log, allowTarget: this.allowTarget, optionProfile: this.optionProfile,
      timeZoneCode: this.o.scheduleTimeZoneCode, now: this.now,
    }, want, titlePrefix, exact);
  }

  // ---- the option profile ------------------------------------------------------------------

  /**
   * The performance settings of the option profiles launches name: each title given (a region's
   * `optionProfile`), undefined for the client's own (`optionProfile`, by id or title). One call to
   * the VM option profile list, none when no profile is named at all. A profile not listed (a
   * title mistyped, one the API user may not see) is undefined: the scheduler then keeps its
   * configured hostsInParallel for it.
   */
  async scanProfiles(names: (string | undefined)[]): Promise<(ScanProfileFacts | undefined)[]> {
    const refs = names.map((n) => (n === undefined ? this.optionProfile : n));
    if (refs.every((r) => r === undefined)) return names.map(() => undefined);
    const r = await this.transport.call({ endpoint: 'optionProfile', method: 'GET', params: { action: 'list' }, idempotent: true, expect: ['OPTION_PROFILES'] });
    const profiles = parseOptionProfiles(r.doc);
    return refs.map((ref) => {
      if (ref === undefined) return undefined;
      const p = typeof ref === 'object' && 'id' in ref ? profiles.find((x) => x.id === String(ref.id)) : profiles.find((x) => x.title === (typeof ref === 'string' ? ref : ref.title));
      if (!p) return undefined;
      return { title: p.title, ...(p.hostsInParallel !== undefined ? { hostsInParallel: p.hostsInParallel } : {}), ...(p.parallelScaling !== undefined ? { parallelScaling: p.parallelScaling } : {}) };
    });
  }

  // ---- allowance and lifecycle ------------------------------------------------------------------

  /** What a failed call means to the scheduler (launched no/unknown; retry, wait until, stop). */
  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
    return qualysFailureOutcome(err, call);
  }

  /** The scan API's budget (launch and list share it), as last reported. */
  allowance(api: QualysApi = 'scan'): Allowance {
    return { ...this.gate.snapshot(api), maxConcurrentScans: this.maxConcurrentScans };
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, this.transport.signal);
    } catch {
      throw new ClientClosedError();
    }
  }
}

/** The refusal, naming which of our targets Qualys refused when its text says. */
function refusal(err: QualysNotInSubscriptionError, sent: string[]): QualysNotInSubscriptionError {
  const named = addressesNamed(err.qualysText ?? '', sent);
  const which = named.length ? `${named.length} of ${sent.length} target(s) (${named.slice(0, 10).join(', ')}${named.length > 10 ? ', ...' : ''})` : `the launch (its text names no target; ${sent.length} sent)`;
  return new QualysNotInSubscriptionError(`qualys scan launch: Qualys refused ${which} as not in the subscription's host list: ${err.message}`, {
    status: err.status, qualysCode: err.qualysCode, qualysText: err.qualysText, cause: err,
  }, named);
}

function latestDate(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() >= b.getTime() ? a : b;
}

function profileParams(p: OptionProfileRef | undefined): Record<string, string> {
  if (p === undefined) return {};
  if (typeof p === 'string') return { option_title: p };
  if ('id' in p) return { option_id: String(p.id) };
  return { option_title: p.title };
}

/** The title Qualys stores: always carries the intent id, never longer than Qualys allows. */
export function titleFor(title: string, intentId: string): string {
  const t = titleHasIntent(title, intentId) ? title : `${title} [${intentId}]`;
  if (t.length <= MAX_TITLE) return t;
  const suffix = ` [${intentId}]`;
  return `${title.slice(0, MAX_TITLE - suffix.length)}${suffix}`;
}
