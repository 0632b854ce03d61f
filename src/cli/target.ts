/**
 * `<ip|mac|user>` on the command line: which devices (identities) and addresses it names. An
 * address names whoever held it; a MAC or a user names their identities.
 */
import { UsageError } from '../errors.js';
import type { DeviceName } from '../store/types.js';
import { canonicalIp } from '../util/ip.js';
import { normalizeMac } from '../util/mac.js';
import { parseDuration } from '../util/time.js';

/** which devices it names: the store's HistoryStore.identitiesNamed */
export type Target = DeviceName;

export function parseTarget(text: string): Target {
  const t = text.trim();
  if (t === '' || t.length > 256) throw new UsageError(`expected an IP address, a MAC address or a user name, not "${t.slice(0, 40)}"`);
  const ip = canonicalIp(t);
  if (ip) return { kind: 'ip', value: ip };
  const mac = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i.test(t) ? normalizeMac(t) : undefined;
  if (mac) return { kind: 'mac', value: mac };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(t)) throw new UsageError('a user name cannot contain control characters');
  return { kind: 'user', value: t };
}

/**
 * A duration from now (`2h`, `7d`; `sign` -1: ago, +1: ahead) or an ISO date → epoch ms. A date
 * or time without a zone is UTC, as a date alone is to Date.parse (a time alone would be local).
 */
export function parseWhen(text: string, now: number, option: string, sign: 1 | -1): number {
  const d = parseDuration(text);
  if (d !== undefined) return now + sign * d * 1000;
  const zoneless = /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(text);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(zoneless ? `${text}Z` : text) : NaN;
  if (Number.isNaN(ms)) throw new UsageError(`${option}: expected a duration (2h, 7d) or a date (2026-12-01T08:00Z), not "${text}"`);
  return ms;
}

