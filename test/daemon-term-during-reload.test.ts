/**
 * SIGTERM or SIGINT while a SIGHUP reload is still reading and checking the new config (the real
 * CLI; the reload held up by a parser plug-in whose module takes a while to load, the stop signal a
 * few ms after the SIGHUP). The process exits 0 at once (the stop does not wait for the reload),
 * every line taken over TCP and UDP before the stop signal is in the SQLite file, nothing is logged
 * as failed, and the log says what became of the reload: ended before the stop, or abandoned (never
 * applied to a daemon that is stopping).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { freePort, startDaemon } from './helpers/daemon.js';
import { tcpSend, udpSend } from './helpers/net.js';

const ack = (n: number) => `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on ${ipOf(n)} to 52:54:00:30:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')} via eth0`;
const ipOf = (n: number) => `10.30.${n >> 8}.${n & 255}`;

/** a plug-in module whose load takes `ms` (top-level await); not `valid`: its export is no plug-in, so the reload is refused */
function slowPlugin(ms: number, valid: boolean): string {
  const plugin = valid ? `{ id: 'slow-load', description: 'slow to load', detect: () => 0, create: () => ({ parse: () => [] }) }` : '{ notAPlugin: true }';
  return `await new Promise((r) => setTimeout(r, ${ms}));\nexport default ${plugin};\n`;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Round {
  /** how long the plug-in's load holds the reload up */
  loadMs: number;
  /** between SIGHUP and the stop signal */
  gapMs: number;
  valid: boolean;
  signal: 'SIGTERM' | 'SIGINT';
}

const rounds: Round[] = [
  // the reload outlasts the stop: abandoned, said, and the stop does not wait for it
  { loadMs: 5000, gapMs: 0, valid: true, signal: 'SIGTERM' },
  { loadMs: 5000, gapMs: 3, valid: false, signal: 'SIGINT' },
  // the reload ends about when the stop runs: before it (finished), or abandoned; never applied while stopping
  ...[0, 5, 10, 15, 20, 30].map((gapMs, i): Round => ({ loadMs: 5, gapMs, valid: i % 2 === 0, signal: i % 3 === 2 ? 'SIGINT' : 'SIGTERM' })),
];

describe('a stop signal while a SIGHUP reload runs', () => {
  it.each(rounds.map((r) => [`${r.signal} ${r.gapMs} ms after a SIGHUP whose ${r.valid ? 'valid' : 'refused'} file's check takes ${r.loadMs} ms`, r] as const))('%s', async (_, r) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'onsight-term-reload-'));
    dirs.push(dir);
    const plugins = join(dir, 'plugins');
    mkdirSync(plugins);
    // (the UDP receiver the daemon picks: native where it is built, whose stop now takes what the kernel holds)
    const d = await startDaemon(`
state: STATE
timezone: UTC
parsers: { directory: ${plugins} }
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }
  - { type: syslog, listen: "tcp://127.0.0.1:${port}", format: auto }
policy: { scope: ["10.30.0.0/16"] }
regions: [{ name: emea, cidrs: ["10.30.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run, scanDurationS: 0 }
http: { enabled: false }
`, {}, dir);
    const sent: number[] = [];
    await tcpSend(port, ack(1) + '\n');
    sent.push(1);
    await d.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === ipOf(1));

    // the new file changes the inputs (a restart applies that) and the policy, and adds a plug-in slow to load
    const cfg = join(dir, 'onsight.yaml');
    writeFileSync(join(plugins, 'slow.mjs'), slowPlugin(r.loadMs, r.valid));
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('inputs:\n', `inputs:\n  - { type: syslog, listen: "tcp://127.0.0.1:${await freePort()}" }\n`)
      .replace('scope: ["10.30.0.0/16"]', 'scope: ["10.30.0.0/16"], rescanAfter: 7d'));
    d.child.kill('SIGHUP');
    // lines taken while the reload runs: a TCP connection closed (its bytes all taken), datagrams sent
    const burst = Array.from({ length: 300 }, (_, i) => 256 + i);
    await tcpSend(port, burst.map(ack).join('\n') + '\n');
    await udpSend(port, ack(10));
    await udpSend(port, ack(11));
    sent.push(...burst, 10, 11);
    await new Promise((res) => setTimeout(res, r.gapMs));
    const t0 = Date.now();
    d.child.kill(r.signal);
    const code = await d.exit;
    const exitMs = Date.now() - t0;

    const msgs = d.logs.map((e) => e.msg);
    const said = `exit ${code} after ${exitMs} ms:\n  ${msgs.filter((m) => /SIGHUP|SIGTERM|SIGINT|stopp/.test(m)).join('\n  ')}\n${d.stderr}`;
    expect(code, said).toBe(0);
    expect(exitMs, said).toBeLessThan(r.loadMs >= 5000 ? 4000 : 10_000);
    expect(d.logs.filter((e) => e.level >= 50).map((e) => e.msg), said).toEqual([]);
    expect(msgs.at(-1), said).toBe('onsight stopped');
    const draining = msgs.indexOf(`${r.signal}: draining and stopping`);
    expect(draining, said).toBeGreaterThan(0);
    const ended = msgs.flatMap((m, i) => (/^SIGHUP: .*(reloaded: policy|does not validate)/.test(m) ? [i] : []));
    const abandoned = msgs.flatMap((m, i) => (m.startsWith(`SIGHUP: the reload in progress is abandoned (${r.signal}: stopping; the next start reads ${cfg})`) ? [i] : []));
    console.log(`${r.signal} ${r.gapMs} ms after SIGHUP (check ${r.loadMs} ms): reload ${ended.length ? (ended[0] < draining ? 'ended before the stop' : 'ended while stopping') : abandoned.length ? 'abandoned' : 'not said'}; exit ${code} after ${exitMs} ms`);
    // one or the other, and a reload that ended did so before the stop began
    expect(ended.length + abandoned.length, said).toBe(1);
    if (ended.length) expect(ended[0], said).toBeLessThan(draining);
    else expect(abandoned[0], said).toBe(draining + 1);
    if (r.loadMs >= 5000) expect(abandoned.length, said).toBe(1);
    if (ended.length) expect(msgs[ended[0]], said).toMatch(r.valid ? /reloaded: policy/ : /slow\.mjs: the default export is not a parser plug-in/);
    // nothing said about the reload after the stop began but that it was abandoned
    expect(msgs.slice(draining + 1).filter((m) => m.startsWith('SIGHUP') && !abandoned.includes(msgs.indexOf(m))), said).toEqual([]);

    const db = new Database(join(dir, 'state.db'), { readonly: true });
    try {
      const ips = new Set((db.prepare('SELECT DISTINCT ip FROM sightings').all() as { ip: string }[]).map((x) => x.ip));
      expect(sent.map(ipOf).filter((ip) => !ips.has(ip)), said).toEqual([]);
    } finally {
      db.close();
    }
  }, 60_000);
});
