/**
 * Batches of datagrams as the native receiver lays them out (native-udp.ts: bytes end to end,
 * where each ends, its sender and arrival time): a subset of one, and several made one.
 */
import type { NativeUdpBatch } from './native-udp.js';

const startOf = (b: NativeUdpBatch, i: number) => (i ? b.ends[i - 1] : 0);

/** The datagrams `keep` (indexes, ascending) of `b`, end to end in a buffer of their own. */
export function subsetBatch(b: NativeUdpBatch, keep: number[]): NativeUdpBatch {
  const src = new Uint8Array(b.buf, 0, b.bytes);
  const bytes = keep.reduce((n, i) => n + b.ends[i] - startOf(b, i), 0);
  const buf = new Uint8Array(bytes);
  const ends = new Uint32Array(keep.length);
  const senderIdx = new Uint32Array(keep.length);
  const times = new Float64Array(keep.length);
  let used = 0;
  keep.forEach((i, k) => {
    buf.set(src.subarray(startOf(b, i), b.ends[i]), used);
    used += b.ends[i] - startOf(b, i);
    ends[k] = used;
    senderIdx[k] = b.senderIdx[i];
    times[k] = b.times[i];
  });
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
