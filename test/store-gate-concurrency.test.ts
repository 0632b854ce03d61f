/**
 * The daemon's async SQLite transaction against another process's write on the same WAL file (the
 * CLI's `skip` or `rescan`): the daemon takes the write lock when it begins (BEGIN IMMEDIATE), so the
 * other writer waits for it (or, with no wait, is told the file is busy), and the daemon's
 * transaction commits. A deferred BEGIN that read first failed at its first write, at once and
 * whatever busy_timeout said (SQLITE_BUSY_SNAPSHOT), when the other process committed in between.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/db.js';
import { SqliteGate } from '../src/store/gate.js';

describe('SQLite: a transaction with awaits inside, and another process writing', () => {
  it('commits, while the other writer is held off for its duration', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-gate-'));
    try {
      const file = join(dir, 'state.db');
      const db = openDatabase(file);
      db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)');
      db.prepare("INSERT INTO t VALUES ('a', 1)").run();
      const gate = new SqliteGate(db);
      const other = new Database(file);
      other.pragma('busy_timeout = 0');
      let otherWrote: boolean | undefined;
      await gate.transaction(async () => {
        const v = (db.prepare("SELECT v FROM t WHERE k = 'a'").get() as { v: number }).v; // a read first
        await new Promise((r) => setTimeout(r, 10)); // the other process's turn
        try {
          other.prepare("INSERT INTO t VALUES ('cli', 9)").run();
          otherWrote = true;
        } catch (err) {
          expect((err as { code?: string }).code).toMatch(/^SQLITE_BUSY/);
          otherWrote = false;
        }
        db.prepare("UPDATE t SET v = ? WHERE k = 'a'").run(v + 1); // then the write
      });
      expect(otherWrote).toBe(false);
      expect((db.prepare("SELECT v FROM t WHERE k = 'a'").get() as { v: number }).v).toBe(2);
      // once the daemon's transaction has ended, the other writer gets in
      other.prepare("INSERT INTO t VALUES ('cli', 9)").run();
      expect((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(2);
      other.close();
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
