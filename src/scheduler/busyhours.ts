/**
 * When in the day an appliance is usually full, learned from what onsight itself sees: a scan of
 * ours that waited for a slot (a poll found it still queued after the appliance surely polled)
 * marks the times of day it waited through; a list read that shows a free slot, or a scan of ours
 * that started at once, marks room. Others' nightly scans (server scans from 22:00 until morning)
 * fill an appliance at the same hours every day, long after the 6-hour "full at k" memory
 * (appliances.ts) has forgotten the last night: a launch into that queue waits hours, while its
 * targets leave or their addresses change hands, and pays look-ups and cancels for it.
 *
 * Time of day is taken in UTC quarter-hours (an appliance has no configured zone; a daylight
 * saving shift is relearned within days). A quarter-hour counts as usually full when a wait was
 * seen in it on an earlier day or today, within BUSY_MEMORY_MS, and no room was seen in it since.
 * Waits longer than LONGEST_HABIT_MS are not a time of day (an appliance blocked all day is the
 * stuck-scan logic's to handle) and mark nothing past that length. In memory, as the scheduler's
 * other learned state.
 */

/** one slot of the day profile */
export const BUSY_BIN_MS = 15 * 60_000;
const DAY_MS = 86_400_000;
const BINS = DAY_MS / BUSY_BIN_MS;
/** a wait (or room) seen at a time of day is believed this long, then the appliance is tried again */
export const BUSY_MEMORY_MS = 4 * DAY_MS;
/** a wait longer than this is not a daily habit: only its first LONGEST_HABIT_MS are marked */
export const LONGEST_HABIT_MS = 16 * 3_600_000;

interface Profile {
  /** per quarter-hour of the day: the last time a scan of ours waited in it (0: never) */
  full: number[];
  /** per quarter-hour of the day: the last time a free slot was seen in it (0: never) */
  room: number[];
}

const binOf = (t: number) => Math.floor((((t % DAY_MS) + DAY_MS) % DAY_MS) / BUSY_BIN_MS);
const clock = (bin: number) => `${String(Math.floor((bin * BUSY_BIN_MS) / 3_600_000)).padStart(2, '0')}:${String(((bin * BUSY_BIN_MS) / 60_000) % 60).padStart(2, '0')}`;

export class BusyHours {
  private readonly profiles = new Map<string, Profile>();

  private profileOf(name: string): Profile {
    let p = this.profiles.get(name);
    if (!p) this.profiles.set(name, (p = { full: new Array<number>(BINS).fill(0), room: new Array<number>(BINS).fill(0) }));
    return p;
  }

  /** A scan of ours waited for a slot on the appliance from `from` until at least `to`. */
  sawWait(name: string, from: number, to: number): void {
    if (to < from) return;
    const end = Math.min(to, from + LONGEST_HABIT_MS);
    const p = this.profileOf(name);
    // each quarter-hour the wait went through, dated by the last moment of the wait inside it
    for (let t = from - (from % BUSY_BIN_MS); t <= end; t += BUSY_BIN_MS) {
      p.full[binOf(t)] = Math.max(p.full[binOf(t)], Math.min(end, t + BUSY_BIN_MS - 1));
    }
  }

  /** The appliance had a free slot at `at`. */
  sawRoom(name: string, at: number): void {
    const p = this.profileOf(name);
    p.room[binOf(at)] = Math.max(p.room[binOf(at)], at);
  }

  private fullIn(p: Profile, bin: number, now: number): boolean {
    const f = p.full[bin];
    return f > 0 && f <= now && now - f < BUSY_MEMORY_MS && f > p.room[bin];
  }

  /** Is the appliance usually full at this time of day? */
  usuallyFull(name: string, now: number): boolean {
    const p = this.profiles.get(name);
    return p !== undefined && this.fullIn(p, binOf(now), now);
  }

  /** When the run of usually-full quarter-hours around `now` ends (the learned free time), if it is full now. */
  freeAt(name: string, now: number): number | undefined {
    const p = this.profiles.get(name);
    if (!p || !this.fullIn(p, binOf(now), now)) return undefined;
    let t = now - (now % BUSY_BIN_MS) + BUSY_BIN_MS;
    for (let k = 1; k < BINS && this.fullIn(p, binOf(t), now); k++) t += BUSY_BIN_MS;
    return t;
  }

  /** The usually-full runs of the day, as "22:00–06:30" (UTC), for the status page; empty when none. */
  describe(name: string, now: number): string {
    const p = this.profiles.get(name);
    if (!p) return '';
    const full = p.full.map((_, b) => this.fullIn(p, b, now));
    if (full.every(Boolean)) return 'all day';
    const runs: string[] = [];
    const start = full.indexOf(false); // walk the day from a free quarter-hour so a run over midnight stays whole
    for (let k = 1, from = -1; k <= BINS; k++) {
      const b = (start + k) % BINS;
      if (full[b] && from < 0) from = b;
      if (!full[b] && from >= 0) {
        runs.push(`${clock(from)}–${clock(b)}`);
        from = -1;
      }
    }
    return runs.length ? `${runs.join(', ')} UTC` : '';
  }
}
