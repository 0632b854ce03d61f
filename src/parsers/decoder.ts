/**
 * Turns raw lines into Sightings: reads the syslog header, picks the parser (fixed or `auto`),
 * keeps one parser instance per (source, format), fills in what the contract requires, and
 * validates every draft. Nothing a line contains can make this throw.
 */
import { CLOCK_SET_FROM_MS, MAX_AHEAD_MS, MAX_DURATION_S, SIGHTING_KINDS, SIGHTING_TEXT_FIELDS, type Sighting, type SightingDraft } from '../sighting.js';
import { parseSyslog, parseSyslogIgnoringTime, unwrapInnerTag, type SyslogMessage } from './syslog-header.js';
import { canonicalIp } from '../util/ip.js';
import { normalizeMac } from '../util/mac.js';
import { isDateMs, isoOrUndefined } from '../util/time.js';
import { OnsightError } from '../errors.js';
import type { LineInput, LineParser, ParserPlugin } from './plugin.js';
import type { ParserRegistry } from './registry.js';
import { Prefilter } from './prefilter.js';
import { storableText } from '../util/text.js';

/** moved next to the header parser (the prefilter uses it too); still exported here */
export { unwrapInnerTag };

export interface DecodeMeta {
  receivedAt: Date;
  source: string;
  /** 1-based line number in a file */
  line?: number;
  /** a header already parsed by the source (RFC 5424 over TLS, say) */
  syslog?: SyslogMessage;
}

export interface DecodeResult {
  /** the format that claimed the line, if any */
  format?: string;
  sightings: Sighting[];
  /** why the line gave no sighting, or why a draft of it was dropped (`onsight parse --explain`) */
  why?: string;
}

export interface DecoderCounters {
  lines: number;
  /** lines some parser claimed */
  recognized: number;
  /** lines no parser claimed (auto) */
  unrecognized: number;
  sightings: number;
  /** drafts dropped because a field was malformed (a parser bug, counted not fatal) */
  invalid: number;
  /** a parser threw: a bug, counted, the line dropped */
  parserErrors: number;
  /** sightings of live lines timed by a clock never set (before 2000): placed at the header's time, else at receipt */
  clockUnset?: number;
  /** sightings of stored lines (a file's) timed by a clock never set: dropped (no receipt time to take) */
  clockUnsetDropped?: number;
  /** live RFC 5424 lines whose TIMESTAMP is no valid time (2026-02-30, 25:61): read without it, placed at receipt */
  invalidTimestamp?: number;
  byFormat: Record<string, { lines: number; sightings: number }>;
}

/** Counters at zero (a decoder's, the unclaimed lines', a replaced decode thread's format). */
export function emptyDecoderCounters(): DecoderCounters {
  return { lines: 0, recognized: 0, unrecognized: 0, sightings: 0, invalid: 0, parserErrors: 0, byFormat: {} };
}

const MAX_INSTANCES = 4096;

/** a draft's value for a message: JSON, cut to 60 characters */
function quote(v: unknown): string {
  let t: string;
  try {
    t = JSON.stringify(v) ?? String(v);
  } catch {
    t = typeof v;
  }
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
}

export class LineDecoder {
  readonly counters: DecoderCounters = emptyDecoderCounters();
  private readonly plugins: ParserPlugin[];
  private readonly instances = new Map<string, LineParser>();
  /** rejects lines no plug-in can claim before trying each detector (auto only) */
  private readonly prefilter: Prefilter | undefined;

  constructor(registry: ParserRegistry, private readonly format: string, private readonly zone: string) {
    if (format === 'auto') {
      this.plugins = registry.list();
      this.prefilter = Prefilter.of(this.plugins);
    } else {
      const p = registry.get(format);
      if (!p) throw new OnsightError('ONSIGHT_UNKNOWN_FORMAT', `unknown format "${format}"; known: auto, ${registry.ids().join(', ')}`);
      this.plugins = [p];
    }
  }

  decode(raw: string, meta: DecodeMeta): DecodeResult {
    this.counters.lines++;
    let header = meta.syslog ?? parseSyslog(raw, { receivedAt: meta.receivedAt, zone: this.zone });
    // (a live line only: a stored one, a file's, read at any time later, has no receipt time to take)
    if (header.format === 'none' && meta.line === undefined) {
      // an RFC 5424 header refused for its time alone: read without it (placed at receipt), counted
      const lenient = parseSyslogIgnoringTime(raw, { receivedAt: meta.receivedAt, zone: this.zone });
      if (lenient) {
        header = lenient;
        this.counters.invalidTimestamp = (this.counters.invalidTimestamp ?? 0) + 1;
      }
    }
    const syslog = unwrapInnerTag(header, this.format !== 'auto');
    const input: LineInput = { raw, syslog, receivedAt: meta.receivedAt, zone: this.zone, source: meta.source };
    const plugin = this.pick(input);
    if (!plugin) {
      this.counters.unrecognized++;
      return { sightings: [], why: 'no parser claimed it' };
    }
    this.counters.recognized++;
    const fc = (this.counters.byFormat[plugin.id] ??= { lines: 0, sightings: 0 });
    fc.lines++;
    let drafts: SightingDraft[];
    try {
      drafts = this.instance(plugin, meta.source).parse(input);
    } catch (err) {
      this.counters.parserErrors++;
      return { format: plugin.id, sightings: [], why: `${plugin.id} threw (a parser bug): ${(err as Error)?.message ?? String(err)}` };
    }
    const sightings: Sighting[] = [];
    let why: string | undefined;
    for (const d of Array.isArray(drafts) ? drafts : []) {
      let s: Sighting | undefined | null;
      this.dropWhy = undefined;
      try {
        s = this.finish(d, plugin.id, syslog, meta);
      } catch (err) {
        s = undefined; // a malformed draft (a parser bug) is counted, never fatal
        this.dropWhy = (err as Error)?.message;
      }
      if (s) sightings.push(s);
      else {
        if (s === undefined) this.counters.invalid++; // (null: dropped on purpose, counted by finish)
        why ??= `${plugin.id}: ${s === undefined ? `a malformed draft (a parser bug): ${this.dropWhy ?? 'unreadable'}` : this.dropWhy}`;
      }
    }
    this.counters.sightings += sightings.length;
    fc.sightings += sightings.length;
    if (!why && !sightings.length) {
      why = `${plugin.id} ${this.format === 'auto' ? 'claimed it and ' : ''}made no sighting of it (a message of the format that tells no lease or tunnel event, or one it could not read)`;
    }
    return why ? { format: plugin.id, sightings, why } : { format: plugin.id, sightings };
  }

  /** why finish() refused its draft, when it did (read by decode) */
  private dropWhy: string | undefined;

  private refuse(why: string): undefined {
    this.dropWhy = why;
    return undefined;
  }

  private pick(input: LineInput): ParserPlugin | undefined {
    if (this.format !== 'auto') return this.plugins[0];
    if (this.prefilter && !this.prefilter.mayClaim(input)) return undefined;
    for (const p of this.plugins) {
      try {
        if (p.detect(input)) return p;
      } catch {
        this.counters.parserErrors++;
      }
    }
    return undefined;
  }

  private instance(plugin: ParserPlugin, source: string): LineParser {
    const key = `${source}\u0000${plugin.id}`;
    let inst = this.instances.get(key);
    if (!inst) {
      if (this.instances.size >= MAX_INSTANCES) this.instances.delete(this.instances.keys().next().value as string);
      inst = plugin.create();
      this.instances.set(key, inst);
    }
    return inst;
  }

  /**
   * Validate and complete a draft; undefined when a field is malformed; null when dropped on purpose (counted here). Only the contract's fields
   * are taken, each of its type: a plug-in's extra or odd-typed fields go no further (the decode
   * thread posts sightings as structured data, which a function would break). Times a Date cannot
   * hold are dropped (their ISO text would throw).
   */
  private finish(d: SightingDraft, format: string, syslog: SyslogMessage, meta: DecodeMeta): Sighting | undefined | null {
    if (!d || typeof d !== 'object') return this.refuse('not an object');
    if (!SIGHTING_KINDS.includes(d.kind)) return this.refuse(`kind ${quote(d.kind)} is none of ${SIGHTING_KINDS.join(', ')}`);
    const ip = typeof d.ip === 'string' ? canonicalIp(d.ip) : undefined;
    if (!ip) return this.refuse(`ip ${quote(d.ip)} is no IP address`);
    const s: Sighting = { kind: d.kind, ip, at: '', format, source: meta.source };
    for (const f of SIGHTING_TEXT_FIELDS) if (typeof d[f] === 'string') s[f] = storableText(d[f]);
    const ip6 = typeof d.ip6 === 'string' ? canonicalIp(d.ip6) : undefined;
    if (ip6) s.ip6 = ip6;
    const mac = typeof d.mac === 'string' ? normalizeMac(d.mac) : undefined;
    if (mac) s.mac = mac;
    const remoteIp = typeof d.remoteIp === 'string' ? canonicalIp(d.remoteIp) : undefined;
    if (remoteIp) s.remoteIp = remoteIp;
    const received = isDateMs(meta.receivedAt.getTime()) ? meta.receivedAt.getTime() : Date.now();
    // the line's own time, else its syslog header's, else its receipt. A time from a clock never set
    // (1970-01-01) is passed over and counted: placed there the lease would have run out decades
    // ago, the device never scanned, without a trace. A live line's sender sends it now; a stored
    // line (a file's, read at any time later) has no time to take instead: dropped, counted (placed
    // at its reading, an old lease would end its address's current holder: a wrong host)
    let at = received;
    let unset = false;
    for (const t of [typeof d.at === 'string' ? Date.parse(d.at) : NaN, syslog.time ?? NaN]) {
      if (!isDateMs(t)) continue;
      if (t >= CLOCK_SET_FROM_MS) {
        at = t;
        break;
      }
      unset = true;
    }
    if (unset && at === received && meta.line !== undefined) {
      this.counters.clockUnsetDropped = (this.counters.clockUnsetDropped ?? 0) + 1;
      this.dropWhy = 'its time is before 2000 (a clock never set), and a stored line has no other time to take: dropped';
      return null;
    }
    if (unset) this.counters.clockUnset = (this.counters.clockUnset ?? 0) + 1;
    // never place an event more than a day in the future
    if (at > received + MAX_AHEAD_MS) at = received;
    s.at = new Date(at).toISOString();
    // (a lease of 1e20 s is an infinite one: cut to the longest a sighting holds, as the lease files' are)
    if (typeof d.durationS === 'number' && Number.isFinite(d.durationS) && d.durationS >= 0) s.durationS = Math.min(d.durationS, MAX_DURATION_S);
    // (an end from a clock never set is no end: the lease's length is learned as for a line without one)
    if (typeof d.expiresAt === 'string' && !(Date.parse(d.expiresAt) < CLOCK_SET_FROM_MS)) {
      const e = isoOrUndefined(Date.parse(d.expiresAt));
      if (e) s.expiresAt = e;
    } else if (s.durationS !== undefined && (s.kind === 'lease' || s.kind === 'renew')) {
      const e = isoOrUndefined(at + s.durationS * 1000);
      if (e) s.expiresAt = e;
    }
    if (meta.line !== undefined) s.line = meta.line;
    return s;
  }
}
