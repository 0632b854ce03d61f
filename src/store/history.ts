/**
 * The operator views' reads (store/types.ts HistoryStore), written once in the SQL both engines
 * speak: `?` placeholders (numbered for PostgreSQL by its reader), `"user"` quoted (reserved in
 * PostgreSQL, an ordinary quoted name in SQLite), ties broken by id so both engines order alike.
 * Each engine supplies only a reader: SQLite's behind its connection's gate, PostgreSQL's pool.
 */
import { decision, intent, type DecisionRow } from '../scheduler/queue.js';
import type { About, Decision, DecisionQuery, DeviceName, DeviceScan, HistoryStore, SightingRow, TargetedScan } from './types.js';

/** Runs one read-only statement with `?` placeholders and returns its rows. */
export type SqlReader = <T>(sql: string, args: (string | number)[]) => Promise<T[]>;

const NAME_COLUMN = { ip: 'b.ip', mac: 'i.mac', user: 'i."user"' } as const;

/** A user's identities: by the user column as stored, or by the key (`user:name`, `user:name|host`, the name case-folded). */
function userNamed(user: string): { sql: string; args: string[] } {
  const key = `user:${user.toLowerCase()}`;
  const like = `${key.replace(/[\\%_]/g, (c) => `\\${c}`)}|%`;
  return { sql: `(i."user" = ? OR i.key = ? OR i.key LIKE ? ESCAPE '\\')`, args: [user, key, like] };
}

/** `(ipCol IN (…) OR idCol IN (…))`, or a condition no row meets when both lists are empty. */
function aboutSql(about: About, ipCol: string, idCol: string): { sql: string; args: (string | number)[] } {
  const parts: string[] = [];
  const list = (n: number) => Array.from({ length: n }, () => '?').join(',');
  if (about.ips.length) parts.push(`${ipCol} IN (${list(about.ips.length)})`);
  if (about.identityIds.length) parts.push(`${idCol} IN (${list(about.identityIds.length)})`);
  return { sql: parts.length ? `(${parts.join(' OR ')})` : '1 = 0', args: [...about.ips, ...about.identityIds] };
}

export class History implements HistoryStore {
  constructor(private readonly read: SqlReader) {}

  async identitiesNamed(name: DeviceName, presentAt?: number): Promise<number[]> {
    // a user by its key too, whatever the case: user names fold case in identity keys (Bob and bob are
    // one device), and the user column keeps the case of the latest session
    const { sql: named, args } = name.kind === 'user' ? userNamed(name.value) : { sql: `${NAME_COLUMN[name.kind]} = ?`, args: [name.value] };
    const rows = presentAt !== undefined
      ? await this.read<{ id: number }>(`SELECT DISTINCT b.identity_id AS id FROM bindings b JOIN identities i ON i.id = b.identity_id
          WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= ?) AND ${named} ORDER BY id`, [presentAt, ...args])
      : name.kind === 'ip'
        ? await this.read<{ id: number }>('SELECT DISTINCT identity_id AS id FROM bindings WHERE ip = ? ORDER BY id', [name.value])
        : await this.read<{ id: number }>(`SELECT i.id FROM identities i WHERE ${named} ORDER BY i.id`, args);
    return rows.map((r) => r.id);
  }

  sightingsAbout(about: About, limit: number): Promise<SightingRow[]> {
    const w = aboutSql(about, 'ip', 'identity_id');
    return this.read<SightingRow>(`SELECT at, kind, ip, format, source FROM sightings WHERE ${w.sql} ORDER BY at DESC, id DESC LIMIT ?`, [...w.args, limit]);
  }

  async decisionsMatching(q: DecisionQuery, limit: number): Promise<Decision[]> {
    const conds: string[] = [];
    const args: (string | number)[] = [];
    if (q.about) {
      const w = aboutSql(q.about, 'ip', 'identity_id');
      conds.push(w.sql);
      args.push(...w.args);
    }
    if (q.ip !== undefined) { conds.push('ip = ?'); args.push(q.ip); }
    if (q.since !== undefined) { conds.push('at >= ?'); args.push(q.since); }
    const rows = await this.read<DecisionRow>(`SELECT at, ip, identity_id, decision, reason FROM decisions ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''}
      ORDER BY at DESC, id DESC LIMIT ?`, [...args, limit]);
    return rows.map(decision);
  }

  async scansTargeting(about: About, limit: number): Promise<TargetedScan[]> {
    const w = aboutSql(about, 't.ip', 't.identity_id');
    const rows = await this.read<Record<string, unknown> & { target_ip: string }>(`SELECT i.*, t.ip AS target_ip FROM intent_targets t JOIN intents i ON i.id = t.intent_id
      WHERE ${w.sql} ORDER BY i.created_at DESC, i.id DESC, t.ip LIMIT ?`, [...w.args, limit]);
    return rows.map((r) => ({ ...intent(r), ip: r.target_ip }));
  }

  async *scanPagesUntil(until: number, pageSize = 5000): AsyncGenerator<DeviceScan[]> {
    for (let after = 0; ;) {
      // between pages the event loop turns (sockets, timers)
      if (after) await new Promise((r) => setImmediate(r));
      const rows = await this.read<{ id: number; identity_id: number; at: number }>(`SELECT id, identity_id, at FROM decisions
        WHERE decision = 'scanned' AND identity_id IS NOT NULL AND at <= ? AND id > ? ORDER BY id LIMIT ?`, [until, after, pageSize]);
      if (rows.length) yield rows.map((r) => ({ identityId: r.identity_id, at: r.at }));
      if (rows.length < pageSize) return;
      after = Number(rows[rows.length - 1].id);
    }
  }
}
