/**
 * Where a worker thread's compiled entry is: `NAME.js` beside the calling module (the built daemon),
 * or, when the caller runs from the TypeScript sources (vitest; node 20 cannot load a .ts worker),
 * the copy `npx tsc` wrote under dist/. Undefined when neither exists.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export function threadEntry(callerUrl: string, name: string): URL | undefined {
  const beside = new URL(`./${name}.js`, callerUrl);
  if (existsSync(fileURLToPath(beside))) return beside;
  const path = fileURLToPath(beside);
  const i = path.lastIndexOf('/src/');
  if (i < 0) return undefined;
  const built = path.slice(0, i) + '/dist' + path.slice(i);
  return existsSync(built) ? pathToFileURL(built) : undefined;
}

/**
 * The young generation of a worker thread's heap (MiB, `resourceLimits.maxYoungGenerationSizeMb`).
 * Their garbage is short-lived, and V8's default is several times this. With 8 for the stream
 * receive and decode threads (and the receive thread's smaller batches), a 1M-identity daemon
 * peaked at 272-276 MiB instead of 327 (bench/rss-daemon.ts; the decode thread's limit alone took
 * 297 to 276), with no throughput lost that the ingest bench could tell apart from its noise.
 */
export const WORKER_YOUNG_MB = 8;
