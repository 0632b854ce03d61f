/**
 * "Logged at most once a minute": what a hostile or broken peer can cause on every request or
 * connection is counted each time (the metrics), but written to the log at most once per interval
 * per kind, with how many happened since the last line, so the log names the problem without
 * being flooded.
 */
export class LogLimit {
  private readonly last = new Map<string, { at: number; since: number }>();

  constructor(private readonly intervalMs = 60_000) {}

  /**
   * Whether to log `count` occurrences of `kind` now; when yes, how many occurrences (these
   * included) came since the last logged ones.
   */
  take(kind: string, count = 1, now = Date.now()): number | undefined {
    const e = this.last.get(kind);
    if (e && now - e.at < this.intervalMs) {
      e.since += count;
      return undefined;
    }
    const n = (e?.since ?? 0) + count;
    this.last.set(kind, { at: now, since: 0 });
    return n;
  }
}
