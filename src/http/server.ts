/**
 * The daemon's HTTP listener (node:http): `/metrics` (Prometheus), `/healthz`, `/api/status`
 * (JSON) and `/` (the status page). Read-only: nothing here changes the state. Bind it to
 * loopback (the default, 127.0.0.1:9321) or put it behind a proxy with authentication: the
 * status page shows addresses, hostnames and VPN user names.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { DaemonView } from './view.js';
import { renderMetrics } from './metrics.js';
import { PAGE_CSP, PAGE_HTML } from './page.js';
import { buildStatus, onsightVersion, type Status } from './status.js';

/** Scrapes and open status pages share one status computation per this many ms. */
const STATUS_TTL_MS = 1000;

export interface HttpHandle {
  /** `http://HOST:PORT` actually bound (port 0 in the config picks an ephemeral one) */
  url: string;
  close(): Promise<void>;
}

/** `127.0.0.1:9321`, `[::1]:9321`, `0.0.0.0:9321`, `:9321` or `9321` → host and port. */
export function parseHttpListen(listen: string): { host: string; port: number } {
  const s = listen.trim().replace(/^https?:\/\//, '').replace(/\/$/, '');
  let host: string;
  let port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(s);
  if (v6) [, host, port] = v6;
  else if (/^\d+$/.test(s)) [host, port] = ['127.0.0.1', s];
  else {
    const i = s.lastIndexOf(':');
    if (i < 0) throw new Error(`http.listen "${listen}": expected HOST:PORT`);
    host = s.slice(0, i) || '127.0.0.1';
    port = s.slice(i + 1);
  }
  const p = Number(port);
  if (!/^\d+$/.test(port) || p > 65535) throw new Error(`http.listen "${listen}": bad port`);
  return { host, port: p };
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

const json = (res: ServerResponse, status: number, v: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(v, null, 1) + '\n');

export async function startHttp(daemon: DaemonView, listen: string, log: Logger): Promise<HttpHandle> {
  const { host, port } = parseHttpListen(listen);
  let cached: { at: number; status: Status } | undefined;
  const status = (): Status => {
    const now = Date.now();
    if (!cached || now - cached.at >= STATUS_TTL_MS) cached = { at: now, status: buildStatus(daemon) };
    return cached.status;
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    try {
      switch (path) {
        case '/metrics':
          return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', renderMetrics(daemon, status()));
        case '/healthz':
          return health(daemon, res);
        case '/api/status':
          return json(res, 200, status());
        case '/':
        case '/index.html':
          return send(res, 200, 'text/html; charset=utf-8', PAGE_HTML, { 'content-security-policy': PAGE_CSP, 'x-frame-options': 'DENY' });
        default:
          return send(res, 404, 'text/plain; charset=utf-8', 'not found: try /, /metrics, /healthz or /api/status\n');
      }
    } catch (err) {
      log.warn({ err: { message: (err as Error).message }, path }, 'http request failed');
      if (!res.headersSent) json(res, 503, { status: 'unavailable', error: (err as Error).message });
      else res.destroy();
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.warn({ err: { message: err.message } }, 'http server error'));
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  log.info({ url }, `status page, /metrics and /healthz on ${url}`);
  let closed = false;
  return {
    url,
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

function health(daemon: DaemonView, res: ServerResponse): void {
  try {
    daemon.ping();
    json(res, 200, {
      status: 'ok', version: onsightVersion(), uptimeS: Math.round((Date.now() - daemon.startedAt) / 1000),
      inputs: daemon.inputs().map((i) => i.name), scanner: daemon.scanner().kind,
    });
  } catch (err) {
    json(res, 503, { status: 'unavailable', error: `state database: ${(err as Error).message}` });
  }
}
