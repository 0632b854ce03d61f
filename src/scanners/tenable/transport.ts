/**
 * HTTP to Tenable: the X-ApiKeys header on every call, JSON in and out, timeouts, and Tenable's
 * limits. A 429 (rate limit, or the container's active-scan limit on launch) was refused before it
 * ran, so it is retried after Retry-After when that is short; a longer one blocks every call until
 * it ends (developer.tenable.com: "Rate Limiting", "Concurrency Limiting").
 */
import type { Logger } from '../../log.js';
import { backoffMs, sleep } from '../qualys/backoff.js';
import { TenableError } from './errors.js';

export interface TransportOptions {
  baseUrl: string;
  apiKeys: string;
  timeoutMs: number;
  maxRetryAfterS: number;
  /** attempts for 5xx and network failures of calls that are safe to repeat */
  maxAttempts: number;
  baseDelayMs: number;
  log: Logger;
  now?: () => number;
}

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** false for calls that change something (copy, launch, create): never repeated when their outcome is unknown */
  idempotent: boolean;
}

const MAX_BODY = 32 * 1024 * 1024;

export class TenableTransport {
  private readonly base: URL;
  private readonly closing = new AbortController();
  /** epoch ms before which Tenable told us to make no call */
  blockedUntil = 0;

  constructor(private readonly o: TransportOptions) {
    let u: URL;
    try {
      u = new URL(o.baseUrl);
    } catch {
      throw new TypeError('tenable url is not a valid URL');
    }
    if (u.username || u.password) throw new TypeError('tenable url must not contain credentials; use apiKeysFile, apiKeysEnv or credential');
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`tenable url must be http(s), not ${u.protocol}`);
    this.base = new URL(u.origin);
  }

  get signal(): AbortSignal {
    return this.closing.signal;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  async call<T>(method: string, path: string, c: CallOptions): Promise<T> {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const what = `tenable ${method} ${path}`;
    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) throw new TenableError('ONSIGHT_CLOSED', 'tenable client closed', { next: 'retry', ambiguous: false });
      const wait = this.blockedUntil - this.now();
      if (wait > 0) {
        throw new TenableError('ONSIGHT_SCANNER_RATE_LIMIT', `${what}: not sent, Tenable asked to wait ${Math.ceil(wait / 1000)} s more`, { next: 'wait', retryAfterSec: wait / 1000 });
      }
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: { 'X-ApiKeys': this.o.apiKeys, Accept: 'application/json', ...(c.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
          body: c.body !== undefined ? JSON.stringify(c.body) : undefined,
          signal: AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.o.timeoutMs)]),
          redirect: 'error', // a redirect would carry our keys elsewhere
        });
      } catch (err) {
        const e = new TenableError('ONSIGHT_SCANNER_UNREACHABLE', `${what}: ${(err as Error).name === 'TimeoutError' ? 'timed out' : 'no answer'} (${describe(err)})`, { next: 'retry', ambiguous: !c.idempotent, cause: err });
        if (c.idempotent && attempt < this.o.maxAttempts && !this.closing.signal.aborted) {
          await this.pause(backoffMs(attempt, { baseDelayMs: this.o.baseDelayMs, maxDelayMs: 30_000 }));
          continue;
        }
        throw e;
      }
      let text: string;
      try {
        text = await readCapped(res);
      } catch (err) {
        throw new TenableError('ONSIGHT_SCANNER_UNREACHABLE', `${what}: answer cut short (${describe(err)})`, { next: 'retry', ambiguous: !c.idempotent, status: res.status, cause: err });
      }
      if (res.status === 429) {
        const sec = retryAfterSec(res.headers.get('retry-after'), this.now()) ?? 60;
        if (sec <= this.o.maxRetryAfterS && attempt < this.o.maxAttempts + 5) {
          this.o.log.info({ path, retryAfterSec: sec }, 'tenable: 429, waiting as told');
          await this.pause(sec * 1000);
          continue;
        }
        this.blockedUntil = Math.max(this.blockedUntil, this.now() + sec * 1000);
        throw new TenableError('ONSIGHT_SCANNER_RATE_LIMIT', `${what}: 429 Too Many Requests, retry after ${sec} s (rate or active-scan limit)`, { status: 429, next: 'wait', retryAfterSec: sec });
      }
      if (res.status === 401 || res.status === 403) {
        throw new TenableError('ONSIGHT_SCANNER_DENIED', `${what}: ${res.status} ${res.status === 401 ? 'the API keys were refused (check them, and that the user is enabled)' : 'the API user lacks the permission for this call'}`, { status: res.status, next: 'stop' });
      }
      if (res.status >= 500) {
        const e = new TenableError('ONSIGHT_SCANNER', `${what}: ${res.status} ${snippet(text)}`, { status: res.status, next: 'retry', ambiguous: !c.idempotent });
        if (c.idempotent && attempt < this.o.maxAttempts) {
          await this.pause(backoffMs(attempt, { baseDelayMs: this.o.baseDelayMs, maxDelayMs: 30_000 }));
          continue;
        }
        throw e;
      }
      if (res.status >= 400) {
        throw new TenableError('ONSIGHT_SCANNER_REFUSED', `${what}: ${res.status} ${snippet(text)}`, { status: res.status, next: 'retry' });
      }
      if (text.trim() === '') return {} as T;
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        const e = new TenableError('ONSIGHT_SCANNER', `${what}: unreadable answer (${snippet(text)})`, { status: res.status, next: 'retry', ambiguous: !c.idempotent, cause: err });
        if (c.idempotent && attempt < this.o.maxAttempts) continue;
        throw e;
      }
    }
  }

  async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, this.closing.signal);
    } catch {
      throw new TenableError('ONSIGHT_CLOSED', 'tenable client closed', { next: 'retry', ambiguous: false });
    }
  }

  close(): void {
    this.closing.abort(new Error('closed'));
  }
}

/** Retry-After as seconds, or an HTTP date (RFC 9110); undefined when absent or unreadable. */
export function retryAfterSec(v: string | null, now: number): number | undefined {
  if (v === null || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - now) / 1000)) : undefined;
}

async function readCapped(res: Response): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > MAX_BODY) throw new Error(`answer of ${len} bytes is too large`);
  const text = await res.text();
  if (text.length > MAX_BODY) throw new Error('answer too large');
  return text;
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 200)}…` : t || '(empty body)';
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
