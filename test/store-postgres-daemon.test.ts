// The daemon on a PostgreSQL store: a DHCP line over real UDP is stored, decided and launched
// (dry run), /healthz answers from the server and says so when the server is gone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { openPostgresStore } from '../src/store/postgres/store.js';
import { PgDb } from '../src/store/postgres/db.js';
import { pgUnavailable, startPostgres, type PgServer } from './helpers/postgres.js';
import { udpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';

const why = pgUnavailable();
if (why) console.log(`skip the daemon on PostgreSQL: ${why}`);

describe.skipIf(!!why)('daemon on a PostgreSQL store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-pgd-'));
  let server: PgServer | undefined;
  let d: Daemon | undefined;
  afterAll(async () => {
    await d?.stop().catch(() => undefined);
    server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingests, decides and launches through the store interface; /healthz follows the server', async () => {
    server = startPostgres();
    const { config } = validateConfig({
      state: join(dir, 'unused.db'), timezone: 'UTC',
      inputs: [{ type: 'syslog', listen: 'udp://127.0.0.1:0', format: 'isc-dhcpd' }],
      policy: { scope: ['10.0.0.0/8'] },
      regions: [{ name: 'emea', cidrs: ['10.20.0.0/16'], appliances: ['a'] }],
      scanner: { type: 'dry-run' },
      http: { listen: '127.0.0.1:0' },
    });
    const store = await openPostgresStore(server.connection, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 86400 });
    d = new Daemon({ config, log: silentLogger(), store, tickMs: 200 });
    await d.start();
    const port = d.inputs[0].address!.port;
    await udpSend(port, `<30>${new Date().toISOString()} gw dhcpd[7]: DHCPACK on 10.20.1.7 to 52:54:00:00:00:07 via eth0`);
    const b = await until(async () => d!.inventory.openBinding('10.20.1.7'), 10_000, 'the binding in PostgreSQL', 50);
    expect(b).toMatchObject({ ip: '10.20.1.7', mac: '52:54:00:00:00:07', identityKey: 'mac:52:54:00:00:00:07' });
    const launched = await until(async () => (await d!.scheduler.store.recentDecisions(10)).find((x) => x.decision === 'launched'), 10_000, 'a (dry-run) launch', 100);
    expect(launched!.ip).toBe('10.20.1.7');
    expect((await fetch(`${d.http!.url}/healthz`)).status).toBe(200);
    const status = await (await fetch(`${d.http!.url}/api/status`)).json() as { totals: { identities: number; present: number } };
    expect(status.totals).toMatchObject({ identities: 1, present: 1 });
    server.stop('immediate');
    expect((await fetch(`${d.http!.url}/healthz`)).status).toBe(503);
  });

  it('a server lost in the middle of a transaction fails that transaction, not the process; the store works again once the server is back', async () => {
    const pg2 = startPostgres();
    const db = new PgDb(pg2.connection);
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => { uncaught.push(err); };
    // vitest reports uncaught exceptions as errors of the run; listen too, so this test names it
    process.on('uncaughtException', onUncaught);
    try {
      await db.migrate();
      const tx = db.transaction(async () => {
        await db.query('SELECT 1');
        pg2.stop('immediate'); // the checked-out client now sees its connection end while idle in the transaction
        await new Promise((r) => setTimeout(r, 300));
        await db.query('SELECT 2');
      });
      await expect(tx).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 100));
      expect(uncaught.map((e) => e.message)).toEqual([]);
      pg2.start();
      expect(await db.row<{ n: number }>('SELECT 3 AS n')).toEqual({ n: 3 });
      expect(await db.transaction(async () => db.row<{ n: number }>('SELECT 4 AS n'))).toEqual({ n: 4 });
    } finally {
      process.off('uncaughtException', onUncaught);
      await db.close().catch(() => undefined);
      pg2.destroy();
    }
  });
});
