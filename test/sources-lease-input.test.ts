/**
 * The lease input itself (startLeaseInput) with a sink of the test's own, on real files written as
 * the servers write them: what a review of session 40 found in its reading of busy dnsmasq files and
 * of Kea's compacted files. Each case failed on the code it reviewed.
 */
import { mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { startLeaseInput } from '../src/sources/lease/input.js';
import type { InputHandle, LineSink, RawLine, ResumeStore } from '../src/sources/types.js';
import type { Sighting } from '../src/sighting.js';
import { sleep, until } from './helpers/wait.js';

const dirs: string[] = [];
const handles: InputHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'onsight-leasein-'));
  dirs.push(d);
  return d;
};

/** commits each group at once (as the ingest does, in order), keeping what it was given */
class Sink implements LineSink {
  readonly lines: RawLine[] = [];
  push(l: RawLine): boolean {
    this.lines.push(l);
    setImmediate(() => l.group?.committed?.());
    return true;
  }
  onDrain(): void {}
  get sightings(): Sighting[] {
    return this.lines.flatMap((l) => l.sightings ?? []);
  }
}

const store: ResumeStore = { checkpoint: async () => undefined, position: async () => undefined, prunePositions: async () => 0 };
const hex = (n: number) => n.toString(16).padStart(2, '0');
const dnsmasqLine = (i: number, exp: number) => `${exp} 52:54:00:00:${hex(i >> 8)}:${hex(i & 255)} 10.20.${i >> 8}.${i & 255} h-${i} *\n`;
const KEA_HEADER = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id\n';
const keaRow = (i: number, exp: number, lifetime = 3600) => `10.30.${i >> 8}.${i & 255},52:54:00:30:${hex(i >> 8)}:${hex(i & 255)},,${lifetime},${exp},1,0,0,k-${i},0,,0\n`;

describe('dnsmasq rewritten with a pause between two writes', () => {
  it('a read taken during the pause (settled only over the short wait) ends nothing: no release of a lease that never left', async () => {
    const dir = tmp();
    const path = join(dir, 'dnsmasq.leases');
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const all = Array.from({ length: 20 }, (_, i) => dnsmasqLine(i + 1, exp));
    writeFileSync(path, all.join(''));
    const sink = new Sink();
    handles.push(await startLeaseInput({ type: 'lease', path, format: 'dnsmasq', pollMs: 50 } as never, sink, store, silentLogger()));
    await until(() => sink.sightings.length === 20, 5000, 'the first snapshot');
    // as dnsmasq does through stdio, from another process: truncate, the first writes, a pause (the
    // writer descheduled: 100-140 ms, shorter than the long wait), the rest; again 20-40 ms later, for 6 s
    const writer = spawn(process.execPath, ['-e', `
      const fs = require('node:fs');
      const [path, first, rest] = process.argv.slice(1);
      const wait = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      const end = Date.now() + 6000;
      while (Date.now() < end) {
        const fd = fs.openSync(path, 'w');
        fs.writeSync(fd, first);
        wait(100 + Math.random() * 40);
        fs.writeSync(fd, rest);
        fs.closeSync(fd);
        wait(20 + Math.random() * 20);
      }
    `, path, all.slice(0, 10).join(''), all.slice(10).join('')], { stdio: 'ignore' });
    await new Promise((r) => writer.on('exit', r));
    await sleep(600); // a read over the long wait after the churn
    expect(sink.sightings.filter((s) => s.kind !== 'lease').map((s) => `${s.kind} ${s.ip}`)).toEqual([]);
    // and a lease that did leave is ended once a read settles over the long wait
    writeFileSync(path, all.slice(0, 19).join(''));
    await until(() => sink.sightings.some((s) => s.kind === 'release' && s.ip === '10.20.0.20'), 5000, 'the release of the lease that left');
  }, 20_000);
});

describe('dnsmasq rewritten within one timestamp tick', () => {
  it('a rewrite of the same size and mtime, soon after the last, is read (it was missed until the next change)', async () => {
    const dir = tmp();
    const path = join(dir, 'dnsmasq.leases');
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const t = Date.now() / 1000;
    writeFileSync(path, dnsmasqLine(11, exp) + dnsmasqLine(12, exp));
    utimesSync(path, t, t);
    const sink = new Sink();
    handles.push(await startLeaseInput({ type: 'lease', path, format: 'dnsmasq', pollMs: 50 } as never, sink, store, silentLogger()));
    await until(() => sink.sightings.length === 2, 5000, 'the first snapshot');
    await sleep(300);
    // lease 12 gone, lease 13 come: the same size, the same mtime (a coarse clock, or 1 s timestamps)
    writeFileSync(path, dnsmasqLine(11, exp) + dnsmasqLine(13, exp));
    utimesSync(path, t, t);
    await until(() => sink.sightings.some((s) => s.kind === 'lease' && s.ip === '10.20.0.13'), 3000, 'the new lease');
    await until(() => sink.sightings.some((s) => s.kind === 'release' && s.ip === '10.20.0.12'), 3000, 'the release');
  });
});

describe("Kea's compacted files read at a first start", () => {
  it('an address leased early in .1 and released 15,000 rows later gives its release alone: no lease committed before it (a scan was launched of a device the file says has left)', async () => {
    const dir = tmp();
    const path = join(dir, 'kea-leases4.csv');
    const now = Math.floor(Date.now() / 1000);
    const rows = [KEA_HEADER];
    for (let i = 1; i <= 35_000; i++) rows.push(i === 15_000 ? keaRow(5, now, 0) : keaRow(i, now + 3600));
    writeFileSync(`${path}.1`, rows.join(''));
    writeFileSync(path, KEA_HEADER);
    const sink = new Sink();
    handles.push(await startLeaseInput({ type: 'lease', path, format: 'kea', pollMs: 50 } as never, sink, store, silentLogger()));
    await until(() => sink.lines.some((l) => l.group?.position !== undefined), 20_000, 'the last group, with the position');
    const of5 = sink.sightings.filter((s) => s.ip === '10.30.0.5').map((s) => s.kind);
    expect(of5).toHaveLength(1);
    expect(of5[0]).not.toBe('lease');
    // each address once, in groups of at most 10,000, the position with the last only
    expect(sink.sightings).toHaveLength(35_000 - 1);
    expect(sink.lines.every((l) => (l.sightings?.length ?? 0) <= 10_000)).toBe(true);
    expect(sink.lines.filter((l) => l.group?.position).length).toBe(1);
    expect(sink.lines.at(-1)!.group?.position).toBeDefined();
  }, 30_000);

  it("Kea's cleanup finishing between the two passes (.1 replaced, .2 removed) loses nothing: both passes read the files as first opened", async () => {
    const dir = tmp();
    const path = join(dir, 'kea-leases4.csv');
    const now = Math.floor(Date.now() / 1000);
    // .1 in reverse order, .2 renewing the first 50 and adding 50 new, then a torn line (the moment of the swap)
    let one = KEA_HEADER;
    for (let i = 200; i >= 1; i--) one += keaRow(i, now + 3600);
    let two = KEA_HEADER;
    for (let i = 1; i <= 50; i++) two += keaRow(i, now + 3660);
    for (let i = 1001; i <= 1050; i++) two += keaRow(i, now + 3600);
    writeFileSync(`${path}.1`, one);
    writeFileSync(`${path}.2`, two + 'torn-line\n');
    writeFileSync(path, KEA_HEADER);
    // what kea-lfc leaves: each address once, in address order, renamed over .1, and .2 removed
    let merged = KEA_HEADER;
    for (let i = 1; i <= 200; i++) merged += keaRow(i, i <= 50 ? now + 3660 : now + 3600);
    for (let i = 1001; i <= 1050; i++) merged += keaRow(i, now + 3600);
    writeFileSync(`${path}.new`, merged);
    let swapped = false;
    const log = pino({ level: 'warn' }, { write: (l: string) => {
      if (!swapped && l.includes('malformed record skipped')) {
        swapped = true;
        renameSync(`${path}.new`, `${path}.1`);
        rmSync(`${path}.2`);
      }
    } });
    const sink = new Sink();
    handles.push(await startLeaseInput({ type: 'lease', path, format: 'kea', pollMs: 1000, } as never, sink, store, log));
    await until(() => sink.lines.some((l) => l.group?.position !== undefined), 10_000, 'the last group');
    expect(swapped).toBe(true);
    const ips = new Set(sink.sightings.map((s) => s.ip));
    expect(ips.size).toBe(250);
    // the renewals in .2 stand, not the older records in .1
    expect(sink.sightings.filter((s) => Date.parse(s.expiresAt!) === (now + 3660) * 1000)).toHaveLength(50);
  }, 30_000);

  // (a guard: readline, before, held a line whole; the crash needed one of some 600 MB, too large for a test)
  it('a line of megabytes without a newline (a file filled with NULs) is dropped as malformed; the rest is read', async () => {
    const dir = tmp();
    const path = join(dir, 'kea-leases4.csv');
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(`${path}.1`, KEA_HEADER + keaRow(1, now + 3600) + '\0'.repeat(3 << 20) + '\n' + keaRow(2, now + 3600));
    writeFileSync(path, KEA_HEADER);
    const sink = new Sink();
    handles.push(await startLeaseInput({ type: 'lease', path, format: 'kea', pollMs: 50 } as never, sink, store, silentLogger()));
    await until(() => sink.sightings.length === 2, 10_000, 'the two good rows');
    expect(sink.sightings.map((s) => s.ip)).toEqual(['10.30.0.1', '10.30.0.2']);
    expect(handles[0].counters().dropped.malformed).toBe(1);
  }, 30_000);
});
