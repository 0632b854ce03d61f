/**
 * `onsight why <ip|mac|user> [--json]`: one device's history, newest first: its sightings, the
 * scheduler's decisions about it, and the scans that targeted it; and NOW, what each of its queued
 * addresses waits for, as far as the store tells. Read-only.
 */
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log.js';
import { ApplianceBook } from '../scheduler/appliances.js';
import { LEARNED_WITH, MAX_AGE_MS, learnedWithOther } from '../scheduler/memory.js';
import type { About, HistoryStore, Intent, Inventory, QueueEntry, SchedulerStore } from '../store/types.js';
import { keyHint, parseTarget, type Target } from './target.js';
import { printable, safeJson } from './printable.js';
import { iso, newest, table, withStateView } from './views.js';

/** the scheduler's limits as configured: with them NOW says which one a ready device waits on (/api/why gets the running config's: daemonView's whyLimits; without them, facts only) */
type Limits = Pick<Config, 'regions' | 'scheduler'> & { scanner?: { type: string } };

export async function whyView(config: Pick<Config, 'state' | 'inventory'> & Limits, text: string, json: boolean, limit = 50): Promise<string> {
  const named = parseTarget(text); // a bad argument is a usage error before any state is opened
  const h = await withStateView(config, 'why', (store) => whyHistory(store, named, limit + 1, config));
  h.sightings = newest(h.sightings, limit, 'sightings');
  h.decisions = newest(h.decisions, limit, 'decisions');
  h.scans = newest(h.scans, limit, 'scan targets');
  if (json) return safeJson(h) + '\n';
  const { target, devices, sightings, decisions, scans, now } = h;
  if (!devices.length && !sightings.length && !decisions.length && !scans.length && !now.length) return `nothing known about ${printable(target.value)} (${target.kind === 'user' ? 'user or host name' : target.kind}${printable(keyHint(target))})\n`;
  return [
    `DEVICES (${target.kind} ${printable(target.value)})`,
    table(['IDENTITY', 'MAC', 'USER', 'HOSTNAME', 'LAST SCANNED', 'VIA'], devices.map((d) => [d.identity, d.mac, d.user, d.hostname, d.lastScanned, d.via])),
    ...(now.length ? ['NOW', table(['IP', 'DEVICE', 'WHAT'], now.map((n) => [n.ip, n.identity, n.text]))] : []),
    'SIGHTINGS',
    table(['AT', 'KIND', 'IP', 'FORMAT', 'SOURCE'], sightings.map((r) => [r.at, r.kind, r.ip, r.format, r.source])),
    'DECISIONS',
    table(['AT', 'IP', 'DECISION', 'WHY'], decisions.map((r) => [r.at, r.ip, r.decision, r.reason])),
    'SCANS',
    table(['INTENT', 'IP', 'REGION', 'APPLIANCE', 'STATE', 'SCAN', 'LAUNCHED', 'ENDED', 'ERROR'], scans.map((r) => [r.intent, r.ip, r.region, r.appliance, r.state, r.scanRef, r.launched, r.ended, r.error])),
  ].join('\n');
}

type WhyStore = { inventory: Pick<Inventory, 'identity'>; history: HistoryStore; scheduler: Pick<SchedulerStore, 'activeIntents' | 'intent'> };

/** The history `why` prints, as data (also GET /api/why). */
export async function whyHistory(store: WhyStore, name: string | Target, limit = 50, limits?: Limits) {
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
  const keys = new Map<number, string>();
  for (const id of ids) {
    const i = await store.inventory.identity(id);
    if (i) devices.push({ identity: i.key, mac: i.mac ?? '', user: i.user ?? '', hostname: i.hostname ?? '', lastScanned: iso(i.lastScannedAt), via: i.lastScannedVia ?? '' });
    if (i) keys.set(id, i.key);
  }
  const sightings = (await store.history.sightingsAbout(about, limit)).map((r) => ({ ...r, at: iso(r.at) }));
  const decisions = (await store.history.decisionsMatching({ about }, limit)).map((d) => ({ at: iso(d.at), ip: d.ip, decision: d.decision, reason: d.reason }));
  const scans = (await store.history.scansTargeting(about, limit)).map((r) => ({
    intent: r.id, ip: r.ip, region: r.region, appliance: r.appliance, state: r.state, scanRef: r.scanRef ?? '', launched: iso(r.launchedAt), ended: iso(r.endedAt), error: r.error ?? '',
  }));
  const now = await nowOf(store, about, keys, limits, Date.now());
  return { target, devices, sightings, decisions, scans, now };
}

/** A scan in flight, as NOW names it. */
interface ScanRef {
  intent: string;
  scanRef: string;
  appliance: string;
  state: string;
  launched: string;
  ended: string;
}

/**
 * One address's present state (`why`'s NOW, `now` in --json and /api/why). `state`: queued (waits
 * for a launch), launching or scanning (a scan of ours is in flight with it), confirming (its scan
 * ended; the credit waits for the scanner's host list), target (named by a scan in flight that no
 * longer holds its queue entry). `waitsFor`: what holds a queued one back, only where the store
 * (and the config's limits) can tell.
 */
export interface NowRow {
  ip: string;
  identity: string;
  region: string;
  state: 'queued' | 'launching' | 'scanning' | 'confirming' | 'target';
  queuedSince: string;
  notBefore: string;
  attempts: number;
  scan?: ScanRef;
  waitsFor?: { kind: 'not-before' | 'running-scans' | 'region-scans' | 'appliance-slots'; scans?: ScanRef[]; appliances?: { name: string; why: string }[] };
  text: string;
}

const scanRefOf = (i: Intent): ScanRef => ({ intent: i.id, scanRef: i.scanRef ?? '', appliance: i.appliance, state: i.state, launched: iso(i.launchedAt), ended: iso(i.endedAt) });

/** "scan/42 on appliance a (launched …)", or an intent whose launch call has not answered yet */
const inFlight = (i: Intent) => i.state === 'running'
  ? `${i.scanRef ?? i.id} on appliance ${i.appliance} (launched ${iso(i.launchedAt)})`
  : `intent ${i.id} on appliance ${i.appliance} (being launched since ${iso(i.createdAt)})`;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

async function nowOf(store: WhyStore, about: About, keys: Map<number, string>, limits: Limits | undefined, at: number): Promise<NowRow[]> {
  const entries = await store.history.queuedFor(about.identityIds);
  const active = await store.scheduler.activeIntents();
  const byId = new Map(active.map((i) => [i.id, i]));
  const slots = lazy(() => savedSlots(store.history, at, limits?.scanner?.type));
  const rows: NowRow[] = [];
  for (const q of entries) {
    const base = { ip: q.ip, identity: keys.get(q.identityId) ?? String(q.identityId), region: q.region, queuedSince: iso(q.dueSince), notBefore: q.notBefore ? iso(q.notBefore) : '', attempts: q.attempts };
    if (q.intentId) {
      const i = byId.get(q.intentId) ?? (await store.scheduler.intent(q.intentId));
      if (!i) rows.push({ ...base, state: 'confirming', text: `under scan intent ${q.intentId}, which the store no longer holds` });
      else if (i.state === 'running') rows.push({ ...base, state: 'scanning', scan: scanRefOf(i), text: `scanning in ${i.scanRef ?? i.id} on appliance ${i.appliance} since ${iso(i.launchedAt)} (queued since ${base.queuedSince})` });
      else if (i.state === 'launching') rows.push({ ...base, state: 'launching', scan: scanRefOf(i), text: `being launched on appliance ${i.appliance} since ${iso(i.createdAt)} (intent ${i.id}, no scan reference yet)` });
      // a finished scan keeps its targets' entries until the host list confirms them (verifyResults)
      else if (i.state === 'finished') rows.push({ ...base, state: 'confirming', scan: scanRefOf(i), text: `confirming: scan ${i.scanRef ?? i.id} on appliance ${i.appliance} ended ${iso(i.endedAt)}, waiting for the scanner's host list` });
      // (an ended scan releases its entries: `hosts` and the status count one still under it as confirming too)
      else rows.push({ ...base, state: 'confirming', scan: scanRefOf(i), text: `under scan ${i.scanRef ?? i.id} on appliance ${i.appliance}, ${i.state} ${iso(i.endedAt)}` });
      continue;
    }
    rows.push({ ...base, state: 'queued', ...await waiting(q, active, limits, slots, at) });
  }
  // a scan in flight naming the device without holding its entry (the scanner left it out, say)
  const held = new Set(entries.filter((q) => q.intentId).map((q) => `${q.intentId}|${q.bindingId}`));
  for (const t of await store.history.activeTargetsOf(about.identityIds)) {
    const i = byId.get(t.intentId);
    if (!i || held.has(`${i.id}|${t.bindingId}`)) continue;
    const queued = entries.some((q) => q.bindingId === t.bindingId);
    rows.push({
      ip: t.ip, identity: keys.get(t.identityId) ?? String(t.identityId), region: i.region, state: 'target', queuedSince: '', notBefore: '', attempts: 0, scan: scanRefOf(i),
      text: `a target of scan ${inFlight(i)}, which no longer holds its queue entry (${queued ? 'queued again' : 'not in the queue'})`,
    });
  }
  return rows.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
}

function lazy<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}

/**
 * What holds a queued entry back, in the order the launch pass checks (launch.ts launchReady): its
 * not-before time, the scans at once across regions, the region's, then its appliances' slots.
 * A range run's hold, the call budget, a cancel draining and the regions' turns live in the
 * daemon's memory: then only what the store holds is said.
 */
async function waiting(q: QueueEntry, active: Intent[], limits: Limits | undefined, slots: () => Promise<SavedSlots | undefined>, at: number): Promise<Pick<NowRow, 'waitsFor' | 'text'>> {
  const base = `queued since ${iso(q.dueSince)} in region ${q.region}`;
  if (q.notBefore > at) {
    return { waitsFor: { kind: 'not-before' }, text: `${base}: held until ${iso(q.notBefore)}${q.attempts ? ` (after ${plural(q.attempts, 'failed attempt')})` : ''}` };
  }
  const region = limits?.regions.find((r) => r.name === q.region);
  const ours = active.filter((i) => i.region === q.region);
  const max = limits?.scheduler.maxRunningScans;
  if (max !== undefined && active.length >= max) {
    return { waitsFor: { kind: 'running-scans', scans: active.map(scanRefOf) }, text: `${base}: waiting for one of onsight's ${plural(active.length, 'scan')} in flight to end (scheduler.maxRunningScans ${max})` };
  }
  if (region && ours.length >= region.maxConcurrentScans) {
    return {
      waitsFor: { kind: 'region-scans', scans: ours.map(scanRefOf) },
      text: `${base}: waiting for the region's running ${ours.length === 1 ? 'scan' : 'scans'} ${ours.map(inFlight).join('; ')}${region.maxConcurrentScans > 1 ? ` (maxConcurrentScans ${region.maxConcurrentScans})` : ''}`,
    };
  }
  if (region) {
    const s = await slots();
    const full = s ? s.full(region.appliances, active) : [];
    if (s && full.length === region.appliances.length) {
      return { waitsFor: { kind: 'appliance-slots', appliances: full }, text: `${base}: waiting for a free slot on ${full.map((f) => `${f.name} (${f.why})`).join(', ')}, by the scheduler's appliance state saved ${iso(s.savedAt)}` };
    }
  }
  const known = !limits ? '' : !region ? ` (region ${q.region} is not in the config read)` : '';
  const flying = ours.length ? `; the region's ${ours.length === 1 ? 'scan' : 'scans'} in flight: ${ours.map(inFlight).join('; ')}` : '';
  return { text: `${base}${known}${flying}; the store does not tell what it waits for` };
}

interface SavedSlots {
  savedAt: number;
  /** the appliances with no room for another scan of ours, and why */
  full(appliances: { name: string; maxScans: number }[], active: Intent[]): { name: string; why: string }[];
}

/**
 * The appliances' slots as the scheduler last saved them (scheduler/memory.ts part `appliances`,
 * read back as a restarted scheduler would): the capacity it learned, and others' load and
 * whether each is online from its last appliance list when that list is kept (saved within 15 min).
 * Undefined when nothing readable is saved.
 */
async function savedSlots(history: Pick<HistoryStore, 'learnedRows'>, at: number, scannerKind: string | undefined): Promise<SavedSlots | undefined> {
  const rows = await history.learnedRows(['appliances', LEARNED_WITH]);
  const rec = rows.find((r) => r.name === 'appliances');
  // (as the scheduler reads it back: not one saved too long ago, nor one learned with another scanner)
  if (!rec || at - rec.savedAt > MAX_AGE_MS) return undefined;
  if (scannerKind !== undefined && learnedWithOther(rows, scannerKind) !== undefined) return undefined;
  const book = new ApplianceBook(silentLogger());
  try {
    if (book.merge(JSON.parse(rec.state), at) === undefined) return undefined;
  } catch {
    return undefined; // not JSON: nothing said from it
  }
  // (a list asked for again is read again before any launch: not what the scheduler goes by)
  const listed = !book.mustRead();
  return {
    savedAt: rec.savedAt,
    full(appliances, active) {
      const out: { name: string; why: string }[] = [];
      for (const ap of appliances) {
        const cap = book.capacity(ap.name, ap.maxScans, at);
        const ours = active.filter((i) => i.appliance === ap.name).length;
        // our own scans in flight fill it whatever the list: else only a kept list tells
        if (ours >= cap) out.push({ name: ap.name, why: `${ours} of ours running, room for ${cap}` });
        else if (listed && book.covers([{ name: '', appliances: [ap] }])) {
          const l = book.load(ap.name, active);
          if (!l.online) out.push({ name: ap.name, why: 'offline or not in the scanner\'s list' });
          else if (l.load >= cap) out.push({ name: ap.name, why: `busy ${l.load}/${cap}, ${l.ours} of them ours` });
        }
      }
      return out;
    },
  };
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
