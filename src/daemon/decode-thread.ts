/**
 * The decode thread's entry (worker_threads): syslog header, format detection and parsing for the
 * batches the ingest sends, one at a time and in order, so a stateful parser sees each source's
 * lines in the order they arrived. Nothing here touches the inventory: the main thread commits.
 * It writes which line and parser it is in to shared cells, so the main thread can tell a line
 * that never ends (a plug-in's backtracking regex) or that ended the thread (process.exit, out of
 * memory) and restart the thread without it; a user plug-in that did so too often is started
 * disabled (data.disabledPlugins).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { ParserRegistry, loadRegistry } from '../parsers/registry.js';
import type { ParserPlugin } from '../parsers/plugin.js';
import { limitRegexBacktracking } from './decode-client.js';
import { Decoders, disabledPlugin } from './decoders.js';
import {
  PROGRESS_BATCH, PROGRESS_CELLS, PROGRESS_ENDED_IN, PROGRESS_LINE, PROGRESS_PLUGIN, PROGRESS_SEQ,
  type DecodeThreadData, type DecodedMessage, type FromDecodeThread, type ToDecodeThread,
} from './decode-protocol.js';
import type { Sighting } from '../sighting.js';

const port = parentPort!;
const data = workerData as DecodeThreadData;
const post = (m: FromDecodeThread) => port.postMessage(m);
const progress = new Int32Array(data.progress ?? new SharedArrayBuffer(PROGRESS_CELLS * 4));

const disabled = new Set(data.disabledPlugins ?? []);

/**
 * The parser at work (PROGRESS_PLUGIN's number, 0: none), carried into the timers and promises it
 * makes: a plug-in's error thrown from a timer ends the thread after its batch was answered, with
 * no line at work, and is still put down to it (PROGRESS_ENDED_IN)
 */
const inPlugin = new AsyncLocalStorage<number>();
process.on('exit', () => {
  progress[PROGRESS_ENDED_IN] = inPlugin.getStore() ?? 0;
});

/** `p` with its entry points marking it as the parser at work (number `k`) */
function watched(p: ParserPlugin, k: number): ParserPlugin {
  // it stalled or ended the thread again and again (decode-client.ts)
  if (disabled.has(p.id)) return disabledPlugin(p, 'the decode watchdog turned it off (it stalled or ended the decode thread too often)');
  return {
    id: p.id, description: p.description, claims: p.claims,
    detect: (input) => {
      progress[PROGRESS_PLUGIN] = k;
      inPlugin.enterWith(k);
      return p.detect(input);
    },
    create: () => {
      // (marked too: under a pinned format create() runs with no detect() before it, and a timer it
      // leaves that throws was put down to no parser: the thread was given up, the plug-in left on)
      progress[PROGRESS_PLUGIN] = k;
      inPlugin.enterWith(k);
      const inst = p.create();
      return {
        parse: (input) => {
          progress[PROGRESS_PLUGIN] = k;
          inPlugin.enterWith(k);
          return inst.parse(input);
        },
      };
    },
  };
}

try {
  // before any plug-in's regex exists (importing decode-client.ts did it already: said here too)
  limitRegexBacktracking();
  const loaded = await loadRegistry(data.parsersDirectory);
  const registry = new ParserRegistry();
  const ids: string[] = [];
  const userIds: string[] = [];
  for (const p of loaded.list()) {
    if (loaded.isUser(p.id)) userIds.push(p.id);
    registry.add(watched(p, ids.push(p.id)), loaded.isUser(p.id));
  }
  const decoders = new Decoders(registry, data.zone);
  port.on('message', (m: ToDecodeThread) => {
    if (m.type === 'zone') return decoders.setZone(m.zone);
    const found: [number, Sighting[]][] = [];
    const headers = m.headers.length ? new Map(m.headers) : undefined;
    const skip = m.skip?.length ? new Set(m.skip) : undefined;
    progress[PROGRESS_BATCH] = m.id;
    for (let i = 0; i < m.texts.length; i++) {
      if (skip?.has(i)) continue;
      progress[PROGRESS_LINE] = i;
      progress[PROGRESS_PLUGIN] = 0;
      inPlugin.enterWith(0);
      progress[PROGRESS_SEQ]++;
      const header = headers?.get(i);
      const no = m.lineNos[i];
      const r = decoders.get(m.formats[m.formatIdx[i]]).decode(m.texts[i], {
        receivedAt: new Date(m.times[i]), source: m.sources[m.sourceIdx[i]], line: no > 0 ? no : undefined, syslog: header,
      });
      if (r.sightings.length) found.push([i, r.sightings]);
    }
    progress[PROGRESS_BATCH] = 0;
    inPlugin.enterWith(0);
    progress[PROGRESS_SEQ]++;
    const reply: DecodedMessage = { type: 'decoded', id: m.id, found, counters: decoders.counters() };
    post(reply);
  });
  post({ type: 'ready', plugins: ids, userPlugins: userIds });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
}
