/**
 * /metrics of the real daemon says what it counts: counters only go up, gauges are gauges, stream
 * connections refused are not counted as lines, and (when Debian's promtool is installed)
 * `promtool check metrics` finds nothing to complain about.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { until } from './helpers/wait.js';
import { rfc3164Stamp } from './helpers/syslog-lines.js';

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
if (!hasPromtool) console.log('SKIP promtool check: promtool not found (Debian package prometheus)');

describe('/metrics types and names', () => {
  let dir: string;
  let daemon: Daemon;
  let text: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'onsight-metrics-'));
    const log = join(dir, 'dhcpd.log');
    const stamp = rfc3164Stamp();
    writeFileSync(log, `${stamp} dhcp1 dhcpd[7]: DHCPACK on 10.20.0.7 to 52:54:00:00:00:07 via eth0\n`);
    const { config } = validateConfig({
      state: join(dir, 'onsight.db'), timezone: 'UTC',
      inputs: [{ type: 'file', path: log, format: 'isc-dhcpd' }, { type: 'syslog', listen: 'tcp://127.0.0.1:0', allow: ['192.0.2.0/24'] }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }],
      scanner: { type: 'dry-run', scanDurationS: 30 },
      http: { listen: '127.0.0.1:0' },
    });
    daemon = new Daemon({ config, log: silentLogger(), tickMs: 100 });
    await daemon.start();
    const tcp = daemon.inputs[1];
    // a sender outside the allow-list: one connection refused (whatever it would have sent)
    await new Promise<void>((resolve) => {
      const s = connect(tcp.address!.port, '127.0.0.1', () => s.write('<13>a\n<13>b\n<13>c\n'));
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    // the receive thread's counters reach the main thread within about 100 ms
    await until(() => tcp.counters().refused?.notAllowed === 1, 2000, 'the refusal counted');
    // a scan in flight: a 'running' intent
    await until(async () => (await daemon.scheduler.store.activeIntents()).length > 0, 10_000, 'a running scan', 50);
    text = await (await fetch(`${daemon.http!.url}/metrics`)).text();
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('files tailed is a gauge, not an event counter', () => {
    expect(text).toMatch(/^# TYPE onsight_input_files gauge$/m);
    expect(text).toMatch(/^onsight_input_files\{input="file:[^"]+"\} 1$/m);
    expect(text).not.toMatch(/event="files"/);
  });

  it('refused stream connections are counted as connections, not as dropped lines', () => {
    expect(text).toMatch(/^onsight_input_connections_refused_total\{input="tcp:\d+",reason="notAllowed"\} 1$/m);
    expect(text).not.toMatch(/^onsight_input_lines_dropped_total\{input="tcp:\d+",reason="notAllowed"\}/m);
  });

  it('counters only count what only goes up: no launching/running state in a counter', () => {
    const counters = [...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]);
    for (const c of counters) expect(c).toMatch(/_total$/);
    expect(text).not.toMatch(/^onsight_appliance_scans_total\{[^}]*state="(running|launching)"/m);
    expect(text).toMatch(/^onsight_scans_running\{region="emea",appliance="emea-sa-1"\} 1$/m);
  });

  it('help texts name the drop reasons the code uses', () => {
    const help = /^# HELP onsight_input_lines_dropped_total (.*)$/m.exec(text)![1];
    expect(help).toContain('binary');
    // non-UTF-8 messages are kept (event notUtf8), so neither name is a drop reason
    expect(help).not.toContain('invalidUtf8');
    expect(help).not.toContain('badEncoding');
  });

  it('prom-client: process metrics, and histograms of sighting-to-launch and launch-to-end', async () => {
    expect(text).toMatch(/^# TYPE process_cpu_user_seconds_total counter$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
    // the file's lease was due at once and launched: one observation, in region emea
    expect(text).toMatch(/^# TYPE onsight_sighting_to_launch_seconds histogram$/m);
    expect(text).toMatch(/^onsight_sighting_to_launch_seconds_count\{region="emea"\} 1$/m);
    expect(text).toMatch(/^onsight_sighting_to_launch_seconds_bucket\{le="\+Inf",region="emea"\} 1$/m);
    // the dry-run scan ends 30 s after launch: wait for its end, then a launch-to-end observation
    await until(async () => (await daemon.scheduler.store.activeIntents()).length === 0, 60_000, 'the scan to end', 200);
    const later = await (await fetch(`${daemon.http!.url}/metrics`)).text();
    const sum = Number(/^onsight_scan_launch_to_end_seconds_sum\{region="emea",state="finished"\} (\S+)$/m.exec(later)?.[1]);
    expect(sum).toBeGreaterThanOrEqual(29);
    expect(sum).toBeLessThan(120);
    expect(later).toMatch(/^onsight_scan_launch_to_end_seconds_bucket\{le="60",region="emea",state="finished"\} 1$/m);
    // counters are the daemon's, read afresh at each scrape (not summed over scrapes)
    expect(/^onsight_scans_launched_total\{region="emea"\} (\d+)$/m.exec(later)?.[1]).toBe('1');
    if (hasPromtool) {
      const r = spawnSync('promtool', ['check', 'metrics'], { input: later, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
    }
  }, 90_000);

  it.runIf(hasPromtool)('promtool check metrics: clean', () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
