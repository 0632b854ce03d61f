/**
 * The HTTP face of a real Daemon (validated config, state in a temp dir, syslog on ephemeral
 * loopback ports, dry-run scanner): real syslog datagrams in, then /metrics scraped and parsed,
 * /healthz, /api/status, and the status page rendered in real headless Chromium (Debian's
 * `chromium`, driven by playwright-core), with a screenshot written under os.tmpdir().
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { parsePromText, MetricsRegistry } from '../src/http/prom.js';
import { parseHttpListen } from '../src/http/server.js';
import type { Status } from '../src/http/status.js';
import { until } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`SKIP status page in Chromium: ${CHROMIUM} is missing (apt-get install chromium)`);

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
/** a scan window on a day that is not today (UTC): the region is closed for the whole test */
const closedWindow = `${DAYS[(new Date().getUTCDay() + 3) % 7]} 00:00-00:01`;
const WEIRD = 'amer "west" \\ 2';

function udpSend(port: number, lines: string[], host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let left = lines.length;
    for (const l of lines) {
      s.send(Buffer.from(l), port, host, (err) => {
        if (err) reject(err);
        if (--left === 0) {
          s.close();
          resolve();
        }
      });
    }
  });
}

function tcpSend(port: number, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(payload));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}


describe('prometheus text writer', () => {
  it('escapes label values and help text (prom-client), and parses back', async () => {
    const w = new MetricsRegistry({ processMetrics: false });
    w.family('x_total', 'counter', 'help with \\ and\nnewline')(3, { l: 'a"b\\c\nd' });
    const text = await w.render();
    expect(text).toBe('# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\nx_total{l="a\\"b\\\\c\\nd"} 3\n');
    expect(parsePromText(text).samples).toEqual([{ name: 'x_total', labels: { l: 'a"b\\c\nd' }, value: 3 }]);
    // a scrape reads counters afresh: the value they have reached, not a sum over scrapes
    w.beginScrape();
    w.family('x_total', 'counter', 'help with \\ and\nnewline')(5, { l: 'a"b\\c\nd' });
    expect(parsePromText(await w.render()).samples[0].value).toBe(5);
  });

  it('reads http.listen forms', () => {
    expect(parseHttpListen('127.0.0.1:9321')).toEqual({ host: '127.0.0.1', port: 9321 });
    expect(parseHttpListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHttpListen(':9321')).toEqual({ host: '127.0.0.1', port: 9321 });
    expect(() => parseHttpListen('localhost')).toThrow(/HOST:PORT/);
  });
});

describe('daemon HTTP: /metrics, /healthz, /api/status, status page', () => {
  let dir: string;
  let daemon: Daemon;
  let base: string;
  let udpPort: number;
  let tcpPort: number;
  let closedUdpPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onsight-ops-http-'));
    const { config } = validateConfig({
      state: join(dir, 'onsight.db'),
      timezone: 'UTC',
      inputs: [
        { type: 'syslog', listen: 'udp://127.0.0.1:0' },
        { type: 'syslog', listen: 'tcp://127.0.0.1:0' },
        { type: 'syslog', listen: 'udp://127.0.0.2:0', allow: ['192.0.2.0/24'] },
      ],
      policy: { rescanAfter: '30d', scope: ['10.0.0.0/8'], exclude: ['10.20.99.0/24'] },
      regions: [
        { name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1', { name: 'emea-sa-2', maxScans: 2 }], maxConcurrentScans: 2 },
        { name: WEIRD, cidrs: ['10.30.0.0/16'], appliances: ['amer-sa-1'] },
        { name: 'apac', cidrs: ['10.40.0.0/16'], appliances: ['apac-sa-1'], scanWindows: [closedWindow], timezone: 'UTC' },
      ],
      scanner: { type: 'dry-run', scanDurationS: 1 },
      http: { listen: '127.0.0.1:0' },
    });
    daemon = new Daemon({ config, log: silentLogger(), tickMs: 200 });
    await daemon.start();
    base = daemon.http!.url;
    udpPort = daemon.inputs[0].address!.port;
    tcpPort = daemon.inputs[1].address!.port;
    closedUdpPort = daemon.inputs[2].address!.port;
    await udpSend(udpPort, [
      'dhcpd[1]: DHCPACK on 10.20.1.7 to 52:54:00:aa:bb:cc (laptop-7) via eth0',
      'dhcpd[1]: DHCPACK on 10.20.99.5 to 52:54:00:aa:bb:99 (printer) via eth0',
      'dhcpd[1]: DHCPACK on 10.40.1.9 to 52:54:00:00:00:09 (tokyo-9) via eth0',
      'dhcpd[1]: DHCPACK on 10.40.1.10 to 52:54:00:00:00:10 (tokyo-10) via eth0',
      'this line is no known format',
    ]);
    await tcpSend(tcpPort, `dhcpd[2]: DHCPACK on 10.30.1.8 to 52:54:00:aa:bb:01 (west-8) via eth0\n`);
    await udpSend(closedUdpPort, ['dhcpd[1]: DHCPACK on 10.20.1.66 to 52:54:00:aa:bb:66 via eth0'], '127.0.0.2');
    // tokyo-9 leaves while its region's scan window is closed: missed, and why
    await until(async () => daemon.ingest.counters.sightings >= 5, 10_000, 'five sightings', 100);
    await udpSend(udpPort, ['dhcpd[1]: DHCPRELEASE of 10.40.1.9 from 52:54:00:00:00:09 (tokyo-9) via eth0 (found)']);
  });

  afterAll(async () => {
    await daemon?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, init?: RequestInit) => fetch(base + path, init);
  const status = async () => (await (await get('/api/status')).json()) as Status;

  it('/api/status: per region seen, due, queued, scanning, scanned, missed and why; appliances; decisions', async () => {
    // both dry-run scans launch and finish (scanDurationS 1): the hosts end up scanned within the window
    const s = await until(async () => {
      const x = await status();
      return x.totals.finished >= 2 && x.totals.missed >= 1 ? x : undefined;
    }, 15_000, 'two finished scans and a missed host', 100);
    const emea = s.regions.find((r) => r.name === 'emea')!;
    const west = s.regions.find((r) => r.name === WEIRD)!;
    const apac = s.regions.find((r) => r.name === 'apac')!;
    expect(emea).toMatchObject({ seen: 2, due: 0, queued: 0, scanning: 0, scannedInWindow: 1, notDue: { excluded: 1, 'scanned-recently': 1 } });
    expect(emea.scans).toMatchObject({ launched: 1, finished: 1, failed: 0, running: 0 });
    expect(emea.appliances).toEqual([
      expect.objectContaining({ name: 'emea-sa-1', online: true, capacity: 1 }),
      expect.objectContaining({ name: 'emea-sa-2', online: true, capacity: 2 }),
    ]);
    // learned next to configured: the dry run lists no polling interval, so pickup is the configured pickupS
    expect(emea.appliances[1].learned).toMatchObject({ capacity: 3, configuredPickupS: 360, pickupS: 360, pickupHow: expect.stringContaining('configured pickupS') });
    expect(emea.appliances[1].learned.slotsSeen).toBeLessThanOrEqual(1);
    expect(s.scanner.processingLag).toMatchObject({ samples: 0, waitS: 21600, configuredWaitS: 21600, how: expect.stringContaining('no scan confirmed') });
    expect(s.scanner.hostsInParallel).toMatchObject({ value: 10, configured: 10, how: expect.stringContaining('too few scans') });
    // a first start: nothing to read back; the first pass wrote what it knows (scheduler/memory.ts)
    expect(s.scanner.learnedState).toMatchObject({ restored: [], left: [], how: 'nothing saved before: learning starts from the configured values', savedAt: expect.any(Number) });
    expect(west).toMatchObject({ seen: 1, scannedInWindow: 1 });
    expect(apac).toMatchObject({ seen: 1, due: 0, notDue: { 'outside-scan-window': 1 }, missed: 1 });
    expect(apac.missedWhy).toEqual([expect.objectContaining({ key: 'outside-scan-window', count: 1, examples: ['10.40.1.9'] })]);
    expect(s.totals).toMatchObject({ identities: 5, launched: 2, finished: 2, failed: 0 });
    expect(s.inputs.map((i) => i.name)).toEqual([`udp:${udpPort}`, `tcp:${tcpPort}`, `udp:${closedUdpPort}`]);
    expect(s.inputs[2].dropped.notAllowed).toBe(1);
    const ds = s.decisions.map((d) => `${d.ip} ${d.decision}`);
    expect(ds).toContain('10.20.1.7 launched');
    expect(ds).toContain('10.20.1.7 scanned');
    expect(ds.some((d) => d.startsWith('10.40.1.9 not-due'))).toBe(true);
    expect(s.scanner.kind).toBe('dry-run');
  });

  it('/metrics: HELP and TYPE for every family, label escaping, and the values the daemon saw', async () => {
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const m = parsePromText(text);
    // every sample belongs to a family with HELP and TYPE (a histogram's _bucket, _sum and _count to theirs); counters are *_total
    for (const s of m.samples) {
      const base = s.name.replace(/_(bucket|sum|count)$/, '');
      const family = m.type.get(s.name) ? s.name : m.type.get(base) === 'histogram' ? base : s.name;
      expect(m.help.get(family), s.name).toBeTruthy();
      expect(['counter', 'gauge', 'histogram']).toContain(m.type.get(family));
      if (m.type.get(family) === 'counter') expect(s.name).toMatch(/_total$/);
    }
    // one HELP/TYPE per family, TYPE right after HELP
    const lines = text.split('\n');
    const helps = lines.filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
    expect(new Set(helps).size).toBe(helps.length);
    lines.forEach((l, i) => {
      if (l.startsWith('# HELP ')) expect(lines[i + 1]).toMatch(new RegExp(`^# TYPE ${l.split(' ')[2]} (counter|gauge|histogram)$`));
    });
    const v = (name: string, labels: Record<string, string> = {}) => {
      const hit = m.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, x]) => s.labels[k] === x));
      expect(hit.length, `${name} ${JSON.stringify(labels)}`).toBe(1);
      return hit[0].value;
    };
    expect(v('onsight_input_lines_received_total', { input: `udp:${udpPort}` })).toBe(6);
    expect(v('onsight_input_lines_received_total', { input: `tcp:${tcpPort}` })).toBe(1);
    expect(v('onsight_input_lines_dropped_total', { input: `udp:${closedUdpPort}`, reason: 'notAllowed' })).toBe(1);
    if (existsSync('/proc/net/udp')) expect(v('onsight_input_udp_kernel_drops_total', { input: `udp:${udpPort}` })).toBe(0);
    expect(v('onsight_input_connections', { input: `tcp:${tcpPort}` })).toBe(0);
    expect(v('onsight_ingest_lines_total')).toBe(7);
    expect(v('onsight_parser_lines_total', { format: 'isc-dhcpd' })).toBe(6);
    expect(v('onsight_parser_unrecognized_lines_total')).toBe(1);
    expect(v('onsight_sightings_total', { format: 'isc-dhcpd', kind: 'lease' })).toBe(5);
    expect(v('onsight_sightings_total', { format: 'isc-dhcpd', kind: 'release' })).toBe(1);
    expect(v('onsight_identities')).toBe(5);
    expect(v('onsight_present_bindings')).toBe(4);
    expect(v('onsight_region_hosts_seen', { region: 'emea' })).toBe(2);
    expect(v('onsight_region_hosts_seen', { region: WEIRD })).toBe(1);
    expect(v('onsight_region_hosts_due', { region: 'emea' })).toBe(0);
    expect(v('onsight_region_hosts_queued', { region: 'emea' })).toBe(0);
    expect(v('onsight_region_hosts_scanned_in_window', { region: 'emea' })).toBe(1);
    expect(v('onsight_region_hosts_missed', { region: 'apac', why: 'outside-scan-window' })).toBe(1);
    expect(v('onsight_scans_launched_total', { region: 'emea' })).toBe(1);
    expect(v('onsight_scans_finished_total', { region: WEIRD })).toBe(1);
    expect(v('onsight_scans_failed_total', { region: 'emea' })).toBe(0);
    expect(v('onsight_scans_running', { region: 'emea', appliance: 'emea-sa-1' })).toBe(0);
    expect(v('onsight_appliance_scans_launched_total', { region: 'emea', appliance: 'emea-sa-1' }) + v('onsight_appliance_scans_launched_total', { region: 'emea', appliance: 'emea-sa-2' })).toBe(1);
    expect(v('onsight_appliance_capacity', { region: 'emea', appliance: 'emea-sa-2' })).toBe(2);
    expect(v('onsight_appliance_capacity_learned', { region: 'emea', appliance: 'emea-sa-2' })).toBe(3);
    expect(v('onsight_appliance_pickup_seconds', { region: 'emea', appliance: 'emea-sa-1' })).toBe(360);
    expect(v('onsight_appliance_slots_seen', { region: 'emea', appliance: 'emea-sa-1' })).toBeLessThanOrEqual(1);
    expect(m.samples.some((s) => s.name === 'onsight_appliance_full_at')).toBe(false); // never seen full
    expect(v('onsight_scanner_processing_lag_samples', { scanner: 'dry-run' })).toBe(0);
    expect(v('onsight_scanner_processing_wait_seconds', { scanner: 'dry-run' })).toBe(21600);
    expect(v('onsight_appliance_scans_total', { region: WEIRD, appliance: 'amer-sa-1', state: 'finished' })).toBe(1);
    expect(m.samples.filter((s) => s.name === 'onsight_appliance_scans_total' && s.labels.region === 'emea').map((s) => s.labels.state)).toEqual(['finished']);
    expect(v('onsight_appliance_online', { region: 'apac', appliance: 'apac-sa-1' })).toBe(1);
    expect(['target-reassigned', 'stuck', 'all-left'].map((reason) => v('onsight_scans_canceled_total', { reason }))).toEqual([0, 0, 0]);
    expect(v('onsight_scan_targets_no_host_total')).toBe(0); // a dry run confirms nothing
    expect(v('onsight_scanner_api_calls_total')).toBeGreaterThan(0);
    expect(v('onsight_scanner_api_wait_seconds', { scanner: 'dry-run' })).toBe(0);
    expect(m.samples.some((s) => s.name === 'onsight_scanner_api_remaining')).toBe(false); // dry-run reports no limit
    expect(v('onsight_uptime_seconds')).toBeGreaterThan(0);
    // the region name with a quote and a backslash is escaped on the wire
    expect(text).toContain('onsight_region_hosts_seen{region="amer \\"west\\" \\\\ 2"} 1');
    console.log(`/metrics: ${m.samples.length} samples in ${helps.length} families, ${text.length} bytes`);
  });

  it('/healthz, 404, 405 and HEAD', async () => {
    const h = await get('/healthz');
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', scanner: 'dry-run', inputs: [`udp:${udpPort}`, `tcp:${tcpPort}`, `udp:${closedUdpPort}`] });
    expect((await get('/nope')).status).toBe(404);
    const post = await get('/metrics', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await get('/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'sha256-/);
    expect(await head.text()).toBe('');
  });

  it('input staleness: time since the last line per input and per sender (status and /metrics); an input whose lines were all refused has none', async () => {
    const s = await status();
    const [udp, , refused] = s.inputs;
    expect(udp.lastLineAt).toBeDefined();
    expect(Date.parse(udp.lastLineAt!)).toBeGreaterThanOrEqual(daemon.startedAt);
    expect(udp.idleS).toBeGreaterThanOrEqual(0);
    expect(udp.idleS).toBeLessThan(60);
    expect(udp.senders?.map((x) => x.sender)).toEqual(['127.0.0.1']);
    expect(refused.lastLineAt).toBeUndefined(); // every line from 127.0.0.2 was refused (allow list)
    expect(refused.senders).toEqual([]);
    expect(refused.idleS).toBe(Math.round((Date.parse(s.now) - daemon.startedAt) / 1000));
    const m = parsePromText(await (await get('/metrics')).text()).samples;
    expect(m.find((x) => x.name === 'onsight_input_idle_seconds' && x.labels.input === `udp:${udpPort}`)?.value).toBeLessThan(60);
    expect(m.find((x) => x.name === 'onsight_input_sender_idle_seconds' && x.labels.input === `tcp:${tcpPort}` && x.labels.sender === '127.0.0.1')).toBeDefined();
  });

  it('coverage over time: one point per day for the last 7 days, per region, devices (not addresses) seen and scanned', async () => {
    const s = await status();
    expect(s.coverage.map((p) => p.day)).toEqual([6, 5, 4, 3, 2, 1, 0].map((n) => new Date(Math.floor(Date.now() / 86400_000) * 86400_000 - n * 86400_000).toISOString().slice(0, 10)));
    const today = s.coverage[6].regions;
    expect(today.map((r) => r.region)).toEqual(['emea', WEIRD, 'apac']);
    expect(today.find((r) => r.region === 'emea')!.seen).toBe(1); // laptop-7; the excluded printer is not "seen in policy"
    expect(today.find((r) => r.region === 'apac')!.seen).toBe(2);
    expect(s.coverage[0].regions.every((r) => r.seen === 0 && r.coveragePct === 100)).toBe(true);
  });

  it.runIf(hasChromium)('the status page in headless Chromium shows the regions, appliances and decisions', async () => {
    const { chromium } = await import('playwright-core');
    const profile = mkdtempSync(join(tmpdir(), 'onsight-chromium-'));
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      viewport: { width: 1360, height: 900 },
    });
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      const problems: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') problems.push(msg.text());
      });
      page.on('pageerror', (err) => problems.push(err.message));
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(base + '/');
      const row = page.locator('#regions tr[data-region="emea"]');
      await row.waitFor({ timeout: 10_000 });
      const cells = await row.locator('td').allTextContents();
      expect(cells[0]).toContain('emea');
      expect(cells[0]).toContain('10.20.0.0/16');
      expect(cells.slice(1, 6)).toEqual(['2', '0', '0', '0', '1']); // seen, due, queued, scanning, scanned in window
      // load against the learned capacity (configured + 1 probe: nothing seen full), the configured one and pickup beside it
      expect(cells[8]).toMatch(/emea-sa-1.*\/2configured 1 · learned .* · pickup 6 min.*emea-sa-2.*\/3configured 2 · learned/s);
      expect(await page.locator('#lag').textContent()).toBe('processing lag not learned yet · results held 6.0 h · 10 hosts at once');
      // the odd region name arrives as text, not markup
      expect(await page.locator(`#regions tr[data-region='${WEIRD.replace(/\\/g, '\\\\')}'] b`).textContent()).toBe(WEIRD);
      const apac = await page.locator('#regions tr[data-region="apac"]').textContent();
      expect(apac).toContain('present only outside the region\'s scan windows');
      expect(apac).toContain('10.40.1.9');
      const decisions = await page.locator('#decisions').textContent();
      expect(decisions).toContain('10.20.1.7');
      expect(decisions).toContain('scanned');
      expect(await page.locator('#inputs').textContent()).toContain(`udp:${closedUdpPort}`);
      const udpRow = await page.locator('#inputs tr').first().locator('td').allTextContents();
      expect(udpRow[4]).toMatch(/^\d+ s ago1 sender\(s\)$/); // last line, and its senders
      expect(await page.locator('#inputs tr').nth(2).locator('td').nth(4).textContent()).toMatch(/^no line since start/);
      expect(await page.locator('#cards').textContent()).toContain('devices present');
      expect(await page.locator('#coverage-head th').count()).toBe(8); // region and 7 days
      expect(await page.locator('#coverage tr[data-region="apac"] td').last().textContent()).toMatch(/^(\d+(\.\d)?)%\d+\/2$/);
      // no external assets, no CSP violations, no script errors
      expect(requests.every((u) => u.startsWith(base))).toBe(true);
      expect(problems).toEqual([]);
      const shot = join(tmpdir(), `onsight-status-${process.pid}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`status page screenshot: ${shot}`);
    } finally {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it('a second daemon on the same http.listen fails to start with ONSIGHT_LISTEN', async () => {
    const taken = base.replace(/^http:\/\//, '');
    const other = new Daemon({
      config: validateConfig({
        state: join(dir, 'second.db'), timezone: 'UTC', policy: { scope: ['10.0.0.0/8'] },
        regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }], http: { listen: taken },
      }).config,
      log: silentLogger(),
    });
    await expect(other.start()).rejects.toMatchObject({ code: 'ONSIGHT_LISTEN', message: expect.stringContaining(`http.listen ${taken}`) });
  });

  it('/healthz answers 503 when the state database does not', async () => {
    await daemon.store.close();
    const h = await get('/healthz');
    expect(h.status).toBe(503);
    expect(await h.json()).toMatchObject({ status: 'unavailable' });
  });
});
