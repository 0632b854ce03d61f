/**
 * The SQLite file: opening it (WAL, busy timeout) and bringing its schema up to date.
 * Migrations are append-only: never edit one that has shipped, add the next.
 */
import { firstHolders, sharedNameHolders, type NameHolderFacts } from './name-holders.js';
import Database, { type Database as SqliteDatabase } from './sqlite.js';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OnsightError } from '../errors.js';
import { daemonHoldsLock, realPath } from './lock.js';

export type DB = SqliteDatabase;

/** SQL, or code for what SQL cannot say alike on both drivers (a Unicode case fold) */
const MIGRATIONS: (string | ((db: DB) => void))[] = [
  // 1: inventory, checkpoints, scheduler queue and intents, decision log
  `
  CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- mac:.. | duid:.. | cid:.. | user:.. | host:.. | ip:..
    mac TEXT, duid TEXT, user TEXT, hostname TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    last_scanned_at INTEGER,           -- epoch ms
    last_scanned_via TEXT              -- onsight | scanner
  );
  CREATE TABLE bindings (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    identity_id INTEGER NOT NULL REFERENCES identities(id),
    channel TEXT NOT NULL,             -- dhcp | vpn
    format TEXT NOT NULL,
    start_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER,
    end_at INTEGER,
    end_reason TEXT,
    renewals INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX bindings_open_ip ON bindings(ip) WHERE end_at IS NULL;
  CREATE INDEX bindings_identity ON bindings(identity_id);
  CREATE INDEX bindings_end ON bindings(end_at);
  CREATE TABLE sightings (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ip TEXT NOT NULL,
    identity_id INTEGER,
    binding_id INTEGER,
    format TEXT NOT NULL,
    source TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX sightings_at ON sightings(at);
  CREATE TABLE checkpoints (
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE queue (
    binding_id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    identity_id INTEGER NOT NULL,
    region TEXT NOT NULL,
    due_since INTEGER NOT NULL,
    leave_by INTEGER,                  -- expected departure: earliest first
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL DEFAULT 0,
    intent_id TEXT                     -- set while a scan for it is in flight
  );
  CREATE INDEX queue_region ON queue(region, intent_id);
  CREATE TABLE intents (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    appliance TEXT NOT NULL,
    state TEXT NOT NULL,               -- launching | running | finished | error | canceled | abandoned
    scan_ref TEXT,
    created_at INTEGER NOT NULL,
    launched_at INTEGER,
    ended_at INTEGER,
    error TEXT
  );
  CREATE INDEX intents_state ON intents(state);
  CREATE TABLE intent_targets (
    intent_id TEXT NOT NULL REFERENCES intents(id),
    ip TEXT NOT NULL,
    identity_id INTEGER NOT NULL,
    binding_id INTEGER NOT NULL,
    PRIMARY KEY (intent_id, ip)
  );
  CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    ip TEXT NOT NULL,
    identity_id INTEGER,
    decision TEXT NOT NULL,            -- due | not-due | dropped | launched | scanned | failed
    reason TEXT NOT NULL
  );
  CREATE INDEX decisions_at ON decisions(at);
  `,
  // 2: the tail fingerprint tells apart files that share their first KiB (weekly Windows DHCP logs)
  `ALTER TABLE checkpoints ADD COLUMN tail_fingerprint TEXT;`,
  // 3: the sweep finds run-out leases by expiry time instead of reading every open binding
  `CREATE INDEX bindings_open_expiry ON bindings(expires_at) WHERE end_at IS NULL AND expires_at IS NOT NULL;`,
  // 4: the host key (lower-case hostname before the first dot) lets a laptop's DHCP and VPN
  // identities share their last scan (inventory/hostkey.ts; generic names are filtered in code)
  `
  ALTER TABLE identities ADD COLUMN host_key TEXT;
  UPDATE identities SET host_key = nullif(trim(CASE WHEN instr(lower(trim(hostname)), '.') > 0
      THEN substr(lower(trim(hostname)), 1, instr(lower(trim(hostname)), '.') - 1) ELSE lower(trim(hostname)) END), '')
    WHERE hostname IS NOT NULL;
  CREATE INDEX identities_host_key ON identities(host_key, last_scanned_at) WHERE host_key IS NOT NULL;
  `,
  // 5: who held an address at a past time (a scanner's last-scan date belongs to that device only)
  `CREATE INDEX IF NOT EXISTS bindings_ip_start ON bindings(ip, start_at);`,
  // 6: the queue is ordered by the device's last sighting, most recent first (a DHCP lease seen
  // long ago may belong to a laptop that left without a release), not by when the lease ends
  `ALTER TABLE queue RENAME COLUMN leave_by TO last_seen;`,
  // 7: any source's position or acknowledgement (lease database snapshots and offsets, HTTP
  // idempotency keys), committed in the same transaction as its sightings; files keep checkpoints
  `CREATE TABLE positions (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX positions_updated ON positions(updated_at);`,
  // 8: what operators asked about a device (onsight rescan / skip), read by the scheduler when deciding
  `CREATE TABLE operator_marks (
    identity_id INTEGER PRIMARY KEY REFERENCES identities(id),
    rescan_at INTEGER,                 -- a rescan asked for then: due until scanned after it
    skip_until INTEGER,                -- never queued or launched before this
    updated_at INTEGER NOT NULL        -- the daemon picks up marks written since its last look
  );
  CREATE INDEX operator_marks_updated ON operator_marks(updated_at);`,
  // 9: the lease epoch (cluster term) an intent was created under; NULL on a single node
  `ALTER TABLE intents ADD COLUMN epoch INTEGER;`,
  // 10: onsight's scan credits, for second looks after a restart (scheduler/second-look.ts)
  `CREATE TABLE scan_credits (
    identity_id INTEGER PRIMARY KEY REFERENCES identities(id),
    at INTEGER NOT NULL,               -- the credited scan's end (the device's last scan it set)
    prev INTEGER,                      -- the credit before it
    lease_last_seen INTEGER,           -- the DHCP lease held then: its last grant
    lease_expires_at INTEGER,          --   and its expiry
    whole INTEGER NOT NULL DEFAULT 0   -- the result is known whole: nothing to look at again
  );
  CREATE INDEX scan_credits_at ON scan_credits(at);`,
  // 11: what the scheduler learned (appliance slots, scan durations, ...), for a restart (scheduler/memory.ts)
  `CREATE TABLE learned_state (
    name TEXT PRIMARY KEY,             -- the part: appliances, scan-durations, ...
    state TEXT NOT NULL,               -- JSON, as the part wrote it
    saved_at INTEGER NOT NULL
  );`,
  // 12: ended scans pruned after the retention are kept as counts (onsight_appliance_scans_total
  // survives the pruning); scan targets and queue entries found by their device, queue entries by
  // their scan (the prune's checks)
  `CREATE TABLE pruned_intent_counts (
    region TEXT NOT NULL,
    appliance TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (region, appliance, state)
  );
  CREATE INDEX intent_targets_identity ON intent_targets(identity_id);
  CREATE INDEX queue_identity ON queue(identity_id);
  CREATE INDEX queue_intent ON queue(intent_id) WHERE intent_id IS NOT NULL;`,
  // 13: VPN user names fold case in identity keys (user:Bob and user:bob were two devices). Each
  // ASCII key is folded unless the folded key exists; of keys folding alike, the last seen takes
  // it. The others (and non-ASCII names: lower() folds ASCII only, the key JS's toLowerCase) are
  // no longer found, so their device is new once; the prune forgets them.
  `CREATE TEMP TABLE user_key_fold AS
    SELECT id, nk FROM (
      SELECT id, key, 'user:' || lower(substr(key, 6)) AS nk,
        row_number() OVER (PARTITION BY lower(key) ORDER BY last_seen DESC, id DESC) AS rn
      FROM identities WHERE key LIKE 'user:%' AND key NOT GLOB '*[^ -~]*') t
    WHERE rn = 1 AND key <> nk AND NOT EXISTS (SELECT 1 FROM identities o WHERE o.key = t.nk);
  UPDATE identities SET key = (SELECT nk FROM user_key_fold f WHERE f.id = identities.id) WHERE id IN (SELECT id FROM user_key_fold);
  DROP TABLE user_key_fold;`,
  // 14: a VPN session's user (case-folded) and public address on its binding: a session end that
  // names no inner address finds the user's sessions by an index (it read every open session), and
  // ends only one from the address it names. Open sessions get their identity's user, folded in
  // JS as the daemon folds it (lower() folds ASCII only); their public address stays unknown.
  (db) => {
    db.exec(`ALTER TABLE bindings ADD COLUMN vpn_user TEXT;
      ALTER TABLE bindings ADD COLUMN remote_ip TEXT;`);
    const open = db.prepare(`SELECT b.id, i.user FROM bindings b JOIN identities i ON i.id = b.identity_id
      WHERE b.end_at IS NULL AND b.channel = 'vpn' AND i.user IS NOT NULL`).all() as { id: number; user: string }[];
    const set = db.prepare('UPDATE bindings SET vpn_user = ? WHERE id = ?');
    for (const r of open) set.run(r.user.toLowerCase(), r.id);
    db.exec('CREATE INDEX bindings_open_vpn_user ON bindings(vpn_user) WHERE end_at IS NULL AND vpn_user IS NOT NULL;');
  },
  // 15: each host name's first holder: a name linkHostPatterns vouches for gives credit from it only
  // (inventory/linking.ts). Names already known: as store/name-holders.ts works them out
  (db) => {
    db.exec(`CREATE TABLE name_holders (
      host_key TEXT PRIMARY KEY,
      identity_id INTEGER NOT NULL       -- no foreign key: the prune deletes a forgotten holder's row itself
    );`);
    const holders = (db.prepare('SELECT id, host_key AS hostKey FROM identities WHERE host_key IS NOT NULL').all()) as NameHolderFacts['holders'];
    const shared = sharedNameHolders(holders);
    db.exec('CREATE TEMP TABLE shared_holders (id INTEGER PRIMARY KEY)');
    const add = db.prepare('INSERT INTO shared_holders (id) VALUES (?)');
    for (const id of shared) add.run(id);
    // (a row that is no valid JSON, hand-edited or damaged, is passed over, not a failed upgrade)
    const carried = db.prepare(`SELECT identityId, hostname, min(id) AS first FROM (SELECT s.id, s.identity_id AS identityId,
        CASE WHEN json_valid(s.json) THEN json_extract(s.json, '$.hostname') END AS hostname
      FROM sightings s JOIN shared_holders h ON h.id = s.identity_id) WHERE hostname IS NOT NULL GROUP BY identityId, hostname`).all() as NameHolderFacts['carried'];
    db.exec('DROP TABLE shared_holders');
    const put = db.prepare('INSERT INTO name_holders (host_key, identity_id) VALUES (?, ?)');
    for (const [hk, id] of firstHolders({ holders, carried })) put.run(hk, id);
  },
  // 16: open VPN sessions by user and public address: an address-less session end reads two of
  // the user's sessions from the address it names (and two from no known address, two of any),
  // not every open session of the user (forged lines gave one name 20,000). DHCP leases whose
  // device's VPN line set a user are left out. It serves the user alone too (its first column):
  // the index on the user alone goes. (IF [NOT] EXISTS: a state put back to 14 or 15 by hand has it)
  `CREATE INDEX IF NOT EXISTS bindings_open_vpn_session ON bindings(vpn_user, remote_ip) WHERE end_at IS NULL AND channel = 'vpn' AND vpn_user IS NOT NULL;
  DROP INDEX IF EXISTS bindings_open_vpn_user;`,
  // 17: an identity's open bindings (read for each of its lines) by identity and end: by the index
  // on the identity alone a VPN user with 20,000 ended sessions read them all, 4.6 ms a read, 0.008 ms
  // now (50,000 open leases beside it, session 44). The index on the identity alone stays: it is
  // (identity, rowid), the order the coverage pages by (bindingPagesBetween); without it each page
  // sorted every binding left (a review: 400,000 bindings, 3.4 -> 23.4 s).
  'CREATE INDEX IF NOT EXISTS bindings_identity_end ON bindings(identity_id, end_at);',
];

/**
 * Open (and create) the state database. `migrate: false`, for a command writing beside the daemon
 * (`onsight skip`, `rescan`): the schema must be the one this onsight speaks, as for a read; a newer
 * CLI migrating under an older daemon would break the daemon's statements.
 */
export function openDatabase(file: string, o: { migrate?: boolean } = {}): DB {
  let db: DB;
  try {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    db = new Database(file);
  } catch (err) {
    throw new OnsightError('ONSIGHT_STORE', `cannot open the state database ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
  } catch (err) {
    db.close();
    throw unreadable(file, err);
  }
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  if (o.migrate === false) requireSchema(db, file);
  else migrate(db);
  return db;
}

/** The schema this onsight speaks, or a closed connection and an error that says what to do. */
function requireSchema(db: DB, file: string): void {
  let v: number;
  try {
    v = schemaVersion(db);
  } catch (err) {
    db.close();
    throw unreadable(file, err);
  }
  if (v !== MIGRATIONS.length) {
    db.close();
    throw new OnsightError('ONSIGHT_STORE', `the state database ${file} has schema ${v}, this onsight reads ${MIGRATIONS.length}: ` +
      (v < MIGRATIONS.length ? 'start the daemon once (onsight run) to upgrade it' : 'upgrade onsight'));
  }
}

/** SQLite's "file is not a database" (a damaged or foreign file) or "database is locked", naming the file. */
function unreadable(file: string, err: unknown): OnsightError {
  const m = (err as Error).message;
  const hint = /not a database|malformed/i.test(m) ? ': the file is damaged or not an onsight state (restore it from a backup, or move it away to start afresh)'
    : /locked|busy/i.test(m) ? ': another process holds it (a long write, or a tool with the file open)'
    : /unable to open database file/i.test(m) ? `: this user may not open ${file}-shm or ${file}-wal beside it (run as the daemon's user, or root)` : '';
  return new OnsightError('ONSIGHT_STORE', `cannot read the state database ${file}: ${m}${hint}`, { cause: err });
}

/** The CLI acts on the daemon's state, never on a new empty one: a missing file says what to do. */
export function requireStateFile(file: string): void {
  if (file !== ':memory:' && !existsSync(file)) {
    throw new OnsightError('ONSIGHT_STORE', `no state database at ${file}: the daemon has not run with this config yet (onsight run), or pass the daemon's --config (or set ONSIGHT_CONFIG)`);
  }
}

/**
 * Open the state read-only, for the views (`onsight hosts` …): never creates the file or its
 * directory, never migrates. A missing file or another schema is an error that says what to do.
 */
export function openDatabaseReadOnly(file: string): DB {
  requireStateFile(file);
  let db: DB;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new OnsightError('ONSIGHT_STORE', `cannot open the state database ${file} read-only: ${(err as Error).message}`, { cause: err });
  }
  db.pragma('busy_timeout = 5000');
  try {
    schemaVersion(db);
  } catch (err) {
    if (!cannotMakeShm(err, file)) {
      db.close();
      throw unreadable(file, err);
    }
    db.close();
    db = openStopped(file, err);
  }
  requireSchema(db, file);
  return db;
}

/**
 * A reader of a WAL database needs FILE-shm beside it, and a clean close removes it: a user who may
 * read the state but not write its folder (a group given read access) could not read it once the
 * daemon had stopped. With no daemon and no unmerged writes in FILE-wal the file as it stands is the
 * whole state, so it is read in SQLite's immutable mode, which makes no -shm and takes no lock.
 */
function openStopped(file: string, cause: unknown): DB {
  // (SQLite keeps -wal and -shm beside the file a symlink leads to)
  const real = realPath(file);
  const folder = dirname(real);
  const asUser = `this user may not create ${real}-shm in ${folder}; run the view as the daemon's user (or root), or let this user write ${folder}`;
  if (daemonHoldsLock(file) !== false) {
    throw new OnsightError('ONSIGHT_STORE', `cannot read the state database ${file}: the daemon is running (or its lock cannot be read) and ${asUser}`, { cause });
  }
  if (bytes(`${real}-wal`) > 0) {
    throw new OnsightError('ONSIGHT_STORE', `cannot read the state database ${file}: ${real}-wal holds writes not yet merged (the daemon stopped uncleanly) and ${asUser}; starting the daemon merges them`, { cause });
  }
  try {
    const mark = fileMark(real);
    const db = new Database(`${pathToFileURL(real).href}?immutable=1`, { readonly: true });
    schemaVersion(db);
    readAsItStands.set(db, { file: real, mark });
    return db;
  } catch (err) {
    throw new OnsightError('ONSIGHT_STORE', `cannot read the state database ${file}: ${asUser} (${(err as Error).message})`, { cause: err });
  }
}

/**
 * The states read as they stand (immutable: no lock), and what their file was when opened. Nothing
 * keeps a writer off meanwhile: `onsight skip` or `rescan` (which take no lock) or a daemon starting.
 */
const readAsItStands = new WeakMap<DB, { file: string; mark: string }>();

/**
 * Whether `db` was read as its file stood (no lock taken) and the file has been written since: what
 * was read may mix writes, and a view reads it again (cli/views.ts withStateView).
 */
export function changedSinceOpened(db: DB): boolean {
  const o = readAsItStands.get(db);
  if (!o) return false;
  try {
    return fileMark(o.file) !== o.mark;
  } catch {
    return true;
  }
}

/** what changes whenever a file is written or replaced */
function fileMark(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * SQLite's errors for a read-only connection that cannot create the -shm beside its file: with no
 * -wal, READONLY_DIRECTORY (or CANTINIT); with a -wal, CANTOPEN
 */
function cannotMakeShm(err: unknown, file: string): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_READONLY_CANTINIT' ||
    (code === 'SQLITE_CANTOPEN' && !existsSync(`${realPath(file)}-shm`));
}

function bytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * What `onsight doctor` says of an existing state file: opened read-only, its schema read (a file
 * that is no SQLite database, or a damaged one, fails here as `run` would).
 */
export function inspectStateFile(file: string): { ok: true; schema: number; speaks: number } | { ok: false; error: string } {
  let db: DB | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    const schema = schemaVersion(db);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return { ok: true, schema, speaks: MIGRATIONS.length };
  } catch (err) {
    return { ok: false, error: unreadable(file, err).message };
  } finally {
    db?.close();
  }
}

export function schemaVersion(db: DB): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function migrate(db: DB): void {
  const current = schemaVersion(db);
  if (current > MIGRATIONS.length) {
    throw new OnsightError('ONSIGHT_STORE', `the state database has schema ${current}, newer than this onsight knows (${MIGRATIONS.length}); upgrade onsight`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      const m = MIGRATIONS[v];
      if (typeof m === 'string') db.exec(m);
      else m(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
