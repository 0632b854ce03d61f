/** Starts the configured inputs (syslog listeners, file tails) in front of the sink. */
import type { Logger } from '../log.js';
import type { InputConfig } from '../config/schema.js';
import { startFileInput, startSyslogInput } from '../sources/index.js';
import type { CheckpointReader, InputHandle, LineSink } from '../sources/types.js';

export async function startInputs(inputs: InputConfig[], sink: LineSink, checkpoints: CheckpointReader, log: Logger): Promise<InputHandle[]> {
  const handles: InputHandle[] = [];
  try {
    for (const inp of inputs) {
      handles.push(inp.type === 'syslog'
        // each source names itself (`input`: udp:5514, file:/var/log/x) in its log lines: no second `input` here
        ? await startSyslogInput({ ...inp }, sink, log)
        : await startFileInput({ ...inp }, sink, checkpoints, log));
    }
  } catch (err) {
    for (const h of handles) await h.close().catch(() => undefined);
    throw err;
  }
  return handles;
}
