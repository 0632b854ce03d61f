/**
 * Coverage over a period, per region, keyed by device (identity), never by address: the devices
 * seen in the region, those scanned within policy (a scan no older than their rescan window when
 * last seen in the period, or during or after that presence), those still present and not yet
 * scanned (pending), those an operator skipped, and those that left unscanned (missed) by reason
 * (src/coverage/missed.ts). Addresses in a region's CIDRs but out of scope or excluded are counted
 * apart. Read-only, through the store's interface; scans are the decision log's `scanned` entries
 * (it keeps the last 100 000 decisions) and each device's last scan.
 */
import type { Policy } from '../policy/policy.js';
import type { BindingView, Inventory, OperatorMark, PeriodBinding, SchedulerStore } from '../store/types.js';
import { applyMark } from '../scheduler/marks.js';
import { DecisionIndex, missedReason } from './missed.js';

export const MISSED_KEYS = ['left-while-queued', 'left-during-scan', 'scan-failed', 'outside-scan-window', 'no-decision', 'other'] as const;

export interface CoverageRow {
  region: string;
  /** devices seen in the region during the period (in scope, not excluded) */
  seen: number;
  /** of those, scanned within policy */
  scanned: number;
  /** scanned / seen, percent (100 when none was seen) */
  coveragePct: number;
  /** present at the period's end and not scanned yet */
  pending: number;
  /** skipped by an operator (onsight skip) */
  skipped: number;
  /** left unscanned */
  missed: number;
  missedBy: Record<(typeof MISSED_KEYS)[number], number>;
  /** devices with an address in the region's CIDRs that is out of scope or excluded (never scanned) */
  excluded: number;
}

export interface CoverageReport {
  from: string;
  to: string;
  regions: CoverageRow[];
}

export interface CoverageQuery {
  inventory: Pick<Inventory, 'bindingPagesBetween'>;
  store: Pick<SchedulerStore, 'decisionsSince'>;
  policy: Policy;
  marks: Map<number, OperatorMark>;
  from: number;
  to: number;
  /** now (a binding open at `to` with no end is present) */
  now: number;
  region?: string;
}


interface Seen {
  region: string;
  identityId: number;
  /** its last moment in the period */
  lastSeen: number;
  /** the binding it was last seen on */
  last: PeriodBinding;
  present: boolean;
}

export async function coverageReport(q: CoverageQuery): Promise<CoverageReport> {
  const { policy, from, to, now } = q;
  const regionNames = policy.regions.regions.map((r) => r.name).filter((n) => q.region === undefined || n === q.region);
  const out = new Map<string, CoverageRow>(regionNames.map((name) => [name, {
    region: name, seen: 0, scanned: 0, coveragePct: 100, pending: 0, skipped: 0, missed: 0,
    missedBy: Object.fromEntries(MISSED_KEYS.map((k) => [k, 0])) as CoverageRow['missedBy'], excluded: 0,
  }]));

  // every scan a device had up to the period's end (rescan windows reach back before the period),
  // and the decisions that say why a device left unscanned
  const all = await q.store.decisionsSince(0);
  const scans = new Map<number, number[]>();
  for (const d of all) {
    if (d.decision !== 'scanned' || d.identityId === undefined || d.at > to) continue;
    const l = scans.get(d.identityId);
    if (l) l.push(d.at);
    else scans.set(d.identityId, [d.at]);
  }
  const decisions = new DecisionIndex(all.filter((d) => d.at >= from - 7 * 86400_000 && d.at <= to));

  const tally = (s: Seen) => {
    const row = out.get(s.region)!;
    row.seen++;
    const b = s.last;
    const window = policy.rescanAfterS(b.ip, s.region) * 1000;
    const inWindow = (t: number) => t >= s.lastSeen - window && t <= to;
    if ((scans.get(s.identityId) ?? []).some(inWindow) || (b.lastScannedAt !== undefined && inWindow(b.lastScannedAt))) {
      row.scanned++;
      return;
    }
    const view: BindingView = {
      id: b.id, ip: b.ip, identityId: b.identityId, identityKey: '', channel: b.channel, format: '', startAt: b.startAt, lastSeen: s.lastSeen, renewals: 0,
      lastScannedAt: b.lastScannedAt, lastScannedVia: b.lastScannedVia,
    };
    const verdict = applyMark(q.marks.get(s.identityId), policy.evaluate(view, s.lastSeen), view, s.lastSeen, (r) => policy.windowOpen(r, s.lastSeen));
    if (verdict.reason === 'skipped') row.skipped++;
    else if (s.present) row.pending++;
    else {
      row.missed++;
      const why = missedReason(verdict.reason === 'outside-scan-window' ? verdict : { ...verdict, reason: 'due' }, decisions.last({ view, endAt: s.lastSeen, presentElsewhere: false })).key;
      row.missedBy[(MISSED_KEYS as readonly string[]).includes(why) ? (why as (typeof MISSED_KEYS)[number]) : 'other']++;
    }
  };

  // bindings come ordered by device: each device is tallied once its last binding has been read,
  // so the report holds one device and one page, not the whole period (1M devices: issue 18)
  let device: number | undefined;
  const seen = new Map<string, Seen>(); // this device's, by region
  const excluded = new Set<string>(); // regions where this device had an out-of-scope or excluded address
  const flush = () => {
    for (const s of seen.values()) tally(s);
    for (const region of excluded) out.get(region)!.excluded++;
    seen.clear();
    excluded.clear();
  };
  for await (const page of q.inventory.bindingPagesBetween(from, to, now)) {
    for (const b of page) {
      if (b.identityId !== device) {
        flush();
        device = b.identityId;
      }
      const m = policy.regions.lookup(b.ip);
      if (!m || !out.has(m.region.name)) continue;
      const region = m.region.name;
      if (!policy.allowed(b.ip)) {
        excluded.add(region);
        continue;
      }
      const left = b.endAt ?? (b.expiresAt !== undefined && b.expiresAt < now ? b.expiresAt : undefined);
      const lastSeen = Math.min(to, left ?? now);
      const cur = seen.get(region);
      if (!cur || lastSeen > cur.lastSeen) seen.set(region, { region, identityId: b.identityId, lastSeen, last: b, present: left === undefined || left > to });
      else if (left === undefined || left > to) cur.present = true;
    }
  }
  flush();
  for (const r of out.values()) r.coveragePct = r.seen ? Math.round((1000 * r.scanned) / r.seen) / 10 : 100;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), regions: [...out.values()] };
}
