/**
 * The Rapid7 InsightVM client (Security Console API v3) behind the Scanner seam: basic auth over
 * HTTPS (a `ca` for a self-signed console, never "ignore TLS"). A launch is an ad-hoc site scan,
 * `POST /api/3/sites/{id}/scans` with our title as `name` (it carries the intent id), the due hosts
 * as `hosts` and the appliance's engine or engine pool as `engineId`; a launch whose answer was lost
 * is looked for by the intent id in the scan list before anything is sent again.
 */
import { silentLogger, type Logger } from '../../log.js';
import { canonicalIp } from '../../util/ip.js';
import { dateTextOrUndefined } from '../../util/time.js';
import { cancelRefused } from '../failure.js';
import type {
  Allowance, ApplianceStatus, FailureOutcome, LastScanned, LaunchRequest, LaunchResult, ScanFilter, Scanner, ScannerCall, ScanStatus,
} from '../types.js';
import { httpFailureOutcome, JsonTransport, ScannerHttpError } from '../json-transport.js';
import { checkTargets, hasIntent, nameFor } from '../launch-checks.js';
import { mapStatus } from './status.js';
import type { SendGuard } from '../backend.js';

export interface Rapid7ClientOptions {
  /** cluster mode: only the leader sends */
  sendGuard?: SendGuard;
  /** the console, e.g. https://insightvm.example.com:3780 */
  baseUrl: string;
  username: string;
  password: string;
  /** PEM text of the CA for the console's certificate */
  ca?: string;
  siteId?: number;
  sites?: Record<string, number>;
  engines?: Record<string, number>;
  templateId?: string;
  maxTargetsPerScan?: number;
  engineStaleS?: number;
  assetBatchSize?: number;
  timeoutMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  reconcileDelayMs?: number;
  allowTarget?: (ip: string) => boolean;
  log?: Logger;
}

/** API v3 Scan (vm-console-client docs/Scan.md). */
interface R7Scan {
  id: number;
  scanName?: string;
  status?: string;
  startTime?: string;
  endTime?: string;
  engineId?: number;
  engineName?: string;
}

interface R7Engine {
  id: number;
  name: string;
  status?: string;
  lastRefreshedDate?: string;
  enginePools?: number[];
}

interface R7Pool {
  id: number;
  name: string;
  engines?: number[];
}

interface Page<T> {
  resources?: T[];
  page?: { number?: number; size?: number; totalPages?: number; totalResources?: number };
}

const PAGE = 500;
const MAX_PAGES = 50;

export class Rapid7Client implements Scanner {
  readonly kind = 'rapid7';
  /** addresses per asset-search call (lastScanned makes one per batch): the budget counts them so */
  get hostListBatchSize(): number {
    return this.o.assetBatchSize ?? 100;
  }
  private readonly t: JsonTransport;
  private readonly log: Logger;
  private readonly engineIds = new Map<string, number>();

  constructor(private readonly o: Rapid7ClientOptions) {
    this.log = (o.log ?? silentLogger()).child({ scanner: 'rapid7' });
    const base = new URL(o.baseUrl);
    this.t = new JsonTransport({
      vendor: 'rapid7', baseUrl: new URL('/api/3/', base.origin).href,
      headers: { Authorization: `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}` },
      ca: o.ca, timeoutMs: o.timeoutMs ?? 60_000, maxRetryAfterS: 30, maxAttempts: o.maxAttempts ?? 3, baseDelayMs: o.baseDelayMs ?? 500, log: this.log, sendGuard: o.sendGuard,
    });
  }

  // ---- launch -----------------------------------------------------------------------------

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    // (again right before the launch call itself: a wait on the way may outlast a reload that excluded one)
    const check = () => checkTargets(req.targets, this.o.allowTarget, this.o.maxTargetsPerScan ?? 50);
    const hosts = check();
    const name = nameFor(req.title, req.intentId);
    const site = this.o.sites?.[req.appliance] ?? this.o.siteId;
    if (site === undefined) throw new ScannerHttpError('ONSIGHT_SCANNER_REFUSED', `rapid7: no site for appliance ${req.appliance} (set scanner.siteId or scanner.sites)`, { next: 'stop' });
    const engineId = await this.engineFor(req.appliance);
    const since = new Date(Date.now() - 10 * 60_000);
    try {
      const r = await this.t.call<{ id?: number }>('POST', `sites/${site}/scans`, {
        idempotent: false, body: { name, hosts, engineId, ...(this.o.templateId ? { templateId: this.o.templateId } : {}) },
        beforeSend: () => void check(),
      });
      if (typeof r.id !== 'number') throw new ScannerHttpError('ONSIGHT_SCANNER', 'rapid7 scan launch: answer without an id', { next: 'retry', ambiguous: true });
      this.log.info({ intentId: req.intentId, scanRef: String(r.id), targets: hosts.length, appliance: req.appliance }, 'rapid7 scan launched');
      return { scanRef: String(r.id) };
    } catch (err) {
      if (!(err instanceof ScannerHttpError) || !err.o.ambiguous) throw err;
      this.log.warn({ intentId: req.intentId, err: { code: err.code, message: err.message } }, 'rapid7 launch outcome unknown; reconciling');
      await this.t.pause(this.o.reconcileDelayMs ?? 2000);
      let found: ScanStatus[];
      try {
        found = (await this.listScans({ launchedAfter: since })).filter((s) => hasIntent(s.title, req.intentId));
      } catch (e) {
        if (e instanceof ScannerHttpError && e.code === 'ONSIGHT_CLOSED') throw e;
        throw new ScannerHttpError('ONSIGHT_SCANNER', `rapid7 launch for intent ${req.intentId} failed ambiguously (${err.message}) and the scan list could not be read`, { next: 'retry', ambiguous: true, cause: e });
      }
      if (found.length === 0) throw err;
      return { scanRef: found.sort((a, b) => Number(a.scanRef) - Number(b.scanRef))[0].scanRef };
    }
  }

  /** The engine or pool id of an appliance: named in config, else found by name (engines first). */
  private async engineFor(appliance: string): Promise<number> {
    const named = this.o.engines?.[appliance] ?? this.engineIds.get(appliance);
    if (named !== undefined) return named;
    const engine = (await this.enginesList()).find((e) => e.name === appliance);
    const id = engine?.id ?? (await this.poolsList()).find((p) => p.name === appliance)?.id;
    if (id === undefined) throw new ScannerHttpError('ONSIGHT_SCANNER_REFUSED', `rapid7: no scan engine or engine pool named ${appliance} (or set scanner.engines)`, { next: 'stop' });
    this.engineIds.set(appliance, id);
    return id;
  }

  // ---- scans ------------------------------------------------------------------------------

  private toStatus(s: R7Scan): ScanStatus {
    return {
      scanRef: String(s.id), title: typeof s.scanName === 'string' ? s.scanName : '', state: mapStatus(s.status),
      appliance: typeof s.engineName === 'string' ? s.engineName : undefined,
      launchedAt: dateTextOrUndefined(s.startTime), endedAt: dateTextOrUndefined(s.endTime), processed: s.status === 'finished' ? true : undefined,
    };
  }

  /** A few refs: one GET each; otherwise the scan list, newest first, down to `launchedAfter`. */
  async listScans(filter: ScanFilter = {}): Promise<ScanStatus[]> {
    const refs = filter.scanRefs;
    if (refs && refs.length === 0) return [];
    let out: ScanStatus[] = [];
    if (refs && refs.length <= 10) {
      for (const ref of refs) {
        try {
          out.push(this.toStatus(await this.t.call<R7Scan>('GET', `scans/${encodeURIComponent(ref)}`, { idempotent: true })));
        } catch (err) {
          if (!(err instanceof ScannerHttpError) || err.status !== 404) throw err;
        }
      }
    } else {
      const after = filter.launchedAfter?.getTime();
      // running scans and past ones are two lists (`active`: "return running scans or past scans",
      // false when left out, as the API's generated clients document it): without `active=true` a
      // dispatched or running scan is in neither the lost-answer lookup nor a poll
      const seen = new Set<string>();
      for (const active of ['true', 'false']) {
        for (let page = 0; page < MAX_PAGES; page++) {
          const r = await this.t.call<Page<R7Scan>>('GET', 'scans', { idempotent: true, query: { active, page: String(page), size: String(PAGE), sort: 'id,DESC' } });
          const items = r.resources ?? [];
          for (const s of items) if (!seen.has(String(s.id))) {
            seen.add(String(s.id));
            out.push(this.toStatus(s));
          }
          const older = after !== undefined && items.some((s) => s.startTime && Date.parse(s.startTime) < after);
          if (older || items.length < PAGE || page + 1 >= (r.page?.totalPages ?? 0)) break;
        }
      }
      out.sort((a, b) => Number(b.scanRef) - Number(a.scanRef));
      if (refs) out = out.filter((s) => refs.includes(s.scanRef));
      if (after !== undefined) out = out.filter((s) => !s.launchedAt || Date.parse(s.launchedAt) >= after);
    }
    if (filter.states?.length) out = out.filter((s) => filter.states!.includes(s.state));
    return out;
  }

  /** Stops a scan (it must be running or paused); one already ended counts as stopped. */
  async cancel(scanRef: string): Promise<void> {
    if (!/^\d+$/.test(scanRef)) throw new ScannerHttpError('ONSIGHT_SCANNER', `not a Rapid7 scan id: ${scanRef}`, { next: 'retry' });
    try {
      await this.t.call('POST', `scans/${scanRef}/stop`, { idempotent: true });
      this.log.info({ scanRef }, 'rapid7 scan stop requested');
    } catch (err) {
      if (!(err instanceof ScannerHttpError) || (err.status !== 400 && err.status !== 409)) throw err;
      const [s] = await this.listScans({ scanRefs: [scanRef] });
      cancelRefused(scanRef, s?.state, err);
    }
  }

  // ---- engines and assets -------------------------------------------------------------------

  private async enginesList(): Promise<R7Engine[]> {
    return (await this.t.call<Page<R7Engine>>('GET', 'scan_engines', { idempotent: true })).resources ?? [];
  }

  private async poolsList(): Promise<R7Pool[]> {
    return (await this.t.call<Page<R7Pool>>('GET', 'scan_engine_pools', { idempotent: true })).resources ?? [];
  }

  /**
   * Engines (online: `status` `active` when the console gives one, else refreshed within
   * `engineStaleS`) and pools (online when a member is), each with the active scans on it.
   */
  async appliances(): Promise<ApplianceStatus[]> {
    const engines = await this.enginesList();
    const pools = await this.poolsList();
    const active = await this.t.call<Page<R7Scan>>('GET', 'scans', { idempotent: true, query: { active: 'true', page: '0', size: String(PAGE) } });
    const onEngine = new Map<number, string[]>();
    for (const s of active.resources ?? []) if (s.engineId !== undefined) onEngine.set(s.engineId, [...(onEngine.get(s.engineId) ?? []), String(s.id)]);
    const stale = (this.o.engineStaleS ?? 900) * 1000;
    const online = (e: R7Engine) => (e.status !== undefined ? e.status === 'active' : !!e.lastRefreshedDate && Date.now() - Date.parse(e.lastRefreshedDate) < stale);
    const out: ApplianceStatus[] = engines.map((e) => ({ name: e.name, online: online(e), runningScans: onEngine.get(e.id)?.length ?? 0, runningScanRefs: onEngine.get(e.id) ?? [] }));
    for (const p of pools) {
      const members = engines.filter((e) => p.engines?.includes(e.id));
      const refs = [p.id, ...members.map((m) => m.id)].flatMap((id) => onEngine.get(id) ?? []);
      out.push({ name: p.name, online: members.some(online), runningScans: refs.length, runningScanRefs: refs });
    }
    return out;
  }

  /** Asset search by address (`ip-address is`, OR-ed), batched; the latest SCAN in an asset's history. */
  async lastScanned(ips: string[]): Promise<LastScanned[]> {
    const wanted = [...new Set(ips.map((ip) => canonicalIp(ip) ?? ip))];
    const found = new Map<string, string>();
    const size = this.hostListBatchSize;
    for (let i = 0; i < wanted.length; i += size) {
      const batch = wanted.slice(i, i + size);
      const r = await this.t.call<Page<{ ip?: string; addresses?: { ip?: string }[]; history?: { type?: string; date?: string }[] }>>('POST', 'assets/search', {
        idempotent: true, query: { page: '0', size: String(PAGE) },
        body: { match: 'any', filters: batch.map((ip) => ({ field: 'ip-address', operator: 'is', value: ip })) },
      });
      for (const a of r.resources ?? []) {
        const last = (a.history ?? []).filter((h) => h.type === 'SCAN' && h.date && !Number.isNaN(Date.parse(h.date))).map((h) => Date.parse(h.date!)).sort((x, y) => x - y).pop();
        if (last === undefined) continue;
        for (const ip of new Set([a.ip, ...(a.addresses ?? []).map((x) => x.ip)])) {
          if (!ip || !batch.includes(ip)) continue;
          const prev = found.get(ip);
          if (!prev || last > Date.parse(prev)) found.set(ip, new Date(last).toISOString());
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
    return { waitSec: Math.max(0, Math.ceil((this.t.blockedUntil - Date.now()) / 1000)) };
  }

  failureOutcome(err: unknown, call: ScannerCall): FailureOutcome {
    return httpFailureOutcome(err, call);
  }

  async close(): Promise<void> {
    this.t.close();
  }
}
