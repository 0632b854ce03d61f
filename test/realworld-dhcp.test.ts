/**
 * Real DHCP servers, real clients: ../shared/realworld/dhcp-{isc,kea,dnsmasq}.sh run ISC dhcpd, Kea and
 * dnsmasq against dhclient in network namespaces (clients obtain, renew, then all but the last release;
 * the last stops silently) and capture the server's log plus client-side ground truth. One run of each
 * script feeds two checks:
 * - its captured logs: each goes through LineDecoder with `--format auto`; every ground-truth binding
 *   (MAC → IP, including renewals) and release must be recovered, and no sighting may name a MAC/IP
 *   pair the clients never held;
 * - its lease database, read live by the real onsight daemon while the script runs (`type: lease`):
 *   afterwards the inventory must hold every binding of the ground truth, have ended the released
 *   ones, still hold the silent client's, and nothing else.
 *
 * Needs root, working `ip netns`, and the Debian packages iproute2, util-linux, rsyslog,
 * isc-dhcp-client, plus isc-dhcp-server / kea-dhcp4-server / dnsmasq-base. Without them each case is
 * SKIPPED with the reason printed. Each script takes about 40 s; the three run side by side.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import type { Sighting } from '../src/sighting.js';
import { startDaemon } from './helpers/daemon.js';
import { SHARED } from './helpers/paths.js';
import { groundTruth, runScript, which } from './helpers/realworld.js';
import { sleep } from './helpers/wait.js';

const REALWORLD = join(SHARED, 'realworld');

interface Server {
  script: string;
  /** output file prefix of the script (and of its mktemp work directory, rw-dhcp-PREFIX.*) */
  prefix: string;
  binaries: string[];
  args?: string[];
  /** the parser that must claim the captured log lines, and the logs to decode */
  log: { format: string; files: string[] };
  /** the lease database in the script's work directory, the `type: lease` format that reads it, ground-truth addresses it never holds */
  lease: { format: string; db: string; notInDb?: string[] };
}

const SERVERS: Server[] = [
  // dhcpd keeps no lease for a fixed-address host (client 3's reservation): a fourth client makes
  // the silent one a dynamic lease
  {
    script: 'dhcp-isc.sh', prefix: 'isc', binaries: ['dhcpd'], args: ['--clients', '4'],
    log: { format: 'isc-dhcpd', files: ['isc-dhcpd.log', 'isc-dhcpd.rfc5424.log'] },
    lease: { format: 'isc-dhcpd', db: 'dhcpd/dhcpd.leases', notInDb: ['10.213.0.23'] },
  },
  {
    script: 'dhcp-kea.sh', prefix: 'kea', binaries: ['kea-dhcp4'],
    log: { format: 'kea-dhcp4', files: ['kea-dhcp4.log', 'kea-dhcp4.rfc5424.log', 'kea-dhcp4.native.log'] },
    lease: { format: 'kea', db: 'kea/kea-leases4.csv' },
  },
  {
    script: 'dhcp-dnsmasq.sh', prefix: 'dnsmasq', binaries: ['dnsmasq'],
    log: { format: 'dnsmasq', files: ['dnsmasq.log', 'dnsmasq.rfc5424.log'] },
    lease: { format: 'dnsmasq', db: 'dnsmasq/dnsmasq.leases' },
  },
];

/** Why this server cannot run here, or undefined when it can. */
function skipReason(s: Server): string | undefined {
  if (!existsSync(join(REALWORLD, s.script))) return `${join(REALWORLD, s.script)} not found`;
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const missing = [...s.binaries, 'dhclient', 'rsyslogd', 'unshare', 'ip'].filter((b) => !which(b));
  if (missing.length) return `missing binaries: ${missing.join(', ')}`;
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  if (ns.status !== 0) return `"ip netns list" failed: ${(ns.stderr || ns.error?.message || '').trim()}`;
  return undefined;
}

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

interface Run {
  /** where the script writes its captured logs and ground truth */
  out: string;
  /** the script's work directory (mktemp), which holds the live lease database */
  workDir: Promise<string | undefined>;
  done: Promise<{ status: number | null; output: string }>;
}

/** One run of each server's script, started by the first check that asks for it; both checks read it. */
const runs = new Map<string, Run>();
function runOf(s: Server): Run {
  let run = runs.get(s.prefix);
  if (run) return run;
  const out = mkdtempSync(join(tmpdir(), `onsight-rw-${s.prefix}-`));
  cleanup.push(out);
  const before = new Set(readdirSync('/tmp').filter((n) => n.startsWith(`rw-dhcp-${s.prefix}.`)));
  const done = runScript(join(REALWORLD, s.script), ['--out', out, '--keep-work', ...(s.args ?? [])], 200_000);
  const workDir = (async () => {
    for (let i = 0; i < 100; i++) {
      const work = readdirSync('/tmp').find((n) => n.startsWith(`rw-dhcp-${s.prefix}.`) && !before.has(n));
      if (work) {
        cleanup.push(join('/tmp', work));
        return join('/tmp', work);
      }
      await sleep(100);
    }
    return undefined;
  })();
  run = { out, workDir, done };
  runs.set(s.prefix, run);
  return run;
}

interface Row { ip: string; mac: string | null; end_reason: string | null; end_at: number | null }

describe('real DHCP servers: every ground-truth binding and release is recovered, nothing else', () => {
  for (const s of SERVERS) {
    const reason = skipReason(s);
    if (reason) {
      console.log(`realworld-dhcp: SKIPPING ${s.script}: ${reason}`);
      it.skip(`${s.script} (skipped: ${reason})`, () => {});
    }
  }
  const runnable = SERVERS.filter((s) => !skipReason(s));

  // the lease checks come first: each starts its script and reads the database while the script runs
  // (the log checks of the same run wait for its end; with vitest's 5 cases at once, the last starts later)
  for (const s of runnable) {
    it.concurrent(`${s.script}: the lease database read live by the daemon: every binding, release and the silent client's lease, nothing else`, async () => {
      const run = runOf(s);
      const workDir = await run.workDir;
      expect(workDir, 'the script made its work directory').toBeDefined();
      const d = await startDaemon(`
state: STATE
timezone: UTC
inputs:
  - { type: lease, path: ${join(workDir!, s.lease.db)}, format: ${s.lease.format}, pollMs: 100 }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { enabled: false }
`);
      const r = await run.done;
      expect(r.status, `${s.script} failed:\n${r.output}`).toBe(0);
      await sleep(1500);
      expect(await d.stop()).toBe(0);

      const truth = groundTruth(join(run.out, `${s.prefix}-groundtruth.tsv`));
      for (const set of [truth.bindings, truth.bound, truth.released]) for (const p of [...set]) if (s.lease.notInDb?.includes(p.split(' ')[1])) set.delete(p);
      const db = new Database(join(d.dir, 'state.db'), { readonly: true });
      const rows = db.prepare('SELECT b.ip, i.mac, b.end_reason, b.end_at FROM bindings b JOIN identities i ON i.id = b.identity_id').all() as Row[];
      const sightings = db.prepare('SELECT kind, ip, json FROM sightings').all() as { kind: string; ip: string; json: string }[];
      db.close();
      console.log(`realworld-dhcp: lease ${s.prefix}: bindings ${rows.map((b) => `${b.mac} ${b.ip} ${b.end_reason ?? 'open'}`).join('; ')}; sightings ${sightings.map((x) => `${x.kind} ${x.ip}`).join(', ')}`);
      const pair = (b: Row) => `${b.mac} ${b.ip}`;
      for (const t of truth.bindings) expect(rows.some((b) => pair(b) === t), `binding ${t} from the ${s.lease.format} lease database`).toBe(true);
      for (const b of rows) expect(truth.bindings.has(pair(b)), `no false binding: ${pair(b)}`).toBe(true);
      for (const rel of truth.released) {
        const b = rows.find((x) => pair(x) === rel)!;
        expect(b.end_at, `released ${rel} has ended`).not.toBeNull();
        expect(['released', 'expired']).toContain(b.end_reason);
      }
      const silent = [...truth.bound].filter((b) => ![...truth.released].some((x) => x.split(' ')[0] === b.split(' ')[0]));
      expect(silent.length).toBeGreaterThan(0);
      for (const x of silent) expect(rows.filter((b) => pair(b) === x).map((b) => b.end_reason), `silent client ${x} still holds its lease, never ended`).toEqual([null]);
      // one binding per ground-truth pair (renewals merged, no lease ended and taken again)
      expect(rows.length).toBe(truth.bound.size);
      const releases = sightings.filter((x) => x.kind === 'release').length;
      expect(releases, 'the releases came from the lease database').toBe(truth.released.size);
    }, 240_000);
  }

  for (const s of runnable) {
    it.concurrent(`${s.script}: --format auto over the captured log(s) matches the clients' ground truth`, async () => {
      const run = runOf(s);
      const r = await run.done;
      expect(r.status, `${s.script} failed (status ${r.status}):\n${r.output}`).toBe(0);

      const truth = groundTruth(join(run.out, `${s.prefix}-groundtruth.tsv`));
      expect(truth.bound.size, 'the ground truth has bindings').toBeGreaterThan(0);
      const registry = await loadRegistry();

      for (const log of s.log.files) {
        const file = join(run.out, log);
        if (!existsSync(file)) {
          console.log(`realworld-dhcp: ${s.script}: ${log} was not written, not checked`);
          continue;
        }
        const decoder = new LineDecoder(registry, 'auto', 'local');
        const receivedAt = statSync(file).mtime;
        const sightings: Sighting[] = [];
        const claimedBy = new Set<string>();
        const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l);
        lines.forEach((text, i) => {
          const d = decoder.decode(text, { receivedAt, source: `file:${log}`, line: i + 1 });
          if (d.format) claimedBy.add(d.format);
          sightings.push(...d.sightings);
        });
        const pairs = (kinds: string[]) => new Set(sightings.filter((x) => kinds.includes(x.kind)).map((x) => `${x.mac} ${x.ip}`));
        const bindings = pairs(['lease', 'renew']);
        const renews = pairs(['renew']);
        const releases = pairs(['release']);
        console.log(`realworld-dhcp: ${log}: ${lines.length} lines, ${sightings.length} sightings ` +
          `(${sightings.map((x) => `${x.kind} ${x.mac} ${x.ip}`).join('; ')}); claimed by ${[...claimedBy].join(', ')}`);

        expect([...claimedBy], `${log}: only ${s.log.format} claims lines`).toEqual([s.log.format]);
        expect(decoder.counters.parserErrors).toBe(0);
        expect(decoder.counters.invalid).toBe(0);
        for (const b of truth.bindings) expect(bindings.has(b), `${log}: binding ${b} recovered`).toBe(true);
        for (const b of truth.renewed) expect(renews.has(b), `${log}: renewal ${b} recovered as renew`).toBe(true);
        for (const x of truth.released) expect(releases.has(x), `${log}: release ${x} recovered`).toBe(true);
        // no false sightings: every sighting names a MAC/IP pair a client really held, with a DHCP kind
        for (const x of sightings) {
          expect(['lease', 'renew', 'release', 'expire'], `${log}: kind of ${JSON.stringify(x)}`).toContain(x.kind);
          expect(truth.bindings.has(`${x.mac} ${x.ip}`), `${log}: false sighting ${JSON.stringify(x)}`).toBe(true);
          expect(x.format).toBe(s.log.format);
          expect(Math.abs(Date.parse(x.at) - receivedAt.getTime()), `${log}: time of ${JSON.stringify(x)}`).toBeLessThan(600_000);
        }
      }
    }, 240_000);
  }
});
