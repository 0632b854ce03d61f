/**
 * Real DHCP servers, real clients: ../shared/realworld/dhcp-{isc,kea,dnsmasq}.sh run ISC dhcpd, Kea and
 * dnsmasq against dhclient in network namespaces and capture the server's log plus client-side ground
 * truth. Each captured log goes through LineDecoder with `--format auto`; every ground-truth binding
 * (MAC → IP, including renewals) and release must be recovered, and no sighting may name a MAC/IP pair
 * the clients never held.
 *
 * Needs root, working `ip netns`, and the Debian packages iproute2, util-linux, rsyslog,
 * isc-dhcp-client, plus isc-dhcp-server / kea-dhcp4-server / dnsmasq-base. Without them each case is
 * SKIPPED with the reason printed. Each script takes about 40 s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../src/parsers/registry.js';
import { LineDecoder } from '../src/parsers/decoder.js';
import type { Sighting } from '../src/sighting.js';
import { SHARED } from './helpers/paths.js';
import { groundTruth, runScript, which } from './helpers/realworld.js';

const REALWORLD = join(SHARED, 'realworld');

interface Case {
  script: string;
  /** output file prefix of the script */
  prefix: string;
  /** the parser that must claim the DHCP lines */
  format: string;
  /** captured server logs to decode */
  logs: string[];
  binaries: string[];
}

const CASES: Case[] = [
  { script: 'dhcp-isc.sh', prefix: 'isc', format: 'isc-dhcpd', logs: ['isc-dhcpd.log', 'isc-dhcpd.rfc5424.log'], binaries: ['dhcpd', 'dhclient', 'rsyslogd', 'unshare', 'ip'] },
  { script: 'dhcp-kea.sh', prefix: 'kea', format: 'kea-dhcp4', logs: ['kea-dhcp4.log', 'kea-dhcp4.rfc5424.log', 'kea-dhcp4.native.log'], binaries: ['kea-dhcp4', 'dhclient', 'rsyslogd', 'unshare', 'ip'] },
  { script: 'dhcp-dnsmasq.sh', prefix: 'dnsmasq', format: 'dnsmasq', logs: ['dnsmasq.log', 'dnsmasq.rfc5424.log'], binaries: ['dnsmasq', 'dhclient', 'rsyslogd', 'unshare', 'ip'] },
];

/** Why this case cannot run here, or undefined when it can. */
function skipReason(c: Case): string | undefined {
  if (!existsSync(join(REALWORLD, c.script))) return `${join(REALWORLD, c.script)} not found`;
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const missing = c.binaries.filter((b) => !which(b));
  if (missing.length) return `missing binaries: ${missing.join(', ')}`;
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  if (ns.status !== 0) return `"ip netns list" failed: ${(ns.stderr || ns.error?.message || '').trim()}`;
  return undefined;
}

const workDirs: string[] = [];
afterAll(() => {
  for (const d of workDirs) rmSync(d, { recursive: true, force: true });
});

describe('real DHCP servers: every ground-truth binding and release is recovered, nothing else', () => {
  for (const c of CASES) {
    const reason = skipReason(c);
    if (reason) {
      console.log(`realworld-dhcp: SKIPPING ${c.script}: ${reason}`);
      it.skip(`${c.script} (skipped: ${reason})`, () => {});
      continue;
    }
    // the three servers run in namespaces of their own (named per run): side by side, the file takes one script's time
    it.concurrent(`${c.script}: --format auto over the captured log(s) matches the clients' ground truth`, async () => {
      const out = mkdtempSync(join(tmpdir(), `onsight-rw-${c.prefix}-`));
      workDirs.push(out);
      const run = await runScript(join(REALWORLD, c.script), ['--out', out], 200_000);
      expect(run.status, `${c.script} failed (status ${run.status}):\n${run.output}`).toBe(0);

      const truth = groundTruth(join(out, `${c.prefix}-groundtruth.tsv`));
      expect(truth.bound.size, 'the ground truth has bindings').toBeGreaterThan(0);
      const registry = await loadRegistry();

      for (const log of c.logs) {
        const file = join(out, log);
        if (!existsSync(file)) {
          console.log(`realworld-dhcp: ${c.script}: ${log} was not written, not checked`);
          continue;
        }
        const decoder = new LineDecoder(registry, 'auto', 'local');
        const receivedAt = statSync(file).mtime;
        const sightings: Sighting[] = [];
        const claimedBy = new Set<string>();
        const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l);
        lines.forEach((text, i) => {
          const r = decoder.decode(text, { receivedAt, source: `file:${log}`, line: i + 1 });
          if (r.format) claimedBy.add(r.format);
          sightings.push(...r.sightings);
        });
        const pairs = (kinds: string[]) => new Set(sightings.filter((s) => kinds.includes(s.kind)).map((s) => `${s.mac} ${s.ip}`));
        const bindings = pairs(['lease', 'renew']);
        const renews = pairs(['renew']);
        const releases = pairs(['release']);
        console.log(`realworld-dhcp: ${log}: ${lines.length} lines, ${sightings.length} sightings ` +
          `(${sightings.map((s) => `${s.kind} ${s.mac} ${s.ip}`).join('; ')}); claimed by ${[...claimedBy].join(', ')}`);

        expect([...claimedBy], `${log}: only ${c.format} claims lines`).toEqual([c.format]);
        expect(decoder.counters.parserErrors).toBe(0);
        expect(decoder.counters.invalid).toBe(0);
        for (const b of truth.bindings) expect(bindings.has(b), `${log}: binding ${b} recovered`).toBe(true);
        for (const b of truth.renewed) expect(renews.has(b), `${log}: renewal ${b} recovered as renew`).toBe(true);
        for (const r of truth.released) expect(releases.has(r), `${log}: release ${r} recovered`).toBe(true);
        // no false sightings: every sighting names a MAC/IP pair a client really held, with a DHCP kind
        for (const s of sightings) {
          expect(['lease', 'renew', 'release', 'expire'], `${log}: kind of ${JSON.stringify(s)}`).toContain(s.kind);
          expect(truth.bindings.has(`${s.mac} ${s.ip}`), `${log}: false sighting ${JSON.stringify(s)}`).toBe(true);
          expect(s.format).toBe(c.format);
          expect(Math.abs(Date.parse(s.at) - receivedAt.getTime()), `${log}: time of ${JSON.stringify(s)}`).toBeLessThan(600_000);
        }
      }
    }, 240_000);
  }
});
