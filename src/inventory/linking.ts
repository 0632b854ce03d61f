/**
 * When two identities under one host key are one device (hostname linking, see hostkey.ts): the
 * rules both store implementations apply, read from the current (reloadable) inventory options.
 */
import picomatch from 'picomatch';
import type { InventoryOptions } from '../store/types.js';

export interface LinkFacts {
  id: number;
  key: string;
  user: string | null;
}

/** A host-key glob (`lt-*`, `ws-[0-9]*`) as a whole-string RegExp; host keys are lower case. */
export function hostPattern(glob: string): RegExp {
  return picomatch.makeRe(glob.toLowerCase(), { dot: true });
}

/** `onsight, linked from user:alice|lt-0042`: `hosts` says when a credit came from a link. */
export function linkedVia(via: string | null, from: string): string {
  const base = (via ?? 'onsight').replace(/, linked from .*$/, '');
  return `${base}, linked from ${from}`;
}

export class LinkRules {
  private cache?: { src: string[] | undefined; res: RegExp[] };

  constructor(private readonly opts: () => InventoryOptions) {}

  /** identities with the same specific hostname share their last scan (default on) */
  get on(): boolean {
    return this.opts().linkHostnames !== false;
  }

  private get patterns(): RegExp[] {
    const src = this.opts().linkHostPatterns;
    if (!this.cache || this.cache.src !== src) this.cache = { src, res: (src ?? []).map(hostPattern) };
    return this.cache.res;
  }

  /** Two identities under one host key are one device only with more than the name to go on. */
  corroborated(a: LinkFacts, b: LinkFacts, hk: string): boolean {
    if (a.user && b.user && a.user.toLowerCase() === b.user.toLowerCase()) return true;
    return this.patterns.some((re) => re.test(hk));
  }
}
