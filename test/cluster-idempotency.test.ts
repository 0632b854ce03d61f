/**
 * Cluster mode: an HTTP input's idempotency keys are the cluster's, not one node's. A client's
 * retry that a load balancer sends to the other node was applied again (cluster probe, session
 * 41): the positions were kept per node (`c1:…`, `c2:…`). Real PostgreSQL (skipped without one).
 */
import { describe, expect, it } from 'vitest';
import { inboxAppend, nodeScoped } from '../src/daemon/cluster.js';
import type { Sighting } from '../src/sighting.js';
import { inboxStore, pgKind } from './helpers/inbox.js';

describe.skipIf(pgKind.skip)('cluster: idempotency keys shared by the nodes', () => {
  it('a key one node committed is found by the other; file checkpoints and other positions stay each node\'s own', async () => {
    const store = await inboxStore();
    const sighting: Sighting = { kind: 'lease', ip: '10.20.0.7', mac: '52:54:00:00:00:07', at: new Date().toISOString(), format: 'sightings', source: 'http:8088' };
    const answer = { status: 200, body: '{"accepted":1}', sha: 'x' };
    await inboxAppend(store, 'c1')([{ sighting, source: 'http:8088', raw: 'r' }], [], [
      { key: 'http:8088:idem:nac:req-42', value: answer },
      { key: 'lease:/var/lib/dhcp/dhcpd.leases', value: { offset: 10 } },
    ]);
    const c1 = nodeScoped(store.inventory, 'c1');
    const c2 = nodeScoped(store.inventory, 'c2');
    expect(await c2.position('http:8088:idem:nac:req-42')).toEqual(answer);
    expect(await c1.position('http:8088:idem:nac:req-42')).toEqual(answer);
    expect(await c1.position('lease:/var/lib/dhcp/dhcpd.leases')).toEqual({ offset: 10 });
    expect(await c2.position('lease:/var/lib/dhcp/dhcpd.leases')).toBeUndefined();
    // pruning by either node reaches the shared keys
    await c2.prunePositions('http:8088:idem:', Date.now() + 60_000);
    expect(await c1.position('http:8088:idem:nac:req-42')).toBeUndefined();
    expect(await c1.position('lease:/var/lib/dhcp/dhcpd.leases')).toEqual({ offset: 10 });
  });
});
