/**
 * One Qualys call, done properly: basic auth and X-Requested-With on every request, a keep-alive
 * undici pool with connect/headers/body timeouts, the allowance gate around every exchange, 409
 * waits, jittered retries of 5xx and network failures, and every failure turned into a typed
 * error. A call that must not be repeated blindly (launch) is never retried here once it may
 * have reached Qualys: it fails with `ambiguous: true` and the caller reconciles.
 */
import { Pool } from 'undici';
import type { Logger } from '../../log.js';
import type { QualysAllowance } from './allowance.js';
import { backoffMs, sleep } from './backoff.js';
import {
  ClientClosedError, QualysApiError, QualysAuthError, QualysError, QualysHttpError, QualysNetworkError,
  QualysNotInSubscriptionError, QualysPagingError, QualysRateLimitError, QualysXmlError,
} from './errors.js';
import { ENDPOINT_API, nextPageRefusal, type QualysApi, type QualysEndpoint, type ResolvedOptions } from './options.js';
import { parseXml, simpleReturn, type XmlNode } from './xml.js';
import type { SendGuard } from '../backend.js';
import { MAX_WAIT_SEC } from '../types.js';

export interface CallSpec {
  /** which call: its path (and version) comes from the endpoints option, its budget from ENDPOINT_API */
  endpoint: QualysEndpoint;
  method: 'GET' | 'POST';
  params?: Record<string, string | undefined>;
  /** absolute URL of a next page given by Qualys (our origin, or https on a host of the same platform) */
  url?: string;
  /** may the call be sent again after it possibly reached Qualys? */
  idempotent: boolean;
  /** root elements of a successful answer */
  expect: string[];
  /** run right before each attempt is sent (after any wait): throws to send nothing (a launch's targets checked against the policy as it is then) */
  beforeSend?: () => void;
}

export interface CallResult {
  status: number;
  root: string;
  doc: XmlNode;
}

interface Exchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const THROTTLE_CODES = new Set([1960, 1965, 1920]);
/** failures where the request cannot have reached Qualys */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

type Outcome =
  | { kind: 'ok'; result: CallResult }
  | { kind: 'throttle'; code?: number; text?: string; status: number; waitSec?: number; waitFrom?: 'header' | 'body'; callsToFinish?: number }
  /** mayHaveRun: the request may have been processed (a retry of an idempotent call follows) */
  | { kind: 'fail'; error: QualysError; mayHaveRun?: boolean };

/** Account problems in words (CODEs from the guide's Appendix D; 2001 arrives with HTTP 200, 2003/2011 with 409). */
const AUTH_WORDS: Record<number, string> = {
  2000: 'Qualys refused the login: wrong username or password, or the URL is not the API host of your platform',
  2001: 'the Qualys account has expired: renew the subscription or configure another account',
  2002: 'the Qualys user account is inactive: an administrator must reactivate it',
  2003: 'the Qualys account has not completed its registration: log in to the Qualys web UI once to finish it',
  2011: 'the Qualys account requires SecureID, which blocks API access: use an API account without SecureID',
  2012: 'the Qualys user\'s licence does not allow this API: ask Qualys to enable API access',
};
const AUTH_CODES = new Set(Object.keys(AUTH_WORDS).map(Number));

export class QualysTransport {
  /** one keep-alive pool per origin: the base URL's, and platform hosts that next-page URLs name */
  private readonly pools = new Map<string, Pool>();
  private readonly authorization: string;
  private readonly scrubList: string[];
  private readonly closing = new AbortController();

  constructor(
    private readonly o: ResolvedOptions,
    credentials: { username: string; password: string },
    private readonly allowance: QualysAllowance,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
    /** cluster mode: checked right before each attempt; its signal ends waits when leadership ends */
    private readonly guard?: SendGuard,
  ) {
    const token = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    this.authorization = `Basic ${token}`;
    this.scrubList = [credentials.password, token].filter((s) => s.length >= 3);
    this.pool(o.baseUrl.origin);
  }

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: this.o.connections,
        connect: { timeout: this.o.connectTimeoutMs },
        headersTimeout: this.o.headersTimeoutMs,
        bodyTimeout: this.o.bodyTimeoutMs,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  get signal(): AbortSignal {
    return this.closing.signal;
  }

  async close(): Promise<void> {
    if (!this.closing.signal.aborted) this.closing.abort(new ClientClosedError());
    this.allowance.notify();
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
  }

  /** Removes anything secret from a text that may end up in a log line or an error message. */
  scrub(s: string): string {
    let out = s;
    for (const secret of this.scrubList) out = out.split(secret).join('[redacted]');
    return out;
  }

  async call(spec: CallSpec): Promise<CallResult> {
    const api = ENDPOINT_API[spec.endpoint];
    const { origin, path, query, body } = this.target(spec);
    const action = spec.params?.action ?? new URLSearchParams(query).get('action') ?? '';
    const label = `qualys ${api} ${action}`.trim();
    let attempt = 0;
    let throttles = 0;
    // an idempotent call is retried after an attempt that may have been processed (its answer lost, a 5xx):
    // whatever the call then fails with, what it asked may have been done
    let earlierMayHaveRun = false;
    const term = this.guard?.signal();
    const waits = term ? AbortSignal.any([this.closing.signal, term]) : this.closing.signal;
    try {
      for (;;) {
        attempt++;
        const ticket = await this.allowance.acquire(api, {
          signal: waits,
          maxWaitMs: this.o.throttle.maxWaitSec * 1000,
          onTooLong: (ms) => new QualysRateLimitError(`${label}: the API is blocked for another ${spell(ms / 1000)} (rate limit); not asking Qualys before then`, { waitSec: ms / 1000 }),
        });
        try {
          this.guard?.check(label); // after the gate, right before the socket write: a wait can outlast a lease
          spec.beforeSend?.(); // a reload during the wait may have excluded a target
        } catch (err) {
          ticket.release();
          throw err;
        }
        const started = Date.now();
        let ex: Exchange;
        try {
          ex = await this.exchange(spec.method, origin, path, query, body);
          this.allowance.update(api, ex.headers);
        } catch (err) {
          const late = (err as { headers?: Exchange['headers'] }).headers;
          if (late) this.allowance.update(api, late);
          ticket.release();
          if (this.closing.signal.aborted) throw new ClientClosedError();
          const { error: e, sent } = this.networkError(label, err, spec.idempotent);
          this.log.debug({ api, action, attempt, ms: Date.now() - started, err: { code: e.code, message: e.message } }, 'qualys call failed');
          if (e.retryable && !e.ambiguous && attempt < this.o.retry.maxAttempts) {
            earlierMayHaveRun ||= sent;
            await this.pause(backoffMs(attempt, this.o.retry, this.random), waits);
            continue;
          }
          throw e;
        }
        ticket.release();
        this.log.debug(
          {
            api, action, method: spec.method, status: ex.status, attempt, ms: Date.now() - started, bytes: ex.body.length,
            rateRemaining: ex.headers['x-ratelimit-remaining'], concurrencyRunning: ex.headers['x-concurrency-limit-running'],
          },
          'qualys call',
        );
        const outcome = this.interpret(label, spec, ex);
        if (outcome.kind === 'ok') return outcome.result;
        if (outcome.kind === 'throttle') {
          throttles++;
          attempt--; // a throttled call did not run; it does not use up a retry
          const waitSec = this.throttleWait(api, outcome);
          if (throttles > this.o.throttle.maxRetries || waitSec > this.o.throttle.maxWaitSec) {
            const what = outcome.code === 1960
              ? `too many calls to this API are running (concurrency limit${outcome.callsToFinish !== undefined ? `; ${outcome.callsToFinish} must finish first` : ''})`
              : `the API is blocked for ${spell(waitSec)} (rate limit${outcome.waitFrom ? `, as the ${outcome.waitFrom === 'header' ? 'X-RateLimit-ToWait-Sec header' : 'answer\'s SECONDS_TO_WAIT'} says` : ', no wait given: assumed'})`;
            throw new QualysRateLimitError(`${label}: throttled by Qualys (CODE ${outcome.code ?? '-'}): ${what}: ${this.scrub(outcome.text ?? 'HTTP 409')}`, {
              status: outcome.status, qualysCode: outcome.code, qualysText: outcome.text && this.scrub(outcome.text), waitSec, callsToFinish: outcome.callsToFinish,
            });
          }
          this.log.info({ api, action, code: outcome.code, waitSec }, 'qualys throttled; waiting');
          await this.pause(waitSec * 1000, waits);
          continue;
        }
        const e = outcome.error;
        if (e.retryable && !e.ambiguous && attempt < this.o.retry.maxAttempts) {
          earlierMayHaveRun ||= outcome.mayHaveRun === true;
          this.log.warn({ api, action, attempt, err: { code: e.code, message: e.message } }, 'qualys call failed; retrying');
          await this.pause(backoffMs(attempt, this.o.retry, this.random), waits);
          continue;
        }
        throw e;
      }
    } catch (err) {
      if (earlierMayHaveRun && err instanceof QualysError) err.earlierAttemptMayHaveRun = true;
      throw err;
    }
  }

  private throttleWait(api: QualysApi, t: Extract<Outcome, { kind: 'throttle' }>): number {
    if (t.waitFrom === 'header') return t.waitSec!; // the allowance already blocks the API (update())
    if (t.waitFrom === 'body' || t.code === 1965 || (t.code === undefined && t.callsToFinish === undefined)) {
      // a block can last most of a day: the whole client waits it out, never a call a minute
      const sec = t.waitFrom === 'body' ? t.waitSec! : this.o.throttle.missingToWaitSec;
      this.allowance.block(api, sec);
      return sec;
    }
    // 1960 (calls are running): no ToWait; back off briefly with jitter, longer when more must finish
    const ms = this.o.throttle.concurrencyBackoffMs * Math.max(1, Math.min(10, t.callsToFinish ?? 1));
    return (ms / 2 + (this.random() * ms) / 2) / 1000;
  }

  private async pause(ms: number, signal: AbortSignal = this.closing.signal): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (err) {
      if (this.closing.signal.aborted) throw new ClientClosedError();
      throw err; // leadership ended (FencedError)
    }
  }

  private target(spec: CallSpec): { origin: string; path: string; query: string; body?: string } {
    if (spec.url) {
      let u: URL;
      try {
        u = new URL(spec.url, this.o.baseUrl);
      } catch {
        throw new QualysXmlError(`qualys ${spec.endpoint}: next-page URL is not a URL`);
      }
      // our credentials go only to the platform: the base URL's origin, or https hosts of its domain
      const why = nextPageRefusal(this.o.baseUrl, u, this.o.platformDomains);
      if (why) {
        const shown = `${u.protocol}//${u.host}${u.pathname}`;
        throw new QualysPagingError(`qualys ${spec.endpoint}: not following the next-page URL ${shown} (${why}); the pages already read are dropped, not half used`, shown);
      }
      return { origin: u.origin, path: u.pathname, query: u.search.replace(/^\?/, '') };
    }
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.params ?? {})) if (v !== undefined) params.set(k, v);
    const path = this.o.endpoints[spec.endpoint];
    const origin = this.o.baseUrl.origin;
    return spec.method === 'GET' ? { origin, path, query: params.toString() } : { origin, path, query: '', body: params.toString() };
  }

  private async exchange(method: 'GET' | 'POST', origin: string, path: string, query: string, body?: string): Promise<Exchange> {
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.o.requestTimeoutMs)]);
    const res = await this.pool(origin).request({
      path: query ? `${path}?${query}` : path,
      method,
      headers: {
        authorization: this.authorization,
        'x-requested-with': this.o.requestedWith,
        accept: 'application/xml, text/xml',
        ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
      signal,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.o.maxResponseBytes) throw Object.assign(new Error(`answer larger than ${this.o.maxResponseBytes} bytes`), { code: 'ONSIGHT_TOO_LARGE', afterHeaders: true });
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      res.body.destroy();
      // headers arrived: the request was certainly received; keep the limit headers
      throw Object.assign(err instanceof Error ? err : new Error(String(err)), { afterHeaders: true, headers: res.headers });
    }
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
  }

  /** The failure, and whether the request may have reached Qualys (`sent`). */
  private networkError(label: string, err: unknown, idempotent: boolean): { error: QualysError; sent: boolean } {
    const e = err as Error & { code?: string; afterHeaders?: boolean; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code ?? e.name ?? 'error';
    const sent = e.afterHeaders === true || !NOT_SENT.has(code);
    const reason = e.name === 'TimeoutError' ? 'request timed out' : this.scrub(e.message ?? String(err));
    return { error: new QualysNetworkError(`${label}: network failure (${code}): ${reason}`, { ambiguous: sent && !idempotent }), sent };
  }

  private interpret(label: string, spec: CallSpec, ex: Exchange): Outcome {
    const parsed = parseXml(ex.body);
    const sr = parsed.ok && parsed.root === 'SIMPLE_RETURN' ? simpleReturn(parsed.doc) : undefined;
    const code = sr?.code;
    const qtext = sr?.text === undefined ? undefined : this.scrub(sr.text);
    const waitHeader = Number(ex.headers['x-ratelimit-towait-sec']);
    const details = { status: ex.status, qualysCode: code, qualysText: qtext };
    const what = `${label}: HTTP ${ex.status}${code !== undefined ? `, CODE ${code}` : ''}${qtext ? `: ${qtext}` : ''}`;
    const ambiguous = !spec.idempotent;

    // account problems first: Qualys sends 2003/2011 with status 409 and 2001 with status 200
    if (code !== undefined && AUTH_CODES.has(code)) return { kind: 'fail', error: new QualysAuthError(`${label}: ${AUTH_WORDS[code]} (HTTP ${ex.status}, CODE ${code}: ${qtext ?? ''})`, details) };
    if ((code !== undefined && THROTTLE_CODES.has(code)) || (ex.status === 409 && code === undefined)) {
      const header = Number.isFinite(waitHeader) && waitHeader > 0 ? Math.min(waitHeader, MAX_WAIT_SEC) : undefined;
      const told = positive(sr?.items.get('SECONDS_TO_WAIT')?.[0]);
      const body = told === undefined ? undefined : Math.min(told, MAX_WAIT_SEC);
      const waitSec = header ?? body;
      return {
        kind: 'throttle', code, text: qtext, status: ex.status, waitSec, waitFrom: header !== undefined ? 'header' : body !== undefined ? 'body' : undefined,
        callsToFinish: positive(sr?.items.get('CALLS_TO_FINISH')?.[0]),
      };
    }
    if (ex.status === 401) return { kind: 'fail', error: new QualysAuthError(`${label}: ${AUTH_WORDS[2000]} (${what})`, details) };
    if (ex.status === 202 || code === 1981) return { kind: 'fail', mayHaveRun: true, error: new QualysApiError(what, { ...details, retryable: true, ambiguous }) };
    if (code === 1999 || ex.status === 503) return { kind: 'fail', error: new QualysApiError(what, { ...details, retryable: true }) };
    if (ex.status >= 500) {
      const msg = parsed.ok ? what : `${what || label}: ${ex.body.length} byte(s) of non-XML`;
      return { kind: 'fail', mayHaveRun: true, error: new QualysHttpError(msg, { ...details, retryable: true, ambiguous }) };
    }
    if (!parsed.ok) {
      const err = ex.status < 300
        ? new QualysXmlError(`${label}: malformed XML in HTTP ${ex.status} answer (${parsed.reason})`, { status: ex.status, retryable: true, ambiguous })
        : new QualysHttpError(`${label}: HTTP ${ex.status} without a Qualys error document`, { status: ex.status });
      return { kind: 'fail', mayHaveRun: ex.status < 300, error: err };
    }
    if (code !== undefined || ex.status >= 400) {
      if (qtext && this.o.notInSubscriptionPattern.test(qtext)) return { kind: 'fail', error: new QualysNotInSubscriptionError(what, details) };
      if (code === undefined) return { kind: 'fail', error: new QualysHttpError(what, details) };
      return { kind: 'fail', error: new QualysApiError(what, details) };
    }
    if (!spec.expect.includes(parsed.root)) {
      return { kind: 'fail', mayHaveRun: true, error: new QualysXmlError(`${label}: unexpected answer <${parsed.root}> (wanted ${spec.expect.join(' or ')})`, { status: ex.status, retryable: true, ambiguous }) };
    }
    return { kind: 'ok', result: { status: ex.status, root: parsed.root, doc: parsed.doc } };
  }
}

function positive(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && v.trim() !== '' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** 68928 → "19 h 8 min 48 s (68928 s)": a wait an operator can read. */
export function spell(sec: number): string {
  const s = Math.ceil(sec);
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return `${[h ? `${h} h` : '', m ? `${m} min` : '', r ? `${r} s` : ''].filter(Boolean).join(' ')} (${s} s)`;
}
