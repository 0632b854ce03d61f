/**
 * A real HTTP server speaking the part of Tenable Vulnerability Management's REST API onsight uses
 * (SOURCES.md says where each shape comes from and what is a guess): X-ApiKeys auth, JSON, 429 with
 * Retry-After for the per-minute rate limit and the container's active-scan limit, and faults on
 * demand (5xx, slow answers, sockets dropped before or after the call ran, malformed JSON, scanners
 * going offline) drawn from a seeded generator so that runs replay.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../log.js';
import { scanClock } from '../qualys/clock.js';
import { seededRng } from '../qualys/rng.js';
import { listen, restHandler, type RestAnswer, type RestRequestRecord } from '../rest-server.js';
import { drawRestFault, type RestFault, type RestFaults } from '../rest-faults.js';
import { TEMPLATES, TenableModel, type EmScan, type ScanTiming } from './model.js';

export type TenableFault = RestFault;

export interface TenableFaults extends RestFaults {
  /** scanners that go offline this many seconds (real time) after start */
  scannerOffline?: { name: string; atSec: number }[];
}

export interface TenableEmulatorOptions {
  port?: number;
  host?: string;
  seed?: number;
  /** scan clock speed (60: a minute of scanning per real second) */
  speed?: number;
  accessKey?: string;
  secretKey?: string;
  scanners?: { name: string; online?: boolean }[];
  groups?: { name: string; members: string[] }[];
  /** scan definitions that exist at start, e.g. [{ name: 'onsight-master emea-1', scanner: 'emea-1' }] */
  definitions?: { name: string; scanner: string }[];
  /** addresses with a last network scan date at start */
  assets?: { ip: string; lastScannedAt: string }[];
  scanTiming?: Partial<ScanTiming>;
  /** active scans per container before launches get 429 (Tenable: 25) */
  maxActiveScans?: number;
  /** calls per API key per real minute before 429 (Tenable computes it from load; default unlimited) */
  ratePerMinute?: number;
  /** the rate limit's window in seconds (default 60: ratePerMinute calls per minute; shorter in tests) */
  rateWindowSec?: number;
  /** Retry-After of the active-scan limit's 429 (default 30, Tenable's example) */
  retryAfterSec?: number;
  faults?: TenableFaults;
  log?: Logger;
}

export type TenableRequestRecord = RestRequestRecord<TenableFault>;

export interface TenableEmulator {
  url: string;
  port: number;
  accessKey: string;
  secretKey: string;
  /** the X-ApiKeys value it accepts */
  apiKeys: string;
  model: TenableModel;
  requests: TenableRequestRecord[];
  faults: Partial<Record<TenableFault, number>>;
  close(): Promise<void>;
}

type Answer = RestAnswer;

/** [method, path pattern, route name] */
const ROUTES: [string, RegExp, string][] = [
  ['GET', /^\/scans$/, 'scans.list'],
  ['POST', /^\/scans$/, 'scans.create'],
  ['GET', /^\/scans\/count$/, 'scans.count'],
  ['POST', /^\/scans\/(\d+)\/copy$/, 'scans.copy'],
  ['POST', /^\/scans\/(\d+)\/launch$/, 'scans.launch'],
  ['POST', /^\/scans\/(\d+)\/stop$/, 'scans.stop'],
  ['DELETE', /^\/scans\/(\d+)$/, 'scans.delete'],
  ['GET', /^\/scans\/(\d+)\/latest-status$/, 'scans.latest-status'],
  ['GET', /^\/scans\/(\d+)\/history$/, 'scans.history'],
  ['GET', /^\/scanners$/, 'scanners.list'],
  ['GET', /^\/scanner-groups$/, 'scanner-groups.list'],
  ['GET', /^\/scanner-groups\/(\d+)\/scanners$/, 'scanner-groups.scanners'],
  ['GET', /^\/editor\/scan\/templates$/, 'editor.templates'],
  ['GET', /^\/workbenches\/assets$/, 'workbenches.assets'],
];

export async function startTenableEmulator(o: TenableEmulatorOptions = {}): Promise<TenableEmulator> {
  const accessKey = o.accessKey ?? randomBytes(32).toString('hex');
  const secretKey = o.secretKey ?? randomBytes(32).toString('hex');
  const started = Date.now();
  const model = new TenableModel(scanClock({ speed: o.speed ?? 1 }), { pickupSec: o.scanTiming?.pickupSec ?? 2, hostSec: o.scanTiming?.hostSec ?? 5 });
  for (const s of o.scanners ?? [{ name: 'scanner-1' }]) {
    const off = o.faults?.scannerOffline?.find((x) => x.name === s.name);
    model.addScanner(s.name, s.online ?? true, off ? started + off.atSec * 1000 : undefined);
  }
  for (const g of o.groups ?? []) model.addGroup(g.name, g.members);
  for (const d of o.definitions ?? []) {
    const target = model.scanner(d.scanner)?.uuid ?? model.groups.find((g) => g.name === d.scanner)?.uuid;
    if (!target) throw new TypeError(`emulator definition ${d.name}: no scanner or group ${d.scanner}`);
    model.createScan(d.name, target, TEMPLATES[0].uuid, '');
  }
  for (const a of o.assets ?? []) model.assets.set(a.ip, Date.parse(a.lastScannedAt));
  const f = o.faults ?? {};
  const rng = seededRng((o.seed ?? 1) ^ 0x7e4ab1e);
  const requests: TenableRequestRecord[] = [];
  const faults: Partial<Record<TenableFault, number>> = {};
  const calls: number[] = [];
  const expected = Buffer.from(`accessKey=${accessKey}; secretKey=${secretKey}`);

  function authorized(req: IncomingMessage): boolean {
    const h = req.headers['x-apikeys'];
    if (typeof h !== 'string') return false;
    // Tenable documents `accessKey=…; secretKey=…`; accept any spacing around the separator
    const norm = Buffer.from(h.trim().replace(/\s*;\s*/, '; '));
    return norm.length === expected.length && timingSafeEqual(norm, expected);
  }

  const server: Server = createServer(restHandler<TenableFault>({
    routes: ROUTES,
    error: (kind, method, path) => ({
      'too-large': err(413, 'Payload Too Large', 'request body too large'),
      'bad-json': err(400, 'Bad Request', 'Invalid JSON'),
      unauthorized: err(401, 'Unauthorized', 'Invalid Credentials'),
      'not-found': err(404, 'Not Found', `No route for ${method} ${path}`),
      'server-500': err(500, 'Internal Server Error', 'An internal server error occurred'),
      'server-503': err(503, 'Service Unavailable', 'Service Unavailable'),
      internal: err(500, 'Internal Server Error', 'An internal server error occurred'),
    })[kind],
    authorized,
    // the per-minute rate limit counts every authenticated call
    admit: () => {
      const nowReal = Date.now();
      const windowMs = (o.rateWindowSec ?? 60) * 1000;
      while (calls.length && calls[0] <= nowReal - windowMs) calls.shift();
      if (o.ratePerMinute !== undefined && calls.length >= o.ratePerMinute) {
        const wait = Math.max(1, Math.ceil((calls[0] + windowMs - nowReal) / 1000));
        return { status: 429, body: '<html><body>Too Many Requests</body></html>', headers: { 'retry-after': String(wait), 'content-type': 'text/html' } };
      }
      calls.push(nowReal);
      return undefined;
    },
    drawFault: (name) => drawRestFault(f, rng, name),
    slowMs: f.slowMs ?? 2000,
    answer: route,
    malformed: '{"scans": [{"id": 1, "name": "',
    send,
    onHandlerError: (e) => o.log?.warn({ err: (e as Error).message }, 'tenable emulator: handler failed'),
  }, requests, faults));

  function scanById(id: string): EmScan | undefined {
    return model.scans.find((s) => s.id === Number(id));
  }

  function scanJson(s: EmScan) {
    return {
      id: s.id, uuid: s.uuid, name: s.name, type: 'remote', owner: 'onsight@example.com', enabled: false, folder_id: s.folderId ?? 1, read: false,
      status: model.status(s), shared: false, user_permissions: 128, creation_date: Math.floor(s.createdAt / 1000),
      last_modification_date: Math.floor(s.modifiedAt / 1000), control: true, starttime: null, timezone: null, rrules: null,
      schedule_uuid: `template-${s.uuid}`, wizard_uuid: s.templateUuid,
    };
  }

  function scannerJson(s: (typeof model.scanners)[number]) {
    const pool = model.groups.some((g) => g.members.includes(s.name));
    return {
      id: s.id, uuid: s.uuid, name: s.name, type: 'managed', status: model.isOnline(s) ? 'on' : 'off', scan_count: model.load(s.name),
      pool, linked: 1, engine_version: '10.8.1', platform: 'LINUX', distro: 'es8-x86-64', loaded_plugin_set: '202612010312',
      owner: 'system', owner_name: 'system', shared: 1, user_permissions: 64, timestamp: Math.floor(Date.now() / 1000), last_connect: Math.floor(Date.now() / 1000),
    };
  }

  function route(name: string, m: RegExpExecArray, body: Record<string, unknown>, q: URLSearchParams): Answer {
    switch (name) {
      case 'scans.list': {
        const since = Number(q.get('last_modification_date') ?? 0);
        model.advance();
        const scans = model.scans.filter((s) => !since || s.modifiedAt / 1000 >= since).map(scanJson);
        return { status: 200, body: { folders: [{ id: 1, name: 'My Scans', type: 'main', default_tag: 1, unread_count: 0 }], scans, timestamp: Math.floor(Date.now() / 1000) } };
      }
      case 'scans.count':
        return { status: 200, body: { count: model.activeRuns().length } };
      case 'scans.create': {
        const settings = (body.settings ?? {}) as Record<string, unknown>;
        const tpl = TEMPLATES.find((t) => t.uuid === body.uuid);
        if (!tpl) return err(400, 'Bad Request', 'Invalid template uuid');
        if (typeof settings.name !== 'string' || !settings.name) return err(400, 'Bad Request', 'settings.name is required');
        const target = String(settings.scanner_id ?? '');
        if (!model.scanners.some((s) => s.uuid === target) && !model.groups.some((g) => g.uuid === target)) return err(400, 'Bad Request', 'Invalid scanner_id');
        const s = model.createScan(settings.name, target, tpl.uuid, String(settings.text_targets ?? ''), typeof settings.folder_id === 'number' ? settings.folder_id : undefined);
        return { status: 200, body: { scan: scanJson(s) } };
      }
      case 'scans.copy': {
        const src = scanById(m[1]);
        if (!src) return err(404, 'Not Found', 'Scan not found');
        const copy = model.copy(src, typeof body.name === 'string' && body.name ? body.name : `Copy of ${src.name}`, typeof body.folder_id === 'number' ? body.folder_id : undefined);
        return { status: 200, body: scanJson(copy) };
      }
      case 'scans.launch': {
        const s = scanById(m[1]);
        if (!s) return err(404, 'Not Found', 'Scan not found');
        const status = model.status(s);
        if (['pending', 'running'].includes(status)) return err(409, 'Conflict', 'Scan is already running');
        if (model.activeRuns().length >= (o.maxActiveScans ?? 25)) {
          return { status: 429, body: err(429, 'Too Many Requests', 'Concurrent active scan limit reached').body, headers: { 'retry-after': String(o.retryAfterSec ?? 30) } };
        }
        const alt = body.alt_targets;
        const targets = Array.isArray(alt) ? alt.map(String) : s.textTargets.split(',').map((x) => x.trim()).filter(Boolean);
        if (targets.length === 0) return err(400, 'Bad Request', 'No targets');
        const run = model.launch(s, targets);
        return { status: 200, body: { scan_uuid: run.uuid } };
      }
      case 'scans.stop': {
        const s = scanById(m[1]);
        if (!s) return err(404, 'Not Found', 'Scan not found');
        if (!model.stop(s)) return err(409, 'Conflict', 'Scan is not active');
        return { status: 200, body: {} };
      }
      case 'scans.delete': {
        // (a scan running, pending or stopping cannot be deleted: 409)
        const s = scanById(m[1]);
        if (!s) return err(404, 'Not Found', 'Scan not found');
        if (['pending', 'running', 'stopping', 'paused'].includes(model.status(s))) return err(409, 'Conflict', 'Scan is active');
        model.scans.splice(model.scans.indexOf(s), 1);
        return { status: 200, body: {} };
      }
      case 'scans.latest-status': {
        const s = scanById(m[1]);
        return s ? { status: 200, body: { status: model.status(s) } } : err(404, 'Not Found', 'Scan not found');
      }
      case 'scans.history': {
        const s = scanById(m[1]);
        if (!s) return err(404, 'Not Found', 'Scan not found');
        const history = s.runs.map((r, i) => ({
          id: i + 1, scan_uuid: r.uuid, status: r.stopped ? 'canceled' : r.endedAt !== undefined ? 'completed' : r.startedAt !== undefined ? 'running' : 'pending',
          time_start: Math.floor(r.launchedAt / 1000), time_end: r.endedAt !== undefined ? Math.floor(r.endedAt / 1000) : null,
          is_archived: false, visibility: 'public', targets: { custom: true, default: null },
        })).reverse();
        return { status: 200, body: { pagination: { offset: 0, total: history.length, sort: [{ name: 'start_date', order: 'DESC' }], limit: 50 }, history } };
      }
      case 'scanners.list':
        model.advance();
        return { status: 200, body: { scanners: model.scanners.map(scannerJson) } };
      case 'scanner-groups.list':
        return { status: 200, body: { scanner_pools: model.groups.map((g) => ({ id: g.id, uuid: g.uuid, name: g.name, type: 'load_balancing', scanner_count: g.members.length, owner: 'system', default_permissions: 16 })) } };
      case 'scanner-groups.scanners': {
        const g = model.groups.find((x) => x.id === Number(m[1]));
        if (!g) return err(404, 'Not Found', 'Scanner group not found');
        model.advance();
        return { status: 200, body: { scanners: model.scanners.filter((s) => g.members.includes(s.name)).map(scannerJson) } };
      }
      case 'editor.templates':
        return { status: 200, body: { templates: TEMPLATES.map((t) => ({ ...t, desc: t.title, cloud_only: false, subscription_only: false, is_agent: null, more_info: null, unsupported: false })) } };
      case 'workbenches.assets': {
        model.advance();
        const ips: string[] = [];
        for (let i = 0; q.has(`filter.${i}.filter`); i++) {
          if (q.get(`filter.${i}.filter`) === 'ipv4' && q.get(`filter.${i}.quality`) === 'eq') ips.push(q.get(`filter.${i}.value`) ?? '');
        }
        if (ips.length === 0) return err(400, 'Bad Request', 'this emulator answers ipv4 eq filters only');
        const assets = ips.filter((ip) => model.assets.has(ip)).map((ip) => {
          const at = new Date(model.assets.get(ip)!).toISOString();
          return {
            id: uuidFor(ip), has_agent: false, last_seen: at, last_scan_target: ip, ipv4: [ip], ipv6: [], fqdn: [], netbios_name: [], operating_system: [],
            sources: [{ name: 'NESSUS_SCAN', first_seen: at, last_seen: at }],
          };
        });
        return { status: 200, body: { assets, total: assets.length } };
      }
    }
    return err(404, 'Not Found', 'No route');
  }

  const at = await listen(server, o.port ?? 0, o.host ?? '127.0.0.1');
  return {
    url: `http://${at.address}:${at.port}`, port: at.port, accessKey, secretKey, apiKeys: `accessKey=${accessKey}; secretKey=${secretKey}`,
    model, requests, faults, close: at.close,
  };
}

/** Tenable's JSON error body (statusCode / error / message). */
function err(status: number, error: string, message: string): Answer {
  return { status, body: { statusCode: status, error, message } };
}

function send(res: ServerResponse, a: Answer): void {
  const text = typeof a.body === 'string' ? a.body : JSON.stringify(a.body ?? {});
  res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8', server: 'tenable.io', ...a.headers });
  res.end(text);
}

/** A stable asset uuid for an address. */
function uuidFor(ip: string): string {
  const h = Buffer.from(ip.padEnd(16, '.')).subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
