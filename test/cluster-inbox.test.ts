// The inbox against a real PostgreSQL: two writers appending concurrently, with exact duplicates
// (senders that log to every node); the reader applies every distinct sighting exactly once, in
// order per writer, behind its cursor; a row whose transaction commits late is not skipped.
// Prints the append and apply rates on this machine (figures, not assertions).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { migrateCluster } from '../src/cluster/schema.js';
import { InboxReader, InboxWriter, inboxKey, type InboxEntry, type InboxRow } from '../src/cluster/inbox.js';
import { Lease } from '../src/cluster/lease.js';
import { FencedError } from '../src/errors.js';
import type { Sighting } from '../src/sighting.js';

const why = pgUnavailable();
if (why) console.log(`skip cluster inbox: ${why}`);

/** a DHCPACK as a sender would log it, and the sighting a node parses from it */
function line(i: number, sender = '10.9.0.1'): InboxEntry {
  const mac = `02:00:${((i >> 24) & 255).toString(16).padStart(2, '0')}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const at = new Date(Date.UTC(2026, 11, 1, 8, 0, 0) + i * 10).toISOString();
  const raw = `<30>Dec  1 08:00:00 dhcp1 dhcpd[42]: DHCPACK on ${ip} to ${mac} via eth0 #${i}`;
  const sighting: Sighting = { kind: 'lease', ip, mac, at, format: 'isc-dhcpd', source: 'tcp:601' };
  return { sighting, origin: sender, raw };
}

describe.skipIf(!!why)('cluster inbox (real PostgreSQL)', () => {
  let server: PgServer;
  let pool: pg.Pool;

  beforeAll(async () => {
    server = startPostgres({ settings: { deadlock_timeout: "'100ms'" } }); // the opposite-order test provokes deadlocks on purpose
    pool = new pg.Pool({ ...server.connection, max: 8 });
    const c = await pool.connect();
    await migrateCluster(c);
    c.release();
    await pool.query('CREATE TABLE applied (seq serial PRIMARY KEY, inbox_id bigint NOT NULL, node text NOT NULL, ip text NOT NULL)');
  });
  afterAll(async () => {
    await pool?.end().catch(() => undefined);
    server?.destroy();
  });

  const applyInto = async (rows: InboxRow[], c: pg.ClientBase) => {
    await c.query(
      'INSERT INTO applied (inbox_id, node, ip) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])',
      [rows.map((r) => r.id), rows.map((r) => r.node), rows.map((r) => r.sighting.ip)],
    );
  };

  it('two writers with duplicates: every distinct line applied exactly once, in order per writer; rates printed', async () => {
    const N = 10_000; // distinct lines per writer
    const SHARED = 3_000; // lines both writers receive (a sender logging to both nodes)
    const BATCH = 200;
    const wa = new InboxWriter(pool, 'node-a');
    const wb = new InboxWriter(pool, 'node-b');
    // a: its own 0..N-1 plus the shared block; b: its own N..2N-1 plus the same shared block, interleaved differently
    const shared = Array.from({ length: SHARED }, (_, i) => line(1_000_000 + i, '10.9.0.99'));
    const aLines = [...Array.from({ length: N }, (_, i) => line(i, '10.9.0.1')), ...shared];
    const bLines = [...shared.slice().reverse(), ...Array.from({ length: N }, (_, i) => line(N + i, '10.9.0.2'))];
    // a batch may even carry the same line twice (a sender's retry)
    aLines.splice(500, 0, aLines[10]);
    const reader = new InboxReader(pool, { batch: 500 });

    let appliedWhileWriting = 0;
    let writing = true;
    const applier = (async () => {
      while (writing) {
        const n = await reader.applyNext(applyInto);
        appliedWhileWriting += n;
        if (n === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const t0 = performance.now();
    const write = async (w: InboxWriter, lines: InboxEntry[]) => {
      let inserted = 0;
      let duplicates = 0;
      for (let i = 0; i < lines.length; i += BATCH) {
        const r = await w.append(lines.slice(i, i + BATCH));
        inserted += r.inserted;
        duplicates += r.duplicates;
      }
      return { inserted, duplicates };
    };
    const [ra, rb] = await Promise.all([write(wa, aLines), write(wb, bLines)]);
    const appendS = (performance.now() - t0) / 1000;
    writing = false;
    await applier;
    const t1 = performance.now();
    let rest = 0;
    for (let n; (n = await reader.applyNext(applyInto)) > 0;) rest += n;
    const drainS = (performance.now() - t1) / 1000;

    const distinct = 2 * N + SHARED;
    expect(ra.inserted + rb.inserted).toBe(distinct);
    expect(ra.duplicates + rb.duplicates).toBe(SHARED + 1);
    expect(await reader.backlog()).toBe(0);
    const rows = (await pool.query('SELECT inbox_id, node, ip FROM applied ORDER BY seq')).rows as { inbox_id: string; node: string; ip: string }[];
    expect(rows.length).toBe(distinct);
    expect(new Set(rows.map((r) => r.ip)).size).toBe(distinct);
    // per writer, application order is append order: ids grow within a node's rows, and a writer's own lines come in the order it read them
    for (const node of ['node-a', 'node-b']) {
      const ids = rows.filter((r) => r.node === node).map((r) => Number(r.inbox_id));
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
    }
    const own = (node: string, from: number) => rows.filter((r) => r.node === node).map((r) => r.ip).filter((ip) => Number(ip.split('.')[1]) === 0 && Number(ip.split('.')[3]) + 256 * Number(ip.split('.')[2]) >= from && Number(ip.split('.')[3]) + 256 * Number(ip.split('.')[2]) < from + N);
    expect(own('node-a', 0)).toEqual(Array.from({ length: N }, (_, i) => line(i).sighting.ip));
    expect(own('node-b', N)).toEqual(Array.from({ length: N }, (_, i) => line(N + i).sighting.ip));
    const total = appliedWhileWriting + rest;
    console.log(`cluster inbox: 2 writers appended ${aLines.length + bLines.length} lines (${distinct} distinct, ${ra.duplicates + rb.duplicates} duplicates dropped) in ${appendS.toFixed(2)} s = ${Math.round((aLines.length + bLines.length) / appendS)} lines/s, batches of ${BATCH}, ${wa.deadlockRetries + wb.deadlockRetries} appends retried after a deadlock; applied ${total} rows (${appliedWhileWriting} while writing); drain of the last ${rest} at ${rest ? Math.round(rest / drainS) : '-'} rows/s (batches of 500, one cursor update per batch)`);

    // a measured apply-only figure: a fresh backlog of 20k rows
    const more = Array.from({ length: 20_000 }, (_, i) => line(2_000_000 + i, '10.9.0.3'));
    for (let i = 0; i < more.length; i += 1000) await wa.append(more.slice(i, i + 1000));
    const t2 = performance.now();
    let m = 0;
    for (let n; (n = await reader.applyNext(applyInto)) > 0;) m += n;
    const s2 = (performance.now() - t2) / 1000;
    expect(m).toBe(20_000);
    console.log(`cluster inbox: applied a backlog of ${m} rows in ${s2.toFixed(2)} s = ${Math.round(m / s2)} rows/s (reader + cursor + one INSERT per batch into a table; the inventory apply itself is the store's)`);
  }, 120_000);

  it('two nodes appending the same lines in opposite orders at once: each line lands once, without a deadlock', async () => {
    const wa = new InboxWriter(pool, 'node-a');
    const wb = new InboxWriter(pool, 'node-b');
    let inserted = 0;
    for (let round = 0; round < 20; round++) {
      const lines = Array.from({ length: 300 }, (_, i) => line(3_000_000 + round * 1000 + i, '10.9.0.77'));
      const [a, b] = await Promise.all([wa.append(lines), wb.append(lines.slice().reverse())]);
      expect(a.inserted + b.inserted).toBe(300);
      inserted += a.inserted + b.inserted;
    }
    expect(inserted).toBe(6000);
    const deadlocks = wa.deadlocks + wb.deadlocks;
    console.log(`cluster inbox: opposite-order duplicate appends: ${deadlocks} deadlocks in 20 rounds (appends insert in key order), every line once`);
    expect(deadlocks).toBe(0);
    // ids still follow each writer's own order (the apply order): within a round a's rows ascend, b's descend
    const rows = (await pool.query("SELECT node, sighting->>'ip' AS ip FROM cluster_inbox WHERE sighting->>'source' = 'tcp:601' ORDER BY id")).rows as { node: string; ip: string }[];
    const index = (ip: string) => ip.split('.').slice(1).reduce((a, o) => a * 256 + Number(o), 0);
    for (let round = 0; round < 20; round++) {
      for (const [node, dir] of [['node-a', 1], ['node-b', -1]] as const) {
        const got = rows.filter((r) => r.node === node).map((r) => index(r.ip)).filter((i) => i >= 3_000_000 + round * 1000 && i < 3_000_000 + round * 1000 + 300);
        expect(got).toEqual([...got].sort((x, y) => dir * (x - y)));
      }
    }
  });

  it('a row whose transaction commits late is applied, not skipped by the cursor', async () => {
    const reader = new InboxReader(pool, { name: 'late-test' });
    for (let n; (n = await reader.applyNext(async () => undefined)) > 0;);
    const w = new InboxWriter(pool, 'node-a');
    const early = await pool.connect();
    await early.query('BEGIN');
    await early.query('SELECT pg_current_xact_id()'); // takes its transaction id now: older than the next writer's
    await w.append([line(5_000_000)], early);
    await w.append([line(5_000_001)]); // commits first, with a newer transaction id
    const seen: string[] = [];
    const collect = async (rows: InboxRow[]) => { for (const r of rows) seen.push(r.sighting.ip); };
    expect(await reader.applyNext(collect)).toBe(0); // held back: an older transaction is still open
    await early.query('COMMIT');
    early.release();
    let applied = 0;
    for (let n; (n = await reader.applyNext(collect)) > 0;) applied += n;
    expect(applied).toBe(2);
    expect(seen).toEqual([line(5_000_000).sighting.ip, line(5_000_001).sighting.ip]);
  });

  it('the same line from two senders is two sightings; the same line again from one sender is one', () => {
    const a = line(7, '10.9.0.1');
    expect(inboxKey(a).equals(inboxKey({ ...line(7, '10.9.0.1') }))).toBe(true);
    expect(inboxKey(a).equals(inboxKey(line(7, '10.9.0.2')))).toBe(false);
    expect(inboxKey(a).equals(inboxKey({ ...a, sighting: { ...a.sighting, at: '2026-12-01T08:00:01.000Z' } }))).toBe(false);
    // without the raw line, the sighting stands in, minus what differs per node (input name, line number)
    const s = { ...a, raw: undefined };
    expect(inboxKey(s).equals(inboxKey({ ...s, sighting: { ...s.sighting, source: 'udp:514', line: 9 } }))).toBe(true);
  });

  it('a fenced apply by a node that does not lead applies nothing and keeps the cursor', async () => {
    const w = new InboxWriter(pool, 'node-a');
    await w.append([line(6_000_000)]);
    const reader = new InboxReader(pool, { batch: 10 });
    const before = await reader.backlog();
    expect(before).toBeGreaterThan(0);
    const follower = new Lease({ connection: server.connection, node: 'not-leader', role: 'collector' });
    await follower.start();
    await expect(reader.applyNext(applyInto, follower)).rejects.toBeInstanceOf(FencedError);
    expect(await reader.backlog()).toBe(before);
    await follower.stop();
  });

  it('prune drops applied rows older than the duplicate window and keeps the rest; a pruned line is new again', async () => {
    const w = new InboxWriter(pool, 'node-p');
    const reader = new InboxReader(pool, { name: 'prune-test', dedupWindowMs: 60_000 });
    for (let n; (n = await reader.applyNext(async () => undefined)) > 0;);
    await w.append([line(8_000_000), line(8_000_001)]);
    for (let n; (n = await reader.applyNext(async () => undefined)) > 0;);
    await w.append([line(8_000_002)]); // not applied yet
    await pool.query("UPDATE cluster_inbox SET received_at = now() - interval '2 minutes' WHERE node = 'node-p'");
    const before = Number((await pool.query("SELECT count(*) AS n FROM cluster_inbox WHERE node = 'node-p'")).rows[0].n);
    expect(await reader.prune()).toBeGreaterThanOrEqual(2);
    const left = (await pool.query("SELECT sighting->>'ip' AS ip FROM cluster_inbox WHERE node = 'node-p'")).rows.map((r) => r.ip);
    expect(before).toBe(3);
    expect(left).toEqual([line(8_000_002).sighting.ip]); // the unapplied row stays, whatever its age
    expect((await w.append([line(8_000_000)])).inserted).toBe(1); // outside the window: a new sighting
    expect((await w.append([line(8_000_002)])).inserted).toBe(0); // still inside: a duplicate
  });
});
