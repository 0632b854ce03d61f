/**
 * A pooled client checked out for one piece of work. pg emits a checked-out client's connection
 * errors (server restart, terminated backend, EPIPE) as an 'error' event, and a checked-out
 * client has no listener of the pool's: unheard, that event is an uncaught exception that ends
 * the process. Listen for the whole checkout, and throw such a client away rather than reuse it.
 */
import type pg from 'pg';

export async function withPooledClient<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let failed: Error | undefined;
  const onError = (err: Error) => { failed = err; };
  c.on('error', onError);
  try {
    return await fn(c);
  } catch (err) {
    failed ??= isConnectionError(err) ? (err as Error) : undefined;
    throw err;
  } finally {
    c.off('error', onError);
    c.release(failed ?? false);
  }
}

/** An error without an SQLSTATE (socket), or of class 08 (connection) or 57P (shutdown, terminated). */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === undefined || code.startsWith('08') || code.startsWith('57P');
}
