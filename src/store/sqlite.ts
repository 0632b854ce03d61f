/**
 * The SQLite driver for the running Node.js. better-sqlite3 12 builds on Node 20 and 22 but aborts
 * on Node 24 whenever a statement is garbage-collected (its ObjectWrap destructor asserts in
 * RemoveEnvironmentCleanupHook); better-sqlite3 13 (node-addon-api) fixes that but crashes on
 * Node 20. Both are installed (13 under the alias better-sqlite3-node24); this picks the one that
 * works here. Same API, same file format.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
const major = Number(process.versions.node.split('.')[0]);

export const driverName = major >= 24 ? 'better-sqlite3-node24' : 'better-sqlite3';

const Database = require(driverName) as typeof BetterSqlite3;

export default Database;
export type Database = BetterSqlite3.Database;
