/**
 * RFC 5424 structured data in large lines (`npm run bench -- --only=syslog`, or alone:
 * `node dist/bench/syslog-sd.js`): the header read as every line now pays for it (parseSyslog: the
 * SD checked by an index scan, read only when asked), reading `structuredData` on demand (capped),
 * and the baseline measured in the same run: the former reader, which built every value a
 * character at a time into an object per parameter for every line. Milliseconds per MiB, best of
 * a few runs after a warm-up.
 */
import { parseSyslog, type StructuredData } from '../src/parsers/syslog-header.js';

/** The structured-data reader before the index scan (session 45), kept as the baseline. */
function formerParseStructuredData(line: string, start: number): { sd: StructuredData[]; end: number } | undefined {
  const sd: StructuredData[] = [];
  let i = start;
  while (line[i] === '[') {
    i++;
    let e = i;
    while (e < line.length && line[e] !== ' ' && line[e] !== ']') e++;
    const id = line.slice(i, e);
    if (!id) return undefined;
    const params: Record<string, string> = {};
    i = e;
    while (i < line.length && line[i] !== ']') {
      if (line[i] === ' ') {
        i++;
        continue;
      }
      let eq = i;
      while (eq < line.length && line[eq] !== '=' && line[eq] !== ']' && line[eq] !== ' ') eq++;
      if (line[eq] !== '=' || line[eq + 1] !== '"') return undefined;
      const name = line.slice(i, eq);
      let j = eq + 2;
      let value = '';
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\' || line[j + 1] === ']')) {
          value += line[j + 1];
          j += 2;
        } else {
          value += line[j++];
        }
      }
      if (j >= line.length) return undefined;
      params[name] = value;
      i = j + 1;
    }
    if (line[i] !== ']') return undefined;
    i++;
    sd.push({ id, params });
  }
  return { sd, end: i };
}

const HEAD = '<134>1 2024-04-05T21:44:27+00:00 h app 1 - ';
const SHAPES: Record<string, (bytes: number) => string> = {
  'one long value': (n) => `${HEAD}[a k="${'x'.repeat(n)}"] msg`,
  'escapes in a value': (n) => `${HEAD}[a k="${'ab\\"cd\\]ef'.repeat(Math.ceil(n / 10))}"] msg`,
  'many names': (n) => {
    const parts: string[] = [];
    for (let len = 0, i = 0; len < n; i++) {
      const p = ` k${i}="v"`;
      parts.push(p);
      len += p.length;
    }
    return `${HEAD}[a${parts.join('')}] msg`;
  },
};

const RECV = new Date('2026-11-23T12:00:00Z');

function best(f: () => void, runs: number): number {
  f();
  let b = Infinity;
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    f();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

export interface SyslogSdRow {
  shape: string;
  mib: number;
  /** ms per MiB */
  header: number;
  read: number;
  former: number;
}

export function runSyslogSdBench(o: { sizesMiB?: number[]; runs?: number; print?: boolean } = {}): SyslogSdRow[] {
  const rows: SyslogSdRow[] = [];
  const out = (s: string) => o.print !== false && process.stdout.write(`${s}\n`);
  out('RFC 5424 structured data, ms per MiB of line (best of runs): header = parseSyslog as every line pays it now; read = + structuredData asked for (capped); former = the old reader, which every line paid');
  for (const [shape, make] of Object.entries(SHAPES)) {
    for (const mib of o.sizesMiB ?? [1, 4, 16]) {
      const line = make(mib << 20);
      const runs = o.runs ?? 3;
      const header = best(() => void parseSyslog(line, { receivedAt: RECV, zone: 'UTC' }), runs);
      const read = best(() => void parseSyslog(line, { receivedAt: RECV, zone: 'UTC' }).structuredData, runs);
      const former = best(() => void formerParseStructuredData(line, HEAD.length), runs);
      const r = { shape, mib, header: header / mib, read: read / mib, former: former / mib };
      rows.push(r);
      out(`  ${shape.padEnd(18)} ${String(mib).padStart(2)} MiB: header ${r.header.toFixed(2)} ms/MiB, read ${r.read.toFixed(2)}, former ${r.former.toFixed(1)} (${(r.former / r.header).toFixed(0)}x the header)`);
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) runSyslogSdBench({ sizesMiB: process.argv.includes('--quick') ? [1, 4] : undefined });
