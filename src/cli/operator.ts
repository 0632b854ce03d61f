/**
 * `onsight rescan <ip|mac|user>` and `onsight skip <ip|mac|user> [--until]`: write an operator's
 * mark (scheduler/marks.ts) for the devices present under that name; the running daemon reads it
 * within a second (the scheduler reads marks newer than the last it saw at every tick; in a cluster,
 * the leader, whichever node or command wrote them). Opens the state for writing (SQLite WAL: beside
 * the daemon, without its lock; PostgreSQL: the shared database), never creates it.
 */
import { OnsightError, UsageError } from '../errors.js';
import type { Config } from '../config/schema.js';
import { openStateFor } from '../store/open.js';
import type { Store } from '../store/types.js';
import { OperatorMarks, SKIP_FOREVER } from '../scheduler/marks.js';
import { keyHint, parseWhen, type Target } from './target.js';
import { printable } from './printable.js';

export type OperatorAction = { kind: 'rescan' } | { kind: 'skip'; until: number };

/**
 * A skip's end (`onsight skip --until`, `until` of POST /api/skip) → epoch ms: absent, until lifted;
 * `now` lifts a skip, and is the only way to. A date already past or a duration of zero would lift
 * it without saying so, and a bare number has no unit (seconds? days?): both are refused. `field`
 * names the option or key in the error.
 */
export function parseSkipUntil(text: string | undefined, now: number, field: string): number {
  if (text === undefined) return SKIP_FOREVER;
  if (text === 'now') return now;
  const until = parseWhen(text, now, field, 1);
  if (until <= now) throw new UsageError(`${field}: ${text} is not in the future (${new Date(until).toISOString()}); to lift a skip, say "now"`);
  return until;
}

export interface MarkResult {
  target: Target;
  action: OperatorAction['kind'];
  /** identity keys marked */
  devices: string[];
  /** a skip's end (ISO); absent for a skip until lifted */
  until?: string;
  /** a skip without an end: until `--until now` lifts it */
  untilLifted?: true;
  /** `--until now`: the skip was lifted */
  lifted?: true;
  /** a rescan of devices an operator skipped: the skip holds them until then (ISO, or "until lifted") */
  stillSkipped?: string;
}

/** Mark the devices present under `target`; throws ONSIGHT_NO_DEVICE when none is. */
export async function markDevices(store: Pick<Store, 'inventory' | 'scheduler' | 'history'>, target: Target, action: OperatorAction, now: number): Promise<MarkResult> {
  // an address names its holder now; a MAC or a user names a device even while it is away (a skip then holds its next lease)
  const ids = await store.history.identitiesNamed(target, action.kind === 'skip' && target.kind !== 'ip' ? undefined : now);
  if (!ids.length) {
    throw new OnsightError('ONSIGHT_NO_DEVICE', `${action.kind === 'skip' && target.kind !== 'ip' ? 'no device known' : 'no device present'} under ${target.kind} ${printable(target.value)} ` +
      `(onsight hosts lists those present; onsight why ${printable(target.value)} shows its history${printable(keyHint(target))})`);
  }
  const marks = new OperatorMarks(store.scheduler);
  if (action.kind === 'rescan') await marks.requestRescan(ids, now);
  else await marks.skip(ids, action.until, now);
  const keys: string[] = [];
  let skippedUntil: number | undefined;
  for (const id of ids) {
    const i = await store.inventory.identity(id);
    if (i) keys.push(i.key);
    const m = action.kind === 'rescan' ? await marks.get(id) : undefined;
    if (m?.skipUntil !== undefined && m.skipUntil > now) skippedUntil = Math.max(skippedUntil ?? 0, m.skipUntil);
  }
  return {
    target, action: action.kind, devices: keys,
    ...(skippedUntil !== undefined ? { stillSkipped: skippedUntil >= SKIP_FOREVER ? 'until lifted' : new Date(skippedUntil).toISOString() } : {}),
    // (a skip without an end said "until": "lifted", which reads as a lift: a script checking the reply took one for the other)
    ...(action.kind === 'skip' ? (action.until >= SKIP_FOREVER ? { untilLifted: true as const } : { until: new Date(action.until).toISOString(), ...(action.until <= now ? { lifted: true as const } : {}) }) : {}),
  };
}

/** Open the daemon's state beside it, mark, close (the CLI). */
export async function runOperatorMark(config: Pick<Config, 'state' | 'inventory'>, target: Target, action: OperatorAction, now: number): Promise<MarkResult> {
  const store = await openStateFor(config, 'write', action.kind);
  try {
    return await markDevices(store, target, action, now);
  } finally {
    await store.close();
  }
}

export async function runOperatorAction(config: Pick<Config, 'state' | 'inventory'>, target: Target, action: OperatorAction, now: number): Promise<string> {
  const r = await runOperatorMark(config, target, action, now);
  const who = r.devices.map(printable).join(', ');
  // (a skip outranks a rescan: "makes it due now" was untrue for a skipped device)
  if (r.action === 'rescan' && r.stillSkipped) return `rescan requested for ${who}, but an operator skipped it ${r.stillSkipped === 'until lifted' ? 'until the skip is lifted' : `until ${r.stillSkipped}`}: it is due once the skip ends (onsight skip … --until now lifts it)\n`;
  if (r.action === 'rescan') return `rescan requested for ${who}: the running daemon makes it due now (its region's scan windows still apply)\n`;
  if (r.lifted) return `skip lifted for ${who}\n`;
  return `skipped ${who} ${r.untilLifted ? 'until lifted (onsight skip … --until now)' : `until ${r.until}`}: not queued or launched before then (a scan already running is not cancelled)\n`;
}
