// The node:sqlite driver (Node 24+) behind better-sqlite3's API: the behaviours the stores rely on.
// On Node 20 there is no node:sqlite: this file skips with a printed reason (CI runs it on Node 26).
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { NodeSqliteDatabase } from '../src/store/node-sqlite.js';

let why: string | undefined;
try {
  createRequire(import.meta.url)('node:sqlite');
} catch {
  why = `node:sqlite is not in Node ${process.versions.node} (it is used from Node 24)`;
}
if (why) console.log(`skip node:sqlite driver tests: ${why}`);

describe.skipIf(!!why)('node:sqlite behind better-sqlite3 API', () => {
  const fresh = () => {
    const db = new NodeSqliteDatabase(':memory:');
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)');
    return db;
  };

  it('named parameters ignore keys the SQL does not use; pluck and raw; pragma simple', () => {
    const db = fresh();
    db.prepare('INSERT INTO t (k, v) VALUES (@k, @v)').run({ k: 'a', v: 1, unused: 'x' });
    db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('b', 2);
    expect(db.prepare('SELECT v FROM t ORDER BY k').pluck().all()).toEqual([1, 2]);
    expect(db.prepare('SELECT v FROM t WHERE k = ?').pluck().get('b')).toBe(2);
    expect(db.prepare('SELECT v FROM t WHERE k = ?').pluck().get('zz')).toBeUndefined();
    expect(db.prepare('SELECT k, v FROM t ORDER BY k').raw().all()).toEqual([['a', 1], ['b', 2]]);
    expect([...db.prepare('SELECT k FROM t ORDER BY k').pluck().iterate()]).toEqual(['a', 'b']);
    db.pragma('user_version = 7');
    expect(db.pragma('user_version', { simple: true })).toBe(7);
  });

  it('errors carry better-sqlite3 codes', () => {
    const db = fresh();
    db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('a', 1);
    let code = '';
    try {
      db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('a', 2);
    } catch (err) {
      code = (err as { code: string }).code;
    }
    expect(code).toBe('SQLITE_CONSTRAINT');
    expect(() => new NodeSqliteDatabase('/nonexistent/dir/x.db', { fileMustExist: true })).toThrow(/does not exist/);
  });

  it('transaction() commits, rolls back on throw, and nests as a savepoint, also inside a BEGIN made by exec', () => {
    const db = fresh();
    const put = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    db.transaction(() => put.run('a', 1))();
    expect(() => db.transaction(() => { put.run('b', 2); throw new Error('boom'); })()).toThrow('boom');
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a']);
    // the async store gate opens transactions with exec('BEGIN'); inner transaction() calls are savepoints
    db.exec('BEGIN');
    expect(db.inTransaction).toBe(true);
    db.transaction(() => put.run('c', 3))();
    expect(() => db.transaction(() => { put.run('d', 4); throw new Error('inner'); })()).toThrow('inner');
    db.exec('COMMIT');
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a', 'c']);
  });
});
