/** Starts the configured inputs (syslog listeners, file tails, HTTP collectors, lease databases) in front of the sink. */
import type { Logger } from '../log.js';
import type { InputConfig } from '../config/schema.js';
import { startFileInput, startHttpInput, startLeaseInput, startSyslogInput } from '../sources/index.js';
import type { InputHandle, LineSink, ResumeStore } from '../sources/types.js';
import type { InputFreshness } from './freshness.js';

type Starter<T extends InputConfig['type']> = (inp: Extract<InputConfig, { type: T }>, sink: LineSink, store: ResumeStore, log: Logger) => Promise<InputHandle>;

/** One line per input type: how to start it, and what to call it in logs and errors. */
const INPUTS: { [T in InputConfig['type']]: { start: Starter<T>; label: (inp: Extract<InputConfig, { type: T }>) => string } } = {
  syslog: { start: (inp, sink, _store, log) => startSyslogInput({ ...inp }, sink, log), label: (inp) => inp.listen },
  file: { start: (inp, sink, store, log) => startFileInput({ ...inp }, sink, (p) => store.checkpoint(p), log), label: (inp) => inp.path },
  http: { start: (inp, sink, store, log) => startHttpInput(inp, sink, store, log), label: (inp) => `http://${inp.listen}` },
  lease: { start: (inp, sink, store, log) => startLeaseInput(inp, sink, store, log), label: (inp) => inp.path },
};

export function inputLabel(inp: InputConfig): string {
  return (INPUTS[inp.type].label as (i: InputConfig) => string)(inp);
}

/** The parser id an input's lines are decoded with (lease databases decode their own). */
export function inputParserFormat(inp: InputConfig): string | undefined {
  return inp.type === 'lease' ? undefined : inp.format;
}

export async function startInputs(inputs: InputConfig[], sink: LineSink, store: ResumeStore, log: Logger, freshness?: InputFreshness): Promise<InputHandle[]> {
  const handles: InputHandle[] = [];
  try {
    for (const inp of inputs) {
      const start = INPUTS[inp.type].start as Starter<InputConfig['type']>;
      // syslog and file inputs name themselves (`input`: udp:5514, file:/var/log/x) in every line: no second `input` key
      const namesItself = inp.type === 'syslog' || inp.type === 'file';
      const tracked = freshness?.wrap(sink);
      const h = await start(inp as never, tracked?.sink ?? sink, store, namesItself ? log : log.child({ input: inputLabel(inp) }));
      if (tracked) freshness!.register(h.name, tracked.entry);
      handles.push(h);
    }
  } catch (err) {
    for (const h of handles) await h.close().catch(() => undefined);
    throw err;
  }
  return handles;
}
