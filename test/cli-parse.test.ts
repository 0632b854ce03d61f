import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO } from './helpers/paths.js';

const run = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input });

describe('onsight parse / formats', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-parse-'));
  const file = join(dir, 'dhcpd.log');
  writeFileSync(file, [
    '<30>Nov 22 19:54:11 gw dhcpd[812]: DHCPDISCOVER from 52:54:00:aa:bb:cc via eth0',
    '<30>Nov 22 19:54:11 gw dhcpd[812]: DHCPACK on 10.20.1.7 to 52:54:00:AA:BB:CC (laptop-7) via eth0\r',
    'garbage \u0000\u0001 line',
    '<30>Nov 22 20:00:00 gw dhcpd[812]: DHCPRELEASE of 10.20.1.7 from 52:54:00:aa:bb:cc (laptop-7) via eth0 (found)',
  ].join('\n'));

  it('prints one Sighting JSON per line with its 1-based line number, and a summary on stderr', () => {
    const r = run(['parse', '--format', 'auto', '--zone', 'UTC', file]);
    expect(r.status).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out).toEqual([
      { kind: 'lease', ip: '10.20.1.7', mac: '52:54:00:aa:bb:cc', hostname: 'laptop-7', at: expect.stringMatching(/-11-22T19:54:11\.000Z$/), format: 'isc-dhcpd', source: `file:${file}`, line: 2 },
      { kind: 'release', ip: '10.20.1.7', mac: '52:54:00:aa:bb:cc', hostname: 'laptop-7', at: expect.stringMatching(/-11-22T20:00:00\.000Z$/), format: 'isc-dhcpd', source: `file:${file}`, line: 4 },
    ]);
    expect(r.stderr).toMatch(/^4 lines: 2 sightings \(lease 1, release 1\); 3 recognised \(isc-dhcpd 3\), 1 unrecognised/);
  });

  it('reads stdin when no file is given, with a fixed format', () => {
    const r = run(['parse', '--format', 'isc-dhcpd'], '<30>Nov 22 19:54:11 gw dhcpd[812]: DHCPACK on 10.20.1.8 to 52:54:00:aa:bb:cd via eth0\n');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ip: '10.20.1.8', source: 'stdin', line: 1 });
  });

  it('--explain says on stderr, per line, why it gave no sighting: no parser, a line of the format without an event, a draft refused and why', () => {
    const cfg = join(dir, 'plugins.yaml');
    writeFileSync(cfg, `parsers: { directory: ${join(REPO, 'examples', 'parsers')} }\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\n`);
    const lines = [
      '<134>Nov 24 10:00:00 vpn1 acme-vpn[311]: session=1 event=connect user=jdoe client=203.0.113.9 assigned=10.77.0.15',
      '<134>Nov 24 10:00:01 vpn1 acme-vpn[311]: session=2 event=connect user=ann client=203.0.113.9 assigned=10.77.0.999',
      '<134>Nov 24 10:00:02 vpn1 acme-vpn[311]: session=1 event=keepalive',
      'garbage',
    ];
    const r = run(['parse', '--format', 'auto', '--zone', 'UTC', '--config', cfg, '--explain'], lines.join('\n'));
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).line)).toEqual([1]);
    expect(r.stderr.split('\n').slice(0, 3)).toEqual([
      'stdin:2: acme-vpn: a malformed draft (a parser bug): ip "10.77.0.999" is no IP address',
      'stdin:3: acme-vpn claimed it and made no sighting of it (a message of the format that tells no lease or tunnel event, or one it could not read)',
      'stdin:4: no parser claimed it',
    ]);
    expect(r.stderr).toMatch(/^4 lines: 1 sightings .*, 1 malformed drafts dropped$/m);
    // without it, the summary alone
    expect(run(['parse', '--format', 'auto', '--config', cfg], lines.join('\n')).stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exit 2 for an unknown format or bad usage, 1 for an unreadable file', () => {
    const bad = run(['parse', '--format', 'nonesuch', file]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown format "nonesuch"; known: auto, /);
    expect(run(['parse', file]).status).toBe(2); // --format is required
    expect(run(['frobnicate']).status).toBe(2);
    expect(run(['parse', '--format', 'auto', join(dir, 'missing.log')]).status).toBe(1);
  });

  it('`onsight formats` lists every built-in parser with a description', () => {
    const r = run(['formats']);
    expect(r.status).toBe(0);
    const ids = r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
    expect(ids).toContain('isc-dhcpd');
    for (const l of r.stdout.trim().split('\n')) expect(l.split(/\s{2,}/)[1]?.length).toBeGreaterThan(10);
  });
});
