/**
 * `npm run bench:cluster-chaos`: issue 17's failure figures through two real daemons on a throwaway
 * PostgreSQL with the Qualys emulator (test/helpers/cluster-chaos.ts; the CI test runs the same
 * scenarios with fewer rounds): kill -9 of the leader mid-launch ×20 alternating nodes, SIGSTOP past
 * the lease, the lease connection terminated, PostgreSQL restarted, 20k file lines (10k on each node) with TCP
 * syslog to both nodes and kills meanwhile (then the inventory against one SQLite node), follower
 * idle CPU. One summary line per scenario, with the load average beside it. A few minutes.
 * `--quick` runs a few rounds only.
 */
import { pgUnavailable, startPostgres } from '../test/helpers/postgres.js';
import {
  BENCH_TIMINGS, ChaosCluster, idleCpu, ingestUnderChaos, killMidLaunch, load, pauseLeader, restartPostgres, terminateLease,
} from '../test/helpers/cluster-chaos.js';

const quick = process.argv.includes('--quick');
const out = (s: string) => process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const why = pgUnavailable();
  if (why) {
    out(`cluster chaos bench skipped: ${why}`);
    return;
  }
  const server = startPostgres();
  const t = BENCH_TIMINGS;
  out(`cluster chaos bench: two onsight daemons, PostgreSQL ${server.dataDir}, lease ttl ${t.ttlS} s, follower poll ${t.pollS} s, scan poll ${t.pollIntervalS} s, reconcile grace ${t.reconcileGraceS} s, launch answers held ${t.launchDelayMs} ms; load ${load()}`);
  const c = await ChaosCluster.start(server, t);
  try {
    const kill = await killMidLaunch(c, quick ? 3 : 20);
    out(kill.summary);
    out(`  takeover calls by round (net: raw in the window kill → settled [every vendor call in it]): ${kill.callsDetail.map((d, i) => `${kill.callsPerFailover[i]}: ${d}`).join('; ')}`);
    out((await terminateLease(c, quick ? 1 : 5)).summary);
    out((await pauseLeader(c, quick ? 1 : 3)).summary);
    out((await restartPostgres(c, quick ? 1 : 3, 2000)).summary);
    const ingest = await ingestUnderChaos(c, quick
      ? { fileLinesPerNode: 2000, tcpBoth: 500, tcpSingle: 250, kills: 1, feedS: 4 }
      : { fileLinesPerNode: 10_000, tcpBoth: 4000, tcpSingle: 2000, kills: 4, feedS: 20 });
    out(ingest.summary);
    for (const d of ingest.inventory.differences) out(`  ${d}`);
    out((await idleCpu(c, quick ? 3 : 10)).summary);
  } finally {
    await c.close();
    server.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
