/**
 * What identifies the content of a log file, beyond its inode: fingerprints, encodings, and the
 * search for where a rotated file went.
 *
 * Fingerprint: hex sha256 of the first min(1024, offset) bytes, where offset is the checkpoint's
 * (the bytes consumed so far). A short file that is still growing thus has a fingerprint that
 * covers exactly what was read of it; it is verified against the same number of bytes later, so
 * growth never makes it "a different file". Once 1024 bytes have been consumed it stays fixed.
 *
 * Tail fingerprint: hex sha256 of the up-to-256 bytes just before offset. Files that share their
 * first KiB (the Windows DHCP audit log preamble is the same every week) differ there.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, readlink, realpath, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { crc32, createInflateRaw } from 'node:zlib';
import { constants, type Stats } from 'node:fs';
import { setTimeout as wait } from 'node:timers/promises';

export const FP_BYTES = 1024;
export const TAIL_BYTES = 256;

export function sha256hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(b, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === len ? b : b.subarray(0, got);
}

export interface ContentMark {
  offset: number;
  fingerprint: string;
  tailFingerprint?: string;
}

/** Does the file behind `fh` hold the same bytes as the ones a mark was taken of, up to its offset? */
export async function contentMatches(fh: FileHandle, size: number, mark: ContentMark): Promise<boolean> {
  if (size < mark.offset) return false;
  const head = await readAt(fh, 0, Math.min(FP_BYTES, mark.offset));
  if (sha256hex(head) !== mark.fingerprint) return false;
  if (mark.tailFingerprint !== undefined) {
    const n = Math.min(TAIL_BYTES, mark.offset);
    const tail = await readAt(fh, mark.offset - n, n);
    if (sha256hex(tail) !== mark.tailFingerprint) return false;
  } else if (mark.offset > 0 && mark.offset < size) {
    // a store that keeps no tail fingerprint: at least the checkpoint must sit just past a newline
    // (LF, or UTF-16LE's 0A 00), which an offset into a different file rarely does
    const b = await readAt(fh, Math.max(0, mark.offset - 2), Math.min(2, mark.offset));
    const lf = b[b.length - 1] === 0x0a || (b.length === 2 && b[0] === 0x0a && b[1] === 0x00);
    if (!lf) return false;
  }
  return true;
}

export type Encoding = 'utf8' | 'utf16le' | 'utf16be';

/**
 * From the first bytes of a file: UTF-16LE (BOM FF FE, or ASCII interleaved with NULs after each
 * character), UTF-16BE (BOM FE FF, or NULs before each) or UTF-8/ANSI.
 */
export function detectEncoding(head: Buffer): Encoding | undefined {
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return 'utf16le';
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return 'utf16be';
  if (head.length < 4) return undefined;
  if (head[0] !== 0 && head[1] === 0 && head[2] !== 0 && head[3] === 0) return 'utf16le';
  if (head[0] === 0 && head[1] !== 0 && head[2] === 0 && head[3] !== 0) return 'utf16be';
  return 'utf8';
}

/** Is the file UTF-16 (either byte order): a newline is two bytes. */
export const isUtf16 = (enc: Encoding | undefined): boolean => enc === 'utf16le' || enc === 'utf16be';

/**
 * Is `b[i]` (at file offset `at`) the LF of a newline: any 0A in UTF-8; in UTF-16 the LF code unit,
 * 0A 00 with the 0A at an even offset (LE) or 00 0A with the 0A at an odd one (BE). `b[i ± 1]`
 * beyond the buffer counts as a match (the caller reads one byte past its chunk where it matters).
 */
export function isNewlineAt(enc: Encoding | undefined, b: Buffer, i: number, at: number): boolean {
  if (b[i] !== 0x0a) return false;
  if (enc === 'utf16le') return at % 2 === 0 && (i + 1 >= b.length || b[i + 1] === 0);
  if (enc === 'utf16be') return at % 2 === 1 && (i === 0 || b[i - 1] === 0);
  return true;
}

const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|z|zip)$/i;

export interface Sibling {
  path: string;
  st: Stats;
  /** the log's name that this one extends (a symlink's target's, when the rotations are beside it); else the path's */
  base?: string;
}

/**
 * A listing is taken again until two in a row name the same files (name, device, inode), at most
 * this many times, LISTING_WAIT_MS × k apart: a rotation under way renames files between the
 * readdir and the stats, and a listing taken across it can miss a file or name one by another's name.
 */
const LISTINGS = 8;
const LISTING_WAIT_MS = 2;
/** findRotated starts over with a new listing when a file it opens is no longer the one listed under that name */
const FIND_ATTEMPTS = 5;

/**
 * A tailed file and the folders where its rotations are kept besides its own: logrotate's `olddir`
 * (the file input's `rotatedDir`). A rotation moved there while onsight was stopped is found by its
 * inode or content as one beside the file is; without it, such a file's unread lines were lost.
 */
export interface LogSeries {
  path: string;
  /** absolute, or relative to the file's folder (as logrotate takes `olddir`) */
  rotatedDirs: readonly string[];
  /** told when a rotatedDir cannot be listed for another reason than not being there (ENOTDIR, EACCES) */
  unlisted?: (dir: string, code: string) => void;
}
export type LogPath = string | LogSeries;

const pathOf = (p: LogPath): string => (typeof p === 'string' ? p : p.path);

/** symlinks followed at most (the kernel's own limit is 40) */
const MAX_LINKS = 40;

/**
 * Where a symlink at `path` leads (through a chain of them, the last one even when nothing is there
 * yet), or undefined when `path` is no symlink. logrotate rotates files, never symlinks: those of
 * /var/log/dhcpd.log -> /data/logs/dhcpd.log are made beside the target, under the target's name.
 */
async function linkTarget(path: string): Promise<string | undefined> {
  let p = path;
  for (let n = 0; n < MAX_LINKS; n++) {
    let to: string;
    try {
      to = await readlink(p);
    } catch {
      break; // (no symlink: EINVAL; nothing there: ENOENT)
    }
    // (a relative target is the kernel's: against the link's real folder, which may itself be reached
    // through a symlinked folder: `linkdir -> real/sub`, `../data/x` is real/data/x, review)
    let dir = dirname(p);
    try {
      dir = await realpath(dir);
    } catch {
      // (a folder not there: as written)
    }
    p = resolve(dir, to);
  }
  return p === path ? undefined : p;
}

/** A folder listed for a log's rotations, and the names they extend there. */
interface RotationDir {
  dir: string;
  bases: string[];
  /** a rotatedDir (one not listable is said) */
  olddir: boolean;
}

/**
 * The folders listed for `p`'s rotations: its own and, when `p` is a symlink, its target's; then each
 * rotatedDir (resolved against those, as logrotate resolves olddir against the file it rotates); once each.
 */
async function rotationDirs(p: LogPath): Promise<RotationDir[]> {
  const path = pathOf(p);
  const target = await linkTarget(path);
  const bases = [...new Set([basename(path), ...(target === undefined ? [] : [basename(target)])])];
  const owns = [...new Set([dirname(path), ...(target === undefined ? [] : [dirname(target)])])];
  const olddirs = typeof p === 'string' ? [] : p.rotatedDirs.flatMap((d) => owns.map((own) => resolve(own, d)));
  return [...new Set([...owns, ...olddirs])].map((dir) => ({ dir, bases, olddir: !owns.includes(dir) }));
}

/** The longest of `bases` that `name` extends with a rotation's separator (`.`, `-`, `_`); undefined: none. */
function extendedBase(name: string, bases: string[]): string | undefined {
  let best: string | undefined;
  for (const b of bases) {
    if (name.length > b.length && name.startsWith(b) && '.-_'.includes(name[b.length]) && (best === undefined || b.length > best.length)) best = b;
  }
  return best;
}

/**
 * Files beside `path` (and in its rotatedDirs) named like its rotations: `path.1`, `path-20240101`, `path.0`, `path_old`...
 * Compressed ones are left out (we cannot read them). Oldest first.
 */
export async function rotatedSiblings(path: LogPath): Promise<Sibling[]> {
  return (await settledSiblings(path)).sibs;
}

/** The compressed files beside `path` named like its rotations (`path.2.gz`), oldest first. */
export async function compressedSiblings(path: LogPath): Promise<Sibling[]> {
  return (await settledSiblings(path, true)).sibs;
}

/** The siblings, and whether two listings in a row agreed on them (else the last listing, which may be torn). */
async function settledSiblings(path: LogPath, compressed = false): Promise<{ sibs: Sibling[]; settled: boolean }> {
  let last = await listSiblings(path, compressed);
  for (let k = 1; k < LISTINGS; k++) {
    await wait(LISTING_WAIT_MS * k);
    const again = await listSiblings(path, compressed);
    if (sameFiles(last, again)) return { sibs: again, settled: true };
    last = again;
  }
  return { sibs: last, settled: false };
}

/** the same names for the same files, and no file under two names (stat'ed before and after a rename) */
function sameFiles(a: Sibling[], b: Sibling[]): boolean {
  if (a.length !== b.length) return false;
  const key = (s: Sibling) => `${s.path}\0${s.st.dev}:${s.st.ino}`;
  const seen = new Set(a.map(key));
  if (new Set(b.map((s) => `${s.st.dev}:${s.st.ino}`)).size !== b.length) return false;
  return b.every((s) => seen.has(key(s)));
}

async function listSiblings(path: LogPath, compressed = false): Promise<Sibling[]> {
  const out: Sibling[] = [];
  const seen = new Set<string>();
  for (const { dir, bases, olddir } of await rotationDirs(path)) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      // (an olddir not made yet: logrotate makes it at the first rotation, with createolddir)
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code !== 'ENOENT' && typeof path !== 'string' && olddir) path.unlisted?.(dir, code);
      continue;
    }
    for (const n of names) {
      const base = extendedBase(n, bases);
      if (base === undefined || COMPRESSED.test(n) !== compressed) continue;
      try {
        const st = await stat(join(dir, n));
        // (one file under two names, beside the log and in the olddir: a hard link, listed once)
        if (st.isFile() && !seen.has(`${st.dev}:${st.ino}`)) {
          seen.add(`${st.dev}:${st.ino}`);
          out.push({ path: join(dir, n), st, base });
        }
      } catch {
        /* gone meanwhile (the next listing will not agree) */
      }
    }
  }
  return out.sort(listingOrder(path));
}

/** The listing's order, oldest first: mtime, then the name's rotation suffix (a compression extension aside: gzip keeps the mtime). */
export function listingOrder(path: LogPath): (a: Sibling, b: Sibling) => number {
  return (a, b) => a.st.mtimeMs - b.st.mtimeMs || olderByName(rotationSuffix(path, a), rotationSuffix(path, b));
}

/**
 * Oldest first by name, for files with the same mtime (the kernel stamps files with a coarse clock:
 * two rotations within a few ms look simultaneous): `.3` before `.2` before `.1`; dated names
 * (`-20240101`) in ascending order.
 */
function olderByName(a: string, b: string): number {
  const na = /^[.\-_](\d{1,6})$/.exec(a);
  const nb = /^[.\-_](\d{1,6})$/.exec(b);
  if (na && nb) return Number(nb[1]) - Number(na[1]);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The naming series of a rotated file's suffix: numbered (`.3`, `-2`) or dated (`-20240101`), and
 * its separator. (A 6-digit monthly date, `-202401`, counts as numbered and an epoch suffix as
 * dated: each still stays within one series; their order is the listing's, mtime first.)
 */
function seriesOf(suffix: string): string | undefined {
  const num = /^([.\-_])\d{1,6}$/.exec(suffix);
  if (num) return `numbered${num[1]}`;
  // logrotate's dateext (-%Y%m%d, and dateformats adding the hour or seconds, with or without dashes)
  const dated = /^([.\-_])(\d{4}-?\d{2}-?\d{2}(?:[-_]?\d{2,10})?)$/.exec(suffix);
  if (dated) return `dated${dated[1]}${dated[2].length}`;
  return undefined;
}

/**
 * The files after `match` in the listing's order (mtime, then name) that share its naming series
 * (a second copytruncate copy, the rotations after a rename), oldest first; undefined when its
 * name is in no series we know. Another file written later beside the log (`app.log-error`,
 * `app.log.bak`) is in no series and never counts as a newer rotation.
 */
function newerInSeries(path: LogPath, sibs: Sibling[], match: Sibling): Sibling[] | undefined {
  const series = seriesOf(rotationSuffix(path, match));
  if (series === undefined) return undefined;
  return sibs.slice(sibs.indexOf(match) + 1).filter((s) => seriesOf(rotationSuffix(path, s)) === series);
}

/**
 * Open a tailed path for reading, a regular file only. O_NONBLOCK: a named pipe that appears at the
 * path (or in a glob's folder) would otherwise block open() until a writer came, holding one of
 * node's four file-I/O threads each: four such pipes stalled every file input and SIGTERM. Other
 * kinds are refused, said once per distinct error by the tailer's retry. (O_NONBLOCK changes
 * nothing for reads of a regular file.)
 */
export async function openFile(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    // another process holds a write lease on it (Samba's oplocks, an NFS server's delegation): a
    // blocking open waits for the lease break, as before (a FIFO never answers EAGAIN to a reader)
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    fh = await open(path, 'r');
  }
  let st: Stats;
  try {
    st = await fh.stat();
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
  if (st.isFile()) return fh;
  await fh.close().catch(() => undefined);
  const kind = st.isFIFO() ? 'a named pipe (FIFO)' : st.isSocket() ? 'a socket' : st.isDirectory() ? 'a directory' : 'a special file';
  throw Object.assign(new Error(`${path} is ${kind}, not a regular file: not read`), { code: 'ENOTREG' });
}

export interface Opened {
  fh: FileHandle;
  st: Stats;
}

/**
 * Open a listed file by the name it was listed under, if that name still holds it (same device and
 * inode): undefined when it was renamed away or removed since the listing. Other errors are thrown.
 */
export async function openListed(sib: Sibling): Promise<Opened | undefined> {
  let fh: FileHandle;
  try {
    fh = await openFile(sib.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (st.ino === sib.st.ino && st.dev === sib.st.dev) return { fh, st };
  } catch (err) {
    await fh.close();
    throw err;
  }
  await fh.close();
  return undefined;
}

/**
 * Where did the file a checkpoint (or our current position) refers to go? First a sibling with the
 * same inode (rename rotation), then one whose content matches up to the offset (a copy:
 * copytruncate, or a file copied over). Returns the match and the siblings newer than it.
 *
 * Each file is opened by the name it was listed under and must still be the file listed there: a
 * shift (.1 to .2, .2 to .3) between the listing and the open would otherwise find our content
 * under a name listed for another file, and the answer would carry that file's inode (read from
 * our offset: an older file's lines again) and none of the newer files (skipped). Then the listing
 * is taken again.
 */
export async function findRotated(path: LogPath, want: ContentMark & { dev?: number; ino?: number }, exclude?: FileId, byInodeOnly = false): Promise<{ match: Sibling; newer: Sibling[] } | undefined> {
  for (let attempt = 0; attempt < FIND_ATTEMPTS; attempt++) {
    const { sibs, settled } = await settledSiblings(path);
    // a listing that never settled may lack the file: listed again while attempts remain, then taken as it is
    if (!settled && attempt < FIND_ATTEMPTS - 1) continue;
    const r = await findRotatedIn(path, sibs, want, exclude, byInodeOnly);
    if (r !== 'moved') return r;
  }
  return undefined;
}

async function findRotatedIn(path: LogPath, sibs: Sibling[], want: ContentMark & { dev?: number; ino?: number }, exclude: FileId | undefined, byInodeOnly: boolean): Promise<{ match: Sibling; newer: Sibling[] } | undefined | 'moved'> {
  const byIno = want.ino !== undefined ? sibs.findIndex((s) => s.st.ino === want.ino && (want.dev === undefined || s.st.dev === want.dev)) : -1;
  const check = async (s: Sibling): Promise<boolean | 'moved'> => {
    let opened: Opened | undefined;
    try {
      opened = await openListed(s);
      if (!opened) return 'moved';
      return await contentMatches(opened.fh, opened.st.size, want);
    } catch {
      return false;
    } finally {
      await opened?.fh.close();
    }
  };
  if (byIno >= 0) {
    const ok = await check(sibs[byIno]);
    if (ok === 'moved') return 'moved';
    // the newer files of its naming series; a name in no series we know: those written later, but
    // copies of it (logrotate's renamecopy: vpn.log.tmp, our file, is being copied into the olddir
    // as vpn.log.1, a new inode written after it; read from its start, its lines came twice)
    if (ok) return { match: sibs[byIno], newer: newerInSeries(path, sibs, sibs[byIno]) ?? (await notCopiesOf(sibs[byIno], sibs.slice(byIno + 1))) };
  }
  if (byInodeOnly) return undefined;
  // by content, newest first (the most recent copy is the one that continues where we were). The
  // newer files of its naming series follow it (copytruncate twice while we were down or paused:
  // `.1` holds what was written between the two truncations); a copy in no series has none: a
  // later-written file beside it (`app.log-error`) would be read from its start at every truncation.
  for (let i = sibs.length - 1; i >= 0; i--) {
    if (isFile(sibs[i], exclude)) continue;
    const ok = await check(sibs[i]);
    if (ok === 'moved') return 'moved';
    if (ok) return { match: sibs[i], newer: (newerInSeries(path, sibs, sibs[i]) ?? []).filter((s) => !isFile(s, exclude)) };
  }
  return undefined;
}

/** A file by device and inode (an inode number alone repeats across devices: an olddir on another one). */
export interface FileId {
  dev: number;
  ino: number;
}

const isFile = (s: Sibling, id: FileId | undefined): boolean => id !== undefined && s.st.ino === id.ino && s.st.dev === id.dev;

/**
 * `later` without the files that are a copy, whole or under way, of `of`: no larger, and the same
 * bytes at the start and at their end (FP_BYTES and TAIL_BYTES windows). A file that cannot be
 * read is kept (as it was: the reader says why).
 */
async function notCopiesOf(of: Sibling, later: Sibling[]): Promise<Sibling[]> {
  if (!later.length) return later;
  let src: Opened | undefined;
  try {
    src = await openListed(of);
  } catch {
    return later;
  }
  if (!src) return later;
  try {
    const out: Sibling[] = [];
    for (const s of later) if (!(await isCopy(src, s))) out.push(s);
    return out;
  } finally {
    await src.fh.close();
  }
}

async function isCopy(src: Opened, s: Sibling): Promise<boolean> {
  const size = s.st.size;
  if (size === 0 || size > src.st.size) return false;
  let fh: FileHandle | undefined;
  try {
    fh = await openFile(s.path);
    const head = Math.min(FP_BYTES, size);
    const tail = Math.min(TAIL_BYTES, size);
    return (await readAt(fh, 0, head)).equals(await readAt(src.fh, 0, head)) && (await readAt(fh, size - tail, tail)).equals(await readAt(src.fh, size - tail, tail));
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Compressed rotations onsight reads (gzip: logrotate's default `compresscmd`); the others are named in a warning. */
const GZIP = /\.gz$/i;

export function isGzip(path: string): boolean {
  return GZIP.test(path);
}

/**
 * The gzip rotations after `match` (a plain rotation) in its naming series, oldest first: copies
 * compressed since (copytruncate with compress while we read `match`).
 */
export async function newerCompressed(path: LogPath, match: Sibling): Promise<Sibling[]> {
  const series = seriesOf(rotationSuffix(path, match));
  if (series === undefined) return [];
  const order = listingOrder(path);
  return (await compressedSiblings(path)).filter((x) => isGzip(x.path) && seriesOf(rotationSuffix(path, x)) === series && order(match, x) < 0).sort(order);
}

/** The suffix of a rotation's name after the log's, without a compression extension (`.2` for `app.log.2.gz`). */
function rotationSuffix(path: LogPath, s: Sibling): string {
  return basename(s.path).slice((s.base ?? basename(pathOf(path))).length).replace(COMPRESSED, '');
}

/** A search of the compressed rotations for what a checkpoint refers to. */
export interface CompressedSearch {
  /**
   * the gzip rotation that holds it, open (the caller closes `fh`: held by its fd, a rename after
   * the search cannot swap another file in), and the rotations newer than it in its series (plain
   * or gzip), oldest first
   */
  found?: { match: Sibling; fh: FileHandle; newer: Sibling[] };
  /** compressed rotations onsight cannot read (`.xz`, `.bz2`, `.zst`...): one of them may hold it */
  unreadable: string[];
}

/**
 * Where did the file a checkpoint refers to go, when no plain sibling has it (findRotated)? Into a
 * compressed rotation: logrotate's `compress` while onsight was down (without `delaycompress` at the
 * first rotation, with it at the second). Gzip rotations are read newest first, each only as far as
 * it can match (its first KiB, then up to the checkpoint's offset), and matched by both fingerprints
 * (without a tail fingerprint, from an older store, a rotation sharing our first KiB cannot be told
 * from ours: nothing is matched). The newer rotations of its naming series follow it
 * (`app.log.2.gz`, then `app.log.1`, then the live file). A rotation that cannot be opened or read
 * (permissions, removed meanwhile, not gzip) does not match.
 */
export async function findCompressed(path: LogPath, want: ContentMark): Promise<CompressedSearch> {
  // (a rotation renamed between the listing and its open, `.1.gz` shifted to `.2.gz` by a logrotate
  // run meanwhile: the search starts over with a new listing, settled, as findRotated's is)
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= FIND_ATTEMPTS;
    const { sibs, settled } = await settledSiblings(path, true);
    // (a listing taken across a rename may lack the file: listed again while attempts remain)
    if (!settled && !last) continue;
    const r = await findCompressedIn(path, sibs, want, last);
    if (r !== 'moved') return r;
  }
}

/**
 * findCompressed over one listing of the compressed siblings: 'moved' when one of them was renamed
 * or removed since (on the `last` try, passed over instead).
 */
export async function findCompressedIn(path: LogPath, packed: Sibling[], want: ContentMark, last = false): Promise<CompressedSearch | 'moved'> {
  const unreadable = packed.filter((s) => !isGzip(s.path)).map((s) => s.path);
  if (want.tailFingerprint === undefined) return { unreadable };
  const gz = packed.filter((s) => isGzip(s.path));
  for (let i = gz.length - 1; i >= 0; i--) {
    let opened: Opened | undefined;
    try {
      opened = await openListed(gz[i]);
    } catch {
      continue; // (unreadable: not ours to match)
    }
    if (!opened) {
      if (last) continue;
      return 'moved';
    }
    let matches: boolean;
    try {
      matches = await gzipMatches(opened.fh, want);
    } catch (err) {
      await opened.fh.close().catch(() => undefined); // (the search fails as before, without leaking the fd)
      throw err;
    }
    if (!matches) {
      await opened.fh.close().catch(() => undefined);
      continue;
    }
    const series = seriesOf(rotationSuffix(path, gz[i]));
    if (series === undefined) return { found: { match: gz[i], fh: opened.fh, newer: [] }, unreadable };
    // (the listing's order over plain and gzip rotations alike)
    const order = listingOrder(path);
    // (each file once, and never the match itself: a torn last listing may name one file twice)
    const seen = new Set([`${opened.st.dev}:${opened.st.ino}`]);
    const newer = [...(await settledSiblings(path)).sibs, ...gz]
      .filter((x) => order(gz[i], x) < 0 && seriesOf(rotationSuffix(path, x)) === series)
      .sort(order)
      .filter((x) => !seen.has(`${x.st.dev}:${x.st.ino}`) && seen.add(`${x.st.dev}:${x.st.ino}`));
    return { found: { match: gz[i], fh: opened.fh, newer }, unreadable };
  }
  return { unreadable };
}

/** Bytes read from a gzip rotation at a time */
const GZ_CHUNK = 64 * 1024;
/** a member header longer than this (a name or comment with no end) is damage */
const GZ_HEADER_MAX = 128 * 1024;
/**
 * How far a failed member's output may be from the length in its trailer for that length to be
 * taken: a changed byte of deflate data shifts the output a few hundred bytes at most (400 changed
 * bytes of a DHCP log: 230), and a damaged length writes no gigabytes of blanks.
 */
const ISIZE_SLACK = 64 * 1024;

/**
 * A file read once from its start, in order: what one gzip member's decoding read beyond its end
 * is kept for the next, so each byte is read once (a member read on to the file's end each time
 * read 32 MB of members as 2.6 GB, review).
 */
class InOrder {
  /** the file position of `buf`'s first byte */
  pos = 0;
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;

  constructor(private readonly fh: FileHandle) {}

  /** at least `n` bytes from `pos` (fewer: the file ends first), not taken */
  async want(n: number): Promise<Buffer> {
    while (this.buf.length < n && !this.eof) {
      const b = Buffer.allocUnsafe(GZ_CHUNK);
      const { bytesRead } = await this.fh.read(b, 0, b.length, this.pos + this.buf.length);
      if (bytesRead === 0) this.eof = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, b.subarray(0, bytesRead)]) : b.subarray(0, bytesRead);
    }
    return this.buf;
  }

  skip(n: number): void {
    this.buf = this.buf.subarray(n);
    this.pos += n;
  }

  /** the bytes that follow (at least one), taken; undefined at the file's end */
  async next(): Promise<Buffer | undefined> {
    const b = await this.want(1);
    if (b.length === 0) return undefined;
    this.skip(b.length);
    return b;
  }

  /** the end of what next() gave, given back */
  unread(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([b, this.buf]) : b;
    this.pos -= b.length;
  }
}

/** newline code units for blanked output, from an even position: 0A (UTF-8), 0A 00 (UTF-16LE), 00 0A (UTF-16BE) */
const FILL = {
  utf8: Buffer.alloc(GZ_CHUNK + 1, 0x0a),
  utf16le: Buffer.alloc(GZ_CHUNK + 1, Buffer.from([0x0a, 0x00])),
  utf16be: Buffer.alloc(GZ_CHUNK + 1, Buffer.from([0x00, 0x0a])),
};

/** `len` (at most GZ_CHUNK) bytes of blanked output at position `at`: empty lines to a reader of `enc` (isNewlineAt) */
function fillAt(enc: Encoding | undefined, at: number, len: number): Buffer {
  return FILL[enc ?? 'utf8'].subarray(at % 2, (at % 2) + len);
}

/**
 * The first and the last line end in `c`, the output from `at` (`prev`: its byte before, -1 at the
 * start): positions just after a newline as the reader sees one (isNewlineAt: in UTF-16 the LF
 * code unit, 0A 00 or 00 0A at an even position).
 */
function lineEnds(enc: Encoding | undefined, c: Buffer, at: number, prev: number): { first?: number; last?: number } {
  if (!isUtf16(enc)) {
    const i = c.indexOf(0x0a);
    return i < 0 ? {} : { first: at + i + 1, last: at + c.lastIndexOf(0x0a) + 1 };
  }
  const le = enc === 'utf16le';
  let first: number | undefined;
  let last: number | undefined;
  // (LE: the 0A ended the chunk before, its 00 begins this one)
  if (le && prev === 0x0a && at % 2 === 1 && c[0] === 0) first = last = at + 1;
  for (let i = c.indexOf(0x0a); i >= 0; i = c.indexOf(0x0a, i + 1)) {
    const x = at + i;
    const end = le ? (x % 2 === 0 && i + 1 < c.length && c[i + 1] === 0 ? x + 2 : -1) : x % 2 === 1 && (i > 0 ? c[i - 1] : prev) === 0 ? x + 1 : -1;
    if (end < 0) continue;
    first ??= end;
    last = end;
  }
  return { first, last };
}

/** What a CheckedGunzip tells as it decodes, in the order of its output. */
interface GunzipSink {
  /** decompressed bytes at `at` of the output, as they come (a member's check comes at its end: a bad one's too) */
  data(chunk: Buffer, at: number): Promise<void> | void;
  /** output [from, to) reads as no lines (blanked: a member that failed its check, and the lines it shares with the members beside it) */
  blank(from: number, to: number): Promise<void> | void;
  /** after each chunk's line ends are known (`member` false), and after each member's check (true) */
  step?(member: boolean): void;
}

/** What a whole decode found: `size` bytes of output to read (all of it, or up to the last line end before a break). */
interface Gunzipped {
  size: number;
  broken?: string;
  /** bytes of the members that failed their check */
  damaged: number;
}

/**
 * A gzip file decoded member by member in one pass (RFC 1952: `cat a.gz b.gz` is one file), each
 * member's raw deflate body inflated and checked against its own trailer here: node's gunzip
 * stopped at the first failed check, losing the members after it. A member whose CRC-32 or length
 * is wrong is not trusted: a changed byte of deflate data mostly decodes without an error into
 * fragments of nearby lines spliced together (a DHCP log: 397 of 400 changed bytes, ~500 wrong
 * address-MAC pairs each), from a point nothing tells; and a wrong CRC alone cannot be told from
 * that. Its output keeps its place (failed), blanked, with the lines it shares with its neighbours
 * (cut lines), to newline code units of the output's encoding: no lines to a reader, and the
 * members after it keep theirs. inflate's copy and gzipMatches both decode
 * through this, so a checkpoint taken in the copy is found again at a restart (a member left out
 * of the copy moved the lines after it: their checkpoints matched nothing, review).
 *
 * A break ends what can be read: the file ending inside a member (truncated: what came before is
 * exact, kept up to its last line end) or a deflate stream that does not decode (that member's
 * bytes before the error are dropped too: unverified, and a changed byte decodes on a while before
 * an error, if at all). Bytes after a member that start no member end the file (NULs: padding, as
 * gunzip takes them; anything else also said).
 */
class CheckedGunzip {
  /** the output's encoding: from its first 4 bytes, as the reader detects it */
  enc: Encoding | undefined;
  encKnown = false;
  /** bytes of output so far */
  out = 0;
  /** the last line end so far (0: the output's start) */
  lastEnd = 0;
  /** the member being decoded (n 0: none yet): where its output starts, and the first line end at or after that */
  member: { n: number; start: number; firstEnd?: number } = { n: 0, start: 0 };
  private damaged = 0;
  private readonly said: string[] = [];
  /** a failed member's last line goes on in what follows: blanked up to its end */
  private blanking = false;
  /** the output before the encoding is known (under 4 bytes), its line ends not looked for yet */
  private early: Buffer[] = [];
  /** the output's last byte (-1: none) */
  private prev = -1;
  private readonly rd: InOrder;

  constructor(fh: FileHandle, private readonly sink: GunzipSink, private readonly signal?: AbortSignal) {
    this.rd = new InOrder(fh);
  }

  async run(): Promise<Gunzipped> {
    for (let n = 1; ; n++) {
      const h = await this.header(n);
      if (h === 'end') break;
      if (h !== 'body') return this.broke(h, await this.lastEndNow());
      const start = this.out;
      const lineStart = this.lastEnd;
      this.member = { n, start, firstEnd: lineStart === start ? start : undefined };
      const m = await this.body();
      if (m.error !== undefined) {
        if (m.cut) return this.broke(`member ${n}: ${m.error}`, await this.lastEndNow());
        return this.broke(`member ${n}: ${m.error} (the ${this.out - start} bytes it gave before left out)`, lineStart);
      }
      await this.lastEndNow();
      const t = await this.rd.want(8);
      if (t.length < 8) return this.broke(`member ${n}: unexpected end of file`, this.lastEnd);
      const crcOk = t.readUInt32LE(0) === m.crc;
      const lenOk = t.readUInt32LE(4) === (this.out - start) % 2 ** 32;
      this.rd.skip(8);
      if (!crcOk || !lenOk) await this.failed(n, start, lineStart, crcOk, t.readUInt32LE(4));
      this.sink.step?.(true);
    }
    await this.lastEndNow();
    return { size: this.out, broken: this.said.length ? this.said.join('; ') : undefined, damaged: this.damaged };
  }

  /**
   * Member `n`, its output from `start` (the line it begins in from `lineStart`), failed its check:
   * blanked. Its data damaged and its trailer whole, it takes the length written there (the members
   * after it stay where they were: a UTF-16 file on its code units, and a checkpoint taken before
   * compression is found in them); its output is shorter or longer by as much. The line after it is
   * blanked too, but where it began and ended on a line end (its own line ends are not trusted).
   */
  private async failed(n: number, start: number, lineStart: number, crcOk: boolean, isize: number): Promise<void> {
    const raw = this.out - start;
    const len = !crcOk && raw < 2 ** 32 - ISIZE_SLACK && Math.abs(isize - raw) <= ISIZE_SLACK ? isize : raw;
    const aligned = lineStart === start && this.lastEnd === this.out;
    this.out = start + len;
    this.damaged += len;
    this.said.push(`member ${n} (decompressed bytes ${start}-${this.out}): incorrect ${crcOk ? 'length' : 'data'} check, its lines left out`);
    await this.sink.blank(lineStart, this.out);
    this.blanking = !aligned;
    this.lastEnd = aligned ? this.out : lineStart;
    // (a newline is looked for in the output after it only: a blank's last 0A and a next 00 would end the line early)
    this.prev = -1;
  }

  private broke(why: string, size: number): Gunzipped {
    this.said.push(why);
    return { size, broken: this.said.join('; '), damaged: this.damaged };
  }

  /**
   * The member header at the reader skipped (RFC 1952 §2.3): 'body'; 'end': no member follows (the
   * file's end, or NULs after a member); else what is wrong.
   */
  private async header(n: number): Promise<'body' | 'end' | string> {
    const b = await this.rd.want(10);
    if (n > 1 && (b.length === 0 || b[0] === 0)) return 'end';
    if (b.length === 0) return 'unexpected end of file';
    if (b[0] !== 0x1f || (b.length > 1 && b[1] !== 0x8b)) return n === 1 ? 'incorrect header check (not gzip)' : `bytes after member ${n - 1} that start no gzip member`;
    const cut = `member ${n}: unexpected end of file in its header`;
    if (b.length < 10) return cut;
    if (b[2] !== 8) return `member ${n}: unknown compression method`;
    const flags = b[3];
    if (flags & 0xe0) return `member ${n}: unknown header flags set`;
    let p = 10;
    if (flags & 0x04) {
      // FEXTRA
      const x = await this.rd.want(p + 2);
      if (x.length < p + 2) return cut;
      p += 2 + x.readUInt16LE(p);
    }
    for (const bit of [0x08, 0x10]) {
      // FNAME, FCOMMENT: zero-terminated
      if (!(flags & bit)) continue;
      for (let from = p; ; ) {
        const x = await this.rd.want(from + 1);
        if (x.length <= from) return cut;
        const z = x.indexOf(0, from);
        if (z >= 0) {
          p = z + 1;
          break;
        }
        if (x.length > GZ_HEADER_MAX) return `member ${n}: header over ${GZ_HEADER_MAX} bytes`;
        from = x.length;
      }
    }
    if (flags & 0x02) p += 2; // FHCRC
    if ((await this.rd.want(p)).length < p) return cut;
    this.rd.skip(p);
    return 'body';
  }

  /**
   * The deflate body at the reader inflated (raw: nothing checks a trailer), fed a chunk at a time
   * and each one's processing waited for: where the stream ends, the rest of that chunk is given
   * back to the reader (zlib's bytesWritten counts the input it used). Its output's CRC-32; `cut`:
   * the file ended inside it.
   */
  private async body(): Promise<{ crc: number; error?: string; cut?: boolean }> {
    const inf = createInflateRaw({ chunkSize: GZ_CHUNK });
    let crc = 0;
    let sinkError: { err: unknown } | undefined;
    let failure: unknown;
    let done = false;
    const settled = (async () => {
      for await (const c of inf as AsyncIterable<Buffer>) {
        crc = crc32(c, crc);
        try {
          await this.output(c);
        } catch (err) {
          sinkError = { err };
          throw err;
        }
      }
    })().then(
      () => void (done = true),
      (err: unknown) => void ((done = true), (failure = err)),
    );
    try {
      for (;;) {
        if (this.signal?.aborted) throw new Error('stopped');
        const chunk = await this.rd.next();
        if (chunk === undefined) {
          inf.end();
          break;
        }
        const before = inf.bytesWritten;
        await Promise.race([new Promise<void>((res) => inf.write(chunk, () => res())), settled]);
        const used = inf.bytesWritten - before;
        if (used < chunk.length) {
          this.rd.unread(chunk.subarray(used));
          break;
        }
        if (done) break;
      }
      await settled;
    } finally {
      inf.destroy();
    }
    if (sinkError) throw sinkError.err;
    if (this.signal?.aborted) throw new Error('stopped');
    if (failure === undefined) return { crc };
    return { crc, error: (failure as Error).message, cut: (failure as { code?: unknown }).code === 'Z_BUF_ERROR' };
  }

  /** a chunk of output: told, its line ends looked for, a failed member's last line blanked on */
  private async output(c: Buffer): Promise<void> {
    const at = this.out;
    await this.sink.data(c, at);
    this.out += c.length;
    if (!this.encKnown) {
      this.early.push(c);
      if (this.out >= 4) await this.lastEndNow();
    } else await this.scan(c, at);
    this.sink.step?.(false);
  }

  private async scan(c: Buffer, at: number): Promise<void> {
    const { first, last } = lineEnds(this.enc, c, at, this.prev);
    this.prev = c[c.length - 1];
    if (first !== undefined && this.member.firstEnd === undefined && first >= this.member.start) this.member.firstEnd = first;
    if (last !== undefined) this.lastEnd = last;
    if (this.blanking) {
      await this.sink.blank(at, first ?? at + c.length);
      this.blanking = first === undefined;
    }
  }

  /** the last line end so far, the encoding decided first when under 4 bytes have come */
  private async lastEndNow(): Promise<number> {
    if (!this.encKnown) {
      const early = this.early;
      this.early = [];
      this.enc = detectEncoding(Buffer.concat(early).subarray(0, 4));
      this.encKnown = true;
      for (let at = 0, i = 0; i < early.length; at += early[i].length, i++) await this.scan(early[i], at);
    }
    return this.lastEnd;
  }
}

/** a decode stopped on purpose: the answer is known */
class Enough extends Error {
  constructor(readonly answer: boolean) {
    super('enough');
  }
}

/** bytes of a decode's output kept to be fingerprinted: [from, from + raw.length), and the blanked ranges over them */
interface Window {
  from: number;
  raw: Buffer;
  fp: string;
  blanks: Array<[number, number]>;
  /** false: cannot be what the mark was taken of, whichever member fails its check; true: may be (or cannot be told early) */
  possible?: boolean;
}

/**
 * Does the gzip file behind `fh` hold, decompressed, the bytes `mark` was taken of (both
 * fingerprints, and at least `mark.offset` bytes)? Decoded as inflate does (CheckedGunzip), in one
 * pass and only as far as the answer needs. The bytes as decoded (raw) match: yes, at the offset (a
 * checkpoint taken before the file was compressed; the copy has them at the same place, blanked
 * or not). Else they may match as blanked (a checkpoint taken in a copy with a failed member before
 * it): decoded on to the end of the member holding the line that ends at or after the offset,
 * then blanked as the copy was. A stranger stops after its first KiB's line when neither its bytes
 * nor newlines there match. Not gzip, or broken before the offset: no.
 */
async function gzipMatches(fh: FileHandle, mark: ContentMark): Promise<boolean> {
  if (mark.tailFingerprint === undefined) return false;
  const end = mark.offset;
  const head: Window = { from: 0, raw: Buffer.alloc(Math.min(FP_BYTES, end)), fp: mark.fingerprint, blanks: [] };
  const tail: Window = { from: end - Math.min(TAIL_BYTES, end), raw: Buffer.alloc(Math.min(TAIL_BYTES, end)), fp: mark.tailFingerprint, blanks: [] };
  const windows = [head, tail];
  const to = (w: Window) => w.from + w.raw.length;
  const asRead = (w: Window): Buffer => {
    const b = Buffer.from(w.raw);
    for (const [a, z] of w.blanks) {
      const from = Math.max(a, w.from);
      fillAt(g.enc, from, Math.min(z, to(w)) - from).copy(b, from - w.from);
    }
    return b;
  };
  // (all of the window's lines in the member being decoded, and its output, shorter by its
  // trailer's length if it fails, still over them: it reads as its bytes, or, that member failing,
  // as newlines; neither matching, nothing can)
  const possible = (w: Window): boolean | undefined => {
    const m = g.member;
    if (m.start > w.from || !g.encKnown) return m.start > w.from || undefined;
    if (m.firstEnd === undefined || m.firstEnd > w.from || g.lastEnd < to(w) || g.out < to(w) + ISIZE_SLACK) return undefined;
    return sha256hex(w.raw) === w.fp || sha256hex(fillAt(g.enc, w.from, w.raw.length)) === w.fp;
  };
  let rawChecked = false;
  const g: CheckedGunzip = new CheckedGunzip(fh, {
    data(chunk, at) {
      for (const w of windows) {
        if (at < to(w) && at + chunk.length > w.from) chunk.copy(w.raw, Math.max(0, at - w.from), Math.max(0, w.from - at), Math.min(chunk.length, to(w) - at));
      }
    },
    blank(a, z) {
      for (const w of windows) if (a < to(w) && z > w.from) w.blanks.push([a, z]);
    },
    step(member) {
      if (g.out >= to(head)) head.possible ??= possible(head);
      if (head.possible === false) throw new Enough(false);
      if (g.out < end) return;
      if (!rawChecked) {
        rawChecked = true;
        if (windows.every((w) => sha256hex(w.raw) === w.fp)) throw new Enough(true);
      }
      tail.possible ??= possible(tail);
      if (tail.possible === false) throw new Enough(false);
      // every line the mark's bytes are in, and each member they lie in, checked: they are as the copy has them
      if (member && g.lastEnd >= end) throw new Enough(windows.every((w) => sha256hex(asRead(w)) === w.fp));
    },
  });
  let r: Gunzipped;
  try {
    r = await g.run();
  } catch (err) {
    return err instanceof Enough && err.answer;
  }
  if (g.member.n === 0 || r.size < end) return false;
  return windows.every((w) => sha256hex(asRead(w)) === w.fp);
}

/**
 * A gzip rotation's decompressed copy: all of it, or (`broken` says why) what came out before the
 * stream broke; `damaged`: bytes of members that failed their check, blanked in it.
 */
export type Inflated = { fh: FileHandle; size: number; broken?: string; damaged?: number } | { error: string };

/**
 * Decompress the gzip file behind `gz` (which the caller closes) into a file of its own in `dir`
 * (the OS's temp directory: the systemd unit's is private), unlinked before anything is written
 * (its space is freed when it is closed, crash or not), and open for reading. Decoded and checked
 * member by member (CheckedGunzip): a member that fails its check is blanked in place, those after
 * it read; a stream that breaks (a truncated or corrupt rotation) keeps the whole lines before the
 * break; a copy that cannot be written (a full disk) is an error. `signal` stops it (the input closing).
 */
export async function inflate(gz: FileHandle, signal?: AbortSignal, dir = tmpdir()): Promise<Inflated> {
  let out: FileHandle;
  try {
    const tmp = await mkdtemp(join(dir, 'onsight-rotated-'));
    try {
      out = await open(join(tmp, 'log'), 'w+', 0o600);
    } finally {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
  } catch (err) {
    return { error: `no temporary copy: ${(err as Error).message}` };
  }
  let writeError: Error | undefined;
  // (the copy's end as written: a failed member that takes a shorter length leaves bytes after its new end)
  let extent = 0;
  const put = async (b: Buffer, at: number): Promise<void> => {
    try {
      for (let done = 0; done < b.length; ) {
        const { bytesWritten } = await out.write(b, done, b.length - done, at + done);
        if (bytesWritten === 0) throw new Error('no byte written');
        done += bytesWritten;
      }
      extent = Math.max(extent, at + b.length);
    } catch (err) {
      writeError ??= err as Error;
      throw err;
    }
  };
  try {
    const g: CheckedGunzip = new CheckedGunzip(
      gz,
      {
        data: put,
        async blank(from, to) {
          for (let at = from; at < to; at += GZ_CHUNK) await put(fillAt(g.enc, at, Math.min(GZ_CHUNK, to - at)), at);
        },
      },
      signal,
    );
    const r = await g.run();
    if (signal?.aborted) throw new Error('stopped');
    // (a break: the copy ends after its last whole line; `lease 10.9.0.1` of `10.9.0.15` would be a sighting of the wrong address)
    if (r.size < extent) await out.truncate(r.size);
    if (r.size === 0 && r.broken !== undefined) throw new Error(r.broken);
    return { fh: out, size: r.size, broken: r.broken, damaged: r.damaged || undefined };
  } catch (err) {
    await out.close().catch(() => undefined);
    if (writeError) return { error: `writing the decompressed copy: ${writeError.message}` };
    return { error: signal?.aborted ? 'stopped' : (err as Error).message };
  }
}
