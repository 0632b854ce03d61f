/**
 * Coverage over a period, per region, keyed by device (identity), never by address: the devices
 * seen in the region, those scanned within policy (a scan no older than their rescan window when
 * last seen in the period, or during or after that presence), those still present and not yet
 * scanned (pending), those an operator skipped, and those that left unscanned (missed) by reason
 * (src/coverage/missed.ts). Addresses in a region's CIDRs but out of scope or excluded are counted
 * apart. Read-only SQL over the state file; scans are the decision log's `scanned` entries (it
 * keeps the last 100 000 decisions) and each device's last scan.
 */
import type { DB } from '../store/db.js';
import type { Policy } from '../policy/policy.js';
import type { BindingView } from '../inventory/inventory.js';
import { applyMark, type OperatorMark } from '../scheduler/marks.js';
import type { Decision, DecisionKind } from '../scheduler/queue.js';
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
  db: DB;
  policy: Policy;
  marks: Map<number, OperatorMark>;
  from: number;
  to: number;
  /** now (a binding open at `to` with no end is present) */
  now: number;
  region?: string;
}

interface BindingRow {
  id: number; ip: string; identity_id: number; start_at: number; expires_at: number | null; end_at: number | null; end_reason: string | null;
  channel: 'dhcp' | 'vpn'; last_scanned_at: number | null; last_scanned_via: string | null;
}

interface Seen {
  region: string;
  identityId: number;
  /** its last moment in the period */
  lastSeen: number;
  /** the binding it was last seen on */
  last: BindingRow;
  present: boolean;
}

export function coverageReport(q: CoverageQuery): CoverageReport {
  const { db, policy, from, to, now } = q;
  const rows = db.prepare(`SELECT b.id, b.ip, b.identity_id, b.start_at, b.expires_at, b.end_at, b.end_reason, b.channel, i.last_scanned_at, i.last_scanned_via
    FROM bindings b JOIN identities i ON i.id = b.identity_id
    WHERE b.start_at < @to AND coalesce(b.end_at, b.expires_at, @now) >= @from`).all({ from, to, now }) as BindingRow[];
  const regionNames = policy.regions.regions.map((r) => r.name).filter((n) => q.region === undefined || n === q.region);
  const out = new Map<string, CoverageRow>(regionNames.map((name) => [name, {
    region: name, seen: 0, scanned: 0, coveragePct: 100, pending: 0, skipped: 0, missed: 0,
    missedBy: Object.fromEntries(MISSED_KEYS.map((k) => [k, 0])) as CoverageRow['missedBy'], excluded: 0,
  }]));
  const seen = new Map<string, Seen>();
  const excluded = new Map<string, Set<number>>();
  for (const b of rows) {
    const m = policy.regions.lookup(b.ip);
    if (!m || !out.has(m.region.name)) continue;
    const region = m.region.name;
    if (!policy.allowed(b.ip)) {
      let s = excluded.get(region);
      if (!s) excluded.set(region, (s = new Set()));
      s.add(b.identity_id);
      continue;
    }
    const left = b.end_at ?? (b.expires_at !== null && b.expires_at < now ? b.expires_at : undefined);
    const lastSeen = Math.min(to, left ?? now);
    const key = `${region}|${b.identity_id}`;
    const cur = seen.get(key);
    if (!cur || lastSeen > cur.lastSeen) seen.set(key, { region, identityId: b.identity_id, lastSeen, last: b, present: left === undefined || left > to });
    else if (left === undefined || left > to) cur.present = true;
  }
  for (const [region, ids] of excluded) out.get(region)!.excluded = ids.size;

  // every scan a device had up to the period's end (rescan windows reach back before the period)
  const scans = new Map<number, number[]>();
  for (const r of db.prepare(`SELECT identity_id, at FROM decisions WHERE decision = 'scanned' AND identity_id IS NOT NULL AND at <= ?`).all(to) as { identity_id: number; at: number }[]) {
    const l = scans.get(r.identity_id);
    if (l) l.push(r.at);
    else scans.set(r.identity_id, [r.at]);
  }
  const decisions = new DecisionIndex((db.prepare('SELECT at, ip, identity_id, decision, reason FROM decisions WHERE at >= ? AND at <= ? ORDER BY id')
    .all(from - 7 * 86400_000, to) as { at: number; ip: string; identity_id: number | null; decision: DecisionKind; reason: string }[])
    .map((r): Decision => ({ at: r.at, ip: r.ip, identityId: r.identity_id ?? undefined, decision: r.decision, reason: r.reason })));

  for (const s of seen.values()) {
    const row = out.get(s.region)!;
    row.seen++;
    const b = s.last;
    const window = policy.rescanAfterS(b.ip, s.region) * 1000;
    const times = scans.get(s.identityId) ?? [];
    if (b.last_scanned_at !== null && b.last_scanned_at <= to) times.push(b.last_scanned_at);
    if (times.some((t) => t >= s.lastSeen - window && t <= to)) {
      row.scanned++;
      continue;
    }
    const view: BindingView = {
      id: b.id, ip: b.ip, identityId: b.identity_id, identityKey: '', channel: b.channel, format: '', startAt: b.start_at, lastSeen: s.lastSeen, renewals: 0,
      lastScannedAt: b.last_scanned_at ?? undefined, lastScannedVia: b.last_scanned_via ?? undefined,
    };
    const verdict = applyMark(q.marks.get(s.identityId), policy.evaluate(view, s.lastSeen), view, s.lastSeen, (r) => policy.windowOpen(r, s.lastSeen));
    if (verdict.reason === 'skipped') row.skipped++;
    else if (s.present) row.pending++;
    else {
      row.missed++;
      const why = missedReason(verdict.reason === 'outside-scan-window' ? verdict : { ...verdict, reason: 'due' }, decisions.last({ view, endAt: s.lastSeen, presentElsewhere: false })).key;
      row.missedBy[(MISSED_KEYS as readonly string[]).includes(why) ? (why as (typeof MISSED_KEYS)[number]) : 'other']++;
    }
  }
  for (const r of out.values()) r.coveragePct = r.seen ? Math.round((1000 * r.scanned) / r.seen) / 10 : 100;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), regions: [...out.values()] };
}
