/**
 * A command writing beside the daemon (`onsight skip`, `rescan`) on a SQLite state: it migrates
 * nothing. A state of an older schema (the daemon not restarted since an upgrade) is an error that
 * says what to do, and the file keeps its schema; the current one opens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openDatabase, schemaVersion } from '../src/store/db.js';
import { openStateFor } from '../src/store/open.js';

const inventory = { defaultLeaseS: 3600, maxSessionS: 86400, retention: 86400 * 30 } as never;

describe('a write beside the daemon on SQLite', () => {
  it('never migrates: an older schema is refused with what to do, the current one opens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-open-write-'));
    try {
      const file = join(dir, 'state.db');
      const daemonDb = openDatabase(file);
      const current = schemaVersion(daemonDb);
      daemonDb.close();
      const ok = await openStateFor({ state: file, inventory }, 'write', 'skip');
      await ok.close();
      // the daemon of the older onsight still runs on schema current - 1
      const raw = new Database(file);
      raw.pragma(`user_version = ${current - 1}`);
      raw.close();
      await expect(openStateFor({ state: file, inventory }, 'write', 'skip')).rejects.toThrow(`has schema ${current - 1}, this onsight reads ${current}: start the daemon once (onsight run) to upgrade it`);
      const after = new Database(file, { readonly: true });
      expect(schemaVersion(after)).toBe(current - 1);
      after.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
