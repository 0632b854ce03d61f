/**
 * A batch of sightings applied to the PostgreSQL inventory in three round trips instead of about
 * two per sighting: (1) one query loads the rows the batch can touch (the identities of its keys,
 * the open bindings of its addresses, the scanned identities under its host keys, its names' first
 * holders, a few open sessions of each kind a 0.0.0.0 tunnel-down may need, and where the rules
 * read an identity's open bindings, those: see below); (2) the inventory's rules
 * (src/inventory/apply.ts, the same code SQLite runs) apply the sightings one after another, in
 * order, to that in-memory copy, so a batch that repeats an address or an identity sees its own
 * earlier effects exactly as the one-at-a-time path would; (3) one statement writes the result
 * (new rows with ids taken from the sequences in creation order, changes to existing rows as
 * relative updates: last_seen forward, coalesced names, renewals added, an end only on an open
 * binding), after one more for those ids when the batch created rows.
 *
 * The copy answers every lookup the rules make by address, identity key and host key with every
 * row it can return (host-key candidates: the top 50 plus one per identity the batch touches, since
 * only those can leave the group). Two reads are bounded instead, since forged lines can give one
 * user name or one identity thousands of open bindings:
 * - a user's open VPN sessions (an address-less end): VPN_SESSIONS_READ of each kind (from the
 *   public address the line names, from none known, any), which answers "2 or more";
 * - an identity's open bindings (ApplyOps.openByIdentity), read by two rules only: a DHCP line with
 *   a MAC (movesDhcp) reads its device's DHCP leases, all of them (it ends them; the rules keep one
 *   per family); a line that can link by a pattern (inheritScan) asks `apart` of its device and of
 *   the name's first holder, for which WHEREABOUTS_READ of each channel tell (BatchModel.plan).
 *   Lines that cannot link, and identities no rule asks about, load none of them.
 * Where the batch's own changes (or a line the load did not plan for) leave too few known to decide
 * as one sighting at a time would, the batch reads a few more before the line: a small query by
 * user and kind, or by identity and channel, that leaves out the rows already held (all of an
 * identity's of a channel only where stored rows the rules do not make leave a few more undecided:
 * BatchModel.plan). That is consistent:
 * nothing is written until the end, and the batch changes only rows it holds, so a row it does not
 * hold is as stored. (An address-less end asks for its sessions before it changes anything, so it is
 * retried once they are read; the reads of identities are planned before the line: BatchModel.plan.)
 * Writes to these rows by others during the batch would be missed; this process's writes are one
 * at a time (PgDb.transaction), and in a cluster only the leader applies.
 */
import type { LeaseTimes } from '../../inventory/lease-times.js';
import type { Sighting } from '../../sighting.js';
import type { ApplyResult, InventoryOptions } from '../types.js';
import { isLinkableHostKey } from '../../inventory/hostkey.js';
import { apart, LinkRules, type Whereabouts } from '../../inventory/linking.js';
import {
  applySighting, capNames, channelOf, identityFields, identityKey, isEnding, isUnspecified, movesDhcp, VPN_SESSIONS_READ,
  type ApplyOps, type IdentityFields, type NewBinding, type OpenBinding, type OpenVpnSession, type OpenVpnSessions, type ScannedIdentity, type SightingRecord, type VpnSession,
} from '../../inventory/apply.js';
import { statement as st, type PgDb } from './db.js';

const SCANNED_PER_HOST = 50;

/**
 * How many of an identity's open bindings of each channel the load reads where a line may ask
 * `apart` of it: two addresses of a channel say "apart" from any other there (BatchModel.plan).
 */
const WHEREABOUTS_READ = 2;

/** The channels of bindings (apply.ts channelOf): an identity's whereabouts are read by channel. */
const CHANNELS = ['dhcp', 'vpn'] as const;

const BINDING = 'SELECT id, ip, identity_id, channel, start_at, last_seen, vpn_user, remote_ip FROM bindings';
/**
 * A few open VPN sessions of one kind (a user's, from one public address, from none): the index on
 * user and public address reads VPN_SESSIONS_READ of them, whatever their number (no order: any
 * of them do, see BatchModel.openVpnByUser)
 */
const OPEN_SESSION = `AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ}`;
const BINDING_JSON = 'json_build_array(id, ip, identity_id, channel, start_at, last_seen, vpn_user, remote_ip)';
const IDENTITY_JSON = 'json_build_array(i.id, i.key, i.mac, i."user", i.hostname, i.host_key, i.last_scanned_at, i.last_scanned_via)';

const S = {
  // joins against unnest (not `= ANY`): one index probe per key, not every row against every key.
  // An identity's open bindings: of the keys of DHCP lines with a MAC ($9) the DHCP ones, all; of
  // the keys of lines that can link by a pattern ($10) and of those names' first holders ($11) a
  // few of each channel (`bounded`); of no other identity (a user's thousands of sessions are not read)
  load: st('batch_load', `WITH ik AS (SELECT i.id FROM unnest($1::text[]) AS k(key) JOIN identities i ON i.key = k.key),
    hs AS (SELECT h.id FROM unnest($4::text[]) AS k(hk) CROSS JOIN LATERAL (SELECT id FROM identities
      WHERE host_key = k.hk AND last_scanned_at IS NOT NULL ORDER BY last_scanned_at DESC, id DESC LIMIT $5) h),
    mv AS (SELECT i.id FROM unnest($9::text[]) AS k(key) JOIN identities i ON i.key = k.key),
    wa AS (SELECT i.id FROM unnest($10::text[]) AS k(key) JOIN identities i ON i.key = k.key
      UNION SELECT n.identity_id FROM unnest($11::text[]) AS k(hk) JOIN name_holders n ON n.host_key = k.hk),
    ob AS (
      SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.last_seen, b.vpn_user, b.remote_ip FROM unnest($2::text[]) AS a(ip) JOIN bindings b ON b.ip = a.ip AND b.end_at IS NULL
      UNION SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.last_seen, b.vpn_user, b.remote_ip FROM mv JOIN bindings b ON b.identity_id = mv.id AND b.end_at IS NULL AND b.channel = 'dhcp'
      UNION SELECT w.* FROM wa CROSS JOIN (VALUES ('dhcp'), ('vpn')) AS c(channel) CROSS JOIN LATERAL (${BINDING}
        WHERE identity_id = wa.id AND channel = c.channel AND end_at IS NULL LIMIT ${WHEREABOUTS_READ}) w
      UNION SELECT s.* FROM unnest($3::text[]) AS u(name) CROSS JOIN LATERAL (${BINDING} WHERE vpn_user = u.name ${OPEN_SESSION}) s
      UNION SELECT s.* FROM unnest($3::text[]) AS u(name) CROSS JOIN LATERAL (${BINDING} WHERE vpn_user = u.name AND remote_ip IS NULL ${OPEN_SESSION}) s
      UNION SELECT s.* FROM unnest($7::text[], $8::text[]) AS p(name, ip) CROSS JOIN LATERAL (${BINDING} WHERE vpn_user = p.name AND remote_ip = p.ip ${OPEN_SESSION}) s),
    ids AS (SELECT id FROM ik UNION SELECT identity_id FROM ob UNION SELECT id FROM hs UNION SELECT id FROM wa)
    SELECT (SELECT coalesce(json_agg(${IDENTITY_JSON}), '[]') FROM ids JOIN identities i ON i.id = ids.id) AS identities,
      (SELECT coalesce(json_agg(${BINDING_JSON} ORDER BY id), '[]') FROM ob) AS bindings,
      (SELECT coalesce(json_agg(json_build_array(n.host_key, n.identity_id)), '[]') FROM unnest($6::text[]) AS k(hk) JOIN name_holders n ON n.host_key = k.hk) AS holders,
      (SELECT coalesce(json_agg(id), '[]') FROM mv) AS dhcp_whole, (SELECT coalesce(json_agg(id), '[]') FROM wa) AS bounded`),
  // More of a user's open sessions ($1) of the kinds asked ($3: 'from' public address $2, 'unknown'
  // address, 'any'), a few of each, leaving out those the batch holds ($4: their stored user is $1);
  // how many came of each kind; their identities
  moreSessions: st('batch_more_sessions', `WITH s AS (
      (SELECT 'from' AS k, b.* FROM (${BINDING} WHERE 'from' = ANY($3::text[]) AND vpn_user = $1 AND remote_ip = $2 AND id <> ALL($4::bigint[]) ${OPEN_SESSION}) b)
      UNION ALL (SELECT 'unknown', b.* FROM (${BINDING} WHERE 'unknown' = ANY($3::text[]) AND vpn_user = $1 AND remote_ip IS NULL AND id <> ALL($4::bigint[]) ${OPEN_SESSION}) b)
      UNION ALL (SELECT 'any', b.* FROM (${BINDING} WHERE 'any' = ANY($3::text[]) AND vpn_user = $1 AND id <> ALL($4::bigint[]) ${OPEN_SESSION}) b)),
    r AS (SELECT DISTINCT id, ip, identity_id, channel, start_at, last_seen, vpn_user, remote_ip FROM s)
    SELECT (SELECT coalesce(json_agg(${BINDING_JSON} ORDER BY id), '[]') FROM r) AS bindings,
      (SELECT coalesce(json_object_agg(k, n), '{}') FROM (SELECT k, count(*) AS n FROM s GROUP BY k) c) AS kinds,
      (SELECT coalesce(json_agg(${IDENTITY_JSON}), '[]') FROM identities i WHERE i.id IN (SELECT identity_id FROM r)) AS identities`),
  // More of identities' open bindings, by identity and channel ($1, $2), at most $3 of each (null:
  // all), leaving out those the batch holds ($4)
  moreWhereabouts: st('batch_more_whereabouts', `WITH w AS (SELECT b.* FROM unnest($1::bigint[], $2::text[], $3::int[]) AS q(id, channel, lim)
      CROSS JOIN LATERAL (${BINDING} WHERE identity_id = q.id AND channel = q.channel AND end_at IS NULL AND id <> ALL($4::bigint[]) LIMIT q.lim) b)
    SELECT (SELECT coalesce(json_agg(${BINDING_JSON} ORDER BY id), '[]') FROM w) AS bindings,
      (SELECT coalesce(json_agg(${IDENTITY_JSON}), '[]') FROM identities i WHERE i.id = ANY($1::bigint[])) AS identities`),
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

/** A binding's place in id order (new rows after every stored one, in the order they were made). */
const bindRank = (b: Bind): number => (b.id > 0 ? b.id : NEW_RANK - b.id);

/** The user and public address address-less ends of a batch name (folded as apply.ts folds them). */
interface SessionLookups {
  users: string[];
  /** [user, public address] */
  pairs: [string, string][];
}

/** What the load query returns: rows as JSON arrays; which identities' DHCP leases it read whole, of which a few of each channel. */
interface Loaded {
  identities: unknown[][];
  bindings: unknown[][];
  holders: unknown[][];
  dhcp_whole: number[];
  bounded: number[];
}

/** More of an identity's open bindings of a channel to read: a few (WHEREABOUTS_READ), or all. */
interface WhereaboutsRead {
  id: number;
  channel: string;
  all: boolean;
}

/** The kinds of a user's open sessions an address-less end may read (apply.ts OpenVpnSessions). */
type SessionKindName = 'from' | 'unknown' | 'any';

/** A kind of a user's open VPN sessions: all, from a public address, from none (null). */
const sessionKind = (user: string, from: string | null | undefined): string => JSON.stringify(from === undefined ? [user] : [user, from]);

/** how many `xs` yields, counted up to `upTo` */
function count(xs: Iterable<unknown>, upTo: number): number {
  let n = 0;
  for (const _ of xs) if (++n >= upTo) break;
  return n;
}

/** Does the operator's pattern vouch for host key `hk` (linking.ts evidence)? Only then may `apart` decide a link. */
const NOBODY = { id: 0, key: '', user: null };
const patternVouches = (links: LinkRules, hk: string): boolean => links.evidence(NOBODY, NOBODY, hk) === 'pattern';

/**
 * Thrown where the rows held cannot tell an address-less end what it needs (the batch's own
 * changes left fewer than VPN_SESSIONS_READ known of a kind that had more stored): applyBatch
 * reads more of the user's sessions (BatchModel.sessionsToRead) and applies the line again. It is
 * thrown before the line changed anything: reading the sessions is an address-less end's first step.
 */
/**
 * The batch's model found it does not hold what a rule reads (BatchModel.plan did not foresee it):
 * a bug, never reached in the tests and fuzzes. Its caller applies the batch one sighting at a time
 * instead (the reference path), so a batch that meets it is not retried for ever, holding ingest.
 */
export class BatchModelIncomplete extends Error {}

class SessionsNotLoaded extends Error {
  constructor(readonly user: string, readonly remoteIp: string | null) {
    super(`the batch holds too few of the open VPN sessions of user ${user} to tell which one an address-less end ends`);
  }
}

/** The rows a batch touches, the rules' reads and writes on them, and what is to be written. */
export class BatchModel implements ApplyOps {
  private readonly idents = new Map<number, Ident>();
  private readonly byKey = new Map<string, Ident>();
  private readonly byHost = new Map<string, Set<Ident>>();
  private readonly binds = new Map<number, Bind>();
  /** open bindings by address, in id order */
  private readonly openAt = new Map<string, Bind[]>();
  /** bindings by identity, in id order: of a stored identity those held, not all (whereabouts) */
  private readonly byIdent = new Map<number, Bind[]>();
  /** open VPN sessions by folded user, then public address (null: not known) */
  private readonly sessions = new Map<string, Map<string | null, Set<Bind>>>();
  /** the kinds of sessions (sessionKind) whose every stored row is held; of the others VPN_SESSIONS_READ or more were read */
  private readonly wholeKinds = new Set<string>();
  /** the stored bindings held, by their user as stored (left out when more of the user's sessions are read) */
  private readonly heldOfUser = new Map<string, number[]>();
  /**
   * how much of a stored identity's open bindings of a channel is held: all ('whole'), or
   * WHEREABOUTS_READ or more ('some'); not there: those that came by address or user only
   */
  private readonly whereRead = new Map<number, Map<string, 'some' | 'whole'>>();
  /** the stored identities whose open bindings the line about to be applied may read as held (plan) */
  private readonly cleared = new Set<number>();
  readonly newIdents: Ident[] = [];
  readonly newBinds: Bind[] = [];
  readonly records: SightingRecord[] = [];
  /** the first holders of the batch's names that can link (as stored, then as this batch claims them) */
  private readonly holders = new Map<string, number>();
  readonly newHolders: [string, number][] = [];

  constructor(loaded: Loaded, asked: SessionLookups) {
    for (const [hk, id] of loaded.holders as [string, number][]) this.holders.set(hk, Number(id));
    this.hold(loaded.identities, loaded.bindings);
    // A kind of which fewer than VPN_SESSIONS_READ were loaded (by its query, or by address or
    // identity) was read whole: its query stopped short of its limit. A user's sessions read whole: each kind of them too.
    const whole = (user: string, from: string | null | undefined) => {
      if (from !== undefined && this.wholeKinds.has(sessionKind(user, undefined))) return true;
      return count(this.sessionsOf(user, from), VPN_SESSIONS_READ) < VPN_SESSIONS_READ;
    };
    for (const user of asked.users) for (const from of [undefined, null]) if (whole(user, from)) this.wholeKinds.add(sessionKind(user, from));
    for (const [user, from] of asked.pairs) if (whole(user, from)) this.wholeKinds.add(sessionKind(user, from));
    // the same for an identity's bindings of a channel: fewer than the query's limit held, all were
    for (const id of loaded.dhcp_whole) this.setWhereRead(Number(id), 'dhcp', 'whole');
    for (const id of loaded.bounded.map(Number)) {
      for (const c of CHANNELS) if (!this.wholeIn(id, c)) this.setWhereRead(id, c, this.openOf(id, c) < WHEREABOUTS_READ ? 'whole' : 'some');
    }
  }

  /** Rows read from the store (as stored: rows held already are the batch's, and stay as they are). */
  private hold(identities: unknown[][], bindings: unknown[][]): void {
    for (const [id, key, mac, user, hostname, hostKey, at, via] of identities as [number, string, string | null, string | null, string | null, string | null, number | null, string | null][]) {
      if (this.idents.has(Number(id))) continue;
      this.addIdent({ id: Number(id), key, mac, duid: null, user, hostname, hostKey, lastScannedAt: at, lastScannedVia: via, rank: Number(id) });
    }
    for (const [id, ip, identityId, channel, startAt, lastSeen, vpnUser, remoteIp] of bindings as [number, string, number, string, number, number, string | null, string | null][]) {
      if (this.binds.has(Number(id))) continue;
      this.addBind({ id: Number(id), ip, identityId: Number(identityId), channel, startAt, lastSeen, open: true, renewed: 0, vpnUser, remoteIp });
      if (vpnUser !== null) {
        const of = this.heldOfUser.get(vpnUser);
        if (of) of.push(Number(id));
        else this.heldOfUser.set(vpnUser, [Number(id)]);
      }
    }
  }

  /** the open sessions of `user` known here: all of them (`from` undefined), or from one public address (null: none known) */
  private *sessionsOf(user: string, from?: string | null): Generator<Bind> {
    const by = this.sessions.get(user);
    if (!by) return;
    if (from !== undefined) yield* by.get(from) ?? [];
    else for (const set of by.values()) yield* set;
  }

  private sessionsWhole(user: string, from: string | null | undefined): boolean {
    return this.wholeKinds.has(sessionKind(user, from)) || this.wholeKinds.has(sessionKind(user, undefined));
  }

  /**
   * The kinds of `user`'s sessions an address-less end naming `remoteIp` may read (sessionToEnd)
   * of which fewer than VPN_SESSIONS_READ are held and others may be stored; the stored ones
   * held (to leave out of the read: the batch's copy is what counts).
   */
  sessionsToRead(user: string, remoteIp: string | null): { kinds: SessionKindName[]; held: number[] } {
    const short = (from: string | null | undefined) => !this.sessionsWhole(user, from) && count(this.sessionsOf(user, from), VPN_SESSIONS_READ) < VPN_SESSIONS_READ;
    const kinds: SessionKindName[] = [];
    if (remoteIp !== null && short(remoteIp)) kinds.push('from');
    if (remoteIp !== null && short(null)) kinds.push('unknown');
    if (short(undefined)) kinds.push('any');
    return { kinds, held: this.heldOfUser.get(user) ?? [] };
  }

  /** Sessions read for sessionsToRead's `kinds`, and how many came of each: fewer than asked of a kind, it is whole now. */
  addSessions(user: string, remoteIp: string | null, kinds: SessionKindName[], rows: unknown[][], came: Partial<Record<SessionKindName, number>>, identities: unknown[][]): void {
    this.hold(identities, rows);
    const from = { from: remoteIp, unknown: null, any: undefined };
    for (const k of kinds) if ((came[k] ?? 0) < VPN_SESSIONS_READ) this.wholeKinds.add(sessionKind(user, from[k]));
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

  private setWhereRead(id: number, channel: string, how: 'some' | 'whole'): void {
    let of = this.whereRead.get(id);
    if (!of) this.whereRead.set(id, (of = new Map()));
    of.set(channel, how);
  }

  /** Are all of identity `id`'s open bindings of `channel` held? (a new identity's are) */
  private wholeIn(id: number, channel: string): boolean {
    return id < 0 || this.whereRead.get(id)?.get(channel) === 'whole';
  }

  /** how many open bindings of `channel` identity `id` has here */
  private openOf(id: number, channel: string): number {
    return (this.byIdent.get(id) ?? []).filter((b) => b.open && b.channel === channel).length;
  }

  /** identity `id`'s open bindings held (its whereabouts, as far as held) */
  private whereabouts(id: number): Whereabouts {
    return (this.byIdent.get(id) ?? []).filter((b) => b.open).map((b) => ({ ip: b.ip, channel: b.channel }));
  }

  /**
   * Before line `x` is applied: which identities' open bindings it may read (openByIdentity), and
   * what of them is still to be read for it to decide as one sighting at a time would (none: apply
   * it now, with no await in between). The rules read them in two places (apply.ts):
   * - a DHCP line with a MAC (movesDhcp): its device's DHCP leases, all of them (the one newer
   *   elsewhere refuses the line, the others it ends);
   * - a line that can link (inheritScan): its device's, and where the name's pattern vouches, the
   *   name's first holder's, only to ask `apart` of them. `apart` is read from what is held where
   *   that tells: two addresses of a channel are apart from any other address there, and a channel
   *   is settled when one side has none there or both are held whole. Else a few more of the
   *   undecided channels are read, leaving out those held, which settles it: the rules keep one
   *   open binding to an address, so a few more are other addresses (what left it undecided is the
   *   batch ending the few it held). Where stored rows break that (open bindings at one address
   *   twice), all of them are read (`readForLine`: what was read so for this line). Only the holder
   *   before the line can pass (claimName keeps a name's first holder; the line's own identity is
   *   skipped), and only if it is among the name's scanned identities (the line can only push one
   *   of those out).
   * The reads over-cover (a line that takes no new name reads nothing of them); openByIdentity
   * refuses a stored identity not held whole that the plan did not clear: a rule reading it where
   * this plan does not foresee would otherwise decide on some of its bindings.
   */
  plan(x: Sighting, links: LinkRules, readForLine: ReadonlySet<string>): WhereaboutsRead[] {
    this.cleared.clear();
    const s = capNames(x);
    if (isUnspecified(s.ip) || isEnding(s.kind)) return [];
    const me = this.byKey.get(identityKey(s));
    const reads = new Map<string, WhereaboutsRead>();
    const read = (id: number, channel: string, all: boolean) => {
      const r = reads.get(`${id} ${channel}`);
      if (r) r.all ||= all;
      else reads.set(`${id} ${channel}`, { id, channel, all });
    };
    if (movesDhcp(s) && me) {
      if (!this.wholeIn(me.id, 'dhcp')) read(me.id, 'dhcp', true);
      this.cleared.add(me.id);
    }
    const hk = identityFields(s, 0).hostKey;
    if (links.on && isLinkableHostKey(hk)) {
      if (me) this.cleared.add(me.id);
      const holder = this.holders.get(hk);
      if (patternVouches(links, hk) && holder !== undefined && holder !== me?.id && this.scannedByHost(hk).some((o) => o.id === holder)) {
        const here = [{ ip: s.ip, channel: channelOf(s.kind) }, ...(me ? this.whereabouts(me.id) : [])];
        const there = this.whereabouts(holder);
        let settled = true;
        if (!apart(here, there)) {
          for (const c of CHANNELS) {
            const mine = !me || this.wholeIn(me.id, c);
            const theirs = this.wholeIn(holder, c);
            if ((mine && theirs) || (mine && !here.some((w) => w.channel === c)) || (theirs && !there.some((w) => w.channel === c))) continue;
            settled = false;
            // (a few more first; all once a few more read for this line told nothing)
            if (!mine) read(me!.id, c, readForLine.has(`${me!.id} ${c}`));
            if (!theirs) read(holder, c, readForLine.has(`${holder} ${c}`));
          }
        }
        if (settled) this.cleared.add(holder);
      }
    }
    return [...reads.values()];
  }

  /** The stored bindings of the plan's identities held (to leave out of the read). */
  heldOf(ids: number[]): number[] {
    return ids.flatMap((id) => (this.byIdent.get(id) ?? []).filter((b) => b.id > 0).map((b) => b.id));
  }

  /** Bindings read for `asked` (plan): of each, fewer than a few read or all of them asked, the channel is held whole now. */
  addWhereabouts(asked: WhereaboutsRead[], rows: unknown[][], identities: unknown[][]): void {
    this.hold(identities, rows);
    for (const r of asked) {
      const got = rows.filter((b) => Number(b[2]) === r.id && b[3] === r.channel).length;
      this.setWhereRead(r.id, r.channel, r.all || got < WHEREABOUTS_READ ? 'whole' : 'some');
    }
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

  /** `b` into `list`, kept in id order (a stored row read after the batch made some comes before them) */
  private static inOrder(list: Bind[] | undefined, b: Bind): Bind[] {
    if (!list) return [b];
    let k = list.length;
    while (k > 0 && bindRank(list[k - 1]) > bindRank(b)) k--;
    list.splice(k, 0, b);
    return list;
  }

  private addBind(b: Bind): void {
    this.binds.set(b.id, b);
    this.openAt.set(b.ip, BatchModel.inOrder(this.openAt.get(b.ip), b));
    this.byIdent.set(b.identityId, BatchModel.inOrder(this.byIdent.get(b.identityId), b));
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

  /** (only where plan cleared it, or all of it is held: see plan) */
  openByIdentity(identityId: number): { id: number; ip: string; channel: string; lastSeen: number }[] {
    if (!this.cleared.has(identityId) && !CHANNELS.every((c) => this.wholeIn(identityId, c))) {
      throw new BatchModelIncomplete(`batch: the open bindings of identity ${identityId} read where BatchModel.plan did not foresee it (only some of them are held)`);
    }
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
      if (!this.sessionsWhole(user, from)) throw new SessionsNotLoaded(user, remoteIp);
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

/** What the load query needs to know of a batch (`links` as plan reads them). */
function lookups(sightings: Sighting[], links: LinkRules) {
  const ips = new Set<string>();
  const keys = new Set<string>();
  const users = new Set<string>();
  const hosts = new Set<string>();
  const named = new Set<string>();
  const pairs = new Map<string, [string, string]>();
  /** keys of DHCP lines with a MAC; of lines that can link by a pattern, and those names (BatchModel.plan) */
  const moving = new Set<string>();
  const linking = new Set<string>();
  const vouched = new Set<string>();
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
    const key = identityKey(s);
    keys.add(key);
    if (movesDhcp(s)) moving.add(key);
    const hk = identityFields(s, 0).hostKey;
    if (!isLinkableHostKey(hk)) continue;
    named.add(hk);
    if (!links.on) continue;
    hosts.add(hk);
    if (patternVouches(links, hk)) {
      linking.add(key);
      vouched.add(hk);
    }
  }
  return {
    ips: [...ips], keys: [...keys], users: [...users], hosts: [...hosts], named: [...named], pairs: [...pairs.values()],
    moving: [...moving], linking: [...linking], vouched: [...vouched],
  };
}

/**
 * Apply `sightings` in order inside the caller's transaction; the same results as one at a time.
 * The inventory options are those of `opts` for the whole batch (a reload during it applies after).
 */
export async function applyBatch(db: PgDb, sightings: Sighting[], opts: InventoryOptions, _links: LinkRules, leases?: LeaseTimes): Promise<ApplyResult[]> {
  if (sightings.length === 0) return [];
  // (the caller's LinkRules read its options live: the load and every line's plan must see the same)
  const links = new LinkRules(() => opts);
  const want = lookups(sightings, links);
  const loaded = (await db.row<Loaded>(S.load, [want.keys, want.ips, want.users, want.hosts, SCANNED_PER_HOST + want.keys.length, want.named,
    want.pairs.map((p) => p[0]), want.pairs.map((p) => p[1]), want.moving, want.linking, want.vouched]))!;
  const model = new BatchModel(loaded, want);
  const results: ApplyResult[] = [];
  for (const s of sightings) results.push(await applyOne(db, model, s, opts, links, leases));
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

/**
 * One line on the model: what its plan asks read first (a few more, then all: twice at most per
 * identity and channel), then applied; an address-less end that finds too few sessions held
 * (SessionsNotLoaded, before it changed anything) reads more of them and is applied again, once:
 * after that read each kind it may need is whole or VPN_SESSIONS_READ strong.
 */
async function applyOne(db: PgDb, model: BatchModel, s: Sighting, opts: InventoryOptions, links: LinkRules, leases?: LeaseTimes): Promise<ApplyResult> {
  // (identity and channel of which a few more were read for this line: all, if it comes to another read)
  const readForLine = new Set<string>();
  for (let retried = false; ; retried = true) {
    let reads = model.plan(s, links, readForLine);
    for (let n = 0; reads.length; n++, reads = model.plan(s, links, readForLine)) {
      if (n === 3) throw new BatchModelIncomplete('batch: the open bindings a line needs are still not held after reading them all');
      for (const r of reads) readForLine.add(`${r.id} ${r.channel}`);
      const more = (await db.row<{ bindings: unknown[][]; identities: unknown[][] }>(S.moreWhereabouts,
        [reads.map((r) => r.id), reads.map((r) => r.channel), reads.map((r) => (r.all ? null : WHEREABOUTS_READ)), model.heldOf([...new Set(reads.map((r) => r.id))])]))!;
      model.addWhereabouts(reads, more.bindings, more.identities);
    }
    try {
      return applySighting(s, model, opts, links, leases);
    } catch (err) {
      if (err instanceof SessionsNotLoaded && retried) throw new BatchModelIncomplete(`batch: ${err.message}, after its sessions were read`);
      if (!(err instanceof SessionsNotLoaded)) throw err;
      const asked = model.sessionsToRead(err.user, err.remoteIp);
      const more = (await db.row<{ bindings: unknown[][]; kinds: Partial<Record<SessionKindName, number>>; identities: unknown[][] }>(S.moreSessions,
        [err.user, err.remoteIp, asked.kinds, asked.held]))!;
      model.addSessions(err.user, err.remoteIp, asked.kinds, more.bindings, more.kinds, more.identities);
    }
  }
}
