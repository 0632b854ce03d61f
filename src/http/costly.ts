/**
 * Figures that cost a pass over the whole fleet (devices present now, devices that left unscanned),
 * shared by the status page and `/metrics`. A figure is computed afresh while it is cheap. Once a
 * computation took more than 100 ms (a fleet of hundreds of thousands), its result is reused for 50
 * times its cost, so reading the page or scraping spends at most 2% of a core on it however often;
 * after that it is still served while a fresh computation runs behind it, so a reader waits for a
 * pass over the fleet only when there is nothing computed yet (a Prometheus scrape of a fleet of
 * 1M would otherwise wait 10 s or more each time the figure expires, past its default timeout).
 * Concurrent readers share one computation.
 */

/** a computation cheaper than this is never reused */
const CHEAP_MS = 100;
/** a costly result is fresh for this many times what it cost */
const FRESH_FOR_COSTS = 50;

export interface Costly<T> {
  value: T;
  /** when the computation began (Date.now()) */
  at: number;
  /** how long it took, ms */
  costMs: number;
}

interface Slot<T> {
  last?: Costly<T>;
  running?: Promise<Costly<T>>;
}

export class CostlyFigures {
  private readonly slots = new Map<string, Slot<unknown>>();

  /**
   * The figure under `key`: the last result while fresh (or while a fresh one is computed behind
   * it), else `compute()`'s. A computation that fails in the background drops the last result, so
   * the next reader computes in the foreground and sees the error.
   */
  get<T>(key: string, now: number, compute: () => Promise<T>): Promise<Costly<T>> {
    let slot = this.slots.get(key) as Slot<T> | undefined;
    if (!slot) this.slots.set(key, (slot = {}));
    const last = slot.last;
    const costly = last !== undefined && last.costMs > CHEAP_MS;
    if (costly && now - last.at < FRESH_FOR_COSTS * last.costMs) return Promise.resolve(last);
    const running = slot.running ?? this.start(slot, compute);
    if (!costly) return running;
    running.catch(() => undefined); // (its failure reaches the next reader, above)
    return Promise.resolve(last);
  }

  private start<T>(slot: Slot<T>, compute: () => Promise<T>): Promise<Costly<T>> {
    const at = Date.now();
    const t0 = performance.now();
    const running = compute().then(
      (value) => {
        slot.last = { value, at, costMs: performance.now() - t0 };
        return slot.last;
      },
      (err: unknown) => {
        slot.last = undefined;
        throw err;
      },
    ).finally(() => {
      if (slot.running === running) slot.running = undefined;
    });
    slot.running = running;
    return running;
  }
}

const figures = new WeakMap<object, CostlyFigures>();

/** the costly figures of one daemon (keyed by its view) */
export function costlyFiguresOf(owner: object): CostlyFigures {
  let f = figures.get(owner);
  if (!f) figures.set(owner, (f = new CostlyFigures()));
  return f;
}
