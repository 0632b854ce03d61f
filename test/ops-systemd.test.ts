/**
 * systemd/onsight.service and systemd/install.sh, checked with the real systemd-analyze (Debian
 * package `systemd`; no running systemd needed): `verify` prints no warning, `security
 * --offline=yes` reports an exposure of 2.0 or lower, also with the drop-ins install.sh writes.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const UNIT = join(REPO, 'systemd', 'onsight.service');
const INSTALL = join(REPO, 'systemd', 'install.sh');

function analyze(args: string[]) {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '', error: r.error };
}

let skip: string | undefined;
const probe = analyze(['--version']);
if (probe.error || probe.status !== 0) skip = 'systemd-analyze is not installed (apt-get install systemd)';
else {
  const p = analyze(['security', '--offline=yes', UNIT]);
  if (/unrecognized option|unknown option/i.test(p.err)) skip = `systemd-analyze ${probe.out.split('\n')[0]} has no security --offline (systemd 250+ needed)`;
}
if (skip) console.log(`SKIP systemd unit checks: ${skip}`);

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function exposure(unitPath: string): number {
  const r = analyze(['security', '--offline=yes', unitPath]);
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.out + r.err);
  if (!m) throw new Error(`no exposure level in:\n${r.out}\n${r.err}`);
  return Number(m[1]);
}

/** the unit and its drop-ins as one file, for `security --offline` (which reads one file) */
function mergedCopy(unitDir: string): string {
  const extra = readdirSync(join(unitDir, 'onsight.service.d')).map((f) => readFileSync(join(unitDir, 'onsight.service.d', f), 'utf8')).join('\n');
  return localCopy(tmp('onsight-merged-'), '\n' + extra);
}

/**
 * `verify` checks that ExecStart's binary exists and is executable; /usr/bin/node may not exist
 * where the tests run (CI installs Node elsewhere), so verify a copy whose ExecStart names the
 * node running this test and this checkout's bin/onsight.js. Nothing else in the unit changes.
 */
function localCopy(dir: string, extra = ''): string {
  const text = readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/node \/opt\/onsight\/bin\/onsight\.js /m, `ExecStart=${process.execPath} ${join(REPO, 'bin', 'onsight.js')} `);
  expect(text).toContain(`ExecStart=${process.execPath} `);
  const p = join(dir, 'onsight.service');
  writeFileSync(p, text + extra);
  return p;
}

describe.skipIf(skip !== undefined)('systemd unit', () => {
  it('systemd-analyze verify prints nothing', () => {
    const p = localCopy(tmp('onsight-unit-'));
    const r = analyze(['verify', p]);
    expect(r.err + r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('systemd-analyze security --offline=yes: exposure 2.0 or lower', () => {
    const score = exposure(UNIT);
    console.log(`systemd-analyze security --offline=yes systemd/onsight.service: exposure ${score}`);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  it('the unit holds the required settings', () => {
    const t = readFileSync(UNIT, 'utf8');
    for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'PrivateDevices=yes', 'ProtectHome=yes',
      'ProtectKernelTunables=yes', 'ProtectKernelModules=yes', 'ProtectKernelLogs=yes', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'SystemCallFilter=@system-service', 'CapabilityBoundingSet=', 'StateDirectory=onsight', 'LoadCredential=qualys:/etc/onsight/qualys.pass',
      'ExecReload=/bin/kill -HUP $MAINPID', 'KillSignal=SIGTERM', 'TimeoutStopSec=30s',
      // a bad config exits 2: restarting every 5 s cannot fix it; journal lines say onsight, not node
      'RestartPreventExitStatus=2', 'SyslogIdentifier=onsight']) {
      expect(t.split('\n'), line).toContain(line);
    }
  });
});

describe('systemd/install.sh', () => {
  it('is valid sh', () => {
    const r = spawnSync('sh', ['-n', INSTALL], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(statSync(INSTALL).mode & 0o111).not.toBe(0);
  });

  const built = existsSync(join(REPO, 'dist', 'src', 'config', 'load.js'));
  it.runIf(built)('copies the built code without development dependencies, and the copy runs', () => {
    const root = tmp('onsight-copy-');
    const r = spawnSync('sh', [INSTALL, '--root', root], { encoding: 'utf8' });
    // the example config reads Kea's /var/lib/kea/kea-leases4.csv, which need not exist (or be open) here
    expect(r.stderr.replace(/^install\.sh: warning: .*\/var\/lib\/kea\b.*\n/gm, '')).toBe('');
    expect(r.status).toBe(0);
    const prefix = join(root, 'opt', 'onsight');
    if (/npm prune --omit=dev failed/.test(r.stdout)) throw new Error(`install.sh could not prune: ${r.stdout}`);
    expect(r.stdout).toMatch(/development dependencies removed/);
    expect(existsSync(join(prefix, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(prefix, 'node_modules', 'typescript'))).toBe(false);
    expect(existsSync(join(prefix, 'node_modules', 'better-sqlite3'))).toBe(true);
    const run = spawnSync(process.execPath, [join(prefix, 'bin', 'onsight.js'), 'formats'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/isc-dhcpd/);
  }, 120_000);

  it.runIf(built)('installs config, credential file, unit and the drop-ins a low port and file inputs need; verify and security still pass', () => {
    const root = tmp('onsight-root-');
    const cfgDir = tmp('onsight-cfg-');
    const cfg = join(cfgDir, 'onsight.yaml');
    writeFileSync(cfg, `
inputs:
  - { type: syslog, listen: "udp://0.0.0.0:514" }
  - { type: syslog, listen: "tcp://0.0.0.0:5514" }
  - { type: file, path: /var/log/dhcpd.log, format: isc-dhcpd }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
http: { listen: "127.0.0.1:9321" }
`);
    const r = spawnSync('sh', [INSTALL, '--root', root, '--no-copy', '--config', cfg], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const unitDir = join(root, 'etc', 'systemd', 'system');
    expect(readdirSync(join(unitDir, 'onsight.service.d')).sort()).toEqual(['log-files.conf', 'low-port.conf']);
    expect(readFileSync(join(unitDir, 'onsight.service.d', 'low-port.conf'), 'utf8')).toMatch(/port\(s\) 514,.*\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n/s);
    expect(readFileSync(join(root, 'etc', 'onsight', 'onsight.yaml'), 'utf8')).toMatch(/^ {2}credential: qualys /m);
    expect(statSync(join(root, 'etc', 'onsight', 'qualys.pass')).mode & 0o777).toBe(0o600);
    const installed = readFileSync(join(unitDir, 'onsight.service'), 'utf8');
    expect(installed).toMatch(/^ExecStart=\S*node \/opt\/onsight\/bin\/onsight\.js run --config \/etc\/onsight\/onsight\.yaml$/m);

    if (skip) return console.log(`SKIP verify/security of the installed unit: ${skip}`);
    // verify loads onsight.service.d/*.conf beside the unit: the drop-ins must not warn either
    // (ExecStart names the node on PATH, which exists here; the code path is not checked by verify)
    const v = analyze(['verify', join(unitDir, 'onsight.service')]);
    expect(v.err + v.out).toBe('');
    // security --offline reads one file: merge the drop-ins into a copy to score the result
    const score = exposure(mergedCopy(unitDir));
    console.log(`exposure with the low-port and log-files drop-ins: ${score}`);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  it.runIf(built)('writes no drop-in when every port is 1024 or above and no file is tailed; keeps an existing config', () => {
    const root = tmp('onsight-root-');
    mkdirSync(join(root, 'etc', 'onsight'), { recursive: true });
    const mine = `inputs: [{ type: syslog, listen: "udp://0.0.0.0:5514" }]\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]\n`;
    writeFileSync(join(root, 'etc', 'onsight', 'onsight.yaml'), mine);
    const r = spawnSync('sh', [INSTALL, '--root', root, '--no-copy'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('(kept)');
    expect(readFileSync(join(root, 'etc', 'onsight', 'onsight.yaml'), 'utf8')).toBe(mine);
    expect(existsSync(join(root, 'etc', 'systemd', 'system', 'onsight.service.d'))).toBe(false);
  });

  /**
   * `type: lease` inputs: the DHCP server's lease database, read in place by the dynamic user. What
   * others may not reach (a directory they may not search or, for the journals, list; the file
   * they may not read) gets its group in lease-files.conf. The paths are this machine's, also with
   * --root: the test makes them under a temp dir with the modes and groups it needs (chgrp to a
   * group of the system needs root).
   */
  const asRoot = process.getuid?.() === 0;
  const gidOf = (name: string): number | undefined => {
    const r = spawnSync('getent', ['group', name], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.split(':')[2]) : undefined;
  };
  const leaseConfig = (dir: string, inputs: string[]) => {
    const cfg = join(dir, 'onsight.yaml');
    writeFileSync(cfg, `inputs:\n${inputs.map((i) => `  - ${i}\n`).join('')}policy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]\n`);
    return cfg;
  };
  /** a temp dir others may search (mkdtemp makes it 0700: an obstacle of its own) */
  const openTmp = (p: string) => {
    const d = tmp(p);
    chmodSync(d, 0o755);
    return d;
  };
  const install = (root: string, cfg: string) => spawnSync('sh', [INSTALL, '--root', root, '--no-copy', '--config', cfg], { encoding: 'utf8' });
  const mail = gidOf('mail');
  const daemon = gidOf('daemon');
  if (!asRoot || mail === undefined || daemon === undefined) console.log('SKIP lease-files.conf with groups: needs root and the groups mail and daemon');

  it.runIf(built && asRoot && mail !== undefined && daemon !== undefined)('writes lease-files.conf with the groups of lease databases closed to others; verify and security still pass', () => {
    const base = openTmp('onsight-lease-');
    // Kea's leases in a 0750 directory, as ISC's packages keep /var/lib/kea: the journal's directory is listed, so r-x
    const kea = join(base, 'kea');
    mkdirSync(kea, { mode: 0o750 });
    chownSync(kea, 0, mail!);
    writeFileSync(join(kea, 'kea-leases4.csv'), 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n', { mode: 0o640 });
    chownSync(join(kea, 'kea-leases4.csv'), 0, mail!);
    // a dnsmasq snapshot behind a directory its group may only search (x)
    const misc = join(base, 'misc');
    mkdirSync(misc, { mode: 0o710 });
    chownSync(misc, 0, daemon!);
    writeFileSync(join(misc, 'dnsmasq.leases'), '', { mode: 0o644 });
    const cfg = leaseConfig(base, [
      `{ type: lease, path: ${join(kea, 'kea-leases4.csv')}, format: kea }`,
      `{ type: lease, path: ${join(misc, 'dnsmasq.leases')}, format: dnsmasq }`,
    ]);
    const root = tmp('onsight-root-');
    const r = install(root, cfg);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const unitDir = join(root, 'etc', 'systemd', 'system');
    expect(readdirSync(join(unitDir, 'onsight.service.d'))).toEqual(['lease-files.conf']);
    const dropin = readFileSync(join(unitDir, 'onsight.service.d', 'lease-files.conf'), 'utf8');
    expect(dropin).toMatch(/^SupplementaryGroups=mail daemon$/m);
    expect(dropin).toMatch(/^PrivateUsers=no$/m);
    expect(dropin).toContain(`directory ${kea} (0750, group mail): its group may list (r-x) it`);
    expect(dropin).toContain(`file ${join(kea, 'kea-leases4.csv')} (0640, group mail): its group may read (r) it`);
    expect(dropin).toContain(`directory ${misc} (0710, group daemon): its group may search (x) it`);
    expect(r.stdout).toContain(`drop-in:  ${join(unitDir, 'onsight.service.d', 'lease-files.conf')} (group(s) mail daemon, to read the lease databases)`);

    if (skip) return console.log(`SKIP verify/security with lease-files.conf: ${skip}`);
    const v = analyze(['verify', join(unitDir, 'onsight.service')]);
    expect(v.err + v.out).toBe('');
    const score = exposure(mergedCopy(unitDir));
    console.log(`exposure with the lease-files drop-in: ${score}`);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  it.runIf(built)('writes no lease drop-in for lease databases others may read, and removes one written before', () => {
    const base = openTmp('onsight-lease-');
    writeFileSync(join(base, 'dhcpd.leases'), '', { mode: 0o644 });
    const root = tmp('onsight-root-');
    // a re-run after the database was opened to others: the group it needed before is not needed now
    const dropins = join(root, 'etc', 'systemd', 'system', 'onsight.service.d');
    mkdirSync(dropins, { recursive: true });
    writeFileSync(join(dropins, 'lease-files.conf'), '[Service]\nSupplementaryGroups=mail\nPrivateUsers=no\n');
    const r = install(root, leaseConfig(base, [`{ type: lease, path: ${join(base, 'dhcpd.leases')}, format: isc-dhcpd }`]));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`leases:   ${join(base, 'dhcpd.leases')} (others may read it: no group needed)`);
    expect(r.stdout).not.toContain('drop-in:');
    expect(readdirSync(dropins)).toEqual([]);
  });

  it.runIf(built)('warns of a lease database that does not exist yet and writes nothing for it', () => {
    const base = openTmp('onsight-lease-');
    const gone = join(base, 'kea', 'kea-leases4.csv');
    const root = tmp('onsight-root-');
    const r = install(root, leaseConfig(base, [`{ type: lease, path: ${gone}, format: kea }`]));
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`install.sh: warning: lease database ${gone} (kea) does not exist yet: the service may not be able to read it once it exists; re-run install.sh when it does`);
    expect(existsSync(join(root, 'etc', 'systemd', 'system', 'onsight.service.d'))).toBe(false);
  });

  it.runIf(built && asRoot)('warns of an obstacle only group root may pass, and never adds group root', () => {
    const base = openTmp('onsight-lease-');
    const dir = join(base, 'dhcp');
    mkdirSync(dir, { mode: 0o750 });
    chownSync(dir, 0, 0);
    writeFileSync(join(dir, 'dhcpd.leases'), '', { mode: 0o644 });
    const root = tmp('onsight-root-');
    const r = install(root, leaseConfig(base, [`{ type: lease, path: ${join(dir, 'dhcpd.leases')}, format: isc-dhcpd }`]));
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`install.sh: warning: directory ${dir} (0750, group root): others may not list (r-x) it, needed to read ${join(dir, 'dhcpd.leases')}, and its group is root, which install.sh never gives the service: give it a group of its own`);
    expect(r.stdout).not.toContain('drop-in:');
    expect(existsSync(join(root, 'etc', 'systemd', 'system', 'onsight.service.d'))).toBe(false);
  });
});
