/** One LineDecoder per input format (`auto`, a parser id), rebuilt when the default zone changes. */
import { LineDecoder, type DecoderCounters } from '../parsers/decoder.js';
import { ParserRegistry } from '../parsers/registry.js';
import type { ParserPlugin } from '../parsers/plugin.js';
import type { DisabledPlugin } from './decode-client.js';

const times = (n: number) => (n === 1 ? 'once' : `${n} times`);

/**
 * What a plug-in the decode watchdog disabled did, for the status page and the log: `stalled the
 * decode thread 3 times within 60 min`, `made the decode thread exit once before it was given up`.
 */
export function disabledWhy(p: DisabledPlugin): string {
  const did = [p.stalls ? `stalled the decode thread ${times(p.stalls)}` : '', p.exits ? `made ${p.stalls ? 'it' : 'the decode thread'} exit ${times(p.exits)}` : '']
    .filter(Boolean).join(' and ');
  return `${did} ${p.reason === 'threadGivenUp' ? 'before it was given up' : `within ${p.windowMin} min`}`;
}

/**
 * `p` turned off (the decode watchdog's doing): kept in place, so its id and format stay known, but
 * it claims no line under auto and throws under its own format (the line dropped, counted as a
 * parser error); its own code never runs. `why` ends the thrown message.
 */
export function disabledPlugin(p: ParserPlugin, why: string): ParserPlugin {
  return {
    id: p.id, description: p.description, claims: p.claims,
    detect: () => false,
    create: () => ({
      parse: () => {
        throw new Error(`parser ${p.id} is disabled: ${why}`);
      },
    }),
  };
}

export class Decoders {
  private readonly byFormat = new Map<string, LineDecoder>();

  constructor(private registry: ParserRegistry, private zone: string) {}

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

  /** The plug-ins `ids` turned off (disabledPlugin) from now on: decoders are rebuilt, as for a new zone. */
  disable(ids: readonly string[], why: string): void {
    const off = new Set(ids.filter((id) => this.registry.get(id)));
    if (!off.size) return;
    const r = new ParserRegistry();
    for (const p of this.registry.list()) r.add(off.has(p.id) ? disabledPlugin(p, why) : p, this.registry.isUser(p.id));
    this.registry = r;
    this.byFormat.clear();
  }

  counters(): Record<string, DecoderCounters> {
    return Object.fromEntries([...this.byFormat].map(([f, d]) => [f, d.counters]));
  }
}
