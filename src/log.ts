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

const REDACT = ['password', '*.password', 'auth', '*.auth', 'authorization', '*.authorization', 'headers.authorization'];
/** more shapes secrets arrive in: nested up to 3 levels deep, capitalised headers, cookies, tokens, env dumps */
const SECRET_KEYS = ['password', 'passwd', 'Authorization', 'authorization', 'auth', 'cookie', 'Cookie', 'set-cookie', 'token', 'secret', 'apiKey', 'QUALYS_PASSWORD', 'ONSIGHT_QUALYS_PASSWORD'];
for (const k of SECRET_KEYS) {
  const seg = /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `["${k}"]`;
  for (const prefix of ['', '*', '*.*', '*.*.*']) {
    const path = prefix ? prefix + seg : seg.replace(/^\./, '');
    if (!REDACT.includes(path)) REDACT.push(path);
  }
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.ONSIGHT_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && !process.env.ONSIGHT_LOG_JSON);
  if (pretty) {
    return pino({
      level,
      redact: REDACT,
      transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: opts.fd ?? 1 } },
    });
  }
  return pino({ level, redact: REDACT, base: undefined, timestamp: stdTimeFunctions.isoTime }, destination({ fd: opts.fd ?? 1, sync: true }));
}

/** A logger that drops everything (tests, `onsight parse`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
