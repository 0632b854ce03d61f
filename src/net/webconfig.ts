/**
 * One token-and-TLS mechanism for everything onsight serves over HTTP (the status page, /metrics,
 * the API, the HTTP input), in the manner of Prometheus' exporter-toolkit web config: the same
 * keys wherever a listener is configured —
 *
 *   tls:          { cert, key, ca?, requireClientCert? }   HTTPS; with `ca`, client certificates
 *                 are asked for (and required with requireClientCert: true)
 *   tokens:       [{ name, file | env | credential }]      who may call; a token is read from a
 *                 file, an environment variable or a systemd credential, never from the config
 *   allowedHosts: [names]                                  Host headers accepted besides IP
 *                 literals, localhost and this machine's name (DNS rebinding)
 *
 * A token is presented as `Authorization: Bearer <token>`, as the password of Basic auth (so a
 * browser can open the status page), or, on the HEC endpoints, as `Splunk <token>`. Tokens are
 * compared in constant time and never logged: logs and metrics name the token's `name`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { hostname } from 'node:os';
import { z } from 'zod';
import { OnsightError } from '../errors.js';
import { CredentialsError, loadPassword, shownSource, type SecretAbsence } from '../scanners/qualys/credentials.js';
import { canonicalIp, parseIp } from '../util/ip.js';

/** A TLS listener that requires client certificates names the CA they must chain to (syslog TLS inputs and the status page alike). */
export const clientCertHasCa = (t: { requireClientCert?: boolean; ca?: string }): boolean => !t.requireClientCert || t.ca !== undefined;
export const CLIENT_CERT_NEEDS_CA = { message: 'requireClientCert needs ca, the CA bundle client certificates must chain to (without it any publicly issued certificate would be taken)', path: ['ca'] };

export const tlsServerSchema = z.object({
  cert: z.string().min(1),
  key: z.string().min(1),
  /** CA bundle for client certificates; without it none are asked for */
  ca: z.string().optional(),
  requireClientCert: z.boolean().default(false),
}).strict().refine(clientCertHasCa, CLIENT_CERT_NEEDS_CA);

/** One token's source (exactly one of file, env, credential). */
export const tokenSourceShape = {
  /** shown in logs and metrics instead of the token */
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'letters, digits and _.@- (at most 64)'),
  file: z.string().optional(),
  env: z.string().optional(),
  /** systemd credential name ($CREDENTIALS_DIRECTORY/NAME, from LoadCredential=) */
  credential: z.string().optional(),
};

export function oneSecretSource<T extends { file?: string; env?: string; credential?: string }>(t: T, ctx: z.RefinementCtx): void {
  const n = [t.file, t.env, t.credential].filter((x) => x !== undefined).length;
  if (n !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of file, env or credential (never the token itself)' });
}

export const tokenSchema = z.object(tokenSourceShape).strict().superRefine(oneSecretSource);

/** The keys every HTTP listener accepts (spread into its config object). */
export const webConfigShape = {
  tls: tlsServerSchema.optional(),
  tokens: z.array(tokenSchema).optional(),
  allowedHosts: z.array(z.string().min(1)).optional(),
};

export interface TlsServerConfig {
  cert: string;
  key: string;
  ca?: string;
  requireClientCert?: boolean;
}

export interface TokenSource {
  name: string;
  file?: string;
  env?: string;
  credential?: string;
}

export interface WebConfig {
  tls?: TlsServerConfig;
  tokens?: TokenSource[];
  allowedHosts?: string[];
}

/** A loaded token: its name and a digest to compare against (the token itself is not kept). */
export interface LoadedToken {
  name: string;
  digest: Buffer;
  /** shorter than MIN_TOKEN_CHARS: said at start, at a reload and by doctor (not refused: a working setup keeps working) */
  short: boolean;
}

/** A token shorter than this can be guessed by a client that tries many (`openssl rand -hex 32` gives 64). */
export const MIN_TOKEN_CHARS = 16;

/** What to say of the short tokens among those loaded (`token "prom" is shorter …`), or undefined. */
export function shortTokensWarning(tokens: LoadedToken[]): string | undefined {
  const short = tokens.filter((t) => t.short).map((t) => `"${t.name}"`);
  if (!short.length) return undefined;
  return `token${short.length > 1 ? 's' : ''} ${short.join(', ')} ${short.length > 1 ? 'are' : 'is'} shorter than ${MIN_TOKEN_CHARS} characters and could be guessed: use a long random one (openssl rand -hex 32)`;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Reads every token from its source. Errors name the token and source, never the value. */
export function loadTokens(tokens: TokenSource[] | undefined, env: NodeJS.ProcessEnv = process.env): LoadedToken[] {
  return (tokens ?? []).map((t) => loadToken(t, env));
}

function loadToken(t: TokenSource, env: NodeJS.ProcessEnv): LoadedToken {
  try {
    const value = loadPassword({ passwordFile: t.file, passwordEnv: t.env, credential: t.credential }, env);
    return { name: t.name, digest: digest(value), short: [...value].length < MIN_TOKEN_CHARS };
  } catch (err) {
    const msg = (err as Error).message.replace(/password file/g, 'token file').replace(/ to be a password/, ' to be a token');
    throw new CredentialsError(`token "${t.name}": ${msg}`, (err as CredentialsError).absent);
  }
}

/**
 * One token read again at a reload (SIGHUP): as at start, but a token file that is no regular file
 * (a FIFO) is refused, not read: a read would block the whole daemon until a writer came.
 */
export function reloadToken(t: TokenSource, env: NodeJS.ProcessEnv = process.env): LoadedToken {
  let regular = true;
  try {
    regular = t.file === undefined || statSync(t.file).isFile();
  } catch {
    /* not there: loadToken says so */
  }
  if (!regular) throw new CredentialsError(`token "${t.name}": ${shownSource(t.file!)} is not a regular file: not read again at a reload`);
  return loadToken(t, env);
}

/**
 * Stands for a listener's tokens once every one is revoked: no token hashes to its random digest,
 * so the listener refuses every request. An empty list would read as "no tokens configured", which
 * the status listener serves without authentication.
 */
const EVERY_TOKEN_REVOKED: LoadedToken = { name: '(every token revoked)', digest: randomBytes(32), short: false };

const ABSENCE_WORDS: Record<SecretAbsence, string> = { missing: 'gone', empty: 'empty', denied: 'no longer readable to onsight (permission denied)' };

/**
 * A listener's tokens (the status listener's, an HTTP input's): read now (all or nothing: the start
 * fails), read again by reload() (a SIGHUP) token by token: one whose file is now missing or empty
 * is revoked (refused from then on, logged by name), as is one its permissions no longer let onsight
 * read (a `chmod 000`: fail closed); one that cannot be read otherwise keeps its old
 * value (and reload() throws, naming it), the others take their new value. A listener whose every
 * token is revoked refuses every request, never serves without one. Short ones said each time, under
 * `where` (the log line's prefix).
 */
export function listenerTokens(sources: TokenSource[] | undefined, where: string, log: { warn(msg: string): void }, env: NodeJS.ProcessEnv = process.env): { readonly current: LoadedToken[]; reload(): void } {
  const list = sources ?? [];
  /** each source's token, by its index; undefined once revoked */
  let held: (LoadedToken | undefined)[] = loadTokens(list, env);
  let current = held as LoadedToken[];
  const sayShort = () => {
    const short = shortTokensWarning(current);
    if (short) log.warn(`${where}: ${short}`);
  };
  sayShort();
  return {
    get current() {
      return current;
    },
    reload() {
      let failed: unknown;
      held = list.map((t, j) => {
        try {
          return reloadToken(t, env);
        } catch (err) {
          const absent = (err as CredentialsError).absent;
          if (absent === undefined) {
            failed ??= err;
            return held[j]; // (unreadable for now, a FIFO: not a revocation)
          }
          if (held[j]) log.warn(`${where}: token "${t.name}" revoked: its ${t.credential !== undefined ? 'credential' : 'file'} is ${ABSENCE_WORDS[absent]}; refused from now on`);
          return undefined;
        }
      });
      const live = held.filter((t): t is LoadedToken => t !== undefined);
      if (list.length && !live.length && current[0] !== EVERY_TOKEN_REVOKED) log.warn(`${where}: every token is revoked: every request is refused until a token file is back and onsight is reloaded`);
      current = list.length && !live.length ? [EVERY_TOKEN_REVOKED] : live;
      sayShort();
      if (failed !== undefined) throw failed;
    },
  };
}

/**
 * A listener's reload: its certificates and its tokens, each on its own (one failing keeps what it
 * had, the other is still reloaded); the first failure is thrown after both were tried.
 */
export function reloadBoth(certificates: () => void, tokens: () => void): void {
  let failed: unknown;
  for (const step of [certificates, tokens]) {
    try {
      step();
    } catch (err) {
      failed ??= err;
    }
  }
  if (failed !== undefined) throw failed;
}

export type AuthFailure = 'missing' | 'malformed' | 'invalid';
export type AuthResult = { ok: true; token: string } | { ok: false; why: AuthFailure };

/**
 * Who is calling: the token from `Authorization: Bearer X`, `Basic base64(any:X)`, or one of the
 * extra schemes (`Splunk` for HEC). Constant-time comparison against every configured token.
 */
export function authenticate(req: IncomingMessage, tokens: LoadedToken[], schemes: string[] = []): AuthResult {
  const h = req.headers.authorization;
  if (h === undefined || h.trim() === '') return { ok: false, why: 'missing' };
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(h);
  if (!m) return { ok: false, why: 'malformed' };
  const scheme = m[1].toLowerCase();
  let secret: string;
  if (scheme === 'bearer' || schemes.some((s) => s.toLowerCase() === scheme)) secret = m[2];
  else if (scheme === 'basic') {
    const dec = Buffer.from(m[2], 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i < 0) return { ok: false, why: 'malformed' };
    secret = dec.slice(i + 1);
  } else return { ok: false, why: 'malformed' };
  const d = digest(secret);
  let found: string | undefined;
  for (const t of tokens) if (timingSafeEqual(d, t.digest) && found === undefined) found = t.name;
  return found === undefined ? { ok: false, why: 'invalid' } : { ok: true, token: found };
}

/**
 * DNS rebinding: a page on attacker.example that resolves to our address may make a browser
 * call us, but its requests carry `Host: attacker.example`. Accept only IP literals, localhost,
 * this machine's name (short and full) and the configured names.
 */
export function hostAllowed(req: IncomingMessage, allowedHosts: string[] = []): boolean {
  // an absolute-form target's authority stands in for the Host header (RFC 9112 §3.2.2: the Host
  // header is then ignored), so it is the one checked
  const absolute = absoluteTarget(req.url);
  const raw = absolute ? absolute.host : req.headers.host;
  if (raw === undefined) return req.httpVersion === '1.0';
  const h = raw.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.replace(/:\d+$/, '');
  if (name === '') return false;
  if (canonicalIp(name) !== undefined) return true;
  const bare = name.replace(/\.$/, '');
  const me = hostname().toLowerCase();
  const ok = new Set(['localhost', me, me.split('.')[0], ...allowedHosts.map((a) => a.toLowerCase().replace(/\.$/, ''))]);
  return ok.has(bare) || bare.endsWith('.localhost');
}

/**
 * Headers a request may carry. Node keeps at most a server's maxHeadersCount and drops the rest
 * unsaid (an Authorization header past them would read as missing), so listeners keep one more
 * and refuse a request that has it (431).
 */
export const MAX_REQUEST_HEADERS = 64;

/** Does the request carry more than MAX_REQUEST_HEADERS headers (the listener kept one more to tell)? */
export const tooManyHeaders = (req: IncomingMessage): boolean => req.rawHeaders.length / 2 > MAX_REQUEST_HEADERS;

/** The request target as a URL when it is in absolute form (`GET http://host:9321/api/status`), else undefined. */
function absoluteTarget(target: string | undefined): URL | undefined {
  if (!target || !/^https?:\/\//i.test(target)) return undefined;
  try {
    return new URL(target);
  } catch {
    return undefined;
  }
}

/**
 * The path a request asks for, without its query: from the origin form (`/api/status?x`) or the
 * absolute form (`http://host:9321/api/status`, which servers must accept: RFC 9112 §3.2.2; it
 * was answered 404).
 */
export function requestPath(target: string | undefined): string {
  return absoluteTarget(target)?.pathname ?? (target ?? '/').split('?')[0];
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new OnsightError('ONSIGHT_LISTEN', `cannot read the TLS ${what} ${shownSource(path)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function tlsOptions(tls: TlsServerConfig) {
  return {
    cert: readPem(tls.cert, 'certificate'),
    key: readPem(tls.key, 'key'),
    ca: tls.ca ? readPem(tls.ca, 'CA bundle') : undefined,
    requestCert: tls.ca !== undefined || tls.requireClientCert === true,
    rejectUnauthorized: tls.requireClientCert === true,
    minVersion: 'TLSv1.2' as const,
  };
}

export interface WebServer {
  server: Server | HttpsServer;
  scheme: 'http' | 'https';
  /** re-read certificate, key and CA (SIGHUP); open connections keep theirs */
  reload(): void;
}

/** An HTTP or HTTPS server as `web.tls` says (not yet listening). */
export function createWebServer(web: WebConfig, handler: RequestListener): WebServer {
  if (!web.tls) return { server: answerHalfClosed(createHttpServer(handler)), scheme: 'http', reload: () => undefined };
  const tls = web.tls;
  const server = answerHalfClosed(createHttpsServer(tlsOptions(tls), handler));
  // a handshake that never finishes must not hold a connection slot for ever
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  return {
    server,
    scheme: 'https',
    reload: () => {
      const o = tlsOptions(tls);
      server.setSecureContext({ cert: o.cert, key: o.key, ca: o.ca, minVersion: o.minVersion });
    },
  };
}

/**
 * A client that shuts down its sending side once its request is sent (`nc -N`, some scripts and
 * proxies) is answered: by default node's server ends such a connection at once, and an answer
 * given after an await (a commit) never reaches the client, though its data was taken. With this
 * flag node sends the last answer, then closes. (`httpAllowHalfOpen`: node's server field since
 * 0.x, not in its typings; the same on node 20 and 26.)
 */
function answerHalfClosed<T extends Server | HttpsServer>(server: T): T {
  (server as T & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  return server;
}

/** Listen on host:port; resolves with the bound address. */
export async function listenOn(server: Server | HttpsServer, host: string, port: number): Promise<{ host: string; port: number; family: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as { address: string; port: number; family: string };
  return { host: a.address, port: a.port, family: a.family };
}

/**
 * Does a listen spec (as parseHttpListen reads it) bind to loopback only? `localhost` or an address
 * literal in 127.0.0.0/8 or ::1 (also IPv4-mapped); any other name is taken as reaching beyond
 * (`127.example.com` is a DNS name like any). Unreadable: no.
 */
export function listensOnLoopback(listen: string): boolean {
  try {
    return isLoopbackHost(parseHttpListen(listen).host);
  } catch {
    return false;
  }
}

/** `localhost`, or an address literal in 127.0.0.0/8 or ::1 (IPv4-mapped too; brackets taken off or not). */
export function isLoopbackHost(host: string): boolean {
  if (/^localhost\.?$/i.test(host)) return true;
  const ip = canonicalIp(host);
  return ip !== undefined && parseIp(ip)?.range() === 'loopback';
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
    if (i < 0) throw new Error(`listen "${listen}": expected HOST:PORT`);
    host = s.slice(0, i) || '127.0.0.1';
    port = s.slice(i + 1);
  }
  const p = Number(port);
  if (!/^\d+$/.test(port) || p > 65535) throw new Error(`listen "${listen}": bad port`);
  return { host, port: p };
}
