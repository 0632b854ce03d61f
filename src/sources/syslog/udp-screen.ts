/**
 * The receive thread's sorting of a native batch before it goes to the main thread: datagrams of
 * senders the allow-list refuses are dropped (`notAllowed`); with the sink's claims (format auto),
 * each is split into its messages (DatagramSplitter: a relay may batch lines), the text of each is
 * made and those no parser can claim are counted by sender (UnclaimedTally) instead of posted, as
 * are those that are no log line (`binary`). So at a firewall's rate the
 * main thread sees only the claimable few, in their order, plus the counts.
 */
import type { Claims } from '../../parsers/plugin.js';
import { Prefilter } from '../../parsers/prefilter.js';
import type { UnclaimedLines } from '../types.js';
import { Counters, DatagramSplitter, SenderCache, UnclaimedTally, makeAllow } from './receive.js';
import { frameText, type InvalidUtf8 } from './text.js';
import type { NativeUdpBatch } from './native-udp.js';
import { partsBatch } from './udp-batch.js';

export type UnclaimedCount = Pick<UnclaimedLines, 'sender' | 'count' | 'lastAt'>;

export interface ScreenOptions {
  allow?: string[];
  /** the sink's claims for the input's format; undefined: every line may be claimed, no text is made here */
  claims?: Claims;
  format: string;
  invalidUtf8?: InvalidUtf8;
}

export class BatchScreen {
  /** what this thread dropped (notAllowed, binary) and saw (notUtf8 of the lines it counted, splitDatagram); `received`: the messages of split datagrams past their first */
  readonly counters = new Counters();
  private readonly senders: SenderCache;
  private readonly tally: UnclaimedTally | undefined;

  /** whether screen() splits datagrams into their messages (it does where it screens: the main thread must not split them again) */
  get splits(): boolean {
    return this.tally !== undefined;
  }
  private unclaimed: UnclaimedCount[] = [];

  constructor(private readonly o: ScreenOptions) {
    this.senders = new SenderCache(makeAllow(o.allow));
    const screens = Prefilter.fromClaims(o.claims) !== undefined;
    this.tally = screens ? new UnclaimedTally({ claims: () => o.claims, unclaimed: (u) => void this.unclaimed.push(u) }, o.format) : undefined;
  }

  /**
   * The datagrams of `b` to post (undefined: none), and the counts of those no parser can claim,
   * by sender. Senders come out canonical (IPv4-mapped IPv6 as IPv4). `allowOnly`: the allow-list
   * alone, no text made here (the main thread screens those lines).
   */
  screen(b: NativeUdpBatch, allowOnly = false): { kept: NativeUdpBatch | undefined; unclaimed: UnclaimedCount[] } {
    const allowed: boolean[] = [];
    let everyone = true;
    b.senders = b.senders.map((raw, i) => {
      const [sender, ok] = this.senders.get(raw);
      allowed[i] = ok;
      everyone &&= ok;
      return sender;
    });
    const tally = allowOnly ? undefined : this.tally;
    if (everyone && !tally) return { kept: b, unclaimed: [] };
    const c = this.counters;
    /** [start, end, datagram] of each datagram, or message of a split one, to post */
    const keep: number[] = [];
    /** `keep` is `b`'s datagrams, all of them, whole */
    let whole = true;
    const bytes = Buffer.from(b.buf, 0, b.bytes);
    const splitter = tally ? new DatagramSplitter(bytes) : undefined;
    for (let i = 0, start = 0; i < b.ends.length; start = b.ends[i++]) {
      const s = b.senderIdx[i];
      if (!allowed[s]) {
        c.drop('notAllowed');
        continue;
      }
      if (!tally) {
        keep.push(start, b.ends[i], i);
        continue;
      }
      // (each message of a datagram a relay batched lines in is screened, and posted, on its own)
      const cuts = splitter!.split(start, b.ends[i], c);
      if (!cuts) {
        this.take(tally, bytes, start, b.ends[i], i, b, keep);
        continue;
      }
      c.received += cuts.length / 2 - 1; // the receiver counted the datagram once
      whole = false;
      for (let k = 0; k < cuts.length; k += 2) this.take(tally, bytes, cuts[k], cuts[k + 1], i, b, keep);
    }
    this.tally?.report(''); // the main thread names the source when it hands the counts on
    const unclaimed = this.unclaimed.map(({ sender, count, lastAt }) => ({ sender, count, lastAt }));
    this.unclaimed = [];
    const kept = whole && keep.length === 3 * b.ends.length ? b : keep.length ? partsBatch(b, keep) : undefined;
    return { kept, unclaimed };
  }

  /** One message (`start`..`end` of datagram `i`): counted when it is no log line or no parser can claim it, else kept. */
  private take(tally: UnclaimedTally, bytes: Buffer, start: number, end: number, i: number, b: NativeUdpBatch, keep: number[]): void {
    const t = frameText(bytes, this.o.invalidUtf8, start, end);
    if (!t.ok) this.counters.drop(t.reason);
    else if (tally.screened(t.text, b.senders[b.senderIdx[i]], b.times[i])) {
      if (t.notUtf8) this.counters.event('notUtf8'); // the main thread counts it for the lines it gets
    } else keep.push(start, end, i);
  }
}
