/**
 * Lease databases written by the real daemons, read live by the real onsight daemon:
 * ../shared/realworld/dhcp-{dnsmasq,kea,isc}.sh run dnsmasq, Kea and ISC dhcpd against dhclient in
 * network namespaces (clients obtain, renew, then all but the last release; the last stops
 * silently). While a script runs, onsight reads the server's lease database in the script's work
 * directory (`type: lease`). Afterwards its inventory must hold every binding of the clients'
 * ground truth, have ended the released ones, still hold the silent client's, and nothing else.
 *
 * Needs root, `ip netns`, and dnsmasq / kea-dhcp4-server / isc-dhcp-server, isc-dhcp-client,
 * rsyslog; each case is SKIPPED with the reason printed otherwise. About 45 s (the cases run at once).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { startDaemon } from './helpers/daemon.js';
import { SHARED } from './helpers/paths.js';
import { groundTruth, runScript, which } from './helpers/realworld.js';
import { sleep } from './helpers/wait.js';

const REALWORLD = join(SHARED, 'realworld');

const CASES: { script: string; prefix: string; format: string; db: string; binaries: string[]; args?: string[]; notInDb?: string[] }[] = [
  { script: 'dhcp-dnsmasq.sh', prefix: 'dnsmasq', format: 'dnsmasq', db: 'dnsmasq/dnsmasq.leases', binaries: ['dnsmasq'] },
  { script: 'dhcp-kea.sh', prefix: 'kea', format: 'kea', db: 'kea/kea-leases4.csv', binaries: ['kea-dhcp4'] },
  // dhcpd keeps no lease for a fixed-address host (client 3's reservation): a fourth client makes
  // the silent one a dynamic lease
  { script: 'dhcp-isc.sh', prefix: 'isc', format: 'isc-dhcpd', db: 'dhcpd/dhcpd.leases', binaries: ['dhcpd'], args: ['--clients', '4'], notInDb: ['10.213.0.23'] },
];

function skipReason(c: (typeof CASES)[number]): string | undefined {
  if (!existsSync(join(REALWORLD, c.script))) return `${join(REALWORLD, c.script)} not found`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const missing = [...c.binaries, 'dhclient', 'rsyslogd', 'unshare', 'ip'].filter((b) => !which(b));
  if (missing.length) return `missing binaries: ${missing.join(', ')}`;
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  if (ns.status !== 0) return `"ip netns list" failed: ${(ns.stderr || ns.error?.message || '').trim()}`;
  return undefined;
}

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

interface Row { ip: string; mac: string | null; end_reason: string | null; end_at: number | null }

describe('lease databases of real DHCP servers, read live by the daemon', () => {
  for (const c of CASES) {
    const reason = skipReason(c);
    if (reason) {
      console.log(`sources-lease-realworld: SKIPPING ${c.script}: ${reason}`);
      it.skip(`${c.script} (skipped: ${reason})`, () => {});
      continue;
    }
    it.concurrent(`${c.script}: every binding, release and the silent client's lease, nothing else`, async () => {
      const out = mkdtempSync(join(tmpdir(), `onsight-lease-${c.prefix}-`));
      cleanup.push(out);
      const before = new Set(readdirSync('/tmp').filter((n) => n.startsWith(`rw-dhcp-${c.prefix}.`)));
      const run = runScript(join(REALWORLD, c.script), ['--out', out, '--keep-work', ...(c.args ?? [])], 200_000);
      // the script's work directory (mktemp) holds the live lease database
      let work: string | undefined;
      for (let i = 0; i < 100 && !work; i++) {
        work = readdirSync('/tmp').find((n) => n.startsWith(`rw-dhcp-${c.prefix}.`) && !before.has(n));
        if (!work) await sleep(100);
      }
      expect(work, 'the script made its work directory').toBeDefined();
      const workDir = join('/tmp', work!);
      cleanup.push(workDir);
      const d = await startDaemon(`
state: STATE
timezone: UTC
inputs:
  - { type: lease, path: ${join(workDir, c.db)}, format: ${c.format}, pollMs: 100 }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { enabled: false }
`);
      const r = await run;
      expect(r.status, `${c.script} failed:\n${r.output}`).toBe(0);
      await sleep(1500);
      expect(await d.stop()).toBe(0);

      const truth = groundTruth(join(out, `${c.prefix}-groundtruth.tsv`));
      for (const set of [truth.bindings, truth.bound, truth.released]) for (const p of [...set]) if (c.notInDb?.includes(p.split(' ')[1])) set.delete(p);
      const db = new Database(join(d.dir, 'state.db'), { readonly: true });
      const rows = db.prepare('SELECT b.ip, i.mac, b.end_reason, b.end_at FROM bindings b JOIN identities i ON i.id = b.identity_id').all() as Row[];
      const sightings = db.prepare('SELECT kind, ip, json FROM sightings').all() as { kind: string; ip: string; json: string }[];
      db.close();
      console.log(`sources-lease-realworld: ${c.prefix}: bindings ${rows.map((b) => `${b.mac} ${b.ip} ${b.end_reason ?? 'open'}`).join('; ')}; sightings ${sightings.map((s) => `${s.kind} ${s.ip}`).join(', ')}`);
      const pair = (b: Row) => `${b.mac} ${b.ip}`;
      for (const t of truth.bindings) expect(rows.some((b) => pair(b) === t), `binding ${t} from the ${c.format} lease database`).toBe(true);
      for (const b of rows) expect(truth.bindings.has(pair(b)), `no false binding: ${pair(b)}`).toBe(true);
      for (const rel of truth.released) {
        const b = rows.find((x) => pair(x) === rel)!;
        expect(b.end_at, `released ${rel} has ended`).not.toBeNull();
        expect(['released', 'expired']).toContain(b.end_reason);
      }
      const silent = [...truth.bound].filter((b) => ![...truth.released].some((r) => r.split(' ')[0] === b.split(' ')[0]));
      expect(silent.length).toBeGreaterThan(0);
      for (const s of silent) expect(rows.filter((x) => pair(x) === s).map((x) => x.end_reason), `silent client ${s} still holds its lease, never ended`).toEqual([null]);
      // one binding per ground-truth pair (renewals merged, no lease ended and taken again)
      expect(rows.length).toBe(truth.bound.size);
      const releases = sightings.filter((s) => s.kind === 'release').length;
      expect(releases, 'the releases came from the lease database').toBe(truth.released.size);
    }, 240_000);
  }
});
