/**
 * Figures that cost a pass over the whole fleet (devices present now, devices that left unscanned),
 * shared by the status page and `/metrics`. A figure is computed afresh while it is cheap. Once a
 * computation took more than 100 ms (a fleet of hundreds of thousands), its result is reused for 50
 * times its cost, so reading the page or scraping spends at most 2% of a core on it however often;
 * after that, for as long again, it is still served while a fresh computation runs behind it, so a
 * reader that comes regularly (a Prometheus scrape) never waits for a pass over a fleet of 1M (10 s
 * or more, past the scrape's default timeout). A reader waits when there is nothing computed yet,
 * when the last result is older than that (nobody read for a while), or when what the figure
 * depends on changed (`version`: an operator's mark, a reloaded config): the figure the operator
 * just changed is never served from before the change. Concurrent readers share one computation.
 */

/** a computation cheaper than this is never reused */
const CHEAP_MS = 100;
/** a costly result is fresh for this many times what it cost */
const FRESH_FOR_COSTS = 50;
/** and is served while a fresh one runs until this many times what it cost */
const SERVED_FOR_COSTS = 2 * FRESH_FOR_COSTS;

export interface Costly<T> {
  value: T;
  /** when the computation began (Date.now()) */
  at: number;
  /** how long it took, ms */
  costMs: number;
  /** what it was computed under (see get) */
  version: string;
}

interface Slot<T> {
  last?: Costly<T>;
  running?: { version: string; result: Promise<Costly<T>> };
}

export class CostlyFigures {
  private readonly slots = new Map<string, Slot<unknown>>();

  /**
   * The figure under `key`, computed under `version` (what it depends on besides time): the last
   * result while fresh, or while a fresh one is computed behind it; else `compute()`'s. A
   * computation that fails in the background drops the last result, so the next reader computes
   * in the foreground and sees the error.
   */
  get<T>(key: string, now: number, version: string, compute: () => Promise<T>): Promise<Costly<T>> {
    let slot = this.slots.get(key) as Slot<T> | undefined;
    if (!slot) this.slots.set(key, (slot = {}));
    const last = slot.last;
    const usable = last !== undefined && last.version === version && last.costMs > CHEAP_MS;
    if (usable && now - last.at < FRESH_FOR_COSTS * last.costMs) return Promise.resolve(last);
    const fresh = slot.running?.version === version ? slot.running.result : this.start(slot, version, compute);
    if (!usable || now - last.at >= SERVED_FOR_COSTS * last.costMs) return fresh;
    fresh.catch(() => undefined); // (its failure reaches the next reader, above)
    return Promise.resolve(last);
  }

  private start<T>(slot: Slot<T>, version: string, compute: () => Promise<T>): Promise<Costly<T>> {
    const at = Date.now();
    const t0 = performance.now();
    const running = { version, result: undefined as unknown as Promise<Costly<T>> };
    running.result = compute().then(
      (value) => {
        const done = { value, at, costMs: performance.now() - t0, version };
        // (a computation under an older version that ends after a newer one began is not kept)
        if (slot.running === running) slot.last = done;
        return done;
      },
      (err: unknown) => {
        if (slot.running === running) slot.last = undefined;
        throw err;
      },
    ).finally(() => {
      if (slot.running === running) slot.running = undefined;
    });
    slot.running = running;
    return running.result;
  }
}

const figures = new WeakMap<object, CostlyFigures>();

/** the costly figures of one daemon (keyed by its view) */
export function costlyFiguresOf(owner: object): CostlyFigures {
  let f = figures.get(owner);
  if (!f) figures.set(owner, (f = new CostlyFigures()));
  return f;
}
