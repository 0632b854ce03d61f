/**
 * A FIFO drained by `cat` in another process, opened for writing non-blocking: the daemon's stdout
 * under systemd (a non-blocking stream to journald). Used by the logger's test and its bench.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { join } from 'node:path';

export interface DrainedFifo {
  /** the write end, non-blocking */
  fd: number;
  /** the `cat` reading it (SIGSTOP it to stall the reader) */
  reader: ChildProcess;
  /** resolves when the reader has read to the end (the write end closed) and exited */
  done: Promise<unknown>;
}

/** A FIFO in `dir` whose reader copies what it reads to `out` (default: discards it). */
export async function drainedFifo(dir: string, out = '/dev/null'): Promise<DrainedFifo> {
  const fifo = join(dir, `fifo-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const mk = spawnSync('mkfifo', [fifo]);
  if (mk.status !== 0) throw new Error(`mkfifo failed: ${mk.stderr?.toString()}`);
  const reader = spawn('sh', ['-c', `exec cat "${fifo}" > "${out}"`], { stdio: 'ignore' });
  const done = new Promise((r) => reader.once('exit', r));
  for (let tries = 0; ; tries++) {
    try {
      return { fd: openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK), reader, done };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || tries > 500) throw err; // ENXIO: no reader yet
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
