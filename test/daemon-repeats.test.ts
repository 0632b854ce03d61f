/** The occurrence numbers the cluster inbox keys network lines by (src/daemon/repeats.ts). */
import { describe, expect, it } from 'vitest';
import { LineRepeats } from '../src/daemon/repeats.js';
import type { RawLine } from '../src/sources/types.js';

const line = (text: string, at: number, source = 'udp:5514', sender = '192.0.2.7'): RawLine => ({ text, source, sender, receivedAt: new Date(at), format: 'auto' }) as RawLine;
const T0 = Date.parse('2026-12-06T10:00:00Z');
const ACK = '<30>Dec  6 10:00:00 gw dhcpd[7]: DHCPACK on 10.9.0.5 to 52:54:00:00:09:05 via eth0';

describe('LineRepeats', () => {
  it('an identical line within seconds is the next occurrence; the same line object asked again keeps its number', () => {
    const r = new LineRepeats();
    const a = line(ACK, T0), b = line(ACK, T0 + 400), c = line(ACK, T0 + 900);
    expect([r.occurrence(a), r.occurrence(b), r.occurrence(c)]).toEqual([1, 2, 3]);
    expect([r.occurrence(b), r.occurrence(a)]).toEqual([2, 1]); // (a retried or split batch)
  });

  it('a replay or resend later than the window is occurrence 1 again (an exact duplicate), however quiet the input was meanwhile', () => {
    const r = new LineRepeats();
    expect(r.occurrence(line(ACK, T0))).toBe(1);
    expect(r.occurrence(line(ACK, T0 + 70_000))).toBe(1);
    expect(r.occurrence(line(ACK, T0 + 600_000))).toBe(1);
    expect(r.occurrence(line(ACK, T0 + 600_500))).toBe(2);
  });

  it('counted per input and sender: the same line over UDP and TCP from one device, or from two senders, is 1 on each', () => {
    const r = new LineRepeats();
    expect(r.occurrence(line(ACK, T0, 'udp:5514'))).toBe(1);
    expect(r.occurrence(line(ACK, T0 + 10, 'tcp:5514'))).toBe(1);
    expect(r.occurrence(line(ACK, T0 + 20, 'udp:5514', '192.0.2.8'))).toBe(1);
    expect(r.occurrence(line(ACK, T0 + 30, 'udp:5514'))).toBe(2);
  });
});
