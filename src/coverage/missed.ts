/**
 * Which devices left without a scan, and why: one classification for the status page's "missed",
 * the `host-missed` notification and the coverage report. A device is missed when its binding
 * ended while it was in scope, mapped to a region and due (or due but outside the region's scan
 * windows), and it is not present elsewhere. The reason comes from the last decision about the
 * device itself (its identity), so an address that changed hands never lends its history.
 */
import type { BindingView } from '../inventory/inventory.js';
import type { Verdict } from '../policy/policy.js';
import type { Decision } from '../scheduler/queue.js';

/** A binding that ended, with its device's last scan and whether the device is present elsewhere. */
export interface EndedBinding {
  view: BindingView;
  endAt: number;
  presentElsewhere: boolean;
}

export interface MissedHost {
  region: string;
  ip: string;
  identityId: number;
  bindingId: number;
  endAt: number;
  /** left-while-queued | left-during-scan | scan-failed | outside-scan-window | no-decision | other:KIND */
  key: string;
  text: string;
}

/** decisions that put a device in the queue or a scan: what happened to it, whatever the window when it left */
const WAITED = new Set(['due', 'dropped', 'launched', 'not-scanned', 'canceled', 'failed']);

export const MISSED_TEXT: Record<string, string> = {
  'left-while-queued': 'left while waiting in the queue (no free scan slot or appliance in time)',
  'left-during-scan': 'left before its scan finished',
  'scan-failed': 'its scans failed',
  'outside-scan-window': 'present only outside the region\'s scan windows',
  'no-decision': 'left before the scheduler looked at it',
};

/** The last decision per device, and the decisions that name no device by address (oldest first in, last wins). */
export class DecisionIndex {
  private readonly byIdentity = new Map<number, Decision>();
  private readonly byIp = new Map<string, Decision[]>();

  constructor(decisions: Iterable<Decision>) {
    for (const x of decisions) {
      if (x.identityId != null) this.byIdentity.set(x.identityId, x);
      else {
        const l = this.byIp.get(x.ip);
        if (l) l.push(x);
        else this.byIp.set(x.ip, [x]);
      }
    }
  }

  /** the last decision about the device; one that names no device counts only while this binding held the address */
  last(e: EndedBinding): Decision | undefined {
    return this.byIdentity.get(e.view.identityId) ?? this.byIp.get(e.view.ip)?.filter((x) => x.at >= e.view.startAt).at(-1);
  }
}

/**
 * The decisions about these devices (by identity; by address for the decisions that name none)
 * up to `until`, oldest first, from the log read a page at a time: what a DecisionIndex needs to
 * answer for them as an index over the whole log does, without holding it (1M devices: issue 18).
 */
export async function decisionsAbout(devices: Iterable<{ identityId: number; ip: string }>, pages: AsyncIterable<Decision[]>, until = Infinity): Promise<Decision[]> {
  const ids = new Set<number>();
  const ips = new Set<string>();
  for (const x of devices) {
    ids.add(x.identityId);
    ips.add(x.ip);
  }
  const about: Decision[] = [];
  if (ids.size) {
    for await (const page of pages) {
      for (const d of page) if (d.at <= until && (d.identityId !== undefined ? ids.has(d.identityId) : ips.has(d.ip))) about.push(d);
    }
  }
  return about;
}

/** A DecisionIndex over decisionsAbout(devices): the last decision about each of them. */
export async function decisionIndexFor(devices: Iterable<{ identityId: number; ip: string }>, pages: AsyncIterable<Decision[]>, until = Infinity): Promise<DecisionIndex> {
  return new DecisionIndex(await decisionsAbout(devices, pages, until));
}

/**
 * Why a due device's binding ended unscanned, from the last decision about it. A decision taken
 * while this binding held (`since`: its start) that queued, launched or failed it says more than
 * the window at the moment it left: a laptop queued all day that left at 19:30, past its region's
 * window, was waiting for a slot, not present only outside the window.
 */
export function missedReason(v: Verdict, last: Decision | undefined, since?: number): { key: string; text: string } {
  let key: string;
  const during = last !== undefined && (since === undefined || last.at >= since);
  if (v.reason === 'outside-scan-window' && !(during && WAITED.has(last.decision))) key = 'outside-scan-window';
  else if (!last) key = 'no-decision';
  else if (last.decision === 'due' || last.decision === 'dropped') key = 'left-while-queued';
  else if (last.decision === 'launched' || last.decision === 'not-scanned' || last.decision === 'canceled') key = 'left-during-scan';
  else if (last.decision === 'failed') key = 'scan-failed';
  else return { key: `other:${last.decision}`, text: `${last.decision}: ${last.reason}` };
  return { key, text: MISSED_TEXT[key] ?? key };
}

/**
 * The ended bindings that count as missed, with their region and reason. `evaluate` is the
 * policy's verdict (with operator skips applied, when the caller has them) at the binding's end.
 */
export function classifyMissed(ended: EndedBinding[], decisions: DecisionIndex, evaluate: (b: BindingView, at: number) => Verdict): MissedHost[] {
  const out: MissedHost[] = [];
  for (const e of ended) {
    if (e.presentElsewhere) continue;
    const v = evaluate(e.view, e.endAt);
    if (!v.region || (v.reason !== 'due' && v.reason !== 'outside-scan-window')) continue;
    const { key, text } = missedReason(v, decisions.last(e), e.view.startAt);
    out.push({ region: v.region, ip: e.view.ip, identityId: e.view.identityId, bindingId: e.view.id, endAt: e.endAt, key, text });
  }
  return out;
}
