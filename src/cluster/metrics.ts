/**
 * Cluster metric families for /metrics (design memo §3.7): leadership, epoch, failovers,
 * step-downs, inbox backlog and applier counters. The daemon adds them when it runs in cluster mode.
 */
import type { MetricsRegistry } from '../http/prom.js';
import type { LeaseMetrics } from './lease.js';

export interface ClusterMetricInput {
  node: string;
  lease: LeaseMetrics;
  /** rows appended but not applied (read at scrape time); undefined when it could not be read */
  inboxBacklog?: number;
  applier?: { applied: number; batches: number; errors: number };
  /** the scheduler's fencing counters, summed over this node's terms (src/scheduler/core.ts) */
  fencing?: { lateLaunchesCanceled: number; transitionsRefused: number; adoptedAcrossEpochs: number };
  /** live nodes whose policy.scope or policy.exclude differ from this node's */
  policyDiffers?: number;
  /** live peers whose lists are unknown here or not all readable */
  policyUnknown?: number;
}

export function writeClusterMetrics(w: MetricsRegistry, m: ClusterMetricInput): void {
  w.family('onsight_cluster_leader', 'gauge', '1 on the node that holds the lease now, else 0.')(m.lease.leader, { node: m.node });
  w.family('onsight_cluster_epoch', 'gauge', 'The lease epoch this node leads, else the last one it saw.')(m.lease.epoch);
  w.family('onsight_cluster_failovers_total', 'counter', 'Terms this node took from a holder that had not released the lease (expired or its session gone).')(m.lease.failovers);
  w.family('onsight_cluster_acquisitions_total', 'counter', 'Terms this node began.')(m.lease.acquisitions);
  w.family('onsight_cluster_step_downs_total', 'counter', 'Terms this node ended early: renewal failed, deposed, or its local deadline passed.')(m.lease.stepDowns);
  if (m.policyDiffers !== undefined) w.family('onsight_cluster_policy_differs', 'gauge', 'Other live nodes whose policy.scope or policy.exclude differ from this node\'s: each node scans only what every live node\'s lists allow.')(m.policyDiffers);
  if (m.policyUnknown !== undefined) w.family('onsight_cluster_policy_unknown', 'gauge', 'Other live nodes whose policy.scope and policy.exclude are not known here: none published (an older onsight: upgrade it) or an entry that does not parse (applied without it; the log names it). Their exclusions may be missing from what this node scans.')(m.policyUnknown);
  if (m.inboxBacklog !== undefined) w.family('onsight_inbox_backlog', 'gauge', 'Sightings appended to the inbox by any node and not yet applied by the leader.')(m.inboxBacklog);
  if (m.fencing) {
    w.family('onsight_cluster_late_launches_canceled_total', 'counter', 'Scans with this cluster\'s title prefix canceled as late launches: their intent had ended (a deposed leader\'s launch landing after the takeover) or their targets were in an active scan already.')(m.fencing.lateLaunchesCanceled);
    w.family('onsight_cluster_transitions_refused_total', 'counter', 'Scan intent transitions refused: the intent was no longer in a state it may leave that way, or this node no longer held the lease.')(m.fencing.transitionsRefused);
    w.family('onsight_cluster_intents_adopted_total', 'counter', 'Unconfirmed launches of an earlier epoch (another leader\'s term) whose scan was found by its intent id and adopted.')(m.fencing.adoptedAcrossEpochs);
  }
  if (m.applier) {
    w.family('onsight_inbox_applied_total', 'counter', 'Inbox rows this node applied while leading.')(m.applier.applied);
    w.family('onsight_inbox_apply_errors_total', 'counter', 'Inbox batches that failed (retried) on this node.')(m.applier.errors);
  }
}
