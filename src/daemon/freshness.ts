/**
 * When each input, and each sender of each input, last handed on a line: "no line from dhcp01 for
 * 15 min" on the status page and /metrics. A wrapper in front of the ingest sink per input, so
 * neither the sources nor the ingest know about it. Senders are capped (spoofed UDP source
 * addresses must not grow memory): beyond the cap new senders are counted, not tracked.
 */
import type { LineSink, RawLine } from '../sources/types.js';

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
      push: (line: RawLine) => {
        this.note(entry, line);
        return inner.push(line);
      },
      onDrain: (cb) => inner.onDrain(cb),
    };
    return { sink, entry };
  }

  /** the input's name is known once it has started (network inputs name their bound port) */
  register(name: string, entry: LineFreshness): void {
    this.byInput.set(name, entry);
  }

  get(name: string): LineFreshness | undefined {
    return this.byInput.get(name);
  }

  private note(entry: LineFreshness, line: RawLine): void {
    const at = line.receivedAt.getTime();
    if (!(at <= (entry.lastLineAt ?? 0))) entry.lastLineAt = at;
    const sender = line.sender ?? (line.source.startsWith('file:') ? line.source : undefined);
    if (sender === undefined) return;
    if (entry.senders.has(sender)) entry.senders.set(sender, at);
    else if (this.senderCount < MAX_SENDERS) {
      this.senderCount++;
      entry.senders.set(sender, at);
    } else this.untrackedSenders++;
  }
}
