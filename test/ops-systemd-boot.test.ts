/**
 * systemd/onsight.service under a REAL systemd (Debian's systemd 252+), not just systemd-analyze.
 *
 * systemd boots as PID 1 of fresh PID, mount, network, UTS and IPC namespaces, on an overlay of
 * the host's root whose writable layer is a tmpfs that lives only in that mount namespace (so its
 * boot-time cleanup of /tmp and everything the unit writes never touch the host), after a
 * pivot_root (a chroot would forbid the unit's PrivateUsers= user namespace). The checkout is
 * bind-mounted read-only at /opt/onsight, where the unit expects it. The test then drives the
 * unit with systemctl through nsenter and checks what the unit file promises:
 * - a bad config exits 2 and is NOT restarted (RestartPreventExitStatus=2), its file:line in the
 *   journal under the identifier `onsight` (SyslogIdentifier=);
 * - a good config starts under DynamicUser with the hardening on, answers /healthz on loopback,
 *   takes a reload (SIGHUP) without a restart, is restarted after a crash (Restart=on-failure)
 *   and stops cleanly on SIGTERM.
 * Needs root, unshare, nsenter, overlayfs and /lib/systemd/systemd; skips with a printed reason
 * otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const SYSTEMD = '/lib/systemd/systemd';

function unavailable(): string | undefined {
  if (userInfo().uid !== 0) return 'needs root (namespaces, overlay mount, pivot_root)';
  if (!existsSync(SYSTEMD)) return `${SYSTEMD} not found (apt-get install systemd)`;
  for (const tool of ['unshare', 'nsenter', 'mount', 'pivot_root']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} not found (util-linux)`;
  }
  if (!existsSync('/usr/bin/node')) return 'the unit runs /usr/bin/node, which does not exist here';
  // overlayfs and namespaces may be refused in some sandboxes: try a throwaway mount
  const probe = spawnSync('unshare', ['--mount', 'sh', '-c',
    'd=$(mktemp -d) && mount -t tmpfs t "$d" && mkdir "$d/u" "$d/w" "$d/m" && mount -t overlay o -o lowerdir=/,upperdir="$d/u",workdir="$d/w" "$d/m" && test -x "$d/m/lib/systemd/systemd"; r=$?; umount -R "$d" 2>/dev/null; rmdir "$d"; exit $r'],
  { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot make an overlay of / in a mount namespace here: ${(probe.stderr || '').trim() || `exit ${probe.status}`}`;
  return undefined;
}

const skip = unavailable();
if (skip) console.log(`SKIP real-systemd unit test: ${skip}`);

const BAD_CONFIG = 'inputs:\n  - type: syslog\n    protocol: udp\n';
const GOOD_CONFIG = `state: /var/lib/onsight/onsight.db
timezone: UTC
inputs:
  - type: syslog
    listen: "udp://127.0.0.1:5514"
    format: auto
policy:
  rescanAfter: 30d
  scope: ["10.0.0.0/8"]
regions:
  - name: default
    cidrs: ["10.0.0.0/8"]
    appliances: [dry-run-appliance]
scanner: { type: dry-run }
http: { listen: "127.0.0.1:9321" }
`;

/** Inside the namespaces: the overlay root, the unit and its files, pivot_root, then systemd as PID 1. */
const BOOT = `set -e
B="$1"
mount --make-rprivate /
mount -t tmpfs tmpfs "$B/t"
mkdir -p "$B/t/u" "$B/t/w" "$B/t/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$B/t/u",workdir="$B/t/w" "$B/t/root"
R="$B/t/root"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R/opt/onsight" "$R/etc/onsight" "$R/etc/systemd/system"
mount --bind "$REPO_DIR" "$R/opt/onsight"
mount -o remount,bind,ro "$R/opt/onsight"
cp "$B/onsight.yaml" "$R/etc/onsight/onsight.yaml"
printf 'not-a-real-password' > "$R/etc/onsight/qualys.pass"
cp "$REPO_DIR/systemd/onsight.service" "$R/etc/systemd/system/onsight.service"
printf '[Unit]\\nDescription=onsight test boot\\nRequires=basic.target\\nAfter=basic.target\\n' > "$R/etc/systemd/system/onsight-test.target"
mkdir -p "$R/.oldroot"
cd "$R"
pivot_root . .oldroot
exec ${SYSTEMD} --system --unit=onsight-test.target --log-target=journal --log-level=notice
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== undefined)('systemd unit under a real systemd', () => {
  let base = '';
  let boot: ChildProcess | undefined;
  let pid1 = 0; // host pid of the namespace's PID 1

  /** run a command inside the booted system */
  const inside = (args: string[], input?: string) => {
    const r = spawnSync('nsenter', ['-t', String(pid1), '-m', '-p', '-n', '-u', '-i', '-r', '-w', ...args], {
      encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' },
    });
    return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
  };
  const show = (prop: string) => inside(['systemctl', 'show', '-p', prop, '--value', 'onsight']).out.trim();
  const journal = () => inside(['journalctl', '-u', 'onsight', '--no-pager', '-o', 'short']).out;
  const waitFor = async (what: string, test: () => boolean, ms = 30_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (test()) return;
      await sleep(250);
    }
    throw new Error(`timed out waiting for ${what}; ActiveState=${show('ActiveState')} SubState=${show('SubState')}\n${journal().slice(-3000)}`);
  };
  const setConfig = (text: string) => {
    const r = inside(['sh', '-c', 'cat > /etc/onsight/onsight.yaml'], text);
    expect(r.status, r.err).toBe(0);
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'onsight-systemd-'));
    spawnSync('mkdir', ['-p', join(base, 't')]);
    writeFileSync(join(base, 'onsight.yaml'), BAD_CONFIG);
    writeFileSync(join(base, 'boot.sh'), BOOT);
    boot = spawn('unshare', ['--pid', '--fork', '--mount', '--net', '--uts', '--ipc', 'bash', join(base, 'boot.sh'), base], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REPO_DIR: REPO.replace(/\/$/, '') }, detached: true,
    });
    let bootErr = '';
    boot.stderr?.on('data', (d) => { bootErr += String(d); });
    // the namespace's PID 1 is the child of unshare that became systemd
    const end = Date.now() + 30_000;
    while (Date.now() < end && !pid1) {
      const r = spawnSync('pgrep', ['-P', String(boot.pid), '-f', SYSTEMD], { encoding: 'utf8' });
      pid1 = Number(r.stdout.trim().split('\n')[0]) || 0;
      if (!pid1) await sleep(200);
    }
    if (!pid1) throw new Error(`systemd did not start: ${bootErr}`);
    await waitFor('the system to finish booting', () => /^(running|degraded)$/.test(inside(['systemctl', 'is-system-running']).out.trim()));
  }, 90_000);

  afterAll(() => {
    if (pid1) spawnSync('kill', ['-KILL', String(pid1)]); // PID 1 gone: the kernel kills the whole namespace
    if (boot?.pid) spawnSync('kill', ['-KILL', String(boot.pid)]);
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('a bad config exits 2 with file:line in the journal and is not restarted', async () => {
    // Type=exec: `start` may return before or after node reads the config; the unit state tells
    inside(['systemctl', 'start', 'onsight']);
    await waitFor('the unit to fail', () => show('ActiveState') === 'failed');
    expect(show('ExecMainStatus')).toBe('2');
    // RestartSec=5s: wait past it and check that no restart was made
    await sleep(6500);
    expect(show('ActiveState')).toBe('failed');
    expect(show('NRestarts')).toBe('0');
    const j = journal();
    expect(j).toMatch(/onsight\[\d+\]: .*\/etc\/onsight\/onsight\.yaml:\d+: inputs\[0\]/);
    expect(j).not.toMatch(/ node\[\d+\]:/);
  }, 60_000);

  it('a good config runs hardened under a dynamic user, reloads, restarts after a crash, stops cleanly', async () => {
    setConfig(GOOD_CONFIG);
    inside(['systemctl', 'reset-failed', 'onsight']);
    const start = inside(['systemctl', 'start', 'onsight']);
    expect(start.status, start.err).toBe(0);
    await waitFor('/healthz', () => inside(['/usr/bin/node', '-e',
      "fetch('http://127.0.0.1:9321/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]).status === 0);
    expect(show('ActiveState')).toBe('active');

    // DynamicUser: a uid from the dynamic range, not root; state under /var/lib/private
    const mainPid = show('MainPID');
    const status = inside(['cat', `/proc/${mainPid}/status`]).out;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    expect(uid).toBeGreaterThanOrEqual(61184);
    expect(uid).toBeLessThanOrEqual(65519);
    expect(/^CapEff:\s+0+$/m.test(status)).toBe(true);
    expect(/^NoNewPrivs:\s+1$/m.test(status)).toBe(true);
    await waitFor('the state file', () => inside(['test', '-s', '/var/lib/private/onsight/onsight.db']).status === 0);

    // reload = SIGHUP to the same process
    expect(inside(['systemctl', 'reload', 'onsight']).status).toBe(0);
    await sleep(1000);
    expect(show('MainPID')).toBe(mainPid);
    expect(show('ActiveState')).toBe('active');

    // a crash (SIGKILL) is restarted after RestartSec
    expect(inside(['systemctl', 'kill', '-s', 'SIGKILL', 'onsight']).status).toBe(0);
    await waitFor('the restart after a crash', () => show('NRestarts') === '1' && show('ActiveState') === 'active' && show('MainPID') !== mainPid, 20_000);

    // SIGTERM: a clean stop, not a failure
    expect(inside(['systemctl', 'stop', 'onsight']).status).toBe(0);
    expect(show('ActiveState')).toBe('inactive');
    expect(show('Result')).toBe('success');
    const j = journal();
    expect(j).toMatch(/onsight\[\d+\]: /);
    expect(j).not.toContain('not-a-real-password');
  }, 120_000);
});
