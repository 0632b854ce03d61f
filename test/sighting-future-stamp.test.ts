/**
 * A live line stamped hours ahead (a forged time, or a sender's clock far ahead) was placed at its
 * own time, up to a day ahead: the inventory ignores a line older than what it knows of the
 * address, so the real device's genuine lines were ignored for about a day. A live line timed more
 * than a few minutes (clock skew) after it came is placed when it came, and said; a file's line
 * timed more than a few minutes after it was read (no line is written after it is read) is placed
 * at its reading, as is every line of a file that runs ahead. Through the real daemon: UDP syslog on loopback, a
 * tailed file, the SQLite inventory, `onsight why`.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, freePort, startDaemon, type LogEntry } from './helpers/daemon.js';
import { CLI } from './helpers/paths.js';
import { udpSend } from './helpers/net.js';

interface Logged extends LogEntry {
  sighting?: { ip?: string; mac?: string; kind?: string; at?: string };
  change?: string;
}

const HOUR = 3_600_000;

describe('a live line stamped in the future', () => {
  let d: DaemonProcess;
  let port: number;
  let file: string;
  beforeAll(async () => {
    port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'onsight-future-'));
    file = join(dir, 'dhcpd.log');
    writeFileSync(file, '');
    d = await startDaemon(`state: STATE
timezone: UTC
log: { level: debug }
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
  - { type: file, path: ${file}, format: auto, pollMs: 20 }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"] }
regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: false }
`, {}, dir);
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
  });

  const sighted = (ip: string, mac: string, kind: string) => d.waitFor((e) => {
    const s = (e as Logged).sighting;
    return s?.ip === ip && s.mac === mac && s.kind === kind && (e as Logged).change !== undefined;
  }, 15_000) as Promise<Logged>;

  it('is placed when it came, so the real device\'s later lines of that address are not ignored as older', async () => {
    const sent = Date.now();
    await udpSend(port, `<30>1 ${new Date(sent + 23 * HOUR).toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.3.1 to 52:54:00:66:66:66 (forged) via eth0`);
    const forged = await sighted('10.20.3.1', '52:54:00:66:66:66', 'lease');

    // the real device, a second later: its lease takes the address, its release ends it
    await new Promise((r) => setTimeout(r, 1100));
    await udpSend(port, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.3.1 to 52:54:00:00:00:01 (real-pc) via eth0`);
    expect((await sighted('10.20.3.1', '52:54:00:00:00:01', 'lease')).change).not.toBe('ignored');
    await new Promise((r) => setTimeout(r, 1100));
    await udpSend(port, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPRELEASE of 10.20.3.1 from 52:54:00:00:00:01 via eth0`);
    expect((await sighted('10.20.3.1', '52:54:00:00:00:01', 'release')).change).not.toBe('ignored');
    const why = execFileSync(process.execPath, [CLI, 'why', '--config', join(d.dir, 'onsight.yaml'), '10.20.3.1'], { encoding: 'utf8' });
    expect(why).toContain('52:54:00:00:00:01');
    // placed when it came, and said (with the sender, to find its clock)
    const at = Date.parse(forged.sighting!.at!);
    expect(at).toBeGreaterThanOrEqual(sent - 1000);
    expect(at).toBeLessThanOrEqual(sent + 5000);
    const warned = await d.waitFor((e) => /is timed \d+ min after it came: placed when it came/.test(e.msg));
    expect(warned).toMatchObject({ sender: '127.0.0.1', ip: '10.20.3.1' });
    expect(warned.aheadS as number).toBeGreaterThan(23 * 3600 - 60);
  }, 60_000);

  it('a few minutes ahead (a sender\'s clock a little fast) keeps its own time', async () => {
    const stamp = new Date(Date.now() + 2 * 60_000).toISOString();
    await udpSend(port, `<30>1 ${stamp} gw dhcpd 1 - - DHCPACK on 10.20.3.2 to 52:54:00:00:00:02 via eth0`);
    expect((await sighted('10.20.3.2', '52:54:00:00:00:02', 'lease')).sighting!.at).toBe(stamp);
  }, 30_000);

  it('a file\'s line a few minutes ahead of its reading keeps its own time', async () => {
    const stamp = new Date(Date.now() + 2 * 60_000).toISOString();
    appendFileSync(file, `<30>1 ${stamp} gw dhcpd 1 - - DHCPACK on 10.20.3.3 to 52:54:00:00:00:03 via eth0\n`);
    expect((await sighted('10.20.3.3', '52:54:00:00:00:03', 'lease')).sighting!.at).toBe(stamp);
  }, 30_000);

  it('a file\'s line hours ahead of its reading is placed at its reading, so the real device\'s later lines are not ignored (it kept its own time and hid them)', async () => {
    // (no line is written after it is read: a stamp hours past its reading is a clock ahead or forged)
    const t0 = Date.now();
    appendFileSync(file, `<30>1 ${new Date(Date.now() + 23 * HOUR).toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.3.4 to 52:54:00:66:66:04 (forged) via eth0\n`);
    const at = Date.parse((await sighted('10.20.3.4', '52:54:00:66:66:04', 'lease')).sighting!.at!);
    expect(at).toBeGreaterThanOrEqual(t0 - 1000);
    expect(at).toBeLessThanOrEqual(Date.now());
    await new Promise((r) => setTimeout(r, 1100));
    appendFileSync(file, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.3.4 to 52:54:00:00:00:04 (real-pc) via eth0\n`);
    expect((await sighted('10.20.3.4', '52:54:00:00:00:04', 'lease')).change).not.toBe('ignored');
    await new Promise((r) => setTimeout(r, 1100));
    appendFileSync(file, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPRELEASE of 10.20.3.4 from 52:54:00:00:00:04 via eth0\n`);
    expect((await sighted('10.20.3.4', '52:54:00:00:00:04', 'release')).change).not.toBe('ignored');
    const warned = await d.waitFor((e) => /line \d+ is timed \d+ min after it was read: placed when it was read/.test(e.msg));
    expect(warned).toMatchObject({ ip: '10.20.3.4', line: 2 });
    expect(warned.aheadS as number).toBeGreaterThan(23 * 3600 - 60);
  }, 30_000);

  it('a file whose every line runs 10 min ahead (a writer\'s clock, a zone east of timezone:): each line at its own reading, in order, its lease running (second review: all were pinned at an older line\'s time, two days back, their leases ended)', async () => {
    appendFileSync(file, `<30>1 ${new Date(Date.now() - 48 * HOUR).toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.5.9 to 52:54:00:00:05:09 via eth0\n`);
    await sighted('10.20.5.9', '52:54:00:00:05:09', 'lease');
    const placed: number[] = [];
    for (let k = 1; k <= 3; k++) {
      const t = Date.now();
      appendFileSync(file, `<30>1 ${new Date(Date.now() + 10 * 60_000).toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.5.${k} to 52:54:00:00:05:0${k} via eth0\n`);
      const s = await sighted(`10.20.5.${k}`, `52:54:00:00:05:0${k}`, 'lease');
      placed.push(Date.parse(s.sighting!.at!));
      expect(placed[k - 1]).toBeGreaterThanOrEqual(t - 1000);
      expect(placed[k - 1]).toBeLessThanOrEqual(Date.now());
      await new Promise((r) => setTimeout(r, 50));
    }
    expect([...placed].sort((x, y) => x - y)).toEqual(placed);
    const why = execFileSync(process.execPath, [CLI, 'why', '--config', join(d.dir, 'onsight.yaml'), '10.20.5.3'], { encoding: 'utf8' });
    expect(why).not.toMatch(/not-present/);
  }, 30_000);
});
