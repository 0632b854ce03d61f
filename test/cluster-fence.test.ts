// Fencing against a real PostgreSQL: a deposed leader's fenced write is refused by the database, a
// takeover waits for an in-flight fenced transaction (and then sees its write), a fenced transaction
// that stalls past the lease cannot block the takeover, and the transport guard refuses past the deadline.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { migrateCluster } from '../src/cluster/schema.js';
import { Lease } from '../src/cluster/lease.js';
import { fenced, type FenceHolder } from '../src/cluster/fence.js';
import { FencedError } from '../src/errors.js';
import { MetricsRegistry } from '../src/http/prom.js';
import { writeClusterMetrics } from '../src/cluster/metrics.js';

const why = pgUnavailable();
if (why) console.log(`skip cluster fence: ${why}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const once = <T>(l: Lease, ev: string) => new Promise<T>((r) => l.once(ev, r));

describe.skipIf(!!why)('cluster fencing (real PostgreSQL)', () => {
  let server: PgServer;
  let db: pg.Client;
  let pool: pg.Pool;
  const leases: Lease[] = [];
  const lease = (node: string, ttlMs = 3000) => {
    const l = new Lease({ connection: server.connection, node, ttlMs, pollMs: 100 });
    leases.push(l);
    return l;
  };
  const count = async (epoch?: number) =>
    Number((await db.query(`SELECT count(*) AS n FROM intents${epoch === undefined ? '' : ' WHERE epoch = $1'}`, epoch === undefined ? [] : [epoch])).rows[0].n);

  beforeAll(async () => {
    server = startPostgres();
    db = new pg.Client(server.connection);
    await db.connect();
    await migrateCluster(db);
    await db.query('CREATE TABLE intents (id serial PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    pool = new pg.Pool({ ...server.connection, max: 4 });
  });
  // a test that fails mid-way must not leave a lease held (and renewed) for the next test to wait on
  afterEach(async () => {
    for (const l of leases.splice(0)) await l.stop().catch(() => undefined);
  });
  afterAll(async () => {
    await pool?.end().catch(() => undefined);
    await db?.end().catch(() => undefined);
    server?.destroy();
  });

  it('the leader writes under its epoch; a deposed leader that still believes it leads is refused by the database', async () => {
    const a = lease('fa');
    await a.start();
    expect(a.isLeader()).toBe(true);
    const epochA = a.currentEpoch()!;
    await fenced(pool, a, (c, ctx) => c.query('INSERT INTO intents (node, epoch) VALUES ($1, $2)', ['fa', ctx.epoch]));
    expect(await count(epochA)).toBe(1);

    const aStepsDown = once(a, 'follower'); // listened for before it can happen
    // depose a: expire its row behind its back (as a takeover after a pause would), then b takes over
    await db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second' WHERE name = 'scheduler'");
    const b = lease('fb');
    await b.start();
    expect(b.currentEpoch()).toBe(epochA + 1);
    // a stale view of a: its local check passes (as in the window after a pause), only the database can refuse
    const stale: FenceHolder = { node: 'fa', leaseName: 'scheduler', currentEpoch: () => epochA, assertLeader: () => undefined, remainingMs: () => 3000 };
    const err = await fenced(pool, stale, (c) => c.query('INSERT INTO intents (node, epoch) VALUES ($1, $2)', ['fa', epochA])).catch((e) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(err.code).toBe('ONSIGHT_FENCED');
    expect(await count(epochA)).toBe(1);
    // a's own loop finds out at its next renewal and steps down; its guard then refuses locally
    await aStepsDown;
    expect(() => a.assertLeader('launch')).toThrow(FencedError);
    await expect(fenced(pool, a, async () => 'never')).rejects.toBeInstanceOf(FencedError);
    // work decided under an older epoch is refused even by the current leader
    expect(() => b.assertLeader('launch', epochA)).toThrow(/epoch/);
    await a.stop();
    await b.stop();
  });

  it('a takeover waits for an in-flight fenced transaction and sees its write', async () => {
    await db.query('TRUNCATE intents');
    const a = lease('ta', 5000);
    await a.start();
    expect(a.isLeader()).toBe(true);
    const epochA = a.currentEpoch()!;
    const b = lease('tb', 5000);
    await b.start();
    expect(b.isLeader()).toBe(false);
    let committedAt = 0;
    let leaderAt = 0;
    // listen before the transaction starts: b may become leader before `await inFlight` resumes,
    // and a listener added after that would wait for a second 'leader' that never comes
    const sawWrite = once(b, 'leader').then(async () => {
      leaderAt = Date.now();
      return (await db.query('SELECT count(*)::int AS n FROM intents WHERE epoch = $1', [epochA])).rows[0].n as number;
    });
    const inFlight = fenced(pool, a, async (c, ctx) => {
      await c.query('INSERT INTO intents (node, epoch) VALUES ($1, $2)', ['ta', ctx.epoch]);
      // a's lease connection dies now: b's fast path fires, but its UPDATE must wait for this transaction
      const pid = (await db.query('SELECT holder_pid FROM cluster_lease')).rows[0].holder_pid;
      await db.query('SELECT pg_terminate_backend($1)', [pid]);
      await sleep(800);
      committedAt = Date.now();
    });
    await inFlight;
    const seen = await sawWrite;
    console.log(`cluster fence: takeover blocked ${leaderAt - committedAt >= 0 ? 'until' : 'BEFORE'} the in-flight fenced commit (leader ${leaderAt - committedAt} ms after it)`);
    expect(leaderAt).toBeGreaterThanOrEqual(committedAt);
    expect(seen).toBe(1);
    expect(b.currentEpoch()).toBe(epochA + 1);
    await a.stop();
    await b.stop();
  });

  it('a fenced transaction longer than the renewal timeout does not hold up the leader\'s renewals', async () => {
    await db.query('TRUNCATE intents');
    await db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second'");
    const a = lease('ra', 3000); // renews every 1 s with a 1 s statement timeout
    await a.start();
    const epochA = a.currentEpoch()!;
    let steppedDown = false;
    a.once('follower', () => { steppedDown = true; });
    const before = (await db.query('SELECT expires_at FROM cluster_lease')).rows[0].expires_at as Date;
    await fenced(pool, a, async (c, ctx) => {
      await c.query('INSERT INTO intents (node, epoch) VALUES ($1, $2)', ['ra', ctx.epoch]);
      await sleep(1800); // the row stays locked FOR KEY SHARE across at least one renewal
    });
    const after = (await db.query('SELECT expires_at FROM cluster_lease')).rows[0].expires_at as Date;
    expect(steppedDown).toBe(false);
    expect(a.currentEpoch()).toBe(epochA);
    expect(after.getTime()).toBeGreaterThan(before.getTime()); // renewed while the fenced transaction was open
    expect(await count(epochA)).toBe(1);
    await a.stop();
  });

  it('a fenced transaction stalled past the lease (a paused leader) is ended by the server: the takeover is not blocked, the write is not committed', async () => {
    await db.query('TRUNCATE intents');
    // a paused holder: its row unexpired, its session alive (this test's own connection), its renewals stopped
    const holderPid = (await db.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    const epochA = Number((await db.query(
      `UPDATE cluster_lease SET holder = 'sa', epoch = epoch + 1, holder_pid = $1,
              holder_backend_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = $1), expires_at = now() + interval '3 seconds'
        RETURNING epoch`, [holderPid])).rows[0].epoch);
    const paused: FenceHolder = { node: 'sa', leaseName: 'scheduler', currentEpoch: () => epochA, assertLeader: () => undefined, remainingMs: () => 3000 };
    const t0 = Date.now();
    const stalled = fenced(pool, paused, async (c, ctx) => {
      await c.query('INSERT INTO intents (node, epoch) VALUES ($1, $2)', ['sa', ctx.epoch]);
      await sleep(8000); // frozen while holding FOR KEY SHARE on the lease row, well past the lease
    }).then(() => 'committed', (e: Error) => `failed: ${e.message}`);
    const b = lease('sb', 3000);
    const leaderB = once<{ epoch: number }>(b, 'leader');
    await b.start();
    const ev = await leaderB;
    const took = Date.now() - t0;
    console.log(`cluster fence: takeover from a paused holder inside a fenced transaction after ${took} ms (lease 3000 ms; the server ended the transaction)`);
    expect(ev.epoch).toBe(epochA + 1);
    expect(took).toBeLessThanOrEqual(3000 + 2000);
    expect(await stalled).toMatch(/^failed/);
    expect(await count()).toBe(0);
    await b.stop();
  }, 20_000);

  it('the transport guard refuses once the local deadline has passed, and the term signal aborts waiting calls', async () => {
    let now = 0;
    const l = new Lease({ connection: server.connection, node: 'ga', ttlMs: 3000, pollMs: 100, monotonic: () => now });
    leases.push(l);
    await db.query("UPDATE cluster_lease SET expires_at = now() - interval '1 second'");
    await l.start();
    expect(l.isLeader()).toBe(true);
    const signal = l.signal;
    const aborted = new Promise<unknown>((r) => signal.addEventListener('abort', () => r(signal.reason), { once: true }));
    expect(() => l.assertLeader('launch')).not.toThrow();
    now = 3000 - 750; // ttl − margin after the acquire: no renewal moved the deadline (the clock is ours)
    expect(l.isLeader()).toBe(false);
    expect(() => l.assertLeader('launch')).toThrow(/deadline/);
    expect(await aborted).toBeInstanceOf(FencedError);
    expect(l.metrics()).toMatchObject({ leader: 0, stepDowns: 1 });
    const w = new MetricsRegistry({ processMetrics: false });
    writeClusterMetrics(w, { node: 'ga', lease: l.metrics(), inboxBacklog: 0 });
    const text = await w.render();
    expect(text).toContain('onsight_cluster_leader{node="ga"} 0');
    expect(text).toMatch(/^onsight_cluster_epoch \d+$/m);
    expect(text).toContain('onsight_cluster_step_downs_total 1');
    expect(text).toContain('onsight_inbox_backlog 0');
    await l.stop();
  });
});
