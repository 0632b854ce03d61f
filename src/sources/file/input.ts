/**
 * `type: file` inputs: one path, or a glob whose matches are discovered (chokidar 4 watches the
 * glob's base directory; we match names ourselves: chokidar 4 has no globs). Each matching file gets
 * its own tailer, keyed (and checkpointed) by its path.
 *
 * Globs: `*` and `?` (within a path segment), `[abc]`, `{a,b}`, and `**` (any depth). They should
 * match live file names only (`/var/log/vpn/*.log`), not rotated ones (`*.log.1`): while running, a
 * file whose inode a tailer already holds is ignored, but after a restart a rotated file that
 * matches the glob would be a new file to us.
 */
import { watch, type FSWatcher } from 'chokidar';
import { stat } from 'node:fs/promises';
import picomatch from 'picomatch';
import { dirname, resolve, sep } from 'node:path';
import type { Logger } from '../../log.js';
import type { CheckpointReader, FileInputOptions, InputHandle, LineSink, SourceCounters } from '../types.js';
import { FileTailer, type StartPosition } from './tailer.js';

/** a tailed file with no data for this long is polled less often */
const IDLE_AFTER_MS = 60_000;
/** … once in this many polls (2 s at the default 250 ms) */
const IDLE_EVERY = 8;

export function isGlob(p: string): boolean {
  return /[*?[{]/.test(p) || /[@!+]\(/.test(p);
}

/** A glob's text with its escapes taken (`dhcp\[1\]` → `dhcp[1]`): the name it stands for where it has no metacharacters. */
export function unescapeGlob(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** A name written as a glob that matches it alone (`dhcp(a)` → `dhcp\(a\)`): unescapeGlob's reverse. */
export function escapeGlob(name: string): string {
  return name.replace(/[\\*?[\]{}()!+@]/g, '\\$&');
}

/** `{1..3}` → `(?:1|2|3)`, `{a..c}` too: picomatch leaves ranges to a callback. */
function expandRange(a: string, b: string): string {
  const num = /^-?\d+$/.test(a) && /^-?\d+$/.test(b);
  const [x, y] = num ? [Number(a), Number(b)] : [a.charCodeAt(0), b.charCodeAt(0)];
  if (!num && (a.length !== 1 || b.length !== 1)) return `${a}..${b}`;
  const out: string[] = [];
  for (let i = Math.min(x, y); i <= Math.max(x, y) && out.length < 1000; i++) out.push(num ? String(i) : String.fromCharCode(i));
  return `(?:${out.join('|')})`;
}

/**
 * The directory before the first glob segment, and a RegExp for whole paths (picomatch: `*`, `**`,
 * `?`, classes, braces and ranges, extglobs, escapes; `*` matches dot files too, as log names may start with one).
 */
export function globToRegExp(glob: string): { base: string; re: RegExp; depth?: number } {
  const scan = picomatch.scan(glob);
  // escaped metacharacters are the name's own: `dhcp\(a\)/*.log` is watched from dhcp(a) (picomatch's
  // base keeps the backslashes: a folder not there, refused by config check); only escaped ones
  // (file\[1\].log): one file, watched from its directory
  const base = (scan.isGlob ? unescapeGlob(scan.base) : dirname(unescapeGlob(glob))) || (glob.startsWith('/') ? '/' : '.');
  // `[!0-9]`, the shell's negated class, is `[^0-9]` to picomatch
  const re = picomatch.makeRe(glob.replace(/(^|[^\\])\[!/g, '$1[^'), { dot: true, expandRange });
  // (the folders below the base: an escaped one counted as glob syntax made it one too many)
  const depth = glob.includes('**') ? undefined : scan.isGlob ? scan.glob.split('/').length - 1 : 0;
  return { base, re, depth };
}

export async function startFileInput(opts: FileInputOptions, sink: LineSink, checkpoints: CheckpointReader, parentLog: Logger): Promise<InputHandle> {
  const name = `file:${opts.path}`;
  const log = parentLog.child({ input: name });
  const pollMs = opts.pollMs || 250;
  const tailers = new Map<string, FileTailer>();
  const glob = isGlob(opts.path);
  const matcher = glob ? globToRegExp(opts.path) : undefined;
  let closed = false;
  let ready = false;
  const retired = { received: 0, dropped: {} as Record<string, number>, events: {} as Record<string, number> };

  const addFile = async (path: string, initial: boolean) => {
    if (closed || tailers.has(path)) return;
    if (matcher && !matcher.re.test(path)) return;
    // a rotated file that one of our tailers still holds (or is about to finish) is not new
    if (glob) {
      try {
        const st = await stat(path);
        const id = `${st.dev}:${st.ino}`;
        for (const t of tailers.values()) if (t.heldInodes().includes(id)) return;
      } catch {
        return;
      }
      if (tailers.has(path) || closed) return;
    }
    const t = new FileTailer(
      { key: path, format: opts.format, rotateWaitMs: opts.rotateWaitMs ?? 1000, maxLineBytes: opts.maxLineBytes ?? 1 << 20, rotatedDirs: opts.rotatedDir ? [opts.rotatedDir] : [] },
      sink,
      log,
    );
    tailers.set(path, t);
    const cp = await checkpoints(path);
    // a file that appears while we run is new: read it whole, whatever startAt says
    const start: StartPosition = cp ? { kind: 'checkpoint', cp } : initial && opts.startAt === 'end' ? { kind: 'end' } : { kind: 'beginning' };
    await t.start(start);
  };

  let watcher: FSWatcher | undefined;
  /** the glob's base folder as watched (device and inode): one removed and made again is watched anew */
  let baseId: string | undefined;
  const folderId = async (dir: string) => {
    try {
      const st = await stat(dir);
      return st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
    } catch {
      return undefined;
    }
  };
  const watchGlob = async (m: NonNullable<typeof matcher>) => {
    baseId = await folderId(m.base);
    const w = watch(m.base, {
      ignored: (p, st) => (st?.isFile() ?? false) && !m.re.test(p.split(sep).join('/')),
      depth: m.depth,
      ignoreInitial: false,
      persistent: true,
    });
    w.on('add', (p) => void addFile(p, !ready).catch((err) => log.warn({ err, path: p }, 'could not start tailing')));
    w.on('change', (p) => tailers.get(p)?.kick());
    w.on('error', (err) => log.warn({ err }, 'file watcher error'));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
    return w;
  };
  let rewatching = false;
  /**
   * The watch of a folder ends with the folder: `rm -rf vpn; mkdir vpn` left a glob over it blind
   * to every file made there until a restart. Its identity is looked at each poll; a new one is watched.
   */
  const checkBase = async (m: NonNullable<typeof matcher>) => {
    if (rewatching || closed) return;
    const id = await folderId(m.base);
    if (id === undefined || id === baseId) return;
    rewatching = true;
    try {
      log.info({ folder: m.base }, 'the glob\'s folder was made anew; watching it again');
      await watcher?.close().catch(() => undefined);
      if (closed) return;
      const w = await watchGlob(m);
      if (closed) await w.close().catch(() => undefined); // (the input closed while it started)
      else watcher = w;
    } finally {
      rewatching = false;
    }
  };
  if (matcher) {
    watcher = await watchGlob(matcher);
    ready = true;
  } else {
    await addFile(opts.path, true);
    ready = true;
    // fs events only hasten reads (polling does the work); the directory may not exist yet
    const target = resolve(opts.path);
    watcher = watch(dirname(target), { depth: 0, ignoreInitial: true, persistent: true, ignored: (p, st) => (st?.isFile() ?? false) && p !== target });
    const nudge = (p: string) => (p === target ? tailers.get(opts.path)?.kick() : undefined);
    watcher.on('add', nudge);
    watcher.on('change', nudge);
    watcher.on('error', (err) => log.debug({ err }, 'file watcher error'));
  }

  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    const now = Date.now();
    if (matcher) void checkBase(matcher).catch((err) => log.warn({ err }, 'could not watch the glob\'s folder again'));
    for (const [p, t] of tailers) {
      // a glob match that vanished long ago (deleted, rotated away and finished): let it go
      if (glob && t.missingSince !== undefined && now - t.missingSince > 60_000) {
        tailers.delete(p);
        fold(t);
        void t.close();
        continue;
      }
      // a file quiet for a minute is looked at every IDLE_EVERY polls: its watcher's events still wake
      // it at once, and polling every file every pollMs cost a core's 25 % at 1,000 idle files
      if (tick % IDLE_EVERY !== 0 && now - t.lastActivityAt > (opts.idlePollAfterMs ?? IDLE_AFTER_MS)) continue;
      t.kick();
    }
  }, pollMs);
  timer.unref?.();

  function fold(t: FileTailer): void {
    retired.received += t.stats.received;
    for (const [k, v] of Object.entries(t.stats.dropped)) retired.dropped[k] = (retired.dropped[k] ?? 0) + v;
    for (const [k, v] of Object.entries(t.stats.events)) retired.events[k] = (retired.events[k] ?? 0) + v;
  }

  log.info({ files: [...tailers.keys()] }, 'tailing');
  return {
    name,
    counters(): SourceCounters {
      const c: SourceCounters & { events: Record<string, number> } = { received: retired.received, dropped: { ...retired.dropped }, events: { ...retired.events }, files: tailers.size };
      for (const t of tailers.values()) {
        c.received += t.stats.received;
        for (const [k, v] of Object.entries(t.stats.dropped)) c.dropped[k] = (c.dropped[k] ?? 0) + v;
        for (const [k, v] of Object.entries(t.stats.events)) c.events[k] = (c.events[k] ?? 0) + v;
      }
      return c;
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await watcher?.close();
      await Promise.all([...tailers.values()].map((t) => t.close()));
    },
  };
}
