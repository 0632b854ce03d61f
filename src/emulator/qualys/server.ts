/**
 * A real HTTP server speaking the Qualys "fo" API as the client sees it: basic auth or a
 * QualysSession cookie, X-Requested-With, the six limit headers on every answer, 409 with
 * CODE 1960/1965, and faults on demand (409s, 5xx, slow answers, dropped sockets, cut or
 * broken XML) drawn from a seeded generator.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { scanClock, isoSec } from './clock.js';
import { resolveEmulatorConfig, type EmulatedApi, type EmulatorConfig, type EmulatorOptions } from './config.js';
import { drawFault, type RequestFault } from './faults.js';
import { Handlers, type Answer, type Ctx } from './handlers.js';
import { Limiter, type ApiStats } from './limits.js';
import { EmulatorModel } from './model.js';
import { seededRng } from './rng.js';
import { served, servingVersion } from './versions.js';
import { simpleReturn, withEvaluationComments } from './xml.js';

const MAX_BODY = 8 * 1024 * 1024;

/**
 * Account states and what the real service answers (CODE, status, text): 2001 from recorded traffic
 * (HTTP 200); 2003 from the JupiterOne client's fixture (409); 2011's text is not published (ours).
 */
const ACCOUNT_ANSWERS: Record<string, { status: number; code: number; text: string } | undefined> = {
  active: undefined,
  expired: { status: 200, code: 2001, text: 'This account has expired.' },
  registration: { status: 409, code: 2003, text: ' Registration must be completed before API requests will be served for this account' },
  securid: { status: 409, code: 2011, text: 'SecureID authentication is required for this account, API access is blocked' },
};
const ROUTES: [RegExp, EmulatedApi | 'session'][] = [
  [/^\/api\/(\d+\.\d+)\/fo\/scan\/?$/, 'scan'],
  [/^\/api\/(\d+\.\d+)\/fo\/appliance\/?$/, 'appliance'],
  [/^\/api\/(\d+\.\d+)\/fo\/asset\/host\/?$/, 'host'],
  [/^\/api\/(\d+\.\d+)\/fo\/asset\/ip\/?$/, 'ip'],
  [/^\/api\/(\d+\.\d+)\/fo\/schedule\/scan\/?$/, 'schedule'],
  [/^\/api\/(\d+\.\d+)\/fo\/subscription\/option_profile\/vm\/?$/, 'optionProfile'],
  [/^\/api\/(\d+\.\d+)\/fo\/session\/?$/, 'session'],
];

export interface RequestRecord {
  api: EmulatedApi | 'session' | 'unknown';
  action?: string;
  /** the path asked, e.g. /api/3.0/fo/scan/ */
  path: string;
  /** query and form parameters (a session login's password left out) */
  params: Record<string, string>;
  method: string;
  status?: number;
  fault?: RequestFault;
  slow?: boolean;
  at: number;
}

export interface EmulatorState {
  readonly config: EmulatorConfig;
  readonly model: EmulatorModel;
  /** per-API call statistics (peaks, window counts, 409s) */
  stats(api: EmulatedApi): ApiStats & { limit: { limit: number; windowSec: number; concurrency: number } };
  /** faults injected so far, by kind */
  readonly faults: Partial<Record<RequestFault, number>>;
  /** the last 10 000 requests */
  readonly requests: RequestRecord[];
}

export interface QualysEmulator {
  url: string;
  port: number;
  host: string;
  username: string;
  password: string;
  state: EmulatorState;
  close(): Promise<void>;
}

export async function startQualysEmulator(options: EmulatorOptions = {}): Promise<QualysEmulator> {
  const { now, realNow, log, ...fileOptions } = options;
  const config = resolveEmulatorConfig(fileOptions);
  const rng = seededRng(config.seed);
  const model = new EmulatorModel(config, scanClock({ now, speed: config.speed, startAt: config.startAt }), rng);
  const limiter = new Limiter(config, realNow);
  const handlers = new Handlers(config, model);
  const faultRng = seededRng(config.seed ^ 0x5bd1e995);
  const sessions = new Set<string>();
  const faults: Partial<Record<RequestFault, number>> = {};
  const requests: RequestRecord[] = [];
  const sockets = new Set<Socket>();

  const state: EmulatorState = { config, model, stats: (api) => limiter.stats(api), faults, requests };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/xml;charset=UTF-8' });
        res.end(simpleReturn(hostOf(req), isoSec(model.now()), { code: 999, text: 'Internal error' }));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const body = await readBody(req);
    if (body === undefined) return send(res, { status: 413, body: handlers.fail({ host: hostOf(req) }, 413, 1905, 'request body too large').body });
    const params = new Map<string, string>(url.searchParams);
    if (body && (req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
    }
    const route = ROUTES.find(([re]) => re.test(url.pathname));
    const api = route?.[1];
    const version = route ? route[0].exec(url.pathname)![1] : '';
    const rec: RequestRecord = {
      api: api ?? 'unknown', action: params.get('action'), path: url.pathname, method: req.method ?? '', at: Date.now(),
      params: Object.fromEntries([...params].filter(([k]) => k !== 'password')),
    };
    if (requests.length >= 10_000) requests.shift();
    requests.push(rec);
    const ctx: Ctx = {
      method: req.method ?? 'GET', params, host: hostOf(req), origin: `http://${hostOf(req)}`, path: url.pathname, version,
      userLogin: config.userLogin ?? config.username,
    };
    const reply = (a: Answer) => {
      rec.status = a.status;
      if (config.evaluation && a.status === 200) a = { ...a, body: withEvaluationComments(a.body, new Date(model.now()).getUTCFullYear()) };
      log?.debug({ api: rec.api, action: rec.action, method: rec.method, status: a.status, fault: rec.fault }, 'emulated qualys call');
      send(res, a);
    };

    if (!api) return reply({ status: 404, body: handlers.fail(ctx, 404, 1905, `no such API: ${url.pathname}`).body });
    if (!req.headers['x-requested-with']) {
      const m = config.missingRequestedWith;
      return reply(handlers.fail(ctx, m.status, m.code, m.text));
    }
    if (api === 'session') return reply(served('session', version, rec.action) ? session(ctx, req, res) : retired(ctx, 'session'));
    // the real 401 (2021) carries no WWW-Authenticate and no limit headers
    if (!authorized(req)) return reply(handlers.fail(ctx, 401, 2000, 'Bad Login/Password'));
    // account problems are answered before the limits (the real 2001 answer has no limit headers)
    const account = ACCOUNT_ANSWERS[config.account];
    if (account) return reply(account.status === 200 ? handlers.fail(ctx, 200, account.code, account.text) : handlers.conflict(account.status, account.code, account.text));

    const leave = limiter.arrive(api);
    res.once('close', leave);
    const draw = drawFault(config.faults, faultRng, api, params.get('action'));
    const conflict = draw.fault === 'conflict-1960' ? 1960 : draw.fault === 'conflict-1965' ? 1965 : undefined;
    const verdict = limiter.check(api, conflict, config.faults.conflictToWaitSec);
    res.once('finish', verdict.done);
    res.once('close', verdict.done);
    if (conflict) count(draw.fault!, rec);
    if (!verdict.ok) return reply({ ...handlers.conflict(409, verdict.code, verdict.text, verdict.items), headers: verdict.headers });

    if (draw.slow) {
      rec.slow = true;
      await new Promise((r) => setTimeout(r, config.faults.slowMs));
    }
    const fault = conflict ? undefined : draw.fault;
    if (fault) count(fault, rec);
    if (fault === 'drop') {
      log?.debug({ api, action: rec.action, fault }, 'emulated qualys call: socket dropped');
      return void req.socket.destroy();
    }
    if (fault === 'server-500') return reply({ ...handlers.fail(ctx, 500, 999, 'Internal error. Please contact customer support.'), headers: verdict.headers });
    if (fault === 'server-503') return reply({ ...handlers.fail(ctx, 503, 1999, 'The service is unavailable due to scheduled maintenance.'), headers: verdict.headers });

    // a retired version is still counted against the API's limits: the handler, not the gateway, refuses it
    const answer = served(api, version, rec.action) ? dispatch(api, ctx) : retired(ctx, api);
    if (fault === 'drop-after') {
      log?.debug({ api, action: rec.action, fault }, 'emulated qualys call: processed, socket dropped');
      return void req.socket.destroy();
    }
    if (fault === 'processing-1981') {
      // what Qualys answers a duplicate or in-progress request (reference/qualys-api.md): the first one is at work
      return reply({ ...handlers.fail(ctx, 202, 1981, 'Your request is being processed, try the same request again later.'), headers: verdict.headers });
    }
    if (fault === 'truncated') answer.body = answer.body.slice(0, Math.max(1, Math.floor(answer.body.length / 2)));
    if (fault === 'malformed') answer.body = faultRng() < 0.5 ? '<html><body>Service temporarily unavailable</body>' : answer.body.replace(/<\/RESPONSE>/, '</RESPONS>');
    reply({ ...answer, headers: { ...answer.headers, ...verdict.headers } });
  }

  function retired(ctx: Ctx, api: EmulatedApi | 'session'): Answer {
    const r = config.retiredVersion;
    const now = servingVersion(api, ctx.params.get('action'));
    const text = r.text.replace('{path}', ctx.path).replace('{action}', ctx.params.get('action') ?? '').replace('{served}', now ? `/api/${now}/` : 'no version');
    return handlers.fail(ctx, r.status, r.code, text);
  }

  function count(f: RequestFault, rec: RequestRecord): void {
    faults[f] = (faults[f] ?? 0) + 1;
    rec.fault = f;
  }

  function dispatch(api: EmulatedApi, ctx: Ctx): Answer {
    switch (api) {
      case 'scan': return handlers.scan(ctx);
      case 'appliance': return handlers.appliance(ctx);
      case 'host': return handlers.host(ctx);
      case 'ip': return handlers.ip(ctx);
      case 'schedule': return handlers.schedule(ctx);
      case 'optionProfile': return handlers.optionProfileList(ctx);
    }
  }

  function session(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Answer {
    if (ctx.method !== 'POST') return handlers.fail(ctx, 400, 1908, 'session actions require the POST method');
    const action = ctx.params.get('action');
    if (action === 'login') {
      if (!credentialsMatch(ctx.params.get('username') ?? '', ctx.params.get('password') ?? '')) return handlers.fail(ctx, 401, 2000, 'Bad Login/Password');
      const id = randomBytes(16).toString('hex');
      sessions.add(id);
      res.setHeader('Set-Cookie', `QualysSession=${id}; path=/api; secure`);
      return { status: 200, body: simpleReturn(ctx.host, isoSec(model.now()), { text: 'Logged in' }) };
    }
    if (action === 'logout') {
      const id = sessionOf(req);
      if (!id || !sessions.delete(id)) return handlers.fail(ctx, 401, 2000, 'Bad Login/Password');
      return { status: 200, body: simpleReturn(ctx.host, isoSec(model.now()), { text: 'Logged out' }) };
    }
    return handlers.fail(ctx, 400, action ? 1905 : 1903, 'session: action must be login or logout');
  }

  function authorized(req: IncomingMessage): boolean {
    const sid = sessionOf(req);
    if (sid && sessions.has(sid)) return true;
    const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon > 0 && credentialsMatch(decoded.slice(0, colon), decoded.slice(colon + 1));
  }

  function credentialsMatch(user: string, password: string): boolean {
    return safeEqual(user, config.username) && safeEqual(password, config.password);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${hostPart}:${addr.port}`,
    port: addr.port,
    host: addr.address,
    username: config.username,
    password: config.password,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, a: Answer): void {
  if (res.destroyed) return;
  res.writeHead(a.status, { 'Content-Type': 'text/xml;charset=UTF-8', ...a.headers });
  res.end(a.body);
}

function hostOf(req: IncomingMessage): string {
  return req.headers.host ?? `${req.socket.localAddress}:${req.socket.localPort}`;
}

function sessionOf(req: IncomingMessage): string | undefined {
  return /(?:^|;\s*)QualysSession=([0-9a-f]+)/.exec(req.headers.cookie ?? '')?.[1];
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
