/**
 * The messages between the ingest (main thread) and its decode thread. Batches travel as columns
 * (one array of texts, one Float64Array of times, small tables for the repeated source and format
 * names) because structured cloning an array of per-line objects costs more than decoding them.
 */
import type { SyslogMessage } from '../parsers/syslog-header.js';
import type { DecoderCounters } from '../parsers/decoder.js';
import type { Sighting } from '../sighting.js';

export interface DecodeBatchMessage {
  type: 'batch';
  id: number;
  texts: string[];
  /** receivedAt, epoch ms */
  times: Float64Array;
  /** 1-based file line, or 0 when the line has none */
  lineNos: Float64Array;
  /** per line: index into `sources` */
  sourceIdx: Uint32Array;
  sources: string[];
  /** per line: index into `formats` */
  formatIdx: Uint32Array;
  formats: string[];
  /** headers a source already parsed: [line index, header] */
  headers: [number, SyslogMessage][];
  /** line indexes not to decode: each stalled or ended an earlier thread (the watchdog, decode-client.ts) */
  skip?: number[];
}

export interface DecodeZoneMessage {
  type: 'zone';
  zone: string;
}

export type ToDecodeThread = DecodeBatchMessage | DecodeZoneMessage;

export interface DecodedMessage {
  type: 'decoded';
  id: number;
  /** only the lines that gave sightings: [line index, sightings] */
  found: [number, Sighting[]][];
  /** every decoder's counters after this batch, by format (`auto`, a parser id) */
  counters: Record<string, DecoderCounters>;
}

export interface DecodeReadyMessage {
  type: 'ready';
  /** the parser ids in the order PROGRESS_PLUGIN numbers them from 1 */
  plugins: string[];
  /** those of them that are the user's plug-ins (only these are ever disabled: disabledPlugins) */
  userPlugins: string[];
}

export interface DecodeFailedMessage {
  type: 'failed';
  message: string;
}

export type FromDecodeThread = DecodedMessage | DecodeReadyMessage | DecodeFailedMessage;

export interface DecodeThreadData {
  /** the user's parser plug-in directory (config parsers.directory) */
  parsersDirectory?: string;
  zone: string;
  /** Int32 cells (PROGRESS_*) where the thread says what it is decoding, for the watchdog */
  progress?: SharedArrayBuffer;
  /**
   * user plug-ins the watchdog disabled (each stalled or ended the thread too often): kept in place (the
   * PROGRESS_PLUGIN numbers stay) but never claim a line under auto, and throw under their own
   * format, so the line is dropped and counted as a parser error
   */
  disabledPlugins?: string[];
}

/** progress cells: a count bumped at each line and at each batch's end */
export const PROGRESS_SEQ = 0;
/** the batch being decoded (0: none) */
export const PROGRESS_BATCH = 1;
/** its line being decoded */
export const PROGRESS_LINE = 2;
/** the parser last entered for that line, numbered from 1 (0: none yet: the header, the prefilter) */
export const PROGRESS_PLUGIN = 3;
/**
 * written as the thread ends (process.exit, an uncaught error or rejection): the parser whose code,
 * or a timer or promise it made, was running, numbered as PROGRESS_PLUGIN (0: none). Its line may
 * have been answered already (a timer fires after the batch); an out-of-memory end writes nothing
 */
export const PROGRESS_ENDED_IN = 4;
export const PROGRESS_CELLS = 5;
