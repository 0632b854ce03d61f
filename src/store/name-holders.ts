/**
 * The first holders of names already known when name_holders came (SQLite migration 15, PostgreSQL
 * 8), worked out alike for both stores. A name one identity holds is its. A name several hold goes
 * to the first of them to have carried it in a stored sighting (the lowest sighting id: the order
 * lines were applied, which a line's own time cannot change) only when every one of them did; else
 * it is no one's (NO_HOLDER): renewals are not stored as sightings and old sightings are pruned, so a
 * device that took the name in a renewal, or before the retention's cut-off, cannot be placed, and
 * each ranking tried gave a laptop's name to a device that had renamed itself like it (reviews,
 * session 42). No one gives credit by the pattern under such a name; the same user still links, and
 * once no identity holds the name the prune frees it. Names that can never link are left out, as
 * live claims leave them.
 */
import { hostKey, isLinkableHostKey } from '../inventory/hostkey.js';

/** name_holders' identity for a name no identity may give credit under (no identity has id 0) */
export const NO_HOLDER = 0;

export interface NameHolderFacts {
  /** identities holding a name now */
  holders: { id: number; hostKey: string }[];
  /** for identities sharing a name: each host name their sightings carried, and the first sighting id that did */
  carried: { identityId: number; hostname: string; first: number }[];
}

/** The identities sharing a name with another (their sightings are read for `carried`). */
export function sharedNameHolders(holders: NameHolderFacts['holders']): number[] {
  const by = new Map<string, number>();
  for (const h of holders) if (isLinkableHostKey(h.hostKey)) by.set(h.hostKey, (by.get(h.hostKey) ?? 0) + 1);
  return holders.filter((h) => (by.get(h.hostKey) ?? 0) > 1).map((h) => h.id);
}

/** Each linkable name's first holder (NO_HOLDER: none can be told). */
export function firstHolders(f: NameHolderFacts): Map<string, number> {
  // the first sighting id at which each identity carried each name
  const carriedAt = new Map<string, number>();
  for (const c of f.carried) {
    const hk = typeof c.hostname === 'string' ? hostKey(c.hostname) : undefined;
    if (!hk) continue;
    const k = `${c.identityId} ${hk}`;
    carriedAt.set(k, Math.min(carriedAt.get(k) ?? Infinity, c.first));
  }
  const by = new Map<string, { id: number; first: number | undefined }[]>();
  for (const h of f.holders) {
    if (!isLinkableHostKey(h.hostKey)) continue;
    const list = by.get(h.hostKey) ?? [];
    list.push({ id: h.id, first: carriedAt.get(`${h.id} ${h.hostKey}`) });
    by.set(h.hostKey, list);
  }
  const out = new Map<string, number>();
  for (const [hk, list] of by) {
    if (list.length === 1) out.set(hk, list[0].id);
    else if (list.some((h) => h.first === undefined)) out.set(hk, NO_HOLDER);
    else out.set(hk, list.reduce((a, b) => (b.first! < a.first! || (b.first === a.first && b.id < a.id) ? b : a)).id);
  }
  return out;
}
