/**
 * Node's built-in SQLite (`node:sqlite`, Node 24+) behind the part of better-sqlite3's API that
 * onsight uses: prepare (run/get/all/iterate, pluck, raw), exec, pragma, transaction (nested ones
 * become savepoints, as in better-sqlite3) and close. Errors carry better-sqlite3's `code` names
 * (SQLITE_BUSY, SQLITE_FULL …), which the store-health and lock code read.
 * Same SQLite file format; only one copy of better-sqlite3 is installed (for Node 20 and 22).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

// node:sqlite's types are not in @types/node 20; the part used here:
interface NativeStatement {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
  setReturnArrays(on: boolean): void;
  setAllowUnknownNamedParameters(on: boolean): void;
}
interface NativeDatabase {
  /** true while a transaction is open, however it was begun (Node 22.16+ and 24+) */
  readonly isTransaction: boolean;
  prepare(sql: string): NativeStatement;
  exec(sql: string): void;
  close(): void;
}
type NativeCtor = new (path: string, opts?: { readOnly?: boolean; open?: boolean }) => NativeDatabase;

/** SQLite primary result codes (sqlite.org/rescode.html) by number, named as better-sqlite3 names them. */
const PRIMARY_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR', 2: 'SQLITE_INTERNAL', 3: 'SQLITE_PERM', 4: 'SQLITE_ABORT', 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM', 8: 'SQLITE_READONLY', 9: 'SQLITE_INTERRUPT', 10: 'SQLITE_IOERR', 11: 'SQLITE_CORRUPT',
  12: 'SQLITE_NOTFOUND', 13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN', 15: 'SQLITE_PROTOCOL', 17: 'SQLITE_SCHEMA',
  18: 'SQLITE_TOOBIG', 19: 'SQLITE_CONSTRAINT', 20: 'SQLITE_MISMATCH', 21: 'SQLITE_MISUSE', 23: 'SQLITE_AUTH',
  25: 'SQLITE_RANGE', 26: 'SQLITE_NOTADB',
};

/** better-sqlite3's SqliteError shape: message and a string code. */
export class SqliteError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'SqliteError';
  }
}

/** the extended codes onsight tells apart (better-sqlite3 gives every extended code's name) */
const EXTENDED_CODES: Record<number, string> = { 1288: 'SQLITE_READONLY_CANTINIT', 1544: 'SQLITE_READONLY_DIRECTORY' };

function mapError(err: unknown): unknown {
  const e = err as { errcode?: number; message?: string };
  if (typeof e?.errcode !== 'number') return err;
  const mapped = new SqliteError(e.message ?? 'SQLite error', EXTENDED_CODES[e.errcode] ?? PRIMARY_CODES[e.errcode & 0xff] ?? `SQLITE_${e.errcode}`);
  (mapped as { cause?: unknown }).cause = err;
  return mapped;
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw mapError(err);
  }
}

class Statement {
  private pluckMode = false;
  constructor(private readonly native: NativeStatement, readonly source: string) {
    // better-sqlite3 ignores object keys the SQL does not name; callers pass one object to several statements
    native.setAllowUnknownNamedParameters(true);
  }

  pluck(on = true): this {
    this.pluckMode = on;
    this.native.setReturnArrays(on);
    return this;
  }

  raw(on = true): this {
    // (rows as arrays, whole: never plucked)
    if (on) this.pluckMode = false;
    this.native.setReturnArrays(on);
    return this;
  }

  run(...params: unknown[]) {
    return guard(() => this.native.run(...params));
  }

  get(...params: unknown[]): unknown {
    const row = guard(() => this.native.get(...params));
    return this.pluckMode && row !== undefined ? (row as unknown[])[0] : row;
  }

  all(...params: unknown[]): unknown[] {
    const rows = guard(() => this.native.all(...params));
    return this.pluckMode ? rows.map((r) => (r as unknown[])[0]) : rows;
  }

  *iterate(...params: unknown[]): IterableIterator<unknown> {
    const it = guard(() => this.native.iterate(...params));
    for (;;) {
      const n = guard(() => it.next());
      if (n.done) return;
      yield this.pluckMode ? (n.value as unknown[])[0] : n.value;
    }
  }
}

export class NodeSqliteDatabase {
  private readonly native: NativeDatabase;
  private savepoints = 0;
  readonly name: string;
  readonly readonly: boolean;
  open = true;

  constructor(file: string, opts: { readonly?: boolean; fileMustExist?: boolean } = {}) {
    if (opts.fileMustExist && file !== ':memory:' && !existsSync(file)) {
      throw new SqliteError(`unable to open database file: ${file} does not exist`, 'SQLITE_CANTOPEN');
    }
    const { DatabaseSync } = createRequire(import.meta.url)('node:sqlite') as { DatabaseSync: NativeCtor };
    this.native = guard(() => new DatabaseSync(file, { readOnly: !!opts.readonly }));
    this.name = file;
    this.readonly = !!opts.readonly;
  }

  /** asks SQLite, like better-sqlite3: a transaction begun with exec('BEGIN') counts too */
  get inTransaction(): boolean {
    return this.native.isTransaction;
  }

  prepare(sql: string): Statement {
    return new Statement(guard(() => this.native.prepare(sql)), sql);
  }

  exec(sql: string): this {
    guard(() => this.native.exec(sql));
    return this;
  }

  /** better-sqlite3's pragma(): rows, or with { simple: true } the first column of the first row */
  pragma(source: string, opts: { simple?: boolean } = {}): unknown {
    const stmt = this.prepare(`PRAGMA ${source}`);
    if (opts.simple) return stmt.pluck().get();
    return stmt.all();
  }

  /** better-sqlite3's transaction(): a function that runs fn in BEGIN…COMMIT, or a savepoint when nested */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const nested = this.inTransaction;
      const sp = nested ? `onsight_sp_${++this.savepoints}` : '';
      this.exec(nested ? `SAVEPOINT ${sp}` : 'BEGIN');
      try {
        const result = fn(...args);
        this.exec(nested ? `RELEASE ${sp}` : 'COMMIT');
        return result;
      } catch (err) {
        try {
          this.exec(nested ? `ROLLBACK TO ${sp}; RELEASE ${sp}` : 'ROLLBACK');
        } catch {
          /* SQLite already rolled back (e.g. SQLITE_FULL): the original error is the one to report */
        }
        throw err;
      }
    };
  }

  close(): this {
    if (this.open) guard(() => this.native.close());
    this.open = false;
    return this;
  }
}
