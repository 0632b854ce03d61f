/**
 * The native UDP receiver's batches in the receive thread (udp-screen.ts, udp-batch.ts), with the
 * real parsers' claims: screened (the main thread gets only the claimable lines and the counts),
 * and spilled (`allowOnly`: the thread has fallen behind, so only the allow-list is applied and
 * every allowed datagram goes on for the main thread to screen). The spill happens only under
 * load in the daemon; here its thread side is run directly, on batches laid out as the addon
 * lays them out.
 */
import { describe, expect, it } from 'vitest';
import { Prefilter } from '../src/parsers/prefilter.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { BatchScreen } from '../src/sources/syslog/udp-screen.js';
import { concatBatches, subsetBatch } from '../src/sources/syslog/udp-batch.js';
import type { NativeUdpBatch } from '../src/sources/syslog/native-udp.js';

const noise = (i: number) => `<134>Nov 23 10:00:00 fw01 filterlog[4242]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,${i},0,DF,6,tcp,60,203.0.113.9,10.0.0.1,${1024 + i},443,0,S`;
const dhcp = (k: number) => `<30>Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.0.1.${k} to 52:54:00:00:01:${k.toString(16).padStart(2, '0')} via eth0`;

/** datagrams [bytes, sender] end to end, as the addon hands them over */
function batch(dgrams: [Buffer | string, string][], t0 = 1_000): NativeUdpBatch {
  const bufs = dgrams.map(([d]) => (typeof d === 'string' ? Buffer.from(d) : d));
  const all = Buffer.concat(bufs);
  const senders: string[] = [];
  const senderIdx = new Uint32Array(dgrams.length);
  const ends = new Uint32Array(dgrams.length);
  let used = 0;
  dgrams.forEach(([, s], i) => {
    if (!senders.includes(s)) senders.push(s);
    senderIdx[i] = senders.indexOf(s);
    used += bufs[i].length;
    ends[i] = used;
  });
  const buf = new ArrayBuffer(all.length);
  new Uint8Array(buf).set(all);
  return { buf, bytes: all.length, ends, senderIdx, senders, times: Float64Array.from(dgrams, (_, i) => t0 + i) };
}

/** the datagrams of a batch as [text, sender, time] */
function unpack(b: NativeUdpBatch): [string, string, number][] {
  const bytes = Buffer.from(b.buf, 0, b.bytes);
  return Array.from(b.ends, (end, i) => [bytes.toString('latin1', i ? b.ends[i - 1] : 0, end), b.senders[b.senderIdx[i]], b.times[i]]);
}

describe('native UDP batches in the receive thread', async () => {
  const claims = Prefilter.of((await loadRegistry()).list())!.claims;
  const input: [Buffer | string, string][] = [
    [noise(1), '127.0.0.1'],
    [dhcp(1), '127.0.0.1'],
    [noise(2), '192.0.2.9'], // not on the allow-list
    [Buffer.from([0x3c, 0x31, 0x33, 0x3e, 0x01, 0x02, 0xff]), '127.0.0.1'], // binary: no log line
    [dhcp(2), '::ffff:127.0.0.2'], // IPv4-mapped: the same sender space as 127.0.0.2
    [noise(3), '::ffff:127.0.0.2'],
    [noise(4), '127.0.0.1'],
  ];

  it('screened: only the claimable lines go on, in order, the noise counted by canonical sender, the rest dropped and counted', () => {
    const screen = new BatchScreen({ allow: ['127.0.0.0/8'], claims, format: 'auto' });
    const { kept, unclaimed } = screen.screen(batch(input));
    expect(unpack(kept!)).toEqual([[dhcp(1), '127.0.0.1', 1001], [dhcp(2), '127.0.0.2', 1004]]);
    expect(unclaimed.sort((a, b) => a.sender.localeCompare(b.sender))).toEqual([
      { sender: '127.0.0.1', count: 2, lastAt: 1006 },
      { sender: '127.0.0.2', count: 1, lastAt: 1005 },
    ]);
    expect(screen.counters.dropped).toEqual({ notAllowed: 1, binary: 1 });
  });

  it('spilled (allowOnly): every allowed datagram goes on unscreened, in order, for the main thread to screen; nothing is counted as unclaimed', () => {
    const screen = new BatchScreen({ allow: ['127.0.0.0/8'], claims, format: 'auto' });
    const { kept, unclaimed } = screen.screen(batch(input), true);
    expect(unpack(kept!).map(([t, s]) => [t.startsWith('<13>') ? 'binary' : t, s])).toEqual([
      [noise(1), '127.0.0.1'], [dhcp(1), '127.0.0.1'], ['binary', '127.0.0.1'], [dhcp(2), '127.0.0.2'], [noise(3), '127.0.0.2'], [noise(4), '127.0.0.1'],
    ]);
    expect(unclaimed).toEqual([]);
    expect(screen.counters.dropped).toEqual({ notAllowed: 1 });
    // the same batch screened afterwards (as the main thread does) keeps what the thread would have kept
    const later = new BatchScreen({ claims, format: 'auto' });
    expect(unpack(later.screen(kept!).kept!).map(([t]) => t)).toEqual([dhcp(1), dhcp(2)]);
  });

  it('a batch of which nothing is claimable keeps nothing; everyone allowed and no claims: the batch itself goes on', () => {
    const screen = new BatchScreen({ claims, format: 'auto' });
    const onlyNoise = batch([[noise(5), '127.0.0.1'], [noise(6), '127.0.0.1']]);
    expect(screen.screen(onlyNoise)).toMatchObject({ kept: undefined, unclaimed: [{ sender: '127.0.0.1', count: 2 }] });
    const open = new BatchScreen({ format: 'auto' });
    const b = batch([[noise(7), '127.0.0.1']]);
    expect(open.screen(b).kept).toBe(b);
  });

  it('subsets and merges keep each datagram with its own sender and time', () => {
    const a = batch([[dhcp(1), '127.0.0.1'], [noise(1), '127.0.0.3'], [dhcp(2), '127.0.0.3']], 10);
    const b = batch([[dhcp(3), '127.0.0.3'], [dhcp(4), '127.0.0.4']], 20);
    const merged = concatBatches([subsetBatch(a, [0, 2]), b]);
    expect(unpack(merged)).toEqual([[dhcp(1), '127.0.0.1', 10], [dhcp(2), '127.0.0.3', 12], [dhcp(3), '127.0.0.3', 20], [dhcp(4), '127.0.0.4', 21]]);
  });
});
