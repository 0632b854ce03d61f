/** `onsight hosts|queue|scans [--json]`: the state, as readable tables or JSON. Read-only. */
import { openDatabaseReadOnly } from '../store/db.js';
import { SqliteInventory } from '../inventory/inventory.js';
import { Policy } from '../policy/policy.js';
import { SqliteSchedulerStore } from '../scheduler/queue.js';
import { OperatorMarks } from '../scheduler/marks.js';
import type { Config } from '../config/schema.js';
import { printable, safeJson } from './printable.js';
import { sqliteStatePath } from '../cluster/config.js';

export function table(headers: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map((c) => printable(c ?? '')));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

export const iso = (ms?: number | null) => (ms === undefined || ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));

export interface ViewContext {
  config: Config;
  now: number;
}

function open(config: Config) {
  const db = openDatabaseReadOnly(sqliteStatePath(config.state, 'this view')); // a view never creates or migrates state
  const inventory = new SqliteInventory(db, { defaultLeaseS: config.inventory.defaultLeaseS, maxSessionS: config.inventory.maxSessionS, retentionS: config.inventory.retention, linkHostnames: config.inventory.linkHostnames, linkHostPatterns: config.inventory.linkHostPatterns });
  const policy = new Policy({ scope: config.policy.scope, exclude: config.policy.exclude, rescanAfter: config.policy.rescanAfter, rescanLead: config.policy.rescanLead, rules: config.policy.rules, regions: config.regions, timezone: config.timezone });
  const store = new SqliteSchedulerStore(db);
  return { db, inventory, policy, store, marks: new OperatorMarks(store) };
}

export async function hostsView({ config, now }: ViewContext, json: boolean): Promise<string> {
  const { db, inventory, policy, store, marks } = open(config);
  try {
    const droppedByScanner = await store.lastDroppedByScanner();
    const rows = [];
    for (const b of await inventory.presentBindings(now)) {
      const v = await marks.adjust(policy.evaluate(b, now), b, now, (region) => policy.windowOpen(region, now)); // onsight rescan / skip
      const q = await store.queued(b.id);
      // the scanner left it out of its last scan (outside its subscription, say) and it has not been scanned since
      const d = droppedByScanner.get(`${b.ip}|${b.identityId}`);
      const dropped = d && !q?.intentId && v.due && (b.lastScannedAt === undefined || b.lastScannedAt < d.at);
      rows.push({
        ip: b.ip, mac: b.mac, user: b.user, hostname: b.hostname, identity: b.identityKey, channel: b.channel, format: b.format,
        since: iso(b.startAt), expires: iso(b.expiresAt), region: v.region, lastScanned: iso(b.lastScannedAt),
        status: dropped ? 'dropped-by-scanner' : q ? (q.intentId ? 'scanning' : 'queued') : v.due ? 'due' : v.reason, why: dropped ? d.reason : v.detail,
      });
    }
    if (json) return safeJson(rows) + '\n';
    return table(['IP', 'DEVICE', 'HOSTNAME', 'REGION', 'SINCE', 'LAST SCANNED', 'STATUS', 'WHY'],
      rows.map((r) => [r.ip, r.mac ?? r.user ?? r.identity, r.hostname ?? '', r.region ?? '', r.since, r.lastScanned, r.status, r.why]));
  } finally {
    db.close();
  }
}

export async function queueView({ config }: ViewContext, json: boolean): Promise<string> {
  const { db, store } = open(config);
  try {
    const rows = (await store.allQueued()).map((q) => ({
      ip: q.ip, region: q.region, dueSince: iso(q.dueSince), lastSeen: iso(q.lastSeen), attempts: q.attempts,
      notBefore: q.notBefore ? iso(q.notBefore) : '', intent: q.intentId ?? '',
    }));
    if (json) return safeJson(rows) + '\n';
    return table(['IP', 'REGION', 'DUE SINCE', 'LAST SEEN', 'ATTEMPTS', 'NOT BEFORE', 'INTENT'],
      rows.map((r) => [r.ip, r.region, r.dueSince, r.lastSeen, String(r.attempts), r.notBefore, r.intent]));
  } finally {
    db.close();
  }
}

export async function scansView({ config }: ViewContext, json: boolean): Promise<string> {
  const { db, store } = open(config);
  try {
    const rows = [];
    for (const i of await store.recentIntents(200)) {
      rows.push({
        intent: i.id, region: i.region, appliance: i.appliance, state: i.state, scanRef: i.scanRef ?? '',
        created: iso(i.createdAt), launched: iso(i.launchedAt), ended: iso(i.endedAt), targets: (await store.targets(i.id)).map((t) => t.ip), error: i.error ?? '',
      });
    }
    if (json) return safeJson(rows) + '\n';
    return table(['INTENT', 'REGION', 'APPLIANCE', 'STATE', 'SCAN', 'LAUNCHED', 'ENDED', 'TARGETS'],
      rows.map((r) => [r.intent, r.region, r.appliance, r.state, r.scanRef, r.launched, r.ended, r.targets.length > 3 ? `${r.targets.slice(0, 3).join(',')} +${r.targets.length - 3}` : r.targets.join(',')]));
  } finally {
    db.close();
  }
}

export async function decisionsView({ config }: ViewContext, json: boolean, limit = 100): Promise<string> {
  const { db, store } = open(config);
  try {
    const rows = (await store.recentDecisions(limit)).map((d) => ({ at: iso(d.at), ip: d.ip, decision: d.decision, reason: d.reason }));
    if (json) return safeJson(rows) + '\n';
    return table(['AT', 'IP', 'DECISION', 'WHY'], rows.map((r) => [r.at, r.ip, r.decision, r.reason]));
  } finally {
    db.close();
  }
}
