/**
 * `type: http` inputs: a Splunk HEC compatible collector (/services/collector/event, /raw,
 * /health, /ack) and a plain Sighting JSON endpoint (/api/v1/sightings), behind the shared web
 * config (src/net/webconfig.ts: TLS with optional client certificates, tokens).
 *
 * Exactly-once as for files: a request's lines are one commit group; it is answered 200 only after
 * the transaction holding its sightings is durable, so a client retries whatever a crash lost. A
 * retry of a request whose answer was lost is recognised by its `Idempotency-Key` header (the
 * answer is committed with the sightings and replayed); without the header such a retry applies
 * its sightings again, which the inventory takes as renewals of what it already holds.
 *
 * Backpressure: more than maxPendingRequests at once, or a sink over its high-water mark, is
 * answered 503 with Retry-After before the body is read (a repeat's too, read to compare it with the
 * first); memory is bounded by maxPendingRequests × maxBodyBytes.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log.js';
import { CLOCK_SET_FROM_MS, type Sighting } from '../../sighting.js';
import { SKEW_MS } from '../../util/time.js';
import { CidrSet, canonicalIp, parseCidr } from '../../util/ip.js';
import { authenticate, createWebServer, hostAllowed, listenOn, listenerTokens, parseHttpListen, reloadBoth, tooManyHeaders, MAX_REQUEST_HEADERS } from '../../net/webconfig.js';
import type { CommitGroup, InputHandle, LineSink, RawLine, ResumeStore, SourceCounters } from '../types.js';
import { readBody } from './body.js';
import { HEC, isReadableEventLine, isReadableRawLine, parseHecEvents, splitRawLines, type HecAnswer } from './hec.js';
import type { HttpInputConfig, HttpTokenConfig } from './schema.js';

import { checkSighting, parseSightingBody } from './sightings.js';
import { LogLimit } from '../../util/log-limit.js';

/** an exact repeat of a HEC request body within this long is the client's retry, not new data */
export const HEC_REPEAT_MS = 10 * 60_000;

/** a request's digest (endpoint and body): what an Idempotency-Key's stored answer keeps, and a HEC body's own key */
const bodyDigest = (ep: string, body: string): string => createHash('sha256').update(ep).update('\0').update(body).digest('hex');

/** where the HEC body digests are kept among the idempotency keys */
const HEC_DIGEST_PREFIX = 'hec-sha256:';

/**
 * The request target as a URL: the origin form, or the absolute form of an http(s) URL (RFC 9112
 * §3.2.2; its authority is checked by hostAllowed). Undefined for one that is no URL or another
 * scheme's (URL.parse is Node 22 and later). (Resolved against a base, `//other/services/...` read as
 * host `other`, and `foo://other/...` as its path: both were routed, the name unchecked.)
 */
function requestUrl(target: string): URL | undefined {
  try {
    const url = target.startsWith('/') ? new URL(`http://x${target}`) : new URL(target, 'http://x');
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

type Endpoint = 'hec-event' | 'hec-raw' | 'hec-health' | 'hec-ack' | 'sightings';

const ROUTES: Record<string, Endpoint> = {
  '/services/collector': 'hec-event',
  '/services/collector/event': 'hec-event',
  '/services/collector/event/1.0': 'hec-event',
  '/services/collector/raw': 'hec-raw',
  '/services/collector/raw/1.0': 'hec-raw',
  '/services/collector/health': 'hec-health',
  '/services/collector/health/1.0': 'hec-health',
  '/services/collector/ack': 'hec-ack',
  '/api/v1/sightings': 'sightings',
};

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** One token's allow-list as a predicate on sightings (undefined: everything). */
function allowPredicate(t: HttpTokenConfig): ((s: Sighting) => boolean) | undefined {
  const a = t.allow;
  if (!a || (!a.formats && !a.kinds && !a.cidrs)) return undefined;
  const formats = a.formats ? new Set(a.formats) : undefined;
  const kinds = a.kinds ? new Set<string>(a.kinds) : undefined;
  let cidrs: CidrSet | undefined;
  if (a.cidrs) {
    cidrs = new CidrSet();
    for (const c of a.cidrs) cidrs.add(parseCidr(c)!, c);
  }
  return (s) => (!formats || formats.has(s.format)) && (!kinds || kinds.has(s.kind)) && (!cidrs || cidrs.contains(s.ip));
}

export async function startHttpInput(opts: HttpInputConfig, sink: LineSink, store: ResumeStore, log: Logger): Promise<InputHandle> {
  const { host, port } = parseHttpListen(opts.listen);
  const tokens = listenerTokens(opts.tokens, `HTTP input on ${opts.listen}`, log);
  const byName = new Map(opts.tokens.map((t) => [t.name, { cfg: t, accept: allowPredicate(t), endpoints: new Set(t.allow?.endpoints ?? ['hec', 'sightings']) }]));
  const counters = { received: 0, dropped: {} as Record<string, number>, events: {} as Record<string, number> };
  const drop = (why: string, n = 1) => (counters.dropped[why] = (counters.dropped[why] ?? 0) + n);
  const event = (what: string, n = 1) => (counters.events[what] = (counters.events[what] ?? 0) + n);
  let pending = 0;
  let blocked = false;
  let closed = false;
  const inflightKeys = new Set<string>();
  /**
   * per token, the last body it had committed (any endpoint): a HEC repeat is a retry only while no
   * other body came from the token since (up, down, up: the third is news, not a retry of the first).
   * Per process: after a restart, and across the nodes of a cluster, a repeat within 10 min is
   * taken as a retry, as before
   */
  const lastHecBody = new Map<string, string>();
  /** bodies committed without a key of their own (lastHecBody tells them apart) */
  let bodies = 0;
  const waiting = new Set<Promise<void>>();
  let name = `http:${port}`;
  let lastPrune = 0;
  // refusals are counted on every request but logged at most once a minute per reason: a hostile
  // client must not flood the log
  const limit = new LogLimit();
  const refusedLog = (why: string, fields: Record<string, unknown>, msg: string) => {
    if (limit.take(why) === undefined) return;
    log.warn({ ...fields, why, dropped: counters.dropped[why] }, `${msg} (logged at most once a minute; see onsight_input_lines_dropped_total)`);
  };

  const reply = (res: ServerResponse, a: Answer) => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(a.body);
    res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...a.headers });
    res.end(text);
  };
  const hec = (a: HecAnswer, headers?: Record<string, string>): Answer => ({ status: a.status, body: a.body, headers });
  const busy = (isHec: boolean): Answer => {
    drop('busy');
    const headers = { 'retry-after': String(opts.retryAfterS) };
    return isHec ? hec(HEC.serverBusy(), headers) : { status: 503, body: { error: 'busy: retry later' }, headers };
  };
  const plain = (status: number, error: string, headers?: Record<string, string>): Answer => ({ status, body: { error }, headers });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    event('requests');
    // (an absolute-form target that is no URL, `GET http://[x/`: refused before anything, as the headers below are)
    const url = requestUrl(req.url ?? '/');
    if (!url) {
      drop('badRequest');
      refusedLog('badRequest', { remote: req.socket.remoteAddress }, 'HTTP input: request with a malformed target refused');
      req.resume();
      return reply(res, plain(400, 'malformed request target: a path, or an http or https URL'));
    }
    if (tooManyHeaders(req)) {
      drop('badRequest');
      refusedLog('badRequest', { remote: req.socket.remoteAddress }, `HTTP input: request with more than ${MAX_REQUEST_HEADERS} headers refused`);
      req.resume();
      return reply(res, plain(431, `more than ${MAX_REQUEST_HEADERS} headers`));
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const ep = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
    const isHec = ep !== undefined && ep !== 'sightings';
    if (opts.allowedHosts && !hostAllowed(req, opts.allowedHosts)) {
      drop('host');
      return reply(res, plain(421, 'unknown Host header'));
    }
    if (!ep) return reply(res, { status: 404, body: { text: 'The requested URL was not found on this server.', code: 404 } });
    if (ep === 'hec-health') return reply(res, hec(blocked || pending >= opts.maxPendingRequests ? HEC.unhealthy() : HEC.healthy()));
    if (req.method !== 'POST') return reply(res, { ...plain(405, 'use POST'), headers: { allow: 'POST' } });
    if (url.searchParams.has('token')) {
      drop('auth');
      return reply(res, isHec ? hec(HEC.queryStringAuth()) : plain(400, 'tokens go in the Authorization header, never in the URL'));
    }
    const auth = authenticate(req, tokens.current, ['Splunk']);
    if (!auth.ok) {
      drop('auth');
      refusedLog('auth', { remote: req.socket.remoteAddress, token: auth.why }, `HTTP input: request with a ${auth.why} token refused`);
      if (isHec) return reply(res, hec(auth.why === 'missing' ? HEC.tokenRequired() : auth.why === 'malformed' ? HEC.invalidAuthorization() : HEC.invalidToken()));
      return reply(res, plain(auth.why === 'invalid' ? 403 : 401, `${auth.why} token`, { 'www-authenticate': 'Bearer' }));
    }
    const tok = byName.get(auth.token)!;
    if (!tok.endpoints.has(isHec ? 'hec' : 'sightings')) {
      drop('notAllowed');
      return reply(res, isHec ? hec(HEC.notAllowed()) : plain(403, `token ${auth.token} may not send sightings`));
    }
    if (ep === 'hec-ack') return reply(res, hec(HEC.ackDisabled()));

    // a retry of a request we already committed: its answer again, nothing applied twice
    const idem = req.headers['idempotency-key'];
    let posKey: string | undefined;
    let prev: (Answer & { sha?: string }) | undefined;
    if (typeof idem === 'string' && idem !== '') {
      if (idem.length > 255 || /[^\x21-\x7e]/.test(idem)) return reply(res, plain(400, 'Idempotency-Key: at most 255 printable ASCII characters'));
      // (the HEC body digests are kept under this prefix: a client's key there would answer for them)
      if (idem.startsWith(HEC_DIGEST_PREFIX)) return reply(res, plain(400, `Idempotency-Key: ${HEC_DIGEST_PREFIX} is reserved`));
      posKey = `${name}:idem:${auth.token}:${idem}`;
      prev = (await store.position(posKey)) as (Answer & { sha?: string }) | undefined;
      // (an answer stored before its body's digest was kept: replayed unread, as then)
      if (prev && prev.sha === undefined) {
        event('replayed');
        req.resume();
        return reply(res, { ...prev, headers: { 'idempotent-replayed': 'true' } });
      }
      if (!prev && inflightKeys.has(posKey)) {
        req.resume();
        return reply(res, plain(409, 'a request with this Idempotency-Key is in progress'));
      }
    }
    // (a repeat's body is read too, to compare it: it waits its turn as any request does)
    if (closed || blocked || pending >= opts.maxPendingRequests) {
      req.resume();
      return reply(res, busy(isHec));
    }
    pending++;
    /** the key this request holds in flight (a repeat holds none: the first one's answer is stored) */
    let ownKey: string | undefined;
    if (posKey && !prev) inflightKeys.add((ownKey = posKey));
    /** settles once the request's lines are committed or given up (not when its answer times out) */
    let settled: Promise<void> | undefined;
    try {
      const body = await readBody(req, opts.maxBodyBytes);
      if (!body.ok) {
        drop(body.why);
        if (body.why === 'aborted') return;
        refusedLog(body.why, { token: auth.token }, `HTTP input: ${body.message}`);
        if (body.why === 'tooLarge') return reply(res, isHec ? hec(HEC.tooLarge(opts.maxBodyBytes)) : plain(413, body.message));
        if (body.why === 'badEncoding') return reply(res, plain(415, body.message));
        return reply(res, isHec ? hec(HEC.invalidDataFormat()) : plain(400, body.message));
      }
      if (prev) {
        // the same key with another body (or to another endpoint) is not a retry: its data would be lost under the
        // first answer (IETF draft-ietf-httpapi-idempotency-key-header: 422)
        if (bodyDigest(ep, body.body) !== prev.sha) {
          drop('keyReused');
          refusedLog('keyReused', { token: auth.token }, 'HTTP input: an Idempotency-Key came again with another body; refused');
          return reply(res, plain(422, 'Idempotency-Key already used for a request with another body'));
        }
        event('replayed');
        return reply(res, { status: prev.status, body: prev.body, headers: { 'idempotent-replayed': 'true' } });
      }
      // HEC has no idempotency key: a client's retry of a request committed just before a crash
      // would be applied again. An exact repeat of a HEC body from the same token within
      // HEC_REPEAT_MS, with no other body committed from the token in between (or none known: a
      // restart, the crash's retry), is that retry: it gets the first answer and is not applied
      // twice. With another body between, it is news: a NAC's tunnel-up, tunnel-down, tunnel-up
      // without times, or a raw line with no time, was answered 200 and dropped, the device gone.
      let repeatAt: number | undefined;
      if (isHec && !posKey) {
        const k = `${name}:idem:${auth.token}:${HEC_DIGEST_PREFIX}${bodyDigest(ep, body.body)}`;
        const first = (await store.position(k)) as (Answer & { at?: number }) | undefined;
        if (first?.at !== undefined && Date.now() - first.at < HEC_REPEAT_MS && (lastHecBody.get(auth.token) ?? k) === k) {
          event('replayed');
          return reply(res, { status: first.status, body: first.body, headers: { 'idempotent-replayed': 'true' } });
        }
        if (inflightKeys.has(k)) return reply(res, busy(isHec)); // the original is still being committed
        posKey = k;
        inflightKeys.add((ownKey = k));
        repeatAt = Date.now();
      }
      const receivedAt = new Date();
      const source = `${name}:${auth.token}`;
      // (canonical, as the syslog inputs give theirs: ::ffff:10.0.0.7 on a dual-stack listener is 10.0.0.7, so the
      // cluster inbox's origin is one string whichever way a node listens)
      const sender = canonicalIp(req.socket.remoteAddress) ?? req.socket.remoteAddress;
      const lines: RawLine[] = [];
      const fail = (why: string, a: Answer) => {
        drop(why);
        refusedLog(why, { token: auth.token, answer: a.body }, 'HTTP input: request refused');
        return reply(res, a);
      };
      if (ep === 'hec-event') {
        const p = parseHecEvents(body.body);
        if (!p.ok) return fail(p.answer.body.code === 5 ? 'empty' : 'badJson', hec(p.answer));
        let binary = 0;
        for (let n = 0; n < p.events.length; n++) {
          const e = p.events[n];
          // (an event time more than a few minutes ahead is the receive time, as a live syslog line's
          // is (placeAtReceipt: a forged stamp hid the address's genuine lines), and so is one
          // before 2000: a forwarder whose clock was never set, 1970, counted as clockUnset)
          const clockUnset = e.timeMs !== undefined && e.timeMs < CLOCK_SET_FROM_MS;
          if (clockUnset) event('clockUnset');
          const at = e.timeMs !== undefined && !clockUnset && e.timeMs <= receivedAt.getTime() + SKEW_MS ? new Date(e.timeMs) : receivedAt;
          if (e.sighting) {
            const c = checkSighting(e.sighting, source, at, receivedAt);
            if (!c.ok) return fail('badSighting', hec({ status: 400, body: { text: `Invalid data format: ${c.error}`, code: 6, 'invalid-event-number': n } }));
            lines.push({ text: JSON.stringify(e.sighting), receivedAt: at, source, sender, sightings: [c.sighting] });
          } else if (e.line !== undefined) {
            // (not a log line, as syslog's frameText judges, or only bytes that were not UTF-8: dropped as binary, the rest of the request kept; a NUL would reach the store)
            if (!isReadableEventLine(e.line)) {
              drop('binary');
              binary++;
            } else lines.push({ text: e.line, receivedAt: at, source, sender, format: opts.format });
          } else drop('noLine');
        }
        // (every event unreadable, each counted as binary above: Success would say data was taken, as /raw's; an event
        // with no line field is well formed and still answered Success)
        if (binary === p.events.length) {
          const a = hec(HEC.invalidDataFormat(0));
          refusedLog('binary', { token: auth.token, answer: a.body }, `HTTP input: event body with no readable event (${binary} binary or not UTF-8) refused`);
          return reply(res, a);
        }
      } else if (ep === 'hec-raw') {
        const raw = splitRawLines(body.body);
        if (!raw.length) return fail('empty', hec(HEC.noData()));
        for (const text of raw) {
          if (!isReadableRawLine(text)) drop('binary');
          else lines.push({ text, receivedAt, source, sender, format: opts.format });
        }
        // (no line to read, each counted as binary above: Success would say data was taken; Splunk answers a body it cannot read so)
        if (!lines.length) {
          const a = hec(HEC.invalidDataFormat());
          refusedLog('binary', { token: auth.token, answer: a.body }, `HTTP input: raw body with no readable line (${raw.length} binary or not UTF-8) refused`);
          return reply(res, a);
        }
      } else {
        // (RFC 8259 §8.1: JSON between systems is UTF-8; bytes read as U+FFFD would be stored as names)
        if (body.notUtf8) return fail('badJson', plain(400, `line ${body.notUtf8.line}: not UTF-8 (JSON is UTF-8, RFC 8259 §8.1)`));
        const p = parseSightingBody(body.body);
        if (!p.ok) return fail(p.error === 'empty body' ? 'empty' : 'badJson', plain(400, p.error));
        for (let n = 0; n < p.items.length; n++) {
          const c = checkSighting(p.items[n], source, receivedAt);
          if (!c.ok) return fail('badSighting', plain(400, `item ${n}: ${c.error}`));
          lines.push({ text: JSON.stringify(p.items[n]), receivedAt, source, sender, sightings: [c.sighting] });
        }
      }
      // (Sighting JSON says how many of them the token's allow-list leaves out: counted as notAllowed, never stored)
      const notAllowed = !isHec && tok.accept ? lines.filter((l) => !tok.accept!(l.sightings![0])).length : 0;
      const answer: Answer = isHec ? hec(HEC.success()) : { status: 200, body: { status: 'ok', received: lines.length, ...(notAllowed ? { notAllowed } : {}) } };
      const sha = posKey && !repeatAt ? { sha: bodyDigest(ep, body.body) } : {};
      // (any body of the token's, once committed, answered or not: a HEC body repeated after it is news;
      // the repeat of a body whose answer timed out, committed later, is still its retry: review)
      const mine = posKey ?? `#${++bodies}`;
      const c = commit(lines, tok.accept, posKey ? { key: posKey, value: { status: answer.status, body: answer.body, ...(repeatAt !== undefined ? { at: repeatAt } : {}), ...sha } } : undefined,
        () => lastHecBody.set(auth.token, mine));
      settled = c.settled;
      await c.answered
        .then(() => reply(res, answer), (err: Error & { refused?: boolean }) => {
          // the store refused the content itself (Ingest's data-error net): a retry would be refused again
          if (err.refused) return fail('refused', isHec ? hec(HEC.invalidDataFormat()) : plain(400, 'the state database refused this data'));
          log.warn({ err: { message: err.message } }, 'HTTP input: request not committed; asking the client to retry');
          reply(res, busy(isHec));
        });
    } finally {
      pending--;
      // A request answered 503 on commitTimeoutS still has its lines in the ingest queue, and they
      // may commit later: its key stays in flight until they do (or are given up), so a retry
      // meanwhile gets 409 (HEC: 503) and, once they are in, the stored answer; never both copies.
      const k = ownKey;
      if (k && settled) void settled.then(() => inflightKeys.delete(k));
      else if (k) inflightKeys.delete(k);
    }
  }

  /**
   * Push the request's lines as one commit group. `answered`: resolves once its transaction is
   * durable, rejects when it failed or took longer than commitTimeoutS (the lines are still
   * queued then, and may commit later); `settled`: once the ingest is done with the group.
   */
  function commit(lines: RawLine[], accept: ((s: Sighting) => boolean) | undefined, position?: { key: string; value: unknown }, onCommitted?: () => void): { answered: Promise<void>; settled: Promise<void> } {
    let refused = 0;
    let settle!: () => void;
    const settled = new Promise<void>((r) => (settle = r));
    const p = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // an event, not a drop: the lines are still queued and normally commit later
        event('commitTimeout');
        reject(new Error(`not committed within ${opts.commitTimeoutS} s`));
      }, opts.commitTimeoutS * 1000);
      const group: CommitGroup = {
        position,
        accept: accept && ((s) => accept(s) || (refused++, false)),
        committed: () => {
          clearTimeout(timer);
          if (refused) drop('notAllowed', refused);
          onCommitted?.();
          settle();
          resolve();
        },
        failed: (err) => {
          clearTimeout(timer);
          settle();
          reject(err);
        },
      };
      counters.received += lines.length;
      // a group needs a line to travel on, even when the request had nothing to read (not counted received)
      if (!lines.length) lines.push({ text: '', receivedAt: new Date(), source: name, sightings: [] });
      let ok = true;
      for (const l of lines) {
        l.group = group; // the lines were made for this request: no copy
        ok = sink.push(l) && ok;
      }
      if (!ok && !blocked) {
        blocked = true;
        event('paused');
        sink.onDrain(() => (blocked = false));
      }
    });
    const w = p.then(() => undefined, () => undefined);
    waiting.add(w);
    void w.then(() => waiting.delete(w));
    maybePrune();
    return { answered: p, settled };
  }

  function maybePrune(): void {
    const now = Date.now();
    if (now - lastPrune < 600_000) return;
    lastPrune = now;
    const failed = (err: Error) => log.warn({ err: { message: err.message } }, 'could not prune old idempotency keys');
    store.prunePositions(`${name}:idem:`, now - opts.idempotencyTtlS * 1000).catch(failed);
    // a HEC body's key only answers a repeat within HEC_REPEAT_MS: kept no longer than that (one
    // row per HEC request, idempotencyTtlS would keep a day of them)
    for (const t of opts.tokens) store.prunePositions(`${name}:idem:${t.name}:${HEC_DIGEST_PREFIX}`, now - HEC_REPEAT_MS).catch(failed);
  }

  // (a fault of ours: counted, and logged at most once a minute, as refusals are: a request that hits one would otherwise write a line each time)
  const web = createWebServer(opts, (req, res) => {
    handle(req, res).catch((err: Error) => {
      event('internalError');
      if (limit.take('internalError') !== undefined) {
        log.error({ err: { message: err.message }, count: counters.events.internalError }, 'HTTP input: request failed (logged at most once a minute)');
      }
      reply(res, hec(HEC.internalError()));
    });
  });
  const server = web.server;
  server.headersTimeout = 10_000;
  server.requestTimeout = Math.max(60_000, (opts.commitTimeoutS + 30) * 1000);
  server.keepAliveTimeout = 30_000;
  // (one more than we take: a request past MAX_REQUEST_HEADERS is refused, not read with its last headers dropped)
  server.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  const a = await listenOn(server, host, port);
  name = `http:${a.port}`;
  server.on('error', (err) => log.warn({ err: { message: err.message } }, 'HTTP input server error'));
  log.info({ tls: web.scheme === 'https', tokens: opts.tokens.map((t) => t.name) }, `HTTP input (HEC and Sighting JSON) on ${web.scheme}://${opts.listen.replace(/:\d+$/, '')}:${a.port}`);

  return {
    get name() {
      return name;
    },
    address: { host: a.host, port: a.port },
    counters(): SourceCounters {
      return { received: counters.received, dropped: { ...counters.dropped }, events: { ...counters.events } };
    },
    async reload() {
      // tokens re-read with the certificates (a token revoked by rewriting its file kept working until
      // a restart); either failing keeps what was running
      reloadBoth(() => web.reload(), () => tokens.reload());
    },
    async close() {
      closed = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // requests already read are answered once their commit is done (or refused)
      await Promise.race([Promise.all([...waiting]), new Promise((r) => setTimeout(r, 5000).unref())]);
      server.closeAllConnections();
      await stopped;
    },
  };
}
