/** `onsight hosts|queue|scans|decisions [--json]`: the state (SQLite or PostgreSQL), as readable tables or JSON. Read-only. */
import { applyMark, OperatorMarks } from '../scheduler/marks.js';
import type { Config } from '../config/schema.js';
import { policyFor } from '../config/derive.js';
import { asView, openStateFor } from '../store/open.js';
import { changedSinceOpened, type DB } from '../store/db.js';
import type { Store } from '../store/types.js';
import { OnsightError } from '../errors.js';
import { printable, safeJson } from './printable.js';

export function table(headers: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map((c) => printable(c ?? '')));
  // (a loop, not Math.max(...rows): spread as arguments, some 125,000 rows overflowed the stack)
  const widths = headers.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i], (r[i] ?? '').length);
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The newest `limit` of `rows` (fetched as limit + 1): when there were more, says so on stderr, so
 * that a cut list is never taken for the whole (decisions, scans and why printed a fixed number
 * silently: 100 of 1,325 decisions).
 */
export function newest<T>(rows: T[], limit: number, what: string): T[] {
  if (rows.length <= limit) return rows;
  process.stderr.write(`onsight: the newest ${limit} ${what} shown, more are recorded (--limit N shows more)\n`);
  return rows.slice(0, limit);
}

export const iso = (ms?: number | null) => (ms === undefined || ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));

export interface ViewContext {
  config: Config;
  now: number;
}

/** Run `fn` on the state opened for reading (SQLite read-only; PostgreSQL in one read-only transaction), closed after. */
export async function withStateView<T>(config: Pick<Config, 'state' | 'inventory'>, what: string, fn: (store: Store) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const store = await openStateFor(config, 'read', what); // a view never creates or migrates state
    let result: { value: T } | { err: unknown };
    try {
      result = { value: await asView(store, () => fn(store)) };
    } catch (err) {
      result = { err };
    }
    // a stopped daemon's state read as it stands (a reading user) and written meanwhile: read again
    const changed = store.kind === 'sqlite' && changedSinceOpened((store as Store & { db: DB }).db);
    await store.close();
    if (changed && attempt < 3) continue;
    if (changed) throw new OnsightError('ONSIGHT_STORE', `the state database ${String(config.state)} was written during each of 3 reads (onsight skip or rescan, or the daemon starting): run the view again`);
    if ('err' in result) throw result.err;
    return result.value;
  }
}

export function hostsView({ config, now }: ViewContext, json: boolean): Promise<string> {
  return withStateView(config, 'hosts', async ({ inventory, scheduler: store }) => {
    const policy = policyFor(config);
    // the queue and the marks read once, not once per device (a round trip each on PostgreSQL)
    const marks = await new OperatorMarks(store).all();
    const queue = new Map((await store.allQueued()).map((q) => [q.bindingId, q]));
    const droppedByScanner = await store.lastDroppedByScanner();
    // a target stays queued under its scan's intent after the scan finished, until the host list
    // confirms the host was found (verifyResults): "confirming", not "scanning" (as the status counts it)
    const inFlight = new Set((await store.activeIntents()).map((i) => i.id));
    const ended = (intentId: string | undefined) => intentId !== undefined && !inFlight.has(intentId);
    const rows = [];
    for (const b of await inventory.presentBindings(now)) {
      const v = applyMark(marks.get(b.identityId), policy.evaluate(b, now), b, now, (region) => policy.windowOpen(region, now)); // onsight rescan / skip
      const q = queue.get(b.id);
      // the scanner left it out of its last scan (outside its subscription, say) and it has not been scanned since
      const d = droppedByScanner.get(`${b.ip}|${b.identityId}`);
      const dropped = d && !q?.intentId && v.due && (b.lastScannedAt === undefined || b.lastScannedAt < d.at);
      rows.push({
        ip: b.ip, mac: b.mac, user: b.user, hostname: b.hostname, identity: b.identityKey, channel: b.channel, format: b.format,
        since: iso(b.startAt), expires: iso(b.expiresAt), region: v.region, lastScanned: iso(b.lastScannedAt),
        status: dropped ? 'dropped-by-scanner' : q ? (q.intentId ? (ended(q.intentId) ? 'confirming' : 'scanning') : 'queued') : v.due ? 'due' : v.reason,
        why: dropped ? d.reason : ended(q?.intentId) ? `its scan ended; waiting for the scanner's host list to confirm it was found (${v.detail})` : v.detail,
      });
    }
    if (json) return safeJson(rows) + '\n';
    return table(['IP', 'DEVICE', 'HOSTNAME', 'REGION', 'SINCE', 'LAST SCANNED', 'STATUS', 'WHY'],
      rows.map((r) => [r.ip, r.mac ?? r.user ?? r.identity, r.hostname ?? '', r.region ?? '', r.since, r.lastScanned, r.status, r.why]));
  });
}

export function queueView({ config }: ViewContext, json: boolean): Promise<string> {
  return withStateView(config, 'queue', async ({ scheduler: store }) => {
    const rows = (await store.allQueued()).map((q) => ({
      ip: q.ip, region: q.region, dueSince: iso(q.dueSince), lastSeen: iso(q.lastSeen), attempts: q.attempts,
      notBefore: q.notBefore ? iso(q.notBefore) : '', intent: q.intentId ?? '',
    }));
    if (json) return safeJson(rows) + '\n';
    return table(['IP', 'REGION', 'DUE SINCE', 'LAST SEEN', 'ATTEMPTS', 'NOT BEFORE', 'INTENT'],
      rows.map((r) => [r.ip, r.region, r.dueSince, r.lastSeen, String(r.attempts), r.notBefore, r.intent]));
  });
}

export function scansView({ config }: ViewContext, json: boolean, limit = 200): Promise<string> {
  return withStateView(config, 'scans', async ({ scheduler: store }) => {
    const rows = [];
    for (const i of newest(await store.recentIntents(limit + 1), limit, 'scans')) {
      rows.push({
        intent: i.id, region: i.region, appliance: i.appliance, state: i.state, scanRef: i.scanRef ?? '',
        created: iso(i.createdAt), launched: iso(i.launchedAt), ended: iso(i.endedAt), targets: (await store.targets(i.id)).map((t) => t.ip), error: i.error ?? '',
      });
    }
    if (json) return safeJson(rows) + '\n';
    return table(['INTENT', 'REGION', 'APPLIANCE', 'STATE', 'SCAN', 'LAUNCHED', 'ENDED', 'TARGETS'],
      rows.map((r) => [r.intent, r.region, r.appliance, r.state, r.scanRef, r.launched, r.ended, r.targets.length > 3 ? `${r.targets.slice(0, 3).join(',')} +${r.targets.length - 3}` : r.targets.join(',')]));
  });
}

export function decisionsView({ config }: ViewContext, json: boolean, limit = 100): Promise<string> {
  return withStateView(config, 'decisions', async ({ scheduler: store }) => {
    const rows = newest(await store.recentDecisions(limit + 1), limit, 'decisions').map((d) => ({ at: iso(d.at), ip: d.ip, decision: d.decision, reason: d.reason }));
    if (json) return safeJson(rows) + '\n';
    return table(['AT', 'IP', 'DECISION', 'WHY'], rows.map((r) => [r.at, r.ip, r.decision, r.reason]));
  });
}
