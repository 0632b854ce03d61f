/**
 * `type: lease` inputs: a DHCP server's lease database read directly, so that after a restart or a
 * first install onsight knows who is present without waiting for the next renewal.
 *
 * - Journals (Kea memfile CSV, ISC dhcpd.leases) are read with the file tailer: byte checkpoints
 *   committed with the sightings, rotation and rewrite handled as for log files. A checkpoint is
 *   only ever committed at a record boundary (never inside an ISC lease block).
 * - Snapshots (dnsmasq.leases, rewritten in place on every change) are compared with the previous
 *   snapshot, which is the input's committed position: new or changed leases are lease sightings,
 *   vanished ones releases (or expiries, when their time had passed). A file read while being
 *   rewritten (no final newline, malformed lines) is counted and ends nothing.
 */
import { readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Stats as FileStats } from 'node:fs';
import type { Logger } from '../../log.js';
import { MAX_DURATION_S, type Sighting } from '../../sighting.js';
import { FileTailer } from '../file/tailer.js';
import { openFile } from '../file/content.js';
import { LogLimit } from '../../util/log-limit.js';
import type { InputHandle, LineSink, RawLine, ResumeStore, SourceCounters } from '../types.js';
import type { SnapshotLease, SnapshotParse } from './dnsmasq.js';
import { LEASE_FORMAT_TABLE } from './formats.js';
import { recordToSighting, type JournalReader, type LeaseRecord } from './record.js';
import type { LeaseInputConfig } from './schema.js';

interface Stats {
  received: number;
  dropped: Record<string, number>;
  events: Record<string, number>;
}

export async function startLeaseInput(opts: LeaseInputConfig, sink: LineSink, store: ResumeStore, log: Logger): Promise<InputHandle> {
  const f = LEASE_FORMAT_TABLE[opts.format];
  const name = `lease:${opts.path}`;
  const stats: Stats = { received: 0, dropped: {}, events: {} };
  const h = f.kind === 'journal'
    ? await startJournal(opts, f.reader, f.sightingFormat, f.companions ?? [], name, sink, store, stats, log)
    : await startSnapshot(opts, f.parser(), f.sightingFormat, name, sink, store, stats, log);
  log.info({ format: opts.format }, `reading the ${opts.format} lease database ${opts.path}`);
  return {
    name,
    counters: (): SourceCounters => {
      const extra = h.extra();
      const dropped = { ...stats.dropped };
      for (const [k, v] of Object.entries(extra.dropped as Record<string, number>)) dropped[k] = (dropped[k] ?? 0) + v;
      return { received: stats.received, dropped, events: { ...stats.events, ...extra.events } };
    },
    close: h.close,
  };
}

const bump = (r: Record<string, number>, k: string, n = 1) => (r[k] = (r[k] ?? 0) + n);

/** Malformed records: counted, and logged at most once a minute per input (a hostile file must not flood the log). */
function malformedReporter(name: string, stats: Stats, log: Logger) {
  let lastLog = 0;
  return (why: string, where: Record<string, unknown>) => {
    bump(stats.dropped, 'malformed');
    if (Date.now() - lastLog < 60_000) return;
    lastLog = Date.now();
    log.warn({ ...where, why, malformed: stats.dropped.malformed }, `lease database ${name.slice(6)}: malformed record skipped (${why})`);
  };
}

/** sightings per commit group when Kea's compacted files are read (1M leases in one group took the heap) */
const COMPANION_GROUP = 10_000;
/** a compacted file's line longer than this is dropped as malformed (as the tailer's maxLineBytes) */
const COMPANION_MAX_LINE = 1 << 20;

/**
 * Kea's compacted files (`.1`, `.2`) hold leases the live journal no longer does. They are read
 * when the journal's checkpoint cannot place us (a first start, or the checkpointed file compacted
 * away while we were down), line by line. What they say is reduced to each address's last record,
 * then committed in groups of COMPANION_GROUP, one group at a time, the last with a position naming
 * the files. So no group holds an address's lease while a later one ends it: split, a lease and its
 * release in two groups launched a scan of a device the file says has left, and a group committed
 * again after a crash made a binding anew. A file that cannot be read (a directory, a FIFO, no
 * permission) is said and passed over: it stopped the daemon's start, at every start.
 */
async function loadCompanions(opts: LeaseInputConfig, newReader: () => JournalReader, format: string, suffixes: string[], name: string, sink: LineSink, store: ResumeStore, stats: Stats, log: Logger, malformed: (why: string, where: Record<string, unknown>) => void): Promise<void> {
  // each file held open from here: both passes read the same file, whatever Kea's cleanup renames or
  // removes meanwhile (reopened by name, a .1 replaced between the passes matched no line, and lost leases)
  const files: { path: string; fh: FileHandle; st: FileStats }[] = [];
  try {
    for (const sfx of suffixes) {
      const path = opts.path + sfx;
      let fh: FileHandle;
      try {
        fh = await openFile(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        unreadableCompanion(path, err);
        continue;
      }
      files.push({ path, fh, st: await fh.stat() });
    }
    if (!files.length) return;
    const key = `${name}:companions`;
    const id = files.map((f) => `${f.path}:${f.st.ino}:${f.st.size}`).join(',');
    if (((await store.position(key)) as { id?: string } | undefined)?.id === id) return;
    const now = Date.now();
    // Two passes: the first finds each address's last record (which file, which line: a number, so
    // 1M leases cost a Map of 1M numbers, not of 1M sightings: 1.2 GB), the second commits those.
    const lastAt = new Map<string, number>();
    const where = (fi: number, n: number) => fi * 2 ** 32 + n;
    const readable: boolean[] = [];
    for (const [fi, f] of files.entries()) {
      readable[fi] = await eachRecord(f.fh, newReader, (rec, n) => lastAt.set(rec.ip, where(fi, n)), (why, n) => malformed(why, { file: f.path, line: n }))
        .then(() => true, (err: unknown) => (unreadableCompanion(f.path, err), false));
    }
    // one group in flight at a time (the ingest's backlog counts lines, and each of these carries up to 10,000)
    let batch: Sighting[] = [];
    let total = 0;
    const commit = (final: boolean) => new Promise<void>((resolve) => {
      const sightings = batch;
      batch = [];
      total += sightings.length;
      stats.received += sightings.length;
      sink.push({
        text: id, receivedAt: new Date(now), source: name, sightings,
        group: { ...(final ? { position: { key, value: { id } } } : {}), committed: () => resolve(), failed: () => resolve() },
      });
    });
    for (const [fi, f] of files.entries()) {
      if (!readable[fi]) continue;
      await eachRecord(f.fh, newReader, (rec, n) => {
        if (lastAt.get(rec.ip) === where(fi, n)) batch.push(recordToSighting(rec, now, format, name));
      }, () => undefined, async () => {
        if (batch.length >= COMPANION_GROUP) await commit(false);
      }).catch((err: unknown) => log.warn({ file: f.path, err: { message: (err as Error).message } }, `lease database ${opts.path}: ${f.path} could not be read again; what it holds is left out`));
    }
    await commit(true);
    const read = files.filter((_, fi) => readable[fi]).map((f) => f.path);
    log.info({ files: read, sightings: total }, `read ${read.join(' and ') || 'none'} of ${files.map((f) => f.path).join(' and ')} (leases compacted out of the journal)`);
  } finally {
    for (const f of files) await f.fh.close().catch(() => undefined);
  }

  function unreadableCompanion(path: string, err: unknown): void {
    bump(stats.events, 'companionUnreadable');
    log.warn({ file: path, code: (err as NodeJS.ErrnoException).code }, `lease database ${opts.path}: ${path} (leases compacted out of the journal) cannot be read, passed over: ${(err as Error).message}`);
  }
}

/** Each record of a compacted file (from its start), with its line's number; `every` runs after each line (awaited: backpressure). */
async function eachRecord(fh: FileHandle, newReader: () => JournalReader, record: (rec: LeaseRecord, n: number) => void, bad: (why: string, n: number) => void, every?: () => Promise<void>): Promise<void> {
  const reader = newReader();
  for await (const { text, n, tooLong } of cappedLines(fh, COMPANION_MAX_LINE)) {
    if (tooLong) {
      bad(`a line over ${COMPANION_MAX_LINE} bytes`, n);
      continue;
    }
    const r = reader.line(text);
    if (r.error) bad(r.error, n);
    for (const rec of r.records) record(rec, n);
    if (every) await every();
  }
}

/** The lines of the file behind `fh` (LF; a trailing CR dropped), numbered; a line over `max` bytes is given as tooLong, its text not kept. */
async function* cappedLines(fh: FileHandle, max: number): AsyncGenerator<{ text: string; n: number; tooLong?: true }> {
  const buf = Buffer.alloc(1 << 16);
  let pos = 0;
  let parts: Buffer[] = [];
  let size = 0;
  let over = false;
  let n = 0;
  const line = () => {
    n++;
    const whole = Buffer.concat(parts);
    const text = whole.toString('utf8');
    parts = [];
    size = 0;
    const wasOver = over;
    over = false;
    return wasOver ? { text: '', n, tooLong: true as const } : { text: text.endsWith('\r') ? text.slice(0, -1) : text, n };
  };
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, from);
      const end = nl < 0 || nl >= bytesRead ? bytesRead : nl;
      if (!over) {
        if (size + end - from > max) {
          over = true;
          parts = [];
        } else parts.push(Buffer.from(buf.subarray(from, end)));
        size += end - from;
      }
      if (end === bytesRead) break;
      yield line();
      from = nl + 1;
    }
  }
  if (size > 0 || over) yield line();
}

/** Is the file a checkpoint names still at the path or beside it (same inode)? */
async function checkpointFileExists(path: string, ino: number): Promise<boolean> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return false;
  }
  for (const n of names) {
    if (!n.startsWith(base)) continue;
    try {
      if ((await stat(join(dir, n))).ino === ino) return true;
    } catch {
      /* gone meanwhile */
    }
  }
  return false;
}

async function startJournal(opts: LeaseInputConfig, newReader: () => JournalReader, format: string, companions: string[], name: string, sink: LineSink, store: ResumeStore, stats: Stats, log: Logger) {
  const malformed = malformedReporter(name, stats, log);
  const reader = newReader();
  let at: { ino: number; offset: number } | undefined;
  // lines from the tailer become records; only lines at a record boundary go on (with their checkpoint)
  const adapter: LineSink = {
    push(l: RawLine): boolean {
      const cp = l.checkpoint;
      if (cp && at && (cp.ino !== at.ino || cp.offset < at.offset)) reader.reset(); // a new file, or the old one rewritten
      if (cp) at = { ino: cp.ino, offset: cp.offset };
      const r = reader.line(l.text);
      if (r.error) malformed(r.error, { line: l.line });
      if (!r.boundary) return true;
      const now = Date.now();
      const sightings: Sighting[] = r.records.map((rec) => recordToSighting(rec, now, format, name));
      stats.received += sightings.length;
      return sink.push({ ...l, source: name, sightings });
    },
    onDrain: (cb) => sink.onDrain(cb),
  };
  const tailer = new FileTailer({ key: opts.path, format, rotateWaitMs: 1000, maxLineBytes: 1 << 20 }, adapter, log);
  const cp = await store.checkpoint(opts.path);
  if (companions.length && (!cp || !(await checkpointFileExists(opts.path, cp.ino)))) {
    await loadCompanions(opts, newReader, format, companions, name, sink, store, stats, log, malformed);
  }
  await tailer.start(cp ? { kind: 'checkpoint', cp } : { kind: 'beginning' });
  const timer = setInterval(() => tailer.kick(), opts.pollMs);
  // not unref'd: a daemon with only lease inputs has nothing else keeping it alive
  return {
    extra: () => ({ dropped: tailer.stats.dropped, events: tailer.stats.events }),
    close: async () => {
      clearInterval(timer);
      await tailer.close();
    },
  };
}

/**
 * How long a snapshot file must stay unchanged after our read for the read to count; after this
 * many reads in a row that did not settle (a server rewriting it several times a second), the
 * short wait: at 5 rewrites a second the long one let one read count in 30 s.
 */
const SETTLE_MS = 150;
const SETTLE_SHORT_MS = 25;
const UNSETTLED_BEFORE_SHORT = 3;
/** the largest snapshot read (dnsmasq writes about 100 bytes a lease): past it, said and not read */
const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;
/** a snapshot that ends without a newline and stays so is read again this often, not at every poll */
const RECHECK_TRUNCATED_MS = 30_000;
/** a file changed this recently is read again at the next poll even if its signature is the same */
const RACY_MS = 2_000;

/** The whole of a regular file of at most `max` bytes (a FIFO, a device, a directory: refused, never blocking). */
async function readSnapshot(path: string, max: number): Promise<Buffer> {
  const fh = await openFile(path);
  try {
    const size = (await fh.stat()).size;
    if (size > max) throw Object.assign(new Error(`${path} is ${size} bytes, over the ${max} a lease database is read up to: not read`), { code: 'ETOOBIG' });
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** A lease as kept in the committed snapshot. */
type Kept = SnapshotLease & { ended?: true };

const identity = (l: SnapshotLease) => l.mac ?? l.duid ?? l.clientId ?? '';

/**
 * The committed snapshot (the input's position): the file's text as read, the addresses listed in it
 * whose end was said (expired, still listed), and the leases an incomplete read kept that it does
 * not list. (It was the lease table as JSON, twice the file, committed at every change: 50,000
 * leases, 7.3 MB a rewrite.) `leases`: the form before, still read.
 */
interface SavedSnapshot {
  snapshot?: string;
  ended?: string[];
  kept?: Kept[];
  leases?: Record<string, Kept>;
}

/** The leases a committed snapshot holds, by address (parsed with the input's own parser: its lines are then known to it). */
function restoreSnapshot(saved: SavedSnapshot | undefined, parse: (bytes: Buffer) => SnapshotParse): Map<string, Kept> {
  const m = new Map<string, Kept>();
  if (typeof saved?.snapshot === 'string') {
    for (const l of parse(Buffer.from(saved.snapshot)).leases) m.set(l.ip, l);
    for (const ip of saved.ended ?? []) {
      const l = m.get(ip);
      if (l) m.set(ip, { ...l, ended: true });
    }
    for (const k of saved.kept ?? []) m.set(k.ip, k);
  } else for (const [ip, l] of Object.entries(saved?.leases ?? {})) m.set(ip, l);
  return m;
}

async function startSnapshot(opts: LeaseInputConfig, parse: (bytes: Buffer) => SnapshotParse, format: string, name: string, sink: LineSink, store: ResumeStore, stats: Stats, log: Logger) {
  const key = name;
  let prev = restoreSnapshot((await store.position(key)) as SavedSnapshot | undefined, parse);
  let seen = '';
  let waiting = false;
  let running = false;
  let closed = false;
  const malformed = malformedReporter(name, stats, log);
  let lastMissingLog = 0;
  // (each said at most once a minute: one a poll, for ever, flooded the log)
  const said = new LogLimit(60_000);
  let unsettled = 0;
  /** the truncated snapshot last read, and when to read it again */
  let truncatedSig = '';
  let recheckAt = 0;
  /** the snapshot whose malformed lines and truncation were counted last */
  let countedSig = '';
  /**
   * The read compared last: its text and parse, whether it was complete, and the soonest end of a
   * lease it listed. A file read again as it was (the rereads of a file changed lately) is compared
   * again only when a listed lease's time has come since (50,000 leases: 20-70 ms a comparison).
   */
  let last: { bytes: Buffer; parse: SnapshotParse; complete: boolean; nextEnd: number } | undefined;

  const toSighting = (l: SnapshotLease, kind: Sighting['kind'], at: number): Sighting => {
    const s: Sighting = { kind, ip: l.ip, at: new Date(at).toISOString(), format, source: name };
    if (l.mac) s.mac = l.mac;
    if (l.duid) s.duid = l.duid;
    if (l.clientId) s.clientId = l.clientId;
    if (l.hostname) s.hostname = l.hostname;
    if (kind === 'lease') {
      if (l.expiresAt !== undefined) s.expiresAt = new Date(l.expiresAt).toISOString();
      else s.durationS = MAX_DURATION_S;
    }
    return s;
  };

  async function check(): Promise<void> {
    if (running || waiting || closed) return;
    running = true;
    try {
      let st;
      try {
        st = await stat(opts.path);
      } catch (err) {
        if (Date.now() - lastMissingLog > 600_000) {
          lastMissingLog = Date.now();
          log.warn({ code: (err as NodeJS.ErrnoException).code }, `lease database ${opts.path} cannot be read yet; waiting for it`);
        }
        return;
      }
      const sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (sig === seen && !(sig === truncatedSig && Date.now() >= recheckAt)) return;
      const bytes = await readSnapshot(opts.path, MAX_SNAPSHOT_BYTES);
      // dnsmasq truncates the file, then writes it: a read in between sees too little. A snapshot
      // counts only when the file stayed the same for a moment after we read it.
      const short = unsettled >= UNSETTLED_BEFORE_SHORT;
      await new Promise((r) => setTimeout(r, short ? SETTLE_SHORT_MS : SETTLE_MS));
      const after = await stat(opts.path);
      if (`${after.ino}:${after.size}:${after.mtimeMs}` !== sig) {
        unsettled++;
        return;
      }
      unsettled = 0;
      // (after a short wait, read again over the long one: what it lacks is ended only then)
      // (and while its mtime is within RACY_MS of now: a rewrite in the same timestamp tick, of the
      // same size, would keep the signature, and be missed until the next change; as git does)
      seen = short || Date.now() - after.mtimeMs < RACY_MS ? '' : sig;
      const p = last?.bytes.equals(bytes) ? last.parse : parse(bytes);
      // (a file read again unchanged, truncated or with malformed lines, is counted once)
      const fresh = sig !== countedSig;
      countedSig = sig;
      if (fresh) for (const e of p.errors) malformed(e.why, { line: e.line });
      // (a read that settled only over the short wait may be a rewrite paused between two writes at a
      // line's end: it takes new leases and ends nothing; only a read that settled over the long wait ends)
      const complete = !p.truncated && p.errors.length === 0 && !short;
      if (p.truncated) {
        // looked at again in a while even if it does not change (a rewrite within one mtime tick)
        recheckAt = Date.now() + RECHECK_TRUNCATED_MS;
        truncatedSig = sig;
        if (fresh) {
          bump(stats.dropped, 'truncated');
          const n = said.take('truncated');
          if (n) log.warn({ times: n }, `lease database ${opts.path} ends without a newline (read during a rewrite, or truncated): new leases taken, nothing ended until a complete read`);
        }
      } else truncatedSig = '';
      const now = Date.now();
      if (last?.parse === p && last.complete === complete && now < last.nextEnd) return;
      const out: Sighting[] = [];
      /** a listed lease as kept, saying what changed of it since `old` */
      const judge = (l: SnapshotLease, old: Kept | undefined): Kept => {
        if (l.expiresAt !== undefined && l.expiresAt <= now) {
          // still listed, but its time is up (dnsmasq drops expired leases lazily)
          if (!old?.ended) out.push(toSighting(l, 'expire', l.expiresAt));
          return { ...l, ended: true };
        }
        if (old && !old.ended && identity(old) !== identity(l)) out.push(toSighting(old, 'release', now));
        if (!old || old.ended || identity(old) !== identity(l) || old.expiresAt !== l.expiresAt || old.hostname !== l.hostname) out.push(toSighting(l, 'lease', now));
        return l;
      };
      // the leases not as kept (the parser gives the same lease again for a line that did not change),
      // how many of them are new addresses, and the soonest end of those listed
      const differ: SnapshotLease[] = [];
      let added = 0;
      let nextEnd = Infinity;
      for (const l of p.leases) {
        const live = l.expiresAt === undefined || l.expiresAt > now;
        if (live && l.expiresAt !== undefined && l.expiresAt < nextEnd) nextEnd = l.expiresAt;
        const old = prev.get(l.ip);
        if (old === l && live) continue;
        differ.push(l);
        if (!old) added++;
      }
      const kept: Kept[] = [];
      let next: Map<string, Kept>;
      let changed: boolean;
      if (p.distinct === p.leases.length && prev.size + added === p.distinct) {
        // each address listed once and every one kept still listed: only those that differ are looked
        // at (50,000 leases compared whole, into a new table, took 20-70 ms a rewrite)
        for (const l of differ) prev.set(l.ip, judge(l, prev.get(l.ip)));
        next = prev;
        changed = out.length > 0 || added > 0;
      } else {
        next = new Map<string, Kept>();
        for (const l of p.leases) next.set(l.ip, judge(l, prev.get(l.ip)));
        for (const [ip, old] of prev) {
          if (next.has(ip)) continue;
          if (!complete) {
            next.set(ip, old); // an incomplete read ends nothing
            kept.push(old);
            continue;
          }
          if (old.ended) continue;
          out.push(old.expiresAt !== undefined && old.expiresAt <= now ? toSighting(old, 'expire', old.expiresAt) : toSighting(old, 'release', now));
        }
        changed = out.length > 0 || next.size !== prev.size;
      }
      prev = next;
      last = { bytes, parse: p, complete, nextEnd };
      if (!changed) return;
      stats.received += out.length;
      bump(stats.events, 'snapshots');
      const carried = new Set(kept);
      const ended: string[] = [];
      for (const [ip, l] of next) if (l.ended && !carried.has(l)) ended.push(ip);
      const value: SavedSnapshot = { snapshot: bytes.toString(), ended, kept };
      const ok = sink.push({ text: `${p.leases.length} leases`, receivedAt: new Date(now), source: name, sightings: out, group: { position: { key, value } } });
      if (!ok) {
        waiting = true;
        sink.onDrain(() => {
          waiting = false;
          void check();
        });
      }
    } catch (err) {
      bump(stats.events, 'readError');
      const n = said.take(`read:${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      if (n) log.warn({ err: { message: (err as Error).message }, times: n }, `could not read the lease database ${opts.path}`);
    } finally {
      running = false;
    }
  }

  await check();
  const timer = setInterval(() => void check(), opts.pollMs);
  // not unref'd: a daemon with only lease inputs has nothing else keeping it alive
  return {
    extra: () => ({ dropped: {}, events: {} }),
    close: async () => {
      closed = true;
      clearInterval(timer);
      while (running) await new Promise((r) => setTimeout(r, 10));
    },
  };
}
