/**
 * The logger (src/log.ts): a level set on a logger reaches the loggers made from it (pino copies
 * the level into a child when it is made, and the daemon makes its store, scheduler, ingest, http,
 * notify, cluster and input loggers at start, long before a SIGHUP); Tenable's `X-ApiKeys` header
 * is redacted; an object nested past the walk's depth limit is replaced, not passed through.
 */
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeLog, createLogger, redactSecrets, setLogLevel } from '../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-loglevel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jsonLines(file: string): Record<string, any>[] {
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
}

describe('log level', () => {
  it('setLogLevel reaches children and grandchildren made before it', () => {
    const file = join(dir, 'level.log');
    const log = createLogger({ pretty: false, fd: openSync(file, 'w'), level: 'info', writes: 'line' });
    const store = log.child({ stage: 'store' });
    const input = store.child({ input: 'tcp:5514' });
    store.debug('before: hidden');
    input.debug('before: hidden too');
    setLogLevel(log, 'debug');
    store.debug('after: store');
    input.debug('after: input');
    log.debug('after: root');
    setLogLevel(log, 'warn');
    store.info('quiet again');
    closeLog(log);
    const lines = jsonLines(file);
    expect(lines.map((l) => l.msg)).toEqual(['after: store', 'after: input', 'after: root']);
    expect(lines[1]).toMatchObject({ stage: 'store', input: 'tcp:5514', level: 20 });
  });
});

describe('redaction', () => {
  it("redacts Tenable's X-ApiKeys header and the apiKeys option", () => {
    const file = join(dir, 'apikeys.log');
    const log = createLogger({ pretty: false, fd: openSync(file, 'w'), level: 'info', writes: 'line' });
    log.info({ headers: { 'X-ApiKeys': 'accessKey=T1; secretKey=T2' } }, 'tenable call');
    log.info({ options: { apiKeys: 'accessKey=T3; secretKey=T4' } }, 'tenable client');
    closeLog(log);
    const text = readFileSync(file, 'utf8');
    for (const s of ['T1', 'T2', 'T3', 'T4']) expect(text, s).not.toContain(`=${s}`);
    const [a, b] = jsonLines(file);
    expect(a.headers['X-ApiKeys']).toBe('[Redacted]');
    expect(b.options.apiKeys).toBe('[Redacted]');
  });

  it('an object nested past the depth limit is replaced whole, whatever it holds; shallower values stay', () => {
    const deep = { l1: { l2: { l3: { l4: { l5: { l6: { l7: { pass: 'N1-hidden', note: 'N2-hidden' } }, keep: 'visible' } } } } } };
    const out = redactSecrets(deep) as any;
    const text = JSON.stringify(out);
    expect(text).not.toContain('N1-hidden');
    expect(text).not.toContain('N2-hidden');
    expect(out.l1.l2.l3.l4.l5.keep).toBe('visible');
    expect(out.l1.l2.l3.l4.l5.l6).toBe('[Redacted: nested too deep]');
    // the caller's object is untouched
    expect(deep.l1.l2.l3.l4.l5.l6.l7.pass).toBe('N1-hidden');
    // arrays count as levels too
    const arr = { a: [[[[[[{ token: 'N3-hidden' }]]]]]] };
    expect(JSON.stringify(redactSecrets(arr))).not.toContain('N3-hidden');
  });
});
