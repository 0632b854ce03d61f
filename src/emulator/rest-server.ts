/** Socket plumbing the REST emulators (Tenable, Rapid7) share: reading a capped body, listening, closing. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** The request body as text, or undefined when it is larger than `max` bytes. */
export function readBody(req: IncomingMessage, max = 4 * 1024 * 1024): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => resolve(size > max ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Listens, and returns the address and a close that also ends kept-alive connections. */
export async function listen(server: Server, port: number, host: string): Promise<{ address: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    address: addr.family === 'IPv6' ? `[${addr.address}]` : addr.address,
    port: addr.port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** One answer of a REST emulator: status, JSON body (or raw text), extra headers. */
export interface RestAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** What the emulator records of each request (tests read it). */
export interface RestRequestRecord<F extends string = string> {
  method: string;
  path: string;
  route: string;
  query: Record<string, string>;
  body?: unknown;
  status?: number;
  fault?: F;
  at: number;
}

/** The vendor's parts of a REST emulator; the request loop (restHandler) is shared. */
export interface RestVendor<F extends string> {
  /** [method, path pattern, route name] */
  routes: [string, RegExp, string][];
  /** the vendor's error answer for the loop's own refusals and injected 5xx */
  error(kind: 'too-large' | 'bad-json' | 'unauthorized' | 'not-found' | 'server-500' | 'server-503' | 'internal', method: string, path: string): RestAnswer;
  authorized(req: IncomingMessage): boolean;
  /** a refusal before faults are drawn (a rate limit), or undefined to go on */
  admit?(): RestAnswer | undefined;
  /** the fault to inject for this route now (drawn from the seeded generator) */
  drawFault(route: string): { fault?: F; slow: boolean };
  slowMs: number;
  answer(route: string, match: RegExpExecArray, body: Record<string, unknown>, query: URLSearchParams): RestAnswer;
  /** a truncated JSON text for the `malformed` fault */
  malformed: string;
  send(res: ServerResponse, a: RestAnswer): void;
  onHandlerError?(err: unknown): void;
}

/**
 * The request loop the REST emulators share: record the request (last 10,000), read a capped body,
 * parse JSON, authenticate, route, maybe refuse (rate limit), inject a drawn fault (5xx, dropped
 * socket before or after the call ran, malformed JSON, slow answer), answer.
 */
export function restHandler<F extends string>(v: RestVendor<F>, requests: RestRequestRecord<F>[], faults: Partial<Record<F, number>>) {
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const text = await readBody(req);
    const found = v.routes.map(([m, re, name]) => ({ m, name, match: re.exec(url.pathname) })).find((r) => r.match && r.m === method);
    const rec: RestRequestRecord<F> = { method, path: url.pathname, route: found?.name ?? 'unknown', query: Object.fromEntries(url.searchParams), at: Date.now() };
    if (requests.length >= 10_000) requests.shift();
    requests.push(rec);
    const reply = (a: RestAnswer) => {
      rec.status = a.status;
      v.send(res, a);
    };
    if (text === undefined) return reply(v.error('too-large', method, url.pathname));
    let body: Record<string, unknown> = {};
    if (text.trim()) {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
        rec.body = body;
      } catch {
        return reply(v.error('bad-json', method, url.pathname));
      }
    }
    if (!v.authorized(req)) return reply(v.error('unauthorized', method, url.pathname));
    if (!found) return reply(v.error('not-found', method, url.pathname));
    const refused = v.admit?.();
    if (refused) return reply(refused);
    const d = v.drawFault(found.name);
    if (d.slow) await new Promise((r) => setTimeout(r, v.slowMs));
    if (d.fault) {
      rec.fault = d.fault;
      faults[d.fault] = (faults[d.fault] ?? 0) + 1;
      if (d.fault === 'drop') return void res.destroy();
      if (d.fault === 'server-500' || d.fault === 'server-503') return reply(v.error(d.fault as 'server-500' | 'server-503', method, url.pathname));
    }
    const answer = v.answer(found.name, found.match!, body, url.searchParams);
    if (d.fault === 'drop-after') return void res.destroy();
    if (d.fault === 'malformed' && answer.status >= 200 && answer.status < 300) return reply({ status: 200, body: v.malformed });
    reply(answer);
  }
  return (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err) => {
      v.onHandlerError?.(err);
      if (!res.headersSent) v.send(res, v.error('internal', req.method ?? 'GET', req.url ?? '/'));
      else res.destroy();
    });
  };
}
