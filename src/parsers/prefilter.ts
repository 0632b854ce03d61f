/**
 * Rejects, before auto-detection, the lines no parser can claim (firewall traffic logs are most of
 * a typical stream): one tag lookup and one scan of the message, instead of every detector in
 * turn. Built from each plug-in's `claims` (a necessary condition of its detect()); when any
 * plug-in has none, there is no prefilter and every line goes to detection as before.
 *
 * The merged claims are plain strings, so a source in another thread (the UDP receive thread) can
 * build the same prefilter and test whole lines itself (mayClaimLine), sending on only those some
 * parser may claim and counting the rest.
 */
import type { Claims, LineInput, ParserPlugin } from './plugin.js';
import { parseSyslog, unwrapInnerTag } from './syslog-header.js';

/**
 * "Does the text contain one of these literals?" in one linear pass: a table of the literals'
 * first two characters (folded to 8 bits each, so a hit is only a candidate) picks the positions
 * worth a startsWith; faster than one regex of the alternatives on firewall lines. A few literals
 * are searched one by one (indexOf).
 */
export class Literals {
  /** a few literals: one indexOf each (V8's search is faster than any loop here) */
  private readonly few: readonly string[] | undefined;
  /** by char code: 1 when it is a one-character literal, 2 when a longer literal starts with it */
  private readonly first = new Uint8Array(65536);
  /** (first, second) char codes of longer literals, each folded to 8 bits */
  private readonly pairs = new Uint8Array(65536);
  /** longer literals by their first char code */
  private readonly byFirst = new Map<number, string[]>();

  constructor(literals: readonly string[]) {
    const all = [...new Set(literals)];
    if (all.length <= 4) {
      this.few = all;
      return;
    }
    for (const l of all) {
      const c0 = l.charCodeAt(0);
      if (l.length === 1) {
        this.first[c0] |= 1;
        continue;
      }
      this.first[c0] |= 2;
      this.pairs[((c0 & 255) << 8) | (l.charCodeAt(1) & 255)] = 1;
      const list = this.byFirst.get(c0);
      if (list) list.push(l);
      else this.byFirst.set(c0, [l]);
    }
  }

  test(s: string): boolean {
    if (this.few !== undefined) {
      for (const l of this.few) if (s.indexOf(l) >= 0) return true;
      return false;
    }
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      const k = this.first[c];
      if (k === 0) continue;
      if (k & 1) return true;
      if (i + 1 < n && this.pairs[((c & 255) << 8) | (s.charCodeAt(i + 1) & 255)] === 1) {
        for (const l of this.byFirst.get(c)!) if (s.startsWith(l, i)) return true;
      }
    }
    return false;
  }
}

const strings = (x: unknown) => x === undefined || (Array.isArray(x) && x.every((s) => typeof s === 'string' && s.length > 0));
/** a user plug-in's claims are not type-checked: anything malformed turns the prefilter off */
const wellFormed = (c: ParserPlugin['claims']) =>
  !!c && typeof c === 'object' && strings(c.tags) && strings(c.tagPrefixes) && strings(c.anchors) && strings(c.rawAnchors);

const literals = (xs: readonly string[]) => (xs.length ? new Literals(xs) : undefined);

/** year-less stamps need a receive date; the tag and message a header yields do not depend on it */
const ANY_DATE = new Date();

export class Prefilter {
  private readonly tags: Set<string>;
  private readonly tagPrefixes: readonly string[];
  private readonly inMsg: Literals | undefined;
  private readonly inRaw: Literals | undefined;

  /** every plug-in's claims merged (plain strings: they can be posted to another thread) */
  private constructor(readonly claims: Required<Claims>) {
    this.tags = new Set(claims.tags);
    this.tagPrefixes = claims.tagPrefixes;
    this.inMsg = literals(claims.anchors);
    this.inRaw = literals(claims.rawAnchors);
  }

  /** undefined when some plug-in does not say what it needs */
  static of(plugins: readonly ParserPlugin[]): Prefilter | undefined {
    if (!plugins.length || plugins.some((p) => !wellFormed(p.claims))) return undefined;
    const cs = plugins.map((p) => p.claims!);
    const all = (k: keyof Claims) => [...new Set(cs.flatMap((c) => c[k] ?? []))];
    return new Prefilter({ tags: all('tags'), tagPrefixes: all('tagPrefixes'), anchors: all('anchors'), rawAnchors: all('rawAnchors') });
  }

  /** The prefilter `of` built, from its `claims` (undefined if they are malformed). */
  static fromClaims(c: Claims | undefined): Prefilter | undefined {
    if (!wellFormed(c)) return undefined;
    return new Prefilter({ tags: [...(c!.tags ?? [])], tagPrefixes: [...(c!.tagPrefixes ?? [])], anchors: [...(c!.anchors ?? [])], rawAnchors: [...(c!.rawAnchors ?? [])] });
  }

  /** Could some plug-in claim this line? false only when none can. */
  mayClaim(input: LineInput): boolean {
    return this.check(input.syslog.appName, input.syslog.msg, input.raw);
  }

  /**
   * mayClaim for a raw line, reading its header as the decoder does. The zone is left out: it
   * only turns a stamp into a time, never changes where the tag and the message are.
   */
  mayClaimLine(raw: string): boolean {
    const m = unwrapInnerTag(parseSyslog(raw, { receivedAt: ANY_DATE, zone: 'UTC' }));
    return this.check(m.appName, m.msg, raw);
  }

  private check(app: string | undefined, msg: string, raw: string): boolean {
    if (app !== undefined) {
      if (this.tags.has(app)) return true;
      for (const p of this.tagPrefixes) if (app.startsWith(p)) return true;
    }
    return (this.inMsg?.test(msg) ?? false) || (this.inRaw?.test(raw) ?? false);
  }
}
