/**
 * TCP syslog, a connection RESET (ECONNRESET) inside a frame: an octet-counted frame (in its body
 * or its count) or an LF-framed line with no LF yet. A close or an idle close there reaches the
 * framer's end of stream, which counts the cut frame as `badFrame` and says so in a rate-limited
 * log line; a reset reached nothing, and the partial frame was dropped with no count and no word.
 * Now counted and told alike, and an LF-framed tail cut by a reset is not taken as a message (no
 * close says it was whole). Real TCP connections on loopback, reset by the client
 * (socket.resetAndDestroy: an RST, not a FIN), the real listener on the main thread and in its
 * receive thread, its real log output.
 */
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSyslogInput } from '../src/sources/index.js';
import type { InputHandle, SyslogInputOptions } from '../src/sources/types.js';
import { CollectSink } from './helpers/sink.js';
import { sleep, until } from './helpers/wait.js';

interface Line {
  level: number;
  msg: string;
  sender?: string;
  receivedBytes?: number;
  announcedBytes?: number;
  cutFrames?: number;
}

const handles: InputHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});

let receiveThread = false;

async function listen(extra: Partial<SyslogInputOptions> = {}) {
  const logs: Line[] = [];
  const log = pino({ level: 'info' }, { write: (x: string) => void logs.push(JSON.parse(x)) });
  const sink = new CollectSink();
  const h = await startSyslogInput({ listen: 'tcp://127.0.0.1:0', format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000, receiveThread, ...extra }, sink, log);
  handles.push(h);
  return { h, sink, logs, about: (what: string) => logs.filter((l) => l.msg.includes(what)) };
}

function tcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.on('error', reject);
  });
}

/** write `whole` and wait until the listener has it, then write `half`, let it be read, and reset (RST) */
async function resetAfter(h: InputHandle, sink: CollectSink, whole: string, half: string): Promise<void> {
  const s = await tcp(h.address!.port);
  s.write(whole);
  await until(() => sink.texts().length === 1, 3000, 'the whole frame received');
  s.write(half);
  await sleep(150); // (read by the listener before the RST arrives)
  s.resetAndDestroy();
  await new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
}

const m = '<13>1 - h app - - - a whole frame';

describe.each([{ receiveThread: false }, { receiveThread: true }])('connection reset inside a frame (receiveThread $receiveThread)', (mode) => {
  beforeAll(() => {
    receiveThread = mode.receiveThread;
  });
  afterAll(() => {
    receiveThread = false;
  });

  it('octet counting, reset N bytes into a frame announced as M bytes: counted badFrame, logged with both numbers', async () => {
    const { h, sink, about } = await listen();
    const cut = '<13>cut short';
    await resetAfter(h, sink, `${m.length} ${m}`, `200 ${cut}`);
    await until(() => h.counters().dropped.badFrame === 1 && about('was reset').length === 1, 3000, 'the cut frame counted and logged');
    expect(sink.texts()).toEqual([m]);
    const [line] = about('was reset');
    expect(line).toMatchObject({ level: 40, sender: '127.0.0.1', receivedBytes: cut.length, announcedBytes: 200, cutFrames: 1 });
    expect(line.msg).toContain(`the connection from 127.0.0.1 was reset (ECONNRESET) ${cut.length} bytes into a frame announced as 200 bytes`);
    expect(line.msg).toContain('counted in onsight_input_lines_dropped_total{reason="badFrame"}');
  });

  it('octet counting, reset inside a count: counted badFrame, logged as a cut count', async () => {
    const { h, sink, about } = await listen();
    await resetAfter(h, sink, `${m.length} ${m}`, '12');
    await until(() => h.counters().dropped.badFrame === 1 && about('inside an octet count').length === 1, 3000, 'the cut count counted and logged');
    expect(about('inside an octet count')[0].msg).toContain('the connection from 127.0.0.1 was reset (ECONNRESET) inside an octet count ("12"');
  });

  it('LF framing, reset inside a line: the partial line is not a message, counted badFrame and logged', async () => {
    const { h, sink, about } = await listen();
    const half = '<13>1 - h app - - - DHCPACK on 10.9.0.1';
    await resetAfter(h, sink, `${m}\n`, half);
    await until(() => h.counters().dropped.badFrame === 1 && about('was reset').length === 1, 3000, 'the cut line counted and logged');
    await sleep(50);
    expect(sink.texts()).toEqual([m]);
    const [line] = about('was reset');
    expect(line).toMatchObject({ level: 40, sender: '127.0.0.1', receivedBytes: half.length, cutFrames: 1 });
    expect(line.msg).toContain(`the connection from 127.0.0.1 was reset (ECONNRESET) ${half.length} bytes into a line with no LF yet`);
  });

  it('reset between frames: nothing cut, nothing counted or logged', async () => {
    const { h, sink, logs } = await listen();
    await resetAfter(h, sink, `${m}\n`, '');
    await sleep(300); // (a receive thread posts its counters every 100 ms)
    expect(h.counters().dropped.badFrame ?? 0).toBe(0);
    expect(logs.filter((l) => l.level >= 40)).toEqual([]);
    expect(sink.texts()).toEqual([m]);
  });
});
