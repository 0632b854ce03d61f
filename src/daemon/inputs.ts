/** Starts the configured inputs (syslog listeners, file tails) in front of the sink. */
import type { Logger } from '../log.js';
import type { InputConfig } from '../config/schema.js';
import * as sources from '../sources/index.js';
import type { CheckpointReader, FileInputOptions, InputHandle, LineSink } from '../sources/types.js';

declare function startFile(o: FileInputOptions, s: LineSink, c: CheckpointReader, l: Logger): Promise<InputHandle>;

export async function startInputs(inputs: InputConfig[], sink: LineSink, checkpoints: CheckpointReader, log: Logger): Promise<InputHandle[]> {
  const handles: InputHandle[] = [];
  try {
    for (const inp of inputs) {
      if (inp.type === 'syslog') {
        handles.push(await sources.startSyslogInput({ ...inp }, sink, log.child({ input: inp.listen })));
      } else {
        // the file tailer lands separately; until then a file input is a clear error, not a crash
        const start = (sources as unknown as { startFileInput?: typeof startFile }).startFileInput;
        if (!start) throw new Error(`input ${inp.path}: file inputs are not available in this build`);
        handles.push(await start({ ...inp }, sink, checkpoints, log.child({ input: inp.path })));
      }
    }
  } catch (err) {
    for (const h of handles) await h.close().catch(() => undefined);
    throw err;
  }
  return handles;
}
