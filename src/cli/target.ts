/**
 * `<ip|mac|user>` on the command line: which devices (identities) and addresses it names. An
 * address names whoever held it; a MAC or a user names their identities.
 */
import { UsageError } from '../errors.js';
import { parseUserKey } from '../inventory/apply.js';
import type { DeviceName } from '../store/types.js';
import { canonicalIp } from '../util/ip.js';
import { normalizeMac } from '../util/mac.js';
import { isDateMs, parseDuration, parseIsoTime } from '../util/time.js';

/** which devices it names: the store's HistoryStore.identitiesNamed */
export type Target = DeviceName;

export function parseTarget(text: string): Target {
  const t = text.trim();
  if (t === '' || t.length > 256) throw new UsageError(`expected an IP address, a MAC address or a user name, not "${t.slice(0, 40)}"`);
  const ip = canonicalIp(t);
  if (ip) return { kind: 'ip', value: ip };
  const mac = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(t) ? normalizeMac(t) : undefined;
  if (mac) return { kind: 'mac', value: mac };
  // what onsight prints for a device (hosts, why, skip): its identity key, taken back as it was printed
  const key = identityKeyOf(t);
  // (user:bob names bob's sessions on every host, user:bob|laptop the one; user:|a%7cb is user a|b's)
  const user = key ? parseUserKey(key) : undefined;
  if (user && user.hostname === undefined) return { kind: 'user', value: user.user };
  if (key?.startsWith('mac:')) return { kind: 'mac', value: key.slice(4) };
  if (key) return { kind: 'key', value: key };
  // (taken as a user name, these named nobody and said so only as "nothing known"; a user name of
  // digits alone, an employee number, stays one)
  if (/^\d+(\.\d+){3}(\/\d+)?$/.test(t) || /^[\d.]+\/\d+$/.test(t) || (/:.*:/.test(t) && /^[\da-f:.]+(\/\d+)?$/i.test(t))) {
    throw new UsageError(`"${t}" is not an IP address${t.includes('/') ? ' (a range names no one device: give one address)' : ''}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(t)) throw new UsageError('a user name cannot contain control characters');
  return { kind: 'user', value: t };
}

/**
 * For a name that matched nothing: a device key (`host:x`, `duid:…`) may have been meant as a user
 * named so, which `user:` says ("" for other targets).
 */
export function keyHint(target: Target): string {
  return target.kind === 'key' && !target.value.startsWith('user:') ? `; a user named "${target.value}" is given as user:${target.value}` : '';
}

/**
 * A duration from now (`2h`, `7d`; `sign` -1: ago, +1: ahead) or an ISO date → epoch ms. A date
 * is read whole and strictly (`2027-01-01`, `2027-01-01T08:00`, `2027-01-01 08:00:00Z`,
 * `…+01:00`); a date or time without a zone is UTC. Anything else is refused, naming `option`:
 * Date.parse took `2027-01-01 junk` as June 1st ("jun"), rolled 2027-02-30 over to March 2nd and
 * read a time after a space as local time. A bare number has no unit (seconds? days?).
 */
export function parseWhen(text: string, now: number, option: string, sign: 1 | -1): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) throw new UsageError(`${option}: "${t}" has no unit: a duration says it (${t}m, ${t}h, ${t}d), or give a date (2026-12-01T08:00Z)`);
  const d = parseDuration(t);
  if (d !== undefined) {
    const at = now + sign * d * 1000;
    if (!isDateMs(at)) throw new UsageError(`${option}: ${t} is further than any date (a Date holds ±275,000 years)`);
    return at;
  }
  const m = /^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2})(:\d{2}(?:[.,]\d{1,9})?)?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?$/.exec(t);
  const ms = m ? parseIsoTime(`${m[1]}T${m[2] ?? '00:00'}${m[3] ?? ':00'}${m[4] ?? ''}`, 'UTC') : undefined;
  if (ms === undefined) throw new UsageError(`${option}: expected a duration (2h, 7d) or a date (2026-12-01, 2026-12-01T08:00Z), not "${text}"`);
  // (a start in the future: a report of nothing, at 100 %)
  if (sign === -1 && ms > now) throw new UsageError(`${option}: ${t} is in the future (${new Date(ms).toISOString()})`);
  return ms;
}

/** An identity key as inventory/apply.ts identityKey writes it, in its stored form; undefined if `t` is none. */
function identityKeyOf(t: string): string | undefined {
  const m = /^(mac|duid|cid|user|host|ip):(.+)$/.exec(t);
  if (!m) return undefined;
  const [, kind, rest] = m;
  if (kind === 'mac') {
    const mac = normalizeMac(rest);
    return mac ? `mac:${mac}` : undefined;
  }
  if (kind === 'ip') {
    const ip = canonicalIp(rest);
    return ip ? `ip:${ip}` : undefined;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(rest)) return undefined;
  return `${kind}:${rest.toLowerCase()}`;
}
