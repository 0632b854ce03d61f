/**
 * What the scheduler learned, kept across restarts: each appliance's slots (appliances.ts), the
 * durations of our scans (durations.ts), hosts scanned in parallel (parallelism.ts), the
 * processing lag (lag.ts), the DHCP bindings of scans in flight (rejoin.ts), the devices whose
 * last scan found no host (decide.ts), running scans' launch order, last states and poll times
 * (follow.ts), how far our clock runs ahead of the scanner's (skew.ts), the pace's level (budget.ts), the last appliance list (appliances.ts: taken back by
 * a start within 15 min of the save) and the platform's range schedules of ours as last synced,
 * with the runs' aims (ranges.ts: without them a new scheduler held no region for a range run until
 * its first sync, and that sync wrote the whole ranges back over every aim), and the addresses and VPN
 * users scanned for many devices within the hour (churn.ts: without it a client rotating MACs had
 * three more scans after every restart). Without it a restart, a package upgrade or a new cluster term starts again from the
 * configured values, and an appliance mis-set in the config costs the hours it took to learn it
 * again; devices a scan found gone are probed again, scans running across the restart are canceled
 * more often, a scarce allowance's pace starts full, and the appliance and schedule lists are read
 * again (at 50 calls a day and a daily restart, two calls of a day's 50).
 *
 * Each part is written as JSON to the store's learned_state table every SAVE_EVERY_MS and at stop
 * (Scheduler.saveLearned); a part whose news a kill must not lose (a `version` that moved: the
 * address-churn record, churn.ts) is also written alone at the end of a pass that changed it, at
 * most every MOVED_SAVE_MS. A kill (SIGKILL, a crash, a cluster leader's host lost) loses what the
 * other parts learned since the last write, up to SAVE_EVERY_MS, and of such a part up to MOVED_SAVE_MS. A
 * new scheduler reads the parts back once, before its first pass (a
 * failed read fails the pass, which tries again), and merges them with what it may have learned
 * meanwhile: the saved samples come first, as the older ones. Nothing is written before that read,
 * so a failed read never overwrites the saved state. A part saved longer ago than MAX_AGE_MS (the
 * appliances or option profiles may have changed since), with no valid save time, or one this
 * version cannot read (each part checks the shape and range of every value: the table is a file an
 * operator can edit; a part may say why it refuses one, `Refused`) is left out and logged: that part starts from the configured values, as it did
 * before; of one too old, a part may take back what does not go stale (`mergeAged`). Nothing in the table can stop the scheduler.
 *
 * Learned values only move as the scheduler sees more (an appliance's slots are proven by scans
 * seen running at once, and a scan of ours waiting shows it full); to start a part afresh (an
 * appliance replaced by a smaller one), stop onsight and delete its row of learned_state.
 */
import type { Logger } from '../log.js';
import type { LearnedRecord, SchedulerStore } from '../store/types.js';
import type { Clock } from './core.js';

/** written this often (and at stop) */
export const SAVE_EVERY_MS = 10 * 60_000;
/** a part with a moved `version` is written on its own at most this often: a kill loses at most this much of it */
export const MOVED_SAVE_MS = 60_000;
/** a part saved longer ago than this is not read back */
export const MAX_AGE_MS = 30 * 86_400_000;
/** clocks of the nodes of a cluster, and a clock stepped back: save times and stamps this far ahead of now are believed */
export const CLOCK_SKEW_MS = 86_400_000;

/**
 * The row saying which scanner kind the parts were learned with. A dry-run trial's pretend scans
 * end in seconds and "find" every host: its durations, slots, pace and churn record would steer a
 * real scanner's first weeks (probe, session 43). A saved state whose row names another kind is
 * left out whole; one without the row (saved before it existed) is read back as before. A pretend
 * scanner that finds a real one's state, or one saved before the row, writes nothing over it (a trial
 * on the production state, then the real scanner again: its weeks of learning come back; the trial's
 * own learning is kept in memory only, said at its start). A part written alone over another kind's
 * parts goes without the row, so it never claims them as this kind's.
 */
export const LEARNED_WITH = 'learned-with';

/** A part of what the scheduler learned. */
export interface Remembers {
  /** what was learned, as plain JSON-able data */
  snapshot(now: number): unknown;
  /**
   * take back a snapshot this version wrote (the older samples): what it held, for the log;
   * undefined when `data` is not one (a wrong shape, a value out of range: nothing is taken)
   */
  merge(data: unknown, now: number): string | Refused | undefined;
  /**
   * of a snapshot saved longer ago than MAX_AGE_MS, take back only what does not go stale (the
   * platform keeps running range schedules while onsight is stopped: the schedules as last synced,
   * and the prefixes they were made under): what it held, for the log; undefined when nothing
   */
  mergeAged?(data: unknown, now: number): string | undefined;
  /**
   * grows with each change a kill must not lose: a part that has one is written (alone) at the end
   * of any pass in which it moved, not only every SAVE_EVERY_MS
   */
  version?(): number;
}

/** A part's merge refusing a saved state it recognises, and why (logged, shown on the status page). */
export class Refused {
  constructor(readonly why: string) {}
}

/** The learned state as read back (the status page, /api/status). */
export interface LearnedStateStatus {
  /** when the state was read back, and when the newest part of it had been saved */
  restoredAt?: number;
  savedBefore?: number;
  /** what each part read back held */
  restored: string[];
  /** parts left out, and why */
  left: string[];
  /** when it was last written */
  savedAt?: number;
  how: string;
}

export class LearnedMemory {
  private reading?: Promise<void>;
  private read = false;
  private lastSave = 0;
  private lastMovedSave = 0;
  /** each versioned part's version as last written */
  private readonly written = new Map<string, number>();
  private status: LearnedStateStatus = { restored: [], left: [], how: 'not read back yet' };

  constructor(
    private readonly store: SchedulerStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly parts: Readonly<Record<string, Remembers>>,
    /** the scanner's kind (`Scanner.kind`): what the parts are learned with */
    private readonly scannerKind: string,
    /** a scanner that scans nothing (`Scanner.pretend`, dry-run): it never writes over what a real one learned */
    private readonly pretend = false,
  ) {}

  /** set when a pretend scanner found another's state: its own learning stays in memory (a trial must not erase the real scanner's weeks) */
  private keepSaved = false;
  /** the saved parts are another kind's until a whole write of ours: a part written alone goes without the kind row */
  private othersSaved = false;

  /** Read the saved parts back, once (a failed read is tried again at the next call). */
  restore(): Promise<void> {
    this.reading ??= this.store.learned().then(
      (records) => this.take(records),
      (err: unknown) => {
        this.reading = undefined;
        throw err;
      });
    return this.reading;
  }

  private take(records: LearnedRecord[]): void {
    const now = this.clock.now();
    const restored: string[] = [], left: string[] = [];
    let savedBefore: number | undefined;
    const otherScanner = learnedWithOther(records, this.scannerKind);
    // (a state with no kind row, saved before the row existed, is a real scanner's as often as not:
    // a pretend scanner reads it back but writes nothing over it either)
    const unlabelled = !records.some((r) => r.name === LEARNED_WITH) && records.length > 0;
    if (otherScanner) left.push(`every part (${records.length - 1}): learned with ${otherScanner}, not ${this.scannerKind}${this.pretend ? ', and kept for it (this scanner writes nothing over it)' : ''}`);
    this.keepSaved = this.pretend && (otherScanner !== undefined || unlabelled);
    this.othersSaved = otherScanner !== undefined;
    for (const r of records) {
      if (r.name === LEARNED_WITH || otherScanner) continue;
      const part = Object.hasOwn(this.parts, r.name) ? this.parts[r.name] : undefined;
      const age = now - r.savedAt;
      let what: string | Refused | undefined;
      if (!part) left.push(`${r.name}: not a part this version keeps`);
      else if (!isInt(r.savedAt, 1, now + CLOCK_SKEW_MS)) left.push(`${r.name}: no valid save time (${String(r.savedAt)})`);
      else if (age > MAX_AGE_MS) {
        const kept = part.mergeAged ? mergeSafely(part, r.state, now, true) : undefined;
        left.push(`${r.name}: saved ${Math.floor(age / 86_400_000)} days ago (more than ${MAX_AGE_MS / 86_400_000})${typeof kept === 'string' ? `, but for ${kept}` : ''}`);
      }
      else if ((what = mergeSafely(part, r.state, now)) === undefined) left.push(`${r.name}: not in the form this version writes`);
      else if (what instanceof Refused) left.push(`${r.name}: ${what.why}`);
      else {
        restored.push(what);
        savedBefore = Math.max(savedBefore ?? 0, r.savedAt);
      }
    }
    this.read = true;
    const how = restored.length
      ? `read back at start (saved ${new Date(savedBefore!).toISOString()}): ${restored.join('; ')}`
      : records.length ? 'nothing read back' : 'nothing saved before: learning starts from the configured values';
    this.status = { restoredAt: now, ...(savedBefore !== undefined ? { savedBefore } : {}), restored, left, how: left.length ? `${how}; left out: ${left.join('; ')}` : how };
    if (this.keepSaved) this.status.how += `; nothing the ${this.scannerKind} scanner learns is written (the saved state is ${otherScanner ? 'another scanner\'s' : 'from before the scanner kind was saved with it, maybe a real scanner\'s'}: kept for it)`;
    if (restored.length) this.log.info({ learned: { restored, left } }, `what the scheduler learned before the restart is ${this.status.how}`);
    else if (left.length) this.log.warn({ learned: { left } }, `what the scheduler learned before the restart was left out: ${left.join('; ')}`);
  }

  /**
   * Write every part, when SAVE_EVERY_MS has passed since the last write (`force`: now); else only
   * the parts whose `version` moved since they were last written. Nothing before the saved state
   * was read back. A failed write (a full disk; in a cluster, a deposed leader's, refused by the
   * lease) is logged and tried again at the next (a moved part's at the next pass): it never fails a pass.
   */
  async save(force = false): Promise<void> {
    const now = this.clock.now();
    if (!this.read || this.keepSaved) return;
    const all = force || now - this.lastSave >= SAVE_EVERY_MS;
    // (a moved part at most every MOVED_SAVE_MS: at every launching pass it was written whole, tens of MB an hour)
    const movedDue = now - this.lastMovedSave >= MOVED_SAVE_MS;
    const names = Object.keys(this.parts).filter((name) => all || (movedDue && this.moved(name)));
    if (names.length === 0) return;
    if (all) this.lastSave = now;
    this.lastMovedSave = now;
    const versions = names.map((name) => this.parts[name].version?.());
    try {
      // (the kind with every write but a part written alone over another kind's parts, before a
      // whole write of ours: it sits under the other kind's row, and is left out with it, the safe way)
      await this.store.saveLearned([...names.map((name) => ({ name, state: JSON.stringify(this.parts[name].snapshot(now)), savedAt: now })),
        ...(all || !this.othersSaved ? [{ name: LEARNED_WITH, state: JSON.stringify({ scanner: this.scannerKind }), savedAt: now }] : [])]);
      if (all) this.othersSaved = false;
      names.forEach((name, k) => {
        if (versions[k] !== undefined) this.written.set(name, versions[k]);
      });
      if (all) this.status.savedAt = now;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // a deposed leader's write, refused by the lease: this term ends, nothing to try again
      if (code === 'ONSIGHT_FENCED') this.log.info(`what the scheduler learned was not written: ${(err as Error).message}`);
      else this.log.warn({ err: { message: (err as Error).message, code } },
        `what the scheduler learned was not written (tried again ${all ? `in ${SAVE_EVERY_MS / 60_000} min` : 'at the next pass'}): ${(err as Error).message}`);
    }
  }

  /** Has a versioned part changed since it was last written? */
  private moved(name: string): boolean {
    const v = this.parts[name].version?.();
    return v !== undefined && v !== (this.written.get(name) ?? 0);
  }

  describe(): LearnedStateStatus {
    return { ...this.status, restored: [...this.status.restored], left: [...this.status.left] };
  }
}

/**
 * The other scanner a saved state was learned with ("the dry-run scanner"), or undefined (this kind, no row: a state
 * saved before the row existed, or a row this version cannot read: then the parts' own checks decide).
 */
export function learnedWithOther(records: readonly LearnedRecord[], kind: string): string | undefined {
  const row = records.find((r) => r.name === LEARNED_WITH);
  if (!row) return undefined;
  try {
    const saved = record(JSON.parse(row.state) as unknown)?.scanner;
    if (typeof saved !== 'string' || saved === kind) return undefined;
    return /^[\w.+-]{1,64}$/.test(saved) ? `the ${saved} scanner` : 'another scanner'; // (an edited table: nothing odd reaches the log)
  } catch {
    return undefined;
  }
}

/** A part's merge of a saved state; a part that throws on it (a bug, or a shape its checks missed) takes it as not its form. */
function mergeSafely(part: Remembers, text: string, now: number, aged = false): string | Refused | undefined {
  try {
    return aged ? part.mergeAged?.(JSON.parse(text) as unknown, now) : part.merge(JSON.parse(text) as unknown, now);
  } catch {
    return undefined;
  }
}

// Shapes of the parts' snapshots, checked before they are taken back (the store is a file anyone
// with access can edit; a bad value must not reach the scheduler's arithmetic).

/** a finite number in [min, max] */
export function isNum(x: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= min && x <= max;
}

/** an integer in [min, max] */
export function isInt(x: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): x is number {
  return Number.isSafeInteger(x) && (x as number) >= min && (x as number) <= max;
}

/** a column check of numberRows: a number in [0, max] (times, durations: the simulator's clock has fractions) */
export const num = (max: number) => (v: unknown) => isNum(v, 0, max);
/** a column check of numberRows: an integer in [min, max] (ids, counts) */
export const int = (max: number, min = 0) => (v: unknown) => isInt(v, min, max);

/**
 * An array of rows, one value per column check, or undefined; only the last `keep` rows are
 * returned (the newest: a longer array than a part keeps is someone's edit, not a snapshot).
 */
export function numberRows(x: unknown, cols: readonly ((v: unknown) => boolean)[], keep = Number.MAX_SAFE_INTEGER): number[][] | undefined {
  if (!Array.isArray(x)) return undefined;
  const rows = x.length > keep ? x.slice(-keep) : x;
  for (const row of rows) if (!Array.isArray(row) || row.length !== cols.length || !row.every((v, i) => cols[i](v))) return undefined;
  return rows as number[][];
}

/** the longest duration or lag believed (ms) */
export const MAX_SPAN_MS = 30 * 86_400_000;

/** Samples read back go before `list`'s own, as the older; the newest `keep` stay. */
export function prependOlder<T>(list: T[], older: readonly T[], keep: number): void {
  list.unshift(...older.slice(-keep));
  list.splice(0, Math.max(0, list.length - keep));
}

/** a plain object, or undefined */
export function record(x: unknown): Record<string, unknown> | undefined {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? x as Record<string, unknown> : undefined;
}
