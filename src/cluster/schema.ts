/**
 * The cluster's own tables in PostgreSQL (lease, members, inbox, inbox cursor), created under an
 * advisory lock so that two nodes starting together never migrate at once (Graylog's election and
 * migrations clashed, Graylog2/graylog2-server#16224). Append-only: never edit a shipped step.
 * The inventory and scheduler tables belong to the store (src/store/), not here.
 */
import type pg from 'pg';
import { OnsightError } from '../errors.js';

/** pg_advisory_lock key for cluster migrations: 'onsclstr' as a number, fixed forever */
const MIGRATE_LOCK_KEY = '7957095620118394226';

const MIGRATIONS: string[] = [
  // 1: lease, members, inbox and its cursor
  `
  CREATE TABLE cluster_lease (
    name text PRIMARY KEY,
    holder text,
    epoch bigint NOT NULL DEFAULT 0,
    holder_pid integer,                  -- the holder's lease-connection backend (fast takeover when it is gone)
    holder_backend_start timestamptz,    -- with the pid: a reused pid is not mistaken for the holder
    expires_at timestamptz,              -- the DATABASE clock only
    acquired_at timestamptz,
    prev_holder text,
    prev_expires_at timestamptz
  );
  -- epoch is a "key" column for row locks: a takeover (epoch changes) takes FOR UPDATE and waits for
  -- fenced transactions (FOR KEY SHARE), while a renewal (expires_at only) takes FOR NO KEY UPDATE and never does
  CREATE UNIQUE INDEX cluster_lease_epoch ON cluster_lease (name, epoch);
  INSERT INTO cluster_lease (name) VALUES ('scheduler');
  CREATE TABLE cluster_nodes (
    name text PRIMARY KEY,
    role text NOT NULL,
    version text,
    host text,
    pid integer,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
  );
  -- every node appends; the leader applies in (tx, id) order below the oldest running transaction,
  -- so a row whose transaction commits late is never skipped by the cursor
  CREATE TABLE cluster_inbox (
    id bigint GENERATED ALWAYS AS IDENTITY,
    tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
    node text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    key bytea NOT NULL,                  -- sha-256 of origin, raw line and time: exact duplicates are dropped
    sighting jsonb NOT NULL,
    PRIMARY KEY (tx, id)
  );
  CREATE UNIQUE INDEX cluster_inbox_key ON cluster_inbox (key);
  CREATE INDEX cluster_inbox_received ON cluster_inbox (received_at);
  CREATE TABLE cluster_inbox_cursor (
    name text PRIMARY KEY,
    tx xid8 NOT NULL,
    id bigint NOT NULL,
    applied bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  INSERT INTO cluster_inbox_cursor (name, tx, id) VALUES ('applier', '0', 0);
  `,
  // 2: each node's policy.scope and policy.exclude ({scope, exclude}); every node scans only what all
  // live nodes' lists allow. NULL: a node of an older onsight (unknown, not applied)
  `
  ALTER TABLE cluster_nodes ADD COLUMN policy jsonb;
  `,
  // 3: until when the node counts live, by the database clock: now() + two of ITS OWN lease times,
  // written with each heartbeat (review: readers used their own leaseTtlS, so a node with a longer one
  // looked gone between its heartbeats). NULL: an older onsight (readers fall back to their own ttl)
  `
  ALTER TABLE cluster_nodes ADD COLUMN live_until timestamptz;
  `,
];

export const CLUSTER_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * SQL: when a cluster_nodes row stops counting live, by the database clock. Its node's own
 * live_until (cluster migration 3); for a row an older onsight keeps beating (live_until NULL, or
 * left from before and older than the heartbeat) the heartbeat plus `fallbackS` seconds: two of the
 * reader's lease times, the rule before live_until. The heartbeat and `cluster status` count live by this.
 */
export function liveUntilSql(liveUntil: string, heartbeatAt: string, fallbackS: string): string {
  return `(CASE WHEN ${liveUntil} > ${heartbeatAt} THEN ${liveUntil} ELSE ${heartbeatAt} + make_interval(secs => ${fallbackS}) END)`;
}

/**
 * liveUntilSql of a `cluster_nodes n` row read where the table may not have been migrated to 3 yet
 * (status, the node-name check before the lease migrates, state copy): the column read through to_jsonb.
 */
export function nodeLiveUntilSql(fallbackS: string): string {
  return liveUntilSql("(to_jsonb(n) ->> 'live_until')::timestamptz", 'n.heartbeat_at', fallbackS);
}

/** Brings the cluster tables up to date; refuses a database migrated by a newer onsight. */
export async function migrateCluster(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATE_LOCK_KEY]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS cluster_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const r = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM cluster_migrations');
    const have = r.rows[0]?.v ?? 0;
    if (have > MIGRATIONS.length) {
      throw new OnsightError('ONSIGHT_CLUSTER', `the cluster tables are at version ${have}, newer than this onsight knows (${MIGRATIONS.length}): upgrade every node together`);
    }
    for (let v = have + 1; v <= MIGRATIONS.length; v++) {
      await client.query('BEGIN');
      try {
        await client.query(MIGRATIONS[v - 1]);
        await client.query('INSERT INTO cluster_migrations (version) VALUES ($1)', [v]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATE_LOCK_KEY]).catch(() => undefined);
  }
}
