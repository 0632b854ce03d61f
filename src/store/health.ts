/**
 * Is the state database writable? Writers report each failure and success here; /healthz, the
 * metrics and the log read it. A failing write is retried by its writer (ingest keeps its lines,
 * the scheduler's next sweep re-evaluates); this only makes the trouble visible, once per episode.
 */
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../log.js';

/** Below this much free space on the state file's file system, /healthz is not ok. */
const MIN_FREE_BYTES = 1 << 20;

export class StoreHealth {
  /** failed writes since start (every stage) */
  writeErrors = 0;
  /** stages whose last write failed: stage → first failure of the episode */
  private readonly failing = new Map<string, { message: string; code?: string; since: number }>();

  constructor(private readonly state: string, private readonly log: Logger) {}

  failed(stage: string, err: unknown, consequence: string): void {
    this.writeErrors++;
    const e = err as { message?: string; code?: string };
    if (this.failing.has(stage)) return;
    this.failing.set(stage, { message: e.message ?? String(err), code: e.code, since: Date.now() });
    this.log.error({ stage, err: { message: e.message, code: e.code } }, `could not write to the state database ${this.state} (${stage}): ${e.message}; ${consequence}`);
  }

  succeeded(stage: string): void {
    const f = this.failing.get(stage);
    if (!f) return;
    this.failing.delete(stage);
    this.log.warn({ stage, failedForS: Math.round((Date.now() - f.since) / 1000) }, `state database writable again (${stage})`);
  }

  /** What is wrong now, or undefined: a write that keeps failing, or a file system (nearly) full. */
  problem(): string | undefined {
    const f = [...this.failing.entries()];
    if (f.length) return `state database: ${f.map(([stage, x]) => `${stage} writes failing since ${new Date(x.since).toISOString()}: ${x.message}`).join('; ')}`;
    if (this.state === ':memory:') return undefined;
    try {
      const s = statfsSync(dirname(this.state));
      const free = s.bavail * s.bsize;
      if (free < MIN_FREE_BYTES) return `state database: only ${free} bytes free on the file system of ${this.state} (disk full)`;
    } catch {
      /* not knowable here: the writes will tell */
    }
    return undefined;
  }
}

/** Run a database write; on failure report it and resolve undefined instead of throwing. */
export async function guardedWrite<T>(health: StoreHealth | undefined, stage: string, consequence: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    const r = await fn();
    health?.succeeded(stage);
    return r;
  } catch (err) {
    if (!health) throw err;
    health.failed(stage, err, consequence);
    return undefined;
  }
}
