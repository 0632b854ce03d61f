/**
 * File inputs across a restart, on real files: a glob input resuming in a large file that is
 * appended to while the tailer finds its checkpoint (a read pass must not run alongside that), and
 * a restart during logrotate (a rotated file found at start waits for its quiet period, as at run
 * time, so its last line is not cut and late writes to it are read).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFileInput } from '../src/sources/index.js';
import type { FileInputOptions, InputHandle } from '../src/sources/types.js';
import { CollectSink } from './helpers/sink.js';
import { checkpointAt } from './helpers/checkpoint.js';
import { silentLogger } from '../src/log.js';
import { sleep, until } from './helpers/wait.js';

const log = silentLogger();
let dir: string;
const handles: InputHandle[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onsight-tail-restart-'));
});
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

function fopts(path: string, extra: Partial<FileInputOptions> = {}): FileInputOptions {
  return { path, format: 'isc-dhcpd', startAt: 'beginning', pollMs: 20, rotateWaitMs: 100, ...extra };
}

describe('file input restart', () => {
  it('a glob input resuming in a large file that grows meanwhile reads each line after the checkpoint exactly once', async () => {
    const p = join(dir, 'dhcpd.log');
    // about 32 MB: counting the lines up to the checkpoint takes a while, the window a read pass used to slip into
    const row = (i: number) => `Nov 23 10:00:00 gw dhcpd[7]: DHCPACK on 10.1.0.1 to 52:54:00:00:00:01 via eth0 old ${String(i).padStart(8, '0')}\n`;
    const rows: string[] = [];
    for (let i = 0; i < 320_000; i++) rows.push(row(i));
    writeFileSync(p, rows.join(''));
    const cp = checkpointAt(p, statSync(p).size);
    const sink = new CollectSink();
    let appended = 0;
    const more = () => appendFileSync(p, `new ${appended++}\n`);
    more();
    // the file grows while the restarted input starts (fs events and poll ticks kick the tailer)
    const writer = setInterval(more, 2);
    try {
      const h = await startFileInput(fopts(join(dir, '*.log')), sink, async (path) => (path === p ? cp : undefined), log);
      handles.push(h);
      await sleep(400);
    } finally {
      clearInterval(writer);
    }
    more();
    await until(() => sink.lines.length >= appended, 20_000, 'the appended lines');
    await sleep(200);
    const texts = sink.texts();
    expect(texts.filter((t) => !t.startsWith('new ')).length, 'lines from before the checkpoint').toBe(0);
    expect(texts).toEqual(Array.from({ length: appended }, (_, i) => `new ${i}`));
    // line numbers go on from the checkpoint's
    expect(sink.lines[0].line).toBe(320_001);
  }, 60_000);

  it('a restart during logrotate: the rotated file found at start gets its quiet period, so its half-written last line is completed and late writes to it are read', async () => {
    const p = join(dir, 'vpn.log');
    writeFileSync(p, 'l1\nl2\n');
    const cp = checkpointAt(p, 6);
    // while we were down: more lines, the rename, a new file; the writer is still mid-line in the old one
    appendFileSync(p, 'l3\nhalf');
    renameSync(p, p + '.1');
    writeFileSync(p, 'n1\n');
    const sink = new CollectSink();
    const h = await startFileInput(fopts(p, { rotateWaitMs: 600 }), sink, async (path) => (path === p ? cp : undefined), log);
    handles.push(h);
    await until(() => sink.lines.length >= 1, 3000, 'l3');
    // the writer finishes its line and writes one more before it reopens (its HUP)
    appendFileSync(p + '.1', '-done\nlate\n');
    await until(() => sink.lines.length >= 4, 5000, 'the rest');
    await sleep(200);
    expect(sink.texts()).toEqual(['l3', 'half-done', 'late', 'n1']);
  });
});
