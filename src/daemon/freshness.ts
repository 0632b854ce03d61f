/**
 * When each input, and each sender of each input, last handed on a line: "no line from dhcp01 for
 * 15 min" on the status page and /metrics. A wrapper in front of the ingest sink per input, so
 * neither the sources nor the ingest know about it. Senders are capped (spoofed UDP source
 * addresses must not grow memory): beyond the cap new senders are counted, not tracked.
 */
import type { LineSink } from '../sources/types.js';

export interface LineFreshness {
  /** when the input's last line arrived (ms) */
  lastLineAt?: number;
  /** sender (network address, or the file a glob input read) → when its last line arrived */
  senders: Map<string, number>;
}

export const MAX_SENDERS = 1000;

export class InputFreshness {
  private readonly byInput = new Map<string, LineFreshness>();
  private senderCount = 0;
  /** lines from senders beyond MAX_SENDERS (not tracked one by one) */
  untrackedSenders = 0;

  /** A sink that notes each line's arrival for `entry`, then hands it on. */
  wrap(inner: LineSink): { sink: LineSink; entry: LineFreshness } {
    const entry: LineFreshness = { senders: new Map() };
    const sink: LineSink = {
      push: (line) => {
        this.note(entry, line.receivedAt.getTime(), line.sender ?? (line.source.startsWith('file:') ? line.source : undefined));
        return inner.push(line);
      },
      onDrain: (cb) => inner.onDrain(cb),
    };
    // lines a source counted instead of pushing (no parser could claim them) arrived all the same
    if (inner.claims && inner.unclaimed) {
      const unclaimed = inner.unclaimed.bind(inner);
      sink.claims = inner.claims.bind(inner);
      sink.unclaimed = (u) => {
        this.note(entry, u.lastAt, u.sender, u.count);
        unclaimed(u);
      };
    }
    return { sink, entry };
  }

  /** the input's name is known once it has started (network inputs name their bound port) */
  register(name: string, entry: LineFreshness): void {
    this.byInput.set(name, entry);
  }

  get(name: string): LineFreshness | undefined {
    return this.byInput.get(name);
  }

  private note(entry: LineFreshness, at: number, sender: string | undefined, lines = 1): void {
    if (!(at <= (entry.lastLineAt ?? 0))) entry.lastLineAt = at;
    if (sender === undefined) return;
    const prev = entry.senders.get(sender);
    if (prev !== undefined) {
      if (!(at <= prev)) entry.senders.set(sender, at);
    } else if (this.senderCount < MAX_SENDERS) {
      this.senderCount++;
      entry.senders.set(sender, at);
    } else this.untrackedSenders += lines;
  }
}
