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
import { DecisionIndex, decisionsAbout, missedReason } from './missed.js';

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
  return (await coverageReports(q, [{ from: q.from, to: q.to }]))[0];
}

/** One period's counts as the pass builds them. */
interface PeriodTally {
  from: number;
  to: number;
  out: Map<string, CoverageRow>;
  /** devices that left unscanned, classified once the decisions about them are read */
  missed: { row: CoverageRow; verdict: Verdict; view: BindingView; lastSeen: number }[];
  /** the device being read: where it was seen in the period, by region */
  seen: Map<string, Seen>;
  /** regions where the device being read had an out-of-scope or excluded address in the period */
  excluded: Set<string>;
  /** the device being read counts in this period (it is in `touched`) */
  touched: boolean;
}

/**
 * coverageReport for several periods (the status page's days) in one pass: the scans, the
 * bindings of all the periods and the decisions about the devices that left are each read once,
 * and every binding counts in each period it overlaps; the same figures as a report per period.
 */
export async function coverageReports(q: Omit<CoverageQuery, 'from' | 'to'>, periods: { from: number; to: number }[]): Promise<CoverageReport[]> {
  if (!periods.length) return [];
  const { policy, now } = q;
  const regionNames = policy.regions.regions.map((r) => r.name).filter((n) => q.region === undefined || n === q.region);
  const tallies: PeriodTally[] = periods.map(({ from, to }) => ({
    from, to, missed: [], seen: new Map(), excluded: new Set(), touched: false,
    out: new Map<string, CoverageRow>(regionNames.map((name) => [name, {
      region: name, seen: 0, scanned: 0, coveragePct: 100, pending: 0, skipped: 0, missed: 0,
      missedBy: Object.fromEntries(MISSED_KEYS.map((k) => [k, 0])) as CoverageRow['missedBy'], excluded: 0,
    }])),
  }));
  const first = Math.min(...periods.map((p) => p.from));
  const last = Math.max(...periods.map((p) => p.to));

  // every scan a device had up to the periods' end (rescan windows reach back before a period):
  // only the log's scans are read, a page at a time (issue 18: 1M devices, as many decisions)
  const scans = new Map<number, number[]>();
  for await (const page of q.history.scanPagesUntil(last)) {
    for (const d of page) {
      const l = scans.get(d.identityId);
      if (l) l.push(d.at);
      else scans.set(d.identityId, [d.at]);
    }
  }

  const tally = (p: PeriodTally, s: Seen) => {
    const row = p.out.get(s.region)!;
    row.seen++;
    const b = s.last;
    const window = policy.rescanAfterS(b.ip, s.region) * 1000;
    const inWindow = (t: number) => t >= s.lastSeen - window && t <= p.to;
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
      p.missed.push({ row, verdict, view, lastSeen: s.lastSeen });
    }
  };

  // bindings come ordered by device: each device is tallied once its last binding has been read,
  // so the report holds one device and one page, not the whole period (1M devices: issue 18)
  let device: number | undefined;
  // the periods the device being read counts in: a flush visits those only (1M devices x 7 days)
  const touched: PeriodTally[] = [];
  const flush = () => {
    for (const p of touched) {
      for (const s of p.seen.values()) tally(p, s);
      for (const region of p.excluded) p.out.get(region)!.excluded++;
      p.seen.clear();
      p.excluded.clear();
      p.touched = false;
    }
    touched.length = 0;
  };
  for await (const page of q.inventory.bindingPagesBetween(first, last, now)) {
    for (const b of page) {
      if (b.identityId !== device) {
        flush();
        device = b.identityId;
      }
      const m = policy.regions.lookup(b.ip);
      if (!m || !regionNames.includes(m.region.name)) continue;
      const region = m.region.name;
      const allowed = policy.allowed(b.ip);
      const left = b.endAt ?? (b.expiresAt !== undefined && b.expiresAt < now ? b.expiresAt : undefined);
      for (const p of tallies) {
        // the periods this binding overlaps (bindingPagesBetween's condition, per period)
        if (b.startAt >= p.to || (b.endAt ?? b.expiresAt ?? now) < p.from) continue;
        if (!p.touched) {
          p.touched = true;
          touched.push(p);
        }
        if (!allowed) {
          p.excluded.add(region);
          continue;
        }
        const lastSeen = Math.min(p.to, left ?? now);
        const cur = p.seen.get(region);
        if (!cur || lastSeen > cur.lastSeen) p.seen.set(region, { region, identityId: b.identityId, lastSeen, last: b, present: left === undefined || left > p.to });
        else if (left === undefined || left > p.to) cur.present = true;
      }
    }
  }
  flush();

  // why each left unscanned: the last decision about it (src/coverage/missed.ts), from the
  // decisions of the periods and the week before, keeping only those about the missed devices
  const missed = tallies.flatMap((p) => p.missed.map((x) => x.view));
  if (missed.length) {
    const about = await decisionsAbout(missed, q.store.decisionPagesSince(first - 7 * 86400_000), last);
    for (const p of tallies) {
      if (!p.missed.length) continue;
      // what a report of this period alone reads: the period and the week before
      const decisions = new DecisionIndex(about.filter((d) => d.at >= p.from - 7 * 86400_000 && d.at <= p.to));
      for (const x of p.missed) {
        const why = missedReason(x.verdict.reason === 'outside-scan-window' ? x.verdict : { ...x.verdict, reason: 'due' }, decisions.last({ view: x.view, endAt: x.lastSeen, presentElsewhere: false }), x.view.startAt).key;
        x.row.missedBy[(MISSED_KEYS as readonly string[]).includes(why) ? (why as (typeof MISSED_KEYS)[number]) : 'other']++;
      }
    }
  }
  return tallies.map((p) => {
    for (const r of p.out.values()) r.coveragePct = r.seen ? Math.round((1000 * r.scanned) / r.seen) / 10 : 100;
    return { from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString(), regions: [...p.out.values()] };
  });
}
