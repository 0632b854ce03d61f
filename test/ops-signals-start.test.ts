/**
 * `onsight run` (the real CLI, child processes) around its start and its reloads:
 * - a SIGHUP that arrives while the daemon is still starting (systemd's Type=exec takes
 *   `systemctl reload` at once) must not kill it (Node's default action for SIGHUP); the reload is
 *   applied once started;
 * - a log level raised by SIGHUP reaches the loggers made at start (here the webhook's, stage notify);
 * - a status listener whose port is taken fails the start before anything acts: exit 1 with the
 *   http.listen error, and no scan launched (even a device due at start);
 * - a SIGTERM while the start is held up (a state store that does not answer) ends the process
 *   10 s later, said, exit 1 (it waited for the start; systemd would have killed it unsaid);
 * - a second SIGTERM while the daemon is stopping (its last pass held in a scanner call) is said and
 *   changes nothing: the stop finishes, exit 0 (it met Node's default action and killed the process);
 *   a third ends the process at once, said, exit 1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonProcess, freePort, startDaemon } from './helpers/daemon.js';
import { CLI } from './helpers/paths.js';
import { udpSend } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';
import { dhcpAck } from './helpers/syslog-lines.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'onsight-sigstart-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const isLaunch = (e: { launch?: unknown }) => e.launch !== undefined;

function spawnRun(dir: string, cfg: string): DaemonProcess {
  const child = spawn(process.execPath, [CLI, 'run', '--config', cfg], { cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new DaemonProcess(child, dir);
}

describe('SIGHUP while starting', () => {
  it('does not kill the daemon; the reload is applied once it has started', async () => {
    const dir = tmp();
    // the HTTP input's token is read during start(); from a FIFO, start() waits there until the test writes it
    const fifo = join(dir, 'token.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const cfg = join(dir, 'onsight.yaml');
    const text = `state: ${join(dir, 'state.db')}
inputs:
  - { type: http, listen: "127.0.0.1:0", tokens: [{ name: collector, file: ${fifo} }] }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run }
http: { enabled: false }
`;
    writeFileSync(cfg, text);
    const d = spawnRun(dir, cfg);
    try {
      // opening the FIFO for writing returns once the daemon opened it to read: it is inside start()
      const fh = await Promise.race([
        open(fifo, 'w'),
        d.exit.then((code) => { throw new Error(`daemon exited (${code}) before reading the token: ${d.stderr}`); }),
      ]);
      expect(d.logs.some((e) => e.msg.startsWith('onsight running'))).toBe(false);
      writeFileSync(cfg, text.replace('policy: { scope: ["10.0.0.0/8"] }', 'policy: { scope: ["10.0.0.0/8"], rescanAfter: 7d }'));
      d.child.kill('SIGHUP');
      await sleep(500);
      // Node's default action for SIGHUP would have ended the process by now
      expect(d.child.signalCode).toBeNull();
      expect(d.child.exitCode).toBeNull();
      await fh.writeFile('token-8c1f\n');
      await fh.close();
      const running = await d.waitFor((e) => e.msg.startsWith('onsight running'), 20_000);
      const reloaded = await d.waitFor((e) => e.msg.includes('reloaded: policy, regions, scheduler and inventory settings applied'), 10_000);
      expect(d.logs.indexOf(reloaded)).toBeGreaterThan(d.logs.indexOf(running));
      // the token, re-read at a reload, is not read from a FIFO (it blocked the whole daemon): said, and the old one kept
      const kept = await d.waitFor((e) => e.msg.includes('reload of its certificate or tokens failed'), 10_000);
      expect(JSON.stringify(kept)).toContain('is not a regular file: not read again at a reload');
    } finally {
      expect(await d.stop(), d.stderr).toBe(0);
    }
  }, 60_000);
});

describe('SIGTERM while starting', () => {
  it('a start held up (a PostgreSQL state whose server accepts and never answers) holds a stop 10 s at most: said, exit 1 (it waited out the 120 s connect timeout)', async () => {
    const dir = tmp();
    // accepts the connection and never answers: the store's connect waits its connectTimeoutS
    const silent = createTcpServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const cfg = join(dir, 'onsight.yaml');
    writeFileSync(cfg, `state: { postgres: "postgres://onsight@127.0.0.1:${port}/onsight", connectTimeoutS: 120 }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run }
http: { enabled: false }
`);
    const connected = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
    const d = spawnRun(dir, cfg);
    try {
      await Promise.race([connected, d.exit.then((code) => { throw new Error(`daemon exited (${code}) before connecting: ${d.stderr}`); })]);
      const t0 = Date.now();
      d.child.kill('SIGTERM');
      const code = await Promise.race([d.exit, sleep(20_000).then(() => 'still running 20 s after SIGTERM')]);
      const s = (Date.now() - t0) / 1000;
      console.log(`SIGTERM while starting: the process ended ${s.toFixed(1)} s after the signal, exit ${code}`);
      expect(code).toBe(1);
      expect(s).toBeGreaterThanOrEqual(9);
      expect(d.logs.some((e) => e.msg === 'SIGTERM while starting: stopping once the start has finished (10 s at most)')).toBe(true);
      expect(d.logs.some((e) => e.msg.startsWith('SIGTERM while starting, and the start has not finished 10 s later'))).toBe(true);
    } finally {
      d.child.kill('SIGKILL');
      silent.close();
    }
  }, 40_000);
});

describe('SIGHUP while the CLI loads', () => {
  it('a SIGHUP while the launcher loads the CLI does not kill the daemon (exit 129 within the first 600 ms)', async () => {
    const dir = tmp();
    const cfg = join(dir, 'onsight.yaml');
    writeFileSync(cfg, `state: ${join(dir, 'state.db')}\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]\nscanner: { type: dry-run }\nhttp: { enabled: false }\n`);
    // a module hook that marks the moment the launcher imports the CLI, then holds that import a while:
    // the window a busy machine gives (most of a second), made wide and known
    const mark = join(dir, 'importing');
    writeFileSync(join(dir, 'hooks.mjs'), `import { writeFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  if (spec.endsWith('/dist/src/cli/main.js')) { writeFileSync(${JSON.stringify(mark)}, ''); await new Promise((r) => setTimeout(r, 1500)); }
  return next(spec, ctx);
}
`);
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
    const child = spawn(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, CLI, 'run', '--config', cfg],
      { cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new DaemonProcess(child, dir);
    try {
      for (let i = 0; i < 2000 && !existsSync(mark) && child.exitCode === null; i++) await sleep(5);
      expect(existsSync(mark), d.stderr).toBe(true);
      child.kill('SIGHUP');
      await d.waitFor((e) => e.msg.startsWith('onsight running'), 20_000);
      await d.waitFor((e) => e.msg === 'SIGHUP received while starting: applying it now', 10_000);
      expect(child.exitCode).toBeNull();
    } finally {
      expect(await d.stop(), d.stderr).toBe(0);
    }
  }, 60_000);
});

describe('log level raised by SIGHUP', () => {
  let hook: Server | undefined;
  afterAll(() => new Promise<void>((resolve) => (hook ? hook.close(() => resolve()) : resolve())));

  it("reaches a child logger made at start: the webhook's retry lines (stage notify, debug) appear after the reload", async () => {
    let posts = 0;
    hook = createHttpServer((req, res) => {
      posts++;
      req.resume();
      res.writeHead(503).end(); // retried, and each retry is logged at debug
    });
    await new Promise<void>((resolve) => hook!.listen(0, '127.0.0.1', () => resolve()));
    const hookPort = (hook.address() as { port: number }).port;
    const dir = tmp();
    const secret = join(dir, 'hook.secret');
    writeFileSync(secret, 'hook-secret-1\n');
    const port = await freePort();
    const text = `state: STATE
timezone: UTC
inputs: [{ type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }]
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run, scanDurationS: 0 }
http: { enabled: false }
notify: { webhook: { url: "http://127.0.0.1:${hookPort}/hook", secret: { file: ${secret} }, events: [scan-finished], backoffS: 0.2, maxBackoffS: 0.3, maxAttempts: 100 } }
log: { level: info }
`;
    const d = await startDaemon(text, {}, dir);
    const retryLine = (e: { msg: string }) => /^notify webhook .*retrying in/.test(e.msg);
    try {
      await udpSend(port, dhcpAck('10.20.1.5', '52:54:00:cc:00:05'));
      await d.waitFor(isLaunch, 10_000);
      // the scan ends, its event is posted, refused, retried: at info, the retries are not logged
      await until(() => posts >= 3, 15_000, 'the webhook retried');
      expect(d.logs.filter(retryLine)).toEqual([]);
      const cfg = join(dir, 'onsight.yaml');
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('log: { level: info }', 'log: { level: debug }'));
      d.child.kill('SIGHUP');
      await d.waitFor((e) => e.msg.includes('reloaded: policy, regions'), 10_000);
      const debug = await d.waitFor(retryLine, 10_000);
      expect(debug).toMatchObject({ level: 20, stage: 'notify' });
    } finally {
      expect(await d.stop(), d.stderr).toBe(0);
    }
  }, 60_000);
});

describe('status listener port taken', () => {
  it('exits 1 with the http.listen error before reconcile, sweep or inputs: a device due at start is not launched', async () => {
    const dir = tmp();
    const port = await freePort();
    const base = `state: STATE
timezone: UTC
inputs: [{ type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }]
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run, scanDurationS: 0 }
`;
    // first run: the device is seen on an excluded address, so it is present and never scanned
    const first = await startDaemon(`${base}policy: { scope: ["10.0.0.0/8"], exclude: ["10.20.7.0/24"] }\nhttp: { enabled: false }\n`, {}, dir);
    await udpSend(port, dhcpAck('10.20.7.7', '52:54:00:cc:00:07'));
    await first.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === '10.20.7.7');
    expect(await first.stop()).toBe(0);
    expect(first.logs.some(isLaunch)).toBe(false);

    // second run: no exclusion (the device is due at once), and the status port is held by someone else
    const holder = createTcpServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const taken = (holder.address() as { port: number }).port;
    try {
      const cfg = join(dir, 'onsight.yaml');
      writeFileSync(cfg, `${base}policy: { scope: ["10.0.0.0/8"] }\nhttp: { listen: "127.0.0.1:${taken}" }\n`.replaceAll('STATE', join(dir, 'state.db')));
      const second = spawnRun(dir, cfg);
      const code = await Promise.race([second.exit, sleep(30_000).then(() => 'still running')]);
      if (code === 'still running') await second.stop('SIGKILL');
      expect(code, second.stderr).toBe(1);
      expect(second.stderr).toContain(`http.listen 127.0.0.1:${taken}`);
      expect(second.stderr).toContain('EADDRINUSE');
      // the dry-run scanner logs each launch (DRY RUN: would launch ...): none
      expect(second.logs.filter(isLaunch)).toEqual([]);
      expect(second.logs.some((e) => e.msg.startsWith('onsight running'))).toBe(false);
    } finally {
      holder.close();
    }
  }, 60_000);
});

describe('a second SIGTERM while stopping', () => {
  const apis: Server[] = [];
  afterAll(() => {
    for (const api of apis) {
      api.closeAllConnections();
      api.close();
    }
  });

  /**
   * A daemon stopping with its last pass held in a scanner call: a Qualys API that takes every
   * request and never answers holds the pass up to its bound (10 s), so the daemon is still
   * stopping when the next signal comes.
   */
  async function stopping(): Promise<DaemonProcess> {
    const dir = tmp();
    const seen: unknown[] = [];
    const api: Server = createHttpServer((req) => void seen.push(req));
    apis.push(api);
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', () => resolve()));
    writeFileSync(join(dir, 'qualys.pass'), 'pw-for-signal-test\n');
    const port = await freePort();
    const cfg = join(dir, 'onsight.yaml');
    writeFileSync(cfg, `state: ${join(dir, 'state.db')}
timezone: UTC
inputs: [{ type: syslog, listen: "udp://127.0.0.1:${port}", format: auto }]
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: qualys, url: "http://127.0.0.1:${(api.address() as { port: number }).port}", username: u, passwordFile: ${join(dir, 'qualys.pass')}, optionProfile: p, timeoutS: 120 }
http: { enabled: false }
`);
    const d = spawnRun(dir, cfg);
    await d.waitFor((e) => e.msg.startsWith('onsight running'), 20_000);
    await udpSend(port, dhcpAck('10.20.3.4', '52:54:00:dd:00:04'));
    await d.waitFor((e) => (e as { sighting?: { ip: string } }).sighting?.ip === '10.20.3.4');
    await until(() => seen.length > 0, 15_000, 'a call to the scanner API');
    d.child.kill('SIGTERM');
    await d.waitFor((e) => e.msg.includes('draining and stopping'), 5_000);
    return d;
  }

  it('does not end the process mid-drain (Node\'s default action): said, the stop finishes, exit 0', async () => {
    const d = await stopping();
    await sleep(500);
    d.child.kill('SIGTERM');
    const code = await Promise.race([d.exit, sleep(40_000).then(() => 'still running' as const)]);
    if (code === 'still running') d.child.kill('SIGKILL');
    // before: the second SIGTERM met Node's default action (exit code null, killed by the signal)
    expect(code, d.stderr).toBe(0);
    expect(d.child.signalCode).toBeNull();
    expect(d.logs.some((e) => e.msg.startsWith('SIGTERM again: already draining and stopping'))).toBe(true);
    expect(d.logs.some((e) => e.msg === 'onsight stopped')).toBe(true);
  }, 90_000);

  it('a third one ends the process at once, said, exit 1 (review: a stop that hangs had no way out short of SIGKILL)', async () => {
    const d = await stopping();
    d.child.kill('SIGTERM');
    await d.waitFor((e) => e.msg.startsWith('SIGTERM again'), 5_000);
    const t0 = Date.now();
    d.child.kill('SIGINT');
    const code = await Promise.race([d.exit, sleep(20_000).then(() => 'still running' as const)]);
    if (code === 'still running') d.child.kill('SIGKILL');
    expect(code, d.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5_000); // (the last pass's bound is 10 s)
    expect(d.logs.some((e) => e.msg.startsWith('SIGINT a third time: exiting without a clean stop'))).toBe(true);
    expect(d.logs.some((e) => e.msg === 'onsight stopped')).toBe(false);
  }, 90_000);
});
