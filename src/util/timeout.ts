/** Waiting on a promise for a bounded time. */

export const TIMED_OUT = Symbol('timed out');

/**
 * `p`'s outcome, or TIMED_OUT once `ms` have passed. The timer is cleared when `p` settles; until
 * then it holds the process open, so a stop waiting on a call without a socket still finishes.
 */
export function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let t: NodeJS.Timeout | undefined;
  const timer = new Promise<typeof TIMED_OUT>((resolve) => {
    t = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}
