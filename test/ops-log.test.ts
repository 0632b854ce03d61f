/**
 * Logging: JSON lines (pino) with level, time and message; secrets handed to the logger in the
 * usual shapes come out redacted, in JSON and in the pretty (TTY) form; the daemon logs ingest
 * progress while lines flow (file catch-up).
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { closeLog, createLogger, droppedLogLines } from '../src/log.js';
import { drainedFifo } from './helpers/fifo.js';
import { spawnSync } from 'node:child_process';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Secrets in the shapes code tends to log them: flat, nested, headers, child bindings, errors' config. */
function logSecrets(log: pino.Logger): void {
  log.info({ password: 'S1-flat' }, 'flat');
  log.info({ scanner: { password: 'S2-nested', passwordFile: '/etc/onsight/qualys.pass', username: 'onsight_api' } }, 'nested');
  log.info({ config: { scanner: { password: 'S3-deep' } } }, 'deep');
  log.info({ headers: { authorization: 'Basic UzQtYXV0aA==' } }, 'headers');
  log.info({ req: { headers: { Authorization: 'Basic UzUtcmVx', cookie: 'QualysSession=S5-cookie' } } }, 'request');
  log.child({ password: 'S6-child' }).info('child');
  log.info({ auth: { username: 'u', password: 'S7-auth' } }, 'auth');
  log.info({ request: { options: { auth: 'S8-basic' } } }, 'options');
  log.info({ qualys: { Authorization: 'Basic UzktcWhlYWRlcg==' } }, 'capital');
  log.info({ env: { QUALYS_PASSWORD: 'S10-env' }, token: 'S11-token', secret: 'S12-secret' }, 'misc');
}
const SECRETS = ['S1-flat', 'S2-nested', 'S3-deep', 'UzQtYXV0aA==', 'UzUtcmVx', 'S5-cookie', 'S6-child', 'S7-auth', 'S8-basic', 'UzktcWhlYWRlcg==', 'S10-env', 'S11-token', 'S12-secret'];

describe('logging', () => {
  it('JSON lines with level, ISO time and msg; passwords in common shapes are redacted', async () => {
    const file = join(dir, 'json.log');
    const fd = openSync(file, 'w');
    const log = createLogger({ pretty: false, fd, level: 'info' });
    logSecrets(log);
    closeLog(log);
    const text = readFileSync(file, 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(10);
    for (const l of lines) {
      expect(l.level).toBe(30);
      expect(Date.parse(String(l.time))).not.toBeNaN();
      expect(typeof l.msg).toBe('string');
    }
    for (const s of SECRETS) expect(text, s).not.toContain(s);
    // what is not secret stays readable
    expect(lines[1]).toMatchObject({ scanner: { password: '[Redacted]', passwordFile: '/etc/onsight/qualys.pass', username: 'onsight_api' } });
    expect(lines[6]).toMatchObject({ auth: '[Redacted]' });
  });

  it('secrets deeper than four levels, in grandchild bindings and inside errors are redacted; the error keeps its message and stack; nothing logged is mutated', async () => {
    const file = join(dir, 'deep.log');
    const fd = openSync(file, 'w');
    const log = createLogger({ pretty: false, fd, level: 'info' });
    const deep = { a: { b: { c: { d: { token: 'D1-deep' }, keep: 'visible' } } } };
    log.info(deep, 'deep');
    log.child({ job: 1 }).child({ creds: { apiKey: 'D2-grandchild' } }).info('grandchild');
    const err = Object.assign(new Error('request failed: 401'), { config: { auth: { username: 'u', password: 'D3-err' }, url: 'https://qualysapi.example/api' } });
    log.error({ err }, 'scanner call failed');
    log.error(err, 'bare error');
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    log.info({ cycle }, 'cycle');
    closeLog(log);
    const text = readFileSync(file, 'utf8');
    for (const s of ['D1-deep', 'D2-grandchild', 'D3-err']) expect(text, s).not.toContain(s);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines[0].a.b.c.keep).toBe('visible');
    expect(lines[2].err.message).toBe('request failed: 401');
    expect(lines[2].err.stack).toContain('request failed: 401');
    expect(lines[2].err.config.url).toBe('https://qualysapi.example/api');
    expect(lines[3].msg).toBe('bare error');
    expect(lines[4].cycle.name).toBe('loop');
    // the caller's objects are untouched
    expect(deep.a.b.c.d.token).toBe('D1-deep');
    expect(err.config.auth.password).toBe('D3-err');
  });

  it('closeLog writes what is buffered and closes the logger\'s fd; lines logged after it go nowhere', async () => {
    const file = join(dir, 'close.log');
    const fd = openSync(file, 'w');
    const log = createLogger({ pretty: false, fd, level: 'info' });
    for (let i = 0; i < 500; i++) log.info({ i }, 'line');
    closeLog(log);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { i: number });
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
    const dropped0 = droppedLogLines();
    expect(() => log.info('after close')).not.toThrow();
    expect(droppedLogLines()).toBe(dropped0 + 1);
  });

  it('a logger whose fd was closed under it stops writing instead of throwing into the process', async () => {
    const file = join(dir, 'closed.log');
    const fd = openSync(file, 'w');
    const log = createLogger({ pretty: false, fd, level: 'info' });
    closeSync(fd); // the first write meets EBADF
    log.info('first');
    await new Promise((r) => setTimeout(r, 50));
    log.info('second');
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  it('a stalled reader never stalls logging: lines wait, or beyond 16 MiB are dropped and counted; every line is delivered or counted', async () => {
    const got = join(dir, 'stalled.out');
    const { fd, reader, done: exited } = await drainedFifo(dir, got);
    reader.kill('SIGSTOP');
    const log = createLogger({ pretty: false, fd, level: 'info' });
    const dropped0 = droppedLogLines();
    const pad = 'x'.repeat(200);
    const n = 100_000; // about 30 MiB: more than the 16 MiB held for a slow reader
    const t0 = performance.now();
    for (let i = 0; i < n; i++) log.info({ i, pad }, 'line');
    const loggingMs = performance.now() - t0;
    // pino's synchronous destination sleeps 100 ms on each EAGAIN: hours for these lines
    expect(loggingMs).toBeLessThan(20_000);
    const dropped = droppedLogLines() - dropped0;
    expect(dropped).toBeGreaterThan(0);
    reader.kill('SIGCONT');
    closeLog(log); // waits (up to 5 s) for the reader to take what is held
    await exited;
    const delivered = readFileSync(got, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    expect(delivered.length + dropped).toBe(n);
    for (let k = 1; k < delivered.length; k++) expect(delivered[k]).toBeGreaterThan(delivered[k - 1]); // in order, none twice
  }, 60_000);

  it('lines logged in the turn that calls process.exit() are written before the process ends', () => {
    const file = join(dir, 'exit.log');
    const script = `
      const { openSync } = require('node:fs');
      import(${JSON.stringify(join(process.cwd(), 'dist', 'src', 'log.js'))}).then(({ createLogger }) => {
        const log = createLogger({ pretty: false, fd: openSync(${JSON.stringify(file)}, 'w'), level: 'info' });
        for (let i = 0; i < 100; i++) log.info({ i }, 'before exit');
        log.fatal('exiting');
        process.exit(3);
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(3);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(101);
    expect(JSON.parse(lines[100]).msg).toBe('exiting');
  });

  it('the pretty form (a TTY) is redacted too', async () => {
    const file = join(dir, 'pretty.log');
    writeFileSync(file, '');
    const fd = openSync(file, 'a');
    const log = createLogger({ pretty: true, fd, level: 'info' });
    logSecrets(log);
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    const end = Date.now() + 5000;
    while (!readFileSync(file, 'utf8').includes('misc') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const text = readFileSync(file, 'utf8');
    closeSync(fd);
    expect(text).toContain('flat');
    expect(text).toContain('misc');
    expect(text).toContain('[Redacted]');
    for (const s of SECRETS) expect(text, s).not.toContain(s);
    // one line per entry on a terminal: nested fields inline, not a page of YAML-ish lines
    expect(text.trimEnd().split('\n').length).toBe(10);
  });

  it('the daemon logs ingest progress (lines/s, sightings, pending) while lines flow from a file', async () => {
    const logFile = join(dir, 'dhcpd.log');
    writeFileSync(logFile, Array.from({ length: 20_000 }, (_, i) => `Nov 22 19:54:11 dhcp1 dhcpd[7]: DHCPACK on 10.20.${i >> 8}.${i & 255} to 52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} via eth0\n`).join(''));
    const { config } = validateConfig({
      state: join(dir, 'progress.db'), timezone: 'UTC',
      inputs: [{ type: 'file', path: logFile, format: 'isc-dhcpd' }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }],
      http: { enabled: false },
    });
    const entries: { msg: string; progress?: { linesPerS: number; lines: number; sightings: number; pending: number } }[] = [];
    const raw: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) {
          if (!l) continue;
          entries.push(JSON.parse(l));
          raw.push(l);
        }
        cb();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const d = new Daemon({ config, log, progressMs: 100 });
    await d.start();
    try {
      const end = Date.now() + 20_000;
      while (d.ingest.counters.lines < 20_000 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 250));
    } finally {
      await d.stop();
    }
    const progress = entries.filter((e) => e.progress);
    expect(progress.length).toBeGreaterThan(0);
    // Elasticsearch refuses a document with a key twice: every line names its input once
    const tailing = raw.filter((l) => l.includes('"tailing"'));
    expect(tailing.length).toBe(1);
    for (const l of raw) expect(l.split('"input":').length, l).toBeLessThanOrEqual(2);
    expect(JSON.parse(tailing[0]).input).toBe(`file:${logFile}`);
    const last = progress.at(-1)!;
    expect(last.msg).toMatch(/^ingest: \d+ lines\/s, \d+ lines and \d+ sightings so far, \d+ pending$/);
    expect(last.progress!.lines).toBe(20_000);
    expect(last.progress!.sightings).toBe(20_000);
    console.log(`progress lines while catching up 20000 lines: ${progress.map((p) => p.msg).join(' | ')}`);
    // quiet once the lines stop: no progress line after the last one that counted new lines
    const idle = progress.filter((p) => p.progress!.linesPerS === 0 && p.progress!.pending === 0);
    expect(idle.length).toBeLessThanOrEqual(1);
  });
});
