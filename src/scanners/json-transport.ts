/**
 * JSON over HTTP(S) to a scanner's REST API (Tenable, Rapid7): the backend's auth header on every
 * call, an optional CA for a console's self-signed certificate (never "ignore TLS"), timeouts, no
 * redirects (they would carry the credentials elsewhere), and the failures in the seam's words at
 * the point they happen. A 429 was refused before it ran, so it is retried after Retry-After when
 * that is short; a longer one blocks every call until it ends (Tenable: developer.tenable.com
 * "Rate Limiting", "Concurrency Limiting"). A call whose own limit answers with the same 429 (a
 * launch past the active-scan limit: CallOptions.ownLimit) holds back only calls of its kind.
 */
import { Agent, fetch, type Response } from 'undici';
import { OnsightError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { backoffMs, sleep } from './qualys/backoff.js';
import { MAX_WAIT_SEC, type FailureOutcome, type ScannerCall } from './types.js';
import type { SendGuard } from './backend.js';

/** A failed call, already in the seam's words: may it have taken effect, and retry, wait or stop. */
export class ScannerHttpError extends OnsightError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly o: {
      status?: number;
      /** the call may have taken effect (a launch may exist) */
      ambiguous?: boolean;
      next: FailureOutcome['next'];
      /** seconds the API asked us to wait (429 Retry-After) */
      retryAfterSec?: number;
      /** the wait holds back calls of this kind only (a 429 that may be the call's own limit: CallOptions.ownLimit) */
      holdsCall?: boolean;
      cause?: unknown;
    },
  ) {
    super(code, message, { cause: o.cause });
  }

  get status(): number | undefined {
    return this.o.status;
  }
}

/** A REST backend's failures onto the seam (what ScannerHttpError says; our own refusals sent nothing). */
export function httpFailureOutcome(err: unknown, call: ScannerCall, now: number = Date.now()): FailureOutcome {
  const launch = call === 'launch';
  const message = err instanceof Error ? err.message : String(err);
  const out = (launched: FailureOutcome['launched'], next: FailureOutcome['next'], code: string, extra: Partial<FailureOutcome> = {}): FailureOutcome =>
    ({ launched: launch ? launched : 'no', next, code, message, ...extra });
  if (err instanceof ScannerHttpError) {
    if (err.o.next === 'wait') {
      // a 429 is refused before it runs: nothing was launched
      const sec = err.o.retryAfterSec;
      return sec && sec > 0 ? out('no', 'wait', err.code, { untilMs: now + Math.ceil(sec * 1000), ...(err.o.holdsCall ? { holds: 'call' as const } : {}) }) : out('no', 'retry', err.code);
    }
    return out(err.o.ambiguous ? 'unknown' : 'no', err.o.next, err.code);
  }
  if (!(err instanceof OnsightError)) return out('unknown', 'retry', 'ONSIGHT_SCANNER');
  // nothing sent: no credentials to send, targets refused by our own scope check, a launch we refused
  return out('no', err.code === 'ONSIGHT_CREDENTIALS' ? 'stop' : 'retry', err.code);
}

export interface TransportOptions {
  /** for messages: `tenable`, `rapid7` */
  vendor: string;
  baseUrl: string;
  /** the auth header(s) sent with every call */
  headers: Record<string, string>;
  /** PEM of the CA that signed the server's certificate (a console's self-signed one) */
  ca?: string;
  timeoutMs: number;
  maxRetryAfterS: number;
  /** attempts for 5xx and network failures of calls that are safe to repeat */
  maxAttempts: number;
  baseDelayMs: number;
  log: Logger;
  now?: () => number;
  /** cluster mode: checked right before each attempt; its term signal ends back-off waits (src/scanners/backend.ts) */
  sendGuard?: SendGuard;
}

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** false for calls that change something (copy, launch, create): never repeated when their outcome is unknown */
  idempotent: boolean;
  /**
   * A 429 here may be the call's own limit, not the rate limit: Tenable answers a launch past its 25
   * active scans with the same 429 and Retry-After (developer.tenable.com "Concurrency Limiting").
   * Such a 429 is neither waited out in place (a slot frees when a scan ends, not in seconds, and the
   * wait would hold polls and cancels back) nor held over every call: the failure holds back calls of
   * this kind only. Were it the rate limit, the next other call meets its own 429 and every call waits.
   */
  ownLimit?: boolean;
  /** run right before each attempt is sent (after any wait): throws to send nothing (a launch's targets checked against the policy as it is then) */
  beforeSend?: () => void;
}

const MAX_BODY = 32 * 1024 * 1024;

export class JsonTransport {
  private readonly base: URL;
  private readonly closing = new AbortController();
  private readonly agent: Agent;
  /** epoch ms before which the API told us (429 Retry-After) to make no call */
  blockedUntil = 0;
  /** what an answer must never carry into a message: the auth headers and their parts, in any case */
  private readonly secrets: RegExp | undefined;

  constructor(private readonly o: TransportOptions) {
    const secrets = secretsOf(Object.values(o.headers));
    this.secrets = secrets.length ? new RegExp(secrets.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gi') : undefined;
    let u: URL;
    try {
      u = new URL(o.baseUrl);
    } catch {
      throw new TypeError(`${o.vendor} url is not a valid URL`);
    }
    if (u.username || u.password) throw new TypeError(`${o.vendor} url must not contain credentials`);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`${o.vendor} url must be http(s), not ${u.protocol}`);
    this.base = new URL(u.pathname.endsWith('/') ? u.href : `${u.href}/`);
    this.agent = new Agent({ connect: o.ca ? { ca: o.ca } : {}, connections: 4 });
  }

  get signal(): AbortSignal {
    return this.closing.signal;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  async call<T>(method: string, path: string, c: CallOptions): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), this.base);
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const what = `${this.o.vendor} ${method} ${path}`;
    const term = this.o.sendGuard?.signal();
    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) throw new ScannerHttpError('ONSIGHT_CLOSED', `${this.o.vendor} client closed`, { next: 'retry', ambiguous: false });
      const wait = this.blockedUntil - this.now();
      if (wait > 0) {
        throw new ScannerHttpError('ONSIGHT_SCANNER_RATE_LIMIT', `${what}: not sent, ${this.o.vendor} asked to wait ${Math.ceil(wait / 1000)} s more`, { next: 'wait', retryAfterSec: wait / 1000 });
      }
      this.o.sendGuard?.check(what); // right before the socket write: a back-off can outlast a lease
      c.beforeSend?.(); // a reload during a wait may have excluded a target
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          dispatcher: this.agent,
          headers: { ...this.o.headers, Accept: 'application/json', ...(c.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
          body: c.body !== undefined ? JSON.stringify(c.body) : undefined,
          signal: AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.o.timeoutMs)]),
          redirect: 'error', // a redirect would carry our keys elsewhere
        });
      } catch (err) {
        const tls = tlsRefusal(err);
        // a certificate we do not trust is for an operator to settle (scanner.ca), never to retry around
        if (tls) throw new ScannerHttpError('ONSIGHT_SCANNER_UNREACHABLE', `${what}: the server's certificate is not trusted (${tls}); give its CA as scanner.ca`, { next: 'stop', cause: err });
        const e = new ScannerHttpError('ONSIGHT_SCANNER_UNREACHABLE', `${what}: ${(err as Error).name === 'TimeoutError' ? 'timed out' : 'no answer'} (${describe(err)})`, { next: 'retry', ambiguous: !c.idempotent, cause: err });
        if (c.idempotent && attempt < this.o.maxAttempts && !this.closing.signal.aborted) {
          await this.pause(backoffMs(attempt, { baseDelayMs: this.o.baseDelayMs, maxDelayMs: 30_000 }), term);
          continue;
        }
        throw e;
      }
      let text: string;
      try {
        text = await readCapped(res, this.closing.signal);
      } catch (err) {
        throw new ScannerHttpError('ONSIGHT_SCANNER_UNREACHABLE', `${what}: answer cut short (${describe(err)})`, { next: 'retry', ambiguous: !c.idempotent, status: res.status, cause: err });
      }
      if (res.status === 429) {
        const sec = retryAfterSec(res.headers.get('retry-after'), this.now()) ?? 60;
        if (c.ownLimit) {
          throw new ScannerHttpError('ONSIGHT_SCANNER_RATE_LIMIT', `${what}: 429 Too Many Requests, retry after ${sec} s (the active-scan limit or the rate limit; other calls go on)`, { status: 429, next: 'wait', retryAfterSec: sec, holdsCall: true });
        }
        if (sec <= this.o.maxRetryAfterS && attempt < this.o.maxAttempts + 5) {
          this.o.log.info({ path, retryAfterSec: sec }, `${this.o.vendor}: 429, waiting as told`);
          await this.pause(sec * 1000, term);
          continue;
        }
        this.blockedUntil = Math.max(this.blockedUntil, this.now() + sec * 1000);
        throw new ScannerHttpError('ONSIGHT_SCANNER_RATE_LIMIT', `${what}: 429 Too Many Requests, retry after ${sec} s (rate or active-scan limit)`, { status: 429, next: 'wait', retryAfterSec: sec });
      }
      if (res.status === 401 || res.status === 403) {
        throw new ScannerHttpError('ONSIGHT_SCANNER_DENIED', `${what}: ${res.status} ${res.status === 401 ? 'the credentials were refused (check them, and that the API user is enabled)' : 'the API user lacks the permission for this call'}`, { status: res.status, next: 'stop' });
      }
      if (res.status >= 500) {
        const e = new ScannerHttpError('ONSIGHT_SCANNER', `${what}: ${res.status} ${this.snippet(text)}`, { status: res.status, next: 'retry', ambiguous: !c.idempotent });
        if (c.idempotent && attempt < this.o.maxAttempts) {
          await this.pause(backoffMs(attempt, { baseDelayMs: this.o.baseDelayMs, maxDelayMs: 30_000 }), term);
          continue;
        }
        throw e;
      }
      if (res.status >= 400) {
        throw new ScannerHttpError('ONSIGHT_SCANNER_REFUSED', `${what}: ${res.status} ${this.snippet(text)}`, { status: res.status, next: 'retry' });
      }
      if (text.trim() === '') return {} as T;
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        const e = new ScannerHttpError('ONSIGHT_SCANNER', `${what}: unreadable answer (${this.snippet(text)})`, { status: res.status, next: 'retry', ambiguous: !c.idempotent, cause: err });
        if (c.idempotent && attempt < this.o.maxAttempts) continue;
        throw e;
      }
    }
  }

  /** The start of an answer for a message, with our credentials cut out (a proxy or WAF may echo request headers). */
  private snippet(text: string): string {
    let t = this.secrets ? text.replace(this.secrets, '[redacted]') : text;
    t = t.replace(/\s+/g, ' ').trim();
    return t.length > 200 ? `${t.slice(0, 200)}…` : t || '(empty body)';
  }

  async pause(ms: number, term?: AbortSignal): Promise<void> {
    try {
      await sleep(ms, term ? AbortSignal.any([this.closing.signal, term]) : this.closing.signal);
    } catch (err) {
      if (!this.closing.signal.aborted && term?.aborted) throw err; // leadership ended (FencedError)
      throw new ScannerHttpError('ONSIGHT_CLOSED', `${this.o.vendor} client closed`, { next: 'retry', ambiguous: false });
    }
  }

  close(): void {
    this.closing.abort(new Error('closed'));
    void this.agent.close().catch(() => undefined);
  }
}

/** Retry-After as seconds (at most MAX_WAIT_SEC), or an HTTP date (RFC 9110); undefined when absent or unreadable. */
export function retryAfterSec(v: string | null, now: number): number | undefined {
  if (v === null || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Math.min(Number(v.trim()), MAX_WAIT_SEC);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.min(MAX_WAIT_SEC, Math.max(0, Math.ceil((at - now) / 1000))) : undefined;
}

/** The body as text, refused as soon as it passes MAX_BODY (a body without Content-Length is read as it comes, not whole first). */
async function readCapped(res: Response, signal: AbortSignal): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > MAX_BODY) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`answer of ${len} bytes is too large`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    // (leaving the loop by a throw releases the body and its connection)
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > MAX_BODY || signal.aborted) throw new Error(signal.aborted ? 'closed' : `answer over ${MAX_BODY} bytes: not read further`);
      chunks.push(chunk);
    }
  }
  // (TextDecoder drops a leading BOM, as res.text() did: some front ends send one before JSON)
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * The secrets in auth header values: each value, its `k=v; k=v` parts and their values, and what a
 * `Basic` value decodes to and its password (an echo may carry any of them), each also as a URL and
 * a JSON string would carry it. Longest first, so a whole value is cut before its parts.
 */
function secretsOf(values: string[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    out.add(v);
    for (const part of v.split(/[;,\s]+/)) {
      out.add(part);
      const eq = part.indexOf('=');
      if (eq > 0) out.add(part.slice(eq + 1));
    }
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(v)?.[1];
    if (basic) {
      const plain = Buffer.from(basic, 'base64').toString('utf8');
      out.add(plain);
      if (plain.includes(':')) out.add(plain.slice(plain.indexOf(':') + 1));
    }
  }
  for (const s of [...out]) {
    out.add(encodeURIComponent(s));
    out.add(JSON.stringify(s).slice(1, -1));
  }
  // (the header's own words are no secret; the Qualys transport cuts passwords of 3 characters and more, as here)
  return [...out].filter((s) => s.length >= 3 && !/^(basic|bearer|accesskey|secretkey)$/i.test(s)).sort((a, b) => b.length - a.length);
}

const TLS_CODES = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_UNTRUSTED|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** The TLS verification code behind a failed fetch, if that is what failed. */
function tlsRefusal(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && TLS_CODES.test(e.code)) return e.code;
  }
  return undefined;
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
