/**
 * A batch of sightings applied to the PostgreSQL inventory in three round trips instead of about
 * two per sighting: (1) one query loads every row the batch can touch (the identities of its keys,
 * the open bindings of its addresses, of those identities and of the scanned identities under its
 * host keys, those identities (where they are decides a link by pattern: linking.ts apart), its
 * names' first holders, and a few open sessions of each kind a 0.0.0.0 tunnel-down may need (by
 * the session's folded user: from the public address it names, from no known address, any;
 * VPN_SESSIONS_READ of each, never all of them: forged lines can give one user thousands); (2) the inventory's rules
 * (src/inventory/apply.ts, the same code SQLite runs) apply the sightings one after another, in
 * order, to that in-memory copy, so a batch that repeats an address or an identity sees its own
 * earlier effects exactly as the one-at-a-time path would; (3) one statement writes the result
 * (new rows with ids taken from the sequences in creation order, changes to existing rows as
 * relative updates: last_seen forward, coalesced names, renewals added, an end only on an open
 * binding), after one more for those ids when the batch created rows.
 *
 * The copy is complete for what the rules read: lookups go by address, identity key, user and host
 * key, and every row such a lookup can return is loaded or created here (host-key candidates: the
 * top 50 plus one per identity the batch touches, since only those can leave the group). A user's
 * sessions are the exception: of a kind with VPN_SESSIONS_READ or more stored, only that many are
 * loaded, which answers "2 or more" until the batch itself ends or moves some of them. An
 * address-less end that then cannot tell (fewer of the kind known, others perhaps not loaded) ends
 * the batch's part there: what came before is written, and the rest applied as a new batch, loaded
 * afresh (applyBatch), so the results are those of one sighting at a time.
 * Writes to these rows by others during the batch would be missed; this process's writes are one
 * at a time (PgDb.transaction), and in a cluster only the leader applies.
 */
import type { LeaseTimes } from '../../inventory/lease-times.js';
import type { Sighting } from '../../sighting.js';
import type { ApplyResult, InventoryOptions } from '../types.js';
import { isLinkableHostKey } from '../../inventory/hostkey.js';
import type { LinkRules } from '../../inventory/linking.js';
import {
  applySighting, capNames, identityFields, identityKey, isEnding, isUnspecified, VPN_SESSIONS_READ,
  type ApplyOps, type IdentityFields, type NewBinding, type OpenBinding, type OpenVpnSession, type OpenVpnSessions, type ScannedIdentity, type SightingRecord, type VpnSession,
} from '../../inventory/apply.js';
import { statement as st, type PgDb } from './db.js';

const SCANNED_PER_HOST = 50;

/**
 * A few open VPN sessions of one kind (a user's, from one public address, from none): the index on
 * user and public address reads VPN_SESSIONS_READ of them, whatever their number (no order: any
 * of them do, see BatchModel.openVpnByUser)
 */
const SESSIONS = 'SELECT id, ip, identity_id, channel, start_at, last_seen, vpn_user, remote_ip FROM bindings';
const OPEN_SESSION = `AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ}`;

const S = {
  // joins against unnest (not `= ANY`): one index probe per key, not every row against every key
  load: st('batch_load', `WITH ik AS (SELECT i.id FROM unnest($1::text[]) AS k(key) JOIN identities i ON i.key = k.key),
    hs AS (SELECT h.id FROM unnest($4::text[]) AS k(hk) CROSS JOIN LATERAL (SELECT id FROM identities
      WHERE host_key = k.hk AND last_scanned_at IS NOT NULL ORDER BY last_scanned_at DESC, id DESC LIMIT $5) h),
    ob AS (
      SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.last_seen, b.vpn_user, b.remote_ip FROM unnest($2::text[]) AS a(ip) JOIN bindings b ON b.ip = a.ip AND b.end_at IS NULL
      UNION SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.last_seen, b.vpn_user, b.remote_ip FROM ik JOIN bindings b ON b.identity_id = ik.id AND b.end_at IS NULL
      UNION SELECT s.* FROM unnest($3::text[]) AS u(name) CROSS JOIN LATERAL (${SESSIONS} WHERE vpn_user = u.name ${OPEN_SESSION}) s
      UNION SELECT s.* FROM unnest($3::text[]) AS u(name) CROSS JOIN LATERAL (${SESSIONS} WHERE vpn_user = u.name AND remote_ip IS NULL ${OPEN_SESSION}) s
      UNION SELECT s.* FROM unnest($7::text[], $8::text[]) AS p(name, ip) CROSS JOIN LATERAL (${SESSIONS} WHERE vpn_user = p.name AND remote_ip = p.ip ${OPEN_SESSION}) s
      UNION SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.last_seen, b.vpn_user, b.remote_ip FROM hs JOIN bindings b ON b.identity_id = hs.id AND b.end_at IS NULL),
    ids AS (SELECT id FROM ik UNION SELECT identity_id FROM ob UNION SELECT id FROM hs)
    SELECT (SELECT coalesce(json_agg(json_build_array(i.id, i.key, i.mac, i."user", i.hostname, i.host_key, i.last_scanned_at, i.last_scanned_via)), '[]')
        FROM ids JOIN identities i ON i.id = ids.id) AS identities,
      (SELECT coalesce(json_agg(json_build_array(id, ip, identity_id, channel, start_at, last_seen, vpn_user, remote_ip) ORDER BY id), '[]') FROM ob) AS bindings,
      (SELECT coalesce(json_agg(json_build_array(n.host_key, n.identity_id)), '[]') FROM unnest($6::text[]) AS k(hk) JOIN name_holders n ON n.host_key = k.hk) AS holders`),
  ids: st('batch_ids', `SELECT ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('identities', 'id'))::regclass) FROM generate_series(1, $1::int)) AS identities,
    ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('bindings', 'id'))::regclass) FROM generate_series(1, $2::int)) AS bindings`),
  // each part's rows as one JSON parameter: PostgreSQL parses one JSON text far faster than dozens of array parameters
  write: st('batch_write', `WITH
    ni AS (INSERT INTO identities (id, key, mac, duid, "user", hostname, host_key, first_seen, last_seen, last_scanned_at, last_scanned_via)
      SELECT id, key, mac, duid, "user", hostname, host_key, first_seen, last_seen, last_scanned_at, last_scanned_via FROM json_to_recordset($1::json)
        AS v(id bigint, key text, mac text, duid text, "user" text, hostname text, host_key text, first_seen bigint, last_seen bigint, last_scanned_at bigint, last_scanned_via text)),
    ui AS (UPDATE identities i SET last_seen = GREATEST(i.last_seen, coalesce(v.at, i.last_seen)),
        hostname = coalesce(v.hostname, i.hostname), host_key = CASE WHEN v.hostname IS NULL THEN i.host_key ELSE v.host_key END,
        "user" = coalesce(v."user", i."user"), mac = coalesce(v.mac, i.mac),
        last_scanned_at = CASE WHEN v.scan_at > coalesce(i.last_scanned_at, -1) THEN v.scan_at ELSE i.last_scanned_at END,
        last_scanned_via = CASE WHEN v.scan_at > coalesce(i.last_scanned_at, -1) THEN v.scan_via ELSE i.last_scanned_via END
      FROM json_to_recordset($2::json) AS v(id bigint, at bigint, hostname text, host_key text, "user" text, mac text, scan_at bigint, scan_via text)
      WHERE i.id = v.id),
    nb AS (INSERT INTO bindings (id, ip, identity_id, channel, format, start_at, last_seen, expires_at, end_at, end_reason, renewals, vpn_user, remote_ip)
      SELECT id, ip, identity_id, channel, format, start_at, last_seen, expires_at, end_at, end_reason, renewals, vpn_user, remote_ip FROM json_to_recordset($3::json)
        AS v(id bigint, ip text, identity_id bigint, channel text, format text, start_at bigint, last_seen bigint, expires_at bigint, end_at bigint, end_reason text, renewals int,
          vpn_user text, remote_ip text)),
    ub AS (UPDATE bindings b SET renewals = b.renewals + v.renewed,
        last_seen = CASE WHEN v.renewed > 0 THEN GREATEST(b.last_seen, v.last_seen) ELSE b.last_seen END,
        expires_at = CASE WHEN v.renewed > 0 THEN v.expires_at ELSE b.expires_at END,
        vpn_user = coalesce(v.vpn_user, b.vpn_user), remote_ip = coalesce(v.remote_ip, b.remote_ip),
        end_reason = CASE WHEN b.end_at IS NULL AND v.end_at IS NOT NULL THEN v.end_reason ELSE b.end_reason END,
        end_at = coalesce(b.end_at, v.end_at)
      FROM json_to_recordset($4::json) AS v(id bigint, renewed int, last_seen bigint, expires_at bigint, end_at bigint, end_reason text, vpn_user text, remote_ip text)
      WHERE b.id = v.id),
    ns AS (INSERT INTO sightings (at, kind, ip, identity_id, binding_id, format, source, json)
      SELECT at, kind, ip, identity_id, binding_id, format, source, json FROM json_to_recordset($5::json)
        AS v(n int, at bigint, kind text, ip text, identity_id bigint, binding_id bigint, format text, source text, json text) ORDER BY n),
    nh AS (INSERT INTO name_holders (host_key, identity_id) SELECT host_key, identity_id FROM json_to_recordset($6::json) AS v(host_key text, identity_id bigint)
      ON CONFLICT (host_key) DO NOTHING)
    SELECT 1 AS done`),
};

interface Ident {
  id: number;
  key: string;
  mac: string | null;
  duid: string | null;
  user: string | null;
  hostname: string | null;
  hostKey: string | null;
  lastScannedAt: number | null;
  lastScannedVia: string | null;
  /** the order of ids (new rows come after every stored one): ties between equal last scans */
  rank: number;
  created?: { firstSeen: number; lastSeen: number };
  /** what this batch writes to a stored identity */
  touched?: { at: number; hostname: string | null; hostKey: string | null; user: string | null; mac: string | null };
  scanned?: boolean;
}

interface Bind {
  id: number;
  ip: string;
  identityId: number;
  channel: string;
  startAt: number;
  lastSeen: number;
  open: boolean;
  created?: { format: string };
  renewed: number;
  expiresAt?: number;
  end?: { at: number; reason: string };
  /** the session's user and public address as now known; `sessionChanged`: this batch set one */
  vpnUser: string | null;
  remoteIp: string | null;
  sessionChanged?: boolean;
}

/** New rows get ids below zero until the sequences hand out theirs. */
const NEW_RANK = 2 ** 52;

/** The user and public address address-less ends of a batch name (folded as apply.ts folds them). */
interface SessionLookups {
  users: string[];
  /** [user, public address] */
  pairs: [string, string][];
}

/** A kind of a user's open VPN sessions: all, from a public address, from none (null). */
const sessionKind = (user: string, from: string | null | undefined): string => JSON.stringify(from === undefined ? [user] : [user, from]);

/** how many `xs` yields, counted up to `upTo` */
function count(xs: Iterable<unknown>, upTo: number): number {
  let n = 0;
  for (const _ of xs) if (++n >= upTo) break;
  return n;
}

/**
 * Thrown where the rows loaded cannot tell an address-less end what it needs (the batch's own
 * changes left fewer than VPN_SESSIONS_READ known of a kind that had more stored): applyBatch
 * writes what came before and applies the rest afresh.
 */
class SessionsNotLoaded extends Error {
  constructor(user: string) {
    super(`the batch's load holds too few of the open VPN sessions of user ${user} to tell which one an address-less end ends`);
  }
}

/** The rows a batch touches, the rules' reads and writes on them, and what is to be written. */
class BatchModel implements ApplyOps {
  private readonly idents = new Map<number, Ident>();
  private readonly byKey = new Map<string, Ident>();
  private readonly byHost = new Map<string, Set<Ident>>();
  private readonly binds = new Map<number, Bind>();
  /** open bindings by address, in id order */
  private readonly openAt = new Map<string, Bind[]>();
  private readonly byIdent = new Map<number, Bind[]>();
  /** open VPN sessions by folded user, then public address (null: not known) */
  private readonly sessions = new Map<string, Map<string | null, Set<Bind>>>();
  /** the kinds of sessions (sessionKind) whose every stored row was loaded; of the others VPN_SESSIONS_READ or more */
  private readonly wholeKinds = new Set<string>();
  readonly newIdents: Ident[] = [];
  readonly newBinds: Bind[] = [];
  readonly records: SightingRecord[] = [];
  /** the first holders of the batch's names that can link (as stored, then as this batch claims them) */
  private readonly holders = new Map<string, number>();
  readonly newHolders: [string, number][] = [];

  constructor(identities: unknown[][], bindings: unknown[][], holders: unknown[][], asked: SessionLookups) {
    for (const [hk, id] of holders as [string, number][]) this.holders.set(hk, Number(id));
    for (const [id, key, mac, user, hostname, hostKey, at, via] of identities as [number, string, string | null, string | null, string | null, string | null, number | null, string | null][]) {
      this.addIdent({ id, key, mac, duid: null, user, hostname, hostKey, lastScannedAt: at, lastScannedVia: via, rank: id });
    }
    for (const [id, ip, identityId, channel, startAt, lastSeen, vpnUser, remoteIp] of bindings as [number, string, number, string, number, number, string | null, string | null][]) {
      this.addBind({ id, ip, identityId, channel, startAt, lastSeen, open: true, renewed: 0, vpnUser, remoteIp });
    }
    // A kind of which fewer than VPN_SESSIONS_READ were loaded (by its query, or by address or
    // identity) was read whole: its query stopped short of its limit. A user's sessions read whole: each kind of them too.
    const whole = (user: string, from: string | null | undefined) => {
      if (from !== undefined && this.wholeKinds.has(sessionKind(user, undefined))) return true;
      return count(this.sessionsOf(user, from), VPN_SESSIONS_READ) < VPN_SESSIONS_READ;
    };
    for (const user of asked.users) for (const from of [undefined, null]) if (whole(user, from)) this.wholeKinds.add(sessionKind(user, from));
    for (const [user, from] of asked.pairs) if (whole(user, from)) this.wholeKinds.add(sessionKind(user, from));
  }

  /** the open sessions of `user` known here: all of them (`from` undefined), or from one public address (null: none known) */
  private *sessionsOf(user: string, from?: string | null): Generator<Bind> {
    const by = this.sessions.get(user);
    if (!by) return;
    if (from !== undefined) yield* by.get(from) ?? [];
    else for (const set of by.values()) yield* set;
  }

  /** a binding in (or out of) the sessions index, as its fields are now */
  private indexSession(b: Bind, add: boolean): void {
    if (!b.open || b.channel !== 'vpn' || b.vpnUser === null) return;
    let by = this.sessions.get(b.vpnUser);
    if (!add) {
      const set = by?.get(b.remoteIp);
      set?.delete(b);
      if (set?.size === 0) by!.delete(b.remoteIp);
      if (by?.size === 0) this.sessions.delete(b.vpnUser);
      return;
    }
    if (!by) this.sessions.set(b.vpnUser, (by = new Map()));
    let set = by.get(b.remoteIp);
    if (!set) by.set(b.remoteIp, (set = new Set()));
    set.add(b);
  }

  private addIdent(i: Ident): void {
    this.idents.set(i.id, i);
    this.byKey.set(i.key, i);
    this.hostIndex(i, null, i.hostKey);
  }

  /** anything to write: a row created or changed, a sighting recorded */
  get changed(): boolean {
    return this.newIdents.length > 0 || this.newBinds.length > 0 || this.records.length > 0 || this.newHolders.length > 0
      || [...this.idents.values()].some((i) => i.touched || i.scanned) || [...this.binds.values()].some((b) => b.renewed || b.end);
  }

  private hostIndex(i: Ident, from: string | null, to: string | null): void {
    if (from === to) return;
    if (from !== null) this.byHost.get(from)?.delete(i);
    if (to === null) return;
    let set = this.byHost.get(to);
    if (!set) this.byHost.set(to, (set = new Set()));
    set.add(i);
  }

  private addBind(b: Bind): void {
    this.binds.set(b.id, b);
    const at = this.openAt.get(b.ip);
    if (at) at.push(b);
    else this.openAt.set(b.ip, [b]);
    const of = this.byIdent.get(b.identityId);
    if (of) of.push(b);
    else this.byIdent.set(b.identityId, [b]);
    this.indexSession(b, true);
  }

  openByIp(ip: string): OpenBinding | undefined {
    const list = this.openAt.get(ip);
    if (!list) return undefined;
    for (let k = list.length - 1; k >= 0; k--) {
      const b = list[k];
      if (!b.open) continue;
      const i = this.idents.get(b.identityId)!;
      return { id: b.id, identityId: b.identityId, identityKey: i.key, mac: i.mac || undefined, user: i.user || undefined, startAt: b.startAt, lastSeen: b.lastSeen };
    }
    return undefined;
  }

  identityByKey(key: string): { id: number; host_key: string | null } | undefined {
    const i = this.byKey.get(key);
    return i && { id: i.id, host_key: i.hostKey };
  }

  insertIdentity(key: string, f: IdentityFields): number {
    const n = this.newIdents.length + 1;
    const i: Ident = {
      id: -n, key, mac: f.mac, duid: f.duid, user: f.user, hostname: f.hostname, hostKey: f.hostKey,
      lastScannedAt: null, lastScannedVia: null, rank: NEW_RANK + n, created: { firstSeen: f.at, lastSeen: f.at },
    };
    this.newIdents.push(i);
    this.addIdent(i);
    return i.id;
  }

  touchIdentity(id: number, f: IdentityFields): void {
    const i = this.idents.get(id)!;
    const was = i.hostKey;
    if (f.hostname !== null) {
      i.hostname = f.hostname;
      i.hostKey = f.hostKey;
    }
    i.user = f.user ?? i.user;
    i.mac = f.mac ?? i.mac;
    this.hostIndex(i, was, i.hostKey);
    if (i.created) {
      i.created.lastSeen = Math.max(i.created.lastSeen, f.at);
      return;
    }
    const t = (i.touched ??= { at: f.at, hostname: null, hostKey: null, user: null, mac: null });
    t.at = Math.max(t.at, f.at);
    if (f.hostname !== null) {
      t.hostname = f.hostname;
      t.hostKey = f.hostKey;
    }
    t.user = f.user ?? t.user;
    t.mac = f.mac ?? t.mac;
  }

  firstHolder(hk: string): number | undefined {
    return this.holders.get(hk);
  }

  claimName(hk: string, identityId: number): void {
    if (this.holders.has(hk)) return;
    this.holders.set(hk, identityId);
    this.newHolders.push([hk, identityId]);
  }

  linkFacts(id: number): { id: number; key: string; user: string | null } | undefined {
    const i = this.idents.get(id);
    return i && { id: i.id, key: i.key, user: i.user };
  }

  scannedByHost(hk: string): ScannedIdentity[] {
    const found = [...(this.byHost.get(hk) ?? [])].filter((i) => i.lastScannedAt !== null);
    found.sort((a, b) => b.lastScannedAt! - a.lastScannedAt! || b.rank - a.rank);
    return found.slice(0, SCANNED_PER_HOST).map((i) => ({ id: i.id, key: i.key, user: i.user, at: i.lastScannedAt!, via: i.lastScannedVia }));
  }

  markScanned(id: number, at: number, via: string): void {
    const i = this.idents.get(id)!;
    if (i.lastScannedAt !== null && i.lastScannedAt >= at) return;
    i.lastScannedAt = at;
    i.lastScannedVia = via;
    i.scanned = true;
  }

  openByIdentity(identityId: number): { id: number; ip: string; channel: string; lastSeen: number }[] {
    return (this.byIdent.get(identityId) ?? []).filter((b) => b.open).map((b) => ({ id: b.id, ip: b.ip, channel: b.channel, lastSeen: b.lastSeen }));
  }

  /**
   * Up to VPN_SESSIONS_READ of each kind, from the sessions index (the batch's own new and changed
   * sessions in it as they are now). Fewer of a kind than that are all of it only if the kind was
   * read whole; else the stored ones not loaded may make "2 or more": SessionsNotLoaded.
   */
  openVpnByUser(user: string, remoteIp: string | null): OpenVpnSessions {
    const read = (from: string | null | undefined): OpenVpnSession[] => {
      const out: OpenVpnSession[] = [];
      for (const b of this.sessionsOf(user, from)) {
        out.push({ id: b.id, identity_id: b.identityId, start_at: b.startAt, remote_ip: b.remoteIp });
        if (out.length === VPN_SESSIONS_READ) return out;
      }
      if (!this.wholeKinds.has(sessionKind(user, from))) throw new SessionsNotLoaded(user);
      return out;
    };
    return { from: () => (remoteIp === null ? [] : read(remoteIp)), unknown: () => read(null), any: () => read(undefined) };
  }

  endBinding(id: number, at: number, reason: string): void {
    const b = this.binds.get(id)!;
    if (!b.open) return;
    this.indexSession(b, false);
    b.open = false;
    b.end = { at, reason };
  }

  renewBinding(id: number, at: number, expiresAt: number, session: VpnSession | null): void {
    const b = this.binds.get(id)!;
    b.lastSeen = Math.max(b.lastSeen, at);
    b.expiresAt = expiresAt;
    b.renewed++;
    const moves = (session?.user != null && session.user !== b.vpnUser) || (session?.remoteIp != null && session.remoteIp !== b.remoteIp);
    if (moves) this.indexSession(b, false);
    if (session?.user != null && session.user !== b.vpnUser) {
      b.vpnUser = session.user;
      b.sessionChanged = true;
    }
    if (session?.remoteIp != null && session.remoteIp !== b.remoteIp) {
      b.remoteIp = session.remoteIp;
      b.sessionChanged = true;
    }
    if (moves) this.indexSession(b, true);
  }

  insertBinding(nb: NewBinding): number {
    const b: Bind = {
      id: -(this.newBinds.length + 1), ip: nb.ip, identityId: nb.identityId, channel: nb.channel, startAt: nb.at, lastSeen: nb.at,
      open: true, created: { format: nb.format }, renewed: 0, expiresAt: nb.expiresAt, vpnUser: nb.session?.user ?? null, remoteIp: nb.session?.remoteIp ?? null,
    };
    this.newBinds.push(b);
    this.addBind(b);
    return b.id;
  }

  insertSighting(r: SightingRecord): void {
    this.records.push(r);
  }

  /** The batch's writes as the write statement's six JSON parameters, new ids resolved with `id`. */
  writeParams(id: { ident: (n: number) => number; bind: (n: number) => number }): string[] {
    const stored = [...this.idents.values()].filter((i) => !i.created && (i.touched || i.scanned));
    const changed = [...this.binds.values()].filter((b) => !b.created && (b.renewed || b.end));
    return [
      this.newIdents.map((i) => ({
        id: id.ident(i.id), key: i.key, mac: i.mac, duid: i.duid, user: i.user, hostname: i.hostname, host_key: i.hostKey,
        first_seen: i.created!.firstSeen, last_seen: i.created!.lastSeen, last_scanned_at: i.lastScannedAt, last_scanned_via: i.lastScannedVia,
      })),
      stored.map((i) => ({
        id: i.id, at: i.touched?.at ?? null, hostname: i.touched?.hostname ?? null, host_key: i.touched?.hostKey ?? null, user: i.touched?.user ?? null,
        mac: i.touched?.mac ?? null, scan_at: i.scanned ? i.lastScannedAt : null, scan_via: i.scanned ? i.lastScannedVia : null,
      })),
      this.newBinds.map((b) => ({
        id: id.bind(b.id), ip: b.ip, identity_id: id.ident(b.identityId), channel: b.channel, format: b.created!.format, start_at: b.startAt,
        last_seen: b.lastSeen, expires_at: b.expiresAt, end_at: b.end?.at ?? null, end_reason: b.end?.reason ?? null, renewals: b.renewed,
        vpn_user: b.vpnUser, remote_ip: b.remoteIp,
      })),
      changed.map((b) => ({
        id: b.id, renewed: b.renewed, last_seen: b.lastSeen, expires_at: b.expiresAt ?? null, end_at: b.end?.at ?? null, end_reason: b.end?.reason ?? null,
        vpn_user: b.sessionChanged ? b.vpnUser : null, remote_ip: b.sessionChanged ? b.remoteIp : null,
      })),
      this.records.map((r, n) => ({
        n, at: r.at, kind: r.kind, ip: r.ip, identity_id: r.identityId === null ? null : id.ident(r.identityId),
        binding_id: r.bindingId === null ? null : id.bind(r.bindingId), format: r.format, source: r.source, json: r.json,
      })),
      this.newHolders.map(([hk, holder]) => ({ host_key: hk, identity_id: id.ident(holder) })),
    ].map((rows) => JSON.stringify(rows));
  }
}

/** What the load query needs to know of a batch. */
function lookups(sightings: Sighting[], linking: boolean) {
  const ips = new Set<string>();
  const keys = new Set<string>();
  const users = new Set<string>();
  const hosts = new Set<string>();
  const named = new Set<string>();
  const pairs = new Map<string, [string, string]>();
  for (const x of sightings) {
    const s = capNames(x);
    if (isUnspecified(s.ip)) {
      // (the user and public address as apply.ts applyWithoutAddress asks for them)
      if (s.kind !== 'tunnel-down' || !s.user) continue;
      const user = s.user.toLowerCase();
      users.add(user);
      if (s.remoteIp) pairs.set(JSON.stringify([user, s.remoteIp]), [user, s.remoteIp]);
      continue;
    }
    ips.add(s.ip);
    if (isEnding(s.kind)) continue;
    keys.add(identityKey(s));
    const hk = identityFields(s, 0).hostKey;
    if (isLinkableHostKey(hk)) named.add(hk);
    if (linking && isLinkableHostKey(hk)) hosts.add(hk);
  }
  return { ips: [...ips], keys: [...keys], users: [...users], hosts: [...hosts], named: [...named], pairs: [...pairs.values()] };
}

/** Apply `sightings` in order inside the caller's transaction; the same results as one at a time. */
export async function applyBatch(db: PgDb, sightings: Sighting[], opts: InventoryOptions, links: LinkRules, leases?: LeaseTimes): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  // (in parts where an address-less end needs sessions the load left out: each part loaded afresh, after the writes of the last)
  for (let done = 0; done < sightings.length;) {
    const part = await applyPart(db, done ? sightings.slice(done) : sightings, opts, links, leases);
    results.push(...part);
    done += part.length;
  }
  return results;
}

/**
 * Apply the first of `sightings` on one load and write them: all, or those before an address-less
 * end the load cannot answer (SessionsNotLoaded; never the first: freshly loaded, each kind of
 * sessions is whole or VPN_SESSIONS_READ strong). Their results.
 */
async function applyPart(db: PgDb, sightings: Sighting[], opts: InventoryOptions, links: LinkRules, leases?: LeaseTimes): Promise<ApplyResult[]> {
  const want = lookups(sightings, links.on);
  const loaded = (await db.row<{ identities: unknown[][]; bindings: unknown[][]; holders: unknown[][] }>(S.load,
    [want.keys, want.ips, want.users, want.hosts, SCANNED_PER_HOST + want.keys.length, want.named, want.pairs.map((p) => p[0]), want.pairs.map((p) => p[1])]))!;
  const model = new BatchModel(loaded.identities, loaded.bindings, loaded.holders, want);
  const results: ApplyResult[] = [];
  for (const s of sightings) {
    try {
      results.push(applySighting(s, model, opts, links, leases));
    } catch (err) {
      // (thrown before the sighting changed anything: the session lookup is an address-less end's first step)
      if (err instanceof SessionsNotLoaded && results.length > 0) break;
      throw err;
    }
  }
  let identIds: number[] = [];
  let bindIds: number[] = [];
  if (model.newIdents.length || model.newBinds.length) {
    const got = (await db.row<{ identities: number[]; bindings: number[] }>(S.ids, [model.newIdents.length, model.newBinds.length]))!;
    // ascending, so rows get ids in the order this batch created them (as on SQLite)
    identIds = got.identities.map(Number).sort((a, b) => a - b);
    bindIds = got.bindings.map(Number).sort((a, b) => a - b);
  }
  const id = { ident: (n: number) => (n < 0 ? identIds[-n - 1] : n), bind: (n: number) => (n < 0 ? bindIds[-n - 1] : n) };
  if (model.changed) {
    await db.query(S.write, model.writeParams(id));
  }
  return results.map((r) => {
    const out: ApplyResult = { ...r };
    if (r.identityId !== undefined) out.identityId = id.ident(r.identityId);
    if (r.bindingId !== undefined) out.bindingId = id.bind(r.bindingId);
    return out;
  });
}
