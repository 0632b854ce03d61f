/** The sighting log line of a name from a log line (attacker-controlled, any length): cut, not the whole name twice a packet. */
import { describe, expect, it } from 'vitest';
import { freePort, startDaemon } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';

describe('sighting log lines', () => {
  it('a 30,000-character host name is logged cut to 256 characters, with its length (120 KB a line before)', async () => {
    const port = await freePort();
    const d = await startDaemon(`
state: STATE
inputs: [{ type: syslog, listen: "udp://127.0.0.1:${port}" }]
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { enabled: false }
`);
    try {
      const name = 'h'.repeat(30_000);
      await udpSend(port, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on 10.9.0.7 to 52:54:00:09:00:07 (${name}) via eth0`);
      const line = await d.waitFor((e) => String(e.msg).startsWith('sighting lease 10.9.0.7'));
      expect(JSON.stringify(line).length).toBeLessThan(2000);
      expect(String(line.msg)).toContain(`(${'h'.repeat(256)}… (30000 characters))`);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  }, 30_000);
});
