/**
 * The Qualys client against REAL Qualys answers (recorded traffic and vendor samples), replayed byte
 * for byte from a loopback server. The samples live in ../shared/conformance/qualys/samples (see its
 * SOURCES.md) and are read from there, never copied into the repository; without them the suite
 * skips with a printed reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QualysAuthError, QualysClient, QualysRateLimitError, type QualysClientOptions } from '../src/scanners/qualys/index.js';
import { SHARED } from './helpers/paths.js';

const SAMPLES = join(SHARED, 'conformance', 'qualys', 'samples');
const present = existsSync(SAMPLES);
if (!present) console.log(`qualys-samples: skipped, ${SAMPLES} is absent (the real Qualys answers are read from ../shared)`);

const HOP = new Set(['transfer-encoding', 'connection', 'keep-alive', 'content-length', 'set-cookie']);
let server: Server;
let base = '';
let serve: (path: string) => string = () => 'j1-error-1905-400';
const seen: { method: string; path: string; query: string }[] = [];

beforeAll(async () => {
  if (!present) return;
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://replay');
      seen.push({ method: req.method ?? '', path: url.pathname, query: url.search });
      const name = serve(url.pathname);
      const meta = JSON.parse(readFileSync(join(SAMPLES, `${name}.json`), 'utf8')) as { status: number; headers?: [string, string][] };
      const headers: Record<string, string> = {};
      for (const [k, v] of meta.headers ?? []) if (!HOP.has(k.toLowerCase())) headers[k] = v;
      res.writeHead(meta.status, headers);
      res.end(readFileSync(join(SAMPLES, `${name}.body`)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  if (server) await new Promise((r) => server.close(r));
});

function client(o: Partial<QualysClientOptions> = {}): QualysClient {
  return new QualysClient({
    baseUrl: base, username: 'replay', password: 'replay-not-a-secret', optionProfile: 'Initial Options',
    retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 }, throttle: { maxWaitSec: 120, maxRetries: 2, concurrencyBackoffMs: 20 },
    reconcileDelayMs: 5, ...o,
  });
}

async function failure(name: string, fn: (c: QualysClient) => Promise<unknown>, o?: Partial<QualysClientOptions>) {
  serve = () => name;
  seen.length = 0;
  const c = client(o);
  try {
    await fn(c);
    throw new Error(`${name}: the call succeeded`);
  } catch (err) {
    return { err: err as Error & Record<string, unknown>, calls: seen.length, c };
  }
}

describe.skipIf(!present)('qualys client against real Qualys answers: accounts and limits', () => {
  it('409 CODE 2003 (registration not completed) is an account problem: one call, QualysAuthError in words, never a rate limit', async () => {
    const { err, calls, c } = await failure('j1-409-2003-registration', (x) => x.appliances());
    expect(err).toBeInstanceOf(QualysAuthError);
    expect(err.code).toBe('ONSIGHT_QUALYS_AUTH');
    expect(err.message).toMatch(/registration/);
    expect(calls).toBe(1);
    expect(c.allowance('appliance').waitSec).toBe(0); // its SECONDS_TO_WAIT item is not read as a block
    await c.close();
  });

  it('HTTP 200 with CODE 2001 is an expired account: QualysAuthError saying so', async () => {
    const { err, calls, c } = await failure('j1-auth-2001-expired-200', (x) => x.listScans({ scanRefs: ['scan/1.1'] }));
    expect(err).toBeInstanceOf(QualysAuthError);
    expect(err.message).toContain('the Qualys account has expired');
    expect(err.qualysCode).toBe(2001);
    expect(calls).toBe(1);
    await c.close();
  });

  it('401 CODE 2000 says what is wrong in words (password, or not the platform\'s API host)', async () => {
    const { err, calls, c } = await failure('j1-auth-2000-401', (x) => x.appliances());
    expect(err).toBeInstanceOf(QualysAuthError);
    expect(err.message).toMatch(/wrong username or password, or the URL is not the API host/);
    expect(calls).toBe(1);
    await c.close();
  });

  it('409 CODE 1965 without a wait header: the body\'s SECONDS_TO_WAIT (68928 s) blocks the API, in the error and in allowance()', async () => {
    const { err, calls, c } = await failure('doc-409-1965-rate-noheaders', (x) => x.listScans({ scanRefs: ['scan/1.1'] }));
    expect(err).toBeInstanceOf(QualysRateLimitError);
    expect(err.waitSec).toBe(68928);
    expect(err.message).toContain('19 h 8 min 48 s (68928 s)');
    expect(calls).toBe(1);
    expect(c.allowance().waitSec).toBeGreaterThan(68900);
    // the next call is refused at once, without asking Qualys (no retry every minute)
    seen.length = 0;
    const again = await c.listScans({ scanRefs: ['scan/1.1'] }).catch((e: unknown) => e as QualysRateLimitError);
    expect(again).toBeInstanceOf(QualysRateLimitError);
    expect((again as QualysRateLimitError).waitSec).toBeGreaterThan(68900);
    expect(seen).toHaveLength(0);
    await c.close();
  });

  it('409 CODE 1965 with X-RateLimit-ToWait-Sec: the header wins (181 s)', async () => {
    const { err, calls, c } = await failure('doc-409-1965-rate', (x) => x.appliances());
    expect(err).toBeInstanceOf(QualysRateLimitError);
    expect(err.waitSec).toBe(181);
    expect(calls).toBe(1);
    expect(c.allowance('appliance').waitSec).toBeGreaterThan(170);
    await c.close();
  });

  it('409 CODE 1960 (no ToWait, no Remaining header): short backoffs, then a typed error carrying CALLS_TO_FINISH', async () => {
    const { err, calls, c } = await failure('doc-409-1960-concurrency', (x) => x.listScans({ scanRefs: ['scan/1.1'] }));
    expect(err).toBeInstanceOf(QualysRateLimitError);
    expect(err.qualysCode).toBe(1960);
    expect(err.callsToFinish).toBe(2);
    expect(calls).toBe(3); // maxRetries 2
    expect(c.allowance().waitSec).toBe(0);
    expect(c.allowance().concurrencyLimit).toBe(3);
    await c.close();
  });
});
