/**
 * `onsight why <ip|mac|user>` and `onsight decisions --ip/--mac/--since` on a real state file,
 * through the real CLI: a device's sightings, decisions and scans; names from log lines escaped;
 * bad arguments refused with exit 2; the state opened read-only (never migrated or created).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/db.js';
import { SqliteInventory } from '../src/inventory/inventory.js';
import { SqliteSchedulerStore } from '../src/scheduler/queue.js';
import type { Sighting } from '../src/sighting.js';
import { CLI } from './helpers/paths.js';

function setup(): { cfg: string; state: string } {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-why-'));
  const state = join(dir, 'state.db');
  const cfg = join(dir, 'onsight.yaml');
  writeFileSync(cfg, `state: ${state}\ntimezone: UTC\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\nhttp: { enabled: false }\n`);
  return { cfg, state };
}

const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
const evilHost = 'lap\x1b[2J\rfake\nrow\u202eexe';

async function populate(state: string): Promise<void> {
  const db = openDatabase(state);
  const inv = new SqliteInventory(db, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 * 90 });
  const now = Date.now();
  await inv.commitBatch([
    { kind: 'lease', ip: '10.0.0.5', at: new Date(now - 3600_000).toISOString(), format: 'isc-dhcpd', source: 'file:/var/log/dhcpd.log', mac: '52:54:00:00:00:05', hostname: evilHost },
    { kind: 'tunnel-up', ip: '10.0.9.9', at: new Date(now - 60_000).toISOString(), format: 'openvpn', source: 'syslog', user: 'alice' },
    { kind: 'tunnel-up', ip: '10.0.9.10', at: new Date(now - 60_000).toISOString(), format: 'openvpn', source: 'syslog', user: 'host:x' },
    { kind: 'lease', ip: '10.0.0.6', at: new Date(now - 60_000).toISOString(), format: 'isc-dhcpd', source: 'file:/var/log/dhcpd.log', mac: '52:54:00:00:00:06' },
    { kind: 'lease', ip: '10.0.0.7', at: new Date(now - 60_000).toISOString(), format: 'isc-dhcpd', source: 'file:/var/log/dhcpd.log', mac: '52:54:00:00:00:07', hostname: 'LT-A10' },
  ] as Sighting[]);
  const b = (await inv.openBinding('10.0.0.5'))!;
  const store = new SqliteSchedulerStore(db);
  await store.decide({ at: now - 7200_000 * 24, ip: '10.0.0.5', identityId: b.identityId, decision: 'not-due', reason: 'old decision' });
  await store.decide({ at: now - 3000_000, ip: '10.0.0.5', identityId: b.identityId, decision: 'due', reason: 'never scanned; region r' });
  await store.decide({ at: now - 60_000, ip: '10.0.0.6', decision: 'due', reason: 'another device' });
  await store.enqueue({ bindingId: b.id, ip: b.ip, identityId: b.identityId, region: 'r', dueSince: now - 3000_000, lastSeen: b.lastSeen });
  await store.createIntent({ id: 'intent-w1', region: 'r', appliance: 'a', createdAt: now - 2900_000 }, [{ ip: b.ip, identityId: b.identityId, bindingId: b.id }]);
  await store.setRunning('intent-w1', 'scan/42', now - 2900_000);
  db.close();
}

describe('onsight why', () => {
  it("shows a device's sightings, decisions and scans, by address, MAC or user, with names escaped", async () => {
    const { cfg, state } = setup();
    await populate(state);
    for (const target of ['10.0.0.5', '52-54-00-00-00-05', '525400000005']) {
      const r = run('why', target, '--config', cfg);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('mac:52:54:00:00:00:05');
      expect(r.stdout).toContain('file:/var/log/dhcpd.log');
      expect(r.stdout).toContain('never scanned; region r');
      expect(r.stdout).toContain('old decision');
      expect(r.stdout).toContain('intent-w1');
      expect(r.stdout).toContain('scan/42');
      expect(r.stdout).not.toContain('another device');
      expect(r.stdout).toContain('lap\\x1b[2J\\rfake\\nrow\\u202eexe');
      // eslint-disable-next-line no-control-regex
      expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
    }
    const j = run('why', '10.0.0.5', '--json', '--config', cfg);
    expect(j.status).toBe(0);
    const doc = JSON.parse(j.stdout) as { devices: { hostname: string }[]; sightings: unknown[]; decisions: { reason: string }[]; scans: { state: string }[] };
    expect(doc.devices[0].hostname).toBe(evilHost);
    expect(doc.sightings).toHaveLength(1);
    expect(doc.decisions.map((d) => d.reason)).toEqual(['never scanned; region r', 'old decision']);
    expect(doc.scans[0].state).toBe('running');
    const u = run('why', 'alice', '--config', cfg);
    expect(u.status).toBe(0);
    expect(u.stdout).toContain('10.0.9.9');
    expect(u.stdout).toContain('openvpn');
    const none = run('why', 'nobody', '--config', cfg);
    expect(none.status).toBe(0);
    expect(none.stdout).toBe('nothing known about nobody (user or host name)\n');
    // a name no user has but a device's host name, any case (the probe: "nothing known about lt-a10 (user)")
    const host = run('why', 'lt-a10', '--config', cfg);
    expect(host.status).toBe(0);
    expect(host.stdout).toContain('DEVICES (hostname lt-a10)');
    expect(host.stdout).toContain('mac:52:54:00:00:00:07');
    expect(host.stdout).toContain('10.0.0.7');
    // a user named like a device key: the key names no one and says how to name the user
    const asKey = run('why', 'host:x', '--config', cfg);
    expect(asKey.stdout).toBe('nothing known about host:x (key; a user named "host:x" is given as user:host:x)\n');
    const asUser = run('why', 'user:host:x', '--config', cfg);
    expect(asUser.stdout).toContain('10.0.9.10');
  });

  it('refuses bad arguments with exit 2 and never creates state', async () => {
    const { cfg, state } = setup();
    expect(run('why', '--config', cfg).status).toBe(2);
    const ctl = run('why', 'bad\x1bname', '--config', cfg);
    expect(ctl.status).toBe(2);
    expect(ctl.stderr).toContain('control characters');
    const missing = run('why', '10.0.0.5', '--config', cfg);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no state database');
    expect(existsSync(state)).toBe(false);
  });
});

describe('onsight decisions filters', () => {
  it('--ip, --mac and --since select decisions; bad values exit 2', async () => {
    const { cfg, state } = setup();
    await populate(state);
    const rows = (args: string[]) => {
      const r = run('decisions', '--json', '--config', cfg, ...args);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return (JSON.parse(r.stdout) as { reason: string }[]).map((d) => d.reason);
    };
    expect(rows([])).toHaveLength(3);
    expect(rows(['--ip', '10.0.0.6'])).toEqual(['another device']);
    expect(rows(['--mac', '52:54:00:00:00:05'])).toEqual(['never scanned; region r', 'old decision']);
    expect(rows(['--mac', '52:54:00:00:00:05', '--since', '2h'])).toEqual(['never scanned; region r']);
    expect(rows(['--since', '2h'])).toEqual(['another device', 'never scanned; region r']);
    expect(rows(['--since', new Date(Date.now() - 120_000).toISOString()])).toEqual(['another device']);
    for (const bad of [['--ip', 'notanip'], ['--mac', '10.0.0.1'], ['--since', 'yesterday']]) {
      const r = run('decisions', '--config', cfg, ...bad);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--ip|--mac|--since/);
    }
    const t = run('decisions', '--ip', '10.0.0.5', '--config', cfg);
    expect(t.stdout.trimEnd().split('\n')).toHaveLength(4);
  });
});
