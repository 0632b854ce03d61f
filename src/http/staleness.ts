/**
 * Input staleness for the status model and /metrics: how long since each input, and each of its
 * senders, handed on a line. An input that has sent nothing since the start counts from the start.
 */
import type { DaemonView } from './view.js';

export interface SenderStaleness {
  sender: string;
  lastLineAt: string;
  idleS: number;
}

export interface InputStaleness {
  /** the last line's arrival (ISO), absent before the first */
  lastLineAt?: string;
  /** seconds since the last line (since the start when none came) */
  idleS: number;
  /** its senders, the longest silent first */
  senders: SenderStaleness[];
}

export function inputStaleness(d: DaemonView, name: string, now: number): InputStaleness | undefined {
  const f = d.inputFreshness(name);
  if (!f) return undefined;
  const idle = (at: number) => Math.max(0, Math.round((now - at) / 1000));
  const senders = [...f.senders].sort((a, b) => a[1] - b[1]).map(([sender, at]) => ({ sender, lastLineAt: new Date(at).toISOString(), idleS: idle(at) }));
  return {
    ...(f.lastLineAt !== undefined ? { lastLineAt: new Date(f.lastLineAt).toISOString() } : {}),
    idleS: idle(f.lastLineAt ?? d.startedAt),
    senders,
  };
}
