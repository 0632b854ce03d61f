/**
 * The walking skeleton end to end: the real daemon as a child process, real syslog over UDP and
 * TCP from util-linux `logger`, a real SQLite file, the dry-run scanner.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Database from '../src/store/sqlite.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, freePort, startDaemon } from './helpers/daemon.js';
import { CLI } from './helpers/paths.js';
import { tcpSend, udpSend } from './helpers/net.js';

const hasLogger = spawnSync('logger', ['--help'], { encoding: 'utf8' }).status === 0;
if (!hasLogger) console.log('SKIP logger parts: util-linux `logger` is not installed (apt-get install bsdutils)');

function config(port: number): string {
  return `
state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
  - { type: syslog, listen: "tcp://127.0.0.1:${port}", format: auto, maxMessageBytes: 65536 }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"], exclude: ["10.20.99.0/24"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1], maxConcurrentScans: 1 }
  - { name: amer, cidrs: ["10.30.0.0/16"], appliances: [amer-sa-1], maxConcurrentScans: 1 }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
`;
}



const sightingOf = (ip: string) => (e: { sighting?: { ip?: string } }) => e.sighting?.ip === ip;
const launchOf = (ip: string) => (e: { launch?: { targets?: { ip: string }[] } }) => !!e.launch?.targets?.some((t) => t.ip === ip);

describe('daemon end to end', () => {
  let d: DaemonProcess;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    d = await startDaemon(config(port));
  });
  afterAll(async () => {
    await d?.stop();
  });

  it.runIf(hasLogger)('a DHCPACK sent with `logger` over UDP becomes a sighting and a dry-run launch naming region, appliance and why', async () => {
    const t0 = Date.now();
    // (tagged logger: untagged, logger names the user, root only when run as root; a user's name is no relay's)
    execFileSync('logger', ['-t', 'logger', '-n', '127.0.0.1', '-P', String(port), '-d', 'dhcpd[1]: DHCPACK on 10.20.1.7 to 52:54:00:aa:bb:cc (laptop-7) via eth0']);
    const s = await d.waitFor(sightingOf('10.20.1.7'));
    expect(s.sighting).toMatchObject({ kind: 'lease', mac: '52:54:00:aa:bb:cc', hostname: 'laptop-7', format: 'isc-dhcpd', source: `udp:${port}` });
    const l = await d.waitFor(launchOf('10.20.1.7'));
    expect(l.msg).toMatch(/^DRY RUN: would launch scan .* on appliance emea-sa-1 in region emea .*10\.20\.1\.7 \(never scanned; in region emea by 10\.20\.0\.0\/16\)/);
    console.log(`logger → sighting ${Number(s.receivedAtMs) - t0} ms, → dry-run launch line ${Number(l.receivedAtMs) - t0} ms (includes spawning logger)`);
  });

  it.runIf(hasLogger)('TCP with newline and with octet-counted framing (logger -T, --octet-count), RFC 3164 and 5424', async () => {
    execFileSync('logger', ['-t', 'logger', '-n', '127.0.0.1', '-P', String(port), '-T', '--rfc3164', 'dhcpd[2]: DHCPACK on 10.30.1.8 to 52:54:00:aa:bb:01 via eth0']);
    execFileSync('logger', ['-t', 'logger', '-n', '127.0.0.1', '-P', String(port), '-T', '--octet-count', '--rfc5424', 'dhcpd[3]: DHCPACK on 10.30.1.9 to 52:54:00:aa:bb:02 via eth0']);
    expect((await d.waitFor(sightingOf('10.30.1.8'))).sighting).toMatchObject({ source: `tcp:${port}` });
    expect((await d.waitFor(sightingOf('10.30.1.9'))).sighting).toMatchObject({ source: `tcp:${port}`, mac: '52:54:00:aa:bb:02' });
  });

  it('excluded addresses are seen but never scanned', async () => {
    await udpSend(port, '<30>Nov 23 10:00:00 gw dhcpd[1]: DHCPACK on 10.20.99.5 to 52:54:00:aa:bb:99 via eth0');
    await d.waitFor(sightingOf('10.20.99.5'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(d.logs.some(launchOf('10.20.99.5'))).toBe(false);
  });

  it('bad input (binary garbage, a 1 MiB line, a broken octet count) is counted and dropped; the daemon keeps running', async () => {
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) & 0xff;
    await udpSend(port, garbage);
    await tcpSend(port, Buffer.concat([garbage, Buffer.from('\n')]));
    await tcpSend(port, 'x'.repeat(1 << 20) + '\n');
    await tcpSend(port, '99999999999999 <30>Nov 23 10:00:00 gw dhcpd[1]: broken\n');
    await tcpSend(port, '12 short\n');
    await udpSend(port, '<30>Nov 23 10:00:00 gw dhcpd[1]: DHCPACK on 10.30.2.2 to 52:54:00:aa:cc:01 via eth0');
    await tcpSend(port, '<30>Nov 23 10:00:00 gw dhcpd[1]: DHCPACK on 10.30.2.3 to 52:54:00:aa:cc:02 via eth0\n');
    await d.waitFor(sightingOf('10.30.2.2'));
    await d.waitFor(sightingOf('10.30.2.3'));
    expect(d.child.exitCode).toBeNull();
  });

  it('SIGTERM drains and exits 0, and the sightings are in the SQLite file', async () => {
    await udpSend(port, '<30>Nov 23 10:00:00 gw dhcpd[1]: DHCPACK on 10.30.3.3 to 52:54:00:aa:dd:01 via eth0');
    await d.waitFor(sightingOf('10.30.3.3'));
    expect(await d.stop('SIGTERM')).toBe(0);
    const db = new Database(join(d.dir, 'state.db'), { readonly: true });
    const ips = (db.prepare('SELECT ip FROM bindings').all() as { ip: string }[]).map((r) => r.ip);
    db.close();
    expect(ips).toEqual(expect.arrayContaining(['10.30.3.3', '10.30.2.2', '10.20.99.5']));
  });

  it('`onsight decisions|scans|hosts --json` show what was decided and why', () => {
    const cfg = join(d.dir, 'onsight.yaml');
    const run = (view: string) => JSON.parse(execFileSync(process.execPath, [CLI, view, '--json', '--config', cfg], { encoding: 'utf8' })) as Record<string, unknown>[];
    const decisions = run('decisions');
    expect(decisions.find((x) => x.ip === '10.20.99.5')?.reason).toMatch(/^excluded: 10\.20\.99\.5 is excluded by 10\.20\.99\.0\/24/);
    if (hasLogger) {
      expect(decisions.filter((x) => x.ip === '10.20.1.7').map((x) => x.decision)).toEqual(expect.arrayContaining(['due', 'launched']));
      expect(run('scans').some((x) => (x.targets as string[]).includes('10.20.1.7'))).toBe(true);
    }
    expect(Array.isArray(run('hosts'))).toBe(true);
  });
});
