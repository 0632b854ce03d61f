/**
 * The store implementations the inventory and scheduler tests run against, with the same
 * assertions: SQLite (a real file) and PostgreSQL (a real server from test/helpers/postgres.ts,
 * one per test file, a fresh database per store; skipped with a printed reason where absent).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import type { InventoryOptions, Store } from '../../src/store/types.js';
import { createDatabase, pgUnavailable, startPostgres, type PgServer } from './postgres.js';

export interface StoreKind {
  name: 'sqlite' | 'postgres';
  /** why this kind cannot run here (the tests print it and skip) */
  skip: string | null;
  /** a new, empty, migrated store; `file` names the SQLite state file to use */
  open(opts: InventoryOptions, file?: string): Promise<Store>;
}

let server: PgServer | undefined;
let dbSeq = 0;
const opened: Store[] = [];

async function freshPgDatabase(): Promise<{ host: string; port: number; user: string; database: string }> {
  server ??= startPostgres();
  return createDatabase(server, `onsight_t${process.pid}_${dbSeq++}`);
}

const pgWhy = pgUnavailable();

export const STORE_KINDS: StoreKind[] = [
  {
    name: 'sqlite',
    skip: null,
    async open(opts, file) {
      const s = openSqliteStore(file ?? join(mkdtempSync(join(tmpdir(), 'onsight-store-')), 'state.db'), opts);
      opened.push(s);
      return s;
    },
  },
  {
    name: 'postgres',
    skip: pgWhy,
    async open(opts) {
      const s = await openPostgresStore({ ...(await freshPgDatabase()), max: 2 }, opts);
      opened.push(s);
      return s;
    },
  },
];

if (pgWhy) console.log(`skip the PostgreSQL store in inventory/scheduler tests: ${pgWhy}`);

afterAll(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  server?.destroy();
  server = undefined;
});
