/**
 * `onsight cluster status`: the lease (leader, epoch, expiry on the database clock), the members
 * (their heartbeats, whether they count live as the nodes read it, their policy lists), and the
 * inbox backlog, read straight from PostgreSQL (any node can ask).
 */
import type pg from 'pg';
import { inboxBacklog } from './inbox.js';
import { policyListsKey } from '../policy/policy.js';
import { nodeLiveUntilSql } from './schema.js';

export interface ClusterStatus {
  /** database time of the reading */
  now: string;
  leader: { holder: string | null; epoch: number; expiresAt: string | null; expiresInS: number | null; acquiredAt: string | null; previous: string | null };
  members: {
    name: string; role: string; host: string | null; version: string | null; startedAt: string; heartbeatAt: string; heartbeatAgeS: number; leader: boolean;
    /** whether the other nodes count it (its lists narrow theirs): until `liveUntil`, database time */
    live: boolean;
    /** its own live_until (two of its lease times after its heartbeat); for an older onsight's row, two of `leaseTtlS` */
    liveUntil: string;
    /** its policy.scope and policy.exclude (null: an older onsight publishes none) */
    policy: { scope: string[]; exclude: string[] } | null;
    /** whether those lists differ from the leader's (null: no leader, or either's unknown); the cluster scans only what every live node's allow */
    policyDiffers: boolean | null;
  }[];
  inbox: { backlog: number; applied: number; cursorAt: string | null };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Null when the cluster tables do not exist (no node has started against this database yet).
 * `leaseTtlS`: the reader's, for rows of an older onsight that write no live_until (as a node reads them).
 */
export async function readClusterStatus(db: pg.Pool | pg.ClientBase, leaseName = 'scheduler', leaseTtlS = 15): Promise<ClusterStatus | null> {
  const exists = await db.query<{ t: string | null }>("SELECT to_regclass('cluster_lease')::text AS t");
  if (!exists.rows[0]?.t) return null;
  const l = await db.query<{ now: Date; holder: string | null; epoch: string; expires_at: Date | null; acquired_at: Date | null; prev_holder: string | null; left_s: number | null }>(
    `SELECT now() AS now, holder, epoch, expires_at, acquired_at, prev_holder, extract(epoch FROM expires_at - now())::float8 AS left_s FROM cluster_lease WHERE name = $1`,
    [leaseName],
  );
  const lease = l.rows[0];
  // (to_jsonb(n)->'policy', ->>'live_until': a database an older onsight migrated has no such columns yet)
  const m = await db.query<{ name: string; role: string; host: string | null; version: string | null; started_at: Date; heartbeat_at: Date; age_s: number; policy: { scope: string[]; exclude: string[] } | null; live_until: Date; live: boolean }>(
    `SELECT name, role, host, version, started_at, heartbeat_at, extract(epoch FROM now() - heartbeat_at)::float8 AS age_s, to_jsonb(n) -> 'policy' AS policy,
            x.live_until, x.live_until > now() AS live
       FROM cluster_nodes n, LATERAL (SELECT ${nodeLiveUntilSql('$1::float8')} AS live_until) x
      ORDER BY name`,
    [2 * leaseTtlS],
  );
  const c = await db.query<{ applied: string; updated_at: Date }>('SELECT applied, updated_at FROM cluster_inbox_cursor WHERE name = $1', ['applier']);
  const live = lease && lease.holder !== null && (lease.left_s ?? -1) > 0;
  const lists = (p: { scope?: unknown; exclude?: unknown } | null) => (p && p.scope !== undefined ? policyListsKey(p) : null);
  const leaderLists = live ? lists(m.rows.find((r) => r.name === lease.holder)?.policy ?? null) : null;
  return {
    now: (lease?.now ?? new Date()).toISOString(),
    leader: {
      holder: live ? lease.holder : null,
      epoch: Number(lease?.epoch ?? 0),
      expiresAt: iso(lease?.expires_at ?? null),
      expiresInS: lease?.left_s === null || lease?.left_s === undefined ? null : Math.round(lease.left_s * 10) / 10,
      acquiredAt: iso(lease?.acquired_at ?? null),
      previous: lease?.prev_holder ?? null,
    },
    members: m.rows.map((r) => ({
      name: r.name, role: r.role, host: r.host, version: r.version, startedAt: r.started_at.toISOString(), heartbeatAt: r.heartbeat_at.toISOString(),
      heartbeatAgeS: Math.round(r.age_s * 10) / 10, leader: live && r.name === lease.holder, live: r.live, liveUntil: r.live_until.toISOString(),
      policy: r.policy ?? null, policyDiffers: leaderLists === null || lists(r.policy) === null ? null : lists(r.policy) !== leaderLists,
    })),
    inbox: { backlog: await inboxBacklog(db), applied: Number(c.rows[0]?.applied ?? 0), cursorAt: iso(c.rows[0]?.updated_at ?? null) },
  };
}

export function renderClusterStatus(s: ClusterStatus, where: string): string {
  const out: string[] = [];
  const l = s.leader;
  out.push(`state      ${where}`);
  if (l.holder) out.push(`leader     ${l.holder} (epoch ${l.epoch}, lease expires in ${l.expiresInS} s at ${l.expiresAt}${l.previous ? `, took over from ${l.previous}` : ''})`);
  else out.push(`leader     none (epoch ${l.epoch}${l.expiresAt ? `, last lease lapsed at ${l.expiresAt}` : ''})`);
  out.push(`inbox      ${s.inbox.backlog} waiting, ${s.inbox.applied} applied${s.inbox.cursorAt ? ` (cursor moved ${s.inbox.cursorAt})` : ''}`);
  out.push(`members    ${s.members.length}`);
  if (s.members.length) {
    const policy = (m: ClusterStatus['members'][number]) => !m.policy ? 'unknown'
      : `scope ${m.policy.scope?.length ?? '?'}, exclude ${m.policy.exclude?.length ?? '?'}${m.policyDiffers ? ' (differs from the leader\'s)' : ''}`;
    const rows = s.members.map((m) => [m.name, m.role, m.leader ? 'leader' : m.live ? 'follower' : 'gone', m.host ?? '-', m.version ?? '-', `${m.heartbeatAgeS} s ago`, policy(m)]);
    const head = ['NODE', 'ROLE', 'STATE', 'HOST', 'VERSION', 'HEARTBEAT', 'POLICY'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows]) out.push('  ' + r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd());
    if (s.members.some((m) => m.live && m.policyDiffers)) out.push("policy     nodes' policy.scope or policy.exclude differ: the leader scans only what every live node's lists allow");
  }
  return out.join('\n') + '\n';
}
