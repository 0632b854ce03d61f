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

export function frameText(b: Buffer, invalidUtf8: InvalidUtf8 = 'latin1'): FrameText {
  let high = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c < 0x20) {
      if (c !== 0x09 && c !== 0x0a && c !== 0x0d) return { ok: false, reason: 'binary' };
    } else if (c >= 0x7f) {
      if (c === 0x7f) return { ok: false, reason: 'binary' };
      high = true;
    }
  }
  if (!high) return { ok: true, text: b.toString('latin1') }; // pure ASCII: the fastest decode
  if (isUtf8(b)) return { ok: true, text: b.toString('utf8') };
  return { ok: true, text: b.toString(invalidUtf8 === 'replace' ? 'utf8' : 'latin1'), notUtf8: true };
}
