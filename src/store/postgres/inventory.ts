/**
 * The inventory on PostgreSQL: the same rules as the SQLite implementation
 * (src/inventory/inventory.ts: identities, bindings ended by reuse and moves, renewals merged,
 * hostname linking), with the pure helpers shared and the SQL in PostgreSQL's dialect.
 */
import { FORGOTTEN_HOLDERS, forgettableIdentity, PRUNE_CHUNK, pruneCutoffs } from '../prune.js';
import { MAX_AHEAD_MS, type Sighting } from '../../sighting.js';
import type { FileCheckpoint, SourcePosition } from '../../sources/types.js';
import { hostKey, isLinkableHostKey } from '../../inventory/hostkey.js';
import {
  BINDING_SELECT, END_KIND, capNames, refusedEnd, channelOf, contradicts, expiryOf, learnedLease, identityKey, movesDhcp, sessionToEnd, staleForAddress, staleForDevice, toIdentityView, toPeriodBinding, toView, vpnSession, vpnSessionsOf, VPN_SESSIONS_READ, type BindingRow, type EndedRow, type IdentityRow, type OpenVpnSession, type PeriodRow,
} from '../../inventory/inventory.js';
import { LINKED_FROM, LinkRules, apart, linkedVia, type LinkFacts, type Whereabouts } from '../../inventory/linking.js';
import { LeaseTimes } from '../../inventory/lease-times.js';
import type { ApplyResult, BindingView, Change, EndedBindingRow, IdentityView, Inventory, InventoryCounts, InventoryOptions, PeriodBinding, PruneCounts, EndedKey } from '../types.js';
import { ENDED_PAGE } from '../types.js';
import { statement as st, type PgDb } from './db.js';
import { applyBatch, BatchModelIncomplete } from './batch.js';

/** sightings per batched apply (its load and write statements grow with it) */
const BATCH = 1000;

// Round trips are what an apply costs on a server (each statement waits for the last): the
// identity is found-or-created-and-touched in one upsert, and a new binding ends the address's
// previous holder, the device's other lease of that family, and records itself and its sighting
// in one statement. Same effects, in the same order of precedence, as the SQLite statements.
const S = {
  // the address's open binding (as before this sighting), the identity upserted, and (when the
  // name may link) the identities scanned under its host key: one round trip
  seen: st('seen', `WITH old AS (SELECT id, host_key FROM identities WHERE key = $1),
    up AS (INSERT INTO identities AS i (key, mac, duid, "user", hostname, host_key, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
      ON CONFLICT (key) DO UPDATE SET last_seen = GREATEST(i.last_seen, $7), hostname = coalesce($5, i.hostname),
        host_key = CASE WHEN $5::text IS NULL THEN i.host_key ELSE $6 END, "user" = coalesce($4, i."user"), mac = coalesce($2, i.mac)
      RETURNING i.id, i.key, i."user"),
    open AS (${BINDING_SELECT} WHERE b.ip = $8 AND b.end_at IS NULL ORDER BY b.id DESC LIMIT 1)
    SELECT up.id, up.key, up."user", (SELECT id FROM old) IS NULL AS inserted, (SELECT host_key FROM old) AS old_host_key,
      (SELECT row_to_json(open) FROM open) AS open,
      (SELECT coalesce(json_agg(h), '[]'::json) FROM (SELECT id, key, "user", last_scanned_at AS at, last_scanned_via AS via FROM identities
        WHERE $9::boolean AND host_key = $6 AND last_scanned_at IS NOT NULL ORDER BY last_scanned_at DESC, id DESC LIMIT 50) h) AS linked
    FROM up`),
  startBinding: st('start_binding', `WITH reassigned AS (UPDATE bindings SET end_at = $5, end_reason = 'reassigned' WHERE id = $9 AND end_at IS NULL),
    moved AS (UPDATE bindings SET end_at = $5, end_reason = 'moved' WHERE $10::boolean AND identity_id = $2 AND end_at IS NULL
      AND channel = 'dhcp' AND ip <> $1 AND (strpos(ip, ':') > 0) = (strpos($1, ':') > 0)),
    b AS (INSERT INTO bindings (ip, identity_id, channel, format, start_at, last_seen, expires_at, vpn_user, remote_ip) VALUES ($1, $2, $3, $4, $5, $5, $6, $12, $13) RETURNING id)
    INSERT INTO sightings (at, kind, ip, identity_id, binding_id, format, source, json) SELECT $5, $7, $1, $2, b.id, $4, $11, $8 FROM b
    RETURNING binding_id`),
  newerOwnDhcp: st('newer_own_dhcp', `SELECT b.identity_id, b.ip FROM bindings b JOIN identities i ON i.id = b.identity_id
    WHERE i.key = $1 AND b.end_at IS NULL AND b.channel = 'dhcp' AND b.ip <> $2 AND (strpos(b.ip, ':') > 0) = (strpos($2, ':') > 0) AND b.last_seen > $3
    ORDER BY b.id LIMIT 1`),
  openByIp: st('open_by_ip', `${BINDING_SELECT} WHERE b.ip = $1 AND b.end_at IS NULL ORDER BY b.id DESC LIMIT 1`),
  bindingById: st('binding_by_id', `${BINDING_SELECT} WHERE b.id = $1`),
  bindingsByIds: st('bindings_by_ids', `${BINDING_SELECT} WHERE b.id = ANY($1::bigint[])`),
  // (the user as folded in JS when the session began, as on SQLite: lower() depends on the database's locale).
  // A few of each kind an address-less end may need, in one round trip, through the index on user
  // and public address (apply.ts OpenVpnSessions); no order, which would sort every session of the user
  openVpnSessions: st('open_vpn_sessions', `(SELECT 'from' AS k, id, identity_id, start_at, remote_ip FROM bindings
      WHERE vpn_user = $1 AND remote_ip = $2 AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ})
    UNION ALL (SELECT 'unknown', id, identity_id, start_at, remote_ip FROM bindings
      WHERE $2::text IS NOT NULL AND vpn_user = $1 AND remote_ip IS NULL AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ})
    UNION ALL (SELECT 'any', id, identity_id, start_at, remote_ip FROM bindings
      WHERE vpn_user = $1 AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ})`),
  renewBinding: st('renew_binding', `UPDATE bindings SET last_seen = GREATEST(last_seen, $1), expires_at = $2, renewals = renewals + 1,
    vpn_user = coalesce($4, vpn_user), remote_ip = coalesce($5, remote_ip) WHERE id = $3`),
  endBinding: st('end_binding', 'UPDATE bindings SET end_at = $1, end_reason = $2 WHERE id = $3 AND end_at IS NULL'),
  endExpired: st('end_expired', `UPDATE bindings SET end_at = $1, end_reason = 'lease-ran-out' WHERE id = $2 AND end_at IS NULL AND expires_at < $3`),
  insertSighting: st('insert_sighting', `INSERT INTO sightings (at, kind, ip, identity_id, binding_id, format, source, json)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
  getCheckpoint: st('get_checkpoint', 'SELECT path, dev, ino, "offset", fingerprint, tail_fingerprint FROM checkpoints WHERE path = $1'),
  putCheckpoint: st('put_checkpoint', `INSERT INTO checkpoints (path, dev, ino, "offset", fingerprint, tail_fingerprint, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "offset" = excluded."offset", fingerprint = excluded.fingerprint,
      tail_fingerprint = excluded.tail_fingerprint, updated_at = excluded.updated_at`),
  getPosition: st('get_position', 'SELECT value FROM positions WHERE key = $1'),
  putPosition: st('put_position', `INSERT INTO positions (key, value, updated_at) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
  markScanned: st('mark_scanned', `UPDATE identities SET last_scanned_at = $1, last_scanned_via = $2
    WHERE id = $3 AND (last_scanned_at IS NULL OR last_scanned_at < $1 OR last_scanned_at > $1 + ${MAX_AHEAD_MS})`), // (a bad date, over a day past this scan's: replaced)
  otherHolder: st('other_holder', `SELECT 1 AS one FROM bindings WHERE ip = $1 AND start_at <= $2 AND identity_id != $3
    AND (end_at IS NULL OR end_at >= $4) LIMIT 1`),
  byHost: st('by_host', 'SELECT id, key, "user" FROM identities WHERE host_key = $1 LIMIT 1000'),
  linkFacts: st('link_facts', 'SELECT id, key, "user", host_key FROM identities WHERE id = $1'),
  openOf: st('open_of', 'SELECT ip, channel FROM bindings WHERE identity_id = $1 AND end_at IS NULL'),
  firstHolder: st('first_holder', 'SELECT identity_id FROM name_holders WHERE host_key = $1'),
  claimName: st('claim_name', 'INSERT INTO name_holders (host_key, identity_id) VALUES ($1, $2) ON CONFLICT (host_key) DO NOTHING'),
  expired: st('expired', 'SELECT id, expires_at FROM bindings WHERE end_at IS NULL AND expires_at IS NOT NULL AND expires_at < $1'),
  present: st('present', `${BINDING_SELECT} WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= $1) ORDER BY b.ip`),
  // keyset pages (address, then id): a pass over 1M holds one page
  presentPage: st('present_page', `${BINDING_SELECT} WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= $1)
    AND (b.ip, b.id) > ($2, $3) ORDER BY b.ip, b.id LIMIT $4`),
  presentIdsPage: st('present_ids_page', `SELECT b.id, b.ip, i.last_scanned_at FROM bindings b JOIN identities i ON i.id = b.identity_id
    WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= $1) AND (b.ip, b.id) > ($2, $3) ORDER BY b.ip, b.id LIMIT $4`),
  presentOf: st('present_of', `${BINDING_SELECT} WHERE b.identity_id = $1 AND b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= $2)`),
  identity: st('identity', 'SELECT id, key, mac, duid, "user", hostname, last_scanned_at, last_scanned_via FROM identities WHERE id = $1'),
  presentIds: st('present_ids', `SELECT b.id, i.last_scanned_at FROM bindings b JOIN identities i ON i.id = b.identity_id
    WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= $1) ORDER BY b.ip`),
  ended: st('ended', `SELECT b.id, b.ip, b.identity_id, b.start_at, b.end_at, b.end_reason, i.last_scanned_at, i.last_scanned_via,
      (EXISTS (SELECT 1 FROM bindings o WHERE o.identity_id = b.identity_id AND o.end_at IS NULL AND (o.expires_at IS NULL OR o.expires_at >= $1)))::int AS present_elsewhere
    FROM bindings b JOIN identities i ON i.id = b.identity_id
    WHERE b.end_at IS NOT NULL AND b.end_at >= $2 AND (b.end_at, b.id) < ($3, $4) ORDER BY b.end_at DESC, b.id DESC LIMIT ${ENDED_PAGE}`),
};

type Scanned = LinkFacts & { at: number; via: string | null };

type Record_ = (identityId: number | null, bindingId: number | null) => Promise<unknown>;

export class PgInventory implements Inventory {
  private readonly links = new LinkRules(() => this.opts);

  /** lease times learned from renewals, for lines that state none */
  readonly leases = new LeaseTimes();

  constructor(private readonly db: PgDb, private opts: InventoryOptions) {}

  private learning(): LeaseTimes | undefined {
    return this.opts.learnLeaseTimes === false ? undefined : this.leases;
  }

  setOptions(opts: InventoryOptions): void {
    this.opts = opts;
  }

  /**
   * Sightings go in batches of a few statements (batch.ts); false: one at a time, about two
   * statements each (the path the batched one is measured and tested against).
   */
  batched = true;

  /** told when a batch was applied one sighting at a time because its model fell short (a bug: logged by the store's owner) */
  onBatchFallback?: (why: string, sightings: number) => void;

  commitBatch(sightings: Sighting[], checkpoints: FileCheckpoint[] = [], now = Date.now(), positions: SourcePosition[] = []): Promise<ApplyResult[]> {
    return this.db.transaction(async () => {
      const results: ApplyResult[] = [];
      if (this.batched) {
        for (let i = 0; i < sightings.length; i += BATCH) {
          const part = sightings.slice(i, i + BATCH);
          try {
            // (a savepoint: a batch whose model falls short is undone whole, then applied one at a time)
            results.push(...await this.db.transaction(() => applyBatch(this.db, part, this.opts, this.links, this.learning())));
          } catch (err) {
            if (!(err instanceof BatchModelIncomplete)) throw err;
            this.onBatchFallback?.(err.message, part.length);
            for (const s of part) results.push(await this.apply(s));
          }
        }
      } else {
        for (const s of sightings) results.push(await this.apply(s));
      }
      for (const c of checkpoints) await this.db.query(S.putCheckpoint, [c.path, c.dev, c.ino, c.offset, c.fingerprint, c.tailFingerprint ?? null, now]);
      for (const p of positions) await this.db.query(S.putPosition, [p.key, JSON.stringify(p.value), now]);
      return results;
    });
  }

  async position(key: string): Promise<unknown> {
    const r = await this.db.row<{ value: string }>(S.getPosition, [key]);
    return r === undefined ? undefined : JSON.parse(r.value);
  }

  async prunePositions(prefix: string, before: number): Promise<number> {
    return (await this.db.query('DELETE FROM positions WHERE key >= $1 AND key < $2 AND updated_at < $3', [prefix, prefix + '\uffff', before])).rowCount ?? 0;
  }

  /** Upsert the sighting's identity; its address's open binding as it was before. */
  private async seen(s: Sighting, at: number): Promise<{ identityId: number; open?: BindingRow }> {
    const hk = hostKey(s.hostname) ?? null;
    const mayLink = this.links.on && isLinkableHostKey(hk);
    const me = (await this.db.row<LinkFacts & { inserted: boolean; old_host_key: string | null; open: BindingRow | null; linked: Scanned[] }>(S.seen,
      [identityKey(s), s.mac ?? null, s.duid ?? null, s.user ?? null, s.hostname ?? null, hk, at, s.ip, mayLink]))!;
    // a new identity, or a new name: its first holder, if it has none; take the credit of identities already known under it
    const takes = me.inserted || (s.hostname != null && hk !== me.old_host_key);
    if (takes && isLinkableHostKey(hk)) await this.db.query(S.claimName, [hk, me.id]);
    if (mayLink && takes) await this.inheritScan(me, hk!, me.linked, s);
    return { identityId: me.id, open: me.open ?? undefined };
  }

  /** The first identity recorded to take host key `hk` (linking.ts). */
  private async firstHolder(hk: string): Promise<number | undefined> {
    const r = await this.db.row<{ identity_id: number }>(S.firstHolder, [hk]);
    return r && Number(r.identity_id);
  }

  /** An identity's open bindings (linking.ts apart). */
  private async whereabouts(identityId: number): Promise<Whereabouts> {
    return this.db.rows<{ ip: string; channel: string }>(S.openOf, [identityId]);
  }

  private async inheritScan(me: LinkFacts, hk: string, scanned: Scanned[], s: Sighting): Promise<void> {
    const id = me.id;
    const here = [{ ip: s.ip, channel: channelOf(s.kind) }, ...await this.whereabouts(id)];
    let holder: Promise<number | undefined> | undefined; // (read once, where the pattern alone links)
    for (const other of scanned) {
      if (other.id === id || !(await this.links.corroboratedAsync(other, me, hk, async () => (await (holder ??= this.firstHolder(hk))) === other.id,
        async () => apart(here, await this.whereabouts(other.id))))) continue;
      await this.db.query(S.markScanned, [other.at, linkedVia(other.via, other.key), id]);
      return;
    }
  }

  private async apply(sighting: Sighting): Promise<ApplyResult> {
    const s = capNames(sighting);
    const at = Date.parse(s.at);
    const channel = s.kind === 'tunnel-up' || s.kind === 'tunnel-down' ? 'vpn' : 'dhcp';
    const record: Record_ = (identityId, bindingId) =>
      this.db.query(S.insertSighting, [at, s.kind, s.ip, identityId, bindingId, s.format, s.source, JSON.stringify(s)]);
    if (s.ip === '0.0.0.0' || s.ip === '::') return this.applyWithoutAddress(s, at, record);

    if (s.kind === 'release' || s.kind === 'expire' || s.kind === 'tunnel-down') {
      const open = await this.db.row<BindingRow & Record<string, unknown>>(S.openByIp, [s.ip]);
      const current = open ? toView(open) : undefined;
      if (!current) return { change: 'ignored', note: 'no open binding for this address' };
      if (contradicts(s, current)) return { change: 'ignored', note: `address now held by ${current.identityKey}` };
      if (at < current.lastSeen) return { change: 'ignored', note: 'older than the binding it would end' };
      await this.db.query(S.endBinding, [at, END_KIND[s.kind], current.id]);
      await record(current.identityId, current.id);
      return { change: 'ended', bindingId: current.id, identityId: current.identityId };
    }

    // the rules' "older than what we know" (apply.ts), before the device is touched
    const held = await this.db.row<BindingRow & Record<string, unknown>>(S.openByIp, [s.ip]);
    const stale = staleForAddress(s, at, held ? toView(held) : undefined);
    if (stale) return stale;
    if (movesDhcp(s)) {
      const newer = await this.db.row<{ identity_id: number; ip: string }>(S.newerOwnDhcp, [identityKey(s), s.ip, at]);
      if (newer) return staleForDevice(newer.identity_id, newer.ip);
    }
    const { identityId, open } = await this.seen(s, at);
    const current = open ? toView(open) : undefined;
    const expiresAt = expiryOf(s, at, this.opts, learnedLease(s, at, this.learning()));
    const session = vpnSession(s);
    if (current && current.identityId === identityId) {
      await this.db.query(S.renewBinding, [at, expiresAt, current.id, session?.user ?? null, session?.remoteIp ?? null]);
      return { change: 'renewed', bindingId: current.id, identityId };
    }
    // IP reuse ends the address's previous holder now; a device holds one DHCP address per family
    const change: Change = current ? 'reassigned' : 'new';
    const bindingId = (await this.db.row<{ binding_id: number }>(S.startBinding,
      [s.ip, identityId, channel, s.format, at, expiresAt, s.kind, JSON.stringify(s), current?.id ?? null, channel === 'dhcp' && !!s.mac, s.source,
        session?.user ?? null, session?.remoteIp ?? null]))!.binding_id;
    return { change, bindingId, identityId };
  }

  private async applyWithoutAddress(s: Sighting, at: number, record: Record_): Promise<ApplyResult> {
    if (s.kind !== 'tunnel-down' || !s.user) return { change: 'ignored', note: 'no address in the line' };
    const pick = sessionToEnd(s, vpnSessionsOf(await this.db.rows<OpenVpnSession & { k: string }>(S.openVpnSessions, [s.user.toLowerCase(), s.remoteIp || null])));
    if ('note' in pick) return refusedEnd(pick);
    if (at < pick.start_at) return { change: 'ignored', note: 'older than the session it would end' };
    await this.db.query(S.endBinding, [at, 'tunnel-down', pick.id]);
    await record(pick.identity_id, pick.id);
    return { change: 'ended', bindingId: pick.id, identityId: pick.identity_id };
  }

  async checkpoint(path: string): Promise<FileCheckpoint | undefined> {
    const r = await this.db.row<{ path: string; dev: number; ino: number; offset: number; fingerprint: string; tail_fingerprint: string | null }>(S.getCheckpoint, [path]);
    if (!r) return undefined;
    const cp: FileCheckpoint = { path: r.path, dev: r.dev, ino: r.ino, offset: r.offset, fingerprint: r.fingerprint };
    if (r.tail_fingerprint) cp.tailFingerprint = r.tail_fingerprint;
    return cp;
  }

  async binding(id: number): Promise<BindingView | undefined> {
    const r = await this.db.row<BindingRow & Record<string, unknown>>(S.bindingById, [id]);
    return r ? toView(r) : undefined;
  }

  async bindings(ids: readonly number[]): Promise<BindingView[]> {
    if (!ids.length) return [];
    return (await this.db.rows<BindingRow & Record<string, unknown>>(S.bindingsByIds, [ids])).map(toView);
  }

  async openBinding(ip: string): Promise<BindingView | undefined> {
    const r = await this.db.row<BindingRow & Record<string, unknown>>(S.openByIp, [ip]);
    return r ? toView(r) : undefined;
  }

  async identity(id: number): Promise<IdentityView | undefined> {
    const r = await this.db.row<IdentityRow>(S.identity, [id]);
    return r && toIdentityView(r);
  }

  isPresent(b: BindingView, now: number): boolean {
    return b.endAt === undefined && (b.expiresAt === undefined || b.expiresAt >= now);
  }

  async presentBindings(now: number): Promise<BindingView[]> {
    return (await this.db.rows<BindingRow & Record<string, unknown>>(S.present, [now])).map(toView);
  }

  async *presentBindingPages(now: number, pageSize = 5000): AsyncGenerator<BindingView[]> {
    let after: [string, number] = ['', 0];
    for (;;) {
      const rows = await this.db.rows<BindingRow & Record<string, unknown>>(S.presentPage, [now, after[0], after[1], pageSize]);
      if (rows.length) yield rows.map(toView);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = [last.ip, last.id];
    }
  }

  async *presentIdPages(now: number, pageSize = 10_000): AsyncGenerator<{ id: number; lastScannedAt?: number }[]> {
    let after: [string, number] = ['', 0];
    for (;;) {
      const rows = await this.db.rows<{ id: number; ip: string; last_scanned_at: number | null }>(S.presentIdsPage, [now, after[0], after[1], pageSize]);
      if (rows.length) yield rows.map((r) => (r.last_scanned_at === null ? { id: r.id } : { id: r.id, lastScannedAt: r.last_scanned_at }));
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = [last.ip, last.id];
    }
  }

  async presentBindingsOf(identityId: number, now: number): Promise<BindingView[]> {
    return (await this.db.rows<BindingRow & Record<string, unknown>>(S.presentOf, [identityId, now])).map(toView);
  }

  async presentIds(now: number): Promise<{ id: number; lastScannedAt?: number }[]> {
    return (await this.db.rows<{ id: number; last_scanned_at: number | null }>(S.presentIds, [now]))
      .map((r) => (r.last_scanned_at === null ? { id: r.id } : { id: r.id, lastScannedAt: r.last_scanned_at }));
  }

  async endedBindings(since: number, now: number, before?: EndedKey): Promise<EndedBindingRow[]> {
    return (await this.db.rows<EndedRow & Record<string, unknown>>(S.ended, [now, since, before?.endAt ?? Number.MAX_SAFE_INTEGER, before?.id ?? Number.MAX_SAFE_INTEGER])).map((e) => ({
      id: e.id, ip: e.ip, identityId: e.identity_id, startAt: e.start_at, endAt: e.end_at, endReason: e.end_reason ?? undefined,
      lastScannedAt: e.last_scanned_at ?? undefined, lastScannedVia: e.last_scanned_via ?? undefined, presentElsewhere: e.present_elsewhere !== 0,
    }));
  }

  async *bindingPagesBetween(from: number, to: number, now: number, pageSize = 5000): AsyncGenerator<PeriodBinding[]> {
    let after: [number, number] = [0, 0];
    for (;;) {
      const rows = await this.db.rows<PeriodRow>(`SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.expires_at, b.end_at, i.last_scanned_at, i.last_scanned_via
        FROM bindings b JOIN identities i ON i.id = b.identity_id
        WHERE b.start_at < $1 AND coalesce(b.end_at, b.expires_at, $2) >= $3 AND (b.identity_id, b.id) > ($4, $5)
        ORDER BY b.identity_id, b.id LIMIT $6`, [to, now, from, after[0], after[1], pageSize]);
      if (rows.length) yield rows.map(toPeriodBinding);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = [Number(last.identity_id), Number(last.id)];
    }
  }

  expireStale(now: number): Promise<number[]> {
    return this.db.transaction(async () => {
      const rows = await this.db.rows<{ id: number; expires_at: number }>(S.expired, [now]);
      // (ended only if still run out: in a cluster a renewal applied on the leader's own connection may have come between)
      const ended: number[] = [];
      for (const r of rows) if (((await this.db.query(S.endExpired, [r.expires_at ?? now, r.id, now])).rowCount ?? 0) > 0) ended.push(r.id);
      return ended;
    });
  }

  async heldByAnotherAt(ip: string, from: number, identityId: number, to = from): Promise<boolean> {
    return (await this.db.row(S.otherHolder, [ip, to, identityId, from])) !== undefined;
  }

  async forgetPretendScans(via: string): Promise<number> {
    const linked = `${via}${LINKED_FROM}`;
    const r = await this.db.query(`UPDATE identities SET last_scanned_at = NULL, last_scanned_via = NULL
      WHERE last_scanned_via = $1 OR left(last_scanned_via, $2) = $3`, [via, linked.length, linked]);
    return r.rowCount ?? 0;
  }

  markScanned(identityIds: number[], at: number, via: string): Promise<void> {
    const linking = this.links.on;
    return this.db.transaction(async () => {
      const done = new Set<number>();
      for (const id of identityIds) {
        await this.db.query(S.markScanned, [at, via, id]);
        if (!linking) continue;
        const me = await this.db.row<LinkFacts & { host_key: string | null }>(S.linkFacts, [id]);
        const hk = me?.host_key;
        if (!me || !isLinkableHostKey(hk) || done.has(id)) continue;
        done.add(id);
        // (read once for `me`, and only where the pattern alone links)
        let first: Promise<boolean> | undefined;
        let mine: Promise<Whereabouts> | undefined;
        const heldFirst = () => (first ??= this.firstHolder(hk).then((h) => h === id));
        for (const other of await this.db.rows<LinkFacts & Record<string, unknown>>(S.byHost, [hk])) {
          if (other.id !== id && !identityIds.includes(other.id)
            && await this.links.corroboratedAsync(me, other, hk, heldFirst, async () => apart(await (mine ??= this.whereabouts(id)), await this.whereabouts(other.id)))) {
            await this.db.query(S.markScanned, [at, linkedVia(via, me.key), other.id]);
          }
        }
      }
    });
  }

  /** As SQLite's (src/inventory/inventory.ts): a chunk per transaction, ended scans kept as counts, forgotten devices last. */
  async prune(now: number): Promise<PruneCounts> {
    const { cutoff, forget } = pruneCutoffs(now, this.opts);
    const chunks = async (step: () => Promise<number>): Promise<number> => {
      let n = 0;
      for (let k; (k = await this.db.transaction(step)) > 0;) n += k;
      return n;
    };
    const deleted = (sql: string, params: unknown[]) => async () => (await this.db.query(sql, params)).rowCount ?? 0;
    const intents = await chunks(async () => {
      const ids = (await this.db.rows<{ id: string }>(`SELECT id FROM intents WHERE state NOT IN ('launching', 'running') AND coalesce(ended_at, created_at) < $1
        AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.intent_id = intents.id) LIMIT ${PRUNE_CHUNK} FOR UPDATE`, [cutoff])).map((r) => r.id);
      if (!ids.length) return 0;
      await this.db.query(`INSERT INTO pruned_intent_counts (region, appliance, state, n)
        SELECT region, appliance, state, count(*) FROM intents WHERE id = ANY($1::text[]) GROUP BY region, appliance, state
        ON CONFLICT (region, appliance, state) DO UPDATE SET n = pruned_intent_counts.n + excluded.n`, [ids]);
      await this.db.query('DELETE FROM intent_targets WHERE intent_id = ANY($1::text[])', [ids]);
      return (await this.db.query('DELETE FROM intents WHERE id = ANY($1::text[])', [ids])).rowCount ?? 0;
    });
    const sightings = await chunks(deleted(`DELETE FROM sightings WHERE id IN (SELECT id FROM sightings WHERE at < $1 LIMIT ${PRUNE_CHUNK})`, [cutoff]));
    const bindings = await chunks(deleted(`DELETE FROM bindings WHERE id IN (SELECT id FROM bindings WHERE end_at IS NOT NULL AND end_at < $1
      AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.binding_id = bindings.id) AND NOT EXISTS (SELECT 1 FROM intent_targets t WHERE t.binding_id = bindings.id)
      LIMIT ${PRUNE_CHUNK})`, [cutoff]));
    const identities = await chunks(deleted(`DELETE FROM identities WHERE id IN (SELECT id FROM identities i WHERE ${forgettableIdentity('$1')} LIMIT ${PRUNE_CHUNK})`, [forget]));
    await chunks(deleted(FORGOTTEN_HOLDERS, []));
    return { sightings, bindings, intents, identities };
  }

  async counts(now: number): Promise<InventoryCounts> {
    const one = async (sql: string, ...a: unknown[]) => (await this.db.row<{ n: number }>(sql, a))!.n;
    return {
      identities: await one('SELECT count(*) n FROM identities'),
      present: await one('SELECT count(*) n FROM bindings WHERE end_at IS NULL AND (expires_at IS NULL OR expires_at >= $1)', now),
      bindings: await one('SELECT count(*) n FROM bindings'),
      sightings: await one('SELECT count(*) n FROM sightings'),
    };
  }
}
