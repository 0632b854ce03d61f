/**
 * A user's parser plug-in whose regex backtracks without end on one crafted line must not stall
 * ingestion: the real daemon (child process, decode thread on), real plug-in files, TCP on
 * loopback. A nested quantifier (`((?:\w+\s?)+)$`) is finished by V8's linear engine (the flag the
 * decode client sets); one with a backreference, which that engine cannot run, is cut off by the
 * watchdog: the thread is restarted without the line, which is counted and logged with the plug-in.
 * Before either, the line after the crafted one never became a sighting. One the linear engine
 * does not take (the `i` flag) that stalls the thread MAX_STALLS times is disabled, so the crafted
 * line sent again no longer holds every source nor resets its parser state (before: without end).
 * Runs from dist/ (npx tsc).
 */
import { afterAll, describe, it } from 'vitest';
import type { DaemonProcess } from './helpers/daemon.js';
import { CRAFTED, sightingOf, startStallDaemon, stallLine, stallPlugin } from './helpers/stall-plugin.js';
import { tcpSend } from './helpers/net.js';
import { LINE_TIMEOUT_MS, MAX_STALLS } from '../src/daemon/decode-client.js';

const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

/** a real daemon of its own loading `plugins`, decode thread on: it, its syslog port and its status listener's */
async function daemonWith(plugins: Record<string, string>, lineTimeoutS?: number): Promise<{ d: DaemonProcess; port: number; metricsPort: number }> {
  const started = await startStallDaemon(plugins, lineTimeoutS);
  stops.push(started.cleanup);
  return { d: started.d, port: started.port, metricsPort: started.httpPort };
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** the watchdog's bound in the tests that stall it (ingest.decodeLineTimeoutS; the default is LINE_TIMEOUT_MS) */
const STALL_S = 3;

// each test has its own daemon and mostly waits on the watchdog's clock: the three run side by side
describe('a parser plug-in whose regex backtracks without end', () => {
  it.concurrent('a nested quantifier: the crafted line ends in the linear engine, the next line is a sighting at once, no restart', async ({ expect }) => {
    const { d, port } = await daemonWith({ 'naive.mjs': stallPlugin('naive-vpn', String.raw`^ip=(\S+) user=((?:\w+\s?)+)$`) });
    const t0 = Date.now();
    await tcpSend(port, `${stallLine('naive-vpn', '10.20.1.8', CRAFTED)}\n${stallLine('naive-vpn', '10.20.1.7', 'alice')}\n`);
    const s = await d.waitFor(sightingOf('10.20.1.7'), LINE_TIMEOUT_MS);
    expect(s.sighting).toMatchObject({ kind: 'tunnel-up', user: 'alice', format: 'naive-vpn' });
    // well within the watchdog's bound: the regex engine, not a restart, ended the crafted line
    expect(Number(s.receivedAtMs) - t0).toBeLessThan(LINE_TIMEOUT_MS);
    expect(d.logs.some((e) => /decode thread/.test(e.msg))).toBe(false);
  }, 60_000);

  it.concurrent('a backreference (no linear engine): the watchdog restarts the thread without the line; the lines around it are sightings, the plug-in is named', async ({ expect }) => {
    const { d, port, metricsPort } = await daemonWith({ 'backref.mjs': stallPlugin('backref-vpn', String.raw`^ip=(\S+) user=((?:\w+\s?)+)\2?$`) }, STALL_S);
    const errorsBefore = await metric(metricsPort, 'onsight_parser_errors_total');
    const t0 = Date.now();
    // one write: the line before the crafted one is in its batch, decoded by the thread that is ended
    await tcpSend(port, [stallLine('backref-vpn', '10.20.2.1', 'bob'), stallLine('backref-vpn', '10.20.2.2', CRAFTED), stallLine('backref-vpn', '10.20.2.3', 'carol')].join('\n') + '\n');
    const after = await d.waitFor(sightingOf('10.20.2.3'), STALL_S * 1000 + 20_000);
    const waited = Number(after.receivedAtMs) - t0;
    // the configured bound (ingest.decodeLineTimeoutS), not the default's
    expect(waited).toBeGreaterThanOrEqual(STALL_S * 1000 - 1000);
    expect(waited).toBeLessThan(LINE_TIMEOUT_MS);
    await d.waitFor(sightingOf('10.20.2.1'), 5_000);
    expect(d.logs.some(sightingOf('10.20.2.2'))).toBe(false);
    const said = d.logs.find((e) => /took over .* on one line/.test(e.msg))!;
    expect(said).toMatchObject({ plugin: 'backref-vpn', source: `tcp:${port}`, chars: stallLine('backref-vpn', '10.20.2.2', CRAFTED).length });
    expect(JSON.stringify(said)).not.toContain(CRAFTED);
    expect(await metric(metricsPort, 'onsight_parser_errors_total')).toBe(errorsBefore + 1);
    // the restarted thread goes on decoding
    await tcpSend(port, `${stallLine('backref-vpn', '10.20.2.4', 'dave')}\n`);
    await d.waitFor(sightingOf('10.20.2.4'), 10_000);
    console.log(`crafted line → next sighting ${waited} ms (bound ${STALL_S * 1000} ms)`);
  }, 90_000);

  it.concurrent(`an i-flag regex (no linear engine either) that stalls the thread ${MAX_STALLS} times is disabled, named in the log; the crafted line sent again stalls nothing`, async ({ expect }) => {
    const { d, port } = await daemonWith({ 'icase.mjs': stallPlugin('icase-vpn', String.raw`^ip=(\S+) user=((?:\w+\s?)+)$`, 'i') }, STALL_S);
    const dhcp = '<30>Nov 23 11:59:59 dhcp dhcpd[1]: DHCPACK on 10.20.3.9 to aa:bb:cc:dd:ee:09 via eth0';
    const crafted = Array.from({ length: MAX_STALLS + 1 }, (_, i) => stallLine('icase-vpn', `10.20.3.${i + 1}`, CRAFTED));
    await tcpSend(port, [...crafted, dhcp].join('\n') + '\n');
    // (before: one more stall for the last crafted line)
    await d.waitFor(sightingOf('10.20.3.9'), (MAX_STALLS + 1) * STALL_S * 1000 + 30_000);
    expect(d.logs.filter((e) => /took over .* on one line/.test(e.msg))).toHaveLength(MAX_STALLS);
    expect(d.logs.filter((e) => /parser state was reset/.test(e.msg))).toHaveLength(MAX_STALLS);
    const off = d.logs.filter((e) => /is disabled/.test(e.msg));
    expect(off).toHaveLength(1);
    expect(off[0]).toMatchObject({ plugin: 'icase-vpn', level: 50 });
    expect(off[0].msg).toMatch(/linear time/);
    expect(d.logs.some((e) => /^10\.20\.3\./.test((e as { sighting?: { ip?: string } }).sighting?.ip ?? '') && !sightingOf('10.20.3.9')(e))).toBe(false);
  }, 150_000);
});
