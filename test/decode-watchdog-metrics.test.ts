/**
 * What the decode thread's watchdog did is shown to an operator, not only folded into
 * onsight_parser_errors_total: the real daemon (child process from dist/: npx tsc first, decode
 * thread on), a real user plug-in whose `i`-flag regex backtracks (V8's linear engine does not take
 * it), TCP on loopback, the real /metrics, /api/status and status page (in Chromium, where
 * installed) over HTTP. After MAX_STALLS crafted lines: onsight_decode_timeouts_total by source,
 * onsight_parser_plugin_disabled 1 for that plug-in (0 for one that behaves), the status's
 * `decoder` (the timeouts, the plug-in with when and why) and the page's table saying how to turn
 * it back on. Before, none of these existed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CRAFTED, sightingOf, startStallDaemon, stallLine, stallPlugin } from './helpers/stall-plugin.js';
import { tcpSend } from './helpers/net.js';
import { MAX_STALLS } from '../src/daemon/decode-client.js';
import { parsePromText } from '../src/http/prom.js';
import type { Status } from '../src/http/status.js';
import type { BrowserContext } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`SKIP the watchdog's table on the status page in Chromium: ${CHROMIUM} is missing (apt-get install chromium)`);

let stop: (() => Promise<void>) | undefined;
let browser: Promise<BrowserContext> | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await (await browser?.catch(() => undefined))?.close();
  browser = undefined;
  await stop?.();
  stop = undefined;
  for (const x of dirs.splice(0)) rmSync(x, { recursive: true, force: true });
});

/** Chromium headless on a profile of its own (removed after the test) */
async function launchChromium(): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'onsight-chromium-'));
  dirs.push(profile);
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
}

async function scrape(base: string) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const p = parsePromText(text);
  const of = (name: string) => p.samples.filter((s) => s.name === name).map((s) => ({ labels: s.labels, value: s.value }));
  return { ...p, of };
}
const status = async (base: string) => (await (await fetch(`${base}/api/status`)).json()) as Status;

/** the watchdog's bound here (ingest.decodeLineTimeoutS): the figures are the same at any bound */
const STALL_S = 3;

describe('the decode watchdog on /metrics, /api/status and the status page', () => {
  it(`a user plug-in that stalls the thread ${MAX_STALLS} times: its lines cut off by source, the plug-in shown off with when, why and how to turn it back on`, async () => {
    // Chromium starts while the daemon starts and the thread stalls (MAX_STALLS line timeouts), not after
    browser = hasChromium ? launchChromium() : undefined;
    browser?.catch(() => undefined); // (awaited where the page is read: a failure fails the test there)
    const started = await startStallDaemon({
      'icase.mjs': stallPlugin('icase-vpn', String.raw`^ip=(\S+) user=((?:\w+\s?)+)$`, 'i'),
      'plain.mjs': stallPlugin('plain-vpn', String.raw`^ip=(\S+) user=(\w+)$`),
    }, STALL_S);
    stop = started.cleanup;
    const { d, port, httpPort } = started;
    const base = `http://127.0.0.1:${httpPort}`;

    // before any stall: declared, both plug-ins running, nothing cut off
    let m = await scrape(base);
    expect(m.type.get('onsight_decode_timeouts_total')).toBe('counter');
    expect(m.of('onsight_decode_timeouts_total')).toEqual([]);
    expect(m.type.get('onsight_parser_plugin_disabled')).toBe('gauge');
    expect(m.of('onsight_parser_plugin_disabled')).toEqual([
      { labels: { plugin: 'icase-vpn' }, value: 0 }, { labels: { plugin: 'plain-vpn' }, value: 0 },
    ]);
    expect(m.help.get('onsight_parser_plugin_disabled')).toMatch(/until the daemon restarts .*reload does not turn it back on.*restart onsight/);
    expect(m.help.get('onsight_decode_timeouts_total')).toMatch(/parsers\/README\.md, rule 2/);
    const errorsBefore = m.of('onsight_parser_errors_total')[0].value;
    expect((await status(base)).decoder).toEqual({ timedOut: 0, timedOutBySource: {}, disabledPlugins: [] });

    const t0 = Date.now();
    const crafted = Array.from({ length: MAX_STALLS + 1 }, (_, i) => stallLine('icase-vpn', `10.20.3.${i + 1}`, CRAFTED));
    await tcpSend(port, [...crafted, stallLine('plain-vpn', '10.20.3.9', 'alice')].join('\n') + '\n');
    await d.waitFor(sightingOf('10.20.3.9'), (MAX_STALLS + 1) * STALL_S * 1000 + 30_000);
    expect(d.logs.filter((e) => /is disabled/.test(e.msg))).toHaveLength(1);

    m = await scrape(base);
    expect(m.of('onsight_decode_timeouts_total')).toEqual([{ labels: { source: `tcp:${port}` }, value: MAX_STALLS }]);
    expect(m.of('onsight_parser_plugin_disabled')).toEqual([
      { labels: { plugin: 'icase-vpn' }, value: 1 }, { labels: { plugin: 'plain-vpn' }, value: 0 },
    ]);
    // kept as it was: the cut-off lines are parser errors too (and the 4th crafted line, under auto, is unrecognized)
    expect(m.of('onsight_parser_errors_total')[0].value).toBe(errorsBefore + MAX_STALLS);

    const s = await status(base);
    expect(s.decoder).toMatchObject({ timedOut: MAX_STALLS, timedOutBySource: { [`tcp:${port}`]: MAX_STALLS } });
    expect(s.decoder!.disabledPlugins).toHaveLength(1);
    const off = s.decoder!.disabledPlugins[0];
    expect(off).toMatchObject({ plugin: 'icase-vpn', stalls: MAX_STALLS, windowMin: 60 });
    expect(off.why).toMatch(new RegExp(`stalled the decode thread ${MAX_STALLS} times within 60 min`));
    expect(Date.parse(off.disabledAt)).toBeGreaterThanOrEqual(t0);
    expect(Date.parse(off.disabledAt)).toBeLessThanOrEqual(Date.now());

    // the page: says how to turn a plug-in back on, and (in Chromium) lists this one
    const html = await (await fetch(`${base}/`)).text();
    expect(html).toContain('Parser plug-ins turned off');
    expect(html).toMatch(/stays off until onsight restarts \(a reload, SIGHUP, does not turn it back on\)/);
    if (browser) {
      const ctx = await browser;
      try {
        const page = ctx.pages()[0] ?? await ctx.newPage();
        await page.goto(base + '/');
        const row = page.locator('#plugins-off tr[data-plugin="icase-vpn"]');
        await row.waitFor({ timeout: 10_000 });
        expect(await page.locator('#plugins-off-box').isVisible()).toBe(true);
        expect(await row.locator('td').first().textContent()).toBe('icase-vpn');
        expect(await row.locator('td').last().textContent()).toBe(off.why);
        expect(await page.locator('#plugins-off-how').textContent()).toMatch(/systemctl restart onsight/);
        expect(await page.locator('#cards [data-decoder="timeouts"]').textContent()).toBe(`${MAX_STALLS}lines cut off by the parser watchdog1 plug-in(s) turned off`);
      } finally {
        await ctx.close();
      }
    }
  }, 150_000);
});
