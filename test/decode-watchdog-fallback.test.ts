/**
 * When the decode thread is given up, the ingest decodes on the main thread, which has no watchdog.
 * There the line the watchdog dropped stays dropped and a user plug-in that stalled the thread stays
 * off; every other line of the batch is decoded. Two ways there: the restarted thread cannot load
 * the plug-in folder (the admin copied acme.mjs to acme.old.mjs before fixing it: the id is defined
 * twice), and more than 5 thread exits within 10 min (test/decode-watchdog-exit.test.ts). Before, the whole batch was decoded on the
 * main thread with the dropped line and the stalling plug-in in it, holding every input, the HTTP
 * API and the scheduler for the whole backtrack (for ever with 40 letters).
 * Real parts: the in-process daemon (TCP syslog on loopback, SQLite file), the DecodeThread from
 * dist/ (npx tsc first), real plug-in files.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { Daemon } from '../src/daemon/daemon.js';
import { validateConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { renderMetrics } from '../src/http/index.js';
import { daemonView } from '../src/daemon/view.js';
import { decodeThreadEntry } from '../src/daemon/decode-client.js';
import { freePort } from './helpers/daemon.js';
import { tcpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';
import { CRAFTED } from './helpers/stall-plugin.js';

const built = decodeThreadEntry() !== undefined;
if (!built) console.log('SKIP decode watchdog fallback tests: no compiled decode thread under dist/ (run npx tsc)');

/**
 * acme: an `i`-flag regex that backtracks (V8's linear engine does not take it). Its copy in this
 * test's own thread (the daemon's registry: the main-thread fallback) counts its runs in
 * globalThis.__acmeRuns and returns at once, so the old code fails here instead of hanging.
 */
const ACME = `const RE = /user=((?:\\w+\\s?)+)$/i;
const here = () => globalThis.__acmeRuns !== undefined && ++globalThis.__acmeRuns > 0;
export default { id: 'acme', description: 'a backtracking i-flag regex', claims: { tags: ['acme'] },
  detect: (i) => (here(), i.syslog.appName === 'acme'),
  create: () => ({ parse(i) { if (here()) return []; const m = RE.exec(i.syslog.msg); return m ? [{ kind: 'tunnel-up', ip: '10.9.9.9', user: m[1] }] : []; } }) };`;
const acmeLine = (user: string) => `<30>Nov 23 11:59:59 vpn acme[1]: user=${user}`;
const dhcp = (i: number) => `<30>Nov 23 11:59:59 gw dhcpd[7]: DHCPACK on 10.1.0.${i} to 52:54:00:aa:00:0${i} via eth0`;
const runs = globalThis as { __acmeRuns?: number };

const dirs: string[] = [];
afterEach(async () => {
  delete runs.__acmeRuns;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function pluginDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-wd-fallback-'));
  dirs.push(dir);
  const pdir = join(dir, 'plugins');
  mkdirSync(pdir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(pdir, name), text);
  return pdir;
}

describe.runIf(built)('the main-thread fallback after the decode thread is given up', () => {
  it('a restart that cannot load the plug-ins: the dropped line stays dropped, the stalling plug-in never runs on the main thread, the other lines are committed', async () => {
    const pdir = pluginDir({ 'acme.mjs': ACME });
    const dir = join(pdir, '..');
    const port = await freePort();
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: `tcp://127.0.0.1:${port}`, format: 'auto' }],
      parsers: { directory: pdir }, ingest: { decodeThread: true },
      policy: { scope: ['192.0.2.0/24'] }, regions: [{ name: 'r', cidrs: ['192.0.2.0/24'], appliances: ['a'] }],
      scanner: { type: 'dry-run' }, http: { enabled: false },
    });
    const d = new Daemon({ config, log: silentLogger() });
    await d.start();
    try {
      expect(d.ingest.decodesIn).toBe('thread');
      // the admin keeps a copy before fixing the plug-in: a thread started now cannot load the folder
      copyFileSync(join(pdir, 'acme.mjs'), join(pdir, 'acme.old.mjs'));
      runs.__acmeRuns = 0;
      await tcpSend(port, `${dhcp(1)}\n${acmeLine(CRAFTED)}\n${dhcp(2)}\n`);
      // the watchdog's bound (10 s), the restart, its failure, the fallback
      await until(() => d.ingest.counters.lines === 3, 40_000, 'the three lines committed');
      expect(d.ingest.decodesIn).toBe('main');
      // after the fallback: an acme line is left unrecognized, not given to acme
      await tcpSend(port, `${acmeLine('bob')}\n${dhcp(3)}\n`);
      await until(() => d.ingest.counters.lines === 5, 10_000, 'the two later lines committed');
      expect(runs.__acmeRuns).toBe(0);
      const db = new Database(join(dir, 'state.db'), { readonly: true });
      const stored = (db.prepare('SELECT ip FROM sightings ORDER BY id').all() as { ip: string }[]).map((r) => r.ip);
      db.close();
      expect(stored).toEqual(['10.1.0.1', '10.1.0.2', '10.1.0.3']);
      // each line counted once: the dropped one as the thread's parser error, not decoded again
      const c = d.ingest.decoderCounters();
      const total = (k: 'lines' | 'parserErrors' | 'unrecognized') => c.reduce((n, x) => n + x[k], 0);
      expect([total('lines'), total('parserErrors'), total('unrecognized')]).toEqual([5, 1, 1]);
      expect(d.ingest.decodeWatchdog()?.timedOut).toEqual({ [`tcp:${port}`]: 1 });
      const metrics = await renderMetrics(daemonView(d));
      expect(metrics).toMatch(/^onsight_parser_plugin_disabled\{plugin="acme"\} 1$/m);
    } finally {
      await d.stop();
    }
  }, 60_000);
  // (more than 5 thread exits after a stall: test/decode-watchdog-exit.test.ts, since a line that ends the thread is dropped too)
});
