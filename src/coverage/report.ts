/**
 * Coverage over a period, per region, keyed by device (identity), never by address: the devices
 * seen in the region, those scanned within policy (a scan no older than their rescan window when
 * last seen in the period, or during or after that presence), those still present and not yet
 * scanned (pending), those an operator skipped, and those that left unscanned (missed) by reason
 * (src/coverage/missed.ts). Addresses in a region's CIDRs but out of scope or excluded are counted
 * apart. Read-only, through the store's interface; scans are the decision log's `scanned` entries
 * (it keeps the last 100 000 decisions, plus those since the last sweep) and each device's last scan.
 */
import type { Policy, Verdict } from '../policy/policy.js';
import type { BindingView, HistoryStore, Inventory, OperatorMark, PeriodBinding, SchedulerStore } from '../store/types.js';
import { applyMark } from '../scheduler/marks.js';
import { decisionIndexFor, missedReason } from './missed.js';

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
  store: Pick<SchedulerStore, 'decisionPagesSince'>;
  history: Pick<HistoryStore, 'scanPagesUntil'>;
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

  // every scan a device had up to the period's end (rescan windows reach back before the period):
  // only the log's scans are read, a page at a time (issue 18: 1M devices, as many decisions)
  const scans = new Map<number, number[]>();
  for await (const page of q.history.scanPagesUntil(to)) {
    for (const d of page) {
      const l = scans.get(d.identityId);
      if (l) l.push(d.at);
      else scans.set(d.identityId, [d.at]);
    }
  }
  // devices that left unscanned, classified once the decisions about them are read (below)
  const missed: { row: CoverageRow; verdict: Verdict; view: BindingView; lastSeen: number }[] = [];

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
      missed.push({ row, verdict, view, lastSeen: s.lastSeen });
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

  // why each left unscanned: the last decision about it (src/coverage/missed.ts), from the
  // decisions of the period and the week before, keeping only those about the missed devices
  if (missed.length) {
    const decisions = await decisionIndexFor(missed.map((x) => x.view), q.store.decisionPagesSince(from - 7 * 86400_000), to);
    for (const x of missed) {
      const why = missedReason(x.verdict.reason === 'outside-scan-window' ? x.verdict : { ...x.verdict, reason: 'due' }, decisions.last({ view: x.view, endAt: x.lastSeen, presentElsewhere: false })).key;
      x.row.missedBy[(MISSED_KEYS as readonly string[]).includes(why) ? (why as (typeof MISSED_KEYS)[number]) : 'other']++;
    }
  }
  for (const r of out.values()) r.coveragePct = r.seen ? Math.round((1000 * r.scanned) / r.seen) / 10 : 100;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), regions: [...out.values()] };
}
