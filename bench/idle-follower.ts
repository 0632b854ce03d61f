/**
 * An idle follower's CPU (issue 17: under 2 % of a core) and the leader's, on their own: two
 * onsight daemons on a throwaway PostgreSQL, no traffic, the follower on the shipped polling
 * defaults (lease poll 1 s, ttl 15 s, file poll 250 ms). `rounds` windows of `seconds` each, one
 * summary line per window with the load average (the figure is only meaningful on a quiet machine).
 * Run: `npm run build && node dist/bench/idle-follower.js [seconds] [rounds] [settle]` (default 30 s × 3, each
 * window starting 15 s after the follower's start).
 */
import { BENCH_TIMINGS, ChaosCluster, idleCpu } from '../test/helpers/cluster-chaos.js';
import { pgUnavailable, startPostgres } from '../test/helpers/postgres.js';

const seconds = Number(process.argv[2] ?? 30);
const rounds = Number(process.argv[3] ?? 3);
/** seconds between the follower's start and the window: idle means after start-up's JIT and garbage */
const settle = Number(process.argv[4] ?? 15);
const why = pgUnavailable();
if (why) {
  console.log(`idle follower bench skipped: ${why}`);
} else {
  const server = startPostgres();
  const c = await ChaosCluster.start(server, BENCH_TIMINGS);
  try {
    for (let r = 0; r < rounds; r++) console.log((await idleCpu(c, seconds, settle)).summary);
  } finally {
    await c.close();
    server.destroy();
  }
}
