/**
 * `onsight why <ip|mac|user> [--json]`: one device's history, newest first: its sightings, the
 * scheduler's decisions about it, and the scans that targeted it. Read-only.
 */
import { openDatabaseReadOnly } from '../store/db.js';
import type { Config } from '../config/schema.js';
import { identityIds, parseTarget } from './target.js';
import { printable, safeJson } from './printable.js';
import { iso, table } from './views.js';
import { sqliteStatePath } from '../cluster/config.js';

/** `--ip`, `--mac`, `--since` of `onsight decisions`, and `why`: rows about these addresses or identities. */
function where(ips: string[], ids: number[], ipCol: string, idCol: string): { sql: string; args: (string | number)[] } {
  const parts: string[] = [];
  if (ips.length) parts.push(`${ipCol} IN (${ips.map(() => '?').join(',')})`);
  if (ids.length) parts.push(`${idCol} IN (${ids.map(() => '?').join(',')})`);
  return { sql: parts.length ? `(${parts.join(' OR ')})` : '0', args: [...ips, ...ids] };
}

export function whyView(config: Pick<Config, 'state'>, text: string, json: boolean, limit = 50): string {
  const h = whyHistory(sqliteStatePath(config.state, 'onsight why'), text, limit);
  if (json) return safeJson(h) + '\n';
  const { target, devices, sightings, decisions, scans } = h;
  if (!devices.length && !sightings.length && !decisions.length && !scans.length) return `nothing known about ${printable(target.value)} (${target.kind})\n`;
  return [
    `DEVICES (${target.kind} ${printable(target.value)})`,
    table(['IDENTITY', 'MAC', 'USER', 'HOSTNAME', 'LAST SCANNED', 'VIA'], devices.map((d) => [d.identity, d.mac, d.user, d.hostname, d.lastScanned, d.via])),
    'SIGHTINGS',
    table(['AT', 'KIND', 'IP', 'FORMAT', 'SOURCE'], sightings.map((r) => [r.at, r.kind, r.ip, r.format, r.source])),
    'DECISIONS',
    table(['AT', 'IP', 'DECISION', 'WHY'], decisions.map((r) => [r.at, r.ip, r.decision, r.reason])),
    'SCANS',
    table(['INTENT', 'IP', 'REGION', 'APPLIANCE', 'STATE', 'SCAN', 'LAUNCHED', 'ENDED', 'ERROR'], scans.map((r) => [r.intent, r.ip, r.region, r.appliance, r.state, r.scanRef, r.launched, r.ended, r.error])),
  ].join('\n');
}

/** The history `why` prints, as data (also GET /api/why). */
export function whyHistory(state: string, text: string, limit = 50) {
  const target = parseTarget(text);
  const db = openDatabaseReadOnly(state);
  try {
    const ids = identityIds(db, target);
    const ips = target.kind === 'ip' ? [target.value] : [];
    const ident = ids.length
      ? db.prepare(`SELECT id, key, mac, user, hostname, last_scanned_at, last_scanned_via FROM identities WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as
        { id: number; key: string; mac: string | null; user: string | null; hostname: string | null; last_scanned_at: number | null; last_scanned_via: string | null }[]
      : [];
    const s = where(ips, ids, 'ip', 'identity_id');
    const sightings = (db.prepare(`SELECT at, kind, ip, format, source FROM sightings WHERE ${s.sql} ORDER BY at DESC, id DESC LIMIT ?`).all(...s.args, limit) as
      { at: number; kind: string; ip: string; format: string; source: string }[]).map((r) => ({ ...r, at: iso(r.at) }));
    const decisions = (db.prepare(`SELECT at, ip, decision, reason FROM decisions WHERE ${s.sql} ORDER BY at DESC, id DESC LIMIT ?`).all(...s.args, limit) as
      { at: number; ip: string; decision: string; reason: string }[]).map((r) => ({ ...r, at: iso(r.at) }));
    const t = where(ips, ids, 't.ip', 't.identity_id');
    const scans = (db.prepare(`SELECT i.id, i.region, i.appliance, i.state, i.scan_ref, i.launched_at, i.ended_at, i.error, t.ip FROM intent_targets t JOIN intents i ON i.id = t.intent_id
      WHERE ${t.sql} ORDER BY i.created_at DESC LIMIT ?`).all(...t.args, limit) as
      { id: string; region: string; appliance: string; state: string; scan_ref: string | null; launched_at: number | null; ended_at: number | null; error: string | null; ip: string }[])
      .map((r) => ({ intent: r.id, ip: r.ip, region: r.region, appliance: r.appliance, state: r.state, scanRef: r.scan_ref ?? '', launched: iso(r.launched_at), ended: iso(r.ended_at), error: r.error ?? '' }));
    const devices = ident.map((i) => ({ identity: i.key, mac: i.mac ?? '', user: i.user ?? '', hostname: i.hostname ?? '', lastScanned: iso(i.last_scanned_at), via: i.last_scanned_via ?? '' }));
    return { target, devices, sightings, decisions, scans };
  } finally {
    db.close();
  }
}

export interface DecisionFilter {
  ip?: string;
  mac?: string;
  since?: number;
}

/** `onsight decisions --ip/--mac/--since`: the decision log, newest first, filtered. */
export function filteredDecisionsView(config: Config, f: DecisionFilter, json: boolean, limit = 1000): string {
  const db = openDatabaseReadOnly(sqliteStatePath(config.state, 'onsight decisions'));
  try {
    const conds: string[] = [];
    const args: (string | number)[] = [];
    if (f.ip) { conds.push('ip = ?'); args.push(f.ip); }
    if (f.mac) {
      const ids = identityIds(db, { kind: 'mac', value: f.mac });
      const w = where([], ids, 'ip', 'identity_id');
      conds.push(w.sql); args.push(...w.args);
    }
    if (f.since !== undefined) { conds.push('at >= ?'); args.push(f.since); }
    const rows = (db.prepare(`SELECT at, ip, decision, reason FROM decisions ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT ?`).all(...args, limit) as
      { at: number; ip: string; decision: string; reason: string }[]).map((r) => ({ ...r, at: iso(r.at) }));
    if (json) return safeJson(rows) + '\n';
    return table(['AT', 'IP', 'DECISION', 'WHY'], rows.map((r) => [r.at, r.ip, r.decision, r.reason]));
  } finally {
    db.close();
  }
}
