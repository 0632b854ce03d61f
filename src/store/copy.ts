/**
 * `onsight state copy --to postgres`: an embedded install's SQLite state moved, whole, into an
 * empty PostgreSQL database (identities and their last scans, bindings, sightings, decisions, the
 * queue, intents and their targets, operator marks, file checkpoints and source positions), in ONE
 * PostgreSQL transaction: a failed copy leaves the target as it was. Ids are kept (bindings, queue
 * entries and marks point at them) and the identity sequences moved past them. The SQLite daemon's
 * lock is held for the whole copy: a running daemon makes it refuse, and no daemon starts on the
 * file meanwhile. Counts are compared afterwards, table by table.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { describeState, isPostgresState, type PostgresState } from '../cluster/config.js';
import { pgConnectionConfig } from '../cluster/connection.js';
import { nodeLiveUntilSql } from '../cluster/schema.js';
import { OnsightError, UsageError } from '../errors.js';
import { openDatabaseReadOnly, type DB } from './db.js';
import { lockStateFile } from './lock.js';
import { PgDb } from './postgres/db.js';

/** The store's tables, parents before children (foreign keys). */
export const STATE_TABLES = ['identities', 'name_holders', 'bindings', 'sightings', 'checkpoints', 'positions', 'queue', 'intents', 'intent_targets', 'pruned_intent_counts', 'decisions', 'operator_marks', 'scan_credits', 'learned_state'] as const;
type Table = (typeof STATE_TABLES)[number];

/** tables whose id comes from an identity sequence, moved past the copied ids */
const SEQUENCED: Table[] = ['identities', 'bindings', 'sightings', 'decisions'];

/** rows per INSERT (one JSON parameter each) */
const PAGE = 5000;

export interface CopyOptions {
  /** the SQLite state file */
  from: string;
  /** empty the target's onsight tables first (it is not empty) */
  force?: boolean;
  /** progress lines (stderr in the CLI) */
  progress?: (line: string) => void;
}

export interface CopyResult {
  target: string;
  /** rows per table, as copied and as counted in PostgreSQL afterwards (equal, or the copy throws) */
  counts: Record<Table, number>;
  /** checkpoints and positions were keyed for this cluster node (`node:path`) */
  node?: string;
  ms: number;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export async function copyStateToPostgres(config: Pick<Config, 'state' | 'cluster'>, opts: CopyOptions): Promise<CopyResult> {
  const state = config.state;
  if (!isPostgresState(state)) {
    throw new UsageError(`state copy --to postgres writes into the config's PostgreSQL state, and this config's state is the SQLite file ${state}: ` +
      'point --config at the config the daemon will run with (state: { postgres: URL, passwordFile | passwordEnv | credential }) and name the SQLite file with --from');
  }
  const t0 = Date.now();
  const say = opts.progress ?? (() => undefined);
  // a mistyped --from is said so, and creates no lock file beside it
  if (!existsSync(opts.from)) throw new UsageError(`--from: no SQLite state file at ${opts.from} (the embedded install's state:, ./data/onsight.db by default)`);
  // the daemon's lock, held until the copy is verified: refuses while a daemon runs, keeps one from starting
  const lock = lockStateFile(opts.from);
  try {
    const src = openDatabaseReadOnly(opts.from);
    try {
      return await copyInto(src, state, config.cluster?.node, opts, say, t0);
    } finally {
      src.close();
    }
  } finally {
    lock.release();
  }
}

async function copyInto(src: DB, state: PostgresState, node: string | undefined, opts: CopyOptions, say: (line: string) => void, t0: number): Promise<CopyResult> {
  const target = describeState(state);
  const db = new PgDb({ ...pgConnectionConfig(state), max: 2, application_name: 'onsight state copy' });
  try {
    await db.migrate(); // an empty database gets the schema; a current one is left as it is
    await refuseRunningDaemon(db, target);
    const present = await nonEmpty(db);
    if (present.length && !opts.force) {
      throw new OnsightError('ONSIGHT_STORE', `${target} is not empty (${present.join(', ')}): copy into an empty database, or pass --force to replace what is there`);
    }
    const counts = Object.fromEntries(STATE_TABLES.map((t) => [t, 0])) as Record<Table, number>;
    await db.transaction(async () => {
      if (present.length) {
        say(`--force: emptying ${present.join(', ')}`);
        await db.query(`TRUNCATE ${STATE_TABLES.join(', ')}${await hasInbox(db) ? ', cluster_inbox' : ''} RESTART IDENTITY`);
      }
      for (const table of STATE_TABLES) counts[table] = await copyTable(src, db, table, node, say);
      for (const table of SEQUENCED) {
        await db.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) FROM ${table}`);
      }
    });
    // verify: what PostgreSQL holds now against what SQLite holds
    for (const table of STATE_TABLES) {
      const there = Number((await db.row<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${table}`))?.n ?? -1);
      const here = (src.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      if (there !== here || there !== counts[table]) {
        throw new OnsightError('ONSIGHT_STORE', `verification failed: ${table} has ${here} rows in ${opts.from}, ${counts[table]} copied, ${there} in ${target}`);
      }
    }
    return { target, counts, ...(node ? { node } : {}), ms: Date.now() - t0 };
  } finally {
    await db.close().catch(() => undefined);
  }
}

/** A daemon on the target (a live lease, a fresh heartbeat, a single node's `onsight run` session) would interleave with the copy. */
async function refuseRunningDaemon(db: PgDb, target: string): Promise<void> {
  const run = await db.row<{ n: number }>("SELECT count(*)::bigint AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'onsight run' AND pid <> pg_backend_pid()");
  if (Number(run?.n) > 0) throw new OnsightError('ONSIGHT_STATE_LOCKED', `an onsight daemon is connected to ${target}: stop it first`);
  if (!(await db.row<{ t: string | null }>("SELECT to_regclass('cluster_lease')::text AS t"))?.t) return;
  const live = await db.rows<{ name: string }>(`SELECT holder AS name FROM cluster_lease WHERE holder IS NOT NULL AND expires_at > now()
    UNION SELECT name FROM cluster_nodes n WHERE ${nodeLiveUntilSql('60')} > now()`);
  if (live.length) throw new OnsightError('ONSIGHT_STATE_LOCKED', `cluster nodes are running on ${target} (${live.map((r) => r.name).join(', ')}): stop every node first`);
}

async function hasInbox(db: PgDb): Promise<boolean> {
  return !!(await db.row<{ t: string | null }>("SELECT to_regclass('cluster_inbox')::text AS t"))?.t;
}

/** The onsight tables (and a cluster inbox) holding rows, as `table (n)`. */
async function nonEmpty(db: PgDb): Promise<string[]> {
  const out: string[] = [];
  for (const table of [...STATE_TABLES, ...(await hasInbox(db) ? ['cluster_inbox'] : [])]) {
    const n = Number((await db.row<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${table}`))?.n ?? 0);
    if (n) out.push(`${table} ${n}`);
  }
  return out;
}

async function copyTable(src: DB, db: PgDb, table: Table, node: string | undefined, say: (line: string) => void): Promise<number> {
  const srcCols = (src.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((r) => r.name);
  const dstCols = new Set((await db.rows<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1', [table])).map((r) => r.name));
  const missing = srcCols.filter((c) => !dstCols.has(c));
  if (missing.length) throw new OnsightError('ONSIGHT_STORE', `the PostgreSQL ${table} table has no column ${missing.join(', ')}: this onsight's schemas differ (upgrade onsight)`);
  const cols = srcCols.map(quote).join(', ');
  const insert = `INSERT INTO ${table} (${cols}) SELECT ${cols} FROM json_populate_recordset(NULL::${table}, $1::json)`;
  // cluster mode keys a node's file checkpoints and source positions `node:…` (src/daemon/cluster.ts nodeScoped)
  const keyCol = table === 'checkpoints' ? 'path' : table === 'positions' ? 'key' : undefined;
  const total = (src.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  const page = src.prepare(`SELECT rowid AS onsight_rowid, * FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE}`);
  let after = 0;
  let copied = 0;
  let reported = Date.now();
  for (;;) {
    const rows = page.all(after) as Record<string, unknown>[];
    if (!rows.length) break;
    after = rows[rows.length - 1].onsight_rowid as number;
    for (const r of rows) {
      delete r.onsight_rowid;
      if (node && keyCol) r[keyCol] = `${node}:${String(r[keyCol])}`;
    }
    await db.query(insert, [JSON.stringify(rows)]);
    copied += rows.length;
    if (Date.now() - reported >= 2000) {
      say(`  ${table}: ${copied} of ${total} rows`);
      reported = Date.now();
    }
  }
  say(`${table}: ${copied} rows`);
  return copied;
}
