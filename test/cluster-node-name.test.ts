/**
 * Two nodes with one name (cluster.node defaults to the short host name, which two machines may
 * share) would overwrite each other's file checkpoints and source positions, kept by that name: a
 * node refuses to start while another live node goes by its name (real PostgreSQL). A crashed run
 * of our own, or a node gone quiet for two leases, is no obstacle.
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { migrateCluster } from '../src/cluster/schema.js';
import { refuseNodeNameInUse } from '../src/daemon/cluster.js';
import type { PgStore } from '../src/store/postgres/store.js';
import { STORE_KINDS } from './helpers/stores.js';

const pgKind = STORE_KINDS.find((k) => k.name === 'postgres')!;
if (pgKind.skip) console.log(`skip the node-name check: ${pgKind.skip}`);

describe.skipIf(!!pgKind.skip)('a node name already in use (real PostgreSQL)', () => {
  it('refuses while another live node has the name; a crashed run of ours, a stale row, a new database do not', async () => {
    const store = (await pgKind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 })) as PgStore;
    const cluster = { node: 'lab-1', leaseTtlS: 15 };
    await refuseNodeNameInUse(store.db, cluster); // no cluster tables yet: nothing to compare with
    const c = await store.db.pool.connect();
    try {
      await migrateCluster(c);
    } finally {
      c.release();
    }
    const beat = (host: string, pid: number, agoS: number) => store.db.query(
      `INSERT INTO cluster_nodes (name, role, host, pid, started_at, heartbeat_at) VALUES ($1, 'scheduler', $2, $3, now(), now() - make_interval(secs => $4))
       ON CONFLICT (name) DO UPDATE SET host = $2, pid = $3, heartbeat_at = now() - make_interval(secs => $4)`, ['lab-1', host, pid, agoS]);
    await beat('lab-1.other.example', 4242, 3);
    await expect(refuseNodeNameInUse(store.db, cluster)).rejects.toMatchObject({ code: 'ONSIGHT_CLUSTER', message: expect.stringMatching(/another node named "lab-1" is running \(host lab-1\.other\.example, pid 4242/) });
    await beat('lab-1.other.example', 4242, 31); // quiet for two leases: gone
    await refuseNodeNameInUse(store.db, cluster);
    await beat(hostname(), 4242, 3); // this host, a process that is gone (a crash, then systemd's restart)
    await refuseNodeNameInUse(store.db, cluster, () => false);
    await expect(refuseNodeNameInUse(store.db, cluster, () => true)).rejects.toMatchObject({ code: 'ONSIGHT_CLUSTER' }); // a second daemon on this host
    await beat(hostname(), process.pid, 3); // our own row
    await refuseNodeNameInUse(store.db, cluster, () => true);
    await refuseNodeNameInUse(store.db, { ...cluster, node: 'lab-2' }); // another name
  });
});
