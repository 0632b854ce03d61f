/**
 * Batches of datagrams as the native receiver lays them out (native-udp.ts: bytes end to end,
 * where each ends, its sender and arrival time): a subset of one (or of the messages its datagrams
 * held), and several made one.
 */
import type { NativeUdpBatch } from './native-udp.js';

const startOf = (b: NativeUdpBatch, i: number) => (i ? b.ends[i - 1] : 0);

/** The datagrams `keep` (indexes, ascending) of `b`, end to end in a buffer of their own. */
export function subsetBatch(b: NativeUdpBatch, keep: number[]): NativeUdpBatch {
  const parts: number[] = [];
  for (const i of keep) parts.push(startOf(b, i), b.ends[i], i);
  return partsBatch(b, parts);
}

/**
 * Parts of `b`'s datagrams, end to end in a buffer of their own: `parts` holds, for each, its
 * bounds and its datagram's index ([start, end, i, ...], ascending), so a datagram may be given as
 * the messages it held, each an entry of its own with its datagram's sender and time.
 */
export function partsBatch(b: NativeUdpBatch, parts: number[]): NativeUdpBatch {
  const src = new Uint8Array(b.buf, 0, b.bytes);
  const n = parts.length / 3;
  let bytes = 0;
  for (let k = 0; k < parts.length; k += 3) bytes += parts[k + 1] - parts[k];
  const buf = new Uint8Array(bytes);
  const ends = new Uint32Array(n);
  const senderIdx = new Uint32Array(n);
  const times = new Float64Array(n);
  let used = 0;
  for (let k = 0, j = 0; k < parts.length; k += 3, j++) {
    const i = parts[k + 2];
    buf.set(src.subarray(parts[k], parts[k + 1]), used);
    used += parts[k + 1] - parts[k];
    ends[j] = used;
    senderIdx[j] = b.senderIdx[i];
    times[j] = b.times[i];
  }
  return { buf: buf.buffer, bytes, ends, senderIdx, times, senders: b.senders };
}

/** `bs` one after the other, as one batch (the first itself when alone). */
export function concatBatches(bs: NativeUdpBatch[]): NativeUdpBatch {
  if (bs.length === 1) return bs[0];
  const count = bs.reduce((n, b) => n + b.ends.length, 0);
  const buf = new Uint8Array(bs.reduce((n, b) => n + b.bytes, 0));
  const ends = new Uint32Array(count);
  const senderIdx = new Uint32Array(count);
  const times = new Float64Array(count);
  const senders: string[] = [];
  let used = 0;
  let k = 0;
  for (const b of bs) {
    buf.set(new Uint8Array(b.buf, 0, b.bytes), used);
    for (let i = 0; i < b.ends.length; i++, k++) {
      ends[k] = used + b.ends[i];
      senderIdx[k] = senders.length + b.senderIdx[i];
      times[k] = b.times[i];
    }
    used += b.bytes;
    senders.push(...b.senders);
  }
  return { buf: buf.buffer, bytes: used, ends, senderIdx, times, senders };
}
