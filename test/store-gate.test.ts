// The SQLite store's async transactions (src/store/gate.ts): while one is open across awaits, no
// other caller's statement joins it; a throw rolls all of it back; nested calls are savepoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite-store.js';

const opts = { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 };
const d = (ip: string, reason: string) => ({ at: 1, ip, decision: 'due' as const, reason });
const tick = () => new Promise((r) => setImmediate(r));

let dir: string | undefined;
let store: SqliteStore | undefined;
afterEach(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function open(): SqliteStore {
  dir = mkdtempSync(join(tmpdir(), 'onsight-gate-'));
  return (store = openSqliteStore(join(dir, 'state.db'), opts));
}

describe('SQLite store transactions across awaits', () => {
  it("another caller's write waits for the open transaction, and survives its rollback", async () => {
    const s = open().scheduler;
    let outsideDone = false;
    let opened!: () => void;
    const isOpen = new Promise<void>((r) => (opened = r));
    let doneWhileOpen: boolean | undefined;
    const tx = s.atomically(async () => {
      await s.decide(d('10.0.0.1', 'inside'));
      opened();
      await tick();
      await tick();
      doneWhileOpen = outsideDone;
      await s.decide(d('10.0.0.3', 'inside'));
      throw new Error('abort the pass');
    });
    // another caller (outside the transaction's async context) writes while it is open
    await isOpen;
    const outside = s.decide(d('10.0.0.2', 'outside')).then(() => { outsideDone = true; });
    await expect(tx).rejects.toThrow('abort the pass');
    await outside;
    expect(doneWhileOpen).toBe(false); // it waited for the transaction instead of joining it
    expect((await s.recentDecisions(10)).map((x) => x.reason)).toEqual(['outside']);
  });

  it('commits everything the transaction awaited; a caught nested failure undoes only its own part', async () => {
    const s = open().scheduler;
    await s.atomically(async () => {
      await s.decide(d('10.0.0.1', 'a'));
      await expect(s.atomically(async () => {
        await s.decide(d('10.0.0.2', 'b'));
        throw new Error('inner');
      })).rejects.toThrow('inner');
      await s.decide(d('10.0.0.3', 'c'));
    });
    expect((await s.recentDecisions(10)).map((x) => x.reason).sort()).toEqual(['a', 'c']);
  });

  it('two passes that both open transactions run one after the other, never interleaved', async () => {
    const s = open().scheduler;
    const order: string[] = [];
    const pass = (name: string) => s.atomically(async () => {
      order.push(`${name} begin`);
      await s.decide(d('10.0.0.1', name));
      await tick();
      order.push(`${name} end`);
    });
    await Promise.all([pass('one'), pass('two')]);
    expect(order).toEqual(['one begin', 'one end', 'two begin', 'two end']);
  });
});
