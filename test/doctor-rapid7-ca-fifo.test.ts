/**
 * `onsight doctor`'s Rapid7 checks read `scanner.ca` with a blocking read: a CA file that is a FIFO
 * (nothing writing) hung them for ever. They now do as doctor does for a secret's file: a file a
 * read would wait on is not read, and its key is said (a warning). The Rapid7 backend's doctor
 * from the compiled tree (dist: build with `npx tsc -p .`), run in a child process with a timeout
 * so that a hang fails the test instead of stalling it; a real FIFO, a real regular file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;
if (!hasMkfifo) console.log('SKIP doctor Rapid7 FIFO CA case: `mkfifo` is needed (Debian package coreutils)');

const dir = mkdtempSync(join(tmpdir(), 'onsight-doctor-r7-ca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BACKEND = pathToFileURL(join(REPO, 'dist', 'src', 'scanners', 'rapid7', 'backend.js')).href;

/** the Rapid7 backend's doctor lines for a scanner config with `ca`, from a child process given 10 s */
function doctorLines(ca: string) {
  const scanner = { type: 'rapid7', url: 'https://r7.example:3780', username: 'u', passwordEnv: 'R7_CA_FIFO_TEST_PW', ca, siteId: 1 };
  const script = `const { rapid7Backend } = await import(${JSON.stringify(BACKEND)});
const sc = rapid7Backend.schema.parse(${JSON.stringify(scanner)});
process.stdout.write(JSON.stringify(rapid7Backend.doctor(sc, { env: process.env })));`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL', env: { ...process.env, R7_CA_FIFO_TEST_PW: 'x'.repeat(20) } });
  expect(r.error, `the Rapid7 doctor did not end within 10 s (stderr: ${r.stderr})`).toBeUndefined(); // (not killed by the timeout)
  expect(r.status, r.stderr).toBe(0);
  return { lines: JSON.parse(r.stdout) as { mark: string; what: string; text: string }[], ms: Date.now() - started };
}

describe("doctor's Rapid7 checks and scanner.ca", () => {
  it.skipIf(!hasMkfifo)('a CA file that is a FIFO: not read, said as a warning naming scanner.ca, and the checks end', () => {
    const fifo = join(dir, 'ca.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const { lines, ms } = doctorLines(fifo);
    expect(ms).toBeLessThan(10_000);
    expect(lines).toContainEqual({ mark: 'warn', what: 'scanner.ca', text: `${fifo} is a named pipe (FIFO), not a regular file: not read by doctor (a read would wait for a writer); run reads it at its start and waits as long as it takes` });
    expect(lines.filter((l) => l.mark === 'fail')).toEqual([]);
    // the other checks still ran
    expect(lines.map((l) => l.what)).toEqual(['credentials', 'scanner.ca', 'sites']);
  });

  it('a regular file is still read: one with no PEM certificate fails as before', () => {
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const { lines } = doctorLines(garbage);
    expect(lines).toContainEqual({ mark: 'fail', what: 'tls', text: `${garbage} holds no PEM certificate` });
  });
});
