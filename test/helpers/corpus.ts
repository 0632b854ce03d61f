/**
 * Runs a log file through the real decoder and compares each line's sightings with the hand
 * annotations of `expected.jsonl` (the format of ../shared/corpus, see its README).
 */
import { readFileSync } from 'node:fs';
import { loadRegistry } from '../../src/parsers/registry.js';
import { LineDecoder } from '../../src/parsers/decoder.js';
import type { Sighting } from '../../src/sighting.js';

export interface Expected {
  line: number;
  kind: string;
  ip?: string;
  ip6?: string;
  mac?: string;
  duid?: string;
  hostname?: string;
  user?: string;
  remote_ip?: string;
  duration_s?: number;
  ts?: string;
  note?: string;
}

/** Annotated kinds that must not produce a sighting. */
export const NO_SIGHTING = new Set(['offer', 'nak', 'decline', 'ignore']);

/** The receive time used for year-less stamps: late in the year, so every corpus month is in the past. */
export const CORPUS_RECEIVED_AT = new Date('2026-12-31T12:00:00Z');

export function readExpected(file: string): Expected[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Expected);
}

/** Split like `onsight parse` does: on \n, dropping one trailing \r, keeping everything else byte for byte. */
export function readLines(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

export interface Mismatch {
  line: number;
  text: string;
  expected: Expected;
  got: Sighting[];
  why: string;
}

export interface CorpusResult {
  total: number;
  agree: number;
  mismatches: Mismatch[];
  /** the formats `auto` picked, per line (when format is auto) */
  formats: (string | undefined)[];
}

function tsMatches(ts: string, at: string): boolean {
  if (ts.startsWith('--')) return at.slice(4, 19) === ts.slice(1, 16); // "--MM-DDTHH:MM:SS" vs "YYYY-MM-DDTHH:MM:SS"
  const hasOffset = /(Z|[+-]\d\d:?\d\d)$/.test(ts.slice(10));
  if (!hasOffset) return at.slice(0, ts.length) === ts.replace(' ', 'T') || at.slice(0, 19) === ts.slice(0, 19).replace(' ', 'T');
  return Math.abs(Date.parse(ts) - Date.parse(at)) < 1000;
}

export function compare(e: Expected, got: Sighting[]): string | undefined {
  if (NO_SIGHTING.has(e.kind)) return got.length === 0 ? undefined : `expected no sighting (${e.kind}), got ${got.length}`;
  if (got.length !== 1) return `expected one ${e.kind} sighting, got ${got.length}`;
  const s = got[0];
  const diffs: string[] = [];
  const eq = (name: string, want: unknown, have: unknown) => {
    if (want !== undefined && want !== have) diffs.push(`${name}: want ${JSON.stringify(want)} got ${JSON.stringify(have)}`);
  };
  eq('kind', e.kind, s.kind);
  eq('ip', e.ip, s.ip);
  eq('ip6', e.ip6, s.ip6);
  eq('mac', e.mac, s.mac);
  eq('duid', e.duid, s.duid);
  eq('hostname', e.hostname, s.hostname);
  eq('user', e.user, s.user);
  eq('remoteIp', e.remote_ip, s.remoteIp);
  eq('durationS', e.duration_s, s.durationS);
  if (e.ts && !tsMatches(e.ts, s.at)) diffs.push(`at: want ${e.ts} got ${s.at}`);
  return diffs.length ? diffs.join('; ') : undefined;
}

export async function runCorpus(logFile: string, expectedFile: string, format: string): Promise<CorpusResult> {
  const registry = await loadRegistry();
  const decoder = new LineDecoder(registry, format, 'UTC');
  const lines = readLines(logFile);
  const expected = readExpected(expectedFile);
  const byLine = new Map(expected.map((e) => [e.line, e]));
  const result: CorpusResult = { total: 0, agree: 0, mismatches: [], formats: [] };
  lines.forEach((text, idx) => {
    const r = decoder.decode(text, { receivedAt: CORPUS_RECEIVED_AT, source: 'corpus', line: idx + 1 });
    result.formats.push(r.format);
    const e = byLine.get(idx + 1);
    if (!e) return;
    result.total++;
    const why = compare(e, r.sightings);
    if (why) result.mismatches.push({ line: idx + 1, text, expected: e, got: r.sightings, why });
    else result.agree++;
  });
  return result;
}
