/**
 * A request body, bounded: Content-Length over the limit is refused before reading; a body sent
 * without one, or a gzip body that inflates past the limit (a gzip bomb), is cut off as soon as it
 * crosses it. Memory per request is thus at most the limit.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { createGunzip, type Gunzip } from 'node:zlib';

export type BodyResult =
  /** notUtf8: the first line (1-based) that is not UTF-8, whose bytes `body` holds as U+FFFD */
  | { ok: true; body: string; notUtf8?: { line: number } }
  | { ok: false; why: 'tooLarge' | 'badGzip' | 'badEncoding' | 'aborted'; message: string };

export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (enc !== 'identity' && enc !== 'gzip' && enc !== '') {
      resolve({ ok: false, why: 'badEncoding', message: `Content-Encoding ${enc} is not supported (use gzip or none)` });
      req.resume();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    // compressed bodies are bounded after inflation; their length on the wire is bounded too
    if (Number.isFinite(declared) && declared > maxBytes) {
      resolve({ ok: false, why: 'tooLarge', message: `body of ${declared} bytes is over the limit of ${maxBytes}` });
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let gunzip: Gunzip | undefined;
    const finish = (r: BodyResult) => {
      if (done) return;
      done = true;
      if (!r.ok) {
        gunzip?.destroy();
        req.unpipe();
        req.resume();
      }
      resolve(r);
    };
    const take = (b: Buffer) => {
      size += b.length;
      if (size > maxBytes) return finish({ ok: false, why: 'tooLarge', message: `body over the limit of ${maxBytes} bytes${gunzip ? ' after decompression' : ''}` });
      chunks.push(b);
    };
    const end = () => {
      const bytes = Buffer.concat(chunks);
      finish(isUtf8(bytes) ? { ok: true, body: bytes.toString('utf8') } : { ok: true, body: bytes.toString('utf8'), notUtf8: { line: firstLineNotUtf8(bytes) } });
    };
    req.on('aborted', () => finish({ ok: false, why: 'aborted', message: 'client went away' }));
    req.on('error', () => finish({ ok: false, why: 'aborted', message: 'client went away' }));
    if (enc === 'gzip') {
      let wire = 0;
      gunzip = createGunzip();
      req.on('data', (b: Buffer) => {
        wire += b.length;
        if (wire > maxBytes) finish({ ok: false, why: 'tooLarge', message: `body over the limit of ${maxBytes} bytes` });
      });
      req.pipe(gunzip);
      gunzip.on('data', take);
      gunzip.on('end', end);
      gunzip.on('error', (err) => finish({ ok: false, why: 'badGzip', message: `not valid gzip: ${err.message}` }));
    } else {
      req.on('data', take);
      req.on('end', end);
    }
  });
}

/** the first line (1-based) of `bytes` that is not UTF-8 (a newline byte is never inside a UTF-8 sequence) */
function firstLineNotUtf8(bytes: Buffer): number {
  let line = 1;
  for (let start = 0; start <= bytes.length; line++) {
    let nl = bytes.indexOf(0x0a, start);
    if (nl < 0) nl = bytes.length;
    if (!isUtf8(bytes.subarray(start, nl))) return line;
    start = nl + 1;
  }
  return line;
}
