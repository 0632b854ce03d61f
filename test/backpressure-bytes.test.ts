/**
 * Backpressure bounded in bytes, not only in messages: 100,000 held datagrams of 64 KiB would be
 * GBs, 20,000 buffered file lines of 1 MiB 20 GB. With the sink or the store stalled:
 * - the UDP receive thread (node's dgram, and the native receiver where it was built) holds at
 *   most UDP_THREAD_HOLD_BYTES of big datagrams and drops and counts the rest as backpressure;
 * - the ingest asks its sources to pause at highWaterChars characters of buffered text, and goes
 *   on once the store takes the lines again.
 * Real loopback sockets, real files, a real store (SQLite, PostgreSQL where available).
 */
import { afterEach, beforeEach, describe, expect, it as itAll } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ingest } from '../src/daemon/ingest.js';
import { loadRegistry } from '../src/parsers/registry.js';
import { startFileInput, startSyslogInput } from '../src/sources/index.js';
import { loadNativeUdp } from '../src/sources/syslog/native-udp.js';
import { UDP_THREAD_HOLD_BYTES } from '../src/sources/syslog/udp-client.js';
import { threadEntry } from '../src/util/thread-entry.js';
import type { InputHandle, SyslogInputOptions } from '../src/sources/types.js';
import { silentLogger } from '../src/log.js';
import { CollectSink } from './helpers/sink.js';
import { STORE_KINDS } from './helpers/stores.js';
import { stallStore } from './helpers/stall.js';
import { sleep, until } from './helpers/wait.js';

const log = silentLogger();
const threadBuilt = threadEntry(new URL('../src/sources/syslog/udp-client.ts', import.meta.url).href, 'udp-thread') !== undefined;
if (!threadBuilt) console.log('SKIP UDP receive thread byte cap: no compiled receive thread under dist/ (run npx tsc)');
const native = loadNativeUdp();
if (!('addon' in native)) console.log(`SKIP the native receiver's byte cap: ${native.reason}`);

let dir: string;
const cleanup: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-bytes-'));
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  rmSync(dir, { recursive: true, force: true });
});

const DGRAM = 60_000;

describe('UDP receive thread: held bytes', () => {
  const receivers = ['dgram', ...('addon' in native ? ['native'] : [])] as const;
  for (const receiver of receivers) {
    itAll.runIf(threadBuilt)(`${receiver}: big datagrams beyond the byte cap are dropped and counted while the sink is stalled`, async () => {
      const sink = new CollectSink();
      sink.blockAfter = 1; // the store stalls: the first line is taken, then "stop", never drained
      const opts: SyslogInputOptions = {
        listen: 'udp://127.0.0.1:0', format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 1000,
        udpRecvBufferBytes: 8 << 20, receiveThread: true, udpReceiver: receiver,
      };
      const h: InputHandle = await startSyslogInput(opts, sink, log);
      cleanup.push(() => h.close());
      const s: Socket = createSocket('udp4');
      cleanup.push(() => s.close());
      const payload = Buffer.from(`<30>Nov 23 10:00:00 gw app[1]: ${'x'.repeat(DGRAM - 32)}`.slice(0, DGRAM));
      // past the cap (64 MiB is about 1,120 of these), paced so that the kernel buffer is not what
      // drops them: until the thread says it dropped some (its counters come every 500 ms), at most 5,000
      let sent = 0;
      const send = async (n: number) => {
        for (let i = 0; i < n; i++, sent++) {
          await new Promise<void>((resolve, reject) => s.send(payload, h.address!.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
          if (i % 4 === 3) await sleep(2);
        }
      };
      await send(Math.floor(UDP_THREAD_HOLD_BYTES / DGRAM));
      while (!(h.counters().dropped.backpressure ?? 0) && sent < 5000) await send(100);
      await send(100);
      await sleep(1200);
      const c = h.counters();
      const kernel = c.dropped.kernel ?? 0;
      expect(c.dropped.backpressure).toBeGreaterThan(0);
      // every datagram sent is accounted for: taken, or dropped (by us or the kernel)
      expect(c.received + (c.dropped.backpressure ?? 0) + kernel).toBe(sent);
      // what the thread took is what it holds, plus the few posts out unacknowledged (at most 2 MiB)
      expect(c.received * DGRAM).toBeLessThanOrEqual(UDP_THREAD_HOLD_BYTES + 4 * 1024 * 1024);
      expect(c.received * DGRAM).toBeGreaterThan(UDP_THREAD_HOLD_BYTES - 2 * DGRAM);
    }, 60_000);
  }
});

describe.each(STORE_KINDS)('ingest: buffered characters on $name', (kind) => {
  if (kind.skip) console.log(`skip ingest character cap on ${kind.name}: ${kind.skip}`);
  const it = kind.skip ? itAll.skip : itAll;

  it('long file lines pause the file input at highWaterChars while the store stalls, and all commit once it is back', async () => {
    const file = join(dir, 'state.db');
    const store = await kind.open({ defaultLeaseS: 3600, maxSessionS: 86400, retentionS: 30 * 86400 }, file);
    // the stall: another connection holds what the commit needs
    const release = await stallStore(kind.name, store, file, 'checkpoints');
    cleanup.push(release);
    const ingest = new Ingest(await loadRegistry(), store.inventory, () => undefined, log, { zone: 'UTC', highWaterChars: 1_000_000 });
    cleanup.push(() => ingest.close());
    const p = join(dir, 'long.log');
    const LINE = 100_000;
    const N = 40;
    let text = '';
    for (let i = 0; i < N; i++) text += `${String(i).padStart(4, '0')} ${'y'.repeat(LINE - 5)}\n`;
    writeFileSync(p, text);
    const h = await startFileInput({ path: p, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20 }, ingest, (path) => store.inventory.checkpoint(path), log);
    cleanup.push(() => h.close());
    await until(() => ingest.counters.pending >= 10, 20_000, 'the buffer at its mark');
    await sleep(1500);
    // 1,000,000 characters are 10 of these lines: the file input paused there (the line count mark is 20,000)
    expect(ingest.counters.pending).toBeLessThanOrEqual(11);
    expect(h.counters().received).toBeLessThanOrEqual(11);
    await release();
    await until(async () => (await store.inventory.checkpoint(p))?.offset === statSync(p).size, 30_000, 'every line committed');
    expect(ingest.counters.lines).toBe(N);
    expect(h.counters().received).toBe(N);
  }, 90_000);
});
