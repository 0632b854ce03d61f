/**
 * Tenable scan statuses onto the seam's ScanState. The list is developer.tenable.com's "Scan Status"
 * page as cited in src/emulator/tenable/SOURCES.md. `empty` (a definition never launched) is a copy
 * we made but never launched; the client does not list those at all (client.ts listScans).
 */
import type { ScanState } from '../types.js';

const MAP: Record<string, ScanState> = {
  pending: 'queued',
  initializing: 'queued',
  running: 'running',
  processing: 'running',
  publishing: 'running',
  stopping: 'running',
  pausing: 'running',
  paused: 'paused',
  resuming: 'running',
  completed: 'finished',
  imported: 'finished',
  canceled: 'canceled',
  cancelled: 'canceled',
  stopped: 'canceled',
  aborted: 'error',
  empty: 'canceled',
};

export function mapStatus(status: unknown): ScanState {
  // (a status that is no string, in anyone's scan of the account, threw and stopped every poll)
  return (typeof status === 'string' ? MAP[status.toLowerCase()] : undefined) ?? 'unknown';
}
