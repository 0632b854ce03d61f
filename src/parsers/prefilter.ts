/**
 * Rejects, before auto-detection, the lines no parser can claim (firewall traffic logs are most of
 * a typical stream): one tag lookup and one scan of the message, instead of every detector in
 * turn. Built from each plug-in's `claims` (a necessary condition of its detect()); when any
 * plug-in has none, there is no prefilter and every line goes to detection as before.
 */
import type { LineInput, ParserPlugin } from './plugin.js';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** one regex of literal alternatives (linear: no quantifiers), or undefined when there are none */
const anyOf = (xs: string[]) => (xs.length ? new RegExp([...new Set(xs)].map(escape).join('|')) : undefined);

const strings = (x: unknown) => x === undefined || (Array.isArray(x) && x.every((s) => typeof s === 'string' && s.length > 0));
/** a user plug-in's claims are not type-checked: anything malformed turns the prefilter off */
const wellFormed = (c: ParserPlugin['claims']) =>
  !!c && typeof c === 'object' && strings(c.tags) && strings(c.tagPrefixes) && strings(c.anchors) && strings(c.rawAnchors);

export class Prefilter {
  private constructor(
    private readonly tags: Set<string>,
    private readonly tagPrefixes: string[],
    private readonly inMsg: RegExp | undefined,
    private readonly inRaw: RegExp | undefined,
  ) {}

  /** undefined when some plug-in does not say what it needs */
  static of(plugins: readonly ParserPlugin[]): Prefilter | undefined {
    if (!plugins.length || plugins.some((p) => !wellFormed(p.claims))) return undefined;
    const cs = plugins.map((p) => p.claims!);
    return new Prefilter(
      new Set(cs.flatMap((c) => c.tags ?? [])),
      cs.flatMap((c) => c.tagPrefixes ?? []),
      anyOf(cs.flatMap((c) => c.anchors ?? [])),
      anyOf(cs.flatMap((c) => c.rawAnchors ?? [])),
    );
  }

  /** Could some plug-in claim this line? false only when none can. */
  mayClaim(input: LineInput): boolean {
    const app = input.syslog.appName;
    if (app !== undefined) {
      if (this.tags.has(app)) return true;
      for (const p of this.tagPrefixes) if (app.startsWith(p)) return true;
    }
    return (this.inMsg?.test(input.syslog.msg) ?? false) || (this.inRaw?.test(input.raw) ?? false);
  }
}
