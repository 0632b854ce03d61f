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
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createInflateRaw } from 'node:zlib';
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

/**
 * The bytes of the file behind `fh` from its start, by positioned reads: the handle stays open
 * whatever the pipeline does (a FileHandle's own read stream closes it when destroyed).
 */
async function* bytesOf(fh: FileHandle, from = 0): AsyncGenerator<Buffer> {
  for (let pos = from; ; ) {
    const b = Buffer.allocUnsafe(64 * 1024);
    const { bytesRead } = await fh.read(b, 0, b.length, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield b.subarray(0, bytesRead);
  }
}

/** a read stopped on purpose: the answer is known */
class Enough extends Error {}

/**
 * Does the gzip file behind `fh` hold, decompressed, the bytes `mark` was taken of (both
 * fingerprints, and at least `mark.offset` bytes)? Reads only as far as the answer needs: its
 * first KiB (a stranger stops there), then up to the offset, keeping just those and the bytes
 * before the offset. Not gzip, or broken before the offset: no.
 */
async function gzipMatches(fh: FileHandle, mark: ContentMark, body?: number): Promise<boolean> {
  if (mark.tailFingerprint === undefined) return false;
  const headLen = Math.min(FP_BYTES, mark.offset);
  const tailLen = Math.min(TAIL_BYTES, mark.offset);
  const head = Buffer.alloc(headLen);
  const tail = Buffer.alloc(tailLen);
  const tailFrom = mark.offset - tailLen;
  let pos = 0;
  let headChecked = headLen === 0;
  const take = new Writable({
    write(chunk: Buffer, _enc, done) {
      const end = pos + chunk.length;
      if (pos < headLen) chunk.copy(head, pos, 0, Math.min(chunk.length, headLen - pos));
      if (end > tailFrom && pos < mark.offset) chunk.copy(tail, Math.max(0, pos - tailFrom), Math.max(0, tailFrom - pos), Math.min(chunk.length, mark.offset - pos));
      pos = end;
      if (!headChecked && pos >= headLen) {
        headChecked = true;
        if (sha256hex(head) !== mark.fingerprint) return done(new Enough());
      }
      done(pos >= mark.offset ? new Enough() : null);
    },
  });
  try {
    await decompress(fh, take, body);
  } catch (err) {
    // (a wrong CRC: output the failed check's error overtook was lost, and the offset may lie in it)
    if (isTrailerCheckError(err) && body === undefined) {
      const at = await gzipBodyAt(fh);
      return at !== undefined && gzipMatches(fh, mark, at);
    }
    if (!(err instanceof Enough)) return false;
  }
  return pos >= mark.offset && sha256hex(head) === mark.fingerprint && sha256hex(tail) === mark.tailFingerprint;
}

/** A gzip rotation's decompressed copy: all of it, or (`broken` says why) what came out before the stream broke. */
export type Inflated = { fh: FileHandle; size: number; broken?: string } | { error: string };

/**
 * Decompress the gzip file behind `gz` (which the caller closes) into a file of its own in `dir`
 * (the OS's temp directory: the systemd unit's is private), unlinked before anything is written
 * (its space is freed when it is closed, crash or not), and open for reading. A stream that breaks
 * (a truncated or corrupt rotation) keeps what it gave; a copy that cannot be written (a full
 * disk) is an error. `signal` stops it (the input closing).
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
  // the last write in flight (a pass that fails is waited for before the next begins)
  let inFlight: Promise<unknown> = Promise.resolve();
  // (a Writable, not a loop over the stream: what the decompressor gave before it broke is all written)
  const copyTo = () => {
    let pos = 0;
    return new Writable({
      write(chunk: Buffer, _enc, done) {
        inFlight = out.write(chunk, 0, chunk.length, pos).then(
          () => {
            pos += chunk.length;
            done();
          },
          (err: Error) => {
            writeError = err;
            done(err);
          },
        );
      },
    });
  };
  // (the pass's failure, if it broke)
  const pass = async (body?: number): Promise<unknown> => {
    try {
      await decompress(gz, copyTo(), body, signal);
      return undefined;
    } catch (err) {
      return err;
    } finally {
      await inFlight.catch(() => undefined);
    }
  };
  let failure = await pass();
  // a wrong CRC or length: the stream decompressed whole, but the error destroyed the decompressor
  // with output the copy had not taken yet (the last 12 KiB of lines). Again, its deflate body alone:
  // nothing checks the trailer then. (Longer only: a multi-member file's second pass stops after its first member.)
  if (isTrailerCheckError(failure) && !writeError && !signal?.aborted) {
    const first = (await out.stat()).size;
    const body = await gzipBodyAt(gz);
    if (body !== undefined) {
      await out.truncate(0);
      const again = await pass(body);
      if (again === undefined && (await out.stat()).size < first) {
        await out.truncate(0);
        await pass();
      } else if (again !== undefined) failure = again;
    }
  }
  const broken = failure === undefined ? undefined : (failure as Error).message;
  try {
    if (writeError) throw new Error(`writing the decompressed copy: ${writeError.message}`);
    if (signal?.aborted) throw new Error('stopped');
    let size = (await out.stat()).size;
    // a break leaves a line cut at a random byte (`lease 10.9.0.1` of `10.9.0.15`): the copy ends after its last whole line
    if (broken !== undefined) size = await endAfterLastLine(out, size);
    if (size === 0 && broken !== undefined) throw new Error(broken);
    return { fh: out, size, broken };
  } catch (err) {
    await out.close().catch(() => undefined);
    return { error: (err as Error).message };
  }
}

/**
 * The gzip file behind `fh` decompressed into `dest`: the whole file through gunzip, or, given
 * `body` (gzipBodyAt), its first member's deflate body alone, its trailer unchecked.
 */
function decompress(fh: FileHandle, dest: Writable, body?: number, signal?: AbortSignal): Promise<void> {
  return body === undefined
    ? pipeline(bytesOf(fh), createGunzip(), dest, { signal })
    : pipeline(bytesOf(fh, body), createInflateRaw(), dest, { signal });
}

/** zlib's failed trailer check (CRC-32 or length): the deflate stream itself was whole */
function isTrailerCheckError(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'Z_DATA_ERROR' && /incorrect (data|length) check/.test((err as Error).message);
}

/** Where the deflate body of the gzip file behind `fh` begins: after its member header (RFC 1952 §2.3); undefined when the header is not whole. */
async function gzipBodyAt(fh: FileHandle): Promise<number | undefined> {
  const b = await readAt(fh, 0, 64 * 1024);
  if (b.length < 10 || b[0] !== 0x1f || b[1] !== 0x8b || b[2] !== 8) return undefined;
  const flags = b[3];
  let p = 10;
  if (flags & 0x04) p = b.length >= p + 2 ? p + 2 + b.readUInt16LE(p) : Infinity; // FEXTRA
  for (const bit of [0x08, 0x10]) { // FNAME, FCOMMENT: zero-terminated
    if (!(flags & bit) || p >= b.length) continue;
    const z = b.indexOf(0, p);
    p = z < 0 ? Infinity : z + 1;
  }
  if (flags & 0x02) p += 2; // FHCRC
  return p <= b.length ? p : undefined;
}

/** Cut the file behind `fh` (`size` bytes) after its last whole line (isNewlineAt); its new size. */
async function endAfterLastLine(fh: FileHandle, size: number): Promise<number> {
  const enc = detectEncoding(await readAt(fh, 0, Math.min(4, size)));
  for (let end = size; end > 0; ) {
    const from = Math.max(0, end - 64 * 1024);
    // (one byte past `end` too: a UTF-16LE newline's 00 may lie just beyond the chunk)
    const b = await readAt(fh, from, Math.min(size, end + 1) - from);
    for (let i = end - from - 1; i >= 0; i--) {
      if (!isNewlineAt(enc, b, i, from + i) || (enc === 'utf16le' && i + 1 >= b.length)) continue;
      const cut = from + i + (enc === 'utf16le' ? 2 : 1);
      if (cut < size) await fh.truncate(cut);
      return cut;
    }
    end = from;
  }
  await fh.truncate(0);
  return 0;
}
