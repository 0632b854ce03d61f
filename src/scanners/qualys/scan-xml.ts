/** Qualys scan documents ↔ our scan types (launch answer, SCAN_LIST_OUTPUT, state names). */
import type { ScanState, ScanStatus } from '../types.js';
import { dateTextOrUndefined } from '../../util/time.js';
import { expandTargets } from './targets.js';
import { int, list, node, simpleReturn, text, type XmlNode } from './xml.js';

/** A scan as Qualys lists it, with the fields the Scanner seam does not carry. */
export interface QualysScan extends ScanStatus {
  /** Qualys STATE verbatim (Loading, Submitted, ...) */
  qualysState: string;
  subState?: string;
  type?: string;
  processed?: boolean;
  userLogin?: string;
  /** HH:MM:SS, or a word such as "Pending" */
  duration?: string;
  /** TARGET as Qualys wrote it (`targets` holds it as canonical addresses, ranges expanded) */
  targetText?: string;
}

const STATE_MAP: Record<string, ScanState> = {
  submitted: 'submitted',
  queued: 'queued',
  running: 'running',
  loading: 'running', // scanning done, results loading: still in progress for us
  canceling: 'running',
  paused: 'paused',
  finished: 'finished',
  error: 'error',
  canceled: 'canceled',
  cancelled: 'canceled',
};

export function mapState(qualys: string | undefined): ScanState {
  return STATE_MAP[(qualys ?? '').trim().toLowerCase()] ?? 'unknown';
}

/** Qualys filter values for our states (only the confirmed ones; undefined = filter on our side). */
const FILTER_VALUES: Partial<Record<ScanState, string[]>> = {
  queued: ['Queued'],
  running: ['Running', 'Loading'],
  paused: ['Paused'],
  finished: ['Finished'],
  error: ['Error'],
  canceled: ['Canceled'],
};

export function stateFilter(states: ScanState[] | undefined): string | undefined {
  if (!states || states.length === 0) return undefined;
  const out: string[] = [];
  for (const s of states) {
    const v = FILTER_VALUES[s];
    if (!v) return undefined; // e.g. 'submitted': not a documented filter value
    out.push(...v);
  }
  return [...new Set(out)].join(',');
}

/** `YYYY-MM-DDTHH:MM:SSZ`, the filter form Qualys accepts. */
export function qualysDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function endOf(launchedAt: string | undefined, duration: string | undefined): string | undefined {
  const m = duration?.match(/^(\d+):(\d{2}):(\d{2})$/);
  if (!launchedAt || !m) return undefined;
  const start = Date.parse(launchedAt);
  if (!Number.isFinite(start)) return undefined;
  return qualysDate(new Date(start + (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1000));
}

export function parseScanList(doc: XmlNode): QualysScan[] {
  const resp = node(doc.RESPONSE) ?? {};
  const out: QualysScan[] = [];
  for (const s of list(node(resp.SCAN_LIST)?.SCAN)) {
    const ref = text(s.REF);
    if (!ref) continue;
    const status = node(s.STATUS);
    const qualysState = text(status?.STATE) ?? '';
    const state = mapState(qualysState);
    const launchedAt = dateTextOrUndefined(text(s.LAUNCH_DATETIME));
    const duration = text(s.DURATION) || undefined;
    const target = text(s.TARGET);
    const type = text(s.TYPE) || undefined;
    out.push(withTargets({
      scanRef: ref,
      title: text(s.TITLE) ?? '',
      state,
      qualysState,
      subState: text(status?.SUB_STATE) || undefined,
      targetText: target || undefined,
      launchedAt,
      endedAt: state === 'finished' || state === 'error' || state === 'canceled' ? endOf(launchedAt, duration) : undefined,
      duration,
      type,
      scheduled: type === undefined ? undefined : type === 'Scheduled',
      processed: s.PROCESSED === undefined ? undefined : int(s.PROCESSED) === 1,
      userLogin: text(s.USER_LOGIN) || undefined,
    }));
  }
  return out;
}

/**
 * `targets`, what Qualys really scans (compared with what we sent: it may drop targets outside the
 * subscription), expanded from TARGET when first read. A list holds every scan of the subscription,
 * others' /16 range scans too (65,536 addresses each); expanding them all at parse took gigabytes
 * for a list of 3,000 (the daemon died of it at each start), and only our own scans' are read.
 */
function withTargets(scan: QualysScan): QualysScan {
  const text = scan.targetText;
  if (text === undefined) return scan;
  return Object.defineProperty(scan, 'targets', {
    enumerable: true,
    configurable: true,
    get(this: QualysScan) {
      const targets = expandTargets(text);
      Object.defineProperty(this, 'targets', { value: targets, enumerable: true, writable: true, configurable: true });
      return targets;
    },
    set(this: QualysScan, targets: string[] | undefined) {
      Object.defineProperty(this, 'targets', { value: targets, enumerable: true, writable: true, configurable: true });
    },
  });
}

/** The launch answer: `REFERENCE` (and `ID`) found by key, never by position. */
export function parseLaunch(doc: XmlNode): { scanRef?: string; id?: string; text?: string } {
  const sr = simpleReturn(doc);
  return { scanRef: sr.items.get('REFERENCE')?.[0], id: sr.items.get('ID')?.[0], text: sr.text };
}

/** Does `title` carry `intentId` as a whole token (so `i-1` does not match `i-12`)? */
export function titleHasIntent(title: string, intentId: string): boolean {
  const esc = intentId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?:^|[^A-Za-z0-9_-])${esc}(?:$|[^A-Za-z0-9_-])`).test(title);
}
