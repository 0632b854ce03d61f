/**
 * How far this node's clock runs ahead of the scanner's, learned from our own scans: the launch
 * time the scanner lists for a scan against the time we recorded its launch (after the launch
 * call answered, so a sample is the skew plus the call's latency). Every list by launch time
 * (follow.ts in cluster mode, late.ts, reconcile.ts, ranges.ts) reaches back that much further: a
 * leader 15 min ahead of the platform asked for scans launched after a time the platform had not
 * reached when it launched ours, so its running scans were "no longer listed" and relaunched
 * (cluster probe F2), and a launch whose answer was lost was not found by reconcile. A clock
 * behind the scanner's needs nothing: its lists already reach back further. Kept across restarts
 * (memory.ts): reconcile lists before any poll has seen a scan.
 *
 * A sample measures the clock of the node that recorded the launch time, which is not always the
 * one that samples it: a cluster's new leader polls the scans the old leader launched, whose launch
 * time the old leader's clock recorded. So each sample belongs to a node, and a node takes only
 * its own (the learned state is shared through the store: a new leader took the old leader's skew,
 * 15 min ahead where its own clock was right, until 15 scans of its own had replaced it). The
 * launch time of a scan was recorded by the node that led the term (epoch) its intent was created
 * in (launch.ts; the store fences the write to that term): this term's scans are this node's; an
 * earlier term's are the node's that the saved state says led that term (each node writes the terms
 * it led), this one's own earlier terms included; a scan of a term no saved state names is not
 * sampled. A single node (no epochs, no name) has one clock: every sample is its own, saved as
 * before (`samples`). In a cluster the saved state is per node (`nodes`): a saved state without
 * nodes (an earlier version's, or a single node's) is left out, since it cannot tell whose clock
 * it measured; the skew is learned again from the node's next scans (a running scan a list by
 * launch time leaves out is looked up by its reference meanwhile: follow.ts).
 */
import { Refused, isInt, record, type Remembers } from './memory.js';

/** samples kept per node (the newest); the median is taken */
const SAMPLES = 15;
/** a sample further than this is not a clock's skew (a scan adopted days after its launch) */
const MAX_SKEW_MS = 86_400_000;
/** nodes whose samples are kept (this one, then those of the latest terms) */
const MAX_NODES = 16;
/** terms kept per node (the latest): a scan outlives a few terms at most */
const MAX_TERMS = 8;
/** a cluster node's name (cluster.node) longer than this is no snapshot of ours */
const MAX_NAME_CHARS = 256;

interface NodeClock {
  /** ours − theirs, ms, oldest first */
  samples: number[];
  /** the terms (lease epochs) it led, as known */
  terms: Set<number>;
}

export class ScannerClock implements Remembers {
  /** this node's samples: ours − theirs, ms, oldest first */
  private samples: number[] = [];
  /** other nodes' samples and terms, written back with ours (a node leading again takes its own) */
  private readonly others = new Map<string, NodeClock>();
  /** scans sampled (one sample each: a long scan listed at every poll is one scan) */
  private readonly sampled = new Set<string>();
  /** this node as the saved state names it; undefined on a single node */
  private readonly me: string | undefined;
  /** this node's terms before this one, as saved */
  private readonly myTerms = new Set<number>();

  /**
   * `node`: this node's name in a cluster (cluster.node), `epoch`: this scheduler's term (both
   * undefined on a single node; a term without a name, a test's, is named by its epoch).
   */
  constructor(node?: string, private readonly epoch?: number) {
    this.me = node ?? (epoch !== undefined ? `epoch ${epoch}` : undefined);
  }

  /**
   * Our scan `id`, created in term `epoch` (undefined on a single node), recorded as launched at
   * `ourMs` by the node that led that term; the scanner lists its launch at `theirs`.
   */
  note(id: string, ourMs: number | undefined, theirs: string | undefined, epoch?: number): void {
    if (ourMs === undefined || theirs === undefined || this.sampled.has(id)) return;
    const t = Date.parse(theirs);
    if (!Number.isFinite(t) || Math.abs(ourMs - t) > MAX_SKEW_MS) return;
    if (this.sampled.size > 10_000) this.sampled.clear();
    this.sampled.add(id);
    const by = this.recorder(epoch);
    if (by === undefined) return; // a term no saved state names: its node's clock, unknown
    const list = by === true ? this.samples : this.others.get(by)!.samples;
    list.push(ourMs - t);
    if (list.length > SAMPLES) list.shift();
  }

  /** The node whose clock recorded the launch time of a scan created in term `epoch`: this one (true), another (its name), or unknown. */
  private recorder(epoch: number | undefined): true | string | undefined {
    if (epoch === this.epoch) return true;
    if (epoch === undefined) return undefined; // (a single node's scan, seen by a cluster node: not a cluster node's clock)
    if (this.myTerms.has(epoch)) return true;
    for (const [name, c] of this.others) if (c.terms.has(epoch)) return name;
    return undefined;
  }

  /** How much further back than our clock says a list by launch time must reach (0 while we are not ahead). */
  aheadMs(): number {
    return ahead(this.samples);
  }

  /**
   * The same for a time recorded for a scan of term `epoch` (its launch, its intent's creation):
   * by the clock of the node that led that term, as learned from its scans (this node's own when
   * it led it, or when no saved state names who did).
   */
  aheadMsOf(epoch: number | undefined): number {
    const by = this.recorder(epoch);
    return by === undefined || by === true ? this.aheadMs() : ahead(this.others.get(by)!.samples);
  }

  /** A single node: `samples` (as before nodes were told apart). A cluster node: `nodes`, each node's samples and terms, this one's with this term. */
  snapshot(): unknown {
    if (this.me === undefined) return { samples: this.samples };
    const mine = [...this.myTerms, ...(this.epoch !== undefined ? [this.epoch] : [])];
    // (the others of the latest terms, MAX_NODES in all)
    const others = [...this.others].sort((a, b) => newest(b[1].terms) - newest(a[1].terms)).slice(0, MAX_NODES - 1);
    return {
      nodes: Object.fromEntries([
        [this.me, { samples: this.samples, terms: latest(mine) }],
        ...others.map(([name, c]) => [name, { samples: c.samples, terms: latest([...c.terms]) }] as const),
      ]),
    };
  }

  merge(data: unknown): string | Refused | undefined {
    const d = record(data);
    if (!d) return undefined;
    if (d.nodes === undefined) {
      const s = d.samples;
      if (!Array.isArray(s) || s.length > SAMPLES || !s.every(isSample)) return undefined;
      // whose clock they measured is not said: a single node's own; in a cluster, any earlier leader's
      if (this.me !== undefined) return new Refused(`${s.length} sample(s) not attributed to a node (an earlier version's, or a single node's): in a cluster they may be another node's clock; learned again from this node's scans`);
      this.samples = [...(s as number[]), ...this.samples].slice(-SAMPLES);
      return `clock ${Math.round(this.aheadMs() / 1000)} s ahead of the scanner's (${this.samples.length} scans)`;
    }
    const nodes = record(d.nodes);
    if (!nodes) return undefined;
    if (this.me === undefined) return new Refused('samples of a cluster\'s nodes: a single node cannot tell which were its own clock\'s');
    const entries = Object.entries(nodes);
    if (entries.length > MAX_NODES) return new Refused(`${entries.length} nodes, more than the ${MAX_NODES} this version keeps`);
    const taken: [string, number[], number[]][] = [];
    const termOf = new Map<number, string>();
    for (const [name, v] of entries) {
      const c = record(v);
      if (name.length === 0 || name.length > MAX_NAME_CHARS) return new Refused(`a node named ${JSON.stringify(name.slice(0, 40))}: no cluster node name`);
      if (!c || !Array.isArray(c.samples) || !Array.isArray(c.terms)) return new Refused(`node ${name}: not { samples, terms }`);
      if (c.samples.length > SAMPLES || !c.samples.every(isSample)) return new Refused(`node ${name}: samples not up to ${SAMPLES} skews of at most a day`);
      if (c.terms.length > MAX_TERMS || !c.terms.every((e) => isInt(e, 1))) return new Refused(`node ${name}: terms not up to ${MAX_TERMS} lease epochs`);
      for (const e of c.terms as number[]) {
        const other = termOf.get(e);
        if (other !== undefined && other !== name) return new Refused(`term ${e} led by both ${other} and ${name}`);
        termOf.set(e, name);
      }
      taken.push([name, c.samples as number[], c.terms as number[]]);
    }
    let theirs = 0;
    for (const [name, samples, terms] of taken) {
      if (name === this.me) {
        this.samples = [...samples, ...this.samples].slice(-SAMPLES);
        for (const e of terms) if (e !== this.epoch) this.myTerms.add(e);
        continue;
      }
      const c = this.others.get(name) ?? { samples: [], terms: new Set<number>() };
      this.others.set(name, c);
      c.samples = [...samples, ...c.samples].slice(-SAMPLES);
      // (this term is this node's, whatever an older state says: epochs counted again after the lease row was made anew)
      for (const e of terms) if (e !== this.epoch && !this.myTerms.has(e)) c.terms.add(e);
      theirs += samples.length;
    }
    const others = taken.length - (Object.hasOwn(nodes, this.me) ? 1 : 0);
    return `clock ${Math.round(this.aheadMs() / 1000)} s ahead of the scanner's (${this.samples.length} scans of this node's; ${theirs} of ${others} other node(s) kept, not used)`;
  }
}

/** the median sample, 0 at least (none: 0) */
function ahead(samples: readonly number[]): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return Math.max(0, sorted[Math.floor((sorted.length - 1) / 2)]);
}

function isSample(x: unknown): boolean {
  return typeof x === 'number' && Number.isFinite(x) && Math.abs(x) <= MAX_SKEW_MS;
}

/** the latest MAX_TERMS terms, in order */
function latest(terms: number[]): number[] {
  return [...new Set(terms)].sort((a, b) => a - b).slice(-MAX_TERMS);
}

function newest(terms: Set<number>): number {
  return Math.max(0, ...terms);
}
