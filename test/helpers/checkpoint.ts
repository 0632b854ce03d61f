/** File checkpoints as the tailer writes them, for source tests that resume a "previous run". */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { FileCheckpoint } from '../../src/sources/types.js';

/** `len` bytes of `path` from `pos` (fewer at its end) */
export function bytesAt(path: string, pos: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(len);
    const n = readSync(fd, b, 0, len, pos);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** the checkpoint a previous run committed after the line ending at `offset` (as the tailer writes it) */
export function checkpointAt(path: string, offset: number): FileCheckpoint {
  const st = statSync(path);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  return {
    path, dev: st.dev, ino: st.ino, offset,
    fingerprint: sha(bytesAt(path, 0, Math.min(1024, offset))),
    tailFingerprint: sha(bytesAt(path, offset - Math.min(256, offset), Math.min(256, offset))),
  };
}
