/** SIGHUP re-reads the config: policy and regions apply at once, listeners stay up, the rest asks for a restart. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
      // (the decode thread's watchdog bound is the thread's, made at the start: before, a changed ingest section was said nowhere)
      writeFileSync(cfg, text.replace('exclude: ["10.20.5.0/24"]', 'exclude: []').replace(`tcp://127.0.0.1:${port}`, `tcp://127.0.0.1:${port + 1}`) + 'ingest: { decodeLineTimeoutS: 5 }\n');
      d.child.kill('SIGHUP');
      await d.waitFor((e) => e.msg.includes('reloaded: policy, regions'));
      const warn = await d.waitFor((e) => e.msg.includes('restart onsight to apply'));
      expect(warn.msg).toMatch(/inputs, ingest changed/);
      // the host excluded before is due now: the re-evaluation after the reload launches it
      await d.waitFor(() => launched(), 5000);
      // the listeners were not restarted: the old TCP port still takes lines
      await tcpSend(port, ack('10.20.6.6', '52:54:00:06:06:06') + '\n');
      await d.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === '10.20.6.6');

      writeFileSync(cfg, 'policy: [broken\n');
      d.child.kill('SIGHUP');
      await d.waitFor((e) => e.msg.includes('does not validate (the running config stays)'));
      expect(d.child.exitCode).toBeNull();

      // what config check and run refuse beyond the schema, a reload refuses too (before, it was applied and
      // the log asked for a restart that would then fail): an unknown format, a path no file can ever be at
      const valid = text.replace('exclude: ["10.20.5.0/24"]', 'exclude: ["10.20.9.0/24"]');
      for (const [bad, why] of [[valid.replace(`{ type: syslog, listen: "udp://127.0.0.1:${port}" }`, `{ type: syslog, listen: "udp://127.0.0.1:${port}", format: no-such-format }`), /unknown format "no-such-format"/],
        [valid.replace('inputs:\n', 'inputs:\n  - { type: file, path: /nonexistent/dir/x.log }\n'), /cannot tail \/nonexistent\/dir\/x\.log/]] as const) {
        writeFileSync(cfg, bad);
        const seen = d.logs.length;
        d.child.kill('SIGHUP');
        const refused = await d.waitFor((e) => d.logs.indexOf(e) >= seen && e.msg.includes('does not validate (the running config stays)'));
        expect(refused.msg).toMatch(why);
        expect(d.logs.slice(seen).some((e) => e.msg.includes('reloaded: policy, regions'))).toBe(false);
      }
      // a valid file's warnings are logged at the reload as at the start
      writeFileSync(cfg, valid.replace('regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]', 'regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }, { name: far, cidrs: ["192.168.0.0/16"], appliances: [far-1] }]'));
      const seen = d.logs.length;
      d.child.kill('SIGHUP');
      await d.waitFor((e) => d.logs.indexOf(e) >= seen && e.msg.includes('reloaded: policy, regions'));
      expect(d.logs.slice(seen).some((e) => /SIGHUP: config: .*region "far" lies wholly outside policy.scope/.test(e.msg))).toBe(true);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('applies a new exclusion when an input running as configured has a problem a restart would refuse (its folder gone: the reload was refused)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-vanishing-'));
    const d = await startDaemon(`
state: STATE
inputs:
  - { type: file, path: ${join(dir, 'x.log')} }
policy: { scope: ["10.0.0.0/8"], exclude: ["10.20.5.0/24"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run }
http: { enabled: false }
`);
    try {
      rmSync(dir, { recursive: true }); // an unmount, a cleanup job
      const cfg = join(d.dir, 'onsight.yaml');
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('exclude: ["10.20.5.0/24"]', 'exclude: ["10.20.5.0/24", "10.20.7.0/24"]'));
      d.child.kill('SIGHUP');
      const said = await d.waitFor((e) => e.msg.includes('an input running as configured: a restart would refuse it; the rest is applied'));
      expect(said.msg).toMatch(/cannot tail \S+x\.log: its directory \S+ does not exist/);
      await d.waitFor((e) => e.msg.includes('reloaded: policy, regions'));
      // the same problem with the inputs changed otherwise (one added) is refused: a restart would refuse it
      const withMore = readFileSync(cfg, 'utf8').replace('inputs:\n', `inputs:\n  - { type: syslog, listen: "udp://127.0.0.1:${await freePort()}" }\n`);
      writeFileSync(cfg, withMore);
      let seen = d.logs.length;
      d.child.kill('SIGHUP');
      await d.waitFor((e) => d.logs.indexOf(e) >= seen && e.msg.includes('does not validate (the running config stays)'));
      // a changed input with such a problem is still refused
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(join(dir, 'x.log'), join(dir, 'y.log')));
      seen = d.logs.length;
      d.child.kill('SIGHUP');
      const refused = await d.waitFor((e) => d.logs.indexOf(e) >= seen && e.msg.includes('does not validate (the running config stays)'));
      expect(refused.msg).toMatch(/cannot tail \S+y\.log/);
    } finally {
      expect(await d.stop()).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
