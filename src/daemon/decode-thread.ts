/**
 * The decode thread's entry (worker_threads): syslog header, format detection and parsing for the
 * batches the ingest sends, one at a time and in order, so a stateful parser sees each source's
 * lines in the order they arrived. Nothing here touches the inventory: the main thread commits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadRegistry } from '../parsers/registry.js';
import { Decoders } from './decoders.js';
import type { DecodeThreadData, DecodedMessage, FromDecodeThread, ToDecodeThread } from './decode-protocol.js';
import type { Sighting } from '../sighting.js';

const port = parentPort!;
const data = workerData as DecodeThreadData;
const post = (m: FromDecodeThread) => port.postMessage(m);

try {
  const decoders = new Decoders(await loadRegistry(data.parsersDirectory), data.zone);
  port.on('message', (m: ToDecodeThread) => {
    if (m.type === 'zone') return decoders.setZone(m.zone);
    const found: [number, Sighting[]][] = [];
    const headers = m.headers.length ? new Map(m.headers) : undefined;
    for (let i = 0; i < m.texts.length; i++) {
      const header = headers?.get(i);
      const no = m.lineNos[i];
      const r = decoders.get(m.formats[m.formatIdx[i]]).decode(m.texts[i], {
        receivedAt: new Date(m.times[i]), source: m.sources[m.sourceIdx[i]], line: no > 0 ? no : undefined, syslog: header,
      });
      if (r.sightings.length) found.push([i, r.sightings]);
    }
    const reply: DecodedMessage = { type: 'decoded', id: m.id, found, counters: decoders.counters() };
    post(reply);
  });
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
}
