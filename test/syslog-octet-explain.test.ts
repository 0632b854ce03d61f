/**
 * TCP syslog with RFC 6587 octet counting, when a frame is cut short: the sender announced more
 * bytes than it sent before closing (its count lied, or it stopped mid-frame), or went idle. The
 * log line says what happened (closed N bytes into a frame announced as M bytes), not that the count
 * was no number and the connection was read on, as it did. Real TCP connections on loopback, the
 * real listener (on the main thread and in its receive thread), its real log output.
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
  badFrames?: number;
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
const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

const m = '<13>1 - h app - - - a whole frame';

describe.each([{ receiveThread: false }, { receiveThread: true }])('octet-counted frame cut short (receiveThread $receiveThread)', (mode) => {
  beforeAll(() => {
    receiveThread = mode.receiveThread;
  });
  afterAll(() => {
    receiveThread = false;
  });

  it('the sender closes N bytes into a frame announced as M bytes: the log says so, with both numbers', async () => {
    const { h, sink, logs, about } = await listen();
    const s = await tcp(h.address!.port);
    const cut = '<13>cut short';
    s.end(`${m.length} ${m}200 ${cut}`);
    await closed(s);
    await until(() => h.counters().dropped.badFrame === 1 && about('closed the connection').length === 1, 3000, 'the cut frame counted and logged');
    expect(sink.texts()).toEqual([m]);
    const [line] = about('closed the connection');
    expect(line).toMatchObject({ level: 40, sender: '127.0.0.1', receivedBytes: cut.length, announcedBytes: 200, cutFrames: 1 });
    expect(line.msg).toContain(`127.0.0.1 closed the connection ${cut.length} bytes into a frame announced as 200 bytes`);
    expect(line.msg).toContain('larger than the message sent');
    // not the explanation of a count that is no number
    expect(logs.filter((l) => l.msg.includes('no number') || l.msg.includes('read on from the next frame'))).toEqual([]);
  });

  it('the connection goes idle inside a frame: the log says it was closed as idle, how far into the frame', async () => {
    const { h, about } = await listen({ idleTimeoutS: 0.3 });
    const s = await tcp(h.address!.port);
    const half = '<13>half';
    s.write(`${m.length} ${m}90 ${half}`);
    await closed(s);
    await until(() => about('closed as idle').length === 1, 3000, 'the idle cut logged');
    const [line] = about('closed as idle');
    expect(line.msg).toContain(`the connection from 127.0.0.1 was closed as idle (no data for 0.3 s, idleTimeoutS) ${half.length} bytes into a frame announced as 90 bytes`);
    expect(line).toMatchObject({ receivedBytes: half.length, announcedBytes: 90 });
    await until(() => h.counters().dropped.badFrame === 1, 2000, 'counted'); // a receive thread's counters lag by up to 100 ms
  });

  it('the sender closes inside a count; a broken count (no number) keeps its own explanation', async () => {
    const { h, about } = await listen();
    const a = await tcp(h.address!.port);
    a.end(`${m.length} ${m}12`);
    await closed(a);
    await until(() => about('inside an octet count').length === 1, 3000, 'the cut count logged');
    expect(about('inside an octet count')[0].msg).toContain('127.0.0.1 closed the connection inside an octet count ("12"');
    const b = await tcp(h.address!.port);
    b.end(`${m.length} ${m}12x4 <13>broken${m.length} ${m}`);
    await closed(b);
    await until(() => about('broken octet-counted frame').length === 1, 3000, 'the broken count logged');
    expect(about('broken octet-counted frame')[0]).toMatchObject({ sender: '127.0.0.1', badFrames: 1 });
    await sleep(50);
    expect(about('closed the connection')).toHaveLength(1); // the broken count is not told as a cut frame
    await until(() => h.counters().dropped.badFrame === 2, 2000, 'both counted');
  });
});
