/**
 * The lease database formats, one line each: a journal (appended; read with the file tailer's
 * byte checkpoints) or a snapshot (rewritten whole; compared with the previous snapshot).
 * Adding a format: a reader or a parser beside this file, and a line here.
 */
import { dnsmasqParser, type SnapshotParse } from './dnsmasq.js';
import { IscLeasesReader } from './isc.js';
import { KeaCsvReader } from './kea.js';
import type { JournalReader } from './record.js';
import type { LEASE_FORMATS } from './schema.js';

export type LeaseFormat =
  /** `companions`: files beside the journal that hold leases it no longer does (Kea's LFC: `.1` compacted, `.2` being compacted), oldest first */
  | { kind: 'journal'; reader: () => JournalReader; sightingFormat: string; companions?: string[] }
  /** `parser`: a parse function of the file's bytes, for one input (it may remember the file it read last) */
  | { kind: 'snapshot'; parser: () => (bytes: Buffer) => SnapshotParse; sightingFormat: string };

export const LEASE_FORMAT_TABLE: Record<(typeof LEASE_FORMATS)[number], LeaseFormat> = {
  dnsmasq: { kind: 'snapshot', parser: dnsmasqParser, sightingFormat: 'dnsmasq-leases' },
  kea: { kind: 'journal', reader: () => new KeaCsvReader(), sightingFormat: 'kea-leases', companions: ['.1', '.2'] },
  'isc-dhcpd': { kind: 'journal', reader: () => new IscLeasesReader(), sightingFormat: 'isc-dhcpd-leases' },
};
