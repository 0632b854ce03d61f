/**
 * `onsight rescan` and `onsight skip` against the real daemon (child process, real SQLite file,
 * dry-run scanner, syslog over UDP): the CLI writes the mark beside the running daemon, which
 * honours it within a tick: a rescan launches a device scanned moments ago; a skipped device's
 * lease launches nothing and its decisions say why; lifting the skip releases it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { CLI } from './helpers/paths.js';
import { udpSend } from './helpers/net.js';
import { dhcpAck } from './helpers/syslog-lines.js';

const config = (port: number) => `
${udpDaemonHead(port, '10.20.99.0/24')}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1], maxConcurrentScans: 2 }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
`;

const launchOf = (ip: string) => (e: { launch?: { targets?: { ip: string }[] } }) => !!e.launch?.targets?.some((t) => t.ip === ip);

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('onsight rescan / skip with the daemon running', () => {
  let d: DaemonProcess;
  let port: number;
  let cfg: string;
  const cli = (...args: string[]) => spawnSync('node', [CLI, ...args, '--config', cfg], { encoding: 'utf8' });
  const why = (target: string) => JSON.parse(cli('why', target, '--json').stdout) as { decisions: { decision: string; reason: string }[]; scans: { state: string }[] };

  beforeAll(async () => {
    port = await freePort();
    d = await startDaemon(config(port));
    cfg = join(d.dir, 'onsight.yaml');
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('a rescan makes a device scanned moments ago due now: the daemon launches it again', async () => {
    await udpSend(port, dhcpAck('10.20.1.7', '52:54:00:aa:00:07'));
    await d.waitFor(launchOf('10.20.1.7'));
    // scanned (dry-run: the scan ends after 1 s), so not due for 30 days
    await until('the first scan to finish', () => why('10.20.1.7').scans.find((s) => s.state === 'finished'));
    const launches = () => d.logs.filter(launchOf('10.20.1.7')).length;
    expect(launches()).toBe(1);
    const r = cli('rescan', '10.20.1.7');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('rescan requested for mac:52:54:00:aa:00:07');
    await until('a second launch', () => (launches() === 2 ? true : undefined));
    expect(why('52:54:00:aa:00:07').decisions.some((x) => x.decision === 'due' && x.reason.includes('an operator asked for a rescan'))).toBe(true);
    // honoured once: after that scan it is scanned-recently again, no third launch
    await until('the second scan to finish', () => (why('10.20.1.7').scans.filter((s) => s.state === 'finished').length === 2 ? true : undefined));
    await new Promise((r) => setTimeout(r, 1500));
    expect(launches()).toBe(2);
  });

  it("a skipped device's lease launches nothing while the skip lasts, its decisions say why, and lifting it releases the device", async () => {
    // seen first on an excluded address: known, never scanned
    await udpSend(port, dhcpAck('10.20.99.5', '52:54:00:aa:00:08'));
    await until('the device to be known', () => (why('52:54:00:aa:00:08').decisions.length ? true : undefined));
    const s = cli('skip', '52:54:00:aa:00:08', '--until', '2h');
    expect(s.stderr).toBe('');
    expect(s.status).toBe(0);
    expect(s.stdout).toMatch(/skipped mac:52:54:00:aa:00:08 until \d{4}-/);
    await udpSend(port, dhcpAck('10.20.1.8', '52:54:00:aa:00:08'));
    const skipped = await until('a skipped decision', () => why('10.20.1.8').decisions.find((x) => x.reason.startsWith('skipped: an operator skipped this device until')));
    expect(skipped.decision).toBe('not-due');
    await new Promise((r) => setTimeout(r, 2500)); // several ticks
    expect(d.logs.some(launchOf('10.20.1.8'))).toBe(false);
    const hosts = JSON.parse(cli('hosts', '--json').stdout) as { ip: string; status: string }[];
    expect(hosts.find((h) => h.ip === '10.20.1.8')?.status).toBe('skipped');
    // a rescan does not outrank the skip: it says so (it said "makes it due now")
    const rescan = cli('rescan', '10.20.1.8');
    expect([rescan.status, rescan.stdout]).toEqual([0, expect.stringMatching(/^rescan requested for mac:52:54:00:aa:00:08, but an operator skipped it until \d{4}-.*: it is due once the skip ends/)]);
    const lift = cli('skip', '10.20.1.8', '--until', 'now');
    expect(lift.status).toBe(0);
    expect(lift.stdout).toContain('skip lifted for mac:52:54:00:aa:00:08');
    await d.waitFor(launchOf('10.20.1.8'));
    // the device as onsight printed it (its identity key), and a MAC in Cisco's dotted form, name it too
    // (both were taken as user names: "nothing known")
    expect(why('mac:52:54:00:aa:00:08').decisions.length).toBeGreaterThan(0);
    expect(why('5254.00aa.0008').decisions.length).toBeGreaterThan(0);
    const byKey = cli('skip', 'mac:52:54:00:aa:00:08', '--until', '1h');
    expect([byKey.status, byKey.stdout]).toEqual([0, expect.stringMatching(/^skipped mac:52:54:00:aa:00:08 until /)]);
    expect(cli('skip', 'mac:52:54:00:aa:00:08', '--until', 'now').status).toBe(0);
  });

  it('bad arguments exit 2 with a clear error; an unknown device exits 1', () => {
    for (const [args, msg] of [[['skip', '10.20.1.7', '--until', 'soon'], '--until'], [['rescan', 'x\x1b[2J'], 'control characters'], [['rescan'], 'missing required argument'],
      [['rescan', '10.20.1.999'], '"10.20.1.999" is not an IP address'], [['skip', '10.20.1.0/24'], 'a range names no one device']] as const) {
      const r = cli(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(msg);
    }
    const none = cli('rescan', '10.20.200.200');
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no device present under ip 10.20.200.200');
    const unknown = cli('skip', 'nobody');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('no device known under user nobody');
  });
});

describe('operator marks in the state file', () => {
  it('two marks written in the same millisecond are both seen by a daemon that read the first', async () => {
    const { openDatabase } = await import('../src/store/db.js');
    const { OperatorMarks } = await import('../src/scheduler/marks.js');
    const { SqliteSchedulerStore } = await import('../src/scheduler/queue.js');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'onsight-marks-')), 'state.db'));
    db.exec(`INSERT INTO identities (id, key, first_seen, last_seen) VALUES (1, 'mac:a', 0, 0), (2, 'mac:b', 0, 0)`);
    const marks = new OperatorMarks(new SqliteSchedulerStore(db));
    const now = Date.now();
    await marks.requestRescan([1], now);
    const seen = await marks.lastUpdate();
    await marks.skip([2], now + 3600_000, now); // same millisecond
    expect((await marks.changedSince(seen)).map((m) => m.identityId)).toEqual([2]);
    expect(await marks.get(2)).toMatchObject({ skipUntil: now + 3600_000 });
    expect(await marks.get(1)).toMatchObject({ rescanAt: now });
    // pruning keeps what still changes an answer: a pending rescan, a skip not yet over
    expect(await marks.prune(now + 1000)).toBe(0);
    db.prepare('UPDATE identities SET last_scanned_at = ? WHERE id = 1').run(now + 500); // rescan honoured
    expect(await marks.prune(now + 1000)).toBe(1);
    expect(await marks.get(1)).toBeUndefined();
    expect(await marks.prune(now + 3600_000)).toBe(1); // the skip ended
    expect(await marks.get(2)).toBeUndefined();
    db.close();
  });
});
