/**
 * A scheduler pass held up and then failing is logged once, not once per kick that joined it
 * (cluster probe, session 41: a partitioned old leader logged "scheduler pass failed" 27 times in
 * one millisecond). The real daemon in process (real SQLite file, real UDP input, its real
 * scheduler), kicking a pass every 100 ms; each pass is made to wait 2 s and then fail as a pass
 * cut off from its store does (no phase catches that), kept one at a time as Scheduler.tick keeps them.
 */
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { closeLog, createLogger } from '../src/log.js';
import { ScriptedScanner } from './helpers/scanner.js';
import { udpSend } from './helpers/net.js';
import { freePort } from './helpers/daemon.js';
import { sleep, until } from './helpers/wait.js';
import { dhcpAck } from './helpers/syslog-lines.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-pass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a failed scheduler pass', () => {
  it('is logged once however many kicks joined it while it was held up', async () => {
    const port = await freePort();
    const logFile = join(dir, 'daemon.log');
    const log = createLogger({ pretty: false, fd: openSync(logFile, 'w'), writes: 'line', level: 'info' });
    const { config } = validateConfig({
      state: join(dir, 'state.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: `udp://127.0.0.1:${port}`, format: 'auto' }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['emea-sa-1'] }], scanner: { type: 'dry-run' }, http: { enabled: false },
    });
    const daemon = new Daemon({ config, log, scanner: new ScriptedScanner(), tickMs: 100 });
    await daemon.start();
    const sched = (daemon as unknown as { scheduler: { tick(): Promise<void> } }).scheduler;
    const realTick = sched.tick.bind(sched);
    let inFlight: Promise<void> | undefined;
    let passes = 0;
    sched.tick = () => (inFlight ??= (async () => {
      passes++;
      await realTick();
      await sleep(2000);
      throw new Error('Connection terminated unexpectedly');
    })().finally(() => (inFlight = undefined)));
    await udpSend(port, dhcpAck('10.20.3.4', '52:54:00:dd:00:04'));
    await until(() => passes >= 3, 15_000, 'three passes');
    await daemon.stop().catch(() => undefined);
    closeLog(log);
    const failed = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string })
      .filter((l) => l.msg === 'scheduler pass failed');
    // each pass that failed is said once: about 20 kicks joined the first one
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(passes);
  }, 30_000);
});
