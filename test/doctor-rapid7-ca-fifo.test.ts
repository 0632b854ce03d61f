/**
 * `onsight doctor`'s Rapid7 checks read `scanner.ca` with a blocking read: a CA file that is a FIFO
 * (nothing writing) hung them for ever. Doctor now says the key and calls none of the scanner's
 * checks when a file they read would wait (cli/doctor.ts, the only caller of the backend's doctor:
 * the Rapid7 doctor's own guard, unreachable, is gone). The real CLI with a real FIFO, in a child
 * process with a timeout so that a hang fails the test instead of stalling it; and the Rapid7
 * backend's doctor from the compiled tree (dist: build with `npx tsc -p .`) on a regular file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, REPO } from './helpers/paths.js';

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;
if (!hasMkfifo) console.log('SKIP doctor Rapid7 FIFO CA case: `mkfifo` is needed (Debian package coreutils)');

const dir = mkdtempSync(join(tmpdir(), 'onsight-doctor-r7-ca-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BACKEND = pathToFileURL(join(REPO, 'dist', 'src', 'scanners', 'rapid7', 'backend.js')).href;

/** the Rapid7 backend's doctor lines for a scanner config with `ca` (a regular file), from a child process given 10 s */
function doctorLines(ca: string) {
  const scanner = { type: 'rapid7', url: 'https://r7.example:3780', username: 'u', passwordEnv: 'R7_CA_FIFO_TEST_PW', ca, siteId: 1 };
  const script = `const { rapid7Backend } = await import(${JSON.stringify(BACKEND)});
const sc = rapid7Backend.schema.parse(${JSON.stringify(scanner)});
process.stdout.write(JSON.stringify(rapid7Backend.doctor(sc, { env: process.env })));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL', env: { ...process.env, R7_CA_FIFO_TEST_PW: 'x'.repeat(20) } });
  expect(r.error, `the Rapid7 doctor did not end within 10 s (stderr: ${r.stderr})`).toBeUndefined(); // (not killed by the timeout)
  expect(r.status, r.stderr).toBe(0);
  return { lines: JSON.parse(r.stdout) as { mark: string; what: string; text: string }[] };
}

describe("doctor's Rapid7 checks and scanner.ca", () => {
  it.skipIf(!hasMkfifo)('a CA file that is a FIFO: onsight doctor ends, says scanner.ca once, and skips the Rapid7 checks', () => {
    const fifo = join(dir, 'ca.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const cfg = join(dir, 'r7-fifo.yaml');
    writeFileSync(cfg, `state: ${join(dir, 'onsight.db')}
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
http: { enabled: false }
scanner: { type: rapid7, url: "https://r7.example:3780", username: u, passwordEnv: R7_CA_FIFO_TEST_PW, ca: ${fifo}, siteId: 1 }
`);
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--config', cfg], { cwd: dir, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL', env: { ...process.env, R7_CA_FIFO_TEST_PW: 'x'.repeat(20) } });
    expect(r.error, `doctor did not end within 15 s; it printed:\n${r.stdout}${r.stderr}`).toBeUndefined(); // (not killed by the timeout)
    const said = r.stdout.split('\n').filter((l) => l.startsWith('! scanner'));
    expect(said).toEqual([
      `! scanner.ca: ${fifo} is a named pipe (FIFO), not a regular file: not read by doctor (a read would wait for a writer); run reads it at its start and waits as long as it takes`,
      '! scanner: its credentials and its API not checked: a file it reads is not read by doctor',
    ]);
    // (the Rapid7 checks, credentials, tls and sites, were not called)
    expect(r.stdout).not.toMatch(/^. (credentials|tls|sites):/m);
    expect(r.stdout).toMatch(/0 failure\(s\)/);
  });

  it('a regular file is still read: one with no PEM certificate fails as before', () => {
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const { lines } = doctorLines(garbage);
    expect(lines).toContainEqual({ mark: 'fail', what: 'tls', text: `${garbage} holds no PEM certificate` });
  });
});
