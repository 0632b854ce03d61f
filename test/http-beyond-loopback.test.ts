/**
 * The status listener bound beyond loopback with nothing that authenticates it (no http.tokens, no
 * client certificates): device data (the page, /api/status, /api/why) is answered to loopback
 * clients only, 403 naming the fix to others; /metrics and /healthz answer anyone; with
 * http.allowUnauthenticated the data is shown to all, as asked. The real daemon, reached over this
 * machine's own non-loopback address (the connection's source is that address, not loopback).
 */
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, udpDaemonHead, freePort, type DaemonProcess } from './helpers/daemon.js';

const ext = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
if (!ext) console.log('http-beyond-loopback: skipped, this machine has no non-loopback IPv4 address to connect from');

const running: DaemonProcess[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

async function start(httpExtra: string): Promise<{ port: number; d: DaemonProcess }> {
  const port = await freePort();
  const d = await startDaemon(`${udpDaemonHead(await freePort())}regions:
  - { name: r1, cidrs: ["10.0.0.0/8"], appliances: [a1] }
scanner: { type: dry-run }
http: { listen: "0.0.0.0:${port}"${httpExtra} }
`);
  running.push(d);
  return { port, d };
}

describe.skipIf(!ext)('status listener beyond loopback', () => {
  it('without tokens: device data to loopback clients only, /metrics and /healthz to anyone', async () => {
    const { port, d } = await start('');
    for (const path of ['/api/status', '/api/why?target=10.1.2.3', '/']) {
      const far = await fetch(`http://${ext}:${port}${path}`);
      expect(far.status, path).toBe(403);
      expect(await far.text()).toMatch(/http\.tokens is empty.*loopback clients only.*allowUnauthenticated/s);
      expect((await fetch(`http://127.0.0.1:${port}${path}`)).status, `${path} from loopback`).toBe(200);
    }
    expect((await fetch(`http://${ext}:${port}/healthz`)).status).not.toBe(403);
    const metrics = await fetch(`http://${ext}:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/onsight_http_requests_refused_total\{reason="notLoopback"\} 3/);
    expect(d.logs.some((e) => /is not loopback and http\.tokens is empty/.test(e.msg))).toBe(true);
  }, 60_000);

  it('with http.allowUnauthenticated: shown to anyone, as asked', async () => {
    const { port } = await start(', allowUnauthenticated: true');
    expect((await fetch(`http://${ext}:${port}/api/status`)).status).toBe(200);
  }, 60_000);
});
