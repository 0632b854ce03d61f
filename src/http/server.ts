/**
 * The daemon's HTTP listener: `/metrics` (Prometheus), `/healthz`, `/api/status` (JSON) and `/`
 * (the status page), and the operator API (operator.ts: /api/why, and /api/rescan and /api/skip,
 * the only requests that change the state, which need tokens). It listens and authenticates
 * through the shared web config (src/net/webconfig.ts): optional TLS and tokens, and a Host
 * header check against DNS rebinding. Bind it to loopback (the default, 127.0.0.1:9321) or set
 * `http.tokens`: the status page shows addresses, hostnames and VPN user names. Beyond loopback
 * with nothing that authenticates, that data answers loopback clients only (unless
 * `http.allowUnauthenticated`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { DaemonView } from './view.js';
import { fillRefusedRequests, METRICS_STATUS, renderMetrics } from './metrics.js';
import { PAGE_CSP, PAGE_HTML } from './page.js';
import { handleOperatorApi } from './operator.js';
import type { MetricsRegistry } from './prom.js';
import { buildStatus, onsightVersion, type Status } from './status.js';
import { authenticate, createWebServer, hostAllowed, isLoopbackHost, listenOn, listenerTokens, parseHttpListen, reloadBoth, requestPath, tooManyHeaders, MAX_REQUEST_HEADERS, type WebConfig } from '../net/webconfig.js';

/** Scrapes and open status pages share one status computation per this many ms. */
const STATUS_TTL_MS = 1000;

export interface HttpHandle {
  /** `http://HOST:PORT` (or https) actually bound (port 0 in the config picks an ephemeral one) */
  url: string;
  /** requests refused, by reason (host, auth) */
  readonly refused: Record<string, number>;
  /** re-read the TLS certificate and key */
  reload(): void;
  close(): Promise<void>;
}

/** `http:` in the config: where to listen, and the shared web config keys. */
export interface HttpListenConfig extends WebConfig {
  listen: string;
  /** beyond loopback with neither tokens nor client certificates: show device data to anyone who can reach it (else to loopback clients only) */
  allowUnauthenticated?: boolean;
}

/** what shows a device's addresses, hostnames and user names (/metrics and /healthz show counts only) */
const DEVICE_ROUTES = new Set(['/', '/index.html', '/api/status', '/api/why']);

export { parseHttpListen } from '../net/webconfig.js';

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

const json = (res: ServerResponse, status: number, v: unknown, extra: Record<string, string> = {}) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(v, null, 1) + '\n', extra);

/** one status build shared by the requests of STATUS_TTL_MS; a failed build is not served again */
function sharedStatus(build: () => Promise<Status>): { get(): Promise<Status>; current(): Promise<Status> | undefined } {
  let cached: { at: number; status: Promise<Status> } | undefined;
  const current = () => (cached && Date.now() - cached.at < STATUS_TTL_MS ? cached.status : undefined);
  return {
    current,
    get() {
      const c = current();
      if (c) return c;
      const next = { at: Date.now(), status: build() };
      next.status.catch(() => {
        if (cached === next) cached = undefined;
      });
      cached = next;
      return next.status;
    },
  };
}

/** `daemon`: the daemon's view (src/daemon/view.ts) */
export async function startHttp(daemon: DaemonView, web: HttpListenConfig | string, log: Logger): Promise<HttpHandle> {
  const cfg: HttpListenConfig = typeof web === 'string' ? { listen: web } : web;
  const { host, port } = parseHttpListen(cfg.listen);
  const tokens = listenerTokens(cfg.tokens, 'http.tokens', log);
  const refused: Record<string, number> = {};
  // (on /metrics: failed logins were counted, and shown nowhere)
  const refusedMetrics = (w: MetricsRegistry) => fillRefusedRequests(w, refused);
  const refuse = (res: ServerResponse, why: string, status: number, text: string, extra: Record<string, string> = {}) => {
    refused[why] = (refused[why] ?? 0) + 1;
    send(res, status, 'text/plain; charset=utf-8', text, extra);
  };
  const pageStatus = sharedStatus(() => buildStatus(daemon));
  const status = () => pageStatus.get();
  // a scrape takes the page's status when one is fresh or under way; else it builds what it needs
  const scrapeStatus = sharedStatus(() => buildStatus(daemon, METRICS_STATUS));
  const metricsStatus = () => pageStatus.current() ?? scrapeStatus.get();
  const OPERATOR_ROUTES = new Set(['/api/why', '/api/rescan', '/api/skip']);
  const openBeyondLoopback = !cfg.tokens?.length && !cfg.tls?.requireClientCert && !cfg.allowUnauthenticated && !isLoopbackHost(host);
  const web_ = createWebServer(cfg, async (req: IncomingMessage, res: ServerResponse) => {
    const path = requestPath(req.url);
    // (more headers than are kept: a token past them would read as missing, a 401 that says nothing of why)
    if (tooManyHeaders(req)) return refuse(res, 'headers', 431, `more than ${MAX_REQUEST_HEADERS} headers\n`);
    if (!hostAllowed(req, cfg.allowedHosts)) return refuse(res, 'host', 421, 'unknown Host header: add the name to http.allowedHosts\n');
    // (the token's name: who made a change, in the log)
    let caller: string | undefined;
    // (tokens configured: every request authenticated, even when a reload left none valid)
    if (cfg.tokens?.length) {
      const a = authenticate(req, tokens.current);
      if (!a.ok) return refuse(res, 'auth', 401, `authentication required (${a.why} token)\n`, { 'www-authenticate': 'Basic realm="onsight", charset="UTF-8"' });
      caller = a.token;
    } else if (openBeyondLoopback && DEVICE_ROUTES.has(path) && !isLoopbackHost(req.socket.remoteAddress ?? '')) {
      // Nothing authenticates this listener, yet it is reachable beyond loopback: device data to loopback clients only
      return refuse(res, 'notLoopback', 403, `${cfg.listen} is not loopback and http.tokens is empty: device addresses, hostnames and user names are shown to loopback clients only (set http.tokens, or http.allowUnauthenticated: true to show them to anyone who can reach ${cfg.listen}); /metrics and /healthz answer anyone\n`);
    }
    try {
      if (OPERATOR_ROUTES.has(path) && handleOperatorApi(req, res, path, daemon.operatorStore(), daemon.whyLimits(), caller, log, (code, v, headers) => json(res, code, v, { ...headers, ...(code === 413 ? { connection: 'close' } : {}) }))) return;
    } catch (err) {
      log.warn({ err: { message: (err as Error).message }, path }, 'http request failed');
      return json(res, 503, { status: 'unavailable', error: (err as Error).message });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    try {
      switch (path) {
        case '/metrics':
          return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', await renderMetrics(daemon, await metricsStatus(), refusedMetrics));
        case '/healthz':
          return await health(daemon, res);
        case '/api/status':
          return json(res, 200, await status());
        case '/':
        case '/index.html':
          return send(res, 200, 'text/html; charset=utf-8', PAGE_HTML, { 'content-security-policy': PAGE_CSP, 'x-frame-options': 'DENY' });
        default:
          return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /, /metrics, /healthz, /api/status or /api/why?target=…\n');
      }
    } catch (err) {
      log.warn({ err: { message: (err as Error).message }, path }, 'http request failed');
      if (!res.headersSent) json(res, 503, { status: 'unavailable', error: (err as Error).message });
      else res.destroy();
    }
  });
  const server = web_.server;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  const a = await listenOn(server, host, port);
  server.on('error', (err) => log.warn({ err: { message: err.message } }, 'http server error'));
  const url = `${web_.scheme}://${a.family === 'IPv6' ? `[${a.host}]` : a.host}:${a.port}`;
  log.info({ url, tls: web_.scheme === 'https', tokens: tokens.current.map((t) => t.name) }, `status page, /metrics and /healthz on ${url}`);
  let closed = false;
  return {
    url,
    refused,
    // tokens re-read with the certificates (a token revoked by rewriting its file kept working until
    // a restart); either failing keeps what was running
    reload: () => reloadBoth(() => web_.reload(), () => tokens.reload()),
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function health(daemon: DaemonView, res: ServerResponse): Promise<void> {
  try {
    await daemon.ping();
    json(res, 200, {
      status: 'ok', version: onsightVersion(), uptimeS: Math.round((Date.now() - daemon.startedAt) / 1000),
      inputs: daemon.inputs().map((i) => i.name), scanner: daemon.scanner().kind,
    });
  } catch (err) {
    json(res, 503, { status: 'unavailable', error: `state database: ${(err as Error).message}` });
  }
}
