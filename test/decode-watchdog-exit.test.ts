/**
 * A line that ends the decode thread (a user plug-in's process.exit, a heap run out of memory) is
 * dropped like one that stalls it: counted, put down to the plug-in (MAX_STALLS within an hour
 * disable it), the thread started again without it, the other lines of its batch decoded. A thread a
 * plug-in ends from a timer or promise (its line answered already) is put down to it the same way.
 * Before, the batch was sent again, the same line ended every new thread, and after 6 exits the batch
 * was decoded on the main thread: the plug-in's process.exit ended the daemon.
 * Real parts: the DecodeThread from dist/ (npx tsc first), the daemon child process (bin/onsight.js,
 * TCP syslog on loopback, /api/status over HTTP), real plug-in files. The out-of-memory case gives the
 * thread a 64 MiB old generation (the constructor's oldGenerationMb): with V8's default (some 4 GiB
 * here, as the main thread's) a test would have to fill gigabytes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DecodeThread, DecodeThreadGone, MAX_STALLS, decodeThreadEntry } from '../src/daemon/decode-client.js';
import { disabledWhy } from '../src/daemon/decoders.js';
import type { RawLine } from '../src/sources/types.js';
import type { Status } from '../src/http/status.js';
import { CRAFTED, sightingOf, startStallDaemon, stallLine, stallPlugin } from './helpers/stall-plugin.js';
import { tcpSend } from './helpers/net.js';
import { until } from './helpers/wait.js';

const built = decodeThreadEntry() !== undefined;
if (!built) console.log('SKIP decode watchdog exit tests: no compiled decode thread under dist/ (run npx tsc)');

interface Said { level: string; obj: Record<string, unknown>; msg: string }
function recorder(): { log: never; said: Said[] } {
  const said: Said[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void said.push({ level, obj, msg });
  return { said, log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } as never };
}

/** exiter: process.exit(1) on a `die` line; with `marker` given, also at load once that file exists */
const exiter = (marker?: string, id = 'exiter') => `import { existsSync, writeFileSync } from 'node:fs';
${marker ? `if (existsSync(${JSON.stringify(marker)})) process.exit(70);` : ''}
export default { id: '${id}', description: 'ends the thread', claims: { tags: ['${id}'] },
  detect: (i) => i.syslog.appName === '${id}',
  create: () => ({ parse(i) {
    if (i.syslog.msg === 'die') { ${marker ? `writeFileSync(${JSON.stringify(marker)}, '');` : ''} process.exit(1); }
    return [{ kind: 'tunnel-up', ip: '10.7.0.1', user: i.syslog.msg }];
  } }) };`;
/** hog: on a `hog` line, keeps arrays made from the line, up to 512 MiB (past a 64 MiB heap) */
const HOG = `export default { id: 'hog', description: 'keeps copies of the line', claims: { tags: ['hog'] },
  detect: (i) => i.syslog.appName === 'hog',
  create: () => ({ parse(i) {
    if (i.syslog.msg.startsWith('hog ')) { const kept = []; for (let n = 0; n < 65536; n++) kept.push(i.syslog.msg.split('')); return []; }
    return [{ kind: 'tunnel-up', ip: '10.7.0.2', user: 'h' }];
  } }) };`;
/** later: answers its line, then ends the thread from a timer or promise it leaves behind */
const LATER = `export default { id: 'later', description: 'fails after the line', claims: { tags: ['later'] },
  detect: (i) => i.syslog.appName === 'later',
  create: () => ({ parse(i) {
    const m = i.syslog.msg;
    if (m === 'timer') setTimeout(() => { throw new Error('later, from a timer'); }, 0);
    if (m === 'promise') Promise.reject(new Error('later, from a promise'));
    if (m === 'exit') setTimeout(() => process.exit(3), 0);
    return [{ kind: 'tunnel-up', ip: '10.7.0.3', user: m }];
  } }) };`;

const dhcp = (i: number) => `<30>Nov 23 11:59:59 gw dhcpd[7]: DHCPACK on 10.1.0.${i} to 52:54:00:aa:00:0${i} via eth0`;
const tagged = (tag: string, msg: string) => `<30>Nov 23 11:59:59 vpn ${tag}[1]: ${msg}`;
const mk = (text: string, source = 'tcp:514'): RawLine => ({ text, receivedAt: new Date('2026-11-23T12:00:00Z'), source });
const ips = (r: (import('../src/sighting.js').Sighting[] | undefined)[]) => r.map((x) => x?.map((s) => s.ip));

const dirs: string[] = [];
const threads: DecodeThread[] = [];
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
  for (const t of threads.splice(0)) await t.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function pluginDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-wd-exit-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function start(dir: string, opts: { lineTimeoutMs?: number; oldGenerationMb?: number } = {}): { dt: DecodeThread; said: Said[] } {
  const { log, said } = recorder();
  const dt = new DecodeThread(decodeThreadEntry()!, { zone: 'UTC', parsersDirectory: dir }, log, opts);
  threads.push(dt);
  return { dt, said };
}

describe.runIf(built)('a line that ends the decode thread', () => {
  it(`process.exit on a line: the line dropped and counted, the others decoded; ${MAX_STALLS} such lines disable the plug-in, and do not give the thread up`, async () => {
    const { dt, said } = start(pluginDir({ 'exiter.mjs': exiter(), 'exiter2.mjs': exiter(undefined, 'exiter2') }));
    await dt.ready;
    const lease: RawLine = { ...mk('(a lease file snapshot)'), sightings: [] };
    // before: sent again 5 times, then rejected (exited 6 times), and decoded on the main thread
    const r = await dt.decode([lease, mk(dhcp(1)), mk(tagged('exiter', 'die')), mk(dhcp(2)), mk(tagged('exiter', 'alice'))]);
    expect(ips(r)).toEqual([undefined, ['10.1.0.1'], [], ['10.1.0.2'], ['10.7.0.1']]);
    expect(dt.failed).toBe(false);
    expect(dt.watchdogFigures.exited).toEqual({ 'tcp:514': 1 });
    expect(dt.watchdogFigures.timedOut).toEqual({});
    const cut = said.filter((s) => /exited \(code 1\) in parser exiter on one line/.test(s.msg));
    expect(cut).toHaveLength(1);
    expect(cut[0].obj).toMatchObject({ plugin: 'exiter', source: 'tcp:514', code: 1, outOfMemory: false });
    expect(dt.counters.auto).toMatchObject({ parserErrors: 1 });

    // MAX_STALLS each from two plug-ins: more exits than the 5 that give the thread up when no line is to blame
    for (let i = 1; i < MAX_STALLS + 2; i++) {
      expect(ips(await dt.decode([mk(tagged('exiter', 'die')), mk(dhcp(3)), mk(tagged('exiter2', 'die'))]))).toEqual([[], ['10.1.0.3'], []]);
    }
    expect(dt.failed).toBe(false);
    expect(dt.watchdogFigures.exited).toEqual({ 'tcp:514': 2 * MAX_STALLS });
    expect(dt.watchdogFigures.disabled).toMatchObject([
      { plugin: 'exiter', reason: 'exits', exits: MAX_STALLS, stalls: 0, windowMin: 60 },
      { plugin: 'exiter2', reason: 'exits', exits: MAX_STALLS, stalls: 0, windowMin: 60 },
    ]);
    expect(disabledWhy(dt.watchdogFigures.disabled[0])).toBe(`made the decode thread exit ${MAX_STALLS} times within 60 min`);
    const off = said.filter((s) => /is disabled until the daemon restarts/.test(s.msg));
    expect(off.map((s) => s.msg)).toEqual(['exiter', 'exiter2'].map((p) => expect.stringMatching(new RegExp(`^parser plug-in ${p} made the decode thread exit 3 times within 60 min: .*never to exit`))));
    // off: their lines unclaimed under auto, nothing ends the thread again
    expect(said.filter((s) => /restarted/.test(s.msg))).toHaveLength(2 * MAX_STALLS);
  }, 60_000);

  it('a line that runs the thread out of memory (64 MiB heap): dropped, counted, the rest of the batch decoded', async () => {
    const { dt, said } = start(pluginDir({ 'hog.mjs': HOG }), { oldGenerationMb: 64 });
    await dt.ready;
    const r = await dt.decode([mk(dhcp(1)), mk(tagged('hog', `hog ${'x'.repeat(1000)}`)), mk(tagged('hog', 'ok')), mk(dhcp(2))]);
    expect(ips(r)).toEqual([['10.1.0.1'], [], ['10.7.0.2'], ['10.1.0.2']]);
    expect(dt.failed).toBe(false);
    expect(dt.watchdogFigures.exited).toEqual({ 'tcp:514': 1 });
    const cut = said.filter((s) => /ran out of memory in parser hog on one line of \d+ characters/.test(s.msg));
    expect(cut).toHaveLength(1);
    expect(cut[0].obj).toMatchObject({ plugin: 'hog', outOfMemory: true });
  }, 60_000);

  it(`a plug-in that ends the thread from a timer or promise after its line: its line kept, the exit put down to it, ${MAX_STALLS} disable it`, async () => {
    const { dt, said } = start(pluginDir({ 'later.mjs': LATER }));
    await dt.ready;
    const ends = () => said.filter((s) => /in a timer or promise of parser later/.test(s.msg)).length;
    for (const [i, how] of ['timer', 'promise', 'exit'].entries()) {
      expect(ips(await dt.decode([mk(tagged('later', how)), mk(dhcp(4))]))).toEqual([['10.7.0.3'], ['10.1.0.4']]);
      await until(() => ends() === i + 1, 10_000, `the thread ended by later's ${how}`);
    }
    expect(dt.failed).toBe(false);
    expect(dt.watchdogFigures.exited).toEqual({});
    expect(dt.watchdogFigures.disabled).toMatchObject([{ plugin: 'later', reason: 'exits', exits: MAX_STALLS }]);
    // off now: its line is unclaimed and the thread is not ended again
    expect(ips(await dt.decode([mk(tagged('later', 'timer')), mk(dhcp(5))]))).toEqual([[], ['10.1.0.5']]);
    await new Promise((r) => setTimeout(r, 300));
    expect(ends()).toBe(MAX_STALLS);
  }, 60_000);

  it('exits with no line at work (a plug-in ending each new thread as it loads) still give the thread up; the lines dropped stay dropped, the plug-ins that stalled or ended it once are off, each worded for what it did', async () => {
    const dir = pluginDir({});
    const marker = join(dir, 'died');
    writeFileSync(join(dir, 'exiter.mjs'), exiter(marker));
    writeFileSync(join(dir, 'acme.mjs'), stallPlugin('acme', String.raw`^ip=(\S+) user=((?:\w+\s?)+)$`, 'i'));
    const { dt, said } = start(dir, { lineTimeoutMs: 300 });
    await dt.ready;
    const lease: RawLine = { ...mk('(a lease file snapshot)'), sightings: [] };
    // acme stalls thread 1; thread 2 ends on the die line (and leaves the marker); threads 3-8 end as they load
    const err = await dt.decode([lease, mk(dhcp(1)), mk(stallLine('acme', '10.9.9.9', CRAFTED)), mk(tagged('exiter', 'die')), mk(dhcp(2))])
      .then(() => undefined, (e: Error) => e);
    expect(dt.failed).toBe(true);
    expect(err).toBeInstanceOf(DecodeThreadGone);
    expect(err?.message).toMatch(/exited \(code 70\) 6 times within 10 min/);
    expect((err as DecodeThreadGone).dropped).toEqual([2, 3]);
    const off = dt.watchdogFigures.disabled;
    expect(off).toMatchObject([
      { plugin: 'acme', reason: 'threadGivenUp', stalls: 1, exits: 0 },
      { plugin: 'exiter', reason: 'threadGivenUp', stalls: 0, exits: 1 },
    ]);
    expect(off.map(disabledWhy)).toEqual(['stalled the decode thread once before it was given up', 'made the decode thread exit once before it was given up']);
    expect(said.filter((s) => /given up/.test(s.msg)).map((s) => s.obj.plugins)).toEqual([['acme', 'exiter']]);
  }, 60_000);
});

describe.runIf(built)('the daemon, a plug-in that calls process.exit on a crafted line', () => {
  it(`stays up: each such line dropped, the plug-in off after ${MAX_STALLS}, /api/status saying why and counting the lines`, async () => {
    const started = await startStallDaemon({ 'exiter.mjs': exiter(), 'plain.mjs': stallPlugin('plain-vpn', String.raw`^ip=(\S+) user=(\w+)$`) });
    stop = started.cleanup;
    const { d, port, httpPort } = started;
    const lines = [...Array.from({ length: MAX_STALLS + 1 }, () => tagged('exiter', 'die')), stallLine('plain-vpn', '10.20.3.9', 'alice')];
    await tcpSend(port, lines.join('\n') + '\n');
    // before: the batch went to the main thread after 6 exits, and the daemon exited there
    await Promise.race([
      d.waitFor(sightingOf('10.20.3.9'), 30_000),
      d.exit.then((code) => { throw new Error(`the daemon exited (${code})`); }),
    ]);
    expect(d.child.exitCode).toBe(null);
    const s = (await (await fetch(`http://127.0.0.1:${httpPort}/api/status`)).json()) as Status;
    expect(s.decoder).toMatchObject({ timedOut: 0, exited: MAX_STALLS, exitedBySource: { [`tcp:${port}`]: MAX_STALLS } });
    expect(s.decoder!.disabledPlugins).toHaveLength(1);
    const off = s.decoder!.disabledPlugins[0];
    expect(off).toMatchObject({ plugin: 'exiter', reason: 'exits', stalls: 0, exits: MAX_STALLS, windowMin: 60 });
    expect(off.why).toBe(`made the decode thread exit ${MAX_STALLS} times within 60 min: each time it ended the thread (process.exit, an error thrown from a timer or promise, or a line that makes it run out of memory)`);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toContain(`onsight_decode_exits_total{source="tcp:${port}"} ${MAX_STALLS}`);
    expect(metrics).toMatch(/^onsight_parser_plugin_disabled\{plugin="exiter"\} 1$/m);
  }, 60_000);
});

describe.runIf(built)('a plug-in\'s create() that leaves a timer throwing (fifth review)', () => {
  it(`under a pinned format (no detect() first): the exits are put down to it, it is turned off after ${MAX_STALLS}, the thread not given up`, async () => {
    const BOOT = `export default { id: 'boot', description: 'x', claims: { tags: ['boot'] },
  detect: (i) => i.syslog.appName === 'boot',
  create: () => { setTimeout(() => { throw new Error('boot: init failed'); }, 0); return { parse: () => [{ kind: 'tunnel-up', ip: '10.7.0.9', user: 'b' }] }; } };`;
    const { dt } = start(pluginDir({ 'boot.mjs': BOOT }));
    await dt.ready;
    for (let i = 0; i < MAX_STALLS + 3 && !dt.disabledPlugins.includes('boot'); i++) {
      await dt.decode([{ ...mk(tagged('boot', `x${i}`)), format: 'boot' }]).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(dt.failed).toBe(false);
    expect(dt.disabledPlugins).toEqual(['boot']);
    expect(dt.watchdogFigures.disabled).toMatchObject([{ plugin: 'boot', reason: 'exits', exits: MAX_STALLS }]);
  }, 60_000);
});
