/**
 * Coverage over a period, per region, keyed by device (identity), never by address: the devices
 * seen in the region, those scanned within policy (a scan no older than their rescan window when
 * last seen in the period, or during or after that presence), those still present and not yet
 * scanned (pending), those an operator skipped, and those that left unscanned (missed) by reason
 * (src/coverage/missed.ts). Addresses in a region's CIDRs but out of scope or excluded are counted
 * apart. Devices in scope that no region maps have a row of their own, "(no region)": onsight never
 * scans them, and a site left out of `regions` must not vanish from the report.
 *
 * A device seen in several regions (the "(no region)" row included) counts in each, as that region
 * saw it: the rows can add up to more devices than there were. The total counts each device once,
 * as the region it was last seen in counts it (where it is now, or where it left from).
 *
 * Read-only, through the store's interface; scans are the decision log's `scanned` entries (it
 * keeps the last 100 000 decisions, plus those since the last sweep) and each device's last scan.
 */
import type { Policy, Verdict } from '../policy/policy.js';
import type { BindingView, HistoryStore, Inventory, OperatorMark, PeriodBinding, SchedulerStore } from '../store/types.js';
import { applyMark } from '../scheduler/marks.js';
import { DecisionIndex, decisionsAbout, missedReason } from './missed.js';

// 'no-region' came later: last, so the keys before it keep their order
export const MISSED_KEYS = ['left-while-queued', 'left-during-scan', 'scan-failed', 'outside-scan-window', 'no-decision', 'other', 'no-region'] as const;

/** The name of the row of devices in scope that no region maps. */
export const NO_REGION = '(no region)';

/** The counts of a row; the total has them too. */
export interface CoverageCounts {
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
  /** devices with an address in the region's CIDRs that is out of scope or excluded (never scanned); for "(no region)": in scope and excluded */
  excluded: number;
}

export interface CoverageRow extends CoverageCounts {
  /** the region's name, or NO_REGION */
  region: string;
  /** set on the row of devices in scope that no region maps (a region could be named "(no region)") */
  noRegion?: true;
}

export interface CoverageReport {
  from: string;
  to: string;
  /** the regions in config order, then "(no region)" when a device there was seen or excluded in the period */
  regions: CoverageRow[];
  /** every row's devices, each device once (as its last region counts it) */
  total: CoverageCounts;
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
  /** undefined: in scope, in no region */
  region: string | undefined;
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
  /** by region; undefined: the "(no region)" row */
  out: Map<string | undefined, CoverageRow>;
  total: CoverageCounts;
  /** devices that left unscanned, classified once the decisions about them are read */
  missed: { rows: CoverageCounts[]; verdict: Verdict; view: BindingView; lastSeen: number }[];
  /** the device being read: where it was seen in the period, by region */
  seen: Map<string | undefined, Seen>;
  /** regions where the device being read had an out-of-scope or excluded address in the period */
  excluded: Set<string | undefined>;
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
  // asked for one region: the unmapped devices are not in it
  const rowKeys: (string | undefined)[] = q.region === undefined ? [...regionNames, undefined] : regionNames;
  const tallies: PeriodTally[] = periods.map(({ from, to }) => ({
    from, to, missed: [], seen: new Map(), excluded: new Set(), touched: false, total: emptyCounts(),
    out: new Map(rowKeys.map((name) => [name, name === undefined ? { region: NO_REGION, noRegion: true, ...emptyCounts() } : { region: name, ...emptyCounts() }])),
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

  const outcome = (p: PeriodTally, s: Seen): Outcome => {
    const b = s.last;
    const window = policy.rescanAfterS(b.ip, s.region) * 1000;
    const inWindow = (t: number) => t >= s.lastSeen - window && t <= p.to;
    if ((scans.get(s.identityId) ?? []).some(inWindow) || (b.lastScannedAt !== undefined && inWindow(b.lastScannedAt))) return { kind: 'scanned' };
    const view = viewOf(b, s.lastSeen);
    const verdict = applyMark(q.marks.get(s.identityId), policy.evaluate(view, s.lastSeen), view, s.lastSeen, (r) => policy.windowOpen(r, s.lastSeen));
    if (verdict.reason === 'skipped') return { kind: 'skipped' };
    if (s.present) return { kind: 'pending' };
    return { kind: 'missed', verdict, view, lastSeen: s.lastSeen };
  };
  const count = (p: PeriodTally, rows: CoverageCounts[], o: Outcome) => {
    for (const row of rows) {
      row.seen++;
      if (o.kind !== 'missed') row[o.kind]++;
      else row.missed++;
    }
    if (o.kind === 'missed') p.missed.push({ rows, verdict: o.verdict, view: o.view, lastSeen: o.lastSeen });
  };
  /** one device in one period: in each region it was seen in, and once in the total, as its last region counts it */
  const tally = (p: PeriodTally) => {
    let last: Seen | undefined;
    for (const s of p.seen.values()) if (!last || s.lastSeen > last.lastSeen || (s.lastSeen === last.lastSeen && s.present && !last.present)) last = s;
    for (const s of p.seen.values()) count(p, s === last ? [p.out.get(s.region)!, p.total] : [p.out.get(s.region)!], outcome(p, s));
    for (const region of p.excluded) p.out.get(region)!.excluded++;
    if (p.excluded.size) p.total.excluded++;
  };

  // bindings come ordered by device: each device is tallied once its last binding has been read,
  // so the report holds one device and one page, not the whole period (1M devices: issue 18)
  let device: number | undefined;
  // the periods the device being read counts in: a flush visits those only (1M devices x 7 days)
  const touched: PeriodTally[] = [];
  const flush = () => {
    for (const p of touched) {
      tally(p);
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
      const region = policy.regions.lookup(b.ip)?.region.name;
      if (!rowKeys.includes(region)) continue;
      const allowed = policy.allowed(b.ip);
      // an address in no region counts only inside the scope: the rest of the world is not a forgotten site
      if (region === undefined && !allowed && policy.evaluate(viewOf(b, b.startAt), b.startAt).reason !== 'excluded') continue;
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
  // decisions of the periods and the week before, keeping only those about the missed devices;
  // onsight never scans an unmapped device: that is why it was missed, whatever was decided about it elsewhere
  const missed = tallies.flatMap((p) => p.missed.filter((x) => x.verdict.reason !== 'no-region').map((x) => x.view));
  if (tallies.some((p) => p.missed.length)) {
    const about = await decisionsAbout(missed, q.store.decisionPagesSince(first - 7 * 86400_000), last);
    for (const p of tallies) {
      if (!p.missed.length) continue;
      // what a report of this period alone reads: the period and the week before
      const decisions = new DecisionIndex(about.filter((d) => d.at >= p.from - 7 * 86400_000 && d.at <= p.to));
      for (const x of p.missed) {
        const why = x.verdict.reason === 'no-region' ? 'no-region'
          : missedReason(x.verdict.reason === 'outside-scan-window' ? x.verdict : { ...x.verdict, reason: 'due' }, decisions.last({ view: x.view, endAt: x.lastSeen, presentElsewhere: false }), x.view.startAt).key;
        const key = (MISSED_KEYS as readonly string[]).includes(why) ? (why as (typeof MISSED_KEYS)[number]) : 'other';
        for (const row of x.rows) row.missedBy[key]++;
      }
    }
  }
  return tallies.map((p) => {
    for (const r of [...p.out.values(), p.total]) r.coveragePct = r.seen ? Math.round((1000 * r.scanned) / r.seen) / 10 : 100;
    // the "(no region)" row only when there was something there: a config whose regions cover its scope reads as before
    const regions = [...p.out.values()].filter((r) => !r.noRegion || r.seen || r.excluded);
    return { from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString(), regions, total: p.total };
  });
}

type Outcome = { kind: 'scanned' | 'skipped' | 'pending' } | { kind: 'missed'; verdict: Verdict; view: BindingView; lastSeen: number };

function emptyCounts(): CoverageCounts {
  return { seen: 0, scanned: 0, coveragePct: 100, pending: 0, skipped: 0, missed: 0, missedBy: Object.fromEntries(MISSED_KEYS.map((k) => [k, 0])) as CoverageCounts['missedBy'], excluded: 0 };
}

/** What the policy reads of a binding last seen at `lastSeen`. */
function viewOf(b: PeriodBinding, lastSeen: number): BindingView {
  return {
    id: b.id, ip: b.ip, identityId: b.identityId, identityKey: '', channel: b.channel, format: '', startAt: b.startAt, lastSeen, renewals: 0,
    lastScannedAt: b.lastScannedAt, lastScannedVia: b.lastScannedVia,
  };
}
