/**
 * The operator API on the status listener: `GET /api/why?target=X` (read-only, what `onsight why
 * --json` prints) and `POST /api/rescan`, `POST /api/skip` with a JSON body `{"target": "10.0.0.5"}`
 * (skip: `"until": "2h" | DATE | "now"`, a DATE in the future; `now` lifts a skip), doing what `onsight rescan` / `onsight skip` do.
 * The POSTs change the state, so they need `http.tokens` (refused without: 403), a JSON content
 * type (a cross-site form cannot send one without a CORS preflight, which we never grant) and a
 * body of at most 4 KiB. They go through the daemon's own store (SQLite or PostgreSQL): in a
 * cluster, a mark written through any node's API is read by the leader at its next tick.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OnsightError, UsageError } from '../errors.js';
import { markDevices, parseSkipUntil } from '../cli/operator.js';
import { parseTarget } from '../cli/target.js';
import { whyHistory } from '../cli/why.js';
import type { DaemonView } from './view.js';
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import { printable } from '../cli/printable.js';

/** the running config's limits, with which /api/why's `now` names the one a ready device waits on (as `onsight why` does from its config) */
export type WhyLimits = Pick<Config, 'regions' | 'scheduler' | 'scanner'>;

const MAX_BODY = 4096;

class BodyTooLarge extends UsageError {}

type Reply = (status: number, v: unknown, headers?: Record<string, string>) => void;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new BodyTooLarge(`body larger than ${MAX_BODY} bytes`));
        req.pause(); // read no more; the reply closes the connection
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Handles /api/why, /api/rescan and /api/skip; false for any other path. */
/** `caller`: the name of the token the request came with (undefined: no tokens configured, so no change is taken) */
/** `limits`: the running config's, for /api/why (DaemonView.whyLimits) */
export function handleOperatorApi(req: IncomingMessage, res: ServerResponse, path: string, store: ReturnType<DaemonView['operatorStore']>, limits: WhyLimits, caller: string | undefined, log: Logger, reply: Reply): boolean {
  if (path === '/api/why') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return (reply(405, { error: 'use GET' }, { allow: 'GET, HEAD' }), true);
    const target = new URL(req.url ?? '/', 'http://x').searchParams.get('target');
    if (!target) return (reply(400, { error: 'target= is required (an IP address, a MAC address or a user name)' }), true);
    whyHistory(store, target, undefined, limits).then((h) => reply(200, h), (err: unknown) => replyError(reply, err));
    return true;
  }
  if (path !== '/api/rescan' && path !== '/api/skip') return false;
  if (req.method !== 'POST') return (reply(405, { error: 'use POST' }, { allow: 'POST' }), true);
  if (caller === undefined) return (reply(403, { error: 'rescan and skip change the state: configure http.tokens to enable them' }), true);
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return (reply(415, { error: 'content-type must be application/json' }), true);
  // a compressed body would be read as the JSON itself ("not JSON"), or a plain one under a gzip label taken
  const coding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (coding !== 'identity') return (reply(415, { error: `content-encoding ${printable(coding.slice(0, 40))} is not taken: send the JSON uncompressed (it is at most ${MAX_BODY} bytes)` }, { 'accept-encoding': 'identity' }), true);
  readBody(req).then(async (text) => {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new UsageError('the body is not JSON');
    }
    const b = body as { target?: unknown; until?: unknown };
    if (typeof body !== 'object' || body === null || Array.isArray(body) || typeof b.target !== 'string') throw new UsageError('expected {"target": "<ip|mac|user>"}');
    // a key we do not read is refused, not ignored: {"Until": "2h"} skipped the device for ever
    const known = path === '/api/skip' ? ['target', 'until'] : ['target'];
    const unknown = Object.keys(body).filter((k) => !known.includes(k));
    if (unknown.length) throw new UsageError(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => JSON.stringify(k)).join(', ')}: ${path} takes ${known.map((k) => `"${k}"`).join(' and ')}`);
    if (b.until !== undefined && (typeof b.until !== 'string' || path !== '/api/skip')) throw new UsageError('"until" is a string, and only for /api/skip');
    const now = Date.now();
    const target = parseTarget(b.target);
    const action = path === '/api/rescan' ? { kind: 'rescan' as const }
      : { kind: 'skip' as const, until: parseSkipUntil(b.until as string | undefined, now, 'until') };
    const marked = await markDevices(store, target, action, now);
    // who changed what (the decision log says only that an operator asked)
    log.info({ operator: caller, action: action.kind, target: target.value, ...(action.kind === 'skip' ? { until: action.until } : {}) },
      `operator API: ${action.kind} of ${target.kind} ${printable(target.value)} by token "${printable(caller)}"`);
    reply(200, marked);
  }).catch((err: unknown) => replyError(reply, err));
  return true;
}

function replyError(reply: Reply, err: unknown): void {
  if (err instanceof BodyTooLarge) return reply(413, { error: err.message });
  if (err instanceof UsageError) return reply(400, { error: err.message });
  if (err instanceof OnsightError && err.code === 'ONSIGHT_NO_DEVICE') return reply(404, { error: err.message });
  reply(503, { error: (err as Error).message }); // the state is busy or unreadable: never a crash
}
