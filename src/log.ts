/**
 * Structured logging: JSON lines (pino) for machines, a readable form when stdout is a terminal.
 * Secrets never reach a log line: the redaction list is a second line of defence, the first is
 * never passing them to the logger.
 */
import { closeSync, writeSync } from 'node:fs';
import { pino, destination, stdTimeFunctions, symbols, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  /** force pretty (true) or JSON (false); default: pretty when stdout is a TTY */
  pretty?: boolean;
  /** write to this fd (default 1) */
  fd?: number;
  /**
   * JSON form: `turn` (default) writes a turn's lines at its end without waiting for the reader;
   * `line` writes each line at once, as pino's synchronous destination does (the bench's baseline)
   */
  writes?: 'turn' | 'line';
}

/**
 * Keys whose values never reach a log line, at any depth: the shapes secrets arrive in (nested
 * config, capitalised headers, cookies, tokens, env dumps). Matched exactly, case-insensitively,
 * so `passwordFile` (a path) stays readable.
 */
const SECRET_KEYS = new Set(['password', 'passwd', 'authorization', 'auth', 'cookie', 'set-cookie', 'token', 'secret', 'apikey',
  // Tenable's header (`X-ApiKeys: accessKey=…; secretKey=…`) and the client option holding its value
  'x-apikeys', 'apikeys', 'qualys_password', 'onsight_qualys_password']);
const REDACTED = '[Redacted]';
/** what stands for an object nested deeper than MAX_DEPTH: it was not searched, so it is not logged */
const TOO_DEEP = '[Redacted: nested too deep]';
const MAX_DEPTH = 6;

/**
 * A copy of `value` with every secret key's value replaced; objects without secrets are returned
 * as they are (nothing copied, nothing mutated). This replaces pino's `redact` option: its
 * wildcard paths (`*.*.*.password`, one per key and depth) cost 35-60 us a line, most of what a
 * sighting log line costs (issue 18); this walk costs about 1 us on a sighting. An object nested
 * deeper than MAX_DEPTH is replaced whole: the walk stops there, so its keys were never looked at.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return (value instanceof Date ? value : TOO_DEEP) as T;
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

/**
 * Each logger's children, held weakly: pino copies the level into a child when it is made, so a
 * level set later (SIGHUP) reaches the children only through setLogLevel.
 */
const childrenOf = new WeakMap<Logger, Set<WeakRef<Logger>>>();

/**
 * Child bindings bypass `formatters.log` (pino serializes them once, at `child()`): redact them
 * there. Children inherit this `child` (pino makes them with Object.create), so grandchildren are
 * redacted and tracked too.
 */
function redactingChildren(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    const made = child.call(this, redactSecrets(bindings), options);
    let set = childrenOf.get(this);
    if (!set) childrenOf.set(this, (set = new Set()));
    // children made and dropped (a cluster term's scheduler) leave dead references: sweep now and then
    if (set.size >= 64 && (set.size & (set.size - 1)) === 0) for (const r of set) if (!r.deref()) set.delete(r);
    set.add(new WeakRef(made as unknown as Logger));
    return made;
  } as Logger['child'];
  return root;
}

/** Set the level of `log` and of every logger made from it with child(), at any depth (a logger from elsewhere: its own level only). */
export function setLogLevel(log: Logger, level: string): void {
  log.level = level;
  for (const r of childrenOf.get(log) ?? []) {
    const c = r.deref();
    if (c) setLogLevel(c, level);
  }
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
  const fd = opts.fd ?? 1;
  const dest = opts.writes === 'line' ? destination({ fd, sync: true }) : new TurnDestination(fd);
  return redactingChildren(pino({ level, formatters, base: undefined, timestamp: stdTimeFunctions.isoTime }, dest));
}

/** about the bytes held for a slow reader (counted in UTF-16 units); lines beyond are dropped (and counted), never held without bound */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** how long a write that the reader refused (EAGAIN) waits before the next try */
const RETRY_MS = 10;
/** at exit, or when closed, how long to keep trying to hand a slow reader what is buffered */
const FINAL_FLUSH_MS = 5_000;
let dropped = 0;

/** JSON log lines dropped: the log's reader (journald, a pipe) fell too far behind, or its fd failed */
export function droppedLogLines(): number {
  return dropped;
}

/** the lines (or what is left of the first) in joined JSON lines: each ends with a newline */
function linesIn(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}

/** destinations holding lines, written out if the process exits first */
const holding = new Set<TurnDestination>();
let exitHookInstalled = false;

/**
 * The JSON logger's destination. The lines of one event-loop turn go out in one write at the
 * turn's end, synchronously, so nothing is in flight when the process exits and order is kept.
 * The write never waits for the reader: stdout to journald is a non-blocking stream, and when it
 * refuses (EAGAIN) the rest waits for a retry in 10 ms while the daemon goes on. pino's own
 * destinations were measured worse here (issue 18, bench/logger.ts): the synchronous one writes
 * each line and sleeps 100 ms in the main thread on each EAGAIN; the asynchronous one writes from
 * the thread pool, and a chunk in flight at exit was written after the lines flushed at exit, or
 * not at all. Beyond 16 MiB waiting, lines are dropped and counted; a failed fd (EBADF, EPIPE)
 * ends writing, its lines counted as dropped.
 */
class TurnDestination {
  private parts: string[] = [];
  /** what a partial write left of the joined parts, written first */
  private rest: Buffer | undefined;
  private bytes = 0;
  private scheduled = false;
  private dead = false;

  constructor(private readonly fd: number) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => { for (const d of holding) d.flushFinal(); });
    }
  }

  write(line: string): void {
    if (this.dead || this.bytes + line.length > MAX_BUFFERED_BYTES) {
      dropped++;
      return;
    }
    this.parts.push(line);
    this.bytes += line.length;
    holding.add(this);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushSoon());
    }
  }

  /** pino's `logger.flush()` */
  flush(cb?: (err?: Error) => void): void {
    this.tryWrite();
    cb?.();
  }

  private flushSoon(): void {
    this.scheduled = false;
    if (!this.tryWrite() && !this.scheduled) {
      this.scheduled = true; // the reader is behind: try again shortly, without waiting for it
      setTimeout(() => this.flushSoon(), RETRY_MS);
    }
  }

  /** write what is held; true when nothing is left */
  private tryWrite(): boolean {
    if (this.dead) return true;
    if (this.parts.length) {
      const joined = Buffer.from(this.parts.join(''));
      this.rest = this.rest ? Buffer.concat([this.rest, joined]) : joined;
      this.parts = [];
    }
    while (this.rest) {
      try {
        const n = writeSync(this.fd, this.rest);
        this.rest = n >= this.rest.length ? undefined : this.rest.subarray(n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
        this.die();
        return true;
      }
    }
    this.bytes = 0;
    holding.delete(this);
    return true;
  }

  /** at exit or close: keep handing a slow reader what is held, for a bounded time */
  flushFinal(): void {
    const until = Date.now() + FINAL_FLUSH_MS;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    let done = this.tryWrite();
    for (; !done && Date.now() < until; done = this.tryWrite()) Atomics.wait(pause, 0, 0, 5);
    if (!done) this.die();
  }

  close(): void {
    this.flushFinal();
    this.dead = true;
    if (this.fd > 2) closeSync(this.fd);
  }

  private die(): void {
    this.dead = true;
    dropped += this.parts.length + (this.rest ? linesIn(this.rest) : 0);
    this.parts = [];
    this.rest = undefined;
    this.bytes = 0;
    holding.delete(this);
  }
}

/**
 * Write what `log` has buffered, then close the fd it was created with (`createLogger({ fd })`;
 * never stdin, stdout or stderr): a logger's fd is closed through it, so nothing it holds lands
 * in whatever file reuses the number. Lines logged afterwards are dropped.
 */
export function closeLog(log: Logger): void {
  const dest = (log as unknown as Record<symbol, unknown>)[symbols.streamSym];
  if (dest instanceof TurnDestination) return dest.close();
  const fd = (dest as { fd?: unknown } | undefined)?.fd; // pino's synchronous destination (`writes: 'line'`): nothing held
  if (typeof fd === 'number' && fd > 2) closeSync(fd);
}

/** A logger that drops everything (tests, `onsight parse`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
