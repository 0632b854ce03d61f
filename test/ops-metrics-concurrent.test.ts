/**
 * /metrics scrapes that overlap (two Prometheus servers, a scrape and a curl): the values live in
 * one registry that each scrape resets and fills with inc() across awaits on the state database,
 * so an overlapping scrape must not add into another's counters. Against the real daemon (in
 * process, SQLite, a launched dry-run scan, lines received over UDP).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { renderMetrics } from '../src/http/metrics.js';
import { parsePromText } from '../src/http/prom.js';
import { buildStatus } from '../src/http/status.js';
import { silentLogger } from '../src/log.js';
import { freePort } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';
import { dhcpAck } from './helpers/syslog-lines.js';


/** the onsight counters of a scrape, as `name{labels}` → value */
function counters(text: string): Map<string, number> {
  // (onsight's families only: right after start prom-client prints an event-loop lag of "Nan")
  const p = parsePromText(text.split('\n').filter((l) => /^(# TYPE )?onsight_/.test(l)).join('\n'));
  const out = new Map<string, number>();
  for (const s of p.samples) {
    // (the scheduler's API calls go on between scrapes: the only counter that moves here)
    if (p.type.get(s.name) !== 'counter' || s.name === 'onsight_scanner_api_calls_total') continue;
    out.set(`${s.name}${JSON.stringify(s.labels)}`, s.value);
  }
  return out;
}

describe('overlapping /metrics scrapes', () => {
  let dir: string;
  let daemon: Daemon;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onsight-metrics-concurrent-'));
    const port = await freePort();
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto' }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }],
      scanner: { type: 'dry-run', scanDurationS: 3600 }, // in flight for the whole test: nothing changes between scrapes
      http: { listen: '127.0.0.1:0' },
    });
    daemon = new Daemon({ config, log: silentLogger(), tickMs: 100 });
    await daemon.start();
    for (const i of [1, 2, 3]) await udpSend(port, dhcpAck(`10.20.4.${i}`, `52:54:00:ee:00:0${i}`));
    await until(async () => (await daemon.scheduler.store.activeIntents()).length > 0, 15_000, 'a scan in flight', 50);
    await until(() => daemon.ingest.counters.lines >= 3, 5000, 'three lines committed', 50);
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('give the counters one scrape gives', async () => {
    const one = counters(await renderMetrics(daemon.view));
    expect(one.get('onsight_scans_launched_total{"region":"emea"}')).toBe(1);
    expect(one.get('onsight_ingest_lines_total{}')).toBe(3);
    // started together on one status (as the listener does: its scrapes share the status of the last second),
    // each scrape's awaits (the intents read from the state database) interleave with the others'
    const status = await buildStatus(daemon.view);
    const together = await Promise.all([1, 2, 3].map(() => renderMetrics(daemon.view, status)));
    for (const t of together) expect(Object.fromEntries(counters(t))).toEqual(Object.fromEntries(one));
    // and through the listener
    const url = `${daemon.http!.url}/metrics`;
    const fetched = await Promise.all([1, 2, 3, 4].map(async () => (await fetch(url)).text()));
    for (const t of fetched) expect(Object.fromEntries(counters(t))).toEqual(Object.fromEntries(one));
  });
});
