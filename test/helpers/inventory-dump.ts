/**
 * The whole inventory of a store, ids replaced by what they name (an identity by its key, a binding
 * by its creation rank), for tests that compare SQLite and PostgreSQL's two apply paths.
 */
import type { PgStore } from '../../src/store/postgres/store.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import type { ApplyResult, Store } from '../../src/store/types.js';

type Rows = Record<string, unknown>[];
export const all = async (store: Store, sql: string, ...args: unknown[]): Promise<Rows> =>
  store.kind === 'sqlite' ? ((store as SqliteStore).db.prepare(sql.replace(/\$\d+/g, '?')).all(...args) as Rows) : (store as PgStore).db.rows(sql, args);

/** the whole inventory, ids replaced by what they name: an identity by its key, a binding by its creation rank */
export async function dump(store: Store) {
  const rank = new Map((await all(store, 'SELECT id FROM bindings ORDER BY id')).map((b, i) => [Number(b.id), i]));
  const key = new Map((await all(store, 'SELECT id, key FROM identities')).map((i) => [Number(i.id), i.key as string]));
  const num = (v: unknown) => (v === null ? null : Number(v));
  return {
    identities: (await all(store, `SELECT key, mac, duid, "user", hostname, host_key, first_seen, last_seen, last_scanned_at, last_scanned_via FROM identities ORDER BY id`))
      .map((i) => ({ ...i, first_seen: num(i.first_seen), last_seen: num(i.last_seen), last_scanned_at: num(i.last_scanned_at) })),
    holders: (await all(store, 'SELECT host_key, identity_id FROM name_holders ORDER BY host_key')).map((h) => ({ host_key: h.host_key, identity: key.get(Number(h.identity_id)) })),
    bindings: (await all(store, 'SELECT identity_id, ip, channel, format, start_at, last_seen, expires_at, end_at, end_reason, renewals, vpn_user, remote_ip FROM bindings ORDER BY id'))
      .map((b) => ({ ...b, identity_id: key.get(Number(b.identity_id)), start_at: num(b.start_at), last_seen: num(b.last_seen), expires_at: num(b.expires_at), end_at: num(b.end_at), renewals: num(b.renewals) })),
    sightings: (await all(store, 'SELECT at, kind, ip, identity_id, binding_id, format, source, json FROM sightings ORDER BY id'))
      .map((s) => ({ ...s, at: num(s.at), identity_id: s.identity_id === null ? null : key.get(Number(s.identity_id)), binding_id: s.binding_id === null ? null : rank.get(Number(s.binding_id)) })),
    named: (results: ApplyResult[]) => results.map((x) => ({ ...x, identityId: x.identityId && key.get(x.identityId), bindingId: x.bindingId && rank.get(x.bindingId) })),
  };
}
