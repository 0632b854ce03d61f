/**
 * A real PostgreSQL with the cluster tables and a Qualys emulator, for one describe block (the
 * cluster tests that run the scheduler against the emulator): started before its tests, stopped
 * after them, with whatever the tests put in `closers` closed first, the last added first.
 */
import { afterAll, beforeAll } from 'vitest';
import pg from 'pg';
import { startPostgres, type PgServer } from './postgres.js';
import { startQualysEmulator, type EmulatorOptions, type QualysEmulator } from '../../src/emulator/qualys/index.js';
import { migrateCluster } from '../../src/cluster/schema.js';

export interface ClusterLab {
  readonly server: PgServer;
  /** a connection to the lab's database, for the tests' own reads and writes */
  readonly db: pg.Client;
  readonly emu: QualysEmulator;
  readonly closers: (() => Promise<unknown>)[];
}

export function clusterLab(emulator: EmulatorOptions): ClusterLab {
  const lab = { closers: [] as (() => Promise<unknown>)[] } as { server: PgServer; db: pg.Client; emu: QualysEmulator; closers: (() => Promise<unknown>)[] };
  beforeAll(async () => {
    lab.server = startPostgres();
    lab.db = new pg.Client(lab.server.connection);
    await lab.db.connect();
    await migrateCluster(lab.db);
    lab.emu = await startQualysEmulator(emulator);
  });
  afterAll(async () => {
    for (const c of lab.closers.reverse()) await c().catch(() => undefined);
    await lab.emu?.close();
    await lab.db?.end().catch(() => undefined);
    lab.server?.destroy();
  });
  return lab;
}
