/**
 * The first holders of names already known when name_holders came (SQLite migration 15, PostgreSQL
 * 8), worked out alike for both stores. A name one identity holds is its. Where several hold it:
 * - one that carried it in a stored sighting ranks by the first such sighting's id (the order lines
 *   were applied, which a line's own time cannot change);
 * - one whose early sightings were pruned (none as old as its first sighting is left) and none of
 *   whose stored ones carries the name took it before them all: those come first, the first seen of them;
 * - one whose sightings are all kept and none carries the name took it in a renewal (renewals are
 *   not stored as sightings) at a time unknown: those come last.
 * Ranked by first sighting alone, a device known earlier under another name that had renamed itself
 * like a laptop became the name's first holder (review, session 42). Names that can never link are
 * left out, as live claims leave them.
 */
import { hostKey, isLinkableHostKey } from '../inventory/hostkey.js';

export interface NameHolderFacts {
  /** identities holding a name now */
  holders: { id: number; hostKey: string; firstSeen: number }[];
  /** for identities sharing a name: each host name their sightings carried, and the first sighting id that did */
  carried: { identityId: number; hostname: string; first: number }[];
  /** for identities sharing a name: the time of their earliest stored sighting */
  earliest: { identityId: number; at: number }[];
}

/** The identities sharing a name with another (their sightings are read for `carried`). */
export function sharedNameHolders(holders: NameHolderFacts['holders']): number[] {
  const by = new Map<string, number>();
  for (const h of holders) if (isLinkableHostKey(h.hostKey)) by.set(h.hostKey, (by.get(h.hostKey) ?? 0) + 1);
  return holders.filter((h) => (by.get(h.hostKey) ?? 0) > 1).map((h) => h.id);
}

/** Each linkable name's first holder. */
export function firstHolders(f: NameHolderFacts): Map<string, number> {
  // the first sighting id at which each identity carried each name
  const carriedAt = new Map<string, number>();
  for (const c of f.carried) {
    const hk = hostKey(c.hostname);
    if (!hk) continue;
    const k = `${c.identityId} ${hk}`;
    carriedAt.set(k, Math.min(carriedAt.get(k) ?? Infinity, c.first));
  }
  const earliest = new Map(f.earliest.map((e) => [e.identityId, e.at]));
  const best = new Map<string, { id: number; rank: [number, number, number] }>();
  for (const h of f.holders) {
    if (!isLinkableHostKey(h.hostKey)) continue;
    const first = carriedAt.get(`${h.id} ${h.hostKey}`);
    const pruned = (earliest.get(h.id) ?? Infinity) > h.firstSeen;
    const rank: [number, number, number] = first !== undefined ? [1, first, h.id] : pruned ? [0, h.firstSeen, h.id] : [2, h.firstSeen, h.id];
    const was = best.get(h.hostKey);
    if (!was || rank[0] < was.rank[0] || (rank[0] === was.rank[0] && (rank[1] < was.rank[1] || (rank[1] === was.rank[1] && rank[2] < was.rank[2])))) {
      best.set(h.hostKey, { id: h.id, rank });
    }
  }
  return new Map([...best].map(([hk, b]) => [hk, b.id]));
}
