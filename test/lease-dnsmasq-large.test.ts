/**
 * A dnsmasq lease file of 50,000 leases, rewritten whole for each lease that changes, as dnsmasq
 * writes it (lease.c lease_update_file: the file truncated in place, then written through stdio in
 * 4 KiB writes; and, as some setups do, a temp file renamed over it). Each rewrite that changes one
 * lease gives that lease's sighting alone, a restart from the committed position none for what did
 * not change, and the committed position is no larger than the file (it was the whole lease table
 * as JSON, twice the file, written to the store at every change). Counts only: the time a rewrite
 * costs is measured by `npm run bench` (bench/lease-snapshot.ts).
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { dnsmasqParser, parseDnsmasqLeases } from '../src/sources/lease/dnsmasq.js';
import { startLeaseInput } from '../src/sources/lease/input.js';
import type { InputHandle, LineSink, RawLine, ResumeStore } from '../src/sources/types.js';
import type { Sighting } from '../src/sighting.js';
import { until } from './helpers/wait.js';

const N = 50_000;
const dirs: string[] = [];
const handles: InputHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** commits each group at once, keeping its sightings and the last position as the store holds it (JSON) */
class Sink implements LineSink {
  readonly pushes: Sighting[][] = [];
  position: { key: string; json: string } | undefined;
  push(l: RawLine): boolean {
    this.pushes.push(l.sightings ?? []);
    if (l.group?.position) this.position = { key: l.group.position.key, json: JSON.stringify(l.group.position.value) };
    setImmediate(() => l.group?.committed?.());
    return true;
  }
  onDrain(): void {}
  get count(): number {
    return this.pushes.reduce((n, s) => n + s.length, 0);
  }
}

const hex = (n: number) => n.toString(16).padStart(2, '0');
const mac = (i: number) => `52:54:00:${hex(i >> 16)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`;
const ip = (i: number) => `10.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const line = (i: number, exp: number) => `${exp} ${mac(i)} ${ip(i)} host-${i} 01:${mac(i)}\n`;
const DUID = 'duid 00:01:00:01:2c:aa:bb:cc:52:54:00:00:00:01\n';

function writer(path: string, how: 'in place' | 'renamed') {
  return (leases: string[]) => {
    const text = Buffer.from(leases.join('') + DUID);
    if (how === 'renamed') {
      writeFileSync(`${path}.new`, text);
      renameSync(`${path}.new`, path);
      return text.length;
    }
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, 0);
    for (let o = 0; o < text.length; o += 4096) writeSync(fd, text, o, Math.min(4096, text.length - o), o);
    closeSync(fd);
    return text.length;
  };
}

describe('dnsmasq lease file of 50,000 leases', () => {
  it.each(['in place', 'renamed'] as const)('written %s: one sighting per rewrite of one lease; a restart from the position says nothing unchanged; the position is no larger than the file', async (how) => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-dnsmasq-large-'));
    dirs.push(dir);
    const path = join(dir, 'dnsmasq.leases');
    const exp = Math.floor(Date.now() / 1000) + 86_400;
    const leases = Array.from({ length: N }, (_, i) => line(i + 1, exp));
    writeFileSync(path, '');
    const write = writer(path, how);
    let size = write(leases);
    const sink = new Sink();
    const store: ResumeStore = { checkpoint: async () => undefined, position: async () => undefined, prunePositions: async () => 0 };
    const h = await startLeaseInput({ type: 'lease', path, format: 'dnsmasq', pollMs: 50 } as never, sink, store, silentLogger());
    handles.push(h);
    await until(() => sink.count >= N, 20_000, 'the first snapshot');
    expect(sink.count).toBe(N);
    // rewrites, one lease each: a renewal (new expiry), a release (its line gone), a new lease (dnsmasq puts it first)
    const changes: [string, () => void, string][] = [
      ['renew 1001', () => void (leases[1000] = line(1001, exp + 60)), `lease ${ip(1001)}`],
      ['renew 40001', () => void (leases[40_000] = line(40_001, exp + 60)), `lease ${ip(40_001)}`],
      ['release 20001', () => void leases.splice(20_000, 1), `release ${ip(20_001)}`],
      ['new 60000', () => void leases.unshift(line(60_000, exp)), `lease ${ip(60_000)}`],
    ];
    for (const [what, change, want] of changes) {
      const before = sink.pushes.length;
      change();
      size = write(leases);
      await until(() => sink.pushes.length > before, 10_000, what);
      await new Promise((r) => setTimeout(r, 400)); // (the rereads of a file changed lately: nothing more)
      expect(sink.pushes.slice(before).flat().map((s) => `${s.kind} ${s.ip}`), what).toEqual([want]);
    }
    // (before: the whole lease table as JSON, 2.0 times the file, committed at every rewrite)
    expect(Buffer.byteLength(sink.position!.json)).toBeLessThanOrEqual(size * 1.05);
    await h.close();
    handles.splice(handles.indexOf(h), 1);
    // a restart from the committed position: the file as it was, then one lease renewed
    const saved = JSON.parse(sink.position!.json) as unknown;
    const again = new Sink();
    const h2 = await startLeaseInput({ type: 'lease', path, format: 'dnsmasq', pollMs: 50 } as never, again, { ...store, position: async (k) => (k === sink.position!.key ? saved : undefined) }, silentLogger());
    handles.push(h2);
    await new Promise((r) => setTimeout(r, 600));
    expect(again.count).toBe(0);
    leases[leases.indexOf(line(4, exp))] = line(4, exp + 120);
    write(leases);
    await until(() => again.count > 0, 10_000, 'the renewal after the restart');
    await new Promise((r) => setTimeout(r, 400));
    expect(again.pushes.flat().map((s) => `${s.kind} ${s.ip}`)).toEqual([`lease ${ip(4)}`]);
  }, 90_000);

  it('a position committed by the version before (the lease table as JSON) is still the base: nothing unchanged is said again, a lease gone while stopped is released', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-dnsmasq-large-'));
    dirs.push(dir);
    const path = join(dir, 'dnsmasq.leases');
    const exp = Math.floor(Date.now() / 1000) + 86_400;
    const n = 200;
    const leases = Array.from({ length: n }, (_, i) => line(i + 1, exp));
    // as the previous version kept it: { leases: { [ip]: lease } }
    const old = { leases: Object.fromEntries(leases.map((_, i) => [ip(i + 1), { ip: ip(i + 1), expiresAt: exp * 1000, mac: mac(i + 1), clientId: `01:${mac(i + 1)}`, hostname: `host-${i + 1}` }])) };
    writeFileSync(path, leases.slice(1).join('') + DUID);
    const sink = new Sink();
    const store: ResumeStore = { checkpoint: async () => undefined, position: async () => JSON.parse(JSON.stringify(old)) as unknown, prunePositions: async () => 0 };
    handles.push(await startLeaseInput({ type: 'lease', path, format: 'dnsmasq', pollMs: 50 } as never, sink, store, silentLogger()));
    await until(() => sink.count > 0, 10_000, 'the release');
    await new Promise((r) => setTimeout(r, 400));
    expect(sink.pushes.flat().map((s) => `${s.kind} ${s.ip}`)).toEqual([`release ${ip(1)}`]);
  });
});

describe('the dnsmasq parser that reads only what changed', () => {
  it('gives what a parse of the whole file gives, rewrite after rewrite (lines changed, added, removed, repeated, malformed, blank, cut short)', () => {
    // (some lines end as others do: '10 …' ends with '0 …', so what both files end with may begin inside a line)
    const pool = ['0 52:54:00:00:00:01 10.0.0.1 a *', '10 52:54:00:00:00:01 10.0.0.1 a *', 'x 0 52:54:00:00:00:01 10.0.0.1 a *', '1700000000 52:54:00:00:00:02 10.0.0.2 b 01:52:54:00:00:00:02', '1700000001 52:54:00:00:00:02 10.0.0.2 b *',
      '1700000002 52:54:00:00:00:03 10.0.0.3 * *', 'duid 00:01:00:01', '', ' ', 'junk line', '1700000003 1 fd00::1 h 00:01:02', '1700000004 52:54:00:00:00:04 10.0.0.4 hôte *\r', 'x 52:54:00:00:00:05 10.0.0.5 e *'];
    fc.assert(fc.property(fc.array(fc.tuple(fc.array(fc.constantFrom(...pool), { maxLength: 12 }), fc.boolean(), fc.nat(20)), { minLength: 1, maxLength: 8 }), (files) => {
      const parse = dnsmasqParser();
      for (const [lines, cut, at] of files) {
        let text = lines.map((l) => l + '\n').join('');
        if (cut && text.length) text = text.slice(0, Math.max(0, text.length - 1 - (at % text.length)));
        const got = parse(Buffer.from(text));
        const want = parseDnsmasqLeases(text);
        expect({ leases: got.leases, errors: got.errors, truncated: got.truncated }).toEqual(want);
        expect(got.distinct).toBe(new Set(want.leases.map((l) => l.ip)).size);
      }
    }), { numRuns: 500 });
  });
});
