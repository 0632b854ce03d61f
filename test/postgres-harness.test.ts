// The PostgreSQL harness itself: a real server starts, takes a query over its Unix socket, restarts, and goes away.
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';

const why = pgUnavailable();
if (why) console.log(`skip postgres harness: ${why}`);

describe.skipIf(!!why)('postgres test harness', () => {
  let server: PgServer | undefined;
  afterAll(() => server?.destroy());

  it('starts a server on a Unix socket, answers, survives a restart', async () => {
    server = startPostgres();
    const c1 = new pg.Client(server.connection);
    await c1.connect();
    const r = await c1.query('select current_setting($1) as v, 40 + 2 as n', ['listen_addresses']);
    expect(r.rows[0]).toEqual({ v: '', n: 42 });
    await c1.end();
    server.stop();
    server.start();
    const c2 = new pg.Client(server.connection);
    await c2.connect();
    expect((await c2.query('select 1 as one')).rows[0].one).toBe(1);
    await c2.end();
  });
});
