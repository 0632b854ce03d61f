/**
 * What a lease database says about one lease, whatever the format, and how that becomes a
 * sighting: present and not expired → `lease`; ended → `release` or `expire`.
 */
import { MAX_DURATION_S, type Sighting } from '../../sighting.js';
import { isoOrUndefined } from '../../util/time.js';
import { storableText } from '../../util/text.js';

export interface LeaseRecord {
  /** active: the lease is held (until expiresAt); released / expired: it ended at endAt */
  state: 'active' | 'released' | 'expired';
  ip: string;
  mac?: string;
  duid?: string;
  clientId?: string;
  hostname?: string;
  /** epoch ms the lease was granted or last renewed */
  startAt?: number;
  /** epoch ms; undefined = infinite */
  expiresAt?: number;
  /** epoch ms the lease ended (released / expired) */
  endAt?: number;
  durationS?: number;
}

/** A journal format reads its file line by line (FileTailer gives the lines and the byte checkpoints). */
export interface JournalReader {
  /**
   * One line (without its newline). `records`: leases the line completed. `boundary`: the position
   * just after this line is a safe place to resume from (not inside a multi-line record).
   */
  line(text: string): { records: LeaseRecord[]; boundary: boolean; error?: string };
  /** a new file begins (rotation, rewrite): drop any partial record */
  reset(): void;
}

export function recordToSighting(r: LeaseRecord, now: number, format: string, source: string): Sighting {
  // (a time no Date can hold, from a hand-edited or foreign file: now for an event's time, none for an expiry)
  const iso = (ms: number) => isoOrUndefined(ms) ?? new Date(now).toISOString();
  const base = { ip: r.ip, format, source } as Sighting;
  if (r.mac) base.mac = r.mac;
  // (these skip the decoder: made storable here as it makes a parser's, a NUL in a corrupt file included)
  if (r.duid) base.duid = storableText(r.duid);
  if (r.clientId) base.clientId = storableText(r.clientId);
  if (r.hostname) base.hostname = storableText(r.hostname);
  if (r.state === 'active' && (r.expiresAt === undefined || r.expiresAt > now)) {
    const s: Sighting = { ...base, kind: 'lease', at: iso(Math.min(r.startAt ?? now, now)) };
    const expires = r.expiresAt !== undefined ? isoOrUndefined(r.expiresAt) : undefined;
    if (expires) s.expiresAt = expires;
    else s.durationS = MAX_DURATION_S; // infinite: held until a release or another holder says otherwise
    if (r.durationS !== undefined) s.durationS = Math.min(r.durationS, MAX_DURATION_S);
    return s;
  }
  if (r.state === 'released') return { ...base, kind: 'release', at: iso(Math.min(r.endAt ?? now, now)) };
  return { ...base, kind: 'expire', at: iso(Math.min(r.endAt ?? r.expiresAt ?? now, now)) };
}
