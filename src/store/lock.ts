/**
 * One daemon per state file. The lock is an exclusive SQLite transaction on `STATE.lock`, held
 * for the daemon's life: SQLite takes it with POSIX advisory locks, which the kernel drops when
 * the process dies (kill -9 included), so a crash never leaves a stale lock behind, and read-only
 * views (`onsight hosts`) are not blocked because the state file itself is not locked.
 */
import { existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from './sqlite.js';
import { OnsightError } from '../errors.js';

export interface StateLock {
  release(): void;
}

export function lockStateFile(state: string): StateLock {
  if (state === ':memory:') return { release: () => undefined };
  // beside the file the path leads to: a second config naming the state through a symlink (to the
  // file or a folder) must meet the same lock (it took its own beside the link, and both ran)
  const file = `${realPath(state)}.lock`;
  let db;
  try {
    mkdirSync(dirname(file), { recursive: true });
    db = new Database(file);
  } catch (err) {
    throw new OnsightError('ONSIGHT_STORE', `cannot open the lock file ${file}: ${(err as Error).message}`, { cause: err });
  }
  db.pragma('busy_timeout = 0');
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new OnsightError('ONSIGHT_STATE_LOCKED',
        `another onsight daemon is using ${state} (it holds ${file}); stop it first, or give this one its own state file`);
    }
    throw new OnsightError('ONSIGHT_STORE', `cannot lock ${file}: ${(err as Error).message}`, { cause: err });
  }
  return {
    release() {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/**
 * Whether a daemon holds the lock of `state`: true, false, or undefined when the lock file cannot
 * be read. Its exclusive transaction keeps every other connection from reading it (SQLITE_BUSY).
 */
export function daemonHoldsLock(state: string): boolean | undefined {
  const file = `${realPath(state)}.lock`;
  if (!existsSync(file)) return false;
  let db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 0');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (err) {
    return (err as { code?: string }).code === 'SQLITE_BUSY' || /database is locked/.test((err as Error).message) ? true : undefined;
  } finally {
    db?.close();
  }
}

/**
 * `path` with its symlinks resolved, its file's or else its folder's (a state not created yet),
 * following a link to a file not created yet too (the first start through a link)
 */
export function realPath(path: string, hops = 0): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      if (hops < 40 && lstatSync(path).isSymbolicLink()) return realPath(resolve(dirname(path), readlinkSync(path)), hops + 1);
    } catch {
      /* no such path: its folder's below */
    }
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}
