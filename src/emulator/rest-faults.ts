/**
 * Faults for the REST emulators (Tenable, Rapid7), drawn from a seeded generator so runs replay:
 * 5xx answers, sockets dropped before or after the call ran, malformed JSON, slow answers.
 */
import type { Rng } from './qualys/rng.js';

export type RestFault = 'server-500' | 'server-503' | 'drop' | 'drop-after' | 'malformed';

export interface RestFaults {
  serverErrorShare?: number;
  /** socket closed before the call runs */
  dropShare?: number;
  /** the call runs, then the socket is closed (the client cannot know it ran) */
  dropAfterShare?: number;
  malformedShare?: number;
  slowShare?: number;
  slowMs?: number;
  /** only these routes get faults (default all) */
  routes?: string[];
}

export function drawRestFault(f: RestFaults, rng: Rng, route: string): { fault?: RestFault; slow: boolean } {
  if (f.routes && !f.routes.includes(route)) return { slow: false };
  // always the same draws per eligible request, so one setting does not shift the others' sequence
  const a = rng();
  const b = rng();
  const c = rng();
  const slow = b < (f.slowShare ?? 0);
  const bands: [number, RestFault][] = [
    [f.serverErrorShare ?? 0, c < 0.5 ? 'server-500' : 'server-503'],
    [f.dropShare ?? 0, 'drop'],
    [f.dropAfterShare ?? 0, 'drop-after'],
    [f.malformedShare ?? 0, 'malformed'],
  ];
  let edge = 0;
  for (const [share, kind] of bands) {
    edge += share;
    if (a < edge) return { fault: kind, slow };
  }
  return { slow };
}
