import { it } from 'vitest';
import { startPostgres } from './helpers/postgres.js';
import { CI_TIMINGS, ChaosCluster, ingestUnderChaos } from './helpers/cluster-chaos.js';
it('scratch', async () => {
  const server = startPostgres();
  const c = await ChaosCluster.start(server, CI_TIMINGS);
  const f = await ingestUnderChaos(c, { fileLinesPerNode: 1500, tcpBoth: 300, tcpSingle: 150, kills: Number(process.env.K ?? 0), feedS: 3 });
  console.log(f.summary);
  console.log(f.inventory.differences.slice(0, 3).join('\n'));
  const m = /identity (mac:\S+):/.exec(f.inventory.differences[0] ?? '');
  if (m) {
    const mac = m[1].slice(4);
    console.log(JSON.stringify(await c.q(`SELECT id, tx::text, node, received_at, sighting->>'at' AS at, sighting->>'ip' AS ip FROM cluster_inbox WHERE sighting->>'mac' = $1 ORDER BY tx, id`, [mac])));
    console.log(JSON.stringify(await c.q(`SELECT * FROM cluster_inbox_cursor`)));
    console.log(JSON.stringify(await c.q(`SELECT pid, application_name, state, xact_start, backend_xid::text, backend_xmin::text, left(query, 200) AS q FROM pg_stat_activity WHERE backend_type = 'client backend'`), null, 1));
    console.log(JSON.stringify(await c.q(`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, (SELECT count(*) FROM cluster_inbox) n`)));
    console.log(JSON.stringify(await c.q(`SELECT b.* FROM bindings b JOIN identities i ON i.id = b.identity_id WHERE i.mac = $1`, [mac])));
  }
  await c.close();
  server.destroy();
}, 300_000);
