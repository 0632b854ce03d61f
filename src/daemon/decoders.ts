/** One LineDecoder per input format (`auto`, a parser id), rebuilt when the default zone changes. */
import { LineDecoder, type DecoderCounters } from '../parsers/decoder.js';
import type { ParserRegistry } from '../parsers/registry.js';

export class Decoders {
  private readonly byFormat = new Map<string, LineDecoder>();

  constructor(private readonly registry: ParserRegistry, private zone: string) {}

  get(format: string): LineDecoder {
    let d = this.byFormat.get(format);
    if (!d) {
      d = new LineDecoder(this.registry, format, this.zone);
      this.byFormat.set(format, d);
    }
    return d;
  }

  /** A new zone for stamps without one: decoders are rebuilt (their per-source state starts over). */
  setZone(zone: string): void {
    if (zone === this.zone) return;
    this.zone = zone;
    this.byFormat.clear();
  }

  counters(): Record<string, DecoderCounters> {
    return Object.fromEntries([...this.byFormat].map(([f, d]) => [f, d.counters]));
  }
}
