/**
 * When each present binding's verdict can next change, so that the periodic sweep re-evaluates
 * only those bindings instead of every present one. A verdict changes on its own only when a
 * rescan window runs out (a known time) or a region's scan window opens (checked once per region
 * per sweep); everything else changes through a new sighting, which is considered at once.
 */

export class RecheckPlan {
  /** min-heap of (at, id); an entry is live only while `planned` holds that same time for the id */
  private readonly heap: { at: number; id: number }[] = [];
  private readonly planned = new Map<number, number>();
  /** region → bindings waiting for its scan window; and the reverse, to forget one */
  private readonly waiting = new Map<string, Set<number>>();
  private readonly waitingFor = new Map<number, string>();

  get size(): number {
    return this.planned.size + this.waitingFor.size;
  }

  /** Re-evaluate `id` at `at` (replaces any earlier plan for it). */
  at(id: number, at: number): void {
    this.forget(id);
    this.planned.set(id, at);
    this.push({ at, id });
  }

  /** Re-evaluate `id` when `region`'s scan window opens. */
  afterWindow(id: number, region: string): void {
    this.forget(id);
    let set = this.waiting.get(region);
    if (!set) this.waiting.set(region, (set = new Set()));
    set.add(id);
    this.waitingFor.set(id, region);
  }

  forget(id: number): void {
    this.planned.delete(id);
    const region = this.waitingFor.get(id);
    if (region !== undefined) {
      this.waitingFor.delete(id);
      this.waiting.get(region)?.delete(id);
    }
  }

  /** Take the bindings whose time has come. */
  takeDue(now: number): number[] {
    const out: number[] = [];
    while (this.heap.length && this.heap[0].at <= now) {
      const e = this.pop();
      if (this.planned.get(e.id) === e.at) {
        this.planned.delete(e.id);
        out.push(e.id);
      }
    }
    return out;
  }

  /** Regions that have bindings waiting for their scan window. */
  regionsWaiting(): string[] {
    return [...this.waiting].filter(([, s]) => s.size > 0).map(([r]) => r);
  }

  /** Take the bindings waiting for `region`'s window. */
  takeWaiting(region: string): number[] {
    const set = this.waiting.get(region);
    if (!set) return [];
    this.waiting.delete(region);
    for (const id of set) this.waitingFor.delete(id);
    return [...set];
  }

  clear(): void {
    this.heap.length = 0;
    this.planned.clear();
    this.waiting.clear();
    this.waitingFor.clear();
  }

  private push(e: { at: number; id: number }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].at <= e.at) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
    // stale entries (replaced plans) are dropped lazily; rebuild when they dominate
    if (h.length > 64 && h.length > 4 * this.planned.size) this.compact();
  }

  private pop(): { at: number; id: number } {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        const mAt = () => (m === i ? last.at : h[m].at);
        if (l < h.length && h[l].at < mAt()) m = l;
        if (r < h.length && h[r].at < mAt()) m = r;
        if (m === i) break;
        h[i] = h[m];
        i = m;
      }
      h[i] = last;
    }
    return top;
  }

  private compact(): void {
    const live = [...this.planned].map(([id, at]) => ({ at, id })).sort((a, b) => a.at - b.at);
    this.heap.length = 0;
    for (const e of live) this.heap.push(e); // a sorted array is a valid heap
  }
}
