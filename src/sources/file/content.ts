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
import * as zlib from 'node:zlib';
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
 * `sibs` without the gzip rotations whose plain file is in `plain` (`app.log.1` beside
 * `app.log.1.gz`): logrotate removes the plain one only once gzip has written the whole file, and
 * keeps it when gzip fails; until then the `.gz` may end inside a member (which gives no line): the
 * plain one is read (both queued, its lines came twice).
 */
function withoutPlainTwins(sibs: Sibling[], plain: Sibling[]): Sibling[] {
  const names = new Set(plain.map((s) => s.path));
  return sibs.filter((s) => !isGzip(s.path) || !names.has(s.path.replace(GZIP, '')));
}

/**
 * The gzip rotations after `match` (a plain rotation) in its naming series, oldest first: copies
 * compressed since (copytruncate with compress while we read `match`).
 */
export async function newerCompressed(path: LogPath, match: Sibling): Promise<Sibling[]> {
  const series = seriesOf(rotationSuffix(path, match));
  if (series === undefined) return [];
  const order = listingOrder(path);
  const gz = (await compressedSiblings(path)).filter((x) => isGzip(x.path) && seriesOf(rotationSuffix(path, x)) === series && order(match, x) < 0);
  return withoutPlainTwins(gz, await rotatedSiblings(path)).sort(order);
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
   * or gzip), oldest first; `at`: where its decompressed copy is read from (the checkpoint's
   * offset, unless a member before it failed its check with a length other than it had);
   * `byPosition`: its last 256 bytes lie in a damaged member, only its first KiB and the position
   * could be checked (said)
   */
  found?: { match: Sibling; fh: FileHandle; newer: Sibling[]; at: number; byPosition?: boolean };
  /** compressed rotations onsight cannot read (`.xz`, `.bz2`, `.zst`...): one of them may hold it */
  unreadable: string[];
  /** gzip rotations with a member that fails its check or breaks, matched in vain: one of them may hold it */
  damaged: string[];
}

/**
 * Where did the file a checkpoint refers to go, when no plain sibling has it (findRotated)? Into a
 * compressed rotation: logrotate's `compress` while onsight was down (without `delaycompress` at the
 * first rotation, with it at the second). Gzip rotations are read newest first, each only as far as
 * it can match (its first KiB, then up to the checkpoint's offset), and matched by both fingerprints
 * (without a tail fingerprint, from an older store, a rotation sharing our first KiB cannot be told
 * from ours: nothing is matched). None matching and `orDamaged` (a restart: running, the file was
 * read moments ago, and strangers' first members would be decoded whole at each truncation), those
 * with a damaged member are looked at again, its bytes not compared (gzipMatchesDamaged). The newer rotations of its naming series follow it
 * (`app.log.2.gz`, then `app.log.1`, then the live file). A rotation that cannot be opened or read
 * (permissions, removed meanwhile, not gzip) does not match.
 */
export async function findCompressed(path: LogPath, want: ContentMark, orDamaged = false): Promise<CompressedSearch> {
  // (a rotation renamed between the listing and its open, `.1.gz` shifted to `.2.gz` by a logrotate
  // run meanwhile: the search starts over with a new listing, settled, as findRotated's is)
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= FIND_ATTEMPTS;
    const { sibs, settled } = await settledSiblings(path, true);
    // (a listing taken across a rename may lack the file: listed again while attempts remain)
    if (!settled && !last) continue;
    const r = await findCompressedIn(path, sibs, want, last, orDamaged);
    if (r !== 'moved') return r;
  }
}

/** a listed gzip rotation opened: undefined when unreadable (or renamed since, on the `last` try) */
async function openGz(s: Sibling, last: boolean): Promise<Opened | undefined | 'moved'> {
  let opened: Opened | undefined;
  try {
    opened = await openListed(s);
  } catch {
    return undefined; // (unreadable: not ours to match)
  }
  if (!opened) return last ? undefined : 'moved';
  return opened;
}

/**
 * findCompressed over one listing of the compressed siblings: 'moved' when one of them was renamed
 * or removed since (on the `last` try, passed over instead).
 */
export async function findCompressedIn(path: LogPath, packed: Sibling[], want: ContentMark, last = false, orDamaged = true): Promise<CompressedSearch | 'moved'> {
  const unreadable = packed.filter((s) => !isGzip(s.path)).map((s) => s.path);
  if (want.tailFingerprint === undefined) return { unreadable, damaged: [] };
  const gz = packed.filter((s) => isGzip(s.path));
  const close = (o: Opened) => o.fh.close().catch(() => undefined);
  // decoded whole without a damaged member: not looked at again
  const sound = new Set<number>();
  for (let i = gz.length - 1; i >= 0; i--) {
    const opened = await openGz(gz[i], last);
    if (opened === 'moved') return 'moved';
    if (!opened) continue;
    let r: { match: boolean; sound: boolean };
    try {
      r = await gzipMatches(opened.fh, want);
    } catch (err) {
      await close(opened); // (the search fails as before, without leaking the fd)
      throw err;
    }
    if (r.match) return { found: await foundIn(path, gz, i, opened, want.offset), unreadable, damaged: [] };
    await close(opened);
    if (r.sound) sound.add(i);
  }
  if (!orDamaged) return { unreadable, damaged: [] };
  // none by its bytes (those of a damaged member are not the ones fingerprinted): the rotations with
  // a damaged member again, those bytes not compared (before, the rest of that rotation and every
  // newer one were lost, the live file read from its start)
  const damaged: string[] = [];
  const byPosition: Array<{ i: number; opened: Opened; at: number }> = [];
  try {
    for (let i = gz.length - 1; i >= 0; i--) {
      if (sound.has(i)) continue;
      const opened = await openGz(gz[i], last);
      if (opened === 'moved') return 'moved';
      if (!opened) continue;
      let r: DamagedMatch;
      try {
        r = await gzipMatchesDamaged(opened.fh, want);
      } catch (err) {
        await close(opened);
        throw err;
      }
      if (r.damaged) damaged.push(gz[i].path);
      if (r.at !== undefined && !r.byPosition) return { found: await foundIn(path, gz, i, opened, r.at), unreadable, damaged };
      if (r.at !== undefined) byPosition.push({ i, opened, at: r.at });
      else await close(opened);
    }
    // (by its first KiB and position alone only when no other rotation could be it)
    if (byPosition.length === 1) {
      const [{ i, opened, at }] = byPosition.splice(0);
      return { found: { ...(await foundIn(path, gz, i, opened, at)), byPosition: true }, unreadable, damaged };
    }
    return { unreadable, damaged };
  } finally {
    for (const b of byPosition) await close(b.opened);
  }
}

/** the match `gz[i]`, open, read from `at`, and the newer rotations of its series */
async function foundIn(path: LogPath, gz: Sibling[], i: number, opened: Opened, at: number): Promise<NonNullable<CompressedSearch['found']>> {
  const series = seriesOf(rotationSuffix(path, gz[i]));
  if (series === undefined) return { match: gz[i], fh: opened.fh, newer: [], at };
  // (the listing's order over plain and gzip rotations alike)
  const order = listingOrder(path);
  // (each file once, and never the match itself: a torn last listing may name one file twice)
  const seen = new Set([`${opened.st.dev}:${opened.st.ino}`]);
  const plain = (await settledSiblings(path)).sibs;
  const newer = withoutPlainTwins([...plain, ...gz], plain)
    .filter((x) => order(gz[i], x) < 0 && seriesOf(rotationSuffix(path, x)) === series)
    .sort(order)
    .filter((x) => !seen.has(`${x.st.dev}:${x.st.ino}`) && seen.add(`${x.st.dev}:${x.st.ino}`));
  return { match: gz[i], fh: opened.fh, newer, at };
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
 * deflate's largest ratio (a 258-byte match in a code or two): a failed member's trailer length is
 * taken only up to its bytes in the file times this (20-byte empty members claiming 64 KiB each
 * made 40 KB of gzip a 131 MB copy, review)
 */
const DEFLATE_RATIO = 1032;
/** a member whose deflate stream ends in the bytes read, giving at most this, is inflated at once; else streamed */
const SYNC_OUT_MAX = 1024 * 1024;
/** the copy is written this much at a time (a write a member: 20,000 one-line members took 12 s, review) */
const WRITE_BATCH = 256 * 1024;
/** damaged members named in the warning, the others counted (5,000 of them made a 400,000-character field) */
const SAID_MAX = 5;
/**
 * The searches for a sound member after damage in one decode test-decode at most this many times
 * the file's size, plus SEARCH_BYTES_MIN: a sound file's search reads about the member it finds
 */
const SEARCH_BYTES_PER_BYTE = 4;
const SEARCH_BYTES_MIN = 16 * 1024 * 1024;
/** what a search's test decode costs its budget besides the bytes it reads (4 KiB lost 7,230 lines of a rotation with 5,000 small damaged members, review) */
const TEST_COST = 512;
/** bytes a search's test decode reads first (doubling up to GZ_CHUNK): a 64 KiB read for each of thousands of small members made 8 MB take 49 s (review) */
const TEST_READ_FIRST = 4096;
/** zeros in a row that a damaged member's stream ran on over (a crash's zero-filled block; a header's are 6 at most) */
const ZERO_RUN = 8;
/**
 * A line's opening, compared with the file's other lines where a damaged member's end is guessed:
 * its first OPENING_BYTES bytes (NULs skipped: UTF-16), the first OPENING_RUNS runs of their classes.
 */
const OPENING_BYTES = 24;
const OPENING_RUNS = 5;
/** bytes of output collected for a line's opening (UTF-16: a NUL for each byte) */
const OPENING_HEAD_MAX = 4 * OPENING_BYTES;

/** how a line opens: runs of byte classes (digit, letter, blank, any other byte as itself) and the first run's length */
interface Opening {
  runs: string[];
  firstLen: number;
}

/** the opening of the line at the start of `b`, up to its newline; undefined: an empty line */
function openingOf(b: Buffer): Opening | undefined {
  const runs: string[] = [];
  let firstLen = 0;
  let whole = false;
  for (let i = 0, seen = 0; i < b.length && seen < OPENING_BYTES; i++) {
    const x = b[i];
    if (x === 0) continue;
    if (x === 0x0a || x === 0x0d) {
      whole = true;
      break;
    }
    seen++;
    const k = x >= 0x30 && x <= 0x39 ? 'd' : (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7a ? 'a' : x >= 0x80 ? 'a' : x === 0x20 || x === 0x09 ? ' ' : String.fromCharCode(x);
    if (runs[runs.length - 1] !== k) runs.push(k);
    if (runs.length === 1) firstLen++;
  }
  // (the first run's length is known once another run began; the last run may go on past what was read)
  const firstEnded = whole || runs.length > 1;
  if (!whole && runs.length > 1) runs.pop();
  return runs.length ? { runs, firstLen: firstEnded ? firstLen : -1 } : undefined;
}

/** two lines open alike: the same classes in their first runs, and a first run (a month's name, a year) as long */
function opensAlike(a: Opening, b: Opening): boolean {
  const n = Math.min(OPENING_RUNS, a.runs.length, b.runs.length);
  for (let i = 0; i < n; i++) if (a.runs[i] !== b.runs[i]) return false;
  return a.firstLen < 0 || b.firstLen < 0 || a.firstLen === b.firstLen;
}
/**
 * The file ending inside a member: one modified this recently may still be written (gzip at work on
 * a rotation), its growth waited for (polled every GROW_POLL_MS, at most GROW_WAIT_MAX_MS).
 */
const WRITING_MS = 1000;
const GROW_POLL_MS = 50;
const GROW_WAIT_MAX_MS = 5000;

/** CRC-32, a byte at a time from a table: node without zlib.crc32 (21.x, 22.0-22.1, which engines allows) */
export function crc32Table(b: Uint8Array, crc = 0): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
let CRC_TABLE: Int32Array | undefined;
// (not a named import: where node lacks it, that failed every command at its start, `onsight --help` too)
const crc32: (b: Uint8Array, crc?: number) => number = (zlib as { crc32?: (b: Uint8Array, crc?: number) => number }).crc32 ?? crc32Table;

/**
 * A file read once from its start, in order: what one gzip member's decoding read beyond its end
 * is kept for the next, so each byte is read once (a member read on to the file's end each time
 * read 32 MB of members as 2.6 GB, review).
 */
class InOrder {
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  /** grew() waits for a file being written */
  waits = true;
  /** bytes read at a time: GZ_CHUNK, or from a few KiB doubling to it (a member looked at alone: most are not one) */
  step = GZ_CHUNK;

  /** `pos`: the file position of `buf`'s first byte; `limit`: nothing read from there on (the end of a member looked at alone) */
  constructor(
    private readonly fh: FileHandle,
    public pos = 0,
    private readonly limit = Infinity,
  ) {}

  /** at least `n` bytes from `pos` (fewer: the file ends first), not taken */
  async want(n: number): Promise<Buffer> {
    while (this.buf.length < n && !this.eof) {
      const b = Buffer.allocUnsafe(Math.min(Math.max(this.step, n - this.buf.length), Math.max(0, this.limit - this.pos - this.buf.length)));
      this.step = Math.min(GZ_CHUNK, this.step * 2);
      const { bytesRead } = b.length ? await this.fh.read(b, 0, b.length, this.pos + this.buf.length) : { bytesRead: 0 };
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

  /** read on from `pos` */
  seek(pos: number): void {
    this.buf = Buffer.alloc(0);
    this.pos = pos;
    this.eof = false;
  }

  /**
   * At the file's end inside a member: is there more? The file grew since it was read, or, modified
   * within WRITING_MS (gzip writing it), grows while waited for.
   */
  async grew(signal?: AbortSignal): Promise<boolean> {
    if (this.limit !== Infinity) return false;
    for (let waited = 0; ; waited += GROW_POLL_MS) {
      const st = await this.fh.stat();
      if (st.size > this.pos + this.buf.length) {
        this.eof = false;
        return true;
      }
      if (!this.waits || signal?.aborted || waited >= GROW_WAIT_MAX_MS || Date.now() - st.mtimeMs >= WRITING_MS) return false;
      await wait(GROW_POLL_MS);
    }
  }
}

/** newline code units for blanked output, from an even position: 0A (UTF-8), 0A 00 (UTF-16LE), 00 0A (UTF-16BE) */
const FILL = {
  utf8: Buffer.alloc(GZ_CHUNK + 1, 0x0a),
  utf16le: Buffer.alloc(GZ_CHUNK + 1, Buffer.from([0x0a, 0x00])),
  utf16be: Buffer.alloc(GZ_CHUNK + 1, Buffer.from([0x00, 0x0a])),
};
const ENCODINGS: Encoding[] = ['utf8', 'utf16le', 'utf16be'];

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

/** does output ending at `end` with the bytes `last2` end on a newline of `enc` */
function endsLine(enc: Encoding | undefined, last2: number[], end: number): boolean {
  if (enc === 'utf16le') return end % 2 === 0 && last2[0] === 0x0a && last2[1] === 0;
  if (enc === 'utf16be') return end % 2 === 0 && last2[0] === 0 && last2[1] === 0x0a;
  return last2[1] === 0x0a;
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

/** how a member's output ended: its last two bytes, and where it ended in the output */
interface MemberEnd {
  last2: number[];
  at: number;
}

/** What a whole decode found: `size` bytes of output to read (all of it, or up to the last line end before a break). */
interface Gunzipped {
  size: number;
  broken?: string;
  /** bytes of the members that failed their check */
  damaged: number;
  /** the output's encoding, taken from the first member that passed its check (`encChecked` false: none did) */
  enc: Encoding | undefined;
  encChecked: boolean;
}

/**
 * A member that failed its check: its output from `start`, `len` bytes of it in the copy (its
 * trailer's length, or as decoded), `raw` as decoded; `dStart`: where it starts counting each
 * failed member before it at its decoded length.
 */
interface Failure {
  start: number;
  len: number;
  raw: number;
  dStart: number;
  /** its stream decoded to its own trailer: `raw` is a length it may have had (its trailer damaged) */
  decoded: boolean;
}

/**
 * A gzip file decoded member by member in one pass (RFC 1952: `cat a.gz b.gz` is one file), each
 * member's raw deflate body inflated and checked against its own trailer here: node's gunzip
 * stopped at the first failed check, losing the members after it. A member whose CRC-32 is wrong
 * is not trusted: a changed byte of deflate data mostly decodes without an error into fragments
 * of nearby lines spliced together (a DHCP log: 397 of 400 changed bytes, ~500 wrong address-MAC
 * pairs each), from a point nothing tells; and a wrong CRC alone cannot be told from that. One
 * whose CRC-32 matches is read, its length field wrong or not (the CRC over the data is the
 * stronger check: a wrong length alone is a damaged trailer). A failed member's output keeps its
 * place (failed), blanked, with the lines it shares with its neighbours (cut lines), to newline
 * code units of the output's encoding: no lines to a reader, and the members after it keep
 * theirs. The encoding is the one of the first member that passes its check (a damaged first
 * member decodes into anything); none passing, the output is empty. inflate's copy and gzipMatches both decode through this, so a
 * checkpoint taken in the copy is found again at a restart (a member left out of the copy moved
 * the lines after it: their checkpoints matched nothing, review).
 *
 * A break ends what can be read, and the member it is in gives no line, unchecked: the file
 * ending inside a member or its trailer's CRC-32 (a crash while compressing leaves zeros, which
 * decode without an error into copies of earlier lines: 3,301 of them, review; logrotate keeps the
 * plain rotation when gzip fails), or a deflate stream that does not decode (a changed byte decodes
 * on a while before an error, if at all). A file that ends inside a member but is being written
 * (modified within WRITING_MS) is waited for. Bytes after a member that start no member are a
 * damaged one when a member that passes its check follows (a NUL there, the magic bytes zeroed,
 * ended the file: every member after it lost), else they end the file (NULs: padding, as gunzip
 * takes them; anything else also said). Members with whole lines
 * already in the buffer (rsyslog's veryRobustZip writes one a flush) are inflated at once, larger
 * ones streamed.
 */
class CheckedGunzip {
  /** the output's encoding as the reader detects it: from the first 4 bytes of the output from scanFrom */
  enc: Encoding | undefined;
  encKnown = false;
  /** a member it was detected in passed its check: it stays (else it is detected again after a failed member) */
  encFinal = false;
  /** bytes of output so far */
  out = 0;
  /** `out` + shift: the output counting each failed member at its decoded length (its trailer's length may be the damaged part) */
  shift = 0;
  /** the last line end so far (0: the output's start) */
  lastEnd = 0;
  /** the member being decoded (n 0: none yet): where its output starts, and the first line end at or after that */
  member: { n: number; start: number; firstEnd?: number } = { n: 0, start: 0 };
  readonly failures: Failure[] = [];
  /** where the member the decode broke in begins (`d`: counting failed members at their decoded length): its output is unknown */
  broke?: { at: number; d: number };
  private damaged = 0;
  private readonly said: string[] = [];
  private unsaid = 0;
  /** a failed member's last line goes on in what follows: blanked up to its end */
  private blanking = false;
  /** where the output the encoding is detected from begins: 0, or after members that failed before any passed */
  private scanFrom = 0;
  /** the output from scanFrom before the encoding is known, its line ends not looked for yet */
  private early: Buffer[] = [];
  /** the output's last byte (-1: none) */
  private prev = -1;
  /** the output's last two bytes */
  private last2 = [-1, -1];
  /** [0, deferred): members that failed before any passed, blanked once the encoding is known for good */
  private deferred = 0;
  /** the end of such a member: whether it ended a line, in each encoding (the one detected after it decides) */
  private edge?: { out: number; aligned: Record<Encoding, boolean> };
  /** members that passed their check */
  passedMembers = 0;
  /** the member before passed its check: where the next one begins tells how this writer ends members */
  private prevPassed = false;
  /** a member that passed its check ended inside a line, another after it: members here are cut mid-line */
  private cuts = false;
  /** no member that passes its check begins after this byte of the file */
  private searched?: number;
  /** bytes the searches for a sound member may still test-decode (set at the first search) */
  private budget?: SearchBudget;
  /** how the lines of members that passed their check open (the last such member's first whole line) */
  private refOpening?: Opening;
  /** the member being decoded: how its first whole line opens */
  private memberOpening?: Opening;
  /** the member being decoded began on a line end after a member that passed: its first line is whole */
  private memberAtLine = false;
  /**
   * output following a failed member whose end was taken as a line end without knowing it, from
   * `at`, its first line's bytes so far (`head`): that line is read only if it opens like the file's
   * lines (else it is the tail of a cut line)
   */
  private opening?: { at: number; head: Buffer };
  private readonly rd: InOrder;

  /**
   * `only`: the member at that byte of the file alone, nothing looked for after it (soundMemberAt);
   * with `bodyTo`, its deflate body from there, its trailer ending at that byte (soundBodyIn); with
   * `upTo`, nothing read from that byte on (a search's budget)
   */
  constructor(
    private readonly fh: FileHandle,
    private readonly sink: GunzipSink,
    private readonly signal?: AbortSignal,
    private readonly only?: { from: number; bodyTo?: number; upTo?: number },
  ) {
    this.rd = new InOrder(fh, only?.from ?? 0, only?.bodyTo ?? only?.upTo);
    // (a member looked for is not waited for)
    if (only) {
      this.rd.waits = false;
      this.rd.step = TEST_READ_FIRST;
    }
  }

  /** where the reader is in the file */
  get pos(): number {
    return this.rd.pos;
  }

  async run(): Promise<Gunzipped> {
    for (let n = 1; !(this.only && n > 1); n++) {
      if (this.signal?.aborted) throw new Error('stopped');
      const from = this.rd.pos;
      const h = this.only?.bodyTo === undefined ? await this.header(n) : 'body';
      if (h === 'end') break;
      if (this.prevPassed && this.lastEnd !== this.out) this.cuts = true;
      this.prevPassed = false;
      if (h !== 'body') {
        // (a damaged header, the first member's too (every member was lost), or NULs where a member
        // followed (a zeroed first byte ended the file there): the members after it are looked for)
        if (await this.recover(n, from, this.out, this.lastEnd, h === 'nul' ? `NULs after member ${n - 1}` : h)) continue;
        if (h === 'nul') break;
        await this.detectNow();
        return this.finish(n === 1 && h === 'incorrect header check' ? `${h} (not gzip)` : h, this.lastEnd);
      }
      const start = this.out;
      const lineStart = this.lastEnd;
      this.member = { n, start, firstEnd: lineStart === start ? start : undefined };
      this.memberOpening = undefined;
      this.memberAtLine = lineStart === start && this.opening === undefined;
      const m = await this.body();
      if (m.error !== undefined) {
        if (await this.recover(n, from, start, lineStart, m.error)) {
          this.sink.step?.(true);
          continue;
        }
        this.broke = { at: start, d: start + this.shift };
        return this.finish(`member ${n}: ${m.error} (the ${this.out - start} bytes it gave left out: unchecked)`, lineStart);
      }
      const t = await this.wantAll(8);
      if (t.length < 4) {
        const inside = await this.ranOn(from);
        if (inside !== undefined && (await this.recover(n, from, start, lineStart, 'its deflate stream ends past where a member begins', inside))) {
          this.sink.step?.(true);
          continue;
        }
        this.broke = { at: start, d: start + this.shift };
        return this.finish(`member ${n}: unexpected end of file in its trailer (the ${this.out - start} bytes it gave left out: unchecked)`, lineStart);
      }
      const raw = this.out - start;
      const crcOk = t.readUInt32LE(0) === m.crc;
      const isize = t.length >= 8 ? t.readUInt32LE(4) : undefined;
      this.rd.skip(Math.min(8, t.length));
      if (!crcOk) {
        // (no member where it ends: its stream ended short or long of its trailer, a changed byte's doing;
        // or a sound member begins before where it ended: its stream ran on over a zeroed stretch into
        // the members after it, and ended before NULs (a header's zeros) or the file's end: before, the
        // members after the zeros were lost)
        // (a stream that gave the length its trailer says ended at its own trailer: a member inside
        // what it took is its data (a gzip file logged, stored as it is), not one it ran into)
        const follows = await this.memberFollows();
        const inside = follows && isize !== raw % 2 ** 32 ? await this.ranOn(from) : undefined;
        if ((!follows || inside !== undefined) && (await this.recover(n, from, start, lineStart, inside !== undefined ? 'its deflate stream ends past where a member begins' : 'its deflate stream ends where no trailer is', inside))) {
          this.sink.step?.(true);
          continue;
        }
        // (its output as long as its trailer says: the damage, if in its data, stayed off its end (a
        // wrong CRC-32 alone, a changed literal); else its end decoded from damaged data is no measure)
        await this.failed(n, start, lineStart, isize, this.rd.pos - from, isize === raw % 2 ** 32 ? { last2: [...this.last2], at: this.out } : undefined);
      } else {
        this.passedMembers++;
        this.prevPassed = true;
        if (isize !== undefined && isize !== raw % 2 ** 32) this.say(`member ${n}: the length in its trailer is wrong, its CRC-32 matches: read`);
        await this.passed(raw);
        // (after passed(): the output of a member too short to tell its encoding is scanned there)
        if (this.memberOpening) this.refOpening = this.memberOpening;
      }
      this.sink.step?.(true);
      if (t.length < 8) return this.finish(`member ${n}: the file ends in its trailer (its CRC-32 ${crcOk ? 'matches: read' : 'fails'})`, this.out);
    }
    return this.finish(undefined, this.out);
  }

  /** the decode's end: `size` bytes to read, `why` a break */
  private async finish(why: string | undefined, size: number): Promise<Gunzipped> {
    await this.detectNow();
    // (no member passed its check: no line, and no blank: in which encoding? read as UTF-16, UTF-8
    // newlines were a line of U+0A0A)
    if (!this.encFinal) size = 0;
    this.deferred = 0;
    const said = [...this.said, ...(this.unsaid ? [`${this.unsaid} more`] : []), ...(why === undefined ? [] : [why])];
    return { size, broken: said.length ? said.join('; ') : undefined, damaged: this.damaged, enc: this.enc, encChecked: this.encFinal };
  }

  private say(s: string): void {
    if (this.said.length < SAID_MAX) this.said.push(s);
    else this.unsaid++;
  }

  /** A member that gave `raw` bytes passed its check: the encoding detected stays (the members that failed before it blanked in it). */
  private async passed(raw: number): Promise<void> {
    if (this.encFinal || raw === 0) return;
    await this.detectNow();
    this.encFinal = true;
    if (this.deferred > 0) await this.sink.blank(0, this.deferred);
    this.deferred = 0;
  }

  /**
   * Member `n`, its output from `start` (the line it begins in from `lineStart`), `bytes` long in
   * the file, failed its check: blanked. Its data damaged and its trailer whole, it takes the length
   * written there (the members after it stay where they were: a UTF-16 file on its code units, and a
   * checkpoint taken before compression is found in them); its output is shorter or longer by as
   * much. The line after it is blanked too, but where it began and ended on a line end (`end`, its
   * output decoded to its trailer; undefined, not known: fail) (its own line ends are not trusted).
   */
  private async failed(n: number, start: number, lineStart: number, isize: number | undefined, bytes: number, end: MemberEnd | undefined): Promise<void> {
    const raw = this.out - start;
    const len = isize !== undefined && raw < 2 ** 32 - ISIZE_SLACK && Math.abs(isize - raw) <= ISIZE_SLACK && isize <= bytes * DEFLATE_RATIO ? isize : raw;
    await this.fail(n, start, lineStart, len, 'incorrect data check', end, true);
  }

  /**
   * Member `n`, from byte `from` of the file, its output from `start`: its deflate stream fails, or
   * ends where no trailer and no member follow (a changed byte made it end short or run on), or its
   * header is damaged. The next member that passes its check is looked for (a member read from a
   * wrong boundary fails its check); found, this one failed, its length in the copy the one in the
   * trailer just before that member (what its stream gave is no measure of it), and the members
   * after it are read (before, all were lost). False: none found. Its body is checked against that
   * trailer (a damaged header, its data sound): passing, where its output ended is known.
   */
  private async recover(n: number, from: number, start: number, lineStart: number, why: string, found?: number): Promise<boolean> {
    // (none after a byte already searched from: not searched again)
    if (this.only || (found === undefined && this.searched !== undefined && from >= this.searched)) return false;
    const p = found ?? (await this.search(from + 1, Infinity));
    if (p === undefined) {
      this.searched = from;
      return false;
    }
    const t = p - 8 >= from + 10 ? await readAt(this.fh, p - 8, 8) : undefined;
    const isize = t?.readUInt32LE(4);
    // (not charged to the searches' budget: it reads the one member, [from, p), a few times at most)
    const body = t ? await soundBodyIn(this.fh, from, p, this.signal) : undefined;
    const len = body ? body.len : isize !== undefined && isize <= (p - from) * DEFLATE_RATIO ? isize : this.out - start;
    await this.fail(n, start, lineStart, len, `${why} (the next member at byte ${p})`, body && { last2: body.last2, at: start + body.len });
    this.rd.seek(p);
    return true;
  }

  /**
   * Member `n` left out, `len` bytes in the copy. `end`: how its output ended (decoded to its
   * trailer, or its body checked); its last line ended where that is a line end and it began on
   * one. Unknown (its data damaged): it is taken to end as this writer's members do, on a line end
   * unless a member that passed was cut mid-line (before, the next member's first line was always
   * blanked: a line of a sound member lost at each damaged member). `decoded`: its stream decoded
   * to its own trailer (incorrect data check).
   */
  private async fail(n: number, start: number, lineStart: number, len: number, why: string, end: MemberEnd | undefined, decoded = false): Promise<void> {
    const raw = this.out - start;
    this.failures.push({ start, len, raw, dStart: start + this.shift, decoded });
    this.shift += raw - len;
    this.out = start + len;
    this.damaged += len;
    this.say(`member ${n} (decompressed bytes ${start}-${this.out}): ${why}, its lines left out`);
    if (this.encFinal) {
      const aligned = lineStart === start && (end ? endsLine(this.enc, end.last2, end.at) : !this.cuts);
      await this.sink.blank(lineStart, this.out);
      this.blanking = !aligned;
      this.lastEnd = aligned ? this.out : lineStart;
      this.opening = aligned && !end ? { at: this.out, head: Buffer.alloc(0) } : undefined;
    } else {
      // no member passed its check yet: the encoding is detected again after it (a UTF-16 file
      // whose first member was damaged at its start was read as UTF-8), and it is blanked in the
      // one a member passes with
      this.deferred = this.out;
      // (one right after another such member, nothing decoded between (NULs after a damaged first
      // member): it began on a line end where that one ended on one; before, a line after it was lost)
      const prev = this.edge?.out === start ? this.edge : undefined;
      const aligned = {} as Record<Encoding, boolean>;
      for (const e of ENCODINGS) aligned[e] = (lineStart === start || prev?.aligned[e] === true) && (end ? endsLine(e, end.last2, end.at) : !this.cuts);
      this.edge = { out: this.out, aligned };
      this.opening = !end && ENCODINGS.some((e) => aligned[e]) ? { at: this.out, head: Buffer.alloc(0) } : undefined;
      this.blanking = false;
      this.lastEnd = lineStart;
      this.enc = undefined;
      this.encKnown = false;
      this.early = [];
      this.scanFrom = this.out;
    }
    // (a newline is looked for in the output after it only: a blank's last 0A and a next 00 would end the line early)
    this.prev = -1;
  }

  /**
   * The member header at the reader skipped (RFC 1952 §2.3): 'body'; 'end': no member follows (the
   * file's end); 'nul': NULs after a member (padding, as gunzip takes them, unless a member follows);
   * else what is wrong.
   */
  private async header(n: number): Promise<'body' | 'end' | string> {
    let b = await this.rd.want(10);
    if (n > 1 && b.length === 0) return 'end';
    if (n > 1 && b[0] === 0) return 'nul';
    if (b.length === 0) return 'unexpected end of file';
    if (b[0] !== 0x1f || (b.length > 1 && b[1] !== 0x8b)) return n === 1 ? 'incorrect header check' : `bytes after member ${n - 1} that start no gzip member`;
    const cut = `member ${n}: unexpected end of file in its header`;
    b = await this.wantAll(10);
    if (b.length < 10) return cut;
    if (b[2] !== 8) return `member ${n}: unknown compression method`;
    const flags = b[3];
    if (flags & 0xe0) return `member ${n}: unknown header flags set`;
    let p = 10;
    if (flags & 0x04) {
      // FEXTRA
      const x = await this.wantAll(p + 2);
      if (x.length < p + 2) return cut;
      p += 2 + x.readUInt16LE(p);
    }
    for (const bit of [0x08, 0x10]) {
      // FNAME, FCOMMENT: zero-terminated
      if (!(flags & bit)) continue;
      for (let from = p; ; ) {
        const x = await this.wantAll(from + 1);
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
    if ((await this.wantAll(p)).length < p) return cut;
    this.rd.skip(p);
    return 'body';
  }

  /** after a member: the file's end, NULs, or a member header (else its end was not where its stream ended) */
  private async memberFollows(): Promise<boolean> {
    const b = await this.rd.want(3);
    return b.length < 3 || b[0] === 0 || (b[0] === 0x1f && b[1] === 0x8b && b[2] === 8);
  }

  /**
   * The member from byte `from`, failed: where a sound member begins inside what its stream took,
   * after a stretch of zeros there (a crash's zero-filled block it ran on over; a member inside its
   * data without one is its data: a gzip file logged, its lines read in place of the member's,
   * review); undefined: none.
   */
  private async ranOn(from: number): Promise<number | undefined> {
    if (this.only) return undefined;
    const zeros = await zeroRunIn(this.fh, from + 1, this.rd.pos);
    return zeros === undefined ? undefined : this.search(zeros, this.rd.pos);
  }

  /** the searches' budget, set at the first (it is the file's size when the decode needs it) */
  private async searchBudget(): Promise<SearchBudget> {
    this.budget ??= { left: SEARCH_BYTES_PER_BYTE * (await this.fh.stat()).size + SEARCH_BYTES_MIN, spent: false };
    return this.budget;
  }

  /**
   * nextMember within the searches' budget: a few times the file's size in all (a file of crafted
   * headers had each search test-decode from each one to its end: 1 MB took 31 s, review)
   */
  private async search(from: number, to: number): Promise<number | undefined> {
    const budget = await this.searchBudget();
    const p = await nextMember(this.fh, from, this.signal, to, budget);
    if (budget.spent && !budget.said) {
      budget.said = true;
      // (first: the members it did not look for are the ones a reader misses)
      this.said.unshift(`the search for sound members after damaged ones stopped at its bound (test decodes of ${SEARCH_BYTES_PER_BYTE} times the file's size and ${SEARCH_BYTES_MIN / 1024 / 1024} MiB): those after byte ${from} were not looked for`);
    }
    return p;
  }

  /** at least `n` bytes at the reader (fewer: the file ends there, and is not being written) */
  private async wantAll(n: number): Promise<Buffer> {
    let b = await this.rd.want(n);
    while (b.length < n && (await this.rd.grew(this.signal))) b = await this.rd.want(n);
    return b;
  }

  /**
   * The deflate body at the reader inflated (raw: nothing checks a trailer), its output told, the
   * input it used taken from the reader; its output's CRC-32. One whose stream ends in the bytes
   * read and gives at most SYNC_OUT_MAX is inflated at once (a stream and its round trips a
   * member: 20,000 one-line members took 12 s); else streamed.
   */
  private async body(): Promise<{ crc: number; error?: string }> {
    const buf = await this.rd.want(1);
    let r: { buffer: Buffer; engine: { bytesWritten: number } } | undefined;
    if (buf.length > 0) {
      try {
        r = zlib.inflateRawSync(buf, { info: true, maxOutputLength: SYNC_OUT_MAX }) as unknown as typeof r;
      } catch {
        // (it goes on past what is read, gives more, or fails: streamed, its output told as it comes, as before)
      }
    }
    if (!r) return this.stream();
    this.rd.skip(r.engine.bytesWritten);
    if (r.buffer.length > 0) await this.output(r.buffer);
    return { crc: crc32(r.buffer) };
  }

  /**
   * The deflate body at the reader inflated as a stream, fed a chunk at a time and each one's
   * processing waited for: where the stream ends, the rest of that chunk is given back to the
   * reader (zlib's bytesWritten counts the input it used).
   */
  private async stream(): Promise<{ crc: number; error?: string }> {
    const inf = zlib.createInflateRaw({ chunkSize: GZ_CHUNK });
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
          // (the file ends inside the member: gzip may be writing it still)
          if (!done && (await this.rd.grew(this.signal))) continue;
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
    return { crc, error: (failure as Error).message };
  }

  /** a chunk of output: told, its line ends looked for, a failed member's last line blanked on */
  private async output(c: Buffer): Promise<void> {
    // (stopped here too: a stretch that compresses well gave 64 MB before the next input was read)
    if (this.signal?.aborted) throw new Error('stopped');
    const at = this.out;
    await this.sink.data(c, at);
    this.out += c.length;
    this.last2 = c.length >= 2 ? [c[c.length - 2], c[c.length - 1]] : [this.last2[1], c[0]];
    if (!this.encKnown) {
      this.early.push(c);
      if (this.out - this.scanFrom >= 4 + (this.scanFrom % 2)) await this.detectNow();
    } else await this.scan(c, at);
    this.sink.step?.(false);
  }

  private async scan(c: Buffer, at: number): Promise<void> {
    const { first, last } = lineEnds(this.enc, c, at, this.prev);
    this.prev = c[c.length - 1];
    if (first !== undefined && this.member.firstEnd === undefined && first >= this.member.start) this.member.firstEnd = first;
    if (last !== undefined) this.lastEnd = last;
    const pending = this.opening !== undefined && this.opening.at < at + c.length ? this.opening : undefined;
    // (the opening of the line after this chunk's first line end)
    const next = (pending || !this.memberOpening) && first !== undefined && first < at + c.length && first > this.member.start ? openingOf(c.subarray(first - at)) : undefined;
    if (pending) await this.checkOpening(pending, c, at, first, next);
    // (the line after its first: the file's first line may be a header or banner, `# log opened …`,
    // review; a member of one line, rsyslog's veryRobustZip at low traffic, has none: its own line then)
    this.memberOpening ??= next;
    if (!this.memberOpening && this.memberAtLine && at === this.member.start && (first !== undefined || c.length >= OPENING_HEAD_MAX)) this.memberOpening = openingOf(c);
    if (this.blanking) {
      await this.sink.blank(at, first ?? at + c.length);
      this.blanking = first === undefined;
    }
  }

  /**
   * A writer that cuts members mid-line can end one on a line end by chance: after a damaged
   * member then, the next one's first line may be a line's tail, `smith/…` of `alice.smith/…`, read as
   * a tunnel-up for the wrong user (review). Its end unknown, that line (its bytes gathered over the
   * chunks until its end or OPENING_BYTES) must open like the file's lines: a member's that passed,
   * else the line after it; with neither, it is left out (a first member damaged and a one-line member
   * after it: its line was read, review).
   */
  private async checkOpening(p: { at: number; head: Buffer }, c: Buffer, at: number, first: number | undefined, next: Opening | undefined): Promise<void> {
    const from = Math.max(0, p.at - at);
    const to = first !== undefined ? first - at : c.length;
    if (p.head.length < OPENING_HEAD_MAX) p.head = Buffer.concat([p.head, c.subarray(from, Math.max(from, Math.min(to, from + OPENING_HEAD_MAX - p.head.length)))]);
    let bytes = 0;
    for (const x of p.head) if (x !== 0) bytes++;
    if (first === undefined && bytes < OPENING_BYTES) return;
    this.opening = undefined;
    const own = openingOf(p.head);
    const ref = this.refOpening ?? next;
    if (this.blanking || !own || (ref && opensAlike(own, ref))) return;
    // (its bytes in earlier chunks blanked too: no line end came there, so none of it was read)
    if (p.at < at) await this.sink.blank(p.at, at);
    this.blanking = true;
    this.say(`the first line after a damaged member ${ref ? 'does not open like the file\'s lines' : 'has no line of the file to compare with'} (decompressed bytes from ${p.at}): left out`);
  }

  /** the encoding decided now from what came since scanFrom (4 bytes, from an even position), and that output scanned */
  private async detectNow(): Promise<void> {
    if (this.encKnown) return;
    const early = this.early;
    this.early = [];
    const skip = this.scanFrom % 2;
    this.enc = detectEncoding(Buffer.concat(early).subarray(skip, skip + 4));
    this.encKnown = true;
    const e = this.edge;
    if (e) {
      this.edge = undefined;
      const aligned = e.aligned[this.enc ?? 'utf8'];
      this.blanking = !aligned;
      if (aligned) {
        this.lastEnd = e.out;
        if (this.member.start === e.out) this.member.firstEnd ??= e.out;
      }
    }
    for (let at = this.scanFrom, i = 0; i < early.length; at += early[i].length, i++) await this.scan(early[i], at);
  }
}

/** what the searches for a sound member of one decode may still read (`spent`: they stopped for it) */
interface SearchBudget {
  left: number;
  spent: boolean;
  said?: boolean;
}

/** Does a gzip member that passes its check begin at byte `at` of the file (read within the budget)? */
async function soundMemberAt(fh: FileHandle, at: number, budget: SearchBudget, signal?: AbortSignal): Promise<boolean> {
  const g = new CheckedGunzip(fh, { data() {}, blank() {} }, signal, { from: at, upTo: at + budget.left });
  await g.run();
  // (what it decoded: its reads are at most twice that and TEST_READ_FIRST, so they stay bounded too)
  charge(budget, g.pos - at);
  return g.passedMembers === 1;
}

/** `bytes` decoded by a search's test decode taken from its budget, and TEST_COST for the test itself */
function charge(budget: SearchBudget, bytes: number): void {
  budget.left -= bytes + TEST_COST;
  if (budget.left <= 0) budget.spent = true;
}

/** the first byte of a run of ZERO_RUN zeros in [from, to) of the file; undefined: none */
async function zeroRunIn(fh: FileHandle, from: number, to: number): Promise<number | undefined> {
  const b = Buffer.allocUnsafe(Math.max(1, Math.min(GZ_CHUNK, to - from)));
  let run = 0;
  for (let pos = from; pos < to; ) {
    const { bytesRead } = await fh.read(b, 0, Math.min(b.length, to - pos), pos);
    if (bytesRead === 0) return undefined;
    for (let i = 0; i < bytesRead; i++) {
      run = b[i] === 0 ? run + 1 : 0;
      if (run === ZERO_RUN) return pos + i + 1 - ZERO_RUN;
    }
    pos += bytesRead;
  }
  return undefined;
}

/** header lengths looked at for a damaged one's body: the bytes its flags say, none, and gzip(1)'s name (a comment after it) */
function bodyStarts(h: Buffer): number[] {
  const at = [10];
  let p = 10;
  if (h[3] & 0x04) p = h.length >= 12 ? p + 2 + h.readUInt16LE(10) : Infinity;
  for (const bit of [0x08, 0x10]) {
    if (!(h[3] & bit) || p >= h.length) continue;
    const z = h.indexOf(0, p);
    p = z < 0 ? Infinity : z + 1;
  }
  if (h[3] & 0x02) p += 2;
  at.push(p);
  for (let i = 10, k = 0; k < 2; i++, k++) {
    i = h.indexOf(0, i);
    if (i < 0) break;
    at.push(i + 1);
  }
  return [...new Set(at)].filter((x) => x < h.length);
}

/**
 * A member at [from, to) of the file whose header is damaged: its deflate body, after one of the
 * headers it may have had (bodyStarts), checked against the trailer that ends at `to`. Passing:
 * how its output ended (its data is sound, the header alone was hit); undefined: none passes.
 * Each try reads no further than `to`.
 */
async function soundBodyIn(fh: FileHandle, from: number, to: number, signal?: AbortSignal): Promise<{ last2: number[]; len: number } | undefined> {
  const head = await readAt(fh, from, Math.min(1024, to - 8 - from));
  for (const at of bodyStarts(head)) {
    let last2 = [-1, -1];
    const g = new CheckedGunzip(
      fh,
      {
        data(c) {
          last2 = c.length >= 2 ? [c[c.length - 2], c[c.length - 1]] : [last2[1], c[0]];
        },
        blank() {},
      },
      signal,
      { from: from + at, bodyTo: to },
    );
    await g.run();
    if (g.passedMembers === 1 && g.pos === to) return { last2, len: g.out };
  }
  return undefined;
}

/**
 * The first byte from `from` on (before `to`) where a member that passes its check begins (its
 * header's magic bytes, then a check of the whole member: a random 1F 8B 08 in deflate data
 * decodes into nothing whose CRC-32 matches); undefined: none.
 */
async function nextMember(fh: FileHandle, from: number, signal: AbortSignal | undefined, to: number, budget: SearchBudget): Promise<number | undefined> {
  // (no larger than the stretch: a member's own bytes looked at again after each failed one; read
  // from TEST_READ_FIRST up, doubling: the next member is mostly near, and a 64 KiB read for each of
  // thousands of small damaged members made 1 MB take 6 s)
  const b = Buffer.allocUnsafe(Math.min(GZ_CHUNK, Math.max(4, to + 3 - from)));
  for (let pos = from, step = TEST_READ_FIRST; pos < to && !budget.spent; step = Math.min(GZ_CHUNK, step * 2)) {
    if (signal?.aborted) throw new Error('stopped');
    const { bytesRead } = await fh.read(b, 0, Math.min(b.length, step, to + 3 - pos), pos);
    if (bytesRead < 4) return undefined;
    for (let i = b.indexOf(0x1f); i >= 0 && i + 3 < bytesRead && pos + i < to && !budget.spent; i = b.indexOf(0x1f, i + 1)) {
      if (b[i + 1] === 0x8b && b[i + 2] === 8 && !(b[i + 3] & 0xe0) && (await soundMemberAt(fh, pos + i, budget, signal))) return pos + i;
    }
    // (a header's first bytes at the chunk's end: looked at again in the next)
    pos += bytesRead - 3;
  }
  return undefined;
}

/** a decode stopped on purpose: the answer is known */
class Enough<T> extends Error {
  constructor(readonly answer: T) {
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

/** copy `chunk`, output at `at`, into the windows it overlaps */
function capture(windows: Array<{ from: number; raw: Buffer }>, chunk: Buffer, at: number): void {
  for (const w of windows) {
    const to = w.from + w.raw.length;
    if (at < to && at + chunk.length > w.from) chunk.copy(w.raw, Math.max(0, at - w.from), Math.max(0, w.from - at), Math.min(chunk.length, to - at));
  }
}

/**
 * Does the gzip file behind `fh` hold, decompressed, the bytes `mark` was taken of (both
 * fingerprints, and at least `mark.offset` bytes)? Decoded as inflate does (CheckedGunzip), in one
 * pass and only as far as the answer needs. The bytes as decoded (raw) match: yes, at the offset (a
 * checkpoint taken before the file was compressed; the copy has them at the same place, blanked
 * or not). Else they may match as blanked (a checkpoint taken in a copy with a failed member before
 * it): decoded on to the end of the member holding the line that ends at or after the offset,
 * then blanked as the copy was. A stranger stops after its first KiB's line when neither its bytes
 * nor newlines there match. Not gzip, or broken before the offset: no. `sound`: decoded to its
 * end, no member damaged.
 */
async function gzipMatches(fh: FileHandle, mark: ContentMark): Promise<{ match: boolean; sound: boolean }> {
  if (mark.tailFingerprint === undefined) return { match: false, sound: false };
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
  // as newlines, in the encoding a later member may decide; neither matching, nothing can)
  const possible = (w: Window): boolean | undefined => {
    const m = g.member;
    if (m.start > w.from || !g.encKnown) return m.start > w.from || undefined;
    if (m.firstEnd === undefined || m.firstEnd > w.from || g.lastEnd < to(w) || g.out < to(w) + ISIZE_SLACK) return undefined;
    return sha256hex(w.raw) === w.fp || ENCODINGS.some((e) => sha256hex(fillAt(e, w.from, w.raw.length)) === w.fp);
  };
  let rawChecked = false;
  const g: CheckedGunzip = new CheckedGunzip(fh, {
    data(chunk, at) {
      capture(windows, chunk, at);
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
      // every line the mark's bytes are in, and each member they lie in, checked (the blanks written in the encoding for good): they are as the copy has them
      if (member && g.lastEnd >= end && g.encFinal) throw new Enough(windows.every((w) => sha256hex(asRead(w)) === w.fp));
    },
  });
  let r: Gunzipped;
  try {
    r = await g.run();
  } catch (err) {
    if (err instanceof Enough) return { match: err.answer as boolean, sound: false };
    throw err;
  }
  const sound = r.broken === undefined;
  if (g.member.n === 0 || r.size < end) return { match: false, sound };
  return { match: windows.every((w) => sha256hex(asRead(w)) === w.fp), sound };
}

/** gzipMatchesDamaged's answer: `at` where the checkpoint falls in the copy (undefined: no match), and whether a member is damaged */
interface DamagedMatch {
  at?: number;
  byPosition?: boolean;
  damaged: boolean;
}

/**
 * When no rotation matched by its bytes: does the gzip file behind `fh` hold the checkpoint
 * `mark` was taken before compression, its first KiB or its last 256 bytes in a member that
 * failed its check or broke (damaged: their bytes cannot be compared, the position can)? Decoded
 * whole (as far as the members holding the offset), each fingerprint's bytes compared where they
 * lie in members that passed: any that differs, it is not ours (a stranger stops once its first
 * KiB's members are checked). Counted two ways: the copy's (a failed member at its trailer's
 * length: its data was damaged) and counting each failed member at its decoded length (its
 * trailer was: CRC-32 and length both wrong, data sound); `at` is where the offset falls in the
 * copy. Yes when the last 256 bytes match (they tell our place from a stranger's: files with the
 * same first KiB, a fixed preamble, differ there); when only the first KiB matches and the offset
 * lies in or just after a damaged member, by position (`byPosition`: taken by the search only
 * when no other rotation is). No byte to compare (both in damaged members): not matched, as any
 * damaged rotation long enough would be (an old one bit-rotten at its start would have every
 * rotation after it read again); the search names it.
 */
async function gzipMatchesDamaged(fh: FileHandle, mark: ContentMark): Promise<DamagedMatch> {
  const end = mark.offset;
  const windows = () => [
    { from: 0, raw: Buffer.alloc(Math.min(FP_BYTES, end)), fp: mark.fingerprint },
    { from: end - Math.min(TAIL_BYTES, end), raw: Buffer.alloc(Math.min(TAIL_BYTES, end)), fp: mark.tailFingerprint ?? '' },
  ];
  // the copy's count, and each failed member at its decoded length (d)
  const counts = [
    { d: false, w: windows() },
    { d: true, w: windows() },
  ];
  type Count = (typeof counts)[number];
  type W = Count['w'][number];
  const outOf = (c: Count) => (c.d ? g.out + g.shift : g.out);
  const brokeAt = (c: Count) => (g.broke === undefined ? undefined : c.d ? g.broke.d : g.broke.at);
  const unknown = (c: Count, w: W): boolean => {
    const z = w.from + w.raw.length;
    const b = brokeAt(c);
    return g.failures.some((f) => (c.d ? f.dStart : f.start) < z && (c.d ? f.dStart + f.raw : f.start + f.len) > w.from) || (b !== undefined && z > b);
  };
  const status = (c: Count, w: W): 'match' | 'unknown' | 'differs' => (w.from + w.raw.length <= outOf(c) && sha256hex(w.raw) === w.fp ? 'match' : unknown(c, w) ? 'unknown' : 'differs');
  // where the offset, counted with failed members at their decoded length, falls in the copy
  const inCopy = (c: Count): number => {
    if (!c.d) return end;
    let shift = 0;
    for (const f of g.failures) {
      if (end <= f.dStart) break;
      if (end < f.dStart + f.raw) return f.start + Math.min(end - f.dStart, f.len);
      shift += f.raw - f.len;
    }
    return end - shift;
  };
  const verdict = (c: Count): { at: number; byPosition: boolean } | undefined => {
    const [h, t] = c.w.map((w) => status(c, w));
    if (h === 'differs' || t === 'differs' || (t !== 'match' && h !== 'match')) return undefined;
    if (end > outOf(c) && brokeAt(c) === undefined) return undefined;
    const at = inCopy(c);
    // (a UTF-16 copy is read from a code unit's start)
    return { at: isUtf16(g.enc) && at % 2 === 1 ? at + 1 : at, byPosition: t !== 'match' };
  };
  const decide = (): { at: number; byPosition: boolean } | undefined => {
    const v = counts.map(verdict);
    const bytes = v.find((x) => x && !x.byPosition);
    if (bytes) return bytes;
    // (a member decoded to its trailer, whose length there is not what it gave, may have neither
    // length (its data and its length both damaged): by position only where neither count's bytes
    // differ, at the copy's place (a changed byte of data is the likelier damage); the copy's count
    // alone took a blank of 33,561 bytes for 793 and resumed in it, 3.4 KB of lines read again)
    if (g.failures.some((f) => f.decoded && f.len !== f.raw) && !(v[0] && v[1])) return undefined;
    return v.find((x) => x);
  };
  const g: CheckedGunzip = new CheckedGunzip(fh, {
    data(chunk, at) {
      for (const c of counts) capture(c.w, chunk, c.d ? at + g.shift : at);
    },
    blank() {},
    step(member) {
      if (!member) return;
      // (after a member's check, every member the output so far came from is checked)
      if (counts.every((c) => outOf(c) >= end)) throw new Enough(decide());
      if (counts.every((c) => c.w[0].raw.length <= outOf(c) && status(c, c.w[0]) === 'differs')) throw new Enough(undefined);
    },
  });
  let v: { at: number; byPosition: boolean } | undefined;
  try {
    await g.run();
    v = g.member.n === 0 ? undefined : decide();
  } catch (err) {
    if (!(err instanceof Enough)) throw err;
    v = err.answer as typeof v;
  }
  return { ...v, damaged: g.failures.length > 0 || g.broke !== undefined };
}

/**
 * A gzip rotation's decompressed copy: all of it, or (`broken` says why) what came out before the
 * stream broke; `damaged`: bytes of members that failed their check, blanked in it; `enc`: its
 * encoding, from the first member that passed its check (`encChecked` false: none did, its blanks
 * say nothing of it).
 */
export type Inflated = { fh: FileHandle; size: number; broken?: string; damaged?: number; enc: Encoding | undefined; encChecked: boolean } | { error: string };

/**
 * Decompress the gzip file behind `gz` (which the caller closes) into a file of its own in `dir`
 * (the OS's temp directory: the systemd unit's is private), unlinked before anything is written
 * (its space is freed when it is closed, crash or not), and open for reading. Decoded and checked
 * member by member (CheckedGunzip): a member that fails its check is blanked in place, those after
 * it read; a stream that breaks (a truncated or corrupt rotation) keeps the whole lines before the
 * member it breaks in; a copy that cannot be written (a full disk) is an error. `signal` stops it
 * (the input closing).
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
  // output that follows on, copied into a batch written WRITE_BATCH at a time (a member's output
  // held as it came pinned zlib's 16 KiB output buffer: 20,000 one-line members held 328 MB)
  const batch = Buffer.allocUnsafe(WRITE_BATCH);
  let pendAt = 0;
  let pendLen = 0;
  const flush = async (): Promise<void> => {
    if (pendLen === 0) return;
    const n = pendLen;
    pendLen = 0;
    await put(batch.subarray(0, n), pendAt);
  };
  try {
    const g: CheckedGunzip = new CheckedGunzip(
      gz,
      {
        async data(b, at) {
          if (pendLen > 0 && (at !== pendAt + pendLen || pendLen + b.length > WRITE_BATCH)) await flush();
          if (b.length >= WRITE_BATCH) return put(b, at);
          if (pendLen === 0) pendAt = at;
          b.copy(batch, pendLen);
          pendLen += b.length;
        },
        async blank(from, to) {
          await flush();
          for (let at = from; at < to; at += GZ_CHUNK) {
            if (signal?.aborted) throw new Error('stopped');
            await put(fillAt(g.enc, at, Math.min(GZ_CHUNK, to - at)), at);
          }
        },
      },
      signal,
    );
    const r = await g.run();
    await flush();
    if (signal?.aborted) throw new Error('stopped');
    // (a break: the copy ends after the last whole line before the member it is in; `lease 10.9.0.1` of `10.9.0.15` would be a sighting of the wrong address)
    if (r.size < extent) await out.truncate(r.size);
    // (not gzip, or empty: no member)
    if (g.member.n === 0 && r.broken !== undefined) throw new Error(r.broken);
    return { fh: out, size: r.size, broken: r.broken, damaged: r.damaged || undefined, enc: r.enc, encChecked: r.encChecked };
  } catch (err) {
    await out.close().catch(() => undefined);
    if (writeError) return { error: `writing the decompressed copy: ${writeError.message}` };
    return { error: signal?.aborted ? 'stopped' : (err as Error).message };
  }
}
