/**
 * Stream framing for syslog over TCP/TLS (RFC 6587): octet counting (`LEN SP MSG`, also RFC 5425)
 * and non-transparent framing (a delimiter ends each message: LF, with CRLF and NUL tolerated).
 *
 * Pure and incremental: bytes in, whole frames out, in any chunking. Memory is bounded by
 * `maxMessageBytes` (+ a few bytes of header): longer messages are skipped, never buffered, and
 * counted. Nothing here throws on any input.
 *
 * Auto-detection is per connection, on its first byte that is not a delimiter: a digit run
 * followed by a space (`123 <`) selects octet counting, anything else selects LF framing.
 *
 * A broken octet count (a non-digit where a count should be, a count of 0, one with more than
 * 10 digits, or a count not followed by a space) is counted as `badFrame` and the framer
 * resynchronises: it discards bytes until it sees what a frame start looks like (`DIGITS SP <`,
 * the `<` being the syslog PRI), either at the position where the broken frame began or after it.
 * The count is the suffix of the digit run whose frame ends on the next frame start, where the
 * chunk shows it (pickCount): a message ending in a digit runs into the next count. In auto mode a
 * broken first count is octet counting when two frames behind it chain exactly (octetFramesFollow).
 */

export type FramingMode = 'auto' | 'octet-counting' | 'lf';

export interface FramerCounters {
  /** frames handed out */
  frames: number;
  /** messages longer than maxMessageBytes, skipped */
  tooLarge: number;
  /** broken octet counts (each resynchronisation counts once) */
  badFrame: number;
  /** bytes thrown away while resynchronising or skipping over-long messages */
  discardedBytes: number;
}

/**
 * How a stream ended inside an octet-counted frame (end(), counted as `badFrame`): within the
 * count's digits, or `received` bytes into a message announced as `announced` bytes; or, reset
 * (abort()), `received` bytes into an LF-framed line.
 */
export type CutFrame = { in: 'count'; digits: string } | { in: 'body'; received: number; announced: number } | { in: 'line'; received: number };

export interface FramerOptions {
  maxMessageBytes: number;
  mode?: FramingMode;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const SP = 0x20;
const LT = 0x3c;
const MAX_COUNT_DIGITS = 10;
/** delimiters or spaces a frame start may follow its frame by (some senders add an LF, or CRLF) */
const MAX_GAP = 4;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isDelim(c: number): boolean {
  return c === LF || c === NUL || c === CR;
}

type State =
  | 'start' // between frames (octet mode) or before the first byte (auto)
  | 'count' // reading the digits of an octet count
  | 'body' // reading `need` bytes of an octet-counted message
  | 'skip' // skipping `need` bytes of an over-long octet-counted message
  | 'line' // accumulating an LF-framed line
  | 'lineSkip' // discarding an over-long LF-framed line up to its delimiter
  | 'resync'; // after a broken count: looking for DIGITS SP <

export class SyslogFramer {
  readonly counters: FramerCounters = { frames: 0, tooLarge: 0, badFrame: 0, discardedBytes: 0 };
  /** set by end() when the stream ended inside an octet-counted frame, or by abort() inside any frame (for the log to say so; the listener clears it) */
  cutFrame: CutFrame | undefined;
  private mode: FramingMode;
  private readonly max: number;
  private state: State = 'start';
  /** octet count being read, then the count of the frame in 'body' */
  private count = 0;
  private digits = 0;
  /** bytes still needed in 'body'/'skip' */
  private need = 0;
  /** pieces of the current message */
  private parts: Buffer[] = [];
  private partLen = 0;
  /** resync lookahead: the candidate `DIGITS SP` seen so far */
  private look: number[] = [];
  /** resync: a space has followed the digits in `look` */
  private spaced = false;
  /** resync: the run in `look` is a broken count's tail, or longer than a count: its suffixes pass only when checked */
  private tainted = false;
  /** the chunk whose next NUL (from the last search) is `nulAt` (-1: none after it) */
  private nulChunk: Buffer | undefined;
  private nulAt = -1;

  constructor(opts: FramerOptions) {
    this.max = Math.max(1, opts.maxMessageBytes);
    this.mode = opts.mode ?? 'auto';
  }

  /** The framing chosen for this stream (`auto` until the first byte decides). */
  get detected(): FramingMode {
    return this.mode;
  }

  /** Bytes currently held for an incomplete frame (never more than maxMessageBytes + 11). */
  get bufferedBytes(): number {
    return this.partLen + this.look.length;
  }

  /** Feed a chunk; returns the frames it completed (payload only, framing removed). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    try {
      this.run(chunk, out);
    } catch {
      // defensive: a bug here must not take the connection's listener down
      this.reset();
    }
    this.nulChunk = undefined; // not kept past the call
    return out;
  }

  /**
   * The stream ended: an LF-framed line without its final delimiter is still a message
   * (many senders omit the last LF before closing). An incomplete octet-counted frame is not.
   */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.state === 'line' && this.partLen > 0) this.emit(out);
    else if (this.state === 'body' || this.state === 'count') {
      this.counters.badFrame++;
      this.cutFrame = this.state === 'body' ? { in: 'body', received: this.count - this.need, announced: this.count } : { in: 'count', digits: Buffer.from(this.look).toString('latin1') };
    }
    this.reset();
    return out;
  }

  /**
   * The stream failed (a reset, ECONNRESET, or another socket error): no close says the sender
   * finished. A frame it was inside of is counted as end() counts a cut octet frame (`badFrame`,
   * `cutFrame` set), an LF-framed line too: it may be cut mid-address, so it is not a message.
   */
  abort(): void {
    if (this.state === 'line') {
      let e = this.partLen;
      const b = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partLen);
      while (e > 0 && isDelim(b[e - 1])) e--;
      if (e > 0) {
        this.counters.badFrame++;
        this.cutFrame = { in: 'line', received: e };
      }
      this.reset();
    } else this.end();
  }

  private reset(): void {
    this.parts = [];
    this.partLen = 0;
    this.look = [];
    this.count = 0;
    this.digits = 0;
    this.need = 0;
    this.state = this.mode === 'lf' ? 'line' : 'start';
  }

  private emit(out: Buffer[]): void {
    let b = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partLen);
    this.parts = [];
    this.partLen = 0;
    // CRLF: drop the CR that preceded the LF (LF mode); octet frames: drop trailing delimiters
    let e = b.length;
    while (e > 0 && isDelim(b[e - 1])) e--;
    if (e !== b.length) b = b.subarray(0, e);
    if (b.length === 0) return;
    if (b.length > this.max) {
      this.counters.tooLarge++;
      this.counters.discardedBytes += b.length;
      return;
    }
    this.counters.frames++;
    out.push(b);
  }

  private append(b: Buffer): void {
    if (b.length === 0) return;
    this.parts.push(b);
    this.partLen += b.length;
  }

  private run(chunk: Buffer, out: Buffer[]): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case 'start': {
          const c = chunk[i];
          if (isDelim(c) || c === SP) {
            i++; // tolerate delimiters between octet-counted frames
            break;
          }
          if (this.mode === 'auto') {
            // decide on the first meaningful byte; a digit needs its run and a space to confirm
            if (!isDigit(c)) {
              // (octet-counted frames behind a broken first one: "-81 <30>…81 <30>…" is not one long line)
              if (c !== LT && octetFramesFollow(chunk, i)) {
                this.mode = 'octet-counting';
                this.broken(false);
                break;
              }
              this.mode = 'lf';
              this.state = 'line';
              break;
            }
            // look ahead within this chunk; if the chunk ends inside the digits, keep them
            this.state = 'count';
            this.count = 0;
            this.digits = 0;
            this.look = [];
            break;
          }
          if (this.mode === 'lf') {
            this.state = 'line';
            break;
          }
          if (isDigit(c) && c !== 0x30) {
            this.state = 'count';
            this.count = 0;
            this.digits = 0;
            this.look = [];
            break;
          }
          this.broken(false);
          break;
        }
        case 'count': {
          const c = chunk[i];
          if (isDigit(c) && this.digits < MAX_COUNT_DIGITS && !(this.digits === 0 && c === 0x30)) {
            this.count = this.count * 10 + (c - 0x30);
            this.digits++;
            this.look.push(c);
            i++;
            break;
          }
          if (c === SP && this.digits > 0) {
            i++;
            this.look = [];
            if (this.mode === 'auto') this.mode = 'octet-counting';
            if (this.count > this.max) {
              this.counters.tooLarge++;
              this.state = 'skip';
              this.need = this.count;
            } else {
              this.state = 'body';
              this.need = this.count;
            }
            break;
          }
          if (this.mode === 'auto') {
            // a broken first count ("0", "081 <", "81<"), with octet-counted frames behind it: octet counting, resynchronised
            if (octetFramesFollow(chunk, i)) {
              this.mode = 'octet-counting';
              this.broken(this.digits > 0);
              break;
            }
            // "2024-01-01T..." or "12abc": not octet counting after all; what we held is line text
            this.mode = 'lf';
            this.state = 'line';
            const held = Buffer.from(this.look);
            this.look = [];
            this.appendLine(held, out);
            break;
          }
          this.broken(this.digits > 0);
          break;
        }
        case 'body': {
          const take = Math.min(this.need, n - i);
          this.append(chunk.subarray(i, i + take));
          i += take;
          this.need -= take;
          if (this.need === 0) {
            this.emit(out);
            this.state = 'start';
          }
          break;
        }
        case 'skip': {
          const take = Math.min(this.need, n - i);
          i += take;
          this.need -= take;
          this.counters.discardedBytes += take;
          if (this.need === 0) this.state = 'start';
          break;
        }
        case 'line': {
          // the next delimiter in this chunk (memchr, not a loop over bytes: most of a line's cost)
          const j = this.nextDelim(chunk, i);
          if (j === n) {
            this.appendLine(chunk.subarray(i, n), out);
            i = n;
          } else {
            this.appendLine(chunk.subarray(i, j), out);
            if (this.state === 'line') this.emit(out);
            else this.state = 'line'; // lineSkip ends at the delimiter
            i = j + 1;
          }
          break;
        }
        case 'lineSkip': {
          const j = this.nextDelim(chunk, i);
          this.counters.discardedBytes += j - i;
          if (j < n) {
            this.state = 'line';
            i = j + 1;
          } else i = n;
          break;
        }
        case 'resync': {
          // looking for DIGITS SP '<'. The digits kept are the run's last ten: a message that ends in a digit
          // ("via eth0") runs into the next count ("81 <"), so the count is one of the run's suffixes
          const c = chunk[i];
          i++;
          this.counters.discardedBytes++;
          if (c === LT && this.spaced) {
            const cnt = this.pickCount(chunk, i - 1);
            this.look = [];
            this.spaced = false;
            this.tainted = false;
            if (cnt === undefined) break; // no suffix can be a count here: go on looking
            this.counters.discardedBytes -= String(cnt).length + 2; // (its count, space and '<' were no waste)
            if (cnt > this.max) {
              this.counters.tooLarge++;
              this.state = 'skip';
              this.need = cnt - 1;
              this.counters.discardedBytes += 1;
              if (this.need === 0) this.state = 'start';
            } else {
              this.state = 'body';
              this.append(Buffer.from([LT]));
              this.count = cnt;
              this.need = cnt - 1;
              if (this.need === 0) {
                this.emit(out);
                this.state = 'start';
              }
            }
            break;
          }
          if (isDigit(c)) {
            if (this.spaced) {
              this.look = []; // "12 34 <": the run after the space may be the count
              this.spaced = false;
              this.tainted = false;
            }
            this.look.push(c);
            if (this.look.length > MAX_COUNT_DIGITS) {
              this.look.shift();
              this.tainted = true;
            }
          } else if (c === SP && this.look.length > 0 && !this.spaced) {
            this.spaced = true;
          } else {
            this.look = [];
            this.spaced = false;
            this.tainted = false;
          }
          break;
        }
      }
    }
  }

  /**
   * Resync found `DIGITS SP <` with the '<' at `lt` in `chunk`: which suffix of the digits is the count?
   * One with no leading zero whose frame ends where the chunk shows another frame start (after at most
   * MAX_GAP delimiters), longest first; else, for a clean run (not a broken count's tail, not longer than
   * a count), the longest whose end the chunk cannot show (at or past its end). Undefined otherwise:
   * not a frame start, and resync goes on.
   */
  private pickCount(chunk: Buffer, lt: number): number | undefined {
    const digits = this.look;
    let unchecked: number | undefined;
    for (let k = 0; k < digits.length; k++) {
      if (digits[k] === 0x30) continue;
      let cnt = 0;
      for (let m = k; m < digits.length; m++) cnt = cnt * 10 + (digits[m] - 0x30);
      const end = lt + cnt; // first byte after the frame
      const next = end > chunk.length ? 0 : frameStartAt(chunk, end);
      if (next > 0) return cnt;
      if (next === 0) unchecked ??= cnt;
    }
    return this.tainted ? undefined : unchecked;
  }

  /** Where the next LF or NUL is in `chunk` from `i` (its length if none). */
  private nextDelim(chunk: Buffer, i: number): number {
    if (chunk !== this.nulChunk) {
      // NUL is rare: find it once per chunk, again only after passing it
      this.nulChunk = chunk;
      this.nulAt = -2;
    }
    if (this.nulAt !== -1 && this.nulAt < i) this.nulAt = chunk.indexOf(NUL, i);
    const lf = chunk.indexOf(LF, i);
    const end = lf < 0 ? chunk.length : lf;
    return this.nulAt >= 0 && this.nulAt < end ? this.nulAt : end;
  }

  /** Append to an LF-framed line, switching to skip mode once it exceeds the limit. */
  private appendLine(b: Buffer, _out: Buffer[]): void {
    if (this.state === 'lineSkip') {
      this.counters.discardedBytes += b.length;
      return;
    }
    if (this.partLen + b.length > this.max + 1 /* a CR before LF is not content */) {
      this.counters.tooLarge++;
      this.counters.discardedBytes += this.partLen + b.length;
      this.parts = [];
      this.partLen = 0;
      this.state = 'lineSkip';
      return;
    }
    this.append(b);
  }

  /**
   * A broken octet count: count it once, discard what was held, look for the next frame start.
   * `insideRun`: the break came inside a count's digit run, whose tail must not pass for a count unchecked.
   */
  private broken(insideRun: boolean): void {
    this.counters.badFrame++;
    this.counters.discardedBytes += this.partLen;
    this.parts = [];
    this.partLen = 0;
    // (a digit run we were inside of may run on into the next count: its digits are kept, and pickCount checks them)
    this.look = [];
    this.spaced = false;
    this.tainted = insideRun;
    this.state = 'resync';
  }
}

/**
 * Is there an octet-counted frame start at `at` in `chunk` (delimiters or spaces, then DIGITS SP '<')?
 * 1: yes; -1: no; 0: the chunk ends before it can tell.
 */
function frameStartAt(chunk: Buffer, at: number, exact = false): -1 | 0 | 1 {
  let i = at;
  // (a few delimiters between frames at most: an unbounded skip, asked at every candidate, made a crafted chunk quadratic)
  while (!exact && i < chunk.length && (isDelim(chunk[i]) || chunk[i] === SP)) {
    if (++i - at > MAX_GAP) return -1;
  }
  const d0 = i;
  while (i < chunk.length && isDigit(chunk[i]) && i - d0 <= MAX_COUNT_DIGITS) i++;
  const d = i - d0;
  if (d > MAX_COUNT_DIGITS || (d > 0 && chunk[d0] === 0x30)) return -1;
  if (i >= chunk.length) return 0;
  if (d === 0 || chunk[i] !== SP) return -1;
  if (i + 1 >= chunk.length) return 0;
  return chunk[i + 1] === LT ? 1 : -1;
}

/**
 * Does `chunk`, from `from` and before any LF, hold two frames that chain: a DIGITS SP '<' whose count,
 * for some suffix of its digits, lands exactly on another DIGITS SP '<' (no gap), whose own count lands
 * exactly on a third or on the chunk's end? Octet counting does that; LF-framed text with "12 <b>" in it
 * almost never does (one landing alone was enough to misread such a stream).
 */
function octetFramesFollow(chunk: Buffer, from: number): boolean {
  const lf = chunk.indexOf(LF, from);
  const stop = lf < 0 ? chunk.length : lf;
  for (let lt = chunk.indexOf(LT, from); lt >= 0 && lt < stop; lt = chunk.indexOf(LT, lt + 1)) {
    if (lt < 2 || chunk[lt - 1] !== SP || !isDigit(chunk[lt - 2])) continue;
    let k = lt - 2;
    while (k > from && isDigit(chunk[k - 1]) && lt - 1 - k < MAX_COUNT_DIGITS) k--;
    for (let m = k; m < lt - 1; m++) {
      if (chunk[m] === 0x30) continue;
      const end = lt + Number(chunk.toString('latin1', m, lt - 1));
      if (end < stop && frameStartAt(chunk, end, true) === 1 && chainsOn(chunk, end, stop)) return true;
    }
  }
  return false;
}

/** The frame start at `at` (DIGITS SP '<'): does its count end exactly on another frame start, or on `stop`? */
function chainsOn(chunk: Buffer, at: number, stop: number): boolean {
  let i = at;
  while (isDigit(chunk[i])) i++;
  const end = i + 1 + Number(chunk.toString('latin1', at, i));
  return end === stop || (end < stop && frameStartAt(chunk, end, true) === 1);
}
