/**
 * `onsight doctor` for a PostgreSQL state: reachable, server version (13+: the inbox cursor uses
 * xid8), not a read-only standby, privileges, synchronous commit and standbys (what a PostgreSQL
 * failover can lose), replication lag where this role may see it, and the lease and inbox.
 */
import pg from 'pg';
import type { ClusterConfig, PostgresState } from './config.js';
import { describeState } from './config.js';
import { pgConnectionConfig } from './connection.js';
import { readClusterStatus } from './status.js';

type Mark = 'ok' | 'warn' | 'fail';
type Line = (m: Mark, what: string, text: string) => void;

const MIN_VERSION = 130000;

export async function checkPostgres(state: PostgresState, cluster: ClusterConfig | undefined, line: Line, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const where = describeState(state);
  let client: pg.Client;
  try {
    client = new pg.Client({ ...pgConnectionConfig(state, env), application_name: 'onsight doctor', query_timeout: 10_000 });
    client.on('error', () => undefined);
    await client.connect();
  } catch (err) {
    return line('fail', 'state', `${where}: cannot connect (${(err as Error).message})`);
  }
  try {
    const v = (await client.query<{ n: string; v: string; recovery: boolean; db: string; role: string; su: boolean }>(
      "SELECT current_setting('server_version_num') AS n, current_setting('server_version') AS v, pg_is_in_recovery() AS recovery, current_database() AS db, current_user AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su",
    )).rows[0];
    if (Number(v.n) < MIN_VERSION) line('fail', 'postgresql version', `${v.v}: onsight needs 13 or newer`);
    else line('ok', 'postgresql version', `${v.v} (database ${v.db} as ${v.role}${v.su ? ', superuser' : ''})`);
    if (v.recovery) line('fail', 'postgresql role', `${where} is a standby (read-only): point state.postgres at the primary (or the cluster's read-write address)`);

    // privileges: create the tables on first start, then read and write them
    const p = (await client.query<{ create_schema: boolean; tables: string | null; missing: string | null }>(
      `SELECT has_schema_privilege(current_schema(), 'CREATE') AS create_schema,
              (SELECT string_agg(c, ',') FROM unnest(ARRAY['cluster_lease','cluster_nodes','cluster_inbox','cluster_inbox_cursor']) c WHERE to_regclass(c) IS NOT NULL) AS tables,
              (SELECT string_agg(c || ':' || priv, ', ') FROM unnest(ARRAY['cluster_lease','cluster_nodes','cluster_inbox','cluster_inbox_cursor']) c,
                      unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE']) priv
                WHERE to_regclass(c) IS NOT NULL AND NOT has_table_privilege(c, priv)) AS missing`,
    )).rows[0];
    if (p.missing) line('fail', 'postgresql privileges', `missing on existing tables: ${p.missing}`);
    else if (!p.tables && !p.create_schema) line('fail', 'postgresql privileges', 'no CREATE on the schema, and the cluster tables do not exist yet: grant CREATE (or create them as the owner by starting one node once)');
    else line('ok', 'postgresql privileges', p.tables ? 'read and write on the cluster tables' : 'may create the cluster tables (created at first start)');

    // durability across a PostgreSQL failover
    const s = (await client.query<{ sc: string; names: string }>("SELECT current_setting('synchronous_commit') AS sc, current_setting('synchronous_standby_names') AS names")).rows[0];
    if (s.sc === 'off' || s.sc === 'local') line('warn', 'synchronous commit', `synchronous_commit = ${s.sc}: a committed lease, intent or inbox row can be lost in a crash or failover`);
    else if (!s.names) line('warn', 'synchronous commit', `synchronous_commit = ${s.sc} but no synchronous standby (synchronous_standby_names is empty): a failover to an asynchronous standby can lose the last commits (intents, inbox rows); use synchronous replication (Patroni synchronous_mode, RDS Multi-AZ) or accept that window`);
    else line('ok', 'synchronous commit', `synchronous_commit = ${s.sc}, synchronous standbys: ${s.names}`);

    const r = await client.query<{ name: string; state: string | null; sync_state: string | null; replay_lag_s: number | null }>(
      "SELECT application_name AS name, state, sync_state, extract(epoch FROM replay_lag)::float8 AS replay_lag_s FROM pg_stat_replication",
    );
    if (r.rows.length === 0) line('warn', 'replication', 'no standby visible from here (none attached, or this role lacks pg_monitor to see them): a PostgreSQL host failure stops the cluster');
    for (const x of r.rows) {
      const lag = x.replay_lag_s === null ? 'no lag reported' : `replay lag ${x.replay_lag_s.toFixed(3)} s`;
      line(x.state === 'streaming' && (x.replay_lag_s ?? 0) < 10 ? 'ok' : 'warn', 'replication', `standby ${x.name ?? '?'}: ${x.state ?? 'not visible (pg_monitor needed)'}, ${x.sync_state ?? '?'}, ${lag}`);
    }

    // an old open transaction holds the inbox applier back (it reads only below the oldest running transaction)
    const o = (await client.query<{ age_s: number | null; app: string | null }>(
      "SELECT extract(epoch FROM now() - xact_start)::float8 AS age_s, application_name AS app FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 1",
    )).rows[0];
    if (o?.age_s !== null && o?.age_s !== undefined && o.age_s > 60) line('warn', 'long transaction', `a transaction open for ${Math.round(o.age_s)} s (${o.app || 'unnamed client'}) holds the inbox applier back until it ends`);

    const st = await readClusterStatus(client, 'scheduler', cluster?.leaseTtlS ?? 15);
    if (!st) line(cluster ? 'warn' : 'ok', 'cluster', 'no cluster tables yet (created when the first node starts)');
    else {
      if (st.leader.holder) line('ok', 'cluster leader', `${st.leader.holder} epoch ${st.leader.epoch}, lease expires in ${st.leader.expiresInS} s`);
      else line(cluster ? 'warn' : 'ok', 'cluster leader', `none holds the lease (epoch ${st.leader.epoch})`);
      const stale = st.members.filter((m) => !m.live);
      line(stale.length ? 'warn' : 'ok', 'cluster members', `${st.members.length} (${st.members.map((m) => m.name).join(', ') || 'none'})${stale.length ? `; no heartbeat lately from ${stale.map((m) => m.name).join(', ')}` : ''}`);
      line(st.inbox.backlog > 10_000 ? 'warn' : 'ok', 'inbox', `${st.inbox.backlog} waiting, ${st.inbox.applied} applied`);
    }
  } catch (err) {
    line('fail', 'state', `${where}: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
