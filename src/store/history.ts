/**
 * The operator views' and the status's reads (store/types.ts HistoryStore), written once in the SQL both engines
 * speak: `?` placeholders (numbered for PostgreSQL by its reader), `"user"` quoted (reserved in
 * PostgreSQL, an ordinary quoted name in SQLite), ties broken by id so both engines order alike.
 * Each engine supplies only a reader: SQLite's behind its connection's gate, PostgreSQL's pool.
 */
import { userKey } from '../inventory/apply.js';
import { decision, entry, intent, type DecisionRow } from '../scheduler/queue.js';
import type { About, AddressReuse, Decision, DecisionQuery, DeviceName, DeviceScan, HistoryStore, IntentTarget, LearnedRecord, QueueEntry, SightingRow, TargetedScan } from './types.js';

/** Runs one read-only statement with `?` placeholders and returns its rows. */
export type SqlReader = <T>(sql: string, args: (string | number)[]) => Promise<T[]>;

const NAME_COLUMN = { ip: 'b.ip', mac: 'i.mac', user: 'i."user"', key: 'i.key', hostname: 'lower(i.hostname)' } as const;

/** A user's identities: by the user column as stored, or by the key (`user:name`, `user:name|host`, the name case-folded: userKey). */
function userNamed(user: string): { sql: string; args: string[] } {
  const key = userKey(user);
  const like = `${key.replace(/[\\%_]/g, (c) => `\\${c}`)}|%`;
  return { sql: `(i."user" = ? OR i.key = ? OR i.key LIKE ? ESCAPE '\\')`, args: [user, key, like] };
}

/** `(ipCol IN (…) OR idCol IN (…))`, or a condition no row meets when both lists are empty. */
/** `?,?,?` for an IN list of n values */
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(',');

function aboutSql(about: About, ipCol: string, idCol: string): { sql: string; args: (string | number)[] } {
  const parts: string[] = [];
  if (about.ips.length) parts.push(`${ipCol} IN (${placeholders(about.ips.length)})`);
  if (about.identityIds.length) parts.push(`${idCol} IN (${placeholders(about.identityIds.length)})`);
  return { sql: parts.length ? `(${parts.join(' OR ')})` : '1 = 0', args: [...about.ips, ...about.identityIds] };
}

export class History implements HistoryStore {
  constructor(private readonly read: SqlReader) {}

  async addressReuse(since: number, quickMs: number): Promise<AddressReuse[]> {
    return addressReuseRows(await this.read<{ channel: string; reused: unknown; quick: unknown }>(ADDRESS_REUSE_SQL, [quickMs, since]));
  }

  async identitiesNamed(name: DeviceName, presentAt?: number): Promise<number[]> {
    // a user by its key too, whatever the case: user names fold case in identity keys (Bob and bob are
    // one device), and the user column keeps the case of the latest session
    const { sql: named, args } = name.kind === 'user' ? userNamed(name.value)
      : { sql: `${NAME_COLUMN[name.kind]} = ?`, args: [name.kind === 'hostname' ? name.value.toLowerCase() : name.value] };
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

  async queuedFor(identityIds: readonly number[]): Promise<QueueEntry[]> {
    if (!identityIds.length) return [];
    // by device only (the queue_identity index): an address's entries are its holders'
    const rows = await this.read<Record<string, unknown>>(`SELECT * FROM queue WHERE identity_id IN (${placeholders(identityIds.length)}) ORDER BY binding_id`, [...identityIds]);
    return rows.map(entry);
  }

  async activeTargetsOf(identityIds: readonly number[]): Promise<(IntentTarget & { intentId: string })[]> {
    if (!identityIds.length) return [];
    // (the intent_targets_identity index: a device's targets, not every target of every scan in flight)
    const rows = await this.read<{ intent_id: string; ip: string; identity_id: number; binding_id: number }>(`SELECT t.intent_id, t.ip, t.identity_id, t.binding_id FROM intent_targets t
      JOIN intents i ON i.id = t.intent_id WHERE t.identity_id IN (${placeholders(identityIds.length)}) AND i.state IN ('launching', 'running') ORDER BY t.intent_id, t.ip`, [...identityIds]);
    return rows.map((r) => ({ intentId: r.intent_id, ip: r.ip, identityId: Number(r.identity_id), bindingId: Number(r.binding_id) }));
  }

  async learnedRows(names: readonly string[]): Promise<LearnedRecord[]> {
    if (!names.length) return [];
    const rows = await this.read<{ name: string; state: string; saved_at: number }>(`SELECT name, state, saved_at FROM learned_state WHERE name IN (${placeholders(names.length)}) ORDER BY name`, [...names]);
    return rows.map((r) => ({ name: r.name, state: r.state, savedAt: Number(r.saved_at) }));
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

/**
 * addressReuse's SQL (placeholders: the quick limit, then `since`): for each binding ended since, the next binding of its address (by start, then
 * id: a range of the bindings_ip_start index, so each look-up reads one row, not the address's
 * history), kept when another device holds it. Not another device: the same identity, or one with
 * the same user, MAC or DUID (a VPN line with a host name and one without make two identities of
 * one user). Only an end a line stated (a release, a tunnel-down, a move to another address) is
 * timed for `quick`: a takeover with no end seen (a lost tunnel-down, a backlog read at once), a
 * lease that ran out or an expiry line has no real end time, and would read as reused at once.
 */
const NEXT = (col: string) => `(SELECT q.${col} FROM bindings q WHERE q.ip = p.ip AND q.start_at >= p.start_at AND (q.start_at > p.start_at OR q.id > p.id) ORDER BY q.start_at, q.id LIMIT 1)`;
export const ADDRESS_REUSE_SQL = `SELECT x.channel AS channel, count(*) AS reused, sum(CASE WHEN x.timed = 1 AND x.next_start - x.end_at <= ? THEN 1 ELSE 0 END) AS quick
  FROM (SELECT p.channel AS channel, p.end_at AS end_at, p.identity_id AS identity_id,
      CASE WHEN p.end_reason IN ('released', 'tunnel-down', 'moved') THEN 1 ELSE 0 END AS timed,
      ${NEXT('identity_id')} AS next_identity, ${NEXT('start_at')} AS next_start
    FROM bindings p WHERE p.end_at IS NOT NULL AND p.end_at >= ?) x
  JOIN identities a ON a.id = x.identity_id JOIN identities b ON b.id = x.next_identity
  WHERE x.next_identity <> x.identity_id
    AND NOT (a."user" IS NOT NULL AND b."user" IS NOT NULL AND lower(a."user") = lower(b."user"))
    AND NOT (a.mac IS NOT NULL AND a.mac = b.mac) AND NOT (a.duid IS NOT NULL AND a.duid = b.duid)
  GROUP BY x.channel ORDER BY x.channel`;

/** addressReuse's rows, typed (the engines' drivers give counts as numbers, strings or bigints). */
function addressReuseRows(rows: { channel: string; reused: unknown; quick: unknown }[]): AddressReuse[] {
  return rows.filter((r) => r.channel === 'dhcp' || r.channel === 'vpn').map((r) => ({ channel: r.channel as 'dhcp' | 'vpn', reused: Number(r.reused), quick: Number(r.quick ?? 0) }));
}
