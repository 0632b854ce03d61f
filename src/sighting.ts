/**
 * The Sighting: the contract between parsers and everything downstream (see DESIGN.md).
 * Field names and forms are a public contract: `onsight parse` prints exactly this as JSON Lines.
 */
import { storableText } from './util/text.js';
import { SKEW_MS, isDateMs, isoOrUndefined } from './util/time.js';

export type SightingKind = 'lease' | 'renew' | 'release' | 'expire' | 'tunnel-up' | 'tunnel-down';

export const SIGHTING_KINDS: readonly SightingKind[] = ['lease', 'renew', 'release', 'expire', 'tunnel-up', 'tunnel-down'];

/**
 * A date counts at most this far ahead of our clock (a clock a little ahead): an event past its
 * receipt, a device's last scan past now. Later would hold an address, or a device's scan, for ever.
 * A line is held closer still (placeAtReceipt).
 */
export const MAX_AHEAD_MS = 86_400_000;

/**
 * A line's sighting timed more than SKEW_MS after the line came (`receivedMs`: a live line's
 * receipt, a stored one's reading, a file's: no line is written after it is read) is placed then,
 * its end moved as much: its sender's clock runs ahead (or a file's zone is east of the configured
 * one), or the time is forged. At its own time (up to MAX_AHEAD_MS) it made the address's genuine
 * lines look older than what was known of it, and they were ignored for as long (a day, review).
 * Not at the time of a file's line before it: a file whose every line runs ahead pinned them all
 * there, days back, their leases ended (second review). A forged line in a backlog read at start
 * still hides that address's genuine lines of the same backlog, none read after it.
 * Returns how far ahead it was (ms), 0 when left as it is.
 */
export function placeAtReceipt(s: Sighting, receivedMs: number): number {
  const ahead = Date.parse(s.at) - receivedMs;
  if (!isDateMs(receivedMs) || !(ahead > SKEW_MS)) return 0;
  s.at = new Date(receivedMs).toISOString();
  if (s.expiresAt !== undefined) {
    const e = isoOrUndefined(Date.parse(s.expiresAt) - ahead);
    if (e) s.expiresAt = e;
    else delete s.expiresAt;
  }
  return ahead;
}

/**
 * A date before this is a clock never set (a device without a battery-backed clock starts at 1970,
 * some at 2000-01-01 00:00): no event of a network we watch happened then.
 */
export const CLOCK_SET_FROM_MS = Date.UTC(2000, 0, 1, 0, 1);

/** The longest lease or session a sighting holds an address for (an infinite lease is held this long; a longer one is cut to it). */
export const MAX_DURATION_S = 10 * 365 * 86400;

/** What a parser returns: the facts of one line. The pipeline adds format, source and line. */
export interface SightingDraft {
  kind: SightingKind;
  /** canonical: IPv4 dotted quad, IPv6 compressed lower-case */
  ip: string;
  /** a second (IPv6) inner address when a VPN line gives both */
  ip6?: string;
  /** lower-case colon form */
  mac?: string;
  /** DHCPv6 DUID (or DHCPv4 client-id) exactly as logged */
  duid?: string;
  clientId?: string;
  hostname?: string;
  /** VPN user / common name as logged */
  user?: string;
  /** VPN client's public (outer) address */
  remoteIp?: string;
  remoteHost?: string;
  /** ISO 8601 UTC; when the line has no time the pipeline uses the receive time */
  at?: string;
  expiresAt?: string;
  /** lease time or session length in seconds */
  durationS?: number;
}

export interface Sighting extends SightingDraft {
  at: string;
  /** parser id */
  format: string;
  /** where the line came from: `udp:5514`, `tcp:5514`, `file:/var/log/dhcpd.log`, `stdin` ... */
  source: string;
  /** 1-based line number within its file (files and `onsight parse` only) */
  line?: number;
}

/** Key order for stable JSON output. */
const ORDER: (keyof Sighting)[] = [
  'kind', 'ip', 'ip6', 'mac', 'duid', 'clientId', 'hostname', 'user', 'remoteIp', 'remoteHost',
  'at', 'expiresAt', 'durationS', 'format', 'source', 'line',
];

/** the free-text fields, as a line gives them (made storable: storableText) */
export const SIGHTING_TEXT_FIELDS = ['duid', 'clientId', 'hostname', 'user', 'remoteHost'] as const;

export function sightingToJson(s: Sighting): string {
  const out: Record<string, unknown> = {};
  for (const k of ORDER) if (s[k] !== undefined && s[k] !== '') out[k] = s[k];
  // (a C1 control or bidi override in a host name would reach the terminal `onsight parse` writes to)
  for (const f of SIGHTING_TEXT_FIELDS) if (typeof out[f] === 'string') out[f] = storableText(out[f] as string);
  return JSON.stringify(out);
}

/** Presence-starting kinds bind an IP to a device; ending kinds unbind it. */
export function isBindingStart(kind: SightingKind): boolean {
  return kind === 'lease' || kind === 'renew' || kind === 'tunnel-up';
}
