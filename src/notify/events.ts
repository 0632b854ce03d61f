/**
 * What onsight notifies about (webhook JSON body, syslog structured data). One shape for both
 * sinks; the `event` names are stable (the README lists them and their fields).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { NotifyEventKind } from './schema.js';

export interface ScanFacts {
  intentId: string;
  scanRef?: string;
  region: string;
  appliance: string;
  /** finished, error, canceled, abandoned */
  state: string;
  launchedAt?: string;
  endedAt: string;
  targets: number;
  /** targets recorded scanned by this end (more may follow once the scanner's host list confirms them) */
  scanned: number;
  error?: string;
}

export interface HostFacts {
  ip: string;
  identityId?: number;
  /** the device's key (mac:…, user:…, …), when known */
  device?: string;
  hostname?: string;
  user?: string;
  region?: string;
  /** why (host-scanned: which scan; host-missed: why it left unscanned) */
  reason: string;
  /** host-missed: the reason's stable key (left-while-queued, left-during-scan, scan-failed, outside-scan-window, no-decision, other:…) */
  why?: string;
  /** host-missed: when its binding ended */
  leftAt?: string;
}

export interface NotifyEvent {
  /** unique per event: a receiver drops a repeat delivery by it */
  id: string;
  event: NotifyEventKind;
  /** when it happened (ISO 8601, UTC) */
  at: string;
  scan?: ScanFacts;
  host?: HostFacts;
}

export function newEvent(event: NotifyEventKind, at: number, facts: { scan?: ScanFacts; host?: HostFacts }, id: string = randomUUID()): NotifyEvent {
  return { id, event, at: new Date(at).toISOString(), ...facts };
}

/**
 * An event id that names what it reports (a UUID's shape, from a hash of `key`): the same fact
 * reported twice (by a new cluster leader, after a restart) carries the same id, so a receiver
 * that drops repeated ids drops it.
 */
export function factId(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** One line for people (the syslog MSG part, logs). */
export function describeEvent(e: NotifyEvent): string {
  if (e.scan) {
    const s = e.scan;
    return `scan ${s.scanRef ?? s.intentId} ${s.state} on ${s.appliance} in region ${s.region}: ${s.scanned} of ${s.targets} target(s) recorded scanned${s.error ? ` (${s.error})` : ''}`;
  }
  const h = e.host!;
  const who = [h.device, h.hostname && `(${h.hostname})`].filter(Boolean).join(' ');
  if (e.event === 'host-scanned') return `host ${h.ip}${who ? ' ' + who : ''} scanned${h.region ? ` in region ${h.region}` : ''}: ${h.reason}`;
  return `host ${h.ip}${who ? ' ' + who : ''} left${h.region ? ` region ${h.region}` : ''} unscanned: ${h.reason}`;
}
