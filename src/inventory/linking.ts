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

/** what a credit taken through a link carries after the scan's own `via` (linkedVia) */
export const LINKED_FROM = ', linked from ';

/** `onsight, linked from user:alice|lt-0042`: `hosts` says when a credit came from a link. */
export function linkedVia(via: string | null, from: string): string {
  const base = (via ?? 'onsight').replace(/, linked from .*$/, '');
  return `${base}${LINKED_FROM}${from}`;
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

  /**
   * May `giver`'s scan credit `taker`, both under one host key? Only with more than the name to go
   * on: the same user; or a name the operator's patterns vouch for, from the name's first holder
   * (`giverHeldItFirst`: the first identity onsight saw take it, whatever it is called now) and unless
   * `apartNow` says the two are at two addresses of one network at once (`apart`). The pattern
   * vouches for a name, not for whoever claims it: a LAN device naming itself like a laptop had its
   * own scan credited to the laptop (never scanned then) and took the laptop's (identity probe,
   * session 41); ranked by first sighting, or by whoever holds the name first now, a device still
   * got there by renaming itself, by a backdated line, or by having the laptop's MAC renamed away for
   * a moment (reviews, session 42). The first holder is recorded once, in the order lines are
   * applied, and is not lost when it takes another name.
   */
  corroborated(giver: LinkFacts, taker: LinkFacts, hk: string, giverHeldItFirst: () => boolean, apartNow: () => boolean): boolean {
    const e = this.evidence(giver, taker, hk);
    return e === 'user' || (e === 'pattern' && giverHeldItFirst() && !apartNow());
  }

  /** corroborated, for a store whose reads are asynchronous (PostgreSQL): the same rule, the reads made only where the pattern alone links. */
  async corroboratedAsync(giver: LinkFacts, taker: LinkFacts, hk: string, giverHeldItFirst: () => Promise<boolean>, apartNow: () => Promise<boolean>): Promise<boolean> {
    const e = this.evidence(giver, taker, hk);
    return e === 'user' || (e === 'pattern' && (await giverHeldItFirst()) && !(await apartNow()));
  }

  /** What vouches for two identities under one host key being one device: the same user, the operator's patterns, or nothing. */
  evidence(a: LinkFacts, b: LinkFacts, hk: string): 'user' | 'pattern' | undefined {
    if (a.user && b.user && a.user.toLowerCase() === b.user.toLowerCase()) return 'user';
    return this.patterns.some((re) => re.test(hk)) ? 'pattern' : undefined;
  }
}

/** Where an identity is now: its open bindings (address and channel). */
export type Whereabouts = readonly { ip: string; channel: string }[];

/**
 * Are two identities present at two addresses of one channel at once (two DHCP leases, two VPN
 * sessions)? Then they are two devices, or one with two interfaces (a docked laptop's wired and
 * Wi-Fi MACs, scanned once more); across channels (a DHCP lease left open by a laptop now on the
 * VPN) they may be one.
 */
export function apart(a: Whereabouts, b: Whereabouts): boolean {
  return a.some((x) => b.some((y) => x.channel === y.channel && x.ip !== y.ip));
}
