/**
 * GET /api/why's `now` through the real daemon's status listener: the daemon passes its running
 * config's regions and scheduler, so a device queued behind its region's running scan says so
 * (waitsFor region-scans, with that scan), as `onsight why` does from its config. It passed none,
 * and the row said only "the store does not tell what it waits for". The real daemon (dry-run
 * scanner whose scans run for ten minutes), a real UDP syslog input, a real SQLite state, HTTP on
 * loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startDaemon, type DaemonProcess, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { dhcpAck } from './helpers/syslog-lines.js';
import { until } from './helpers/wait.js';

const launchOf = (ip: string) => (e: { launch?: { targets?: { ip: string }[] } }) => !!e.launch?.targets?.some((t) => t.ip === ip);

interface NowRow { ip: string; region: string; state: string; waitsFor?: { kind: string; scans?: { appliance: string; state: string }[] }; text: string }

describe('/api/why: what a queued device waits for (now)', () => {
  let d: DaemonProcess;
  let port: number;
  let httpPort: number;

  beforeAll(async () => {
    port = await freePort();
    httpPort = await freePort();
    // (one scan at a time in the region, the default; the appliance has room for more: the region's limit is the one)
    d = await startDaemon(`${udpDaemonHead(port)}regions:
  - { name: lab, cidrs: ["10.31.0.0/16"], appliances: [{ name: lab-sa-1, maxScans: 4 }] }
scanner: { type: dry-run, scanDurationS: 600 }
http: { listen: "127.0.0.1:${httpPort}" }
`);
  }, 60_000);
  afterAll(async () => {
    expect(await d.stop()).toBe(0);
  });

  it("a device queued behind the region's running scan: waitsFor region-scans, naming that scan", async () => {
    await udpSend(port, dhcpAck('10.31.0.1', '52:54:00:31:00:01', 'first'));
    await d.waitFor(launchOf('10.31.0.1'), 30_000);
    await udpSend(port, dhcpAck('10.31.0.2', '52:54:00:31:00:02', 'second'));
    let now: NowRow[] = [];
    await until(async () => {
      const r = await fetch(`http://127.0.0.1:${httpPort}/api/why?target=10.31.0.2`);
      expect(r.status).toBe(200);
      now = ((await r.json()) as { now: NowRow[] }).now;
      return now.length > 0;
    }, 20_000, 'the second device queued');
    expect(now).toHaveLength(1);
    expect(now[0]).toMatchObject({ ip: '10.31.0.2', region: 'lab', state: 'queued', waitsFor: { kind: 'region-scans', scans: [{ appliance: 'lab-sa-1', state: 'running' }] } });
    expect(now[0].text).toContain("waiting for the region's running scan");
    expect(d.logs.some(launchOf('10.31.0.2'))).toBe(false); // (still queued: the answer was not about a launched device)
  }, 60_000);
});
