/**
 * Config shapes for cluster mode: `state:` as a PostgreSQL connection (the plain-path form stays
 * SQLite) and `cluster:` (this node's name and role). The password never sits in the URL or the
 * config: it comes from a file, an environment variable or a systemd credential.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { parse } from 'pg-connection-string';
import { OnsightError } from '../errors.js';

/**
 * The URL's fields as pg reads them (pg's own parser: WHATWG URL refuses `postgres://user@/db?host=/socket`),
 * but for its TLS files: parse reads sslcert, sslkey and sslrootcert synchronously, so a missing one
 * was told as no postgres:// URL and a FIFO hung the schema check. Config check reads them (checkTlsFiles).
 */
function pgUrlFields(url: string): Record<string, unknown> | undefined {
  if (!/^postgres(ql)?:\/\//.test(url)) return undefined;
  try {
    return parse(withoutSslFiles(url)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const SSL_FILE_PARAMS = new Set(['sslcert', 'sslkey', 'sslrootcert']);

/** `url` without its query parameters that name TLS files (each name read as URL's query parser reads it) */
function withoutSslFiles(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const h = url.indexOf('#', q);
  const end = h < 0 ? url.length : h;
  const kept = url.slice(q + 1, end).split('&').filter((p) => !SSL_FILE_PARAMS.has([...new URLSearchParams(p).keys()][0] ?? ''));
  return `${url.slice(0, q)}${kept.length ? `?${kept.join('&')}` : ''}${url.slice(end)}`;
}

/** Where a PostgreSQL URL carries a secret (never what): a password before @ or as a parameter. */
export function postgresUrlSecret(url: string): string | undefined {
  const f = pgUrlFields(url);
  if (!f) return undefined;
  const query = url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)) : new URLSearchParams();
  for (const k of query.keys()) if (/pass|secret|token/i.test(k)) return `query parameter ${k}`;
  if (f.password) return 'a password before @';
  return undefined;
}

export const postgresStateSchema = z.object({
  /** postgres://USER@HOST:PORT/DB?sslmode=verify-full, or postgres://USER@/DB?host=/run/postgresql for a Unix socket */
  postgres: z.string().refine((s) => pgUrlFields(s) !== undefined, { message: 'expected a postgres:// or postgresql:// URL' }),
  passwordFile: z.string().min(1).optional(),
  passwordEnv: z.string().min(1).optional(),
  /** systemd credential name ($CREDENTIALS_DIRECTORY/NAME, from LoadCredential=) */
  credential: z.string().min(1).optional(),
  /** connections per node for the store and the applier (the lease has its own) */
  poolSize: z.number().int().min(2).max(100).default(10),
  connectTimeoutS: z.number().positive().max(300).default(10),
}).strict().refine((s) => [s.passwordFile, s.passwordEnv, s.credential].filter((x) => x !== undefined).length <= 1, {
  message: 'configure at most one of passwordFile, passwordEnv and credential (none: peer or certificate authentication)',
});

export type PostgresState = z.output<typeof postgresStateSchema>;

/** `state:` a SQLite path (the embedded default) or a PostgreSQL connection */
export const stateSchema = z.union([
  // (SQLite reads a name that begins with file: as a URI: ./file:x.db for such a file)
  z.string().min(1).refine((s) => !s.startsWith('file:'), { message: 'a path, not a SQLite file: URI (for a file so named, write ./file:…)' }),
  postgresStateSchema,
]);
export type StateConfig = z.output<typeof stateSchema>;

export function isPostgresState(s: StateConfig): s is PostgresState {
  return typeof s !== 'string';
}

const DEFAULT_NODE = hostname().split('.')[0].replace(/[^A-Za-z0-9_.@-]/g, '-').slice(0, 63) || 'onsight';

export const clusterConfigSchema = z.object({
  /** the deployment's name: in every scan title, so two deployments on one subscription never touch each other's scans */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, { message: 'letters, digits and _.- only, at most 32' }).default('onsight'),
  /** this node, unique in the cluster (default: the short host name) */
  node: z.string().regex(/^[A-Za-z0-9_.@-]{1,63}$/, { message: 'letters, digits and _.@- only, at most 63' }).default(DEFAULT_NODE),
  /** scheduler: may lead (applies the inbox, schedules scans); collector: only ingests (site nodes) */
  role: z.enum(['scheduler', 'collector']).default('scheduler'),
  /** lease time to live; renewed every third of it; the leader stops acting 2 s before it lapses */
  leaseTtlS: z.number().min(3).max(300).default(15),
  /** how often a follower tries to take the lease */
  pollS: z.number().min(0.1).max(60).default(1),
  /** take over as soon as the leader's database session is gone (turn off behind PgBouncer transaction pooling) */
  fastTakeover: z.boolean().default(true),
  /** how long an exact duplicate line (senders logging to every node) is dropped */
  dedupWindowS: z.number().int().min(10).max(86400).default(600),
}).strict().superRefine((c, ctx) => {
  // a node's heartbeat (and the scope and exclusions it publishes) comes with its poll; peers count
  // it live for two of its own lease times (live_until): a slower poll risks dropping its exclusions
  // in and out of the narrowest policy. Nodes' leaseTtlS may differ (each writes its own window)
  if (c.pollS * 3 > c.leaseTtlS) ctx.addIssue({ code: 'custom', path: ['pollS'], message: `${c.pollS} s is more than a third of leaseTtlS (${c.leaseTtlS} s): a node polling that slowly looks gone to its peers between its heartbeats, and its exclusions with it` });
});

export type ClusterConfig = z.output<typeof clusterConfigSchema>;

/**
 * The SQLite file of a `state:`, for what opens the file itself (the SQLite daemon and its lock): a
 * PostgreSQL state gets a clear refusal naming the command, not a file called "postgres://…".
 */
export function sqliteStatePath(state: StateConfig, what: string): string {
  if (typeof state === 'string') return state;
  throw new OnsightError('ONSIGHT_CLUSTER', `${what} needs a SQLite state file, and this config's state is ${describeState(state)}`);
}

/** Where the state lives, fit to print: a path, or `postgresql USER@HOST:PORT/DB` (never a secret: a URL holding one is refused). */
export function describeState(state: StateConfig): string {
  if (typeof state === 'string') return state;
  const f = pgUrlFields(state.postgres);
  if (!f) return 'postgresql (unparsable URL)';
  const user = typeof f.user === 'string' && f.user ? `${f.user}@` : '';
  const host = typeof f.host === 'string' && f.host ? f.host : '(default socket)';
  return `postgresql ${user}${host}${f.port ? `:${String(f.port)}` : ''}/${typeof f.database === 'string' ? f.database : ''}`;
}
