/**
 * The decode thread (ingest.decodeThread) through the real daemon: the same lines over TCP and
 * from a file give the same inventory, the same parser counters on /metrics and the same file
 * checkpoint as decoding on the main thread; a zone change reaches the thread. The thread runs
 * from dist/ (npx tsc first), like the daemon's own build.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../src/store/sqlite.js';
import { Daemon } from '../src/daemon/daemon.js';
import { validateConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { renderMetrics } from '../src/http/index.js';
import { daemonView } from '../src/daemon/view.js';
import { decodeThreadEntry } from '../src/daemon/decode-client.js';
import { freePort } from './helpers/daemon.js';
import { until } from './helpers/wait.js';

const built = decodeThreadEntry() !== undefined;
if (!built) console.log('SKIP decode thread tests: no compiled decode thread under dist/ (run npx tsc)');

function dhcp(i: number): string {
  return `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.1.${(i >> 8) & 255}.${i & 255} to 52:54:00:aa:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0`;
}
const noise = (i: number) => `<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,${i},0,DF,6,tcp,60,203.0.113.1,10.0.0.1,1024,443,0,S,1,,64240,,mss`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function run(decodeThread: boolean): Promise<{ stored: string[]; metrics: string; checkpoint?: number; decodesIn: string; zoneTime?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-decode-thread-'));
  dirs.push(dir);
  const file = join(dir, 'dhcpd.log');
  writeFileSync(file, '');
  const port = await freePort();
  const { config } = validateConfig({
    state: join(dir, 'state.db'), timezone: 'UTC',
    inputs: [{ type: 'syslog', listen: `tcp://127.0.0.1:${port}`, format: 'auto' }, { type: 'file', path: file, format: 'isc-dhcpd', pollMs: 20 }],
    policy: { scope: ['192.0.2.0/24'] }, regions: [{ name: 'r', cidrs: ['192.0.2.0/24'], appliances: ['a'] }],
    scanner: { type: 'dry-run' }, ingest: { decodeThread }, http: { enabled: false },
  });
  const d = new Daemon({ config, log: silentLogger() });
  await d.start();
  try {
    let text = '';
    for (let i = 0; i < 3000; i++) text += (i % 10 === 0 ? dhcp(i) : noise(i)) + '\n';
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.end(text, () => resolve()));
      s.on('error', reject);
    });
    // order is kept per source, not across sources: the file's lines go in once the stream's are committed
    await until(() => d.ingest.counters.lines === 3000, 20_000, 'the TCP stream committed');
    let lines = '';
    for (let i = 3000; i < 3100; i++) lines += dhcp(i).replace(/^<30>/, '') + '\n';
    appendFileSync(file, lines);
    await until(() => d.ingest.counters.lines === 3100, 20_000, 'all lines committed');
    // a new zone reaches the thread: a stamp without one is read in it
    d.ingest.setZone('Europe/Berlin');
    appendFileSync(file, 'Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.2.0.1 to 52:54:00:bb:00:01 via eth0\n');
    await until(() => d.ingest.counters.lines === 3101, 20_000, 'the line after the zone change');
    const db = new Database(join(dir, 'state.db'), { readonly: true });
    const stored = (db.prepare('SELECT ip FROM sightings ORDER BY id').all() as { ip: string }[]).map((r) => r.ip);
    const zoneTime = (db.prepare("SELECT at FROM sightings WHERE ip = '10.2.0.1'").get() as { at: number } | undefined)?.at;
    db.close();
    return {
      stored, metrics: await renderMetrics(daemonView(d)), checkpoint: (await d.inventory.checkpoint(file))?.offset, decodesIn: d.ingest.decodesIn,
      zoneTime: zoneTime === undefined ? undefined : new Date(zoneTime).toISOString(),
    };
  } finally {
    await d.stop();
  }
}

describe.runIf(built)('decode thread', () => {
  it('gives the same sightings (in order), parser counters and checkpoints as decoding on the main thread', async () => {
    const main = await run(false);
    const thread = await run(true);
    expect(main.decodesIn).toBe('main');
    expect(thread.decodesIn).toBe('thread');
    expect(thread.stored.length).toBe(401);
    expect(thread.stored).toEqual(main.stored);
    expect(thread.checkpoint).toBe(main.checkpoint);
    const parserLines = (m: string) => m.split('\n').filter((l) => /^onsight_parser_(lines|unrecognized_lines)_total/.test(l)).sort();
    expect(parserLines(thread.metrics).length).toBeGreaterThan(0);
    expect(parserLines(thread.metrics)).toEqual(parserLines(main.metrics));
    // 10:00 in Berlin (UTC+1 in November) is 09:00 UTC
    expect(thread.zoneTime).toMatch(/T09:00:00/);
    expect(thread.zoneTime).toBe(main.zoneTime);
  }, 120_000);
});
