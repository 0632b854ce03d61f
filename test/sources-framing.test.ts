import { describe, expect, it } from 'vitest';
import { SyslogFramer, type FramingMode } from '../src/sources/syslog/framing.js';
import { frameText } from '../src/sources/syslog/text.js';

function frameAll(chunks: Buffer[], max = 1024, mode?: FramingMode): { frames: string[]; f: SyslogFramer } {
  const f = new SyslogFramer({ maxMessageBytes: max, mode });
  const frames: string[] = [];
  for (const c of chunks) for (const b of f.push(c)) frames.push(b.toString('latin1'));
  for (const b of f.end()) frames.push(b.toString('latin1'));
  return { frames, f };
}

/** Every way to cut `data` in two, plus byte-by-byte: the result must not depend on chunking. */
function everySplit(data: string, expected: string[], max = 1024, check?: (f: SyslogFramer) => void): void {
  const buf = Buffer.from(data, 'latin1');
  for (let cut = 0; cut <= buf.length; cut++) {
    const r = frameAll([buf.subarray(0, cut), buf.subarray(cut)], max);
    expect(r.frames, `split at ${cut}`).toEqual(expected);
    check?.(r.f);
  }
  for (let cut2 = 1; cut2 < buf.length; cut2 += Math.max(1, Math.floor(buf.length / 17))) {
    for (let cut1 = 0; cut1 < cut2; cut1 += 3) {
      const r = frameAll([buf.subarray(0, cut1), buf.subarray(cut1, cut2), buf.subarray(cut2)], max);
      expect(r.frames, `split at ${cut1},${cut2}`).toEqual(expected);
    }
  }
  const bytes = [...buf].map((b) => Buffer.from([b]));
  const r = frameAll(bytes, max);
  expect(r.frames, 'byte by byte').toEqual(expected);
  check?.(r.f);
}

const M1 = '<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - su root failed';
const M2 = '<13>Oct 11 22:14:15 host dhcpd[1]: DHCPACK on 10.0.0.5 to 52:54:00:12:34:56 via eth0';

describe('SyslogFramer: newline framing', () => {
  it('splits LF, CRLF and NUL delimited messages at every chunk boundary', () => {
    everySplit(`${M1}\n${M2}\r\n${M1}\0${M2}\n`, [M1, M2, M1, M2]);
  });
  it('keeps the last line without delimiter until the stream ends', () => {
    const f = new SyslogFramer({ maxMessageBytes: 100 });
    expect(f.push(Buffer.from('abc\ndef'))).toEqual([Buffer.from('abc')]);
    expect(f.end()).toEqual([Buffer.from('def')]);
  });
  it('skips empty lines', () => {
    everySplit(`\n\n${M2}\n\r\n\n`, [M2]);
  });
  it('lines that start with digits but are not octet counts are lines', () => {
    everySplit('2024-01-13T06:24:01 host x: y\n12abc\n', ['2024-01-13T06:24:01 host x: y', '12abc']);
  });
  it('drops and counts an over-long line without buffering it, and recovers at the next line', () => {
    const long = 'x'.repeat(5000);
    everySplit(`${M2}\n${long}\n${M2}\n`, [M2, M2], 200, (f) => {
      expect(f.counters.tooLarge).toBe(1);
    });
    const f = new SyslogFramer({ maxMessageBytes: 200 });
    f.push(Buffer.from(M2 + '\n'));
    for (let i = 0; i < 1000; i++) {
      f.push(Buffer.alloc(1024, 0x41));
      expect(f.bufferedBytes).toBeLessThanOrEqual(202);
    }
    expect(f.push(Buffer.from('\nok\n')).map(String)).toEqual(['ok']);
    expect(f.counters.tooLarge).toBe(1);
  });
  it('a line of exactly the maximum passes, one byte more does not', () => {
    const max = 50;
    everySplit(`${'a'.repeat(max)}\n${'b'.repeat(max + 1)}\n${'c'.repeat(max)}\r\n`, ['a'.repeat(max), 'c'.repeat(max)], max);
  });
});

describe('SyslogFramer: octet counting', () => {
  const oc = (m: string) => `${Buffer.byteLength(m, 'latin1')} ${m}`;
  it('frames octet-counted messages at every chunk boundary', () => {
    everySplit(oc(M1) + oc(M2) + oc(M1), [M1, M2, M1]);
  });
  it('messages may contain LF (multi-line) and the count is in bytes', () => {
    const m = '<13>1 - h a - - - line one\nline two';
    everySplit(oc(m) + oc(M2), [m, M2]);
  });
  it('tolerates a LF after each frame (some senders add one)', () => {
    everySplit(`${oc(M1)}\n${oc(M2)}\r\n`, [M1, M2]);
  });
  it('skips an over-long frame by its count and goes on', () => {
    const big = '<13>' + 'y'.repeat(3000);
    everySplit(oc(M1) + oc(big) + oc(M2), [M1, M2], 200, (f) => expect(f.counters.tooLarge).toBe(1));
  });
  it('a broken count is counted and the framer resynchronises at the next frame start', () => {
    everySplit(`${oc(M1)}12x garbage here ${oc(M2)}`, [M1, M2], 1024, (f) => expect(f.counters.badFrame).toBe(1));
    everySplit(`${oc(M1)}garbage! ${oc(M2)}${oc(M1)}`, [M1, M2, M1], 1024, (f) => expect(f.counters.badFrame).toBe(1));
    // a count with too many digits is broken, not a 20 GB message
    everySplit(`${oc(M1)}12345678901234 <13>foo ${oc(M2)}`, [M1, M2], 1024, (f) => expect(f.counters.badFrame).toBe(1));
    everySplit(`${oc(M1)}x 12 ${oc(M2)}`, [M1, M2], 1024, (f) => expect(f.counters.badFrame).toBe(1));
  });
  it('resync finds a count that runs on from a message ending in a digit ("via eth0" + "81 <"): one bad count lost every later frame', () => {
    const line = (i: number, host = `h${i}`) => `<30>dhcpd[1]: DHCPACK on 10.41.0.${i} to 52:54:00:aa:41:${i} (${host}) via eth0`;
    const bytes = (m: string) => Buffer.byteLength(m);
    // a sender counting characters, not bytes: the café frame is one byte short, and its last byte, '0', runs into the next count
    const first = line(10, 'café');
    let data = `${first.length} ${first}`;
    for (let i = 11; i < 31; i++) data += `${bytes(line(i))} ${line(i)}`;
    const buf = Buffer.from(data);
    const want = [Buffer.from(first).subarray(0, first.length).toString('latin1'), ...Array.from({ length: 20 }, (_, k) => line(11 + k))];
    for (const cut of [0, 40, buf.length >> 1, buf.length - 3]) {
      const { frames, f } = frameAll(cut ? [buf.subarray(0, cut), buf.subarray(cut)] : [buf], 1024);
      expect(frames.map((x) => Buffer.from(x, 'latin1').toString()), `cut ${cut}`).toEqual(want.map((x, k) => (k === 0 ? Buffer.from(x, 'latin1').toString() : x)));
      expect(f.counters.badFrame, `cut ${cut}`).toBe(1);
    }
    // garbage ending in an address ("zz 10.0.0.1") runs on into "18 <": of 118, 18 and 8, the count that lands on the next
    // frame start wins (where the chunk shows it; cut before, the longest is taken and one more frame is lost to resync)
    const b = '<13>y via 10.0.0.7', c = '<13>z';
    const run = Buffer.from(`${oc(M1)}zz 10.0.0.1${oc(b)}${oc(c)}${oc(M2)}`, 'latin1');
    const lt = run.indexOf('<13>y');
    for (const cut of [0, 10, lt - 4, run.indexOf('<13>z') + 1]) {
      const { frames, f } = frameAll(cut ? [run.subarray(0, cut), run.subarray(cut)] : [run], 1024);
      expect(frames, `cut ${cut}`).toEqual([M1, b, c, M2]);
      expect(f.counters.badFrame, `cut ${cut}`).toBe(1);
    }
  });

  it('a broken first count does not turn a connection of octet-counted frames into one long line', () => {
    const line = (i: number) => `<30>dhcpd[1]: DHCPACK on 10.42.0.${i} to 52:54:00:aa:42:${i} (h${i}) via lan`;
    const frames20 = Array.from({ length: 20 }, (_, k) => line(11 + k));
    const tail = frames20.map(oc).join('');
    for (const prefix of ['0', '00', '-', '99999999999', 'x']) {
      const data = `${prefix}${oc(line(10))}${tail}`;
      const { frames, f } = frameAll([Buffer.from(data, 'latin1')], 1024);
      expect(f.detected, prefix).toBe('octet-counting');
      // (the first frame too: its count is the suffix of the run that lands on the next frame start)
      expect(frames, prefix).toEqual([line(10), ...frames20]);
      expect(f.counters.badFrame, prefix).toBe(1);
    }
    // a count with its space missing ("81<30>")
    const { frames } = frameAll([Buffer.from(`${Buffer.byteLength(line(10))}${line(10)}${tail}`, 'latin1')], 1024);
    expect(frames).toEqual(frames20);
    // a plain LF-framed connection whose first line starts with digits stays LF
    const lf = frameAll([Buffer.from(`2024-01-01T00:00:00Z host a: x\n${line(11)}\n`, 'latin1')], 1024);
    expect([lf.f.detected, lf.frames.length]).toEqual(['lf', 2]);
    // and one whose first line holds "12 <b>" that happens to land on "5 <i>" (review: read as octet counting, every later line lost)
    for (const text of ['Total: 12 <b>bold</b> 5 <i>it</i>\nsecond line\nthird line\n', '2026-12-06T10:00:00Z 12 <b>x</b> and 3 <i>y</i>\nsecond line\n']) {
      const html = frameAll([Buffer.from(text, 'latin1')], 1024);
      expect([html.f.detected, html.frames], text).toEqual(['lf', text.split('\n').filter(Boolean)]);
    }
    // a break at a frame start after a good frame is not a count's tail (review: a stale digit count made "07 <13>abc" unrecoverable)
    const stale = frameAll([Buffer.from(oc(M1)), Buffer.from(`07 ${oc('<13>abc').slice(2)}`)], 1024, 'octet-counting');
    expect(stale.frames).toEqual([M1, '<13>abc']);
  });

  it('a frame cut short by the end of the stream is counted, not emitted', () => {
    const { frames, f } = frameAll([Buffer.from(oc(M1) + '500 <13>short')]);
    expect(frames).toEqual([M1]);
    expect(f.counters.badFrame).toBe(1);
  });
  it('binary garbage never throws and memory stays bounded', () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (const mode of ['auto', 'octet-counting', 'lf'] as const) {
      const f = new SyslogFramer({ maxMessageBytes: 300, mode });
      for (let i = 0; i < 300; i++) {
        const b = Buffer.alloc(1 + (rnd() % 2000));
        for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
        for (const fr of f.push(b)) expect(fr.length).toBeLessThanOrEqual(300);
        expect(f.bufferedBytes).toBeLessThanOrEqual(312);
      }
    }
  });
  it('the first byte decides per connection: octet counting stays on for later frames', () => {
    const f = new SyslogFramer({ maxMessageBytes: 1024 });
    f.push(Buffer.from(oc(M1)));
    expect(f.detected).toBe('octet-counting');
    const g = new SyslogFramer({ maxMessageBytes: 1024 });
    g.push(Buffer.from(M2 + '\n'));
    expect(g.detected).toBe('lf');
  });
});

describe('frameText', () => {
  it('accepts ASCII and UTF-8, refuses control bytes, keeps what is not UTF-8 (RFC 5424 §6.4) decoded as Latin-1 or with U+FFFD', () => {
    expect(frameText(Buffer.from('héllo wörld'))).toEqual({ ok: true, text: 'héllo wörld' });
    expect(frameText(Buffer.from('a\tb'))).toEqual({ ok: true, text: 'a\tb' });
    expect(frameText(Buffer.from([0x41, 0x01, 0x42]))).toEqual({ ok: false, reason: 'binary' });
    expect(frameText(Buffer.from([0x41, 0xe9, 0x42]))).toEqual({ ok: true, text: 'AéB', notUtf8: true });
    expect(frameText(Buffer.from([0x41, 0xe9, 0x42]), 'latin1')).toEqual({ ok: true, text: 'AéB', notUtf8: true });
    expect(frameText(Buffer.from([0x41, 0xe9, 0x42]), 'replace')).toEqual({ ok: true, text: 'A\ufffdB', notUtf8: true });
  });
});
