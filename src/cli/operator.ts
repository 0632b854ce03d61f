/**
 * `onsight rescan <ip|mac|user>` and `onsight skip <ip|mac|user> [--until]`: write an operator's
 * mark (scheduler/marks.ts) for the devices present under that name; the running daemon reads it
 * within a second. Opens the state read-write (SQLite WAL: beside the daemon), never creates it.
 */
import { OnsightError } from '../errors.js';
import { openDatabase, requireStateFile, type DB } from '../store/db.js';
import { OperatorMarks, SKIP_FOREVER } from '../scheduler/marks.js';
import { SqliteSchedulerStore } from '../scheduler/queue.js';
import { identityIds, presentIdentityIds, type Target } from './target.js';
import { printable } from './printable.js';

export type OperatorAction = { kind: 'rescan' } | { kind: 'skip'; until: number };

export interface MarkResult {
  target: Target;
  action: OperatorAction['kind'];
  /** identity keys marked */
  devices: string[];
  until?: string;
}

/** Mark the devices present under `target`; throws ONSIGHT_NO_DEVICE when none is. */
export async function markDevices(db: DB, target: Target, action: OperatorAction, now: number): Promise<MarkResult> {
  // an address names its holder now; a MAC or a user names a device even while it is away (a skip then holds its next lease)
  const ids = action.kind === 'skip' && target.kind !== 'ip' ? identityIds(db, target) : presentIdentityIds(db, target, now);
  if (!ids.length) {
    throw new OnsightError('ONSIGHT_NO_DEVICE', `${action.kind === 'skip' && target.kind !== 'ip' ? 'no device known' : 'no device present'} under ${target.kind} ${printable(target.value)} ` +
      `(onsight hosts lists those present; onsight why ${printable(target.value)} shows its history)`);
  }
  const marks = new OperatorMarks(new SqliteSchedulerStore(db));
  if (action.kind === 'rescan') await marks.requestRescan(ids, now);
  else await marks.skip(ids, action.until, now);
  const keys = (db.prepare(`SELECT key FROM identities WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as { key: string }[]).map((r) => r.key);
  return {
    target, action: action.kind, devices: keys,
    ...(action.kind === 'skip' ? { until: action.until >= SKIP_FOREVER ? 'lifted' : new Date(action.until).toISOString() } : {}),
  };
}

/** Open the daemon's state beside it, mark, close (the CLI, and POST /api/rescan|skip). */
export async function runOperatorMark(state: string, target: Target, action: OperatorAction, now: number): Promise<MarkResult> {
  requireStateFile(state);
  const db = openDatabase(state);
  try {
    return await markDevices(db, target, action, now);
  } finally {
    db.close();
  }
}

export async function runOperatorAction(state: string, target: Target, action: OperatorAction, now: number): Promise<string> {
  const r = await runOperatorMark(state, target, action, now);
  const who = r.devices.map(printable).join(', ');
  if (r.action === 'rescan') return `rescan requested for ${who}: the running daemon makes it due now (its region's scan windows still apply)\n`;
  if (action.kind === 'skip' && action.until <= now) return `skip lifted for ${who}\n`;
  return `skipped ${who} ${r.until === 'lifted' ? 'until lifted (onsight skip … --until now)' : `until ${r.until}`}: not queued or launched before then (a scan already running is not cancelled)\n`;
}
