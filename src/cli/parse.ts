/**
 * `onsight parse --format ID|auto [FILE...]`: lines in, Sighting JSON Lines out (stdout), a
 * summary on stderr, and with --explain a line on stderr for each line that gave no sighting. Never launches anything. Splits on \n only (a trailing \r is dropped), so
 * line numbers match what editors and `sed -n Np` show.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { LineDecoder } from '../parsers/decoder.js';
import type { ParserRegistry } from '../parsers/registry.js';
import { sightingToJson } from '../sighting.js';

export interface ParseOptions {
  format: string;
  zone: string;
  files: string[];
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** show a progress line on stderr (a terminal) */
  progress: boolean;
  /** say on stderr, per line, why it gave no sighting (or lost a draft) */
  explain?: boolean;
}

async function* lines(stream: Readable): AsyncGenerator<string> {
  let rest = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream as AsyncIterable<string>) {
    let start = 0;
    const text = rest + chunk;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const line = text.slice(start, nl);
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  if (rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}

export async function runParse(registry: ParserRegistry, o: ParseOptions): Promise<number> {
  const decoder = new LineDecoder(registry, o.format, o.zone);
  const kinds: Record<string, number> = {};
  const inputs = o.files.length ? o.files : ['-'];
  let lastProgress = 0;
  let pending = '';
  const write = (s: string) => {
    pending += s;
    if (pending.length > 1 << 16) {
      o.out.write(pending);
      pending = '';
    }
  };
  for (const file of inputs) {
    const stream = file === '-' ? process.stdin : createReadStream(file);
    const source = file === '-' ? 'stdin' : `file:${file}`;
    let n = 0;
    try {
      for await (const line of lines(stream)) {
        n++;
        const r = decoder.decode(line, { receivedAt: new Date(), source, line: n });
        if (o.explain && r.why) {
          // in order with the sightings: what is pending on stdout goes first
          o.out.write(pending);
          pending = '';
          o.err.write(`${file === '-' ? 'stdin' : file}:${n}: ${r.why}\n`);
        }
        for (const s of r.sightings) {
          kinds[s.kind] = (kinds[s.kind] ?? 0) + 1;
          write(sightingToJson(s) + '\n');
        }
        if (o.progress && (n & 1023) === 0 && Date.now() - lastProgress > 500) {
          lastProgress = Date.now();
          o.err.write(`\r${file}: ${n} lines, ${decoder.counters.sightings} sightings`);
        }
      }
    } catch (err) {
      o.out.write(pending);
      o.err.write(`onsight parse: cannot read ${file}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  o.out.write(pending);
  const c = decoder.counters;
  if (o.progress) o.err.write('\r\x1b[K');
  const byKind = Object.entries(kinds).map(([k, v]) => `${k} ${v}`).join(', ');
  const byFormat = Object.entries(c.byFormat).map(([f, v]) => `${f} ${v.lines}`).join(', ');
  o.err.write(`${c.lines} lines: ${c.sightings} sightings${byKind ? ` (${byKind})` : ''}; ${c.recognized} recognised${byFormat ? ` (${byFormat})` : ''}, ${c.unrecognized} unrecognised` +
    `${c.invalid ? `, ${c.invalid} malformed drafts dropped` : ''}${c.parserErrors ? `, ${c.parserErrors} parser errors` : ''}\n`);
  return 0;
}
