/**
 * systemd/onsight.service and systemd/install.sh, checked with the real systemd-analyze (Debian
 * package `systemd`; no running systemd needed): `verify` prints no warning, `security
 * --offline=yes` reports an exposure of 2.0 or lower, also with the drop-ins install.sh writes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
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
    expect(r.stderr).toBe('');
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
    const merged = tmp('onsight-merged-');
    const extra = readdirSync(join(unitDir, 'onsight.service.d')).map((f) => readFileSync(join(unitDir, 'onsight.service.d', f), 'utf8')).join('\n');
    const p = localCopy(merged, '\n' + extra);
    const score = exposure(p);
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
});
