/**
 * The Tenable Vulnerability Management client behind the Scanner seam.
 *
 * Launch: each appliance (a scanner or scanner group) has one scan definition (named in config, or
 * `onsight-master <appliance>`, created once from a template). A launch copies it under our title
 * (which carries the intent id) and launches the copy with the due hosts as `alt_targets`: a
 * definition runs one instance at a time, and the copy's name is what finds the launch again after
 * a crash. A copy or launch whose answer was lost is looked for by the intent id before anything
 * is sent again.
 */
import { OnsightError } from '../../errors.js';
import { checkTargets, hasIntent, nameFor } from '../launch-checks.js';
import { cancelRefused } from '../failure.js';
import { silentLogger, type Logger } from '../../log.js';
import { canonicalIp } from '../../util/ip.js';
import { isoOrUndefined } from '../../util/time.js';
import type {
  Allowance, ApplianceStatus, FailureOutcome, LastScanned, LaunchRequest, LaunchResult, ScanFilter, Scanner, ScannerCall, ScanStatus,
} from '../types.js';
import { JsonTransport, ScannerHttpError as TenableError } from '../json-transport.js';
import { tenableFailureOutcome } from './outcome.js';
import { mapStatus } from './status.js';
import type { SendGuard } from '../backend.js';

export const MASTER_PREFIX = 'onsight-master ';
/** unlaunched scan copies remembered for deletion at most (the oldest forgotten first) */
const MAX_UNLAUNCHED = 1000;
/**
 * Launches refused by a 429 in a row are held back at least this long, doubled each time up to
 * LAUNCH_HOLD_MAX_S: the active-scan limit's Retry-After (30 s in Tenable's example) is far shorter
 * than a scan, and each attempt costs a copy, a launch and a delete.
 */
const LAUNCH_HOLD_BASE_S = 30;
const LAUNCH_HOLD_MAX_S = 15 * 60;

export interface TenableClientOptions {
  baseUrl: string;
  /** cluster mode: only the leader sends */
  sendGuard?: SendGuard;
  /** the X-ApiKeys value */
  apiKeys: string;
  definitions?: Record<string, number | string>;
  template?: string;
  folderId?: number;
  maxTargetsPerScan?: number;
  maxConcurrentScans?: number;
  maxRetryAfterS?: number;
  assetBatchSize?: number;
  /** how far back (days) the workbench looks for assets (its `date_range`; default 90) */
  assetAgeDays?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  /** pause before looking for a copy or launch whose answer was lost (default 2000 ms) */
  reconcileDelayMs?: number;
  /** the appliances the regions name (groups among them are read with their members) */
  appliances?: string[];
  allowTarget?: (ip: string) => boolean;
  log?: Logger;
}

/** GET /scans item (fields per pyTenable and resmo's Tenable scan schema; see the emulator's SOURCES.md). */
interface TioScan {
  id: number;
  uuid?: string;
  name: string;
  status?: string;
  creation_date?: number;
  last_modification_date?: number;
}

interface TioScanner {
  id: number;
  uuid: string;
  name: string;
  status: string;
  scan_count?: number;
  pool?: boolean;
}

interface TioGroup {
  id: number;
  uuid: string;
  name: string;
}

interface TioAsset {
  ipv4?: string[];
  last_seen?: string;
  sources?: { name: string; first_seen?: string; last_seen?: string }[];
}

export class TenableClient implements Scanner {
  readonly kind = 'tenable';
  /** addresses per asset-list call (lastScanned makes one per batch): the budget counts them so */
  get hostListBatchSize(): number {
    return this.o.assetBatchSize ?? 50;
  }
  private readonly t: JsonTransport;
  private readonly log: Logger;
  private readonly masters = new Map<string, number>();
  /** scan copies whose launch was certainly refused, to delete (deleteUnlaunched) */
  private readonly unlaunched = new Set<number>();
  /** launches refused by a 429 since the last one taken (LAUNCH_HOLD_BASE_S), and when the last was */
  private launchRefusals = 0;
  private lastRefusalAt = 0;
  private readonly masterIds = new Set<number>();

  constructor(private readonly o: TenableClientOptions) {
    this.log = (o.log ?? silentLogger()).child({ scanner: 'tenable' });
    this.t = new JsonTransport({
      vendor: 'tenable', baseUrl: o.baseUrl, headers: { 'X-ApiKeys': o.apiKeys }, timeoutMs: o.timeoutMs ?? 60_000, maxRetryAfterS: o.maxRetryAfterS ?? 30,
      maxAttempts: o.maxAttempts ?? 3, baseDelayMs: o.baseDelayMs ?? 500, log: this.log, sendGuard: o.sendGuard,
    });
  }

  // ---- launch -----------------------------------------------------------------------------

  /**
   * Copies whose launch was certainly refused, deleted as soon as a call may be made. One that
   * cannot be deleted does not hold back the others; a hold on every call (a 429) ends the round.
   * At most MAX_UNLAUNCHED are remembered (a DELETE refused for good, say a permission the API user lacks).
   */
  private async deleteUnlaunched(): Promise<void> {
    for (const id of [...this.unlaunched]) {
      try {
        await this.t.call('DELETE', `/scans/${id}`, { idempotent: true });
        this.unlaunched.delete(id);
      } catch (e) {
        if (e instanceof TenableError && e.status === 404) this.unlaunched.delete(id);
        else {
          this.log.info({ scan: id, err: { message: (e as Error).message } }, 'tenable: an unlaunched scan copy is deleted later');
          if (e instanceof TenableError && e.code === 'ONSIGHT_SCANNER_RATE_LIMIT') return;
        }
      }
    }
    while (this.unlaunched.size > MAX_UNLAUNCHED) this.unlaunched.delete(this.unlaunched.values().next().value as number);
  }

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    const check = () => checkTargets(req.targets, this.o.allowTarget, this.o.maxTargetsPerScan ?? 50);
    const targets = check();
    await this.deleteUnlaunched();
    const title = nameFor(req.title, req.intentId);
    const master = await this.masterFor(req.appliance);
    let copy: TioScan;
    try {
      copy = await this.t.call<TioScan>('POST', `/scans/${master}/copy`, { body: { name: title, ...(this.o.folderId ? { folder_id: this.o.folderId } : {}) }, idempotent: false });
    } catch (err) {
      // (the definition deleted or recreated since it was found: found again at the next launch, not cached for ever)
      if (err instanceof TenableError && err.status === 404) this.forgetMaster(req.appliance, master);
      const found = await this.afterLoss(err, req.intentId);
      copy = found;
    }
    if (typeof copy?.id !== 'number') throw new TenableError('ONSIGHT_SCANNER', 'tenable scan copy: answer without an id', { next: 'retry', ambiguous: true });
    this.ensureOurs(copy, req.intentId);
    if (copy.status && copy.status !== 'empty') {
      this.launchRefusals = 0;
      return { scanRef: String(copy.id) }; // found already launched
    }
    try {
      await this.t.call<{ scan_uuid?: string }>('POST', `/scans/${copy.id}/launch`, {
        body: { alt_targets: targets }, idempotent: false, ownLimit: true,
        // (the copy and its lookups may have waited: a reload meanwhile may have excluded a target)
        beforeSend: () => void check(),
      });
    } catch (err) {
      if (!(err instanceof TenableError) || !err.o.ambiguous) {
        // certainly not launched (a 429 at the active-scan limit, a 400): the copy is deleted, now or
        // before a later launch (a DELETE may meet the rate limit), as the next attempt is another
        // intent's and makes its own copy; they piled up, and every scan list grew with them
        // (not waited for: the refusal is the scheduler's to act on now; the transport's retries of a DELETE can take minutes)
        this.unlaunched.add(copy.id);
        void this.deleteUnlaunched();
        throw err instanceof TenableError && err.o.holdsCall ? this.launchRefused(err) : err;
      }
      const again = await this.afterLoss(err, req.intentId);
      if (again.status === 'empty') {
        // the launch did not reach Tenable: the copy waits for the next attempt (found by its name)
        throw new TenableError('ONSIGHT_SCANNER', `tenable launch of scan ${copy.id} not taken (${err.message})`, { next: 'retry', ambiguous: true, cause: err });
      }
    }
    this.launchRefusals = 0;
    this.log.info({ intentId: req.intentId, scanRef: String(copy.id), targets: targets.length, appliance: req.appliance }, 'tenable scan launched');
    return { scanRef: String(copy.id) };
  }

  /**
   * A launch refused by a 429 (the active-scan limit, most likely; one on any other call is the rate
   * limit, waited out in place when short, else every call waits): launches are held back for its
   * Retry-After or the back-off, whichever is longer, while polls, cancels and reads go on. A refusal
   * long after the last one (twice the longest hold: no launch tried meanwhile) starts the back-off again.
   */
  private launchRefused(err: InstanceType<typeof TenableError>): InstanceType<typeof TenableError> {
    const now = Date.now();
    if (now - this.lastRefusalAt > 2 * LAUNCH_HOLD_MAX_S * 1000) this.launchRefusals = 0;
    this.lastRefusalAt = now;
    this.launchRefusals++;
    const sec = Math.max(err.o.retryAfterSec ?? 0, Math.min(LAUNCH_HOLD_MAX_S, LAUNCH_HOLD_BASE_S * 2 ** (this.launchRefusals - 1)));
    return new TenableError(err.code, `${err.message}; launches held ${sec} s (${this.launchRefusals} refused in a row)`, { ...err.o, retryAfterSec: sec, cause: err });
  }

  /** A copy or launch whose answer was lost: is there a scan named with the intent id? */
  private async afterLoss(err: unknown, intentId: string): Promise<TioScan> {
    if (!(err instanceof TenableError) || !err.o.ambiguous) throw err;
    this.log.warn({ intentId, err: { code: err.code, message: err.message } }, 'tenable launch outcome unknown; reconciling');
    await this.t.pause(this.o.reconcileDelayMs ?? 2000);
    let list: TioScan[];
    try {
      list = await this.scanList();
    } catch (e) {
      if (e instanceof TenableError && e.code === 'ONSIGHT_CLOSED') throw e;
      throw new TenableError('ONSIGHT_SCANNER', `tenable launch for intent ${intentId} failed ambiguously (${err.message}) and the scan list could not be read`, { next: 'retry', ambiguous: true, cause: e });
    }
    const found = list.filter((s) => hasIntent(s.name, intentId)).sort((a, b) => a.id - b.id);
    if (found.length === 0) throw err;
    if (found.length > 1) this.log.error({ intentId, scans: found.map((s) => s.id) }, 'more than one Tenable scan carries this intent id');
    return found[0];
  }

  private ensureOurs(s: TioScan, intentId: string): void {
    if (!hasIntent(s.name, intentId)) throw new TenableError('ONSIGHT_SCANNER', `tenable scan copy ${s.id} is named "${s.name}", not with intent ${intentId}`, { next: 'retry', ambiguous: true });
  }

  private forgetMaster(appliance: string, id: number): void {
    this.masters.delete(appliance);
    this.masterIds.delete(id);
  }

  /** The appliance's scan definition id: named in config, found by name, or created from the template. */
  async masterFor(appliance: string): Promise<number> {
    const cached = this.masters.get(appliance);
    if (cached !== undefined) return cached;
    const named = this.o.definitions?.[appliance];
    const list = await this.scanList();
    let id: number | undefined;
    if (typeof named === 'number') id = list.find((s) => s.id === named)?.id;
    else id = list.find((s) => s.name === (named ?? `${MASTER_PREFIX}${appliance}`))?.id;
    if (id === undefined && named === undefined && this.o.template) id = await this.createMaster(appliance);
    if (id === undefined) {
      throw new TenableError('ONSIGHT_SCANNER_REFUSED', `tenable: no scan definition for appliance ${appliance} (${named !== undefined ? `scanner.definitions names ${JSON.stringify(named)}, which does not exist` : `none named "${MASTER_PREFIX}${appliance}" and no scanner.template to create it`})`, { next: 'stop' });
    }
    this.masters.set(appliance, id);
    this.masterIds.add(id);
    return id;
  }

  private async createMaster(appliance: string): Promise<number> {
    const tpl = await this.t.call<{ templates?: { uuid: string; name: string; title: string }[] }>('GET', '/editor/scan/templates', { idempotent: true });
    const want = this.o.template!.toLowerCase();
    const template = tpl.templates?.find((x) => x.title.toLowerCase() === want || x.name.toLowerCase() === want);
    if (!template) throw new TenableError('ONSIGHT_SCANNER_REFUSED', `tenable: no scan template "${this.o.template}"`, { next: 'stop' });
    const scannerUuid = await this.applianceUuid(appliance);
    const r = await this.t.call<{ scan?: TioScan }>('POST', '/scans', {
      idempotent: false,
      // no targets of its own: every launch gives alt_targets
      body: { uuid: template.uuid, settings: { name: `${MASTER_PREFIX}${appliance}`, scanner_id: scannerUuid, text_targets: '', enabled: false } },
    });
    if (typeof r.scan?.id !== 'number') throw new TenableError('ONSIGHT_SCANNER', 'tenable: scan creation answered without an id', { next: 'retry' });
    this.log.info({ appliance, scanId: r.scan.id, template: template.title }, 'tenable: created the scan definition for an appliance');
    return r.scan.id;
  }

  private async applianceUuid(appliance: string): Promise<string> {
    const s = (await this.scanners()).find((x) => x.name === appliance);
    if (s) return s.uuid;
    const g = (await this.groups()).find((x) => x.name === appliance);
    if (g) return g.uuid;
    throw new TenableError('ONSIGHT_SCANNER_REFUSED', `tenable: no scanner or scanner group named ${appliance}`, { next: 'stop' });
  }

  // ---- scans ------------------------------------------------------------------------------

  private async scanList(modifiedSince?: Date): Promise<TioScan[]> {
    const r = await this.t.call<{ scans?: TioScan[] | null }>('GET', '/scans', {
      idempotent: true, query: { last_modification_date: modifiedSince ? String(Math.floor(modifiedSince.getTime() / 1000)) : undefined },
    });
    if (r.scans !== null && r.scans !== undefined && !Array.isArray(r.scans)) throw new TenableError('ONSIGHT_SCANNER', 'tenable GET /scans: `scans` is not a list', { next: 'retry' });
    return (r.scans ?? []).filter((s) => typeof s?.id === 'number' && typeof s.name === 'string');
  }

  /** One GET /scans answers for any number of scans (our copies are scans of their own). */
  async listScans(filter: ScanFilter = {}): Promise<ScanStatus[]> {
    if (filter.scanRefs && filter.scanRefs.length === 0) return [];
    const list = await this.scanList(filter.scanRefs ? undefined : filter.launchedAfter);
    // a copy never launched (`empty`: the daemon died between copy and launch) is no scan: the
    // scheduler's reconciliation then treats the intent as not launched once its grace period ends
    let out = list.filter((s) => !this.masterIds.has(s.id) && !s.name.startsWith(MASTER_PREFIX) && s.status !== 'empty').map((s): ScanStatus => ({
      scanRef: String(s.id), title: s.name, state: mapStatus(s.status),
      // (a date no Date holds, or no number, in any scan of the account threw here and stopped every poll)
      launchedAt: typeof s.creation_date === 'number' && s.creation_date > 0 ? isoOrUndefined(s.creation_date * 1000) : undefined,
      processed: s.status === 'completed' ? true : undefined,
    }));
    if (filter.scanRefs) out = out.filter((s) => filter.scanRefs!.includes(s.scanRef));
    if (filter.launchedAfter) out = out.filter((s) => !s.launchedAt || Date.parse(s.launchedAt) >= filter.launchedAfter!.getTime());
    if (filter.states?.length) out = out.filter((s) => filter.states!.includes(s.state));
    return out;
  }

  /** Stops a scan; one that has already ended counts as stopped. */
  async cancel(scanRef: string): Promise<void> {
    if (!/^\d+$/.test(scanRef)) throw new OnsightError('ONSIGHT_SCANNER', `not a Tenable scan id: ${scanRef}`);
    try {
      await this.t.call('POST', `/scans/${scanRef}/stop`, { idempotent: true, body: {} });
      this.log.info({ scanRef }, 'tenable scan stop requested');
    } catch (err) {
      if (!(err instanceof TenableError) || err.status !== 409) throw err;
      const [s] = await this.listScans({ scanRefs: [scanRef] });
      cancelRefused(scanRef, s?.state, err);
    }
  }

  // ---- appliances and assets ----------------------------------------------------------------

  private async scanners(): Promise<TioScanner[]> {
    const r = await this.t.call<{ scanners?: TioScanner[] }>('GET', '/scanners', { idempotent: true });
    return (r.scanners ?? []).filter((s) => typeof s?.name === 'string');
  }

  private async groups(): Promise<TioGroup[]> {
    const r = await this.t.call<{ scanner_pools?: TioGroup[] }>('GET', '/scanner-groups', { idempotent: true });
    return (r.scanner_pools ?? []).filter((g) => typeof g?.name === 'string');
  }

  /**
   * Scanners (online when `status` is `on`; `scan_count` running on each) and, for each group a
   * region names, the group: online when a member is, its load the sum of its members' (Tenable
   * routes a group's scan to its member with the fewest active scans).
   */
  async appliances(): Promise<ApplianceStatus[]> {
    const scanners = await this.scanners();
    const out: ApplianceStatus[] = scanners.map((s) => ({ name: s.name, online: s.status === 'on', runningScans: s.scan_count ?? 0 }));
    const wanted = (this.o.appliances ?? []).filter((a) => !scanners.some((s) => s.name === a));
    if (wanted.length === 0) return out;
    for (const g of (await this.groups()).filter((x) => wanted.includes(x.name))) {
      const r = await this.t.call<{ scanners?: TioScanner[] }>('GET', `/scanner-groups/${g.id}/scanners`, { idempotent: true });
      const members = r.scanners ?? [];
      const byName = new Map(scanners.map((s) => [s.name, s]));
      const live = members.map((m) => byName.get(m.name) ?? m);
      out.push({ name: g.name, online: live.some((m) => m.status === 'on'), runningScans: live.reduce((n, m) => n + (m.scan_count ?? 0), 0) });
    }
    return out;
  }

  /**
   * Last scan dates from the workbench's asset list, filtered by address (ipv4 eq, OR-ed), in
   * batches: the latest `last_seen` of a NESSUS_SCAN source is the last network scan.
   */
  async lastScanned(ips: string[]): Promise<LastScanned[]> {
    const wanted = [...new Set(ips.map((ip) => canonicalIp(ip) ?? ip))].filter((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip));
    const found = new Map<string, string>();
    const size = this.hostListBatchSize;
    for (let i = 0; i < wanted.length; i += size) {
      const batch = wanted.slice(i, i + size);
      const query: Record<string, string> = { 'filter.search_type': 'or', date_range: String(this.o.assetAgeDays ?? 90) };
      batch.forEach((ip, n) => {
        query[`filter.${n}.filter`] = 'ipv4';
        query[`filter.${n}.quality`] = 'eq';
        query[`filter.${n}.value`] = ip;
      });
      const r = await this.t.call<{ assets?: TioAsset[] }>('GET', '/workbenches/assets', { idempotent: true, query });
      for (const a of r.assets ?? []) {
        const seen = (a.sources ?? []).filter((s) => s.name === 'NESSUS_SCAN' && s.last_seen).map((s) => s.last_seen!).sort().pop();
        if (!seen || Number.isNaN(Date.parse(seen))) continue;
        for (const ip of a.ipv4 ?? []) {
          if (!batch.includes(ip)) continue;
          const prev = found.get(ip);
          if (!prev || Date.parse(seen) > Date.parse(prev)) found.set(ip, new Date(seen).toISOString());
        }
      }
    }
    return ips.map((ip) => {
      const at = found.get(canonicalIp(ip) ?? ip);
      return at ? { ip, lastScannedAt: at, via: 'vm-scan' } : { ip };
    });
  }

  // ---- allowance and lifecycle --------------------------------------------------------------

  allowance(): Allowance {
    return { waitSec: Math.max(0, Math.ceil((this.t.blockedUntil - Date.now()) / 1000)), maxConcurrentScans: this.o.maxConcurrentScans ?? 25 };
  }

  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
    return tenableFailureOutcome(err, call);
  }

  async close(): Promise<void> {
    this.t.close();
  }
}
