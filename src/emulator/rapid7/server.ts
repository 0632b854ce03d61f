/**
 * A real HTTPS (or HTTP) server speaking the part of the InsightVM Security Console API v3 onsight
 * uses (SOURCES.md says where each shape comes from and what is a guess): basic auth, JSON with
 * `resources` and `page`, ad-hoc site scans, scan status changes, engines and pools, asset search;
 * and faults on demand (5xx, slow answers, dropped sockets, malformed JSON, engines going down).
 */
import { createServer as createHttp, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../log.js';
import { scanClock } from '../qualys/clock.js';
import { seededRng } from '../qualys/rng.js';
import { listen, restHandler, type RestAnswer, type RestRequestRecord } from '../rest-server.js';
import { drawRestFault, type RestFault, type RestFaults } from '../rest-faults.js';
import { Rapid7Model, type R7EmScan, type R7Timing } from './model.js';

export interface Rapid7Faults extends RestFaults {
  /** engines that go down this many seconds (real time) after start */
  engineDown?: { name: string; atSec: number }[];
}

export interface Rapid7EmulatorOptions {
  port?: number;
  host?: string;
  seed?: number;
  speed?: number;
  username?: string;
  password?: string;
  /** serve HTTPS with this certificate and key (PEM); plain HTTP without */
  tls?: { cert: string; key: string };
  engines?: { name: string; up?: boolean }[];
  pools?: { name: string; engines: string[] }[];
  sites?: { id: number; name: string }[];
  /** addresses scanned before start */
  assets?: { ip: string; lastScannedAt: string }[];
  scanTiming?: Partial<R7Timing>;
  faults?: Rapid7Faults;
  log?: Logger;
}

export type Rapid7RequestRecord = RestRequestRecord<RestFault>;

export interface Rapid7Emulator {
  url: string;
  port: number;
  username: string;
  password: string;
  model: Rapid7Model;
  requests: Rapid7RequestRecord[];
  faults: Partial<Record<RestFault, number>>;
  close(): Promise<void>;
}

type Answer = RestAnswer;

const ROUTES: [string, RegExp, string][] = [
  ['GET', /^\/api\/3\/scans$/, 'scans.list'],
  ['GET', /^\/api\/3\/scans\/(\d+)$/, 'scans.get'],
  ['POST', /^\/api\/3\/scans\/(\d+)\/(pause|stop|resume)$/, 'scans.status'],
  ['POST', /^\/api\/3\/sites\/(\d+)\/scans$/, 'sites.scans.start'],
  ['GET', /^\/api\/3\/sites\/(\d+)\/scans$/, 'sites.scans.list'],
  ['GET', /^\/api\/3\/scan_engines$/, 'scan_engines.list'],
  ['GET', /^\/api\/3\/scan_engine_pools$/, 'scan_engine_pools.list'],
  ['POST', /^\/api\/3\/assets\/search$/, 'assets.search'],
];

export async function startRapid7Emulator(o: Rapid7EmulatorOptions = {}): Promise<Rapid7Emulator> {
  const username = o.username ?? 'onsight-api';
  const password = o.password ?? randomBytes(18).toString('base64url');
  const started = Date.now();
  const model = new Rapid7Model(scanClock({ speed: o.speed ?? 1 }), { pickupSec: o.scanTiming?.pickupSec ?? 2, hostSec: o.scanTiming?.hostSec ?? 5 });
  (o.engines ?? [{ name: 'engine-1' }]).forEach((e, i) => {
    const down = o.faults?.engineDown?.find((x) => x.name === e.name);
    model.engines.push({ id: i + 1, name: e.name, up: e.up ?? true, downFrom: down ? started + down.atSec * 1000 : undefined });
  });
  (o.pools ?? []).forEach((p, i) => model.pools.push({ id: 100 + i, name: p.name, engines: p.engines.map((n) => model.engines.find((e) => e.name === n)?.id ?? -1) }));
  model.sites.push(...(o.sites ?? [{ id: 1, name: 'onsight' }]));
  for (const a of o.assets ?? []) model.history.set(a.ip, [{ date: Date.parse(a.lastScannedAt) }]);
  const f = o.faults ?? {};
  const rng = seededRng((o.seed ?? 1) ^ 0x4a7d2);
  const requests: Rapid7RequestRecord[] = [];
  const faults: Partial<Record<RestFault, number>> = {};
  const expected = Buffer.from(`Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
  const handler = restHandler<RestFault>({
    routes: ROUTES,
    error: (kind, method, path) => ({
      'too-large': err(413, 'The request body is too large.'),
      'bad-json': err(400, 'The request body is not valid JSON.'),
      unauthorized: err(401, 'Unauthorized'),
      'not-found': err(404, `No resource ${path}`),
      'server-500': err(500, 'An error has occurred.'),
      'server-503': err(503, 'The service is unavailable.'),
      internal: err(500, 'An error has occurred.'),
    })[kind],
    authorized: (req) => {
      const auth = Buffer.from(req.headers.authorization ?? '');
      return auth.length === expected.length && timingSafeEqual(auth, expected);
    },
    drawFault: (name) => drawRestFault(f, rng, name),
    slowMs: f.slowMs ?? 2000,
    answer: route,
    malformed: '{"resources": [{"id": 1, "scanName": "',
    send,
  }, requests, faults);
  const server: Server = o.tls ? createHttps({ cert: o.tls.cert, key: o.tls.key }, handler) : createHttp(handler);
  let origin = '';

  const link = (path: string) => [{ href: `${origin}/api/3/${path}`, rel: 'self' }];

  function scanJson(s: R7EmScan) {
    const engine = model.engines.find((e) => e.id === (s.runOn ?? s.engineId)) ?? model.pools.find((p) => p.id === s.engineId);
    return {
      id: s.id, scanName: s.name, scanType: 'Manual', startedBy: username, status: model.status(s), engineId: s.runOn ?? s.engineId, engineName: engine?.name,
      startTime: new Date(s.launchedAt).toISOString(), ...(s.endedAt !== undefined ? { endTime: new Date(s.endedAt).toISOString() } : {}),
      assets: s.endedAt !== undefined && !s.stopped ? s.hosts.length : 0, links: link(`scans/${s.id}`),
    };
  }

  function page<T>(items: T[], q: URLSearchParams, path: string) {
    const size = Math.min(500, Math.max(1, Number(q.get('size') ?? 10)));
    const number = Math.max(0, Number(q.get('page') ?? 0));
    return {
      resources: items.slice(number * size, number * size + size),
      page: { number, size, totalResources: items.length, totalPages: Math.ceil(items.length / size) },
      links: link(path),
    };
  }

  function route(name: string, m: RegExpExecArray, body: Record<string, unknown>, q: URLSearchParams): Answer {
    switch (name) {
      case 'scans.list':
      case 'sites.scans.list': {
        model.advance();
        let list = [...model.scans].sort((a, b) => b.id - a.id);
        if (name === 'sites.scans.list') list = list.filter((s) => s.siteId === Number(m[1]));
        // running or past scans: `active` left out is false (past scans only), as the API's generated clients document it
        if (q.get('active') === 'true') list = list.filter((s) => s.endedAt === undefined);
        else list = list.filter((s) => s.endedAt !== undefined);
        return { status: 200, body: page(list.map(scanJson), q, 'scans') };
      }
      case 'scans.get': {
        const s = model.scans.find((x) => x.id === Number(m[1]));
        return s ? { status: 200, body: scanJson(s) } : err(404, `The scan ${m[1]} does not exist.`);
      }
      case 'scans.status': {
        const s = model.scans.find((x) => x.id === Number(m[1]));
        if (!s) return err(404, `The scan ${m[1]} does not exist.`);
        if (m[2] !== 'stop') return err(400, 'Only stop is emulated.');
        if (!model.stop(s)) return err(400, 'In order to stop a scan the scan must be running or paused.');
        return { status: 200, body: { links: link(`scans/${s.id}`) } };
      }
      case 'sites.scans.start': {
        const siteId = Number(m[1]);
        if (!model.sites.some((x) => x.id === siteId)) return err(404, `The site ${siteId} does not exist.`);
        const engineId = Number(body.engineId);
        if (!model.engines.some((e) => e.id === engineId) && !model.pools.some((p) => p.id === engineId)) return err(400, `The scan engine ${String(body.engineId)} does not exist.`);
        const hosts = Array.isArray(body.hosts) ? body.hosts.map(String) : [];
        if (hosts.length === 0) return err(400, 'An ad-hoc scan needs hosts or asset groups.');
        const s = model.launch(siteId, typeof body.name === 'string' ? body.name : `Ad-hoc scan ${Date.now()}`, hosts, engineId);
        return { status: 201, body: { id: s.id, links: link(`scans/${s.id}`) } };
      }
      case 'scan_engines.list':
        return {
          status: 200, body: page(model.engines.map((e) => ({
            id: e.id, name: e.name, address: `${e.name}.example.internal`, port: 40814, productVersion: '6.6.270', contentVersion: '1367091872',
            lastRefreshedDate: new Date(model.lastRefreshed(e)).toISOString(), enginePools: model.pools.filter((p) => p.engines.includes(e.id)).map((p) => p.id),
            sites: model.sites.map((x) => x.id), links: link(`scan_engines/${e.id}`),
          })), new URLSearchParams({ size: '500' }), 'scan_engines'),
        };
      case 'scan_engine_pools.list':
        return { status: 200, body: page(model.pools.map((p) => ({ id: p.id, name: p.name, engines: p.engines, links: link(`scan_engine_pools/${p.id}`) })), new URLSearchParams({ size: '500' }), 'scan_engine_pools') };
      case 'assets.search': {
        model.advance();
        const filters = Array.isArray(body.filters) ? (body.filters as { field?: string; operator?: string; value?: string }[]) : [];
        if (filters.some((x) => x.field !== 'ip-address' || x.operator !== 'is')) return err(400, 'this emulator answers ip-address is filters only');
        const ips = filters.map((x) => String(x.value));
        const assets = ips.filter((ip) => model.history.has(ip)).map((ip, i) => ({
          id: 1000 + i, ip, addresses: [{ ip }],
          history: model.history.get(ip)!.map((h, v) => ({ type: 'SCAN', date: new Date(h.date).toISOString(), scanId: h.scanId, version: v + 1 })),
          links: link(`assets/${1000 + i}`),
        }));
        return { status: 200, body: page(assets, q, 'assets/search') };
      }
    }
    return err(404, 'No resource');
  }

  const at = await listen(server, o.port ?? 0, o.host ?? '127.0.0.1');
  origin = `${o.tls ? 'https' : 'http'}://${at.address}:${at.port}`;
  return { url: origin, port: at.port, username, password, model, requests, faults, close: at.close };
}

/** The console's error body (`message`, `status` as a string, `links`). */
function err(status: number, message: string): Answer {
  return { status, body: { status: String(status), message, links: [] } };
}

function send(res: ServerResponse, a: Answer): void {
  res.writeHead(a.status, { 'content-type': 'application/json;charset=UTF-8' });
  res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body ?? {}));
}
