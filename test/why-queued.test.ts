/**
 * `onsight why` says what a device's queued address waits for now (NOW, `now` in --json and
 * /api/why), from the store alone: the region's running scan it waits behind, the scan it is in,
 * the host list its ended scan waits for, a hold until a time, the appliances' saved slots; and
 * where the store cannot tell, only what it knows. Real SQLite file (held open, as by a running
 * daemon), the real CLI; the store read (HistoryStore.queuedFor) and NOW also on PostgreSQL.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { whyHistory, type NowRow } from '../src/cli/why.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/types.js';
import type { Sighting } from '../src/sighting.js';
import { CLI } from './helpers/paths.js';
import { STORE_KINDS } from './helpers/stores.js';

const OPTS = { defaultLeaseS: 7200, maxSessionS: 86400, retentionS: 86400 * 90 };
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
const dirs: string[] = [];
const tmp = (what: string) => {
  const d = mkdtempSync(join(tmpdir(), `onsight-why-queued-${what}-`));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configFile(state: string): string {
  const cfg = join(tmp('cfg'), 'onsight.yaml');
  writeFileSync(cfg, [
    `state: ${state}`, 'timezone: UTC', 'policy: { scope: ["10.0.0.0/8"] }', 'http: { enabled: false }', 'regions:',
    '  - { name: r, cidrs: ["10.0.0.0/16"], appliances: [a] }',
    '  - { name: r2, cidrs: ["10.1.0.0/16"], appliances: [{ name: b, maxScans: 1 }], maxConcurrentScans: 2 }',
    '  - { name: r3, cidrs: ["10.2.0.0/16"], appliances: [c] }',
    '  - { name: r4, cidrs: ["10.3.0.0/16"], appliances: [d] }', '',
  ].join('\n'));
  return cfg;
}

/** the times the assertions name */
interface Times { due: number; launched: number; ended: number; held: number; saved: number }

/**
 * 10.0.0.5 queued in r while r's one scan (scan/42, 10.0.0.6) runs; 10.0.0.7's scan/41 ended and
 * awaits the host list; 10.0.0.8 back after a failed scan, held an hour; 10.1.0.5 queued in r2
 * (two scans at once) whose only appliance b the scheduler saved as full at 1, with our scan/50 on
 * it; 10.2.0.5 queued in r3, nothing running there; 10.3.0.5 taken back from its running scan/70
 * (as a target the scanner left out is), held an hour; 10.0.0.9 present, not queued.
 */
async function populate(store: Store, now: number): Promise<Times> {
  const t: Times = { due: now - 300_000, launched: now - 240_000, ended: now - 60_000, held: now + 3_600_000, saved: now - 120_000 };
  const lease = (ip: string, n: string): Sighting => ({ kind: 'lease', ip, mac: `52:54:00:00:00:${n}`, at: new Date(now - 600_000).toISOString(), format: 'isc-dhcpd', source: 't', durationS: 7200 }) as Sighting;
  const ips = ['10.0.0.5', '10.0.0.6', '10.0.0.7', '10.0.0.8', '10.1.0.5', '10.1.0.6', '10.2.0.5', '10.3.0.5', '10.0.0.9'];
  const res = await store.inventory.commitBatch(ips.map((ip, k) => lease(ip, String(k + 10))), undefined, now);
  const b = new Map(ips.map((ip, k) => [ip, { ip, bindingId: res[k].bindingId!, identityId: res[k].identityId! }]));
  const sch = store.scheduler;
  for (const ip of ips.slice(0, 8)) await sch.enqueue({ ...b.get(ip)!, region: ['r', 'r2', 'r3', 'r4'][Number(ip.split('.')[1])], dueSince: t.due });
  const scan = async (id: string, region: string, appliance: string, ip: string, ref: string) => {
    await sch.createIntent({ id, region, appliance, createdAt: t.launched - 1000 }, [b.get(ip)!]);
    expect(await sch.setRunning(id, ref, t.launched)).toBe(true);
  };
  await scan('i-ended', 'r', 'a', '10.0.0.7', 'scan/41');
  expect(await sch.finishKeeping('i-ended', t.ended, new Set([b.get('10.0.0.7')!.bindingId]))).toBe(true);
  await scan('i-fail', 'r', 'a', '10.0.0.8', 'scan/40');
  expect(await sch.endIntent('i-fail', 'error', t.ended, 'scan failed', { notBefore: t.held, countAttempt: true })).toBe(true);
  await scan('i-run', 'r', 'a', '10.0.0.6', 'scan/42');
  await scan('i-b', 'r2', 'b', '10.1.0.6', 'scan/50');
  await scan('i-d', 'r4', 'd', '10.3.0.5', 'scan/70');
  expect(await sch.releaseTarget(b.get('10.3.0.5')!.bindingId, { notBefore: t.held, countAttempt: true }, 'i-d')).toBe(true);
  // as the scheduler saves what it learned (scheduler/memory.ts part `appliances`): b seen full at 1 two minutes ago
  await sch.saveLearned([{ name: 'appliances', savedAt: t.saved, state: JSON.stringify({ slots: { b: { seen: 1, full: { scans: 1, at: t.saved } } }, othersSince: {} }) }]);
  return t;
}

describe('onsight why: what a queued device waits for (NOW)', () => {
  it('through the real CLI on a SQLite file a daemon holds open', async () => {
    const dir = tmp('state');
    const state = join(dir, 'state.db');
    const store = openSqliteStore(state, OPTS);
    try {
      const t = await populate(store, Date.now());
      const cfg = configFile(state);
      const why = (who: string) => {
        const r = run('why', who, '--config', cfg);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        return r.stdout;
      };
      const queued = `queued since ${iso(t.due)} in region`;
      // waits behind the region's one running scan
      const behind = why('10.0.0.5');
      expect(behind).toContain('\nNOW\n');
      expect(behind).toContain(`${queued} r: waiting for the region's running scan scan/42 on appliance a (launched ${iso(t.launched)})`);
      // by MAC too: its scan has ended, its credit waits for the host list
      expect(why('52:54:00:00:00:12')).toContain(`confirming: scan scan/41 on appliance a ended ${iso(t.ended)}, waiting for the scanner's host list`);
      expect(why('10.0.0.6')).toContain(`scanning in scan/42 on appliance a since ${iso(t.launched)} (queued since ${iso(t.due)})`);
      expect(why('10.0.0.8')).toContain(`${queued} r: held until ${iso(t.held)} (after 1 failed attempt)`);
      expect(why('10.1.0.5')).toContain(`${queued} r2: waiting for a free slot on b (1 of ours running, room for 1), by the scheduler's appliance state saved ${iso(t.saved)}`);
      // nothing the store holds explains the wait: said so, no cause made up
      const unknown = why('10.2.0.5');
      expect(unknown).toContain(`${queued} r3; the store does not tell what it waits for`);
      expect(unknown).not.toContain('waiting for');
      // in a scan in flight that gave its entry back: both said
      const back = why('10.3.0.5');
      expect(back).toContain(`${queued} r4: held until ${iso(t.held)} (after 1 failed attempt)`);
      expect(back).toContain(`a target of scan scan/70 on appliance d (launched ${iso(t.launched)}), which no longer holds its queue entry (queued again)`);
      expect(why('10.0.0.9')).not.toContain('NOW');

      const j = run('why', '10.0.0.5', '--json', '--config', cfg);
      expect(j.status).toBe(0);
      const doc = JSON.parse(j.stdout) as { devices: unknown[]; sightings: unknown[]; decisions: unknown[]; scans: unknown[]; now: NowRow[] };
      expect(Object.keys(doc)).toEqual(['target', 'devices', 'sightings', 'decisions', 'scans', 'now']);
      expect(doc.now).toHaveLength(1);
      expect(doc.now[0]).toMatchObject({ ip: '10.0.0.5', identity: 'mac:52:54:00:00:00:10', region: 'r', state: 'queued', queuedSince: iso(t.due), attempts: 0, waitsFor: { kind: 'region-scans', scans: [{ intent: 'i-run', scanRef: 'scan/42', appliance: 'a', state: 'running', launched: iso(t.launched) }] } });
      const c = JSON.parse(run('why', '10.0.0.7', '--json', '--config', cfg).stdout) as { now: NowRow[] };
      expect(c.now).toMatchObject([{ state: 'confirming', scan: { scanRef: 'scan/41', state: 'finished', ended: iso(t.ended) } }]);
    } finally {
      await store.close();
    }
  }, 60_000);
});

for (const kind of STORE_KINDS) {
  describe.skipIf(!!kind.skip)(`why's NOW on ${kind.name}`, () => {
    it('queuedFor reads the devices\' entries; NOW with the config\'s limits and without (/api/why)', async () => {
      const store = await kind.open(OPTS);
      const t = await populate(store, Date.now());
      const ids = await store.history.identitiesNamed({ kind: 'ip', value: '10.0.0.7' });
      const entries = await store.history.queuedFor(ids);
      expect(entries).toMatchObject([{ ip: '10.0.0.7', region: 'r', dueSince: t.due, intentId: 'i-ended', attempts: 0 }]);
      expect(typeof entries[0].bindingId).toBe('number');
      expect(await store.history.queuedFor([])).toEqual([]);
      const all = await store.history.identitiesNamed({ kind: 'mac', value: '52:54:00:00:00:13' });
      expect(await store.history.queuedFor([...ids, ...all])).toMatchObject([{ ip: '10.0.0.7' }, { ip: '10.0.0.8', attempts: 1, notBefore: t.held }]);

      const { config } = loadConfig(configFile('/nonexistent/state.db'));
      const text = async (ip: string, limits?: typeof config) => (await whyHistory(store, ip, 50, limits)).now.map((n) => n.text);
      expect(await text('10.0.0.5', config)).toEqual([`queued since ${iso(t.due)} in region r: waiting for the region's running scan scan/42 on appliance a (launched ${iso(t.launched)})`]);
      expect(await text('10.1.0.5', config)).toEqual([`queued since ${iso(t.due)} in region r2: waiting for a free slot on b (1 of ours running, room for 1), by the scheduler's appliance state saved ${iso(t.saved)}`]);
      // without the config's limits (whyHistory with none): the region's scan in flight said as a fact, not as the cause
      expect(await text('10.0.0.5')).toEqual([`queued since ${iso(t.due)} in region r; the region's scan in flight: scan/42 on appliance a (launched ${iso(t.launched)}); the store does not tell what it waits for`]);
      expect(await text('10.0.0.7')).toEqual([`confirming: scan scan/41 on appliance a ended ${iso(t.ended)}, waiting for the scanner's host list`]);
      // the saved slots only as the scheduler reads them back: not learned with another scanner (this config's is dry-run), not over 30 days old
      const notTold = expect.stringMatching(/^queued since \S+ in region r2; the region's scan in flight: scan\/50 on appliance b \(launched \S+\); the store does not tell what it waits for$/);
      await store.scheduler.saveLearned([{ name: 'learned-with', savedAt: t.saved, state: '{"scanner":"qualys"}' }]);
      expect(await text('10.1.0.5', config)).toEqual([notTold]);
      await store.scheduler.saveLearned([{ name: 'learned-with', savedAt: t.saved, state: `{"scanner":"${config.scanner.type}"}` }]);
      expect(await text('10.1.0.5', config)).toEqual([expect.stringContaining('waiting for a free slot on b')]);
      const old = (await store.history.learnedRows(['appliances']))[0];
      await store.scheduler.saveLearned([{ ...old, savedAt: Date.now() - 31 * 86_400_000 }]);
      expect(await text('10.1.0.5', config)).toEqual([notTold]);
    }, 120_000);
  });
}
