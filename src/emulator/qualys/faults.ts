/** Which fault (if any) a request gets, drawn from the seeded generator so runs replay. */
import type { EmulatedApi, FaultConfig } from './config.js';
import type { Rng } from './rng.js';

export type RequestFault = 'conflict-1960' | 'conflict-1965' | 'server-500' | 'server-503' | 'drop' | 'drop-after' | 'truncated' | 'malformed' | 'processing-1981';

export interface FaultDraw {
  fault?: RequestFault;
  slow: boolean;
}

export function drawFault(f: FaultConfig, rng: Rng, api: EmulatedApi, action: string | undefined): FaultDraw {
  if ((f.apis && !f.apis.includes(api)) || (f.actions && !f.actions.includes(action ?? ''))) return { slow: false };
  // always two draws per eligible request, so one setting does not shift the others' sequence
  const a = rng();
  const b = rng();
  const slow = b < f.slowShare;
  const table: [number, RequestFault | RequestFault[]][] = [
    [f.conflictShare, ['conflict-1960', 'conflict-1965']],
    [f.serverErrorShare, ['server-500', 'server-503']],
    [f.dropShare, 'drop'],
    [f.dropAfterShare, 'drop-after'],
    [f.truncatedShare, 'truncated'],
    [f.malformedShare, 'malformed'],
    [f.processingShare, 'processing-1981'], // last: the bands above keep their place in the draw
  ];
  let edge = 0;
  for (const [share, kind] of table) {
    const lo = edge;
    edge += share;
    if (a < edge) {
      if (!Array.isArray(kind)) return { fault: kind, slow };
      // pick the variant from where `a` fell inside this band
      return { fault: kind[(a - lo) / share < 0.5 ? 0 : 1], slow };
    }
  }
  return { slow };
}
