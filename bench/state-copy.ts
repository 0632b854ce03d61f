/**
 * The operator side on PostgreSQL, timed: `onsight state copy --to postgres` (rows/s) from a SQLite
 * state of N devices (an identity, a binding and a sighting each), and `onsight hosts` over the same
 * N present devices on SQLite and on the copy (the views run one read-only transaction on PostgreSQL).
 * A throwaway server from test/helpers/postgres.ts over its Unix socket; the load average is printed
 * with the figures: the machine is shared. `node dist/bench/state-copy.js [N]` (default 20,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/sqlite-store.js';
import { copyStateToPostgres } from '../src/store/copy.js';
import { hostsView } from '../src/cli/views.js';
import { validateConfig } from '../src/config/load.js';
import type { Sighting } from '../src/sighting.js';
import { pgUnavailable, startPostgres } from '../test/helpers/postgres.js';

const N = Number(process.argv[2] ?? 20_000);
const why = pgUnavailable();
if (why) {
  console.log(`state copy bench skipped: ${why}`);
  process.exit(0);
}
const hex = (n: number) => n.toString(16).padStart(2, '0');
const server = startPostgres();
const dir = mkdtempSync(join(tmpdir(), 'onsight-copy-bench-'));
try {
  const now = Date.now();
  const file = join(dir, 'state.db');
  const sqlite = openSqliteStore(file, { defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 90 * 86400 });
  for (let k = 0; k < N; k += 2000) {
    const batch: Sighting[] = [];
    for (let i = k; i < Math.min(N, k + 2000); i++) {
      batch.push({ kind: 'lease', ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, mac: `52:54:00:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`,
        at: new Date(now - 60_000).toISOString(), format: 'isc-dhcpd', source: 'bench', durationS: 3600 });
    }
    await sqlite.inventory.commitBatch(batch, [], now);
  }
  await sqlite.close();
  const base = { policy: { scope: ['10.0.0.0/8'] }, regions: [{ name: 'r', cidrs: ['10.0.0.0/8'], appliances: ['a'] }] };
  const pgState = { postgres: `postgres://${server.user}@/${server.database}?host=${server.socketDir}&port=${server.port}` };
  const t0 = performance.now();
  const r = await copyStateToPostgres(validateConfig({ ...base, state: pgState }).config, { from: file });
  const s = (performance.now() - t0) / 1000;
  const rows = Object.values(r.counts).reduce((a, b) => a + b, 0);
  console.log(`state copy: ${rows} rows in ${s.toFixed(1)} s = ${Math.round(rows / s)} rows/s (counts verified; load ${loadavg()[0].toFixed(1)})`);
  for (const [name, state] of [['SQLite', file], ['PostgreSQL', pgState]] as const) {
    const t1 = performance.now();
    const out = await hostsView({ config: validateConfig({ ...base, state }).config, now }, false);
    console.log(`onsight hosts on ${name}: ${out.split('\n').length - 3} devices in ${Math.round(performance.now() - t1)} ms`);
  }
} finally {
  server.destroy();
  rmSync(dir, { recursive: true, force: true });
}
