/**
 * The dnsmasq lease input with a large lease file: dnsmasq rewrites the whole file (in place:
 * truncate, then 4 KiB writes) for every lease that changes, and each rewrite is read whole. Another
 * process rewrites a file of `leases` leases, one lease renewed each time, `changes` times, 2.5 s
 * apart (past the rereads of a file changed lately); the input commits into a real SQLite inventory
 * (sightings and the snapshot's position, as the ingest does). Reported: the main thread's busy time
 * per change (event-loop utilization, the commits included), the sightings per rewrite, the position
 * committed per change; and, in the same run, one parse of the whole file (what every rewrite cost,
 * twice or three times over with the rereads, before only the changed lines were parsed).
 *
 * `node dist/bench/lease-snapshot.js [--leases=N] [--changes=N]`
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openDatabase } from '../src/store/db.js';
import { SqliteInventory } from '../src/inventory/inventory.js';
import { silentLogger } from '../src/log.js';
import { parseDnsmasqLeases } from '../src/sources/lease/dnsmasq.js';
import { startLeaseInput } from '../src/sources/lease/input.js';
import type { LineSink, RawLine, ResumeStore } from '../src/sources/types.js';

export interface LeaseBenchResult { leases: number; changes: number; busyMsPerChange: number; sightingsPerRewrite: number[]; positionBytes: number; wholeParseMs: number }

/** the writer, in its own process: it rewrites the file as dnsmasq does (lease.c lease_update_file) when told */
const WRITER = `
const fs = require('node:fs');
const [path, n] = [process.argv[2], Number(process.argv[3])];
const hex = (i) => i.toString(16).padStart(2, '0');
const exp = Math.floor(Date.now() / 1000) + 86400;
const mac = (i) => '52:54:00:' + hex(i >> 16) + ':' + hex((i >> 8) & 255) + ':' + hex(i & 255);
const line = (i, e) => e + ' ' + mac(i) + ' 10.' + (20 + (i >> 16)) + '.' + ((i >> 8) & 255) + '.' + (i & 255) + ' host-' + i + ' 01:' + mac(i) + '\\n';
const leases = Array.from({ length: n }, (_, i) => line(i + 1, exp));
let c = 0;
const write = () => {
  const b = Buffer.from(leases.join('') + 'duid 00:01:00:01:2c:aa:bb:cc:52:54:00:00:00:01\\n');
  const fd = fs.openSync(path, 'r+');
  fs.ftruncateSync(fd, 0);
  for (let o = 0; o < b.length; o += 4096) fs.writeSync(fd, b, o, Math.min(4096, b.length - o), o);
  fs.closeSync(fd);
  process.send('written');
};
process.on('message', () => { c++; leases[(c * 7919) % n] = line((c * 7919) % n + 1, exp + c); write(); });
write();
`;

export async function runLeaseSnapshotBench(opts: { leases?: number; changes?: number; print?: boolean } = {}): Promise<LeaseBenchResult> {
  const n = opts.leases ?? 50_000;
  const changes = opts.changes ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'onsight-bench-lease-'));
  const path = join(dir, 'dnsmasq.leases');
  writeFileSync(path, '');
  writeFileSync(join(dir, 'writer.cjs'), WRITER);
  const writer = fork(join(dir, 'writer.cjs'), [path, String(n)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const written = () => new Promise((r) => writer.once('message', r));
  const db = openDatabase(join(dir, 'state.db'));
  const inv = new SqliteInventory(db, { defaultLeaseS: 3600, maxSessionS: 86_400, retentionS: 90 * 86_400 } as never);
  const pushes: number[] = [];
  let positionBytes = 0;
  const sink: LineSink = {
    push(l: RawLine) {
      pushes.push(l.sightings?.length ?? 0);
      if (l.group?.position) positionBytes = Buffer.byteLength(JSON.stringify(l.group.position.value));
      void inv.commitBatch(l.sightings ?? [], [], Date.now(), l.group?.position ? [l.group.position] : []).then(() => l.group?.committed?.());
      return true;
    },
    onDrain() {},
  };
  const store: ResumeStore = { checkpoint: async () => undefined, position: (k) => inv.position(k), prunePositions: async () => 0 };
  const until = async (f: () => boolean) => {
    while (!f()) await new Promise((r) => setTimeout(r, 20));
  };
  try {
    await written();
    const h = await startLeaseInput({ type: 'lease', path, format: 'dnsmasq', pollMs: 1000 } as never, sink, store, silentLogger());
    await until(() => pushes.length >= 1);
    await new Promise((r) => setTimeout(r, 2500));
    const elu0 = performance.eventLoopUtilization();
    for (let c = 1; c <= changes; c++) {
      writer.send('change');
      await written();
      await until(() => pushes.length > c);
      await new Promise((r) => setTimeout(r, 2500));
    }
    const elu = performance.eventLoopUtilization(elu0);
    await h.close();
    const text = readFileSync(path, 'utf8');
    const t0 = performance.now();
    parseDnsmasqLeases(text);
    const wholeParseMs = performance.now() - t0;
    const r: LeaseBenchResult = { leases: n, changes, busyMsPerChange: Math.round(elu.active / changes), sightingsPerRewrite: pushes.slice(1), positionBytes, wholeParseMs: Math.round(wholeParseMs) };
    if (opts.print) {
      console.log(`dnsmasq, ${n.toLocaleString('en')} leases, ${changes} rewrites of one lease: main thread ${r.busyMsPerChange} ms busy per change (commits into SQLite included), sightings per rewrite ${r.sightingsPerRewrite.join(',')}, position ${(positionBytes / 2 ** 20).toFixed(1)} MiB per change; one parse of the whole file ${r.wholeParseMs} ms (same run)`);
    }
    return r;
  } finally {
    writer.kill();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (k: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  runLeaseSnapshotBench({ leases: Number(arg('leases') ?? 50_000), changes: Number(arg('changes') ?? 5), print: true }).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
