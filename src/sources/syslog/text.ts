/**
 * From a framed message (bytes) to the text handed downstream, refusing what is not a log line
 * (binary garbage: control bytes other than TAB, LF, CR). A message that is not valid UTF-8 is
 * kept: RFC 5424 §6.4 allows other encodings when there is no BOM, and old senders write Latin-1
 * or Windows-1252. It is decoded as Latin-1 (lossless: every byte is one character; the default)
 * or as UTF-8 with U+FFFD for the bad bytes (`invalidUtf8: replace`), and flagged for a counter.
 */
import { isUtf8 } from 'node:buffer';

export type InvalidUtf8 = 'latin1' | 'replace';

export type FrameText = { ok: true; text: string; notUtf8?: true } | { ok: false; reason: 'binary' };

/** a byte that is not printable ASCII, TAB, LF or CR (read as Latin-1: one character per byte) */
const NOT_PLAIN = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]/;

/** a control character other than TAB, LF and CR, or DEL */
const NOT_LOG_TEXT = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** Is `s` a log line by frameText's rule (no control character but TAB, LF and CR, no DEL)? For text that came as a string (HTTP). */
export function isLogText(s: string): boolean {
  return !NOT_LOG_TEXT.test(s);
}

/** The text of `b` (or of its bytes from `start` to `end`: no view to make per datagram of a batch). */
export function frameText(b: Buffer, invalidUtf8: InvalidUtf8 = 'latin1', start = 0, end = b.length): FrameText {
  // most lines are plain ASCII: decode once and let the regex engine check (faster than a loop here)
  const plain = b.toString('latin1', start, end);
  if (!NOT_PLAIN.test(plain)) return { ok: true, text: plain };
  let high = false;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c < 0x20) {
      if (c !== 0x09 && c !== 0x0a && c !== 0x0d) return { ok: false, reason: 'binary' };
    } else if (c >= 0x7f) {
      if (c === 0x7f) return { ok: false, reason: 'binary' };
      high = true;
    }
  }
  if (!high) return { ok: true, text: b.toString('latin1', start, end) }; // pure ASCII: the fastest decode
  if (isUtf8(start === 0 && end === b.length ? b : b.subarray(start, end))) return { ok: true, text: b.toString('utf8', start, end) };
  return { ok: true, text: b.toString(invalidUtf8 === 'replace' ? 'utf8' : 'latin1', start, end), notUtf8: true };
}
