/**
 * Notifications through the real daemon (a child process): a real HTTP receiver on loopback that
 * checks each webhook's HMAC-SHA256 signature (and answers 503 once, to be retried), a real UDP
 * syslog collector that reads RFC 5424 lines; scans ended, hosts scanned and a host that left
 * unscanned; retries and deliveries counted on /metrics; the secret in no log line.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, freePort, startDaemon, udpDaemonHead } from './helpers/daemon.js';
import { udpSend } from './helpers/net.js';
import { parsePromText } from '../src/http/prom.js';
import { formatSyslog } from '../src/notify/syslog.js';
import { signatureHeader } from '../src/notify/webhook.js';
import { newEvent } from '../src/notify/events.js';
import { validateConfig } from '../src/config/load.js';

const SECRET = 'whsec-7f3a9c-not-for-logs';

interface Delivery { headers: IncomingMessage['headers']; body: string; signatureOk: boolean }

/** Stripe-style check, as a receiver would do it */
function verify(header: string | undefined, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m || Math.abs(Date.now() / 1000 - Number(m[1])) > 300) return false;
  const want = createHmac('sha256', SECRET).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(want, Buffer.from(m[2], 'hex'));
}

/** a window that is closed now (two hours from now, one hour long, UTC) */
function closedWindow(): string {
  const h = (new Date().getUTCHours() + 2) % 24;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `* ${pad(h)}:00-${pad(h + 1)}:00`;
}

describe('notifications (webhook and syslog) through the real daemon', () => {
  let d: DaemonProcess;
  let port: number;
  let httpPort: number;
  let receiver: Server;
  let collector: Socket;
  const deliveries: Delivery[] = [];
  const syslogLines: string[] = [];
  let refusedOnce = false;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
        if (!refusedOnce) {
          refusedOnce = true; // the first delivery fails: it must come again
          res.writeHead(503).end();
          return;
        }
        deliveries.push({ headers: req.headers, body, signatureOk: verify(req.headers['onsight-signature'] as string, body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    collector = createSocket('udp4');
    collector.on('message', (m) => syslogLines.push(m.toString('utf8')));
    await new Promise<void>((r) => collector.bind(0, '127.0.0.1', r));
    port = await freePort();
    httpPort = await freePort();
    d = await startDaemon(`
${udpDaemonHead(port)}regions:
  - { name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }
  - { name: night, cidrs: ["10.40.0.0/16"], appliances: [night-sa-1], scanWindows: ["${closedWindow()}"] }
scanner: { type: dry-run, scanDurationS: 1 }
http: { listen: "127.0.0.1:${httpPort}" }
notify:
  webhook: { url: "http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/onsight", secret: { env: ONSIGHT_TEST_WEBHOOK_SECRET }, backoffS: 0.2 }
  syslog: { target: "udp://127.0.0.1:${(collector.address() as { port: number }).port}", facility: local3 }
`, { ONSIGHT_TEST_WEBHOOK_SECRET: SECRET });
  });
  afterAll(async () => {
    await d?.stop();
    receiver?.close();
    collector?.close();
  });

  const waitUntil = async (pred: () => boolean, what: string, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; deliveries: ${deliveries.map((x) => x.headers['onsight-event']).join(', ')}; syslog: ${syslogLines.length}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const events = () => deliveries.map((x) => JSON.parse(x.body) as { id: string; event: string; scan?: Record<string, unknown>; host?: Record<string, unknown> });

  it('a scan that finishes sends scan-finished and host-scanned, signed, after retrying a 503', async () => {
    await udpSend(port, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on 10.20.1.7 to 52:54:00:aa:bb:cc (laptop-7) via eth0`);
    await waitUntil(() => events().some((e) => e.event === "host-scanned") && events().some((e) => e.event === "scan-finished"), "scan-finished and host-scanned");
    expect(refusedOnce).toBe(true);
    for (const x of deliveries) {
      expect(x.signatureOk).toBe(true);
      expect(x.headers['content-type']).toBe('application/json');
      expect(x.headers['onsight-delivery']).toBe(JSON.parse(x.body).id);
    }
    const fin = events().find((e) => e.event === 'scan-finished')!;
    expect(fin.scan).toMatchObject({ region: 'emea', appliance: 'emea-sa-1', state: 'finished', targets: 1, scanned: 1 });
    const host = events().find((e) => e.event === 'host-scanned')!;
    expect(host.host).toMatchObject({ ip: '10.20.1.7', region: 'emea', hostname: 'laptop-7', device: expect.stringContaining('52:54:00:aa:bb:cc') });
    // the same events as RFC 5424 lines: <local3*8+notice>1 TIMESTAMP HOST onsight PID MSGID [SD] MSG
    await waitUntil(() => syslogLines.some((l) => / host-scanned \[onsight@32473 /.test(l)), 'a host-scanned syslog line');
    const line = syslogLines.find((l) => / scan-finished /.test(l))!;
    expect(line).toMatch(/^<157>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ onsight \d+ scan-finished \[onsight@32473 event="scan-finished" id="[0-9a-f-]{36}" .*region="emea".*\] scan \S+ finished on emea-sa-1 in region emea: 1 of 1 target\(s\) recorded scanned$/);
  });

  it('a device that leaves unscanned (outside its region\'s scan windows) sends host-missed with why', async () => {
    await udpSend(port, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPACK on 10.40.1.9 to 52:54:00:aa:bb:40 (kiosk-9) via eth0`);
    await d.waitFor((e) => (e as { sighting?: { ip?: string } }).sighting?.ip === '10.40.1.9');
    await udpSend(port, `<30>1 ${new Date().toISOString()} gw dhcpd 1 - - DHCPRELEASE of 10.40.1.9 from 52:54:00:aa:bb:40 via eth0`);
    await waitUntil(() => events().some((e) => e.event === 'host-missed'), 'host-missed');
    const missed = events().filter((e) => e.event === 'host-missed');
    expect(missed).toHaveLength(1);
    expect(missed[0].host).toMatchObject({ ip: '10.40.1.9', region: 'night', why: 'outside-scan-window', hostname: 'kiosk-9' });
    await waitUntil(() => syslogLines.some((l) => /^<156>1 .* host-missed .*why="outside-scan-window"/.test(l)), 'a host-missed syslog line (warning)');
  });

  it('/metrics counts deliveries and the retry; no log line holds the secret', async () => {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const samples = parsePromText(text).samples;
    const get = (name: string, labels: Record<string, string>) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(get('onsight_notify_retries_total', { sink: 'webhook' })).toBe(1);
    expect(get('onsight_notify_events_total', { sink: 'webhook', outcome: 'sent' })).toBe(deliveries.length);
    expect(get('onsight_notify_events_total', { sink: 'syslog', outcome: 'sent' })).toBe(syslogLines.length);
    expect(get('onsight_notify_events_total', { sink: 'webhook', outcome: 'failed' })).toBe(0);
    expect(JSON.stringify(d.logs) + d.stderr).not.toContain(SECRET);
    expect(JSON.stringify(d.logs)).not.toContain('/hooks/onsight'); // logs name the receiver's origin only
  });
});

describe('notification delivery over real sockets: refusals, dead receivers, TCP syslog', () => {
  const intent = { id: 'onsight-x-1', region: 'emea', appliance: 'sa-1', state: 'running' as const, createdAt: 0, launchedAt: Date.now() - 60_000, scanRef: 'scan/1' };
  const ctx = { identity: () => undefined, regionOf: () => undefined, endedBindings: () => [], decisionPagesSince: async function* () {}, evaluator: () => () => ({ due: false, reason: 'due' as const, detail: '' }) };
  const until = async (pred: () => boolean, what: string) => {
    const end = Date.now() + 10_000;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('a receiver that refuses (401) is not retried; a dead one is retried maxAttempts times; both counted failed; the scheduler never waits', async () => {
    let hits = 0;
    const refusing = createServer((req, res) => { hits++; req.resume(); res.writeHead(401).end(); });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const deadPort = await freePort(); // nothing listens there
    const env = { S: SECRET };
    const { Notifier } = await import('../src/notify/notifier.js');
    const { silentLogger } = await import('../src/log.js');
    const refused = new Notifier({ webhook: { url: `http://127.0.0.1:${(refusing.address() as { port: number }).port}/`, secret: { env: 'S' }, events: ['scan-finished', 'scan-failed', 'host-scanned', 'host-missed'], timeoutS: 5, maxAttempts: 3, backoffS: 0.05, maxBackoffS: 1, maxQueue: 10 } }, ctx, silentLogger(), Date.now(), env);
    const dead = new Notifier({ webhook: { url: `http://127.0.0.1:${deadPort}/`, secret: { env: 'S' }, events: ['scan-finished', 'scan-failed', 'host-scanned', 'host-missed'], timeoutS: 5, maxAttempts: 3, backoffS: 0.05, maxBackoffS: 1, maxQueue: 2 } }, ctx, silentLogger(), Date.now(), env);
    try {
      refused.scanEnded(intent, { state: 'finished', endedAt: Date.now(), targets: 1, scanned: 1 });
      for (let n = 0; n < 3; n++) dead.scanEnded(intent, { state: 'error', endedAt: Date.now(), targets: 1, scanned: 0, why: 'x' });
      // the calls returned with the events queued, before any delivery attempt finished
      expect(refused.counters()[0].counters).toMatchObject({ queued: 1, sent: 0, failed: 0 });
      expect(dead.counters()[0].counters).toMatchObject({ queued: 2, dropped: 1 });
      await until(() => refused.counters()[0].counters.failed === 1, 'the refusal');
      expect(hits).toBe(1);
      expect(refused.counters()[0].counters).toMatchObject({ sent: 0, retries: 0, failed: 1 });
      await until(() => dead.counters()[0].counters.failed === 2, 'two events given up');
      // the queue holds 2: the first event was dropped when the third came
      expect(dead.counters()[0].counters).toMatchObject({ sent: 0, failed: 2, dropped: 1, retries: 4, queued: 0 });
    } finally {
      refused.close();
      dead.close();
      refusing.close();
    }
  });

  it('TCP syslog: octet-counted RFC 5424 frames a collector can split, even with a newline in a field', async () => {
    const { createServer: createTcpServer } = await import('node:net');
    let buf = '';
    const collector = createTcpServer((sock) => sock.setEncoding('utf8').on('data', (c: string) => (buf += c)));
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const { Notifier } = await import('../src/notify/notifier.js');
    const { silentLogger } = await import('../src/log.js');
    const n = new Notifier({ syslog: { target: `tcp://127.0.0.1:${(collector.address() as { port: number }).port}`, facility: 'local0', appName: 'onsight', events: ['scan-failed'], maxQueue: 10 } }, ctx, silentLogger());
    try {
      n.scanEnded(intent, { state: 'finished', endedAt: Date.now(), targets: 1, scanned: 1 }); // not wanted: not sent
      n.scanEnded(intent, { state: 'error', endedAt: Date.now(), targets: 2, scanned: 0, why: 'line one\nline two' });
      n.scanEnded(intent, { state: 'canceled', endedAt: Date.now(), targets: 2, scanned: 0, why: 'by the scanner' });
      await until(() => n.counters()[0].counters.sent === 2, 'two frames');
      await until(() => /scan-failed.*scan-failed/s.test(buf), 'both frames at the collector');
      const frames: string[] = [];
      for (let rest = Buffer.from(buf); rest.length;) {
        const sp = rest.indexOf(0x20);
        const len = Number(rest.subarray(0, sp).toString());
        frames.push(rest.subarray(sp + 1, sp + 1 + len).toString());
        rest = rest.subarray(sp + 1 + len);
      }
      expect(frames).toHaveLength(2);
      expect(frames[0]).toMatch(/^<132>1 \S+ \S+ onsight \d+ scan-failed \[onsight@32473 event="scan-failed" .*state="error".*error="line one line two"\]/);
      expect(frames[1]).toContain('state="canceled"');
    } finally {
      n.close();
      collector.close();
    }
  });
});

describe('notification formats and config', () => {
  it('the signature is HMAC-SHA256 over "<t>.<body>" (Stripe\'s scheme), hex', () => {
    expect(signatureHeader('k', 1700000000, '{"a":1}')).toBe(`t=1700000000,v1=${createHmac('sha256', 'k').update('1700000000.{"a":1}').digest('hex')}`);
  });

  it('syslog structured data escapes ", \\ and ], and a CR/LF in a host name cannot split the line', () => {
    const e = newEvent('host-missed', Date.UTC(2026, 0, 2, 3, 4, 5), { host: { ip: '10.0.0.1', hostname: 'evil"]\\\r\n<13>1 forged', reason: 'left' } });
    const line = formatSyslog(e, { facility: 16, appName: 'onsight', host: 'h', pid: 7 });
    expect(line).not.toMatch(/[\r\n]/);
    expect(line).toContain('hostname="evil\\"\\]\\\\  <13>1 forged"');
    expect(line.startsWith('<132>1 2026-01-02T03:04:05.000Z h onsight 7 host-missed [onsight@32473 ')).toBe(true);
  });

  it('config check refuses bad notify keys with their path', () => {
    const base = { policy: { scope: ['10.0.0.0/8'] }, regions: [{ name: 'a', cidrs: ['10.0.0.0/8'], appliances: ['x'] }] };
    const bad = (notify: unknown) => {
      try {
        validateConfig({ ...base, notify });
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(bad({ webhook: { url: 'ftp://x', secret: { env: 'S' } } })).toMatch(/notify\.webhook\.url: expected an http/);
    expect(bad({ webhook: { url: 'https://u:p@x/', secret: { env: 'S' } } })).toMatch(/notify\.webhook\.url: credentials in the URL/);
    expect(bad({ webhook: { url: 'https://x/', secret: { env: 'S', file: '/f' } } })).toMatch(/notify\.webhook\.secret: give exactly one/);
    expect(bad({ webhook: { url: 'https://x/', secret: { env: 'S' }, events: ['scan-done'] } })).toMatch(/notify\.webhook\.events\[0\]/);
    expect(bad({ syslog: { target: 'udp://h:70000' } })).toMatch(/notify\.syslog\.target: expected udp/);
    expect(bad({ syslog: { target: 'tcp://h:514', facility: 'local9' } })).toMatch(/notify\.syslog\.facility/);
    expect(bad({ webhook: { url: 'https://x/', secret: { env: 'S' } }, syslog: { target: 'tcp://[::1]:514' } })).toBe('');
  });
});
