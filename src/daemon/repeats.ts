/**
 * Which occurrence of an identical network line this is (cluster mode's inbox key, ingest.ts
 * inboxRaw). A sender that logs to every node delivers each line to each: the first copy on every
 * node is occurrence 1, one key, kept once. A sender that really sends the same line twice within
 * one timestamp (ACK, RELEASE, ACK in one second) delivers occurrences 1 and 2 to every node: two
 * keys, two sightings, each still kept once across nodes. A line counts as a repeat only when the
 * same input took the same text from the same sender within REPEAT_WINDOW_MS before (by when each
 * was received): a relay's replay or a resend later on is occurrence 1 again, an exact duplicate,
 * dropped as before. Counted once per received line: a retried or split batch asks again and gets
 * the same answer.
 */
import { createHash } from 'node:crypto';
import type { RawLine } from '../sources/types.js';

/** an identical line received this soon after the last one is its next occurrence (a real repeat shares its stamp: it comes within a second) */
const REPEAT_WINDOW_MS = 10_000;
/** keys a generation holds at most (then it turns early): bounded memory under a flood of sightings */
const MAX_KEYS = 100_000;

interface Seen {
  n: number;
  /** when the last of them was received (ms) */
  at: number;
}

export class LineRepeats {
  /** keys by generation, each REPEAT_WINDOW_MS of receive times: every line within the window of now is in one of the two */
  private recent = new Map<string, Seen>();
  private older = new Map<string, Seen>();
  private recentSince = -Infinity;
  private readonly seen = new WeakMap<RawLine, number>();

  /** 1 for the first such line from its sender on its input lately, 2 for the next identical one, ... */
  occurrence(l: RawLine): number {
    const known = this.seen.get(l);
    if (known !== undefined) return known;
    const at = l.receivedAt.getTime();
    if (at - this.recentSince >= REPEAT_WINDOW_MS || this.recent.size >= MAX_KEYS) {
      this.older = at - this.recentSince >= 2 * REPEAT_WINDOW_MS ? new Map() : this.recent;
      this.recent = new Map();
      this.recentSince = at;
    }
    const key = createHash('sha256').update(l.source).update('\0').update(l.sender ?? '').update('\0').update(l.text).digest('base64');
    const prev = this.recent.get(key) ?? this.older.get(key);
    const n = prev && at - prev.at >= 0 && at - prev.at <= REPEAT_WINDOW_MS ? prev.n + 1 : 1;
    this.recent.set(key, { n, at });
    this.seen.set(l, n);
    return n;
  }
}
