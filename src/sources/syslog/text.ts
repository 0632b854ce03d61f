/**
 * From a framed message (bytes) to the text handed downstream, refusing what is not a log line:
 * binary garbage (control bytes other than TAB, LF, CR) and, by default, invalid UTF-8.
 */
import { isUtf8 } from 'node:buffer';

export type FrameText = { ok: true; text: string; replaced?: boolean } | { ok: false; reason: 'binary' | 'badEncoding' };

export function frameText(b: Buffer, invalidUtf8: 'drop' | 'replace' = 'drop'): FrameText {
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
  if (invalidUtf8 === 'replace') return { ok: true, text: b.toString('utf8'), replaced: true };
  return { ok: false, reason: 'badEncoding' };
}
