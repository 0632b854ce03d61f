/**
 * The SQLite driver for the running Node.js: one story, one copy of each driver.
 * - Node 20 and 22: better-sqlite3 12 (Node 20 has no node:sqlite; Node 22's still warns that it
 *   is experimental).
 * - Node 24 and later: Node's built-in node:sqlite behind better-sqlite3's API (node-sqlite.ts).
 *   better-sqlite3 12 aborted on Node 24 when a statement was garbage-collected, and 13 crashes on
 *   Node 20, so the alternative was two copies of better-sqlite3; node:sqlite needs no native build.
 * Same file format either way. `npm run bench` measures both where it can.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { NodeSqliteDatabase } from './node-sqlite.js';

const require = createRequire(import.meta.url);
const major = Number(process.versions.node.split('.')[0]);

export const driverName = major >= 24 ? 'node:sqlite' : 'better-sqlite3';

function betterSqlite3(): typeof BetterSqlite3 {
  // file: URIs, as node:sqlite reads them: a view opens a stopped daemon's state `?immutable=1`
  // (db.ts). better-sqlite3 reads this once, when it loads.
  process.env.SQLITE_USE_URI = '1';
  try {
    return require('better-sqlite3') as typeof BetterSqlite3;
  } catch (err) {
    throw new Error(`the SQLite driver better-sqlite3 did not load on Node ${process.versions.node} (${(err as Error).message}); ` +
      'it builds from source at install: install python3, make and g++, then run npm rebuild better-sqlite3', { cause: err });
  }
}

const Database = (driverName === 'node:sqlite' ? NodeSqliteDatabase : betterSqlite3()) as unknown as typeof BetterSqlite3;

export default Database;
export type Database = BetterSqlite3.Database;
