/**
 * The receive thread's sorting of a native batch before it goes to the main thread: datagrams of
 * senders the allow-list refuses are dropped (`notAllowed`); with the sink's claims (format auto),
 * the text of each is made and those no parser can claim are counted by sender (UnclaimedTally)
 * instead of posted, as are those that are no log line (`binary`). So at a firewall's rate the
 * main thread sees only the claimable few, in their order, plus the counts.
 */
import type { Claims } from '../../parsers/plugin.js';
import { Prefilter } from '../../parsers/prefilter.js';
import type { UnclaimedLines } from '../types.js';
import { Counters, SenderCache, UnclaimedTally, makeAllow } from './receive.js';
import { frameText, type InvalidUtf8 } from './text.js';
import type { NativeUdpBatch } from './native-udp.js';
import { subsetBatch } from './udp-batch.js';

export type UnclaimedCount = Pick<UnclaimedLines, 'sender' | 'count' | 'lastAt'>;

export interface ScreenOptions {
  allow?: string[];
  /** the sink's claims for the input's format; undefined: every line may be claimed, no text is made here */
  claims?: Claims;
  format: string;
  invalidUtf8?: InvalidUtf8;
}

export class BatchScreen {
  /** what this thread dropped (notAllowed, binary) and saw (notUtf8 of the lines it counted) */
  readonly counters = new Counters();
  private readonly senders: SenderCache;
  private readonly tally: UnclaimedTally | undefined;
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
    const keep: number[] = [];
    const bytes = Buffer.from(b.buf, 0, b.bytes);
    for (let i = 0, start = 0; i < b.ends.length; start = b.ends[i++]) {
      const s = b.senderIdx[i];
      if (!allowed[s]) {
        c.drop('notAllowed');
        continue;
      }
      if (!tally) {
        keep.push(i);
        continue;
      }
      const t = frameText(bytes, this.o.invalidUtf8, start, b.ends[i]);
      if (!t.ok) c.drop(t.reason);
      else if (tally.screened(t.text, b.senders[s], b.times[i])) {
        if (t.notUtf8) c.event('notUtf8'); // the main thread counts it for the lines it gets
      } else keep.push(i);
    }
    this.tally?.report(''); // the main thread names the source when it hands the counts on
    const unclaimed = this.unclaimed.map(({ sender, count, lastAt }) => ({ sender, count, lastAt }));
    this.unclaimed = [];
    const kept = keep.length === b.ends.length ? b : keep.length ? subsetBatch(b, keep) : undefined;
    return { kept, unclaimed };
  }
}
