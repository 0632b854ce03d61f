/**
 * InsightVM scan statuses (API v3 Scan.status, as SOURCES.md cites) onto the seam's ScanState.
 */
import type { ScanState } from '../types.js';

const MAP: Record<string, ScanState> = {
  dispatched: 'queued',
  running: 'running',
  integrating: 'running',
  paused: 'paused',
  finished: 'finished',
  stopped: 'canceled',
  aborted: 'error',
  error: 'error',
  unknown: 'unknown',
};

export function mapStatus(status: unknown): ScanState {
  // (a status that is no string, in anyone's scan of the account, threw and stopped every poll)
  return (typeof status === 'string' ? MAP[status.toLowerCase()] : undefined) ?? 'unknown';
}
