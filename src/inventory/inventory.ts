/**
 * The inventory: device identities, which IP each holds now (bindings with a start and an end),
 * the sightings that proved it, and when each device was last scanned.
 *
 * An identity is the strongest identifier a sighting gives: MAC, then DUID / client-id, then VPN
 * user (+ device name), then hostname. A new binding of an IP to another identity ends the old one
 * at once (IP reuse). Renewals of a known binding are merged into it, not stored again.
 *
 * Identities are never merged, but with `linkHostnames` identities that carry the same (specific)
 * hostname share their last scan: a laptop seen as `mac:..` on office DHCP and as `user:..|name`
 * on the VPN is not scanned twice within the rescan window (see hostkey.ts).
 */
import type { DB } from '../store/db.js';
import { gateOf, type SqliteGate } from '../store/gate.js';
import { FORGOTTEN_HOLDERS, forgettableIdentity, PRUNE_CHUNK, pruneCutoffs } from '../store/prune.js';
import type { ApplyResult, BindingView, EndedBindingRow, IdentityView, Inventory, InventoryCounts, InventoryOptions, PeriodBinding, PruneCounts, EndedKey } from '../store/types.js';
import { ENDED_PAGE } from '../store/types.js';
import { MAX_AHEAD_MS, type Sighting } from '../sighting.js';
import type { FileCheckpoint, SourcePosition } from '../sources/types.js';
import { LINKED_FROM, LinkRules, apart, linkedVia, type LinkFacts, type Whereabouts } from './linking.js';
import { isLinkableHostKey } from './hostkey.js';
import { applySighting, VPN_SESSIONS_READ, type ApplyOps, type OpenVpnSession } from './apply.js';
import { LeaseTimes } from './lease-times.js';

export type { Inventory, InventoryOptions, IdentityView, BindingView, Change, ApplyResult, EndedBindingRow, InventoryCounts } from '../store/types.js';

export interface EndedRow {
  id: number; ip: string; identity_id: number; start_at: number; end_at: number; end_reason: string | null;
  last_scanned_at: number | null; last_scanned_via: string | null; present_elsewhere: number;
}

export interface BindingRow {
  id: number; ip: string; identity_id: number; key: string; mac: string | null; user: string | null; hostname: string | null;
  channel: 'dhcp' | 'vpn'; format: string; start_at: number; last_seen: number; expires_at: number | null; end_at: number | null;
  end_reason: string | null; renewals: number; last_scanned_at: number | null; last_scanned_via: string | null;
}

export const BINDING_SELECT = `SELECT b.id, b.ip, b.identity_id, i.key, i.mac, i.user, i.hostname, b.channel, b.format, b.start_at, b.last_seen,
  b.expires_at, b.end_at, b.end_reason, b.renewals, i.last_scanned_at, i.last_scanned_via
  FROM bindings b JOIN identities i ON i.id = b.identity_id`;

export interface PeriodRow {
  id: number; ip: string; identity_id: number; channel: 'dhcp' | 'vpn'; start_at: number; expires_at: number | null; end_at: number | null;
  last_scanned_at: number | null; last_scanned_via: string | null;
}

export const toPeriodBinding = (r: PeriodRow): PeriodBinding => ({
  id: r.id, ip: r.ip, identityId: r.identity_id, channel: r.channel, startAt: r.start_at, expiresAt: r.expires_at ?? undefined, endAt: r.end_at ?? undefined,
  lastScannedAt: r.last_scanned_at ?? undefined, lastScannedVia: r.last_scanned_via ?? undefined,
});

export interface IdentityRow {
  id: number; key: string; mac: string | null; duid: string | null; user: string | null; hostname: string | null;
  last_scanned_at: number | null; last_scanned_via: string | null;
}

export function toIdentityView(r: IdentityRow): IdentityView {
  return {
    id: r.id, key: r.key, mac: r.mac ?? undefined, duid: r.duid ?? undefined, user: r.user ?? undefined,
    hostname: r.hostname ?? undefined, lastScannedAt: r.last_scanned_at ?? undefined, lastScannedVia: r.last_scanned_via ?? undefined,
  };
}

export function toView(r: BindingRow): BindingView {
  const v: BindingView = {
    id: r.id, ip: r.ip, identityId: r.identity_id, identityKey: r.key, channel: r.channel, format: r.format,
    startAt: r.start_at, lastSeen: r.last_seen, renewals: r.renewals,
  };
  if (r.mac) v.mac = r.mac;
  if (r.user) v.user = r.user;
  if (r.hostname) v.hostname = r.hostname;
  if (r.expires_at !== null) v.expiresAt = r.expires_at;
  if (r.end_at !== null) v.endAt = r.end_at;
  if (r.end_reason) v.endReason = r.end_reason;
  if (r.last_scanned_at !== null) v.lastScannedAt = r.last_scanned_at;
  if (r.last_scanned_via) v.lastScannedVia = r.last_scanned_via;
  return v;
}

export { MAX_HOSTNAME, MAX_USER, capNames, refusedEnd, channelOf, identityKey, contradicts, END_KIND, expiryOf, learnedLease, movesDhcp, sessionToEnd, staleForAddress, staleForDevice, vpnSession, vpnSessionsOf, VPN_SESSIONS_READ, type OpenVpnSession, type OpenVpnSessions } from './apply.js';

/** The inventory in SQLite: synchronous better-sqlite3 underneath, behind the async gate of its connection. */
export class SqliteInventory implements Inventory {
  private readonly stmt;
  private readonly gate: SqliteGate;
  private readonly links = new LinkRules(() => this.opts);

  /** lease times learned from renewals, for lines that state none */
  readonly leases = new LeaseTimes();

  constructor(private readonly db: DB, private opts: InventoryOptions) {
    this.gate = gateOf(db);
    this.stmt = {
      identityByKey: db.prepare('SELECT id, host_key FROM identities WHERE key = ?'),
      insertIdentity: db.prepare(`INSERT INTO identities (key, mac, duid, user, hostname, host_key, first_seen, last_seen)
        VALUES (@key, @mac, @duid, @user, @hostname, @hostKey, @at, @at)`),
      touchIdentity: db.prepare(`UPDATE identities SET last_seen = max(last_seen, @at),
        hostname = coalesce(@hostname, hostname), host_key = CASE WHEN @hostname IS NULL THEN host_key ELSE @hostKey END,
        user = coalesce(@user, user), mac = coalesce(@mac, mac) WHERE id = @id`),
      openByIp: db.prepare(`${BINDING_SELECT} WHERE b.ip = ? AND b.end_at IS NULL ORDER BY b.id DESC LIMIT 1`),
      bindingById: db.prepare(`${BINDING_SELECT} WHERE b.id = ?`),
      openByIdentity: db.prepare('SELECT id, ip, channel, last_seen AS lastSeen FROM bindings WHERE identity_id = ? AND end_at IS NULL ORDER BY id'),
      // (the user as folded in JS when the session began: SQLite's lower() folds ASCII only, so JÖRG was no jörg;
      // a few of each kind through the index on user and public address, never all: apply.ts OpenVpnSessions)
      openVpnFrom: db.prepare(`SELECT id, identity_id, start_at, remote_ip FROM bindings INDEXED BY bindings_open_vpn_session
        WHERE vpn_user = ? AND remote_ip = ? AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ}`),
      openVpnUnknown: db.prepare(`SELECT id, identity_id, start_at, remote_ip FROM bindings INDEXED BY bindings_open_vpn_session
        WHERE vpn_user = ? AND remote_ip IS NULL AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ}`),
      openVpnAny: db.prepare(`SELECT id, identity_id, start_at, remote_ip FROM bindings INDEXED BY bindings_open_vpn_session
        WHERE vpn_user = ? AND end_at IS NULL AND channel = 'vpn' LIMIT ${VPN_SESSIONS_READ}`),
      insertBinding: db.prepare(`INSERT INTO bindings (ip, identity_id, channel, format, start_at, last_seen, expires_at, vpn_user, remote_ip)
        VALUES (@ip, @identityId, @channel, @format, @at, @at, @expiresAt, @user, @remoteIp)`),
      renewBinding: db.prepare(`UPDATE bindings SET last_seen = max(last_seen, @at), expires_at = @expiresAt, renewals = renewals + 1,
        vpn_user = coalesce(@user, vpn_user), remote_ip = coalesce(@remoteIp, remote_ip) WHERE id = @id`),
      endBinding: db.prepare('UPDATE bindings SET end_at = @at, end_reason = @reason WHERE id = @id AND end_at IS NULL'),
      insertSighting: db.prepare(`INSERT INTO sightings (at, kind, ip, identity_id, binding_id, format, source, json)
        VALUES (@at, @kind, @ip, @identityId, @bindingId, @format, @source, @json)`),
      getCheckpoint: db.prepare('SELECT path, dev, ino, offset, fingerprint, tail_fingerprint FROM checkpoints WHERE path = ?'),
      putCheckpoint: db.prepare(`INSERT INTO checkpoints (path, dev, ino, offset, fingerprint, tail_fingerprint, updated_at)
        VALUES (@path, @dev, @ino, @offset, @fingerprint, @tailFingerprint, @now)
        ON CONFLICT(path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, offset = excluded.offset, fingerprint = excluded.fingerprint,
          tail_fingerprint = excluded.tail_fingerprint, updated_at = excluded.updated_at`),
      getPosition: db.prepare('SELECT value FROM positions WHERE key = ?').pluck(),
      putPosition: db.prepare(`INSERT INTO positions (key, value, updated_at) VALUES (@key, @value, @now)
        ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
      markScanned: db.prepare(`UPDATE identities SET last_scanned_at = @at, last_scanned_via = @via
        WHERE id = @id AND (last_scanned_at IS NULL OR last_scanned_at < @at OR last_scanned_at > @at + ${MAX_AHEAD_MS})`), // (a date over a day past this scan's: a bad one, replaced)
      otherHolder: db.prepare(`SELECT 1 FROM bindings WHERE ip = @ip AND start_at <= @to AND identity_id != @identityId
        AND (end_at IS NULL OR end_at >= @from) LIMIT 1`).pluck(),
      scannedByHost: db.prepare(`SELECT id, key, user, last_scanned_at AS at, last_scanned_via AS via FROM identities
        WHERE host_key = ? AND last_scanned_at IS NOT NULL ORDER BY last_scanned_at DESC, id DESC LIMIT 50`),
      byHost: db.prepare('SELECT id, key, user FROM identities WHERE host_key = ? LIMIT 1000'),
      linkFacts: db.prepare('SELECT id, key, user, host_key FROM identities WHERE id = ?'),
      firstHolder: db.prepare('SELECT identity_id FROM name_holders WHERE host_key = ?').pluck(),
      claimName: db.prepare('INSERT INTO name_holders (host_key, identity_id) VALUES (?, ?) ON CONFLICT (host_key) DO NOTHING'),
      expired: db.prepare('SELECT id FROM bindings INDEXED BY bindings_open_expiry WHERE end_at IS NULL AND expires_at IS NOT NULL AND expires_at < ?'),
      present: db.prepare(`${BINDING_SELECT} WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= ?) ORDER BY b.ip`),
      presentOf: db.prepare(`${BINDING_SELECT} WHERE b.identity_id = ? AND b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= ?)`),
      identity: db.prepare('SELECT id, key, mac, duid, user, hostname, last_scanned_at, last_scanned_via FROM identities WHERE id = ?'),
      ended: db.prepare(`SELECT b.id, b.ip, b.identity_id, b.start_at, b.end_at, b.end_reason, i.last_scanned_at, i.last_scanned_via,
          EXISTS (SELECT 1 FROM bindings o WHERE o.identity_id = b.identity_id AND o.end_at IS NULL AND (o.expires_at IS NULL OR o.expires_at >= @now)) AS present_elsewhere
        FROM bindings b JOIN identities i ON i.id = b.identity_id
        WHERE b.end_at IS NOT NULL AND b.end_at >= @since AND (b.end_at < @beforeAt OR (b.end_at = @beforeAt AND b.id < @beforeId))
        ORDER BY b.end_at DESC, b.id DESC LIMIT ${ENDED_PAGE}`),
      presentIds: db.prepare(`SELECT b.id, i.last_scanned_at FROM bindings b JOIN identities i ON i.id = b.identity_id
        WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= ?) ORDER BY b.ip`).raw(),
      // keyset pages over the open-binding index (ip, then id): a pass over 1M bindings holds one page
      presentPage: db.prepare(`${BINDING_SELECT.replace('FROM bindings b JOIN', 'FROM bindings b INDEXED BY bindings_open_ip JOIN')} WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= @now)
        AND (b.ip > @ip OR (b.ip = @ip AND b.id > @id)) ORDER BY b.ip, b.id LIMIT @n`),
      presentIdsPage: db.prepare(`SELECT b.id, b.ip, i.last_scanned_at FROM bindings b INDEXED BY bindings_open_ip JOIN identities i ON i.id = b.identity_id
        WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= @now) AND (b.ip > @ip OR (b.ip = @ip AND b.id > @id))
        ORDER BY b.ip, b.id LIMIT @n`).raw(),
    };
  }

  /** Lease and retention defaults and hostname linking from a reloaded config. */
  setOptions(opts: InventoryOptions): void {
    this.opts = opts;
  }

  /**
   * Apply a batch of sightings, the file checkpoints of the lines that produced them and other
   * sources' positions in ONE transaction: either all of it is in the database or none of it is.
   */
  commitBatch(sightings: Sighting[], checkpoints: FileCheckpoint[] = [], now = Date.now(), positions: SourcePosition[] = []): Promise<ApplyResult[]> {
    return this.gate.run(this.db.transaction(() => {
      const results = sightings.map((s) => this.apply(s));
      for (const c of checkpoints) {
        this.stmt.putCheckpoint.run({ path: c.path, dev: c.dev, ino: c.ino, offset: c.offset, fingerprint: c.fingerprint, tailFingerprint: c.tailFingerprint ?? null, now });
      }
      for (const p of positions) this.stmt.putPosition.run({ key: p.key, value: JSON.stringify(p.value), now });
      return results;
    }));
  }

  /** A source position's committed value, or undefined. */
  position(key: string): Promise<unknown> {
    return this.gate.run(() => {
      const v = this.stmt.getPosition.get(key) as string | undefined;
      return v === undefined ? undefined : JSON.parse(v);
    });
  }

  /** Forget positions under `prefix` not updated since `before` (old HTTP idempotency keys). */
  prunePositions(prefix: string, before: number): Promise<number> {
    return this.gate.run(() => this.db.prepare("DELETE FROM positions WHERE key >= ? AND key < ? AND updated_at < ?").run(prefix, prefix + '\uffff', before).changes);
  }

  /** The rules' reads and writes (src/inventory/apply.ts) on this connection's statements. */
  private readonly ops: ApplyOps = {
    openByIp: (ip) => {
      const r = this.stmt.openByIp.get(ip) as BindingRow | undefined;
      return r ? toView(r) : undefined;
    },
    identityByKey: (key) => this.stmt.identityByKey.get(key) as { id: number; host_key: string | null } | undefined,
    insertIdentity: (key, f) => Number(this.stmt.insertIdentity.run({ key, ...f }).lastInsertRowid),
    touchIdentity: (id, f) => void this.stmt.touchIdentity.run({ ...f, id }),
    linkFacts: (id) => this.stmt.linkFacts.get(id) as LinkFacts | undefined,
    firstHolder: (hk) => this.stmt.firstHolder.get(hk) as number | undefined,
    claimName: (hk, id) => void this.stmt.claimName.run(hk, id),
    scannedByHost: (hk) => this.stmt.scannedByHost.all(hk) as (LinkFacts & { at: number; via: string | null })[],
    markScanned: (id, at, via) => void this.stmt.markScanned.run({ id, at, via }),
    openByIdentity: (id) => this.stmt.openByIdentity.all(id) as { id: number; ip: string; channel: string; lastSeen: number }[],
    openVpnByUser: (user, remoteIp) => ({
      from: () => (remoteIp === null ? [] : this.stmt.openVpnFrom.all(user, remoteIp) as OpenVpnSession[]),
      unknown: () => this.stmt.openVpnUnknown.all(user) as OpenVpnSession[],
      any: () => this.stmt.openVpnAny.all(user) as OpenVpnSession[],
    }),
    endBinding: (id, at, reason) => void this.stmt.endBinding.run({ id, at, reason }),
    renewBinding: (id, at, expiresAt, session) => void this.stmt.renewBinding.run({ id, at, expiresAt, user: session?.user ?? null, remoteIp: session?.remoteIp ?? null }),
    insertBinding: ({ session, ...b }) => Number(this.stmt.insertBinding.run({ ...b, user: session?.user ?? null, remoteIp: session?.remoteIp ?? null }).lastInsertRowid),
    insertSighting: (r) => void this.stmt.insertSighting.run(r),
  };

  /** Apply one sighting (inside commitBatch's transaction). */
  private apply(sighting: Sighting): ApplyResult {
    return applySighting(sighting, this.ops, this.opts, this.links, this.opts.learnLeaseTimes === false ? undefined : this.leases);
  }

  checkpoint(path: string): Promise<FileCheckpoint | undefined> {
    return this.gate.run(() => this.checkpointNow(path));
  }

  private checkpointNow(path: string): FileCheckpoint | undefined {
    const r = this.stmt.getCheckpoint.get(path) as (Omit<FileCheckpoint, 'tailFingerprint'> & { tail_fingerprint: string | null }) | undefined;
    if (!r) return undefined;
    const cp: FileCheckpoint = { path: r.path, dev: r.dev, ino: r.ino, offset: r.offset, fingerprint: r.fingerprint };
    if (r.tail_fingerprint) cp.tailFingerprint = r.tail_fingerprint;
    return cp;
  }

  binding(id: number): Promise<BindingView | undefined> {
    return this.gate.run(() => this.bindingNow(id));
  }

  bindings(ids: readonly number[]): Promise<BindingView[]> {
    // one turn of the gate; each lookup is the same indexed read as binding(id)
    return this.gate.run(() => {
      const out: BindingView[] = [];
      for (const id of ids) {
        const b = this.bindingNow(id);
        if (b) out.push(b);
      }
      return out;
    });
  }

  private bindingNow(id: number): BindingView | undefined {
    const r = this.stmt.bindingById.get(id) as BindingRow | undefined;
    return r ? toView(r) : undefined;
  }

  /** the binding holding `ip` now, if any */
  openBinding(ip: string): Promise<BindingView | undefined> {
    return this.gate.run(() => {
      const r = this.stmt.openByIp.get(ip) as BindingRow | undefined;
      return r ? toView(r) : undefined;
    });
  }

  identity(id: number): Promise<IdentityView | undefined> {
    return this.gate.run(() => this.identityNow(id));
  }

  private identityNow(id: number): IdentityView | undefined {
    const r = this.stmt.identity.get(id) as IdentityRow | undefined;
    return r && toIdentityView(r);
  }

  /** A binding is present while it is open and not past its expiry. */
  isPresent(b: BindingView, now: number): boolean {
    return b.endAt === undefined && (b.expiresAt === undefined || b.expiresAt >= now);
  }

  presentBindings(now: number): Promise<BindingView[]> {
    return this.gate.run(() => (this.stmt.present.all(now) as BindingRow[]).map(toView));
  }

  /**
   * presentBindings(now) a page at a time (same order), so a pass over a fleet of 1M holds one page
   * in memory, not the whole fleet (status page, metrics, views).
   */
  async *presentBindingPages(now: number, pageSize = 5000): AsyncGenerator<BindingView[]> {
    let after = { ip: '', id: 0 };
    for (;;) {
      const from = after;
      // between pages the event loop turns (sockets, timers): a pass over 1M is not one long block
      if (from.id) await new Promise((r) => setImmediate(r));
      const rows = await this.gate.run(() => this.stmt.presentPage.all({ now, ...from, n: pageSize }) as BindingRow[]);
      if (rows.length) yield rows.map(toView);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = { ip: last.ip, id: last.id };
    }
  }

  /** presentIds(now) a page at a time (the periodic sweep). */
  async *presentIdPages(now: number, pageSize = 10_000): AsyncGenerator<{ id: number; lastScannedAt?: number }[]> {
    let after = { ip: '', id: 0 };
    for (;;) {
      const from = after;
      if (from.id) await new Promise((r) => setImmediate(r));
      const rows = await this.gate.run(() => this.stmt.presentIdsPage.all({ now, ...from, n: pageSize }) as [number, string, number | null][]);
      if (rows.length) yield rows.map(([id, , at]) => (at === null ? { id } : { id, lastScannedAt: at }));
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = { ip: last[1], id: last[0] };
    }
  }

  /** The bindings an identity holds now (onsight rescan / skip name devices, not addresses). */
  presentBindingsOf(identityId: number, now: number): Promise<BindingView[]> {
    return this.gate.run(() => (this.stmt.presentOf.all(identityId, now) as BindingRow[]).map(toView));
  }

  /** The ids (and identities' last scan) of presentBindings(now), same order: a cheap pass for the periodic sweep. */
  presentIds(now: number): Promise<{ id: number; lastScannedAt?: number }[]> {
    return this.gate.run(() => (this.stmt.presentIds.all(now) as [number, number | null][]).map(([id, at]) => (at === null ? { id } : { id, lastScannedAt: at })));
  }

  endedBindings(since: number, now: number, before?: EndedKey): Promise<EndedBindingRow[]> {
    return this.gate.run(() => (this.stmt.ended.all({ now, since, beforeAt: before?.endAt ?? Number.MAX_SAFE_INTEGER, beforeId: before?.id ?? Number.MAX_SAFE_INTEGER }) as EndedRow[]).map((e) => ({
      id: e.id, ip: e.ip, identityId: e.identity_id, startAt: e.start_at, endAt: e.end_at, endReason: e.end_reason ?? undefined,
      lastScannedAt: e.last_scanned_at ?? undefined, lastScannedVia: e.last_scanned_via ?? undefined, presentElsewhere: e.present_elsewhere !== 0,
    })));
  }

  async *bindingPagesBetween(from: number, to: number, now: number, pageSize = 5000): AsyncGenerator<PeriodBinding[]> {
    const page = this.db.prepare(`SELECT b.id, b.ip, b.identity_id, b.channel, b.start_at, b.expires_at, b.end_at, i.last_scanned_at, i.last_scanned_via
        FROM bindings b JOIN identities i ON i.id = b.identity_id
        WHERE b.start_at < @to AND coalesce(b.end_at, b.expires_at, @now) >= @from AND (b.identity_id, b.id) > (@afterIdentity, @afterId)
        ORDER BY b.identity_id, b.id LIMIT @n`);
    let after = { afterIdentity: 0, afterId: 0 };
    for (;;) {
      const at = after;
      // between pages the event loop turns (sockets, timers)
      if (at.afterId) await new Promise((r) => setImmediate(r));
      const rows = await this.gate.run(() => page.all({ from, to, now, ...at, n: pageSize }) as PeriodRow[]);
      if (rows.length) yield rows.map(toPeriodBinding);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = { afterIdentity: last.identity_id, afterId: last.id };
    }
  }


  /** End bindings whose lease ran out without a release; returns their ids. */
  expireStale(now: number): Promise<number[]> {
    return this.gate.run(() => {
      const ids = (this.stmt.expired.all(now) as { id: number }[]).map((r) => r.id);
      if (ids.length) {
        this.db.transaction(() => {
          for (const id of ids) {
            const b = this.bindingNow(id);
            this.stmt.endBinding.run({ id, at: b?.expiresAt ?? now, reason: 'lease-ran-out' });
          }
        })();
      }
      return ids;
    });
  }

  /** Did a device other than `identityId` hold `ip` at any time from `from` to `to` (default: at `from`), as far as we know? */
  heldByAnotherAt(ip: string, from: number, identityId: number, to = from): Promise<boolean> {
    return this.gate.run(() => this.stmt.otherHolder.get({ ip, from, to, identityId }) !== undefined);
  }

  forgetPretendScans(via: string): Promise<number> {
    const linked = `${via}${LINKED_FROM}`;
    return this.gate.run(() => this.db.prepare(`UPDATE identities SET last_scanned_at = NULL, last_scanned_via = NULL
      WHERE last_scanned_via = ? OR substr(last_scanned_via, 1, ?) = ?`).run(via, linked.length, linked).changes);
  }

  /**
   * Record a scan of these identities (only ever forward); with linkHostnames, identities sharing
   * a specific host key with one of them are credited too.
   */
  markScanned(identityIds: number[], at: number, via: string): Promise<void> {
    const linking = this.links.on;
    return this.gate.run(this.db.transaction(() => {
      const done = new Set<string>();
      for (const id of identityIds) {
        this.stmt.markScanned.run({ id, at, via });
        if (!linking) continue;
        const me = this.stmt.linkFacts.get(id) as (LinkFacts & { host_key: string | null }) | undefined;
        const hk = me?.host_key;
        if (!me || !isLinkableHostKey(hk) || done.has(`${id}`)) continue;
        done.add(`${id}`);
        const whereabouts = (identity: number) => this.stmt.openByIdentity.all(identity) as Whereabouts;
        // (read once for `me`, and only where the pattern alone links)
        let first: boolean | undefined;
        let mine: Whereabouts | undefined;
        const heldFirst = () => (first ??= this.stmt.firstHolder.get(hk) === id);
        for (const other of this.stmt.byHost.all(hk) as LinkFacts[]) {
          if (other.id !== id && !identityIds.includes(other.id) && this.links.corroborated(me, other, hk, heldFirst, () => apart(mine ??= whereabouts(id), whereabouts(other.id)))) {
            this.stmt.markScanned.run({ id: other.id, at, via: linkedVia(via, me.key) });
          }
        }
      }
    }));
  }

  /**
   * Drop what is older than the retention: ended scans (kept as counts), sightings, ended bindings,
   * then devices neither seen nor scanned since `forgetAfterS` that nothing names any more. A
   * chunk per transaction, so ingest waits for one chunk at most, not for a first prune of years.
   */
  async prune(now: number): Promise<PruneCounts> {
    const { cutoff, forget } = pruneCutoffs(now, this.opts);
    const out: PruneCounts = { sightings: 0, bindings: 0, intents: 0, identities: 0 };
    const chunks = async (run: () => number): Promise<number> => {
      let n = 0;
      for (let k; (k = await this.gate.run(this.db.transaction(run))) > 0;) n += k;
      return n;
    };
    out.intents = await chunks(() => {
      const ids = JSON.stringify(this.db.prepare(`SELECT id FROM intents WHERE state NOT IN ('launching', 'running') AND coalesce(ended_at, created_at) < ?
        AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.intent_id = intents.id) LIMIT ${PRUNE_CHUNK}`).pluck().all(cutoff));
      this.db.prepare(`INSERT INTO pruned_intent_counts (region, appliance, state, n)
        SELECT region, appliance, state, count(*) FROM intents WHERE id IN (SELECT value FROM json_each(?)) GROUP BY region, appliance, state
        ON CONFLICT (region, appliance, state) DO UPDATE SET n = n + excluded.n`).run(ids);
      this.db.prepare('DELETE FROM intent_targets WHERE intent_id IN (SELECT value FROM json_each(?))').run(ids);
      return this.db.prepare('DELETE FROM intents WHERE id IN (SELECT value FROM json_each(?))').run(ids).changes;
    });
    out.sightings = await chunks(() => this.db.prepare(`DELETE FROM sightings WHERE id IN (SELECT id FROM sightings WHERE at < ? LIMIT ${PRUNE_CHUNK})`).run(cutoff).changes);
    out.bindings = await chunks(() => this.db.prepare(`DELETE FROM bindings WHERE id IN (SELECT id FROM bindings WHERE end_at IS NOT NULL AND end_at < ?
      AND id NOT IN (SELECT binding_id FROM queue) AND id NOT IN (SELECT binding_id FROM intent_targets) LIMIT ${PRUNE_CHUNK})`).run(cutoff).changes);
    out.identities = await chunks(() => this.db.prepare(`DELETE FROM identities WHERE id IN (SELECT id FROM identities i WHERE ${forgettableIdentity('@forget')} LIMIT ${PRUNE_CHUNK})`).run({ forget }).changes);
    await chunks(() => this.db.prepare(FORGOTTEN_HOLDERS).run().changes);
    return out;
  }

  counts(now: number): Promise<InventoryCounts> {
    const one = (sql: string, ...a: unknown[]) => (this.db.prepare(sql).get(...a) as { n: number }).n;
    return this.gate.run(() => ({
      identities: one('SELECT count(*) n FROM identities'),
      present: one('SELECT count(*) n FROM bindings WHERE end_at IS NULL AND (expires_at IS NULL OR expires_at >= ?)', now),
      bindings: one('SELECT count(*) n FROM bindings'),
      sightings: one('SELECT count(*) n FROM sightings'),
    }));
  }
}
