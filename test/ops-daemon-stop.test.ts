/**
 * Daemon.stop() and Daemon.reloadTls() on the real daemon (in process, real SQLite file, real
 * sockets):
 * - the last scheduler pass at stop is bounded: with a Qualys API that accepts requests and never
 *   answers, stop() closes the scanner (ending the call) instead of waiting for it, well within
 *   systemd's TimeoutStopSec=30s;
 * - a step of stop() that fails does not skip the others: the state lock is released, and stop()
 *   rejects naming the step;
 * - a TLS input whose new certificate cannot be read does not keep the others from reloading theirs.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { closeLog, createLogger, silentLogger } from '../src/log.js';
import { lockStateFile } from '../src/store/lock.js';
import { ScriptedScanner } from './helpers/scanner.js';
import { udpSend } from './helpers/net.js';
import { selfSignedCert } from './helpers/tls-cert.js';
import { freePort } from './helpers/daemon.js';
import { sleep, until } from './helpers/wait.js';
import { dhcpAck } from './helpers/syslog-lines.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'onsight-stop-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


describe('stop with a scanner call that never ends', () => {
  let api: Server | undefined;
  afterAll(() => {
    api?.closeAllConnections();
    api?.close();
  });

  it('closes the scanner after the bound instead of waiting for the pass', async () => {
    const seen: IncomingMessage[] = [];
    // a Qualys API that takes every request and never answers
    api = createServer((req) => void seen.push(req));
    await new Promise<void>((resolve) => api!.listen(0, '127.0.0.1', () => resolve()));
    const dir = tmp();
    writeFileSync(join(dir, 'qualys.pass'), 'pw-for-stop-test\n');
    const port = await freePort();
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto' }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }],
      scanner: { type: 'qualys', url: `http://127.0.0.1:${(api.address() as { port: number }).port}`, username: 'u', passwordFile: join(dir, 'qualys.pass'), optionProfile: 'p', timeoutS: 120 },
      http: { enabled: false },
    });
    const daemon = new Daemon({ config, log: silentLogger(), tickMs: 100, stopPassMs: 1000 });
    await daemon.start();
    await udpSend(port, dhcpAck('10.20.3.4', '52:54:00:dd:00:04'));
    // the pass that takes the device is inside a scanner call now, and it will not end by itself
    await until(() => seen.length > 0, 15_000, 'a call to the scanner API');
    const t0 = Date.now();
    const outcome = await Promise.race([daemon.stop().then(() => 'stopped', (e: Error) => `failed: ${e.message}`), sleep(20_000).then(() => 'still stopping after 20 s')]);
    const ms = Date.now() - t0;
    expect(outcome).toBe('stopped');
    // the bound (1 s here, 10 s by default) plus the closing steps: far below the call's own 120 s timeout
    expect(ms).toBeLessThan(8000);
    expect(ms).toBeGreaterThanOrEqual(900);
  }, 40_000);
});

class CloseFails extends ScriptedScanner {
  override async close(): Promise<void> {
    throw new Error('scripted: close failed');
  }
}

describe('a step of stop() that fails', () => {
  it('does not skip the later ones: the database is closed and the lock released; stop() rejects naming the step', async () => {
    const dir = tmp();
    const state = join(dir, 'state.db');
    const logFile = join(dir, 'daemon.log');
    const log = createLogger({ pretty: false, fd: openSync(logFile, 'w'), writes: 'line', level: 'info' });
    const { config } = validateConfig({
      state, timezone: 'UTC', inputs: [], policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }], scanner: { type: 'dry-run' }, http: { enabled: false },
    });
    const daemon = new Daemon({ config, log, scanner: new CloseFails() });
    await daemon.start();
    const err = await daemon.stop().then(() => undefined, (e: Error) => e);
    closeLog(log);
    // the steps after the scanner's ran: the lock is free for the next daemon
    const lock = lockStateFile(state);
    lock.release();
    expect(err?.message).toMatch(/^stopping: scanner \(scripted: close failed\)$/);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; step?: string });
    expect(lines.find((l) => l.step === 'scanner')?.msg).toBe('stopping: scanner failed; the other steps go on');
    expect(lines.at(-1)?.msg).toMatch(/^onsight stopped; these steps failed: scanner/);
  });
});

describe('reloadTls', () => {
  const a = selfSignedCert();
  const b = selfSignedCert();
  const skip = 'skip' in a ? a.skip : 'skip' in b ? b.skip : undefined;
  if (skip) console.log(`SKIP reloadTls test: ${skip}`);

  it.skipIf(skip !== undefined)('reloads every input it can; one that fails is logged by name and keeps its certificate', async () => {
    if ('skip' in a || 'skip' in b) return;
    const dir = tmp();
    const files = (name: string, c: { cert: string; key: string }) => {
      writeFileSync(join(dir, `${name}.crt`), c.cert);
      writeFileSync(join(dir, `${name}.key`), c.key);
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    };
    const first = files('first', a);
    const second = files('second', a);
    const logFile = join(dir, 'daemon.log');
    const log = createLogger({ pretty: false, fd: openSync(logFile, 'w'), writes: 'line', level: 'info' });
    const portA = await freePort();
    let portB = await freePort();
    while (portB === portA) portB = await freePort();
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: `tls://127.0.0.1:${portA}`, tls: first }, { type: 'syslog', listen: `tls://127.0.0.1:${portB}`, tls: second }],
      policy: { scope: ['10.0.0.0/8'] }, regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }],
      scanner: { type: 'dry-run' }, http: { enabled: false },
    });
    const daemon = new Daemon({ config, log });
    await daemon.start();
    try {
      const fingerprint = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
      const served = (port: number) => new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          const raw = s.getPeerCertificate().raw;
          s.end();
          resolve(createHash('sha256').update(raw).digest('hex'));
        });
        s.on('error', reject);
      });
      const [inA, inB] = daemon.inputs;
      expect(await served(inB.address!.port)).toBe(fingerprint(a.cert));
      // the first input's certificate is half-written; the second has a new one
      writeFileSync(first.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n');
      writeFileSync(second.cert, b.cert);
      writeFileSync(second.key, b.key);
      expect(await daemon.reloadTls()).toBe(1);
      expect(await served(inB.address!.port)).toBe(fingerprint(b.cert));
      expect(await served(inA.address!.port)).toBe(fingerprint(a.cert));
      await daemon.stop();
      closeLog(log);
      const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; input?: string; level: number });
      const failed = lines.filter((l) => l.msg.includes('reload of its certificate or tokens failed'));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ input: inA.name, level: 50 });
      expect(failed[0].msg).toContain(inA.name);
    } finally {
      await daemon.stop();
    }
  });
});
