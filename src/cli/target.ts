/**
 * `<ip|mac|user>` on the command line: which devices (identities) and addresses it names. An
 * address names whoever held it; a MAC or a user names their identities.
 */
import type { DB } from '../store/db.js';
import { UsageError } from '../errors.js';
import { canonicalIp } from '../util/ip.js';
import { normalizeMac } from '../util/mac.js';
import { parseDuration } from '../util/time.js';

export interface Target {
  kind: 'ip' | 'mac' | 'user';
  value: string;
}

export function parseTarget(text: string): Target {
  const t = text.trim();
  if (t === '' || t.length > 256) throw new UsageError(`expected an IP address, a MAC address or a user name, not "${t.slice(0, 40)}"`);
  const ip = canonicalIp(t);
  if (ip) return { kind: 'ip', value: ip };
  const mac = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i.test(t) ? normalizeMac(t) : undefined;
  if (mac) return { kind: 'mac', value: mac };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(t)) throw new UsageError('a user name on the command line cannot contain control characters');
  return { kind: 'user', value: t };
}

/** The identities the target names (an address: every identity that held it). */
export function identityIds(db: DB, t: Target): number[] {
  const rows = t.kind === 'ip'
    ? db.prepare('SELECT DISTINCT identity_id AS id FROM bindings WHERE ip = ?').all(t.value)
    : db.prepare(`SELECT id FROM identities WHERE ${t.kind === 'mac' ? 'mac' : 'user'} = ?`).all(t.value);
  return (rows as { id: number }[]).map((r) => r.id);
}

/** The identities the target names that hold an address now (rescan and skip act on devices present). */
export function presentIdentityIds(db: DB, t: Target, now: number): number[] {
  const sql = `SELECT DISTINCT b.identity_id AS id FROM bindings b JOIN identities i ON i.id = b.identity_id
    WHERE b.end_at IS NULL AND (b.expires_at IS NULL OR b.expires_at >= ?) AND ${t.kind === 'ip' ? 'b.ip' : t.kind === 'mac' ? 'i.mac' : 'i.user'} = ?`;
  return (db.prepare(sql).all(now, t.value) as { id: number }[]).map((r) => r.id);
}

/** A duration from now (`2h`, `7d`; `sign` -1: ago, +1: ahead) or an ISO date → epoch ms. */
export function parseWhen(text: string, now: number, option: string, sign: 1 | -1): number {
  const d = parseDuration(text);
  if (d !== undefined) return now + sign * d * 1000;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new UsageError(`${option}: expected a duration (2h, 7d) or a date (2026-12-01T08:00Z), not "${text}"`);
  return ms;
}

