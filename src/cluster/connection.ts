/**
 * A PostgreSQL `state:` turned into `pg` connection settings: the URL parsed by pg's own parser
 * (pg-connection-string: sslmode, host=/socket/dir, ...), the password added from its file,
 * environment variable or systemd credential. Never logged, never in a URL or an argument.
 */
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { CredentialsError, loadPassword } from '../scanners/qualys/credentials.js';
import { OnsightError } from '../errors.js';
import { postgresUrlSecret, type PostgresState } from './config.js';

export function pgConnectionConfig(state: PostgresState, env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  const where = postgresUrlSecret(state.postgres);
  if (where) throw new CredentialsError(`state.postgres: credentials in the URL (${where}) are refused: use passwordFile, passwordEnv or credential`);
  let parsed: ReturnType<typeof parseIntoClientConfig>;
  try {
    parsed = parseIntoClientConfig(state.postgres);
  } catch (err) {
    throw new OnsightError('ONSIGHT_CLUSTER', `state.postgres is not a usable connection URL: ${(err as Error).message}`);
  }
  const cfg = { ...parsed } as pg.ClientConfig & Record<string, unknown>;
  delete cfg.password; // '' from the parser would mean "empty password"
  const given = [state.passwordFile, state.passwordEnv, state.credential].some((x) => x !== undefined);
  if (given) {
    try {
      cfg.password = loadPassword({ passwordFile: state.passwordFile, passwordEnv: state.passwordEnv, credential: state.credential }, env);
    } catch (err) {
      // the loader speaks of the Qualys password: say it in this store's words
      throw new CredentialsError(`PostgreSQL password: ${(err as Error).message.replace(/Qualys password/g, 'PostgreSQL password')}`);
    }
  }
  cfg.connectionTimeoutMillis = state.connectTimeoutS * 1000;
  return cfg;
}

/** A pool for the store and the inbox applier (the lease keeps its own connection). */
export function openPool(state: PostgresState, applicationName: string, env?: NodeJS.ProcessEnv): pg.Pool {
  const pool = new pg.Pool({ ...pgConnectionConfig(state, env), max: state.poolSize, application_name: applicationName.slice(0, 63) });
  pool.on('error', () => undefined); // an idle client's connection died: the pool drops it; the next query reports
  return pool;
}

export { withPooledClient } from '../store/postgres/pooled.js';
