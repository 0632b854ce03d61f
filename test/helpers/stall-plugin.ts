/**
 * A user parser plug-in whose regex can backtrack without end, and a real daemon that loads it with
 * the decode thread on (TCP syslog on loopback, dry-run scanner, the status listener): what the
 * decode watchdog tests share.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startDaemon, type DaemonProcess, type LogEntry } from './daemon.js';

/** a plug-in reading `ip=ADDR user=NAME` with /re/flags, tag `tag` */
export const stallPlugin = (tag: string, re: string, flags = '') => `
const RE = /${re}/${flags};
export default {
  id: '${tag}', description: 'reads ip= and user=', claims: { tags: ['${tag}'] },
  detect: (i) => i.syslog.appName === '${tag}',
  create: () => ({ parse(i) { const m = RE.exec(i.syslog.msg); return m ? [{ kind: 'tunnel-up', ip: m[1], user: m[2] }] : []; } }),
};
`;

/** a line the plug-in tagged `tag` reads */
export const stallLine = (tag: string, ip: string, user: string) => `<30>Nov 23 11:59:59 vpn ${tag}[1]: ip=${ip} user=${user}`;

/** 40 letters and a `!`: some 2.7^40 steps for a backtracking engine */
export const CRAFTED = `${'a'.repeat(40)}!`;

export const sightingOf = (ip: string) => (e: LogEntry) => (e as { sighting?: { ip?: string } }).sighting?.ip === ip;

/** A real daemon loading `plugins` (file name → text) from a folder of its own, removed by `cleanup`; `lineTimeoutS`: ingest.decodeLineTimeoutS. */
export async function startStallDaemon(plugins: Record<string, string>, lineTimeoutS?: number): Promise<{ d: DaemonProcess; port: number; httpPort: number; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-stall-'));
  const pdir = join(dir, 'plugins');
  mkdirSync(pdir);
  for (const [name, text] of Object.entries(plugins)) writeFileSync(join(pdir, name), text);
  const [port, httpPort] = [await freePort(), await freePort()];
  const d = await startDaemon(`state: STATE
timezone: UTC
inputs:
  - { type: syslog, listen: "tcp://127.0.0.1:${port}", format: auto }
parsers: { directory: ${pdir} }
ingest: { decodeThread: true${lineTimeoutS === undefined ? '' : `, decodeLineTimeoutS: ${lineTimeoutS}`} }
policy: { rescanAfter: 30d, scope: ["10.0.0.0/8"] }
regions:
  - { name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }
scanner: { type: dry-run, scanDurationS: 1 }
http: { enabled: true, listen: "127.0.0.1:${httpPort}" }
`);
  const cleanup = async () => {
    if (d.child.exitCode === null) {
      // (a thread stuck in a regex: do not wait on a clean stop for ever)
      const killer = setTimeout(() => d.child.kill('SIGKILL'), 10_000);
      await d.stop();
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { d, port, httpPort, cleanup };
}
