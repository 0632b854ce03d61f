/**
 * Typed errors with stable codes, all in one place (in the manner of undici / fastify).
 * Codes are part of the public surface: logs, metrics and tests match on them.
 */
export type ErrorCode =
  | 'ONSIGHT_CONFIG_INVALID'
  | 'ONSIGHT_CONFIG_UNREADABLE'
  | 'ONSIGHT_USAGE'
  | 'ONSIGHT_UNKNOWN_FORMAT'
  | 'ONSIGHT_PLUGIN_INVALID'
  | 'ONSIGHT_STORE'
  /** onsight rescan / skip: no device present under that address, MAC or user */
  | 'ONSIGHT_NO_DEVICE'
  | 'ONSIGHT_STATE_LOCKED'
  | 'ONSIGHT_LISTEN'
  /** the native UDP receiver (native/udp-recv) was asked for (udpReceiver: native) and is not available, or failed */
  | 'ONSIGHT_UDP_RECEIVER'
  | 'ONSIGHT_CREDENTIALS'
  | 'ONSIGHT_SCOPE_VIOLATION'
  | 'ONSIGHT_SCANNER'
  | 'ONSIGHT_SCANNER_REFUSED'
  | 'ONSIGHT_SCANNER_RATE_LIMIT'
  | 'ONSIGHT_SCANNER_UNREACHABLE'
  | 'ONSIGHT_SCANNER_DENIED'
  | 'ONSIGHT_QUALYS_API'
  | 'ONSIGHT_QUALYS_HTTP'
  | 'ONSIGHT_QUALYS_XML'
  | 'ONSIGHT_QUALYS_RATE_LIMIT'
  | 'ONSIGHT_QUALYS_NETWORK'
  | 'ONSIGHT_QUALYS_AUTH'
  | 'ONSIGHT_QUALYS_NOT_IN_SUBSCRIPTION'
  | 'ONSIGHT_QUALYS_LAUNCH_UNCONFIRMED'
  | 'ONSIGHT_QUALYS_PAGING'
  | 'ONSIGHT_CLOSED'
  /** cluster mode: a write or a scanner call refused because this node does not hold the lease (or its epoch is stale) */
  | 'ONSIGHT_FENCED'
  /** cluster mode: the PostgreSQL state cannot be reached or is not usable */
  | 'ONSIGHT_CLUSTER';

export class OnsightError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export interface ConfigIssue {
  /** dotted key path, e.g. `regions[0].cidrs[1]` */
  path: string;
  /** 1-based line in the config file, when known */
  line?: number;
  message: string;
  /**
   * a secret that cannot be read now but may be in a moment (a file not written yet, an empty one,
   * a variable not set): `run` exits 1 for these alone, so systemd's Restart=on-failure tries again
   */
  mayResolve?: boolean;
}

export class ConfigError extends OnsightError {
  readonly issues: ConfigIssue[];
  readonly file?: string;
  constructor(issues: ConfigIssue[], file?: string) {
    super('ONSIGHT_CONFIG_INVALID', formatIssues(issues, file));
    this.issues = issues;
    this.file = file;
  }
}

export function formatIssues(issues: ConfigIssue[], file?: string): string {
  return issues
    .map((i) => `${file ?? 'config'}${i.line ? `:${i.line}` : ''}: ${i.path || '(root)'}: ${i.message}`)
    .join('\n');
}

export class UsageError extends OnsightError {
  constructor(message: string) {
    super('ONSIGHT_USAGE', message);
  }
}

/** Exit codes of the CLI (DESIGN.md): 0 ok, 1 runtime failure, 2 bad usage or bad config. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ConfigError || err instanceof UsageError) return 2;
  if (err instanceof OnsightError && (err.code === 'ONSIGHT_UNKNOWN_FORMAT' || err.code === 'ONSIGHT_CONFIG_UNREADABLE')) return 2;
  return 1;
}

/** Cluster mode: this node is not (or no longer) the leader of the epoch it names; nothing was written or sent. */
export class FencedError extends OnsightError {
  constructor(message: string) {
    super('ONSIGHT_FENCED', message);
  }
}
