/**
 * How soon ended addresses go to another device (HistoryStore.addressReuse), on a real SQLite file and
 * a real PostgreSQL with the same assertions: a VPN address the next user took 2 min after a
 * tunnel-down is quick, one taken 2 h later is not, the same user coming back is no reuse, a DHCP
 * address taken over with no release seen (the binding ends when the new holder appears) is quick,
 * and an end before the period counts nothing. Then the daemon's /api/status, /metrics and status
 * page (in Chromium, where installed) say it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sighting } from '../src/sighting.js';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { parsePromText } from '../src/http/prom.js';
import type { Status } from '../src/http/status.js';
import { STORE_KINDS } from './helpers/stores.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`SKIP the address reuse card in Chromium: ${CHROMIUM} is missing (apt-get install chromium)`);

const OPTS = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 90 };
const MIN = 60_000;
const T = Date.parse('2026-12-01T08:00:00Z');
const at = (ms: number) => new Date(ms).toISOString();
const vpn = (kind: 'tunnel-up' | 'tunnel-down', ip: string, user: string, ms: number): Sighting => ({ kind, ip, user, format: 'openvpn', source: 'test', at: at(ms) });
const dhcp = (kind: 'lease' | 'release', ip: string, mac: string, ms: number): Sighting => ({ kind, ip, mac, format: 'isc-dhcpd', source: 'test', durationS: 86400, at: at(ms) });

for (const kind of STORE_KINDS) {
  describe.skipIf(kind.skip)(`address reuse (${kind.name})`, () => {
    it('counts the addresses another device took after an end, and those taken within the limit of an end a line stated', async () => {
      const store = await kind.open(OPTS);
      await store.inventory.commitBatch([
        // before the period: ann leaves 10.8.0.9 and bea takes it at once (not counted: ended before `since`)
        vpn('tunnel-up', '10.8.0.9', 'ann', T - 300 * MIN), vpn('tunnel-down', '10.8.0.9', 'ann', T - 200 * MIN), vpn('tunnel-up', '10.8.0.9', 'bea', T - 199 * MIN),
        // quick: bob leaves 10.8.0.2, cid takes it 2 min later
        vpn('tunnel-up', '10.8.0.2', 'bob', T), vpn('tunnel-down', '10.8.0.2', 'bob', T + 30 * MIN), vpn('tunnel-up', '10.8.0.2', 'cid', T + 32 * MIN),
        // not quick: dan leaves 10.8.0.3, eve takes it 2 h later
        vpn('tunnel-up', '10.8.0.3', 'dan', T), vpn('tunnel-down', '10.8.0.3', 'dan', T + 10 * MIN), vpn('tunnel-up', '10.8.0.3', 'eve', T + 130 * MIN),
        // no reuse: fay leaves 10.8.0.4 and comes back to it
        vpn('tunnel-up', '10.8.0.4', 'fay', T), vpn('tunnel-down', '10.8.0.4', 'fay', T + 5 * MIN), vpn('tunnel-up', '10.8.0.4', 'fay', T + 6 * MIN),
        // no reuse: gil comes back 3 min later on a line without his host name (another identity, the same user)
        { ...vpn('tunnel-up', '10.8.0.6', 'gil', T), hostname: 'gil-laptop' }, vpn('tunnel-down', '10.8.0.6', 'gil', T + 40 * MIN), vpn('tunnel-up', '10.8.0.6', 'Gil', T + 43 * MIN),
        // reused, not timed: hal's tunnel-down was lost; ivy holds 10.8.0.7 from 11:00 (when hal left is not known)
        vpn('tunnel-up', '10.8.0.7', 'hal', T), vpn('tunnel-up', '10.8.0.7', 'ivy', T + 180 * MIN),
        // no successor yet: gus left 10.8.0.5
        vpn('tunnel-up', '10.8.0.5', 'gus', T), vpn('tunnel-down', '10.8.0.5', 'gus', T + 50 * MIN),
        // DHCP: a lease taken over with no release seen (ends as reassigned at the new lease: not timed)
        dhcp('lease', '10.20.1.5', '52:54:00:00:00:01', T), dhcp('lease', '10.20.1.5', '52:54:00:00:00:02', T + 60 * MIN),
        // DHCP: released, another device 40 min later
        dhcp('lease', '10.20.1.6', '52:54:00:00:00:03', T), dhcp('release', '10.20.1.6', '52:54:00:00:00:03', T + 20 * MIN), dhcp('lease', '10.20.1.6', '52:54:00:00:00:04', T + 60 * MIN),
        // DHCP: released, another device 5 min later
        dhcp('lease', '10.20.1.8', '52:54:00:00:00:05', T), dhcp('release', '10.20.1.8', '52:54:00:00:00:05', T + 20 * MIN), dhcp('lease', '10.20.1.8', '52:54:00:00:00:06', T + 25 * MIN),
      ], [], T + 200 * MIN);
      const reuse = await store.history.addressReuse(T - 60 * MIN, 10 * MIN);
      expect(reuse).toEqual([
        { channel: 'dhcp', reused: 3, quick: 1 },
        { channel: 'vpn', reused: 3, quick: 1 },
      ]);
      // the whole history: the end before the period counts too
      expect(await store.history.addressReuse(T - 400 * MIN, 10 * MIN)).toEqual([
        { channel: 'dhcp', reused: 3, quick: 1 },
        { channel: 'vpn', reused: 4, quick: 2 },
      ]);
      // a longer limit takes eve (2 h) and the 40-min DHCP one, never the untimed takeovers
      expect(await store.history.addressReuse(T - 60 * MIN, 180 * MIN)).toEqual([
        { channel: 'dhcp', reused: 3, quick: 2 },
        { channel: 'vpn', reused: 3, quick: 2 },
      ]);
      expect(await store.history.addressReuse(T + 500 * MIN, 10 * MIN)).toEqual([]);
    });

    it.runIf(kind.name === 'sqlite')('looks up each ended binding\'s next one through the address and start index, not the address\'s history', async () => {
      const { openDatabase } = await import('../src/store/db.js');
      const { ADDRESS_REUSE_SQL } = await import('../src/store/history.js');
      const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'onsight-reuse-plan-')), 'state.db'));
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${ADDRESS_REUSE_SQL}`).all(0, 0) as { detail: string }[]).map((r) => r.detail);
      db.close();
      const lookups = plan.filter((d) => / q /.test(` ${d} `) || d.includes('AS q'));
      expect(lookups.length, plan.join('\n')).toBeGreaterThanOrEqual(2); // the next holder, and when it came
      for (const d of lookups) expect(d, plan.join('\n')).toMatch(/bindings_ip_start \(ip=\? AND start_at>\?\)/);
    });
  });
}

describe('address reuse in the daemon\'s status and metrics', () => {
  it('/api/status and /metrics give the last 24 h per channel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-reuse-'));
    const { config } = validateConfig({
      state: join(dir, 'onsight.db'), timezone: 'UTC', inputs: [],
      policy: { rescanAfter: '30d', scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.8.0.0/16'], appliances: ['emea-sa-1'] }],
      scanner: { type: 'dry-run', scanDurationS: 1 }, http: { listen: '127.0.0.1:0' },
    });
    const daemon = new Daemon({ config, log: silentLogger(), tickMs: 200 });
    await daemon.start();
    try {
      const now = Date.now();
      await daemon.inventory.commitBatch([
        vpn('tunnel-up', '10.8.0.2', 'bob', now - 60 * MIN), vpn('tunnel-down', '10.8.0.2', 'bob', now - 40 * MIN), vpn('tunnel-up', '10.8.0.2', 'cid', now - 37 * MIN),
        vpn('tunnel-up', '10.8.0.3', 'dan', now - 60 * MIN), vpn('tunnel-down', '10.8.0.3', 'dan', now - 50 * MIN), vpn('tunnel-up', '10.8.0.3', 'eve', now - 20 * MIN),
      ], [], now);
      const base = daemon.http!.url;
      const status = (await (await fetch(base + '/api/status')).json()) as Status;
      expect(status.addressReuse).toEqual({ windowH: 24, quickMin: 10, channels: [{ channel: 'vpn', reused: 2, quick: 1 }] });
      const m = parsePromText(await (await fetch(base + '/metrics')).text()).samples;
      expect(m.filter((x) => x.name.startsWith('onsight_addresses_reused'))).toEqual([
        { name: 'onsight_addresses_reused', labels: { channel: 'dhcp' }, value: 0 },
        { name: 'onsight_addresses_reused', labels: { channel: 'vpn' }, value: 2 },
        { name: 'onsight_addresses_reused_quickly', labels: { channel: 'dhcp' }, value: 0 },
        { name: 'onsight_addresses_reused_quickly', labels: { channel: 'vpn' }, value: 1 },
      ]);
      if (hasChromium) {
        const { chromium } = await import('playwright-core');
        const profile = mkdtempSync(join(tmpdir(), 'onsight-chromium-'));
        const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
        try {
          const page = ctx.pages()[0] ?? await ctx.newPage();
          await page.goto(base + '/');
          const card = page.locator('#cards [data-reuse="vpn"]');
          await card.waitFor({ timeout: 10_000 });
          expect(await card.textContent()).toBe('1VPN addresses reused within 10 min (24 h)of 2 reused: a probe of a user who left can reach the next');
        } finally {
          await ctx.close();
          rmSync(profile, { recursive: true, force: true });
        }
      }
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
