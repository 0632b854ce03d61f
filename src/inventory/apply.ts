/**
 * The inventory's rules for one sighting, written once over the reads and writes they need
 * (`ApplyOps`): SQLite runs them on its statements (inventory.ts), PostgreSQL's batched apply on
 * an in-memory copy of the rows a batch touches (src/store/postgres/batch.ts), so both apply a
 * stream of sightings alike. The ops are synchronous: each implementation has its rows at hand.
 */
import type { LeaseTimes } from './lease-times.js';
import { MAX_DURATION_S, type Sighting } from '../sighting.js';
import type { ApplyResult, BindingView, Change, InventoryOptions } from '../store/types.js';
import { hostKey, isLinkableHostKey } from './hostkey.js';
import { apart, linkedVia, type LinkFacts, type LinkRules } from './linking.js';

/** What the rules read of an address's open binding (its holder's fields as they are now). */
export type OpenBinding = Pick<BindingView, 'id' | 'identityId' | 'identityKey' | 'mac' | 'user' | 'startAt' | 'lastSeen'>;

/** The identity fields a sighting writes (null: not in the sighting). */
export interface IdentityFields {
  mac: string | null;
  duid: string | null;
  user: string | null;
  hostname: string | null;
  hostKey: string | null;
  at: number;
}

export interface NewBinding {
  ip: string;
  identityId: number;
  channel: 'dhcp' | 'vpn';
  format: string;
  at: number;
  expiresAt: number;
  /** a VPN session's user and public address (null: a DHCP lease) */
  session: VpnSession | null;
}

/**
 * What a VPN session is known by besides its inner address: its user, case-folded in JS (SQL's
 * lower() folds ASCII only on SQLite and by the locale on PostgreSQL), and the client's public
 * address, each as the session's latest line said it (null: not said). A session end that names
 * no inner address is matched on them.
 */
export interface VpnSession {
  user: string | null;
  remoteIp: string | null;
}

/** An open VPN session as the address-less end finds it. */
export interface OpenVpnSession {
  id: number;
  identity_id: number;
  start_at: number;
  remote_ip: string | null;
}

/**
 * What an address-less end reads of a user's open VPN sessions: at most VPN_SESSIONS_READ of each
 * kind it may need, each read when sessionToEnd asks for it. It decides on "none", "this one" or
 * "more than one", so two of a kind say all it needs: a user name that forged lines gave 20,000
 * open sessions costs each end the same few index reads as one with a single session. Which of
 * several are read is the store's (no order: an order by id cost a sort of them all on PostgreSQL).
 */
export interface OpenVpnSessions {
  /** the user's open sessions from the public address the line names (none named: none) */
  from(): OpenVpnSession[];
  /** those whose lines named no public address (a session opened before the upgrade that stored it, or by a line without one) */
  unknown(): OpenVpnSession[];
  /** any of the user's open sessions */
  any(): OpenVpnSession[];
}

/** How many sessions of each kind an address-less end reads: one more than one, "2 or more". */
export const VPN_SESSIONS_READ = 2;

/** The session fields a (capped) VPN sighting states; null for a DHCP one. */
export function vpnSession(s: Sighting): VpnSession | null {
  if (channelOf(s.kind) !== 'vpn') return null;
  return { user: s.user ? s.user.toLowerCase() : null, remoteIp: s.remoteIp ?? null };
}

export interface SightingRecord {
  at: number;
  kind: string;
  ip: string;
  identityId: number | null;
  bindingId: number | null;
  format: string;
  source: string;
  json: string;
}

export type ScannedIdentity = LinkFacts & { at: number; via: string | null };

export interface ApplyOps {
  /** the address's open binding with the highest id */
  openByIp(ip: string): OpenBinding | undefined;
  identityByKey(key: string): { id: number; host_key: string | null } | undefined;
  /** a new identity (first_seen = last_seen = at); its id */
  insertIdentity(key: string, f: IdentityFields): number;
  /** last_seen forward; hostname, user, mac replaced where the sighting has them (host key with the hostname) */
  touchIdentity(id: number, f: IdentityFields): void;
  linkFacts(id: number): LinkFacts | undefined;
  /** the first identity recorded to take host key `hk` (claimName) */
  firstHolder(hk: string): number | undefined;
  /** record `identityId` as `hk`'s first holder, unless it has one */
  claimName(hk: string, identityId: number): void;
  /** identities under the host key with a last scan, newest scan first (ties: highest id), at most 50 */
  scannedByHost(hk: string): ScannedIdentity[];
  /** last scan moves forward only */
  markScanned(id: number, at: number, via: string): void;
  openByIdentity(identityId: number): { id: number; ip: string; channel: string; lastSeen: number }[];
  /**
   * open VPN sessions whose user (VpnSession.user) is `user`: up to VPN_SESSIONS_READ of each kind
   * (from `remoteIp`, from no known address, any), read through an index, never all of them
   */
  openVpnByUser(user: string, remoteIp: string | null): OpenVpnSessions;
  /** ends an open binding (an ended one stays as it is) */
  endBinding(id: number, at: number, reason: string): void;
  /** last_seen forward, the new expiry; a VPN session's user and public address replaced where the line states them */
  renewBinding(id: number, at: number, expiresAt: number, session: VpnSession | null): void;
  /** its id */
  insertBinding(b: NewBinding): number;
  insertSighting(r: SightingRecord): void;
}

/** Longest stored host name (a DNS name's limit) and user name: log lines are attacker-controlled. */
export const MAX_HOSTNAME = 253;
export const MAX_USER = 256;

export function capNames(s: Sighting): Sighting {
  if ((s.hostname?.length ?? 0) <= MAX_HOSTNAME && (s.user?.length ?? 0) <= MAX_USER) return s;
  return { ...s, hostname: s.hostname?.slice(0, MAX_HOSTNAME), user: s.user?.slice(0, MAX_USER) };
}

export function identityKey(s: Pick<Sighting, 'mac' | 'duid' | 'clientId' | 'user' | 'hostname' | 'ip'>): string {
  if (s.mac) return `mac:${s.mac}`;
  if (s.duid) return `duid:${s.duid.toLowerCase()}`;
  if (s.clientId) return `cid:${s.clientId.toLowerCase()}`;
  if (s.user) return userKey(s.user, s.hostname);
  if (s.hostname) return `host:${s.hostname.toLowerCase()}`;
  return `ip:${s.ip}`;
}

/**
 * A VPN user's identity key: `user:NAME`, or `user:NAME|HOST` with the host name its lines gave.
 * User names fold case (a VPN user logs in as Bob one day and bob the next: one device; SQLite
 * migration 13 folded the stored keys). A name with a '|' is written `user:|` and the name with '%'
 * and '|' percent-encoded (`a|b` on `c` and `a` on `b|c` both read `user:a|b|c`: one device). No
 * name without a '|' gives a key that starts so, and its keys are as they were (no migration).
 */
export function userKey(user: string, hostname?: string | null): string {
  const u = user.toLowerCase();
  const name = u.includes('|') ? `|${u.replace(/[%|]/g, (c) => (c === '%' ? '%25' : '%7c'))}` : u;
  return hostname ? `user:${name}|${hostname.toLowerCase()}` : `user:${name}`;
}

/**
 * The user name and host name of a key userKey writes (the name case-folded); undefined for any
 * other, and for a `user:|` key it would not write (a key stored before names with a '|' were
 * encoded: matched as it is, never read back).
 */
export function parseUserKey(key: string): { user: string; hostname?: string } | undefined {
  if (!key.startsWith('user:')) return undefined;
  const rest = key.slice(5);
  const encoded = rest.startsWith('|');
  const body = encoded ? rest.slice(1) : rest;
  const bar = body.indexOf('|');
  const name = bar < 0 ? body : body.slice(0, bar);
  const hostname = bar < 0 ? undefined : body.slice(bar + 1);
  if (name === '' || hostname === '') return undefined;
  if (!encoded) return { user: name, hostname };
  if (!/^(?:[^%]|%25|%7c)+$/i.test(name)) return undefined;
  const user = name.replace(/%25|%7c/gi, (e) => (e === '%25' ? '%' : '|'));
  return user.includes('|') ? { user, hostname } : undefined;
}

/** Does the sighting contradict the identity holding the binding? (a stale release for a reused IP) */
export function contradicts(s: Sighting, b: Pick<OpenBinding, 'mac' | 'user' | 'identityKey'>): boolean {
  if (s.mac && b.mac) return s.mac !== b.mac;
  if (s.user && b.user) return s.user.toLowerCase() !== b.user.toLowerCase();
  if (s.mac && b.identityKey.startsWith('user:')) return true;
  return false;
}

export const END_KIND: Record<string, string> = { release: 'released', expire: 'expired', 'tunnel-down': 'tunnel-down' };

/** Sightings that end a binding: they name an address (or a user) and touch no identity. */
export const isEnding = (kind: string): boolean => kind === 'release' || kind === 'expire' || kind === 'tunnel-down';

export const isUnspecified = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';

export const channelOf = (kind: string): 'dhcp' | 'vpn' => (kind === 'tunnel-up' || kind === 'tunnel-down' ? 'vpn' : 'dhcp');

/** The identity fields of a (capped) sighting. */
export function identityFields(s: Sighting, at: number): IdentityFields {
  return { mac: s.mac ?? null, duid: s.duid ?? null, user: s.user ?? null, hostname: s.hostname ?? null, hostKey: hostKey(s.hostname) ?? null, at };
}

/** Apply one sighting: the inventory's rules (see inventory.ts's header), on `ops`. */
export function applySighting(sighting: Sighting, ops: ApplyOps, opts: InventoryOptions, links: LinkRules, leases?: LeaseTimes): ApplyResult {
  const s = capNames(sighting);
  const at = Date.parse(s.at);
  const channel = channelOf(s.kind);
  const record = (identityId: number | null, bindingId: number | null) =>
    ops.insertSighting({ at, kind: s.kind, ip: s.ip, identityId, bindingId, format: s.format, source: s.source, json: JSON.stringify(s) });

  if (isUnspecified(s.ip)) return applyWithoutAddress(s, at, ops, record);
  const current = ops.openByIp(s.ip);

  if (isEnding(s.kind)) {
    if (!current) return { change: 'ignored', note: 'no open binding for this address' };
    if (contradicts(s, current)) return { change: 'ignored', note: `address now held by ${current.identityKey}` };
    // (older than the binding's latest line, its renewals included: a delayed release stamped before a renewal ends nothing)
    if (at < current.lastSeen) return { change: 'ignored', note: 'older than the binding it would end' };
    ops.endBinding(current.id, at, END_KIND[s.kind]);
    record(current.identityId, current.id);
    return { change: 'ended', bindingId: current.id, identityId: current.identityId };
  }

  const stale = staleForAddress(s, at, current);
  if (stale) return stale;
  if (movesDhcp(s)) {
    const known = ops.identityByKey(identityKey(s));
    const newer = known && ops.openByIdentity(known.id).find((b) => b.channel === 'dhcp' && sameFamily(b.ip, s.ip) && b.ip !== s.ip && b.lastSeen > at);
    if (newer) return staleForDevice(known.id, newer.ip);
  }
  const identityId = identityFor(s, at, ops, links);
  const expiresAt = expiryOf(s, at, opts, learnedLease(s, at, leases));
  if (current && current.identityId === identityId) {
    ops.renewBinding(current.id, at, expiresAt, vpnSession(s));
    return { change: 'renewed', bindingId: current.id, identityId };
  }
  let change: Change = 'new';
  if (current) {
    // IP reuse: the address now belongs to another device; the old binding ends now
    ops.endBinding(current.id, at, 'reassigned');
    change = 'reassigned';
  }
  // a device holds one DHCP address per family: its previous lease ends when it takes a new one
  if (movesDhcp(s)) {
    for (const b of ops.openByIdentity(identityId)) {
      if (b.channel === 'dhcp' && sameFamily(b.ip, s.ip) && b.ip !== s.ip) ops.endBinding(b.id, at, 'moved');
    }
  }
  const bindingId = ops.insertBinding({ ip: s.ip, identityId, channel, format: s.format, at, expiresAt, session: vpnSession(s) });
  record(identityId, bindingId);
  return { change, bindingId, identityId };
}

/**
 * When the binding a (capped) sighting starts or renews runs out, in whole ms: its expiry, else its lease time or
 * the longest session; MAX_DURATION_S at most (a far-off expiry is an infinite one, and no store
 * column holds 1e23 ms).
 */
export function expiryOf(s: Sighting, at: number, opts: Pick<InventoryOptions, 'maxSessionS' | 'defaultLeaseS'>, learnedLeaseS?: number): number {
  const stated = s.expiresAt ? Date.parse(s.expiresAt) : at + 1000 * (channelOf(s.kind) === 'vpn' ? opts.maxSessionS : s.durationS ?? learnedLeaseS ?? opts.defaultLeaseS);
  // (whole ms: a learned lease time is a mean, 3601.333 s, and PostgreSQL's BIGINT refused the line)
  return Math.round(Math.min(at + MAX_DURATION_S * 1000, stated));
}

/**
 * A DHCP line that states no lease time: noted (a renewal teaches its pool's lease time:
 * lease-times.ts), and the lease time learned for its pool, if any, returned for expiryOf.
 */
export function learnedLease(s: Sighting, at: number, leases: LeaseTimes | undefined): number | undefined {
  if (!leases || s.expiresAt || s.durationS !== undefined || channelOf(s.kind) !== 'dhcp') return undefined;
  leases.seen(s.ip, identityKey(s), s.kind, at);
  return leases.leaseS(s.ip);
}

/** Does this sighting take its device off its other DHCP address of the family (a device holds one)? */
export const movesDhcp = (s: Sighting): boolean => channelOf(s.kind) === 'dhcp' && !!s.mac;

const sameFamily = (a: string, b: string): boolean => a.includes(':') === b.includes(':');

/**
 * A line older than what is known of its address (a delayed one): ignored before the device is
 * touched. It neither ends the binding of the device holding the address since, nor renews, nor
 * renames the device (identityFor would).
 */
export function staleForAddress(s: Sighting, at: number, held: Pick<OpenBinding, 'id' | 'identityId' | 'identityKey' | 'lastSeen'> | undefined): ApplyResult | undefined {
  if (!held || at >= held.lastSeen) return undefined;
  const same = identityKey(s) === held.identityKey;
  return { change: 'ignored', bindingId: held.id, ...(same ? { identityId: held.identityId } : {}), note: same ? 'older than what we know' : `older than what we know of this address (held by ${held.identityKey})` };
}

/** A lease older than what is known of its device's other DHCP address of the family (it moved there since): ignored. */
export function staleForDevice(identityId: number, newerIp: string): ApplyResult {
  return { change: 'ignored', identityId, note: `older than what we know of the device (on ${newerIp} since)` };
}

function identityFor(s: Sighting, at: number, ops: ApplyOps, links: LinkRules): number {
  const key = identityKey(s);
  const row = ops.identityByKey(key);
  const fields = identityFields(s, at);
  if (row) {
    ops.touchIdentity(row.id, fields);
    // a new name: take the credit of identities already known under it
    if (s.hostname != null && fields.hostKey !== row.host_key) {
      claim(fields.hostKey, row.id, ops);
      inheritScan(row.id, fields.hostKey, s, ops, links);
    }
    return row.id;
  }
  const id = ops.insertIdentity(key, fields);
  claim(fields.hostKey, id, ops);
  inheritScan(id, fields.hostKey, s, ops, links);
  return id;
}

/** A name that can link taken by identity `id`: its first holder, if it has none (linking.ts). */
function claim(hk: string | null, id: number, ops: ApplyOps): void {
  if (isLinkableHostKey(hk)) ops.claimName(hk, id);
}

/** Let identity `id`, seen in `s`, take the newest last scan among corroborated identities with its host key (only forward). */
function inheritScan(id: number, hk: string | null, s: Sighting, ops: ApplyOps, links: LinkRules): void {
  if (!links.on || !isLinkableHostKey(hk)) return;
  const me = ops.linkFacts(id);
  if (!me) return;
  const here = [{ ip: s.ip, channel: channelOf(s.kind) }, ...ops.openByIdentity(id)];
  let holder: { id: number | undefined } | undefined; // (read once, where the pattern alone links)
  const heldFirst = (other: number) => (holder ??= { id: ops.firstHolder(hk) }).id === other;
  for (const other of ops.scannedByHost(hk)) {
    if (other.id === id || !links.corroborated(other, me, hk, () => heldFirst(other.id), () => apart(here, ops.openByIdentity(other.id)))) continue;
    ops.markScanned(id, other.at, linkedVia(other.via, other.key));
    return;
  }
}

/**
 * Session ends that name no inner address (ASA 113019, OpenVPN exits the parser had no state
 * for) come with ip 0.0.0.0: end the user's one open VPN session, if it is unambiguous. A line
 * that names the client's public address ends only a session from that address (or one whose
 * lines named none): a user name alone is what any peer that logs in under it can send.
 * Such a sighting never starts a binding.
 */
function applyWithoutAddress(s: Sighting, at: number, ops: ApplyOps, record: (identityId: number | null, bindingId: number | null) => void): ApplyResult {
  if (s.kind !== 'tunnel-down' || !s.user) return { change: 'ignored', note: 'no address in the line' };
  const pick = sessionToEnd(s, ops.openVpnByUser(s.user.toLowerCase(), s.remoteIp || null));
  if ('note' in pick) return refusedEnd(pick);
  if (at < pick.start_at) return { change: 'ignored', note: 'older than the session it would end' };
  ops.endBinding(pick.id, at, 'tunnel-down');
  record(pick.identity_id, pick.id);
  return { change: 'ended', bindingId: pick.id, identityId: pick.identity_id };
}

/** An address-less end that ends nothing; one the user's sessions from other addresses refuse is marked (ApplyResult.refusedEnd). */
export function refusedEnd(pick: { note: string; otherAddress?: true }): ApplyResult {
  return { change: 'ignored', note: pick.note, ...(pick.otherAddress ? { refusedEnd: true } : {}) };
}

/**
 * Which of the user's open sessions an address-less end ends, or why none: the one from the
 * public address the line names, else the one whose lines named no public address (a session
 * opened before the upgrade that stored it, or by a line without one: such a session is ended by
 * the user name alone, as before). Only "none", "one" or "more" of each kind counts (the stores
 * read two at most: OpenVpnSessions), so the notes say "2 or more", not how many.
 */
export function sessionToEnd(s: Pick<Sighting, 'user' | 'remoteIp'>, sessions: OpenVpnSessions): OpenVpnSession | { note: string; otherAddress?: true } {
  const from = s.remoteIp;
  if (!from) {
    const any = sessions.any();
    return any.length === 1 ? any[0] : { note: any.length ? `user ${s.user} has 2 or more open sessions; the line names none` : `no open session of user ${s.user}` };
  }
  const exact = sessions.from();
  if (exact.length === 1) return exact[0];
  if (exact.length > 1) return { note: `user ${s.user} has 2 or more open sessions from ${from}; the line names none` };
  const unknown = sessions.unknown();
  if (unknown.length === 1) return unknown[0];
  if (unknown.length > 1) return { note: `user ${s.user} has no open session from ${from} and 2 or more from addresses not known; the line names none` };
  const any = sessions.any();
  if (any.length) return { note: `no open session of user ${s.user} from ${from} (${any.length === 1 ? `its session is from ${any[0].remote_ip}` : '2 or more sessions from other addresses'})`, otherAddress: true };
  return { note: `no open session of user ${s.user}` };
}

/** OpenVpnSessions over rows a store read at once, each tagged with its kind (`k`). */
export function vpnSessionsOf(rows: (OpenVpnSession & { k: string })[]): OpenVpnSessions {
  const of = (k: string) => () => rows.filter((r) => r.k === k).map(({ k: _k, ...o }) => o);
  return { from: of('from'), unknown: of('unknown'), any: of('any') };
}
