/**
 * A sender whose clock was never set (no battery-backed clock: 1970-01-01 after a boot without NTP)
 * sends live lines. Placed at its own time, a lease would have run out decades ago and the device
 * would never be scanned, without a trace: the line is placed at receipt instead, and counted.
 * Through the real daemon: a UDP syslog input on loopback, the decode thread, the SQLite inventory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { daemonView } from '../src/daemon/view.js';
import { renderMetrics } from '../src/http/metrics.js';
import { silentLogger } from '../src/log.js';
import { freePort } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-clock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a daemon with a UDP syslog input on loopback (and a file input on `file`), timers too slow to act during a test */
async function startDaemon(state: string, file?: string): Promise<{ d: Daemon; port: number }> {
  const port = await freePort();
  const { config } = validateConfig({
    state: join(dir, state), timezone: 'UTC',
    inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto' }, ...(file ? [{ type: 'file', path: file, format: 'auto' }] : [])],
    policy: { scope: ['10.0.0.0/8'] },
    regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['a'] }],
    http: { enabled: false },
  });
  const d = new Daemon({ config, log: silentLogger(), tickMs: 3_600_000, sweepMs: 3_600_000 });
  await d.start();
  return { d, port };
}

describe('a sender whose clock was never set', () => {
  it('has its live leases placed at receipt and counted, as has a line whose time is no time, while a set clock keeps its own time', async () => {
    const { d, port } = await startDaemon('state.db');
    try {
      const sent = Date.now();
      const tenMinAgo = new Date(sent - 600_000).toISOString();
      // RFC 5424 headers: one from a clock at 1970, one from a clock 10 min behind ours (a late line)
      await udpSend(port, '<30>1 1970-01-01T00:03:12Z dhcp01 dhcpd 7 - - DHCPACK on 10.20.0.7 to 52:54:00:00:00:07 via eth0');
      await udpSend(port, `<30>1 ${tenMinAgo} dhcp02 dhcpd 7 - - DHCPACK on 10.20.0.8 to 52:54:00:00:00:08 via eth0`);
      // a TIMESTAMP that is no time at all (February 30th, 25:61): the header is refused as the RFC
      // has it; the line is read without its time rather than lost
      await udpSend(port, '<30>1 2026-02-30T25:61:00Z dhcp03 dhcpd 7 - - DHCPACK on 10.20.0.9 to 52:54:00:00:00:09 via eth0');
      const present = await until(async () => {
        const p = await d.inventory.presentBindings(Date.now());
        return p.length === 3 && p;
      }, 10_000, 'the three devices present');
      const byIp = new Map(present.map((b) => [b.ip, b]));
      // placed at receipt: present now, seen within the test's run
      expect(byIp.get('10.20.0.7')!.startAt).toBeGreaterThanOrEqual(sent - 1000);
      expect(byIp.get('10.20.0.7')!.startAt).toBeLessThanOrEqual(Date.now());
      expect(byIp.get('10.20.0.9')!.startAt).toBeGreaterThanOrEqual(sent - 1000);
      expect(byIp.get('10.20.0.9')!.startAt).toBeLessThanOrEqual(Date.now());
      // a set clock is trusted as before
      expect(byIp.get('10.20.0.8')!.startAt).toBe(Date.parse(tenMinAgo));
      const metrics = await renderMetrics(daemonView(d));
      expect(metrics).toMatch(/^onsight_parser_bad_times_total\{why="clockUnset",outcome="receipt"\} 1$/m);
      expect(metrics).toMatch(/^onsight_parser_bad_times_total\{why="invalidTimestamp",outcome="receipt"\} 1$/m);
    } finally {
      await d.stop();
    }
  });

  it('in a file, read at any time later, is dropped and counted: placed at its reading, it would end the address\'s current holder', async () => {
    const file = join(dir, 'old.log');
    const { d, port } = await startDaemon('file.db', file);
    try {
      // the address's holder now, over the network
      await udpSend(port, `<30>1 ${new Date().toISOString()} dhcp01 dhcpd 7 - - DHCPACK on 10.20.0.20 to 52:54:00:00:00:20 via eth0`);
      await until(async () => (await d.inventory.presentBindings(Date.now())).length === 1, 10_000, 'the holder present');
      // a log written while the server's clock was unset: another device on that address, and one elsewhere
      writeFileSync(file, [
        '<30>1 1970-01-01T00:03:12Z dhcp01 dhcpd 7 - - DHCPACK on 10.20.0.20 to 52:54:00:00:00:99 via eth0',
        `<30>1 ${new Date(Date.now() - 60_000).toISOString()} dhcp01 dhcpd 7 - - DHCPACK on 10.20.0.21 to 52:54:00:00:00:21 via eth0`,
      ].join('\n') + '\n');
      const present = await until(async () => {
        const p = await d.inventory.presentBindings(Date.now());
        return p.length === 2 && p;
      }, 10_000, 'the file read');
      expect(present.map((b) => [b.ip, b.mac]).sort()).toEqual([['10.20.0.20', '52:54:00:00:00:20'], ['10.20.0.21', '52:54:00:00:00:21']]);
      const metrics = await renderMetrics(daemonView(d));
      expect(metrics).toMatch(/^onsight_parser_bad_times_total\{why="clockUnset",outcome="dropped"\} 1$/m);
      // (dropped on purpose, not a malformed draft: no parser bug counted)
      expect(metrics).toMatch(/^onsight_parser_invalid_sightings_total 0$/m);
    } finally {
      await d.stop();
    }
  });
});
