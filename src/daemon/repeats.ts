/**
 * Which occurrence of an identical network line this is (cluster mode's inbox key, ingest.ts
 * inboxRaw). A sender that logs to every node delivers each line to each: the first copy on every
 * node is occurrence 1, one key, kept once. A sender that really sends the same line twice within
 * one timestamp (ACK, RELEASE, ACK in one second) delivers occurrences 1 and 2 to every node: two
 * keys, two sightings, each still kept once across nodes. Counted once per received line (a
 * retried or split batch asks again and gets the same answer), over the last REPEAT_WINDOW_MS to
 * 2 × REPEAT_WINDOW_MS of lines, by sender and text.
 */
import { createHash } from 'node:crypto';
import type { RawLine } from '../sources/types.js';

/** identical lines this close together (arrival) are numbered; a real repeat shares its stamp, so it arrives within seconds */
const REPEAT_WINDOW_MS = 30_000;
/** keys a generation holds at most (then it turns early): bounded memory under a flood of sightings */
const MAX_KEYS = 100_000;

export class LineRepeats {
  private recent = new Map<string, number>();
  private older = new Map<string, number>();
  private recentSince = Date.now();
  private readonly seen = new WeakMap<RawLine, number>();

  /** 1 for the first such line from its sender lately, 2 for the next identical one, ... */
  occurrence(l: RawLine, now = Date.now()): number {
    const known = this.seen.get(l);
    if (known !== undefined) return known;
    if (now - this.recentSince >= REPEAT_WINDOW_MS || this.recent.size >= MAX_KEYS) {
      this.older = this.recent;
      this.recent = new Map();
      this.recentSince = now;
    }
    const key = createHash('sha256').update(l.sender ?? l.source).update('\0').update(l.text).digest('base64');
    const n = Math.max(this.recent.get(key) ?? 0, this.older.get(key) ?? 0) + 1;
    this.recent.set(key, n);
    this.seen.set(l, n);
    return n;
  }
}
