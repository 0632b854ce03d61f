/**
 * Scanner answers that are legal HTTP but hostile or odd (an adversarial test of session 40): the
 * real clients over loopback against a server of the test's own that answers as a proxy, a WAF or
 * another team's use of the account might. Each case failed before its fix.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { QualysClient } from '../src/scanners/qualys/index.js';
import { QualysAllowance } from '../src/scanners/qualys/allowance.js';
import { TenableClient } from '../src/scanners/tenable/client.js';
import { Rapid7Client } from '../src/scanners/rapid7/client.js';
import { Budget, FailedCall } from '../src/scheduler/budget.js';
import { MAX_WAIT_SEC } from '../src/scanners/types.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function server(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const srv = createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  open.push({ close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) });
  return `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
}

const QUALYS = { username: 'u', password: 'qualys-secret-pw', optionProfile: 'Initial Options', reconcileDelayMs: 0, retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 } };

function scanListXml(scans: { ref: string; title: string; target: string }[]): string {
  const items = scans.map((s) => `<SCAN><REF>${s.ref}</REF><TYPE>API</TYPE><TITLE><![CDATA[${s.title}]]></TITLE><USER_LOGIN>u</USER_LOGIN>` +
    `<LAUNCH_DATETIME>2026-12-07T01:00:00Z</LAUNCH_DATETIME><DURATION>Pending</DURATION><PROCESSED>0</PROCESSED>` +
    `<STATUS><STATE>Running</STATE></STATUS><TARGET>${s.target}</TARGET></SCAN>`).join('');
  return `<?xml version="1.0" encoding="UTF-8" ?><SCAN_LIST_OUTPUT><RESPONSE><DATETIME>2026-12-07T02:00:00Z</DATETIME><SCAN_LIST>${items}</SCAN_LIST></RESPONSE></SCAN_LIST_OUTPUT>`;
}

describe('Qualys answers', () => {
  it('a scan list full of others\' /16 range scans is read without expanding their targets (3,000 of them killed the daemon at each start)', async () => {
    const foreign = Array.from({ length: 400 }, (_, i) => ({ ref: `scan/1765069200.${i}`, title: `nightly ${i}`, target: `10.${i % 250}.0.0-10.${i % 250}.255.255` }));
    const xml = scanListXml([...foreign, { ref: 'scan/1765069200.999', title: 'onsight i-1', target: '10.9.0.1, 10.9.0.3-10.9.0.4' }]);
    const url = await server((_req, res) => res.writeHead(200, { 'content-type': 'text/xml' }).end(xml));
    const c = new QualysClient({ baseUrl: url, ...QUALYS });
    open.push(c);
    const before = process.memoryUsage().heapUsed;
    const scans = await c.listScans({ launchedAfter: new Date('2026-12-07T00:00:00Z') });
    const ours = scans.find((s) => s.title === 'onsight i-1')!;
    expect(ours.targets).toEqual(['10.9.0.1', '10.9.0.3', '10.9.0.4']);
    // 400 × 65,536 addresses held as strings took more than a gigabyte; the list itself is a few megabytes
    const grown = process.memoryUsage().heapUsed - before;
    expect(scans).toHaveLength(401);
    expect(grown).toBeLessThan(200 * 1024 * 1024);
    // read when asked for (a foreign scan's, here), as before
    expect(scans[0].targets).toHaveLength(65_536);
  });

  it('negative or zero limit headers are no limit: calls are not paced down to none', () => {
    const a = new QualysAllowance();
    a.update('scan', { 'x-ratelimit-limit': '300', 'x-ratelimit-window-sec': '-3600', 'x-ratelimit-remaining': '-5' });
    expect(a.snapshot('scan')).toMatchObject({ limit: 300, windowSec: undefined, remaining: undefined });
    a.update('scan', { 'x-ratelimit-limit': '0', 'x-ratelimit-window-sec': '3600' });
    expect(a.snapshot('scan')).toMatchObject({ limit: 300, windowSec: 3600 });
    // the scheduler's budget reads a stated negative allowance as none (no scarce pace)
    const b = new Budget({ clock: { now: () => Date.now() }, scanner: { allowance: () => ({ limit: 300, windowSec: -3600 }) }, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 } } as never);
    expect(b.callsPerDay()).toBeUndefined();
    expect(b.scarce()).toBe(false);
    // a window of 1e12 s is a day's (it paced calls to one a week)
    a.update('scan', { 'x-ratelimit-window-sec': '1e12' });
    expect(a.snapshot('scan').windowSec).toBe(MAX_WAIT_SEC);
    const huge = new Budget({ clock: { now: () => Date.now() }, scanner: { allowance: () => ({ limit: 300, windowSec: 1e12 }) }, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 } } as never);
    expect(huge.callsPerDay()).toBe(300);
  });

  it('a scanner\'s wait past a day reaches the budget\'s callers as a day (they date targets by it)', async () => {
    const now = Date.now();
    const told = { launched: 'no', next: 'wait', untilMs: 1e300, code: 'ONSIGHT_SCANNER_RATE_LIMIT', message: 'wait' };
    const scanner = { allowance: () => ({}), failureOutcome: () => told };
    const b = new Budget({ clock: { now: () => now }, scanner, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 }, log: pino({ level: 'silent' }) } as never);
    const failed = await b.call('list scans', 'listScans', () => Promise.reject(new Error('429'))).catch((e: unknown) => e as FailedCall);
    expect(failed.outcome.untilMs).toBe(now + MAX_WAIT_SEC * 1000);
    expect(new Date(failed.outcome.untilMs!).toISOString()).toMatch(/Z$/);
  });

  it('a ToWait of 1e300 on a launch is a wait of a day, and the launch is known not made (the log\'s date threw: the launch was left "launching", every call held for ever)', async () => {
    const url = await server((_req, res) => res.writeHead(409, { 'content-type': 'text/xml', 'x-ratelimit-towait-sec': '1e300' })
      .end('<?xml version="1.0" encoding="UTF-8" ?><SIMPLE_RETURN><RESPONSE><DATETIME>2026-12-07T02:00:00Z</DATETIME><CODE>1965</CODE><TEXT>This API cannot be run again for another 1e300 seconds.</TEXT></RESPONSE></SIMPLE_RETURN>'));
    const c = new QualysClient({ baseUrl: url, ...QUALYS, throttle: { maxWaitSec: 1 } });
    open.push(c);
    const b = new Budget({ clock: { now: () => Date.now() }, scanner: c, counters: { launches: 0, apiCalls: 0 }, opts: { reserveCalls: 0 }, log: pino({ level: 'silent' }) } as never);
    const t0 = Date.now();
    const failed = await b.call('launch', 'launch', () => c.launch({ intentId: 'i-1', title: 'onsight i-1', targets: ['10.9.0.1'], appliance: 'sa-1' })).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(FailedCall);
    const o = (failed as FailedCall).outcome;
    expect(o).toMatchObject({ launched: 'no', next: 'wait' });
    expect(o.untilMs! - t0).toBeGreaterThan(0);
    expect(o.untilMs! - Date.now()).toBeLessThanOrEqual(MAX_WAIT_SEC * 1000);
    expect(c.allowance().waitSec).toBeLessThanOrEqual(MAX_WAIT_SEC);
  });

  it('a host whose LAST_VULN_SCAN_DATETIME does not read (N/A) keeps its valid LAST_VM_SCANNED_DATE (it was taken as never scanned: "found no host")', async () => {
    const url = await server((_req, res) => res.writeHead(200, { 'content-type': 'text/xml' }).end(
      '<?xml version="1.0" encoding="UTF-8" ?><HOST_LIST_OUTPUT><RESPONSE><DATETIME>2026-12-07T02:00:00Z</DATETIME><HOST_LIST>' +
      '<HOST><ID>1</ID><IP>10.1.4.1</IP><TRACKING_METHOD>IP</TRACKING_METHOD><LAST_VULN_SCAN_DATETIME>N/A</LAST_VULN_SCAN_DATETIME><LAST_VM_SCANNED_DATE>2026-12-07T01:30:00Z</LAST_VM_SCANNED_DATE></HOST>' +
      '</HOST_LIST></RESPONSE></HOST_LIST_OUTPUT>'));
    const c = new QualysClient({ baseUrl: url, ...QUALYS });
    open.push(c);
    expect(await c.lastScanned(['10.1.4.1'])).toMatchObject([{ ip: '10.1.4.1', lastScannedAt: '2026-12-07T01:30:00Z' }]);
  });
});

describe('Tenable and Rapid7 answers', () => {
  const secret = 'b'.repeat(64);
  const apiKeys = `accessKey=${'a'.repeat(64)}; secretKey=${secret}`;

  it('an error page that echoes the request headers never carries the keys into the error (logged, and stored with the intent)', async () => {
    const url = await server((req, res) => res.writeHead(400, { 'content-type': 'text/plain' }).end(`bad header X-ApiKeys: ${req.headers['x-apikeys']}`));
    const c = new TenableClient({ baseUrl: url, apiKeys, maxAttempts: 1, baseDelayMs: 1 });
    const err = await c.listScans({}).catch((e: unknown) => e as Error);
    expect(err.message).toContain('400 bad header X-ApiKeys: [redacted]');
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain('a'.repeat(64));
    await c.close();
    // Rapid7: Basic credentials, echoed encoded or decoded
    const url7 = await server((req, res) => {
      const auth = req.headers.authorization ?? '';
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream refused ${auth} (${Buffer.from(auth.slice(6), 'base64').toString()})`);
    });
    const r7 = new Rapid7Client({ baseUrl: url7, username: 'svc-onsight', password: 'r7-Secret-Pass', maxAttempts: 1, baseDelayMs: 1 } as never);
    const err7 = await r7.listScans({}).catch((e: unknown) => e as Error);
    expect(err7.message).toMatch(/502 upstream refused \[redacted\] \(\[redacted\]\)/);
    expect(err7.message).not.toContain('r7-Secret-Pass');
    await r7.close();
    // a short password, echoed URL-encoded or JSON-escaped; a key echoed in capitals
    const url8 = await server((req, res) => res.writeHead(400, { 'content-type': 'text/plain' })
      .end(`password Tr0b:! wrong, pass=${encodeURIComponent('Tr0b:!')} ${JSON.stringify({ echo: 'Tr0b:!' })} key ${String(req.headers['x-apikeys'] ?? '').toUpperCase()}`));
    const r8 = new Rapid7Client({ baseUrl: url8, username: 'svc', password: 'Tr0b:!', maxAttempts: 1, baseDelayMs: 1 } as never);
    const err8 = await r8.listScans({}).catch((e: unknown) => e as Error);
    expect(err8.message).toContain('400 password [redacted] wrong, pass=[redacted] {"echo":"[redacted]"}');
    await r8.close();
    const t8 = new TenableClient({ baseUrl: url8, apiKeys, maxAttempts: 1, baseDelayMs: 1 });
    const errT = await t8.listScans({}).catch((e: unknown) => e as Error);
    expect(errT.message).not.toContain('B'.repeat(64));
    await t8.close();
  });

  it('JSON after a byte order mark is read (as res.text() read it)', async () => {
    const url = await server((_req, res) => res.writeHead(200, { 'content-type': 'application/json' })
      .end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ scans: [{ id: 102, name: 'onsight i-1', status: 'running' }] }))])));
    const c = new TenableClient({ baseUrl: url, apiKeys, maxAttempts: 1, baseDelayMs: 1 });
    expect((await c.listScans({})).map((x) => x.scanRef)).toEqual(['102']);
    await c.close();
  });

  it('an endless answer is cut off at the cap as it comes, not read whole first (1.5 GB took 3 GB of memory)', async () => {
    let written = 0;
    const url = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const more = () => {
        while (written < 512 * (1 << 20)) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('close', () => { written += 0; });
      more();
    });
    const c = new TenableClient({ baseUrl: url, apiKeys, maxAttempts: 1, baseDelayMs: 1 });
    const err = await c.listScans({}).catch((e: unknown) => e as Error);
    expect(err.message).toMatch(/answer over 33554432 bytes: not read further/);
    await c.close();
    // the server stopped being read soon after the cap (socket buffers aside)
    expect(written).toBeLessThan(128 * (1 << 20));
  });

  it('one scan of someone else\'s with a date or status no Date or string holds is read without them; the poll goes on (it failed every poll)', async () => {
    const url = await server((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      scans: [
        { id: 999, name: 'theirs', status: 5, creation_date: 1e14 },
        { id: 998, name: 'theirs too', status: 'running', creation_date: 'yesterday' },
        { id: 102, name: 'onsight i-1', status: 'running', creation_date: 1765069200 },
      ],
    })));
    const c = new TenableClient({ baseUrl: url, apiKeys, maxAttempts: 1, baseDelayMs: 1 });
    const scans = await c.listScans({});
    expect(scans.map((s) => [s.scanRef, s.state, s.launchedAt])).toEqual([
      ['999', 'unknown', undefined], ['998', 'running', undefined], ['102', 'running', '2025-12-07T01:00:00.000Z'],
    ]);
    await c.close();
  });
});
