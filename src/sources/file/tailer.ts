/**
 * Our own byte-offset tailer for one log file path (the input's key).
 *
 * - Reads with positioned reads on an fd from a byte offset, splits on LF (UTF-16: the 2-byte
 *   LF code unit at an even offset, LE or BE), and holds a partial last line until its newline arrives.
 * - Rename rotation (a new inode at the path): keeps reading the old fd until it has been quiet for
 *   rotateWaitMs, then switches to the new file from its start. A partial last line of the old
 *   file is emitted then, since nothing will complete it.
 * - Truncation (copytruncate, or an in-place overwrite such as the weekly Windows DHCP audit log):
 *   size below what we read, or the first KiB / the bytes before our offset changed, restarts at
 *   0. With copytruncate, the copy (path.1, ...) is looked for first and finished from our offset,
 *   which closes most of the race; lines written between logrotate's copy and its truncate are
 *   lost to every tailer (inherent to copytruncate).
 * - A file replaced by a copy with the same content up to our offset (rsync, sync tools) goes on
 *   from the offset rather than being read twice.
 * - Each line carries its checkpoint (path key, dev, ino, offset past the line, fingerprints), so a
 *   restart resumes exactly after the last committed line: at the path if it is still that file,
 *   or in the rotated file that now has it (finished first), then the newer ones; or in a gzip
 *   rotation (logrotate's compress while we were down), read in a decompressed copy.
 * - Respects backpressure: stops when push returns false, goes on after onDrain.
 */
import { stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as wait } from 'node:timers/promises';
import { isUtf8 } from 'node:buffer';
import type { Logger } from '../../log.js';
import type { FileCheckpoint, LineSink, RawLine } from '../types.js';
import { FP_BYTES, TAIL_BYTES, compressedSiblings, listingOrder, newerCompressed, openFile, contentMatches, detectEncoding, isNewlineAt, isUtf16, findCompressed, findRotated, inflate, isGzip, openListed, readAt, rotatedSiblings, sha256hex, type ContentMark, type Encoding, type LogSeries, type Sibling } from './content.js';

/** a checkpointed file not found beside the path is looked for this many more times, ROTATED_LOOK_AGAIN_MS × k apart */
const ROTATED_LOOKS = 3;
const ROTATED_LOOK_AGAIN_MS = 100;

const CHUNK = 64 * 1024;
/** bytes before readPos read again with each chunk of the live file, to see it is still ours */
const OVERLAP = 64;
const EMPTY = Buffer.alloc(0);

export interface TailerOptions {
  /** the checkpoint key and the path watched */
  key: string;
  format: string;
  rotateWaitMs: number;
  maxLineBytes: number;
  /** where its rotations are kept besides its own folder (logrotate's olddir; content.ts LogSeries) */
  rotatedDirs?: readonly string[];
}

export interface TailerStats {
  received: number;
  dropped: Record<string, number>;
  events: Record<string, number>;
}

/** One open file being read. */
interface Segment {
  fh: FileHandle;
  dev: number;
  ino: number;
  /** the name it was opened by (for logs) */
  openedAs: string;
  /** false: a rotated file to finish, then close */
  live: boolean;
  /** a gzip rotation's copy: the encoding its decode took from the first member that passed its check (`checked` false: none did) */
  gz?: { enc: Encoding | undefined; checked: boolean };
}

export type StartPosition =
  | { kind: 'checkpoint'; cp: FileCheckpoint }
  | { kind: 'beginning' }
  | { kind: 'end' };

/** a file waiting its turn, held by its fd (`live`: the path's own file; `gzip`: decompressed when its turn comes) */
interface QueuedFile {
  fh: FileHandle;
  dev: number;
  ino: number;
  path: string;
  from: number;
  live?: boolean;
  gzip?: boolean;
}

export class FileTailer {
  readonly stats: TailerStats = { received: 0, dropped: {}, events: {} };
  private seg?: Segment;
  /**
   * The live file's stat when its content last matched our checkpoint's fingerprints: an idle poll
   * finding the same size, mtime and ctime (any write changes ctime) skips re-reading and hashing
   * the head and tail (two reads and hashes per poll were most of an idle node's CPU).
   */
  private verified?: string;
  /** the live file's size at the last in-place check */
  private checkedSize = -1;
  /**
   * files to read after the current one: rotated ones to finish, opened when queued (logrotate may
   * rename them again before we get there), and last the live file, held by its fd
   */
  private queue: QueuedFile[] = [];
  private offset = 0;
  private readPos = 0;
  private buf: Buffer = Buffer.alloc(0);
  private lineNo = 0;
  private enc?: Encoding;
  /** first min(1024, offset) consumed bytes of the current file */
  private head: Buffer = Buffer.alloc(0);
  private headFp?: string;
  /** last up-to-256 consumed bytes */
  private tail: Buffer = Buffer.alloc(0);
  /** skipping the rest of an over-long line */
  private skipping = false;
  private paused = false;
  private closed = false;
  private running?: Promise<void>;
  private again = false;
  /** a new inode appeared at the path: when we first saw it, and when the old fd last gave data */
  private rotating?: { since: number; lastData: number };
  private lastDataAt = 0;
  /** when this tailer was started */
  private readonly startedAt = Date.now();

  /** when data last came, or the tailer started (the input polls a long-quiet file less often) */
  get lastActivityAt(): number {
    return Math.max(this.lastDataAt, this.startedAt);
  }
  /** the last chunk ended inside a run of NULs (skipNulRun) */
  private nulRun = false;
  /** a rotated file at EOF but written to lately: its stat when first seen so (rotatedQuiet) */
  private rotatedSeen?: { key: string; since: number };
  /**
   * The inode we were tailing as the live file before a restart, found renamed (rotated) at start:
   * its writer may not have reopened yet, so it gets the quiet period (rotatedQuiet). Not a
   * copytruncate copy: nobody writes to a copy, and waiting on it held the live file back while
   * it was truncated and refilled.
   */
  private quietIno?: number;
  private lastError?: string;
  /** aborted at close: a decompression under way stops (a large rotation would outlast a service stop) */
  private readonly stopping = new AbortController();
  /** the path is missing since (ms) */
  missingSince?: number;

  /** the file and the folders its rotations are listed in */
  private readonly series: LogSeries;

  constructor(private readonly opts: TailerOptions, private readonly sink: LineSink, private readonly log: Logger) {
    const said = new Set<string>();
    this.series = {
      path: opts.key,
      rotatedDirs: opts.rotatedDirs ?? [],
      // (once per folder and error: the listing runs at every rotation and restart)
      unlisted: (dir, code) => {
        if (said.has(`${dir} ${code}`)) return;
        said.add(`${dir} ${code}`);
        this.log.warn({ path: opts.key, rotatedDir: dir, code }, `rotatedDir ${dir} cannot be listed (${code}): rotations moved there are not found, and their unread lines are lost`);
      },
    };
  }

  get source(): string {
    return `file:${this.opts.key}`;
  }

  /** dev:ino of every file this tailer holds open */
  heldInodes(): string[] {
    const out: string[] = [];
    if (this.seg) out.push(`${this.seg.dev}:${this.seg.ino}`);
    for (const q of this.queue) out.push(`${q.dev}:${q.ino}`);
    return out;
  }

  private event(name: string): void {
    this.stats.events[name] = (this.stats.events[name] ?? 0) + 1;
  }

  /** Open the file and position per `start`. Does not throw for a missing file: it is waited for. */
  async start(start: StartPosition): Promise<void> {
    // Positioning holds the same guard as a read pass: a kick (fs event, poll tick) while it runs
    // only asks for another pass. A pass alongside it would read from offset 0 before seg is set,
    // or see the checkpoint's offset with fingerprints not yet rebuilt ("overwritten", from 0):
    // either reads the file twice after a restart.
    const positioning = this.position(start).catch((err: unknown) => {
      this.log.warn({ err, path: this.opts.key }, 'could not open file yet; will retry');
      // (the read passes that retry say it again only for another error: a FIFO was logged twice)
      this.lastError = (err as Error).message;
    });
    this.running = positioning.finally(() => {
      this.running = undefined;
    });
    await this.running;
    this.kick();
  }

  private async openLive(): Promise<Segment | undefined> {
    let fh: FileHandle;
    try {
      fh = await openFile(this.opts.key);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.missingSince ??= Date.now();
        return undefined;
      }
      throw err;
    }
    this.missingSince = undefined;
    const st = await fh.stat();
    return { fh, dev: st.dev, ino: st.ino, openedAs: this.opts.key, live: true };
  }

  private async position(start: StartPosition): Promise<void> {
    if (start.kind === 'checkpoint') {
      const cp = start.cp;
      const live = await this.openLive();
      if (live) {
        const st = await live.fh.stat();
        if (live.ino === cp.ino && (await contentMatches(live.fh, st.size, cp))) {
          if (live.dev !== cp.dev) this.log.info({ path: this.opts.key }, 'device number changed since the checkpoint; same inode and content, resuming');
          await this.useSegment(live, cp.offset);
          this.event('resumed');
          return;
        }
      }
      // the path now holds a copy of the same content (sync tools replace files): only with the tail
      // fingerprint, since the first KiB alone is shared by files with a fixed preamble
      if (live && cp.tailFingerprint !== undefined && (await contentMatches(live.fh, (await live.fh.stat()).size, cp))) {
        this.log.info({ path: this.opts.key }, 'file replaced by a copy with the same content since the checkpoint; resuming at its offset');
        await this.useSegment(live, cp.offset);
        this.event('resumed');
        return;
      }
      let found = await findRotated(this.series, cp, live);
      // a rotation under way (a shift of .1 to .2, .2 to .3, ...) can hide the file from one listing:
      // looked for again before it is taken as gone, which reads the live file from its start and
      // skips what was left of ours (a loaded machine lost a rotated file's 1,000 lines so)
      for (let k = 1; !found && k <= ROTATED_LOOKS; k++) {
        await wait(ROTATED_LOOK_AGAIN_MS * k);
        found = await findRotated(this.series, cp, live);
      }
      if (found) {
        this.log.info({ path: this.opts.key, rotated: found.match.path, offset: cp.offset, newer: found.newer.map((s) => s.path) }, 'resuming in the rotated file, then the newer ones');
        this.quietIno = cp.ino;
        await this.enqueue(found.match, cp.offset);
        // keep the live file open: if it rotates again while we finish the others, we still read it
        await this.enqueueThenLive(live ? await this.notInLive(found.newer, live) : found.newer, live);
        this.event('resumedRotated');
        await this.nextSegment();
        return;
      }
      // compressed while we were down (logrotate's compress): read from the checkpoint in a decompressed copy
      if (await this.resumeCompressed(cp, live)) return;
      // the file we were reading is gone or was overwritten: what is at the path now is new to us
      if (live) {
        this.log.warn({ path: this.opts.key, checkpoint: { ino: cp.ino, offset: cp.offset } }, 'checkpointed file not found (rotated away or overwritten); reading the current file from its start');
        this.event('overwritten');
        await this.useSegment(live, 0);
      }
      return;
    }
    const live = await this.openLive();
    if (!live) return;
    if (start.kind === 'beginning') return this.useSegment(live, 0);
    // end: just past the last complete line
    const st = await live.fh.stat();
    let off = st.size;
    const look = Math.min(st.size, CHUNK);
    const b = await readAt(live.fh, st.size - look, look);
    const nl = b.lastIndexOf(0x0a);
    off = nl >= 0 ? st.size - look + nl + 1 : st.size - look === 0 ? 0 : st.size;
    const head = await readAt(live.fh, 0, 4);
    if (detectEncoding(head) === 'utf16le' && off % 2 === 1) off++;
    await this.useSegment(live, off);
  }

  /**
   * Queue a gzip rotation found by content (held by its fd, decompressed when its turn comes) from
   * `from`, and the rotations newer than it, gzip or plain; a plain copy the live file still holds
   * from its start is left to be read with the live file (copytruncate).
   */
  private async enqueueCompressed(found: NonNullable<Awaited<ReturnType<typeof findCompressed>>['found']>, live: { fh: FileHandle } | undefined): Promise<void> {
    const { match, fh, newer, at } = found;
    if (found.byPosition) this.log.warn({ path: this.opts.key, rotated: match.path, offset: at }, 'the checkpoint lies in a damaged member of a gzip rotation: found by its first KiB and its position alone (no other rotation could hold it); resuming there');
    const st = await fh.stat().catch(() => match.st);
    // (`at`: the checkpoint's offset, or where it falls in the copy when a member before it failed its check with another length)
    this.queue.push({ fh, dev: st.dev, ino: st.ino, path: match.path, from: at, gzip: true });
    await this.enqueueNewer(newer, live);
  }

  /** Queue rotations from their start, gzip or plain, but a plain copy the live file still holds from its start (copytruncate). */
  private async enqueueNewer(newer: Sibling[], live: { fh: FileHandle } | undefined): Promise<void> {
    const plain = live ? new Set(await this.notInLive(newer.filter((s) => !isGzip(s.path)), live)) : undefined;
    for (const s of newer) {
      if (isGzip(s.path)) await this.enqueue(s, 0, true);
      else if (!plain || plain.has(s)) await this.enqueue(s, 0);
    }
  }

  /**
   * At start, the checkpointed file found in no plain rotation: is it in a gzip one? Then that
   * rotation is queued from the checkpoint's offset, the newer rotations after it and then the live
   * file; each gzip one is held by its fd and decompressed into a copy when its turn comes
   * (nextSegment). A copy is a file of its own: its lines' checkpoints name its inode, so a restart
   * while it is read finds the gzip rotation again by content. False when none holds it (said when
   * some compressed rotation could not be read: `.xz`, `.bz2`...).
   */
  private async resumeCompressed(cp: FileCheckpoint, live: { fh: FileHandle; dev: number; ino: number } | undefined): Promise<boolean> {
    // (a damaged rotation looked at again, its damaged bytes not compared: at a restart only)
    const search = await findCompressed(this.series, cp, true);
    if (!search.found) {
      // (named: its lines after the checkpoint, and those of the rotations after it, are lost)
      if (search.damaged.length) this.log.warn({ path: this.opts.key, damaged: search.damaged }, 'checkpointed file not found; it may be in a damaged gzip rotation, its bytes at the checkpoint unreadable');
      if (search.unreadable.length) {
        this.event('compressedUnreadable');
        this.log.warn({ path: this.opts.key, unreadable: search.unreadable }, 'checkpointed file not found; it may be in a compressed rotation onsight cannot read (gzip only): its lines after the checkpoint are lost');
      }
      return false;
    }
    await this.enqueueCompressed(search.found, live);
    this.log.info({ path: this.opts.key, rotated: search.found.match.path, offset: search.found.at, newer: search.found.newer.map((s) => s.path) }, 'resuming in the compressed rotation (decompressed), then the newer ones');
    await this.enqueueThenLive([], live);
    this.event('resumedCompressed');
    // (no nextSegment here: the first read pass decompresses, so a large rotation does not hold the
    // daemon's start, and the inputs started after this one, meanwhile)
    return true;
  }

  /**
   * A queued gzip rotation's decompressed copy, as a segment (the rotation's fd closed); undefined
   * (counted, said) when none can be made. A stream that breaks part-way (a truncated or corrupt
   * rotation) gives what came out before the break, and a member that fails its check is blanked
   * (no lines, the copy's offsets kept); said and counted as `compressedBroken`.
   */
  private async inflated(q: { fh: FileHandle; path: string }): Promise<Segment | undefined> {
    const r = await inflate(q.fh, this.stopping.signal);
    await q.fh.close().catch(() => undefined);
    if (this.closed) {
      if ('fh' in r) await r.fh.close().catch(() => undefined);
      return undefined;
    }
    if ('error' in r) {
      this.event('rotatedLost');
      this.log.warn({ path: this.opts.key, rotated: q.path, err: r.error }, 'a compressed rotation could not be decompressed; its lines are lost');
      return undefined;
    }
    if (r.broken !== undefined) {
      this.event('compressedBroken');
      if (r.damaged) this.log.warn({ path: this.opts.key, rotated: q.path, bytes: r.size, damaged: r.damaged, err: r.broken }, 'a compressed rotation holds data that fails its check (CRC-32): those lines are left out (they may be garbage); reading the rest');
      else this.log.warn({ path: this.opts.key, rotated: q.path, bytes: r.size, err: r.broken }, 'a compressed rotation breaks part-way (truncated or corrupt) or its trailer is damaged: the member that cannot be checked is left out; reading the rest');
    }
    try {
      const st = await r.fh.stat();
      return { fh: r.fh, dev: st.dev, ino: st.ino, openedAs: q.path, live: false, gz: { enc: r.enc, checked: r.encChecked } };
    } catch (err) {
      await r.fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Make `seg` the current file, positioned at `offset` (rebuilding the fingerprint state). */
  private async useSegment(seg: Segment, offset: number): Promise<void> {
    this.seg = seg;
    this.offset = offset;
    this.readPos = offset;
    this.buf = Buffer.alloc(0);
    this.skipping = false;
    this.rotating = undefined;
    this.lastDataAt = Date.now();
    // (a file emptied by a copytruncate, or a hole of NULs at its start, a writer without O_APPEND
    // writing on at its offset, says nothing of the encoding: the one read before stays. Detected
    // from the NULs, a UTF-16 file's lines read as UTF-8; a file of one series keeps its encoding)
    const first = await readAt(seg.fh, 0, 4);
    const found = detectEncoding(first);
    // (a gzip rotation's copy: the encoding its decode took from a member that passed its check; its
    // blanked members, newlines, say nothing: detected from them, a UTF-16 file's lines were read as UTF-8)
    if (seg.gz) {
      if (seg.gz.checked && (this.enc === undefined || seg.gz.enc !== undefined)) this.enc = seg.gz.enc;
    } else if (this.enc === undefined || (found !== undefined && !first.every((b) => b === 0))) this.enc = found;
    this.head = await readAt(seg.fh, 0, Math.min(FP_BYTES, offset));
    this.headFp = this.head.length >= FP_BYTES ? sha256hex(this.head) : undefined;
    const t = Math.min(TAIL_BYTES, offset);
    this.tail = await readAt(seg.fh, offset - t, t);
    this.lineNo = offset === 0 ? 0 : await this.countLines(seg.fh, offset);
  }

  private async countLines(fh: FileHandle, upto: number): Promise<number> {
    if (upto > 1 << 30) return 0; // too big to count at start: line numbers restart
    let n = 0;
    const b = Buffer.alloc(CHUNK);
    for (let pos = 0; pos < upto; ) {
      const { bytesRead } = await fh.read(b, 0, Math.min(CHUNK, upto - pos), pos);
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead; i++) if (isNewlineAt(this.enc, b, i, pos + i)) n++;
      pos += bytesRead;
    }
    return n;
  }

  /**
   * The copies among `newer` whose content the live file does not still hold from its start: one
   * made by a copytruncate whose truncate has not come yet is read with the live file from 0
   * (queued as well, it would be read twice); once the truncate comes, it is the copy that
   * finishes where we were.
   */
  private async notInLive(newer: Sibling[], live: { fh: FileHandle }): Promise<Sibling[]> {
    const out: Sibling[] = [];
    for (const s of newer) {
      let held = false;
      let opened;
      try {
        opened = await openListed(s);
        if (opened && opened.st.size > 0) {
          const size = opened.st.size;
          const mark = {
            offset: size,
            fingerprint: sha256hex(await readAt(opened.fh, 0, Math.min(FP_BYTES, size))),
            tailFingerprint: sha256hex(await readAt(opened.fh, size - Math.min(TAIL_BYTES, size), Math.min(TAIL_BYTES, size))),
          };
          held = await contentMatches(live.fh, (await live.fh.stat()).size, mark);
        }
      } catch {
        /* unreadable: queued, and enqueue says so */
      } finally {
        await opened?.fh.close().catch(() => undefined);
      }
      if (!held) out.push(s);
    }
    return out;
  }

  /** Open a rotated file now (by its inode: if it was renamed since we listed it, find it again). */
  private async enqueue(sib: Sibling, from: number, gzip = false): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      let path = sib.path;
      if (attempt > 0) {
        const again = (gzip ? await compressedSiblings(this.series) : await rotatedSiblings(this.series)).find((s) => s.st.ino === sib.st.ino && s.st.dev === sib.st.dev);
        if (!again) continue; // (gone, or a listing taken across yet another shift)
        path = again.path;
      }
      try {
        const opened = await openListed({ path, st: sib.st });
        if (opened) {
          this.queue.push({ fh: opened.fh, dev: opened.st.dev, ino: opened.st.ino, path, from, gzip });
          return;
        }
      } catch {
        /* unreadable now */
      }
      // renamed or removed since it was listed (or unreadable): look again
    }
    this.event('rotatedLost');
    this.log.warn({ path: this.opts.key, rotated: sib.path }, 'a rotated file vanished before we could open it; its lines are lost');
  }

  /**
   * Queue `rotated` (but the live file, should it be among them: it rotated between our open and
   * the listing) and then the live file, held by its fd: it is read even if it rotates meanwhile.
   */
  private async enqueueThenLive(rotated: Sibling[], live: { fh: FileHandle; dev: number; ino: number } | undefined, note?: string): Promise<void> {
    for (const s of rotated) if (s.st.ino !== live?.ino || s.st.dev !== live?.dev) await this.enqueue(s, 0);
    if (note && this.queue.length) this.log.info({ path: this.opts.key, files: this.queue.map((q) => q.path) }, note);
    if (live) this.queue.push({ fh: live.fh, dev: live.dev, ino: live.ino, path: this.opts.key, from: 0, live: true });
  }

  /**
   * After a file we finished (`done`, no longer at the path): the files rotated since, oldest
   * first, then the live path. The live file is opened before the listing: a rotation in between
   * leaves it among the siblings (skipped by inode), never a file nobody reads. If `done` is gone
   * (deleted), at least the file seen at the path (`seenAtPath`) is not skipped.
   */
  private async queueRotatedSince(done: ContentMark & { ino: number; dev: number }, seenAtPath?: { ino: number; dev: number }): Promise<void> {
    const live = await this.openLive();
    const found = await findRotated(this.series, done, undefined, true);
    let rotated = found?.newer ?? [];
    if (!found) {
      // compressed since (logrotate's compress): it is in no plain rotation, and the files rotated
      // after it, compressed or not, were skipped (a middle file's lines lost while we were behind)
      const after = await this.rotatedAfterGzipped(done);
      if (after) await this.enqueueNewer(after, live);
      else if (seenAtPath) rotated = (await rotatedSiblings(this.series)).filter((s) => s.st.ino === seenAtPath.ino && s.st.dev === seenAtPath.dev);
    }
    await this.enqueueThenLive(rotated, live, 'rotated meanwhile; reading the rotated files first');
  }

  /**
   * The rotations after `done`, gzip or plain, found through its gzipped copy (a file we finished,
   * compressed since); undefined when no gzip rotation holds it.
   */
  private async rotatedAfterGzipped(done: ContentMark): Promise<Sibling[] | undefined> {
    const packed = (await findCompressed(this.series, done)).found;
    await packed?.fh.close().catch(() => undefined); // (finished: only the newer ones are read)
    return packed?.newer;
  }

  /**
   * The copies of the series made after `done` (found by its inode or content), but the live file
   * itself and a copy it still holds from its start, queued before `live`, which goes back last.
   */
  private async queueCopiesSince(done: ContentMark & { ino: number; dev: number }, live: QueuedFile): Promise<void> {
    const rest = this.queue.splice(0);
    try {
      const found = await findRotated(this.series, done, live).catch(() => undefined);
      // (plain and gzipped alike: a copy made meanwhile may be compressed already)
      // (else the finished copy was compressed since: the copies after it, through its gzipped copy)
      const newer = found
        ? [...found.newer, ...(await newerCompressed(this.series, found.match).catch(() => []))].sort(listingOrder(this.series))
        : ((await this.rotatedAfterGzipped(done).catch(() => undefined)) ?? []);
      // only those older than the live file itself: it may have been renamed into the series while we
      // were held back, and what came after it is found when it is finished (queued now, it was read twice)
      const at = newer.findIndex((s) => s.st.ino === live.ino && s.st.dev === live.dev);
      const before = at >= 0 ? newer.slice(0, at) : newer;
      const n = this.queue.length;
      await this.enqueueNewer(before, live);
      if (this.queue.length > n) this.log.info({ path: this.opts.key, files: this.queue.slice(n).map((q) => q.path) }, 'copied again while we read the copy before: reading the new copies first');
    } finally {
      this.queue.push(live, ...rest);
    }
  }

  /**
   * Close the current (rotated) file and move to the next queued one, or the live path. After the
   * last rotated file, the files rotated while we read it (the path was missing when we resumed, or
   * it rotated twice meanwhile) come before the live path: opening the path alone would skip them.
   */
  private async nextSegment(): Promise<void> {
    let finished = this.seg && !this.seg.live ? { ...this.mark(), ino: this.seg.ino, dev: this.seg.dev } : undefined;
    if (this.seg) await this.seg.fh.close().catch(() => undefined);
    this.seg = undefined;
    for (;;) {
      if (!this.queue.length) {
        if (finished) await this.queueRotatedSince(finished);
        else await this.enqueueThenLive([], await this.openLive());
        finished = undefined;
      }
      // from a finished copy to the live file: copies made meanwhile come first (a copytruncate while
      // we caught up on the one before: the live file no longer holds what went into the new copy)
      if (finished && this.queue[0]?.live) await this.queueCopiesSince(finished, this.queue.shift()!);
      finished = undefined;
      const q = this.queue.shift();
      if (!q) return;
      // a gzip rotation (resumeCompressed): its decompressed copy; none could be made: the next file
      const seg = q.gzip ? await this.inflated(q) : { fh: q.fh, dev: q.dev, ino: q.ino, openedAs: q.path, live: q.live === true };
      if (!seg) continue;
      await this.useSegment(seg, q.from);
      return;
    }
  }

  /** Schedule a read pass (fs event, poll tick, drain). Passes never overlap. */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
          this.lastError = undefined;
        } catch (err) {
          this.stats.events.readError = (this.stats.events.readError ?? 0) + 1;
          // once per distinct error, not once per poll
          const msg = (err as Error).message;
          if (msg !== this.lastError) this.log.warn({ err, path: this.opts.key }, 'file read failed; will retry');
          this.lastError = msg;
        }
      } while (this.again && !this.closed && !this.paused);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async pass(): Promise<void> {
    if (!this.seg) {
      // the file did not exist (or all was finished): wait for it, from its start
      await this.nextSegment();
      if (!this.seg) return;
    }
    // before reading on: is the file still the one we read? (truncated, or rewritten in place and
    // already longer than before: reading at our offset would hand out the middle of a stranger)
    // checked: this pass's check found the live file as we left it, this long (nothing to read yet)
    let checked: Segment | undefined;
    if (this.seg.live) {
      if (await this.checkInPlace(this.seg)) {
        if (!this.seg) return;
      } else if (this.checkedSize === this.readPos) checked = this.seg;
    }
    let chunk: Buffer | undefined;
    while (!this.closed && !this.paused && this.seg) {
      if (!this.emitLines()) return;
      const seg: Segment = this.seg;
      // an idle poll: the size just read says there is nothing new (no read call, no buffer)
      const idle = checked === seg && this.checkedSize === this.readPos;
      if (!idle) chunk ??= Buffer.allocUnsafe(CHUNK); // only the bytes read are used (copied out)
      // The live file is read from a few bytes before readPos, bytes we hold: if they differ, the
      // file was truncated and refilled past our offset between the check above and this read
      // (copytruncate while we were slow), and what follows is a stranger's. Checked with the
      // read itself, not by another system call.
      const known = seg.live && !idle ? this.bytesBeforeReadPos() : EMPTY;
      const got = chunk && !idle ? (await seg.fh.read(chunk, 0, CHUNK, this.readPos - known.length)).bytesRead : 0;
      if (this.closed) return;
      const bytesRead = Math.max(0, got - known.length);
      if (chunk && bytesRead > 0) {
        if (!chunk.subarray(0, known.length).equals(known)) {
          this.verified = undefined;
          // not the file we read (its copy is finished from our offset first), or, if what we
          // consumed is intact, only our partial line changed: read it again
          if (!(await this.checkInPlace(seg)) && this.seg === seg) {
            this.readPos = this.offset;
            this.buf = Buffer.alloc(0);
          }
          if (!this.seg) return;
          checked = undefined;
          continue;
        }
        this.readPos += bytesRead;
        const fresh = chunk.subarray(known.length, got);
        this.buf = this.buf.length ? Buffer.concat([this.buf, fresh]) : Buffer.from(fresh);
        this.lastDataAt = Date.now();
        if (this.enc === undefined && this.offset === 0) this.enc = detectEncoding(this.buf.subarray(0, 4));
        continue;
      }
      // at EOF
      if (!seg.live) {
        // the file we tailed before a restart, found renamed and written to lately (a restart in the
        // middle of logrotate: the writer has not reopened yet), gets the same quiet period as at
        // run time before its partial last line is taken as whole and the file left: the next poll reads on
        if (seg.ino === this.quietIno) {
          if (!(await this.rotatedQuiet(seg))) return;
          this.quietIno = undefined;
        }
        this.flushPartial();
        if (this.paused) return;
        this.event('rotatedFinished');
        await this.nextSegment();
        continue;
      }
      // checked a moment ago in this pass and nothing read since: the in-place check need not run twice
      const r = await this.checkLive(seg, idle);
      if (r === 'same') return;
      checked = undefined;
    }
  }

  /**
   * Has the rotated file `seg` been left alone for rotateWaitMs? By its mtime; with an mtime ahead
   * of our clock, by how long its size and mtime have stayed as we first saw them.
   */
  private async rotatedQuiet(seg: Segment): Promise<boolean> {
    const st = await seg.fh.stat();
    const now = Date.now();
    if (now - st.mtimeMs >= this.opts.rotateWaitMs) return true;
    const key = `${seg.dev}:${seg.ino}:${st.size}:${st.mtimeMs}`;
    if (this.rotatedSeen?.key !== key) this.rotatedSeen = { key, since: now };
    return now - this.rotatedSeen.since >= this.opts.rotateWaitMs;
  }

  /** At EOF of the live file: did it rotate, shrink or get overwritten? */
  private async checkLive(seg: Segment, inPlaceChecked = false): Promise<'same' | 'changed'> {
    let st;
    try {
      st = await stat(this.opts.key);
      this.missingSince = undefined;
    } catch {
      this.missingSince ??= Date.now();
      return 'same'; // renamed away, the new one not created yet: keep reading the old fd
    }
    if (st.ino !== seg.ino || st.dev !== seg.dev) {
      const now = Date.now();
      this.rotating ??= { since: now, lastData: this.lastDataAt };
      // late writes to the old file (the writer reopens only after its HUP) are still read
      if (now - this.rotating.since < this.opts.rotateWaitMs || now - this.lastDataAt < this.opts.rotateWaitMs) return 'same';
      // a copy of what we were reading (content identical up to our offset): go on from the offset
      let fh: FileHandle | undefined;
      try {
        fh = await openFile(this.opts.key);
        const nst = await fh.stat();
        if (this.offset > 0 && (await contentMatches(fh, nst.size, this.mark()))) {
          this.log.info({ path: this.opts.key }, 'file replaced by a copy with the same content; continuing at our offset');
          this.event('replacedSame');
          await seg.fh.close().catch(() => undefined);
          const keep = { buf: this.buf, readPos: this.readPos, skipping: this.skipping, lineNo: this.lineNo };
          this.seg = { fh, dev: nst.dev, ino: nst.ino, openedAs: this.opts.key, live: true };
          this.rotating = undefined;
          Object.assign(this, keep);
          return 'changed';
        }
        await fh.close();
      } catch {
        await fh?.close().catch(() => undefined);
        return 'same';
      }
      this.flushPartial();
      if (this.paused) return 'same';
      this.log.info({ path: this.opts.key, oldIno: seg.ino, newIno: st.ino }, 'file rotated; old one finished, reading the new one');
      this.event('rotated');
      // more than one rotation may have happened since we looked (rotateWaitMs, a slow sink): the
      // rotated files newer than the one we finished come first, oldest first, then the live path
      const mark = { ...this.mark(), ino: seg.ino, dev: seg.dev };
      await seg.fh.close().catch(() => undefined);
      this.seg = undefined;
      await this.queueRotatedSince(mark, st);
      await this.nextSegment();
      return 'changed';
    }
    this.rotating = undefined;
    if (!inPlaceChecked && (await this.checkInPlace(seg))) return 'changed';
    return 'same';
  }

  /** Truncated or rewritten in place? Then finish a copy if there is one, and start over at 0. */
  private async checkInPlace(seg: Segment): Promise<boolean> {
    const st = await seg.fh.stat();
    this.checkedSize = st.size;
    const shrunk = st.size < this.readPos;
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${this.offset}`;
    if (!shrunk && key === this.verified) return false;
    if (!shrunk && (this.offset === 0 || (await contentMatches(seg.fh, st.size, this.mark())))) {
      this.verified = key;
      return false;
    }
    this.verified = undefined;
    // copytruncate, or the weekly rewrite of a Windows DHCP audit log. The copy (path.1 ...)
    // holds what was written since our last read: finish it from our offset first.
    this.event(shrunk ? 'truncated' : 'overwritten');
    const copy = this.offset > 0 ? await findRotated(this.series, this.mark(), seg) : undefined;
    // (copytruncate with compress: the copy may be gzipped already, path.1 gone: it was looked for
    // among plain files only, and what was left of it after our offset lost, a few lines each time)
    const packed = this.offset > 0 && !copy ? (await findCompressed(this.series, this.mark())).found : undefined;
    this.log.info({ path: this.opts.key, size: st.size, offset: this.offset, copy: copy?.match.path ?? packed?.match.path }, `file ${shrunk ? 'truncated' : 'overwritten'}; reading it again from the start`);
    if (copy && copy.match.st.size > this.offset) await this.enqueue(copy.match, this.offset);
    // copies made after it (copytruncate again while we were paused: what was written between the two truncations)
    if (copy) await this.enqueueNewer(copy.newer, seg);
    if (packed) await this.enqueueCompressed(packed, seg);
    await this.restartLive(seg);
    return true;
  }

  /** Start the live file over at 0 (after any queued copies), dropping the partial line read. */
  private async restartLive(seg: Segment): Promise<void> {
    if (this.queue.length) {
      // the live file after the copies, by the fd we hold (it may be renamed away meanwhile)
      await this.enqueueThenLive([], seg);
      this.seg = undefined;
      await this.nextSegment();
      return;
    }
    await this.useSegment(seg, 0);
  }

  private mark(): { offset: number; fingerprint: string; tailFingerprint: string } {
    return { offset: this.offset, fingerprint: this.fingerprint(), tailFingerprint: sha256hex(this.tail) };
  }

  private fingerprint(): string {
    return this.headFp ?? sha256hex(this.head);
  }

  /** The last OVERLAP bytes before readPos that we hold: the consumed tail, then the partial line. */
  private bytesBeforeReadPos(): Buffer {
    const n = Math.min(OVERLAP, this.tail.length + this.buf.length);
    if (this.buf.length >= n) return this.buf.subarray(this.buf.length - n);
    return Buffer.concat([this.tail.subarray(this.tail.length - (n - this.buf.length)), this.buf]);
  }

  /** Account `bytes` (a line with its newline, or skipped bytes) as consumed. */
  private consume(bytes: Buffer): void {
    if (this.offset < FP_BYTES) {
      this.head = Buffer.concat([this.head, bytes.subarray(0, FP_BYTES - this.offset)]);
      if (this.head.length >= FP_BYTES) this.headFp = sha256hex(this.head);
    }
    this.offset += bytes.length;
    if (bytes.length >= TAIL_BYTES) this.tail = Buffer.from(bytes.subarray(bytes.length - TAIL_BYTES));
    else {
      const t = Buffer.concat([this.tail, bytes]);
      this.tail = t.length > TAIL_BYTES ? t.subarray(t.length - TAIL_BYTES) : t;
    }
  }

  /** Where the next newline begins in buf (UTF-16: its first byte, 0A of LE's 0A 00, 00 of BE's 00 0A), or -1. */
  private findNewline(from: number): number {
    const b = this.buf;
    if (!isUtf16(this.enc)) return b.indexOf(0x0a, from);
    const be = this.enc === 'utf16be';
    let i = from + (be ? 1 : 0);
    for (;;) {
      i = b.indexOf(0x0a, i);
      if (i < 0 || (!be && i + 1 >= b.length)) return -1;
      if (isNewlineAt(this.enc, b, i, this.offset + i) && (!be || i - 1 >= from)) return be ? i - 1 : i;
      i++;
    }
  }

  private decode(line: Buffer, atStart: boolean): string {
    let s: string;
    if (this.enc === 'utf16le') s = line.toString('utf16le');
    else if (this.enc === 'utf16be') s = Buffer.from(line.subarray(0, line.length & ~1)).swap16().toString('utf16le');
    else if (isUtf8(line)) s = line.toString('utf8');
    else s = line.toString('latin1'); // ANSI (Windows-1252 is close enough for what we extract)
    if (atStart && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
    if (s.endsWith('\r')) s = s.slice(0, -1);
    return s;
  }

  /** Push the complete lines in buf. Returns false when the sink asked us to stop. */
  private emitLines(): boolean {
    const seg = this.seg!;
    const nlLen = isUtf16(this.enc) ? 2 : 1;
    for (;;) {
      if (this.enc === undefined && this.offset === 0 && this.buf.length < 4) {
        // too few bytes to tell UTF-16 from 8: wait, unless a plain newline already ends a line
        if (this.buf.indexOf(0x0a) < 0 || ((this.buf[0] === 0xff || this.buf[0] === 0xfe) && this.buf.length < 2)) return true;
        this.enc = detectEncoding(Buffer.concat([this.buf, Buffer.alloc(4)]).subarray(0, 4)) ?? 'utf8';
      }
      if (this.buf[0] === 0 && (!isUtf16(this.enc) || this.buf[1] === 0) && !this.skipNulRun()) break;
      const nl = this.findNewline(0);
      if (nl < 0) break;
      this.nulRun = false;
      // a run of empty lines at once: a gzip rotation's member that failed its check is blanked to
      // newlines in its copy, megabytes of them (one at a time: 25 MB took 28 s)
      if (nl === 0 && !this.skipping) {
        const n = this.emptyLines(nlLen);
        if (n > nlLen) {
          this.consume(this.buf.subarray(0, n));
          this.buf = this.buf.subarray(n);
          this.lineNo += n / nlLen;
          continue;
        }
      }
      const lineBytes = this.buf.subarray(0, nl);
      const whole = this.buf.subarray(0, nl + nlLen);
      const atStart = this.offset === 0;
      this.buf = this.buf.subarray(nl + nlLen);
      this.consume(whole);
      this.lineNo++;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (lineBytes.length > this.opts.maxLineBytes) {
        this.stats.dropped.tooLarge = (this.stats.dropped.tooLarge ?? 0) + 1;
        continue;
      }
      const text = this.decode(lineBytes, atStart);
      if (text.length === 0) continue;
      if (!this.pushLine(seg, text)) return false;
    }
    if (this.buf.length > this.opts.maxLineBytes + nlLen) {
      // an over-long line still without its newline: consume and forget what we have of it
      if (!this.skipping) this.stats.dropped.tooLarge = (this.stats.dropped.tooLarge ?? 0) + 1;
      this.skipping = true;
      const keep = isUtf16(this.enc) ? 1 : 0; // a trailing 0A (LE) or 00 (BE) may be half a UTF-16 newline
      const cut = this.buf.length - keep;
      this.consume(this.buf.subarray(0, cut));
      this.buf = Buffer.from(this.buf.subarray(cut));
    } else if (this.buf.byteOffset > 0 && this.buf.length < 4096) {
      this.buf = Buffer.from(this.buf); // don't pin the whole 64 KiB chunk for a short partial line
    }
    return true;
  }

  /** Bytes of the empty lines at buf's start (it starts with a newline): newline code units only. */
  private emptyLines(nlLen: number): number {
    const b = this.buf;
    let n = 0;
    if (nlLen === 1) {
      while (n < b.length && b[n] === 0x0a) n++;
      return n;
    }
    const [x, y] = this.enc === 'utf16be' ? [0, 0x0a] : [0x0a, 0];
    while (n + 1 < b.length && b[n] === x && b[n + 1] === y) n += 2;
    return n;
  }

  /**
   * NUL bytes where a line starts: a writer that does not append (O_APPEND; OpenVPN's `--log`, many
   * applications) goes on writing at its own offset after logrotate's copytruncate, leaving a hole
   * of NULs from 0 to there. They are no line's text: skipped, so the line after them reads as it
   * was written (it was pushed behind the NULs, and no parser took it). Counted (`nulSkipped`).
   * Returns false when the buffer held only NULs (more may follow).
   */
  private skipNulRun(): boolean {
    // (UTF-16: whole code units of NUL, 00 00; a line starts at an even offset)
    const unit = isUtf16(this.enc) ? 2 : 1;
    let n = 0;
    while (n + unit <= this.buf.length && this.buf[n] === 0 && this.buf[n + unit - 1] === 0) n += unit;
    this.consume(this.buf.subarray(0, n));
    this.buf = this.buf.subarray(n);
    if (!this.nulRun) this.event('nulSkipped');
    this.nulRun = this.buf.length === 0; // (one hole read in several chunks is one event)
    return !this.nulRun;
  }

  private pushLine(seg: Segment, text: string): boolean {
    this.stats.received++;
    const checkpoint: FileCheckpoint = {
      path: this.opts.key,
      dev: seg.dev,
      ino: seg.ino,
      offset: this.offset,
      fingerprint: this.fingerprint(),
      tailFingerprint: sha256hex(this.tail),
    };
    const line: RawLine = { text, receivedAt: new Date(), source: this.source, line: this.lineNo, format: this.opts.format, checkpoint };
    if (this.sink.push(line)) return true;
    this.paused = true;
    this.sink.onDrain(() => {
      this.paused = false;
      this.kick();
    });
    return false;
  }

  /** End of a file that will not grow any more: its last line may lack a newline. */
  private flushPartial(): void {
    if (!this.emitLines()) return;
    if (this.buf.length === 0 || !this.seg) return;
    const rest = this.buf;
    const atStart = this.offset === 0;
    this.buf = Buffer.alloc(0);
    this.consume(rest);
    this.lineNo++;
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    const text = this.decode(rest, atStart);
    if (text.length) this.pushLine(this.seg, text);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    await this.running?.catch(() => undefined);
    await this.seg?.fh.close().catch(() => undefined);
    this.seg = undefined;
    for (const q of this.queue.splice(0)) await q.fh.close().catch(() => undefined);
  }
}
