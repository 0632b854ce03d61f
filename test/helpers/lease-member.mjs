// One cluster member in its own process, for the lease tests: holds/follows the lease (dist/src/cluster),
// and while it leads does what a scheduler would: a fenced write every WORK_MS (guarded like a scanner
// send), and a long wait at an "allowance gate" that only the term's AbortSignal can end.
// Prints one JSON line per event: {ev, node, t (wall ms), mono (monotonic ms), epoch, ...}.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Lease } from '../../dist/src/cluster/lease.js';
import { fenced } from '../../dist/src/cluster/fence.js';

const node = process.env.NODE_NAME;
const conn = JSON.parse(process.env.PG_CONN);
const ttlMs = Number(process.env.TTL_MS ?? 3000);
const pollMs = Number(process.env.POLL_MS ?? 250);
const workMs = Number(process.env.WORK_MS ?? 100);

const emit = (ev, extra = {}) => process.stdout.write(JSON.stringify({ ev, node, t: Date.now(), mono: performance.now(), ...extra }) + '\n');

const lease = new Lease({ connection: conn, node, ttlMs, pollMs, fastTakeover: process.env.FAST_TAKEOVER !== '0', role: process.env.ROLE ?? 'scheduler' });
const pool = new pg.Pool({ ...conn, max: 3 });
pool.on('error', () => undefined);

lease.on('leader', (e) => {
  emit('leader', { epoch: e.epoch, previous: e.previous });
  // an allowance-gate wait: only a step-down ends it
  const signal = lease.signal;
  const started = performance.now();
  const gate = setTimeout(() => emit('gate-timeout'), 600_000);
  signal.addEventListener('abort', () => {
    clearTimeout(gate);
    emit('gate-aborted', { epoch: e.epoch, waitedMs: Math.round(performance.now() - started), code: signal.reason?.code });
  }, { once: true });
});
lease.on('follower', (e) => emit('follower', { epoch: e.epoch, reason: e.reason }));

let lastWork = performance.now();
async function work() {
  const gap = performance.now() - lastWork;
  lastWork = performance.now();
  if (gap > 4 * workMs) emit('resumed', { gapMs: Math.round(gap) }); // the process was stopped (SIGSTOP) or starved
  const epoch = lease.currentEpoch();
  if (epoch === undefined && gap <= 4 * workMs) return;
  try {
    lease.assertLeader('scanner send', epoch); // the transport guard
    await fenced(pool, lease, (c, ctx) => c.query('INSERT INTO probe (node, epoch, at) VALUES ($1, $2, clock_timestamp())', [node, ctx.epoch]), { epoch });
    emit('fenced-ok', { epoch });
  } catch (err) {
    emit('refused', { epoch, code: err.code, message: err.message });
  }
}
setInterval(() => void work(), workMs);

process.on('SIGTERM', async () => {
  await lease.stop();
  await pool.end().catch(() => undefined);
  emit('stopped');
  process.exit(0);
});

await lease.start();
emit('started', { leader: lease.isLeader() });
