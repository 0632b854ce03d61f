/**
 * Structured logging: JSON lines (pino) for machines, a readable form when stdout is a terminal.
 * Secrets never reach a log line: the redaction list is a second line of defence, the first is
 * never passing them to the logger.
 */
import { pino, destination, stdTimeFunctions, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  /** force pretty (true) or JSON (false); default: pretty when stdout is a TTY */
  pretty?: boolean;
  /** write to this fd (default 1) */
  fd?: number;
}

/**
 * Keys whose values never reach a log line, at any depth: the shapes secrets arrive in (nested
 * config, capitalised headers, cookies, tokens, env dumps). Matched exactly, case-insensitively,
 * so `passwordFile` (a path) stays readable.
 */
const SECRET_KEYS = new Set(['password', 'passwd', 'authorization', 'auth', 'cookie', 'set-cookie', 'token', 'secret', 'apikey', 'qualys_password', 'onsight_qualys_password']);
const REDACTED = '[Redacted]';
const MAX_DEPTH = 6;

/**
 * A copy of `value` with every secret key's value replaced; objects without secrets are returned
 * as they are (nothing copied, nothing mutated). This replaces pino's `redact` option: its
 * wildcard paths (`*.*.*.password`, one per key and depth) cost 35-60 us a line, most of what a
 * sighting log line costs (issue 18); this walk costs about 1 us on a sighting.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = redactSecrets(value[i], depth + 1);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return (out ?? value) as T;
  }
  if (ArrayBuffer.isView(value) || value instanceof Date) return value;
  let out: Record<string, unknown> | undefined;
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    const r = SECRET_KEYS.has(k.toLowerCase()) ? REDACTED : redactSecrets(v, depth + 1);
    if (r !== v) {
      if (!out) {
        out = { ...obj };
        // an Error's message and stack are not own enumerable keys: keep them for pino's serializer
        if (value instanceof Error) {
          Object.setPrototypeOf(out, Object.getPrototypeOf(value));
          for (const p of ['message', 'stack']) Object.defineProperty(out, p, { value: (value as unknown as Record<string, unknown>)[p], enumerable: false, writable: true, configurable: true });
        }
      }
      out[k] = r;
    }
  }
  return (out ?? value) as T;
}

const formatters = { log: (obj: Record<string, unknown>) => redactSecrets(obj) };

/** Child bindings bypass `formatters.log` (pino serializes them once, at `child()`): redact them there. */
function redactingChildren(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, redactSecrets(bindings), options);
  } as Logger['child'];
  return root;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.ONSIGHT_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && !process.env.ONSIGHT_LOG_JSON);
  if (pretty) {
    return redactingChildren(pino({
      level,
      formatters,
      transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: opts.fd ?? 1 } },
    }));
  }
  return redactingChildren(pino({ level, formatters, base: undefined, timestamp: stdTimeFunctions.isoTime }, destination({ fd: opts.fd ?? 1, sync: true })));
}

/** A logger that drops everything (tests, `onsight parse`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
