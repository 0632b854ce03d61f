/**
 * A VPN session end the user's session from another public address refuses (a forged Cisco ASA
 * 113019, or a client that roamed) is said at warn, at most once a minute with how many came: it
 * was logged at debug only, so an operator saw neither the forgery nor why a roamed client's
 * session stayed open. Real daemon (the CLI), real UDP syslog, the ASA parser.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startDaemon, udpDaemonHead, type DaemonProcess } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { sleep } from './helpers/wait.js';

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const stamp = (d = new Date()) => `${MON[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, '0')} ${d.getUTCFullYear()} ${d.toISOString().slice(11, 19)}`;
const up = (user: string, pub: string, inner: string) => `<166>${stamp()} asa1 : %ASA-4-722051: Group <RA> User <${user}> IP <${pub}> IPv4 Address <${inner}> IPv6 address <::> assigned to session`;
const down = (user: string, pub: string) => `<166>${stamp()} asa1 : %ASA-4-113019: Group = RA, Username = ${user}, IP = ${pub}, Session disconnected. Session Type: AnyConnect-Parent, Duration: 0h:05m:00s, Bytes xmt: 1, Bytes rcv: 1, Reason: User Requested`;

describe('a VPN session end from another public address', () => {
  let d: DaemonProcess | undefined;
  afterAll(async () => {
    await d?.stop();
  });

  it('is refused and said at warn, once a minute with a count; the genuine end still ends the session', async () => {
    const port = await freePort();
    d = await startDaemon(`${udpDaemonHead(port)}regions: [{ name: vpn, cidrs: ["10.50.0.0/16"], appliances: [vpn-sa-1] }]\nscanner: { type: dry-run }\nhttp: { enabled: false }\n`);
    await udpSend(port, up('bob', '203.0.113.7', '10.50.0.17'));
    await d.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === '10.50.0.17');
    for (const pub of ['198.51.100.99', '198.51.100.98', '198.51.100.97']) await udpSend(port, down('bob', pub));
    const said = await d.waitFor((e) => e.msg.startsWith('VPN session end refused'), 10_000);
    expect(said.msg).toMatch(/^VPN session end refused \(1 since the last such line\): no open session of user bob from 198\.51\.100\.99 \(its session is from 203\.0\.113\.7\)/);
    expect(said.level).toBe(40);
    await udpSend(port, down('bob', '203.0.113.7'));
    await d.waitFor((e) => (e as { change?: string }).change === 'ended', 10_000);
    await sleep(300);
    // the other two came within the minute: counted into the next line, not logged each
    expect(d.logs.filter((e) => e.msg.startsWith('VPN session end refused'))).toHaveLength(1);
  }, 60_000);
});
