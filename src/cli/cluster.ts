/** `onsight cluster status`: what the cluster looks like from PostgreSQL (any node, or an operator's machine). */
import pg from 'pg';
import type { Config } from '../config/schema.js';
import { OnsightError, UsageError } from '../errors.js';
import { describeState } from '../cluster/config.js';
import { pgConnectionConfig } from '../cluster/connection.js';
import { readClusterStatus, renderClusterStatus } from '../cluster/status.js';

export async function clusterStatusView(config: Config, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const state = config.state;
  if (typeof state === 'string') throw new UsageError(`cluster status needs a PostgreSQL state; this config's state is the SQLite file ${state}`);
  const client = new pg.Client({ ...pgConnectionConfig(state, env), application_name: 'onsight cluster status', query_timeout: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new OnsightError('ONSIGHT_CLUSTER', `cannot connect to ${describeState(state)}: ${(err as Error).message}`);
  }
  try {
    const s = await readClusterStatus(client, 'scheduler', config.cluster?.leaseTtlS ?? 15);
    if (!s) {
      if (json) return JSON.stringify({ state: describeState(state), cluster: null }) + '\n';
      return `state      ${describeState(state)}\nno cluster yet: no node has started against this database\n`;
    }
    return json ? JSON.stringify({ state: describeState(state), ...s }) + '\n' : renderClusterStatus(s, describeState(state));
  } finally {
    await client.end().catch(() => undefined);
  }
}
