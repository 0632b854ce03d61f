/**
 * The parser plug-in interface. Every folder under `parsers/` (and every module in a user plug-in
 * directory) default-exports a ParserPlugin. See parsers/README.md for how to write one.
 */
import type { SightingDraft } from '../sighting.js';
import type { SyslogMessage } from './syslog-header.js';

export interface LineInput {
  /** the whole line as received, without the trailing newline */
  raw: string;
  /** the syslog header read off the line (`format: 'none'` and `msg === raw` when it had none) */
  syslog: SyslogMessage;
  /** when onsight received the line; resolves year-less stamps */
  receivedAt: Date;
  /** zone for stamps without an offset: IANA name, `UTC` or `local` */
  zone: string;
  /** which input the line came from (`udp:5514`, `file:/var/log/x`, `stdin`); state is kept per source */
  source: string;
}

export interface LineParser {
  /**
   * The sightings of one line: usually zero or one. Must never throw, must run in time linear in
   * the line length (no backtracking regex over the line), and must keep only small, bounded state.
   */
  parse(input: LineInput): SightingDraft[];
}

export interface Claims {
  tags?: readonly string[];
  tagPrefixes?: readonly string[];
  anchors?: readonly string[];
  rawAnchors?: readonly string[];
}

export interface ParserPlugin {
  /** stable id, the folder name: `isc-dhcpd`, `cisco-asa`, ... */
  id: string;
  /** one line for `onsight formats` */
  description: string;
  /**
   * For `--format auto`: is this line of our format (even if it makes no sighting)? Cheap and
   * specific: a syslog tag, a `%ASA-` marker, a CSV header. Must not claim other formats' lines.
   */
  detect(input: LineInput): boolean;
  /**
   * What detect() needs to see before it can say yes, for the prefilter that rejects noise before
   * auto-detection (src/parsers/prefilter.ts): the syslog tag is one of `tags` or starts with one
   * of `tagPrefixes`, or the message contains one of `anchors`, or the raw line one of
   * `rawAnchors`. Must be a necessary condition (never reject a line detect() would claim); a
   * plug-in without it turns the prefilter off.
   */
  claims?: Claims;
  /** a fresh parser with its own state; the pipeline keeps one per (source, format) */
  create(): LineParser;
}

export function isParserPlugin(x: unknown): x is ParserPlugin {
  const p = x as ParserPlugin;
  return !!p && typeof p === 'object' && typeof p.id === 'string' && /^[a-z0-9][a-z0-9-]{0,39}$/.test(p.id) &&
    typeof p.description === 'string' && typeof p.detect === 'function' && typeof p.create === 'function';
}
