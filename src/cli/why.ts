/**
 * `onsight why <ip|mac|user> [--json]`: one device's history, newest first: its sightings, the
 * scheduler's decisions about it, and the scans that targeted it. Read-only.
 */
import type { Config } from '../config/schema.js';
import type { About, HistoryStore, Inventory } from '../store/types.js';
import { keyHint, parseTarget, type Target } from './target.js';
import { printable, safeJson } from './printable.js';
import { iso, newest, table, withStateView } from './views.js';

export async function whyView(config: Pick<Config, 'state' | 'inventory'>, text: string, json: boolean, limit = 50): Promise<string> {
  const named = parseTarget(text); // a bad argument is a usage error before any state is opened
  const h = await withStateView(config, 'why', (store) => whyHistory(store, named, limit + 1));
  h.sightings = newest(h.sightings, limit, 'sightings');
  h.decisions = newest(h.decisions, limit, 'decisions');
  h.scans = newest(h.scans, limit, 'scan targets');
  if (json) return safeJson(h) + '\n';
  const { target, devices, sightings, decisions, scans } = h;
  if (!devices.length && !sightings.length && !decisions.length && !scans.length) return `nothing known about ${printable(target.value)} (${target.kind === 'user' ? 'user or host name' : target.kind}${printable(keyHint(target))})\n`;
  return [
    `DEVICES (${target.kind} ${printable(target.value)})`,
    table(['IDENTITY', 'MAC', 'USER', 'HOSTNAME', 'LAST SCANNED', 'VIA'], devices.map((d) => [d.identity, d.mac, d.user, d.hostname, d.lastScanned, d.via])),
    'SIGHTINGS',
    table(['AT', 'KIND', 'IP', 'FORMAT', 'SOURCE'], sightings.map((r) => [r.at, r.kind, r.ip, r.format, r.source])),
    'DECISIONS',
    table(['AT', 'IP', 'DECISION', 'WHY'], decisions.map((r) => [r.at, r.ip, r.decision, r.reason])),
    'SCANS',
    table(['INTENT', 'IP', 'REGION', 'APPLIANCE', 'STATE', 'SCAN', 'LAUNCHED', 'ENDED', 'ERROR'], scans.map((r) => [r.intent, r.ip, r.region, r.appliance, r.state, r.scanRef, r.launched, r.ended, r.error])),
  ].join('\n');
}

/** The history `why` prints, as data (also GET /api/why). */
export async function whyHistory(store: { inventory: Pick<Inventory, 'identity'>; history: HistoryStore }, name: string | Target, limit = 50) {
  let target = typeof name === 'string' ? parseTarget(name) : name;
  let ids = await store.history.identitiesNamed(target);
  // a name that is no user's may be a host name (`why lt-a10` said "nothing known about lt-a10 (user)": probe)
  if (!ids.length && target.kind === 'user') {
    const byHost = await store.history.identitiesNamed({ kind: 'hostname', value: target.value });
    if (byHost.length) {
      target = { kind: 'hostname', value: target.value };
      ids = byHost;
    }
  }
  const about: About = { ips: target.kind === 'ip' ? [target.value] : [], identityIds: ids };
  const devices = [];
  for (const id of ids) {
    const i = await store.inventory.identity(id);
    if (i) devices.push({ identity: i.key, mac: i.mac ?? '', user: i.user ?? '', hostname: i.hostname ?? '', lastScanned: iso(i.lastScannedAt), via: i.lastScannedVia ?? '' });
  }
  const sightings = (await store.history.sightingsAbout(about, limit)).map((r) => ({ ...r, at: iso(r.at) }));
  const decisions = (await store.history.decisionsMatching({ about }, limit)).map((d) => ({ at: iso(d.at), ip: d.ip, decision: d.decision, reason: d.reason }));
  const scans = (await store.history.scansTargeting(about, limit)).map((r) => ({
    intent: r.id, ip: r.ip, region: r.region, appliance: r.appliance, state: r.state, scanRef: r.scanRef ?? '', launched: iso(r.launchedAt), ended: iso(r.endedAt), error: r.error ?? '',
  }));
  return { target, devices, sightings, decisions, scans };
}

export interface DecisionFilter {
  ip?: string;
  mac?: string;
  since?: number;
}

/** `onsight decisions --ip/--mac/--since`: the decision log, newest first, filtered. */
export function filteredDecisionsView(config: Pick<Config, 'state' | 'inventory'>, f: DecisionFilter, json: boolean, limit = 1000): Promise<string> {
  return withStateView(config, 'decisions', async (store) => {
    const about = f.mac ? { ips: [], identityIds: await store.history.identitiesNamed({ kind: 'mac', value: f.mac }) } : undefined;
    const rows = newest(await store.history.decisionsMatching({ about, ip: f.ip, since: f.since }, limit + 1), limit, 'decisions').map((d) => ({ at: iso(d.at), ip: d.ip, decision: d.decision, reason: d.reason }));
    if (json) return safeJson(rows) + '\n';
    return table(['AT', 'IP', 'DECISION', 'WHY'], rows.map((r) => [r.at, r.ip, r.decision, r.reason]));
  });
}
