/**
 * Review of the decode-thread watchdog (6e6ac73), through the real DecodeThread (worker thread from
 * dist/: npx tsc first), real plug-in files and real built-in parsers:
 * - a legitimate 16 MiB built-in line is given a bound that grows with its length, not dropped;
 * - a user plug-in whose regex the V8 linear engine does not take (the `i` flag) and that stalls
 *   the thread MAX_STALLS times is disabled, named in an error log, its lines then unclaimed under
 *   auto and counted as parser errors under its own format; each restart warns that parser state
 *   was reset. Before, each crafted line held the thread for the whole bound, without end.
 * The short base bounds here (lineTimeoutMs) are the constructor's option, not a claim on speed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DecodeThread, LINE_TIMEOUT_MS, MAX_STALLS, decodeThreadEntry, lineTimeout } from '../src/daemon/decode-client.js';
import type { RawLine } from '../src/sources/types.js';

interface Said { level: string; obj: Record<string, unknown>; msg: string }
function recorder(): { log: never; said: Said[] } {
  const said: Said[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void said.push({ level, obj, msg });
  return { said, log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } as never };
}

const mk = (text: string, source: string, format?: string): RawLine => ({ text, receivedAt: new Date('2026-11-23T12:00:00Z'), source, format });

const dirs: string[] = [];
const threads: DecodeThread[] = [];
afterEach(async () => {
  for (const t of threads.splice(0)) await t.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function start(data: { parsersDirectory?: string }, lineTimeoutMs: number): { dt: DecodeThread; said: Said[] } {
  const entry = decodeThreadEntry();
  if (!entry) throw new Error('no compiled decode thread: run npx tsc -p .');
  const { log, said } = recorder();
  const dt = new DecodeThread(entry, { zone: 'UTC', ...data }, log, { lineTimeoutMs });
  threads.push(dt);
  return { dt, said };
}

describe('the watchdog bound grows with the line', () => {
  it('lineTimeout: 10 s for a short line, 2 s more per MiB', () => {
    expect(lineTimeout(200)).toBe(LINE_TIMEOUT_MS + 1);
    expect(lineTimeout(16 * 2 ** 20)).toBe(LINE_TIMEOUT_MS + 32_000);
    expect(lineTimeout(2 ** 20, 500)).toBe(2_500);
  });

  it('a 16 MiB DHCPACK (host name of ESC/RLO) slower than the short-line bound is decoded, isc-dhcpd and auto, not dropped', async () => {
    // base bound 200 ms: the 16 MiB line takes seconds (2–2.4 s idle on 2 cores), its own bound 32.2 s
    const { dt, said } = start({}, 200);
    await dt.ready;
    const n = 16 * 2 ** 20 - 200;
    const name = '\u001b\u202e'.repeat(n / 2);
    const big = `<14>Nov 23 11:59:59 h dhcpd: DHCPACK on 10.0.0.1 to aa:bb:cc:dd:ee:ff (${name}) via eth0`;
    const small = (i: number) => `<14>Nov 23 11:59:59 h dhcpd: DHCPACK on 10.0.0.${i} to aa:bb:cc:dd:ee:0${i} via eth0`;
    for (const format of ['isc-dhcpd', undefined]) {
      const rs = await Promise.all([
        dt.decode([mk(small(2), 'tcp:514', format)]),
        dt.decode([mk(big, 'tcp:514', format), mk(small(3), 'tcp:514', format)]),
        dt.decode([mk(small(4), 'tcp:514', format)]),
      ]);
      expect(rs.map((b) => b.map((x) => x?.map((s) => s.ip)))).toEqual([[['10.0.0.2']], [['10.0.0.1'], ['10.0.0.3']], [['10.0.0.4']]]);
    }
    expect(dt.timedOut).toEqual({});
    expect(said.filter((s) => /took over/.test(s.msg))).toEqual([]);
  }, 120_000);
});

describe('a user plug-in that stalls the thread again and again', () => {
  it(`is disabled after ${MAX_STALLS} stalls (an i-flag regex the linear engine does not take), named in the log; its lines no longer stall`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-wd-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'acme.mjs'), `const RE = /user=((?:\\w+\\s?)+)$/i;
export default { id: 'acme', description: 'a backtracking i-flag regex', claims: { tags: ['acme'] },
  detect: (i) => i.syslog.appName === 'acme',
  create: () => ({ parse(i) { const m = RE.exec(i.syslog.msg); return m ? [{ kind: 'tunnel-up', ip: '10.9.9.9', user: m[1] }] : []; } }) };`);
    const { dt, said } = start({ parsersDirectory: dir }, 300);
    await dt.ready;
    const crafted = `<14>Nov 23 11:59:59 h acme: user=${'a'.repeat(40)}!`;
    const good = '<14>Nov 23 11:59:59 h acme: user=alice';
    const up = '<29>Nov 23 11:59:59 vpn openvpn[1]: bob/198.51.100.7:50123 MULTI_sva: pool returned IPv4=10.8.1.6, IPv6=(Not enabled)';
    // the plug-in works on a good line
    expect((await dt.decode([mk(good, 'udp:515')]))[0]?.map((s) => s.ip)).toEqual(['10.9.9.9']);
    for (let i = 0; i < MAX_STALLS; i++) {
      const [r, after] = await dt.decode([mk(crafted, 'udp:515'), mk(up, 'udp:514')]);
      expect(r).toEqual([]); // dropped
      expect(after?.map((s) => s.ip)).toEqual(['10.8.1.6']); // the line behind it decoded
    }
    expect(dt.timedOut).toEqual({ 'udp:515': MAX_STALLS });
    const off = said.filter((s) => s.level === 'error' && /is disabled/.test(s.msg));
    expect(off).toHaveLength(1);
    expect(off[0].obj).toMatchObject({ plugin: 'acme', stalls: MAX_STALLS });
    expect(off[0].msg).toMatch(/parser plug-in acme .* linear time/);
    expect(dt.disabledPlugins).toEqual(['acme']);
    // each restart said that parser state was reset
    expect(said.filter((s) => s.level === 'warn' && /parser state was reset/.test(s.msg))).toHaveLength(MAX_STALLS);

    // the same crafted line again: no stall, no restart (before: one more full bound and restart each time)
    const warnsBefore = said.length;
    const [again] = await dt.decode([mk(crafted, 'udp:515')]);
    expect(again).toEqual([]);
    expect(dt.timedOut).toEqual({ 'udp:515': MAX_STALLS });
    // auto: its good lines are unclaimed (counted); under its own format: dropped, a parser error
    const autoBefore = dt.counters.auto?.unrecognized ?? 0;
    expect(await dt.decode([mk(good, 'udp:515')])).toEqual([[]]);
    expect(dt.counters.auto?.unrecognized).toBe(autoBefore + 1);
    expect(await dt.decode([mk(good, 'udp:516', 'acme')])).toEqual([[]]);
    expect(dt.counters.acme).toMatchObject({ lines: 1, parserErrors: 1 });
    // other parsers go on
    expect((await dt.decode([mk(up, 'udp:514')]))[0]?.map((s) => s.ip)).toEqual(['10.8.1.6']);
    expect(said.slice(warnsBefore).filter((s) => /took over|restarted/.test(s.msg))).toEqual([]);
  }, 60_000);
});
