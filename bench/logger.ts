/**
 * The JSON logger's cost per line, as the daemon logs sightings: bursts of lines within one
 * event-loop turn. Two destinations in the same run, taking turns: `line` (pino's synchronous
 * destination, one write per line, sleeping 100 ms when the reader refuses: the daemon's logger
 * before issue 18's change) and `turn` (the daemon's default: one write per turn, never waiting),
 * each to a file and to a non-blocking pipe drained by another process (as under systemd, where
 * stdout is a non-blocking stream to journald). Wall time in the logging calls and the turn-end
 * write is what the daemon's main thread loses to logging.
 *
 * `node dist/bench/logger.js [LINES] [--rounds=N]`
 */
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeLog, createLogger, droppedLogLines } from '../src/log.js';
import { drainedFifo } from '../test/helpers/fifo.js';

type Writes = 'line' | 'turn';
export interface LoggerBenchRow { writes: Writes; to: 'file' | 'pipe'; wallUsPerLine: number; cpuUsPerLine: number }

/** a sighting as the daemon logs it at info */
const SIGHTING = { input: 'tcp:5514', sighting: { kind: 'lease', ip: '10.20.1.7', mac: '52:54:00:aa:bb:cc', hostname: 'laptop-7', format: 'isc-dhcpd', at: '2026-12-02T09:00:00.000Z', durationS: 86400 } };
/** lines logged per event-loop turn (a sighting batch of a busy stream) */
const PER_TURN = 100;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * log `lines` lines to `fd` (closed by the logger at the end), `PER_TURN` a turn; the time
 * includes the turns' ends, where the default destination writes
 */
async function once(writes: Writes, fd: number, lines: number): Promise<{ wall: number; cpu: number }> {
  const log = createLogger({ level: 'info', pretty: false, fd, writes });
  const dropped0 = droppedLogLines();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < lines; i += PER_TURN) {
    for (let j = 0; j < PER_TURN; j++) log.info(SIGHTING, 'sighting');
    await new Promise((r) => setImmediate(r));
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  closeLog(log);
  const dropped = droppedLogLines() - dropped0;
  if (dropped) throw new Error(`${dropped} of ${lines} log lines dropped (writes: ${writes}): the figures would flatter the destination`);
  return { wall: (wall * 1000) / lines, cpu: (c.user + c.system) / lines };
}

export async function runLoggerBench(opts: { lines?: number; rounds?: number; print?: boolean } = {}): Promise<LoggerBenchRow[]> {
  const lines = opts.lines ?? 20_000;
  const rounds = opts.rounds ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'onsight-logbench-'));
  const runs = new Map<string, { wall: number[]; cpu: number[] }>();
  const record = (key: string, r: { wall: number; cpu: number }) => {
    const e = runs.get(key) ?? { wall: [], cpu: [] };
    e.wall.push(r.wall);
    e.cpu.push(r.cpu);
    runs.set(key, e);
  };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const writes of ['line', 'turn'] as const) {
        record(`${writes}|file`, await once(writes, openSync(join(dir, `${writes}.log`), 'w'), lines));
        const pipe = await drainedFifo(dir);
        record(`${writes}|pipe`, await once(writes, pipe.fd, lines));
        await pipe.done;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: LoggerBenchRow[] = [...runs].map(([key, e]) => {
    const [writes, to] = key.split('|') as [Writes, LoggerBenchRow['to']];
    return { writes, to, wallUsPerLine: median(e.wall), cpuUsPerLine: median(e.cpu) };
  });
  if (opts.print) {
    console.log(`logger at info: ${lines.toLocaleString('en-US')} sighting lines, ${PER_TURN} per event-loop turn, medians of ${rounds} rounds; time in the logging calls and at the turns' ends`);
    for (const to of ['file', 'pipe'] as const) {
      const sync = rows.find((r) => r.writes === 'line' && r.to === to)!;
      const async = rows.find((r) => r.writes === 'turn' && r.to === to)!;
      console.log(`  to a ${to}: a write per line (before) ${sync.wallUsPerLine.toFixed(1)} us/line wall, ${sync.cpuUsPerLine.toFixed(1)} CPU; a write per turn (default) ${async.wallUsPerLine.toFixed(1)} us/line wall, ${async.cpuUsPerLine.toFixed(1)} CPU; wall ratio ${(sync.wallUsPerLine / async.wallUsPerLine).toFixed(2)}x`);
    }
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const lines = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 20_000);
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5);
  runLoggerBench({ lines, rounds, print: true }).then(() => process.exit(0), (err: Error) => {
    console.error(err);
    process.exit(1);
  });
}
