/**
 * A sink for source tests: collects every line and can say "stop" (push returns false) until
 * drain(), as the daemon's ingest does when it is behind.
 */
import type { Claims } from '../../src/parsers/plugin.js';
import type { FileCheckpoint, LineSink, RawLine, UnclaimedLines } from '../../src/sources/types.js';

export class CollectSink implements LineSink {
  lines: RawLine[] = [];
  blocked = false;
  /** push returns false after this many more lines (then stays blocked until drain) */
  blockAfter = Infinity;
  private waiters: (() => void)[] = [];
  push(line: RawLine): boolean {
    this.lines.push(line);
    if (--this.blockAfter <= 0) this.blocked = true;
    return !this.blocked;
  }
  onDrain(cb: () => void): void {
    this.waiters.push(cb);
  }
  drain(): void {
    this.blocked = false;
    const w = this.waiters;
    this.waiters = [];
    for (const cb of w) cb();
  }
  /** drain callbacks waiting */
  get waiting(): number {
    return this.waiters.length;
  }
  texts(): string[] {
    return this.lines.map((l) => l.text);
  }
  /** the daemon commits the last checkpoint of each path */
  committed(path: string): FileCheckpoint | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i].checkpoint?.path === path) return this.lines[i].checkpoint;
    return undefined;
  }
}

/** a sink that, like the ingest, offers the real parsers' claims (LineSink.claims) and counts what the source reports as unclaimed */
export class ScreeningSink extends CollectSink {
  reports: UnclaimedLines[] = [];
  constructor(private readonly c: Claims) {
    super();
  }
  claims(format: string): Claims | undefined {
    return format === 'auto' ? this.c : undefined;
  }
  unclaimed(u: UnclaimedLines): void {
    this.reports.push(u);
  }
  get unclaimedCount(): number {
    return this.reports.reduce((a, r) => a + r.count, 0);
  }
}
