/** SIGHUP re-reads the config: policy and regions apply at once, listeners stay up, the rest asks for a restart. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, startDaemon } from './helpers/daemon.js';
import { tcpSend, udpSend } from './helpers/net.js';

const ack = (ip: string, mac: string) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ip} to ${mac} via eth0`;

describe('SIGHUP', () => {
  it('applies a new exclusion list and regions live, keeps connections, and says what needs a restart', async () => {
    const port = await freePort();
    const d = await startDaemon(`
state: STATE
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}" }
  - { type: syslog, listen: "tcp://127.0.0.1:${port}" }
policy: { scope: ["10.0.0.0/8"], exclude: ["10.20.5.0/24"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run, scanDurationS: 60 }
http: { enabled: false }
`);
    try {
      await udpSend(port, ack('10.20.5.5', '52:54:00:05:05:05'));
      await d.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === '10.20.5.5');
      await new Promise((r) => setTimeout(r, 500));
      const launched = () => d.logs.some((e) => (e as { launch?: { targets: { ip: string }[] } }).launch?.targets.some((t) => t.ip === '10.20.5.5'));
      expect(launched()).toBe(false);

      const cfg = join(d.dir, 'onsight.yaml');
      const text = readFileSync(cfg, 'utf8');
      writeFileSync(cfg, text.replace('exclude: ["10.20.5.0/24"]', 'exclude: []').replace(`tcp://127.0.0.1:${port}`, `tcp://127.0.0.1:${port + 1}`));
      d.child.kill('SIGHUP');
      await d.waitFor((e) => e.msg.includes('reloaded: policy, regions'));
      const warn = await d.waitFor((e) => e.msg.includes('restart onsight to apply'));
      expect(warn.msg).toMatch(/inputs changed/);
      // the host excluded before is due now: the re-evaluation after the reload launches it
      await d.waitFor(() => launched(), 5000);
      // the listeners were not restarted: the old TCP port still takes lines
      await tcpSend(port, ack('10.20.6.6', '52:54:00:06:06:06') + '\n');
      await d.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === '10.20.6.6');

      writeFileSync(cfg, 'policy: [broken\n');
      d.child.kill('SIGHUP');
      await d.waitFor((e) => e.msg.includes('does not validate (the running config stays)'));
      expect(d.child.exitCode).toBeNull();
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});
