/** Waiting in tests: a pause, and polling a condition until it holds (or a deadline passes). */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `cond` (sync or async) every `everyMs` until it returns something truthy, and return that;
 * throw `timed out waiting for <what>` after `ms`.
 */
export async function until<T>(cond: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 5000, what = 'condition', everyMs = 10): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
