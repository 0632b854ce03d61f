/**
 * `onsight doctor` read secrets with a blocking loader: a password or token file that is a FIFO
 * (nothing writing) hung it for ever. It now does as config check does: a secret whose file a read
 * would wait on is not read, and its key is said at once (what would read it is skipped). A real
 * FIFO, the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;
if (!hasMkfifo) console.log('SKIP doctor FIFO secret case: `mkfifo` is needed (Debian package coreutils)');

const dir = mkdtempSync(join(tmpdir(), 'onsight-doctor-fifo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasMkfifo)('doctor and a secret that is a FIFO', () => {
  it('a scanner password file and a status-page token file that are FIFOs: doctor ends within seconds, naming each key', () => {
    const fifo = join(dir, 'secret.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const cfg = join(dir, 'fifo.yaml');
    writeFileSync(cfg, `state: ${join(dir, 'onsight.db')}
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
scanner: { type: qualys, url: "https://qualysapi.qualys.eu", username: u, passwordFile: ${fifo}, optionProfile: p }
http:
  listen: "127.0.0.1:0"
  tokens: [{ name: prom, file: ${fifo} }]
`);
    const started = Date.now();
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--config', cfg], { cwd: dir, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });
    expect(r.error, `doctor did not end within 15 s; it printed:\n${r.stdout}`).toBeUndefined(); // (not killed by the timeout)
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout).toContain(`! http.tokens[0].file: ${fifo} is a named pipe (FIFO), not a regular file: not read by doctor`);
    expect(r.stdout).toContain(`! scanner.passwordFile: ${fifo} is a named pipe (FIFO), not a regular file: not read by doctor`);
    expect(r.stdout).toContain('! scanner: its credentials and its API not checked');
    expect(r.stdout).toMatch(/0 failure\(s\)/);
    expect(r.status).toBe(0);
  });

  it('a Rapid7 scanner.ca and a PostgreSQL sslrootcert that are FIFOs: doctor ends, naming each key, and skips what would read them', () => {
    const fifo = join(dir, 'ca.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const cfg = join(dir, 'fifo-tls.yaml');
    writeFileSync(cfg, `state: { postgres: "postgresql://onsight@127.0.0.1:1/onsight?sslmode=verify-full&sslrootcert=${fifo}", passwordEnv: PGPW_FIFO_TEST }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
scanner: { type: rapid7, url: "https://r7.example:3780", username: u, passwordEnv: R7PW_FIFO_TEST, ca: ${fifo}, siteId: 1 }
`);
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--config', cfg], { cwd: dir, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL',
      env: { ...process.env, PGPW_FIFO_TEST: 'x'.repeat(20), R7PW_FIFO_TEST: 'x'.repeat(20) } });
    expect(r.error, `doctor did not end within 15 s; it printed:\n${r.stdout}${r.stderr}`).toBeUndefined();
    expect(r.stdout).toContain(`! state.postgres: ${fifo} is a named pipe (FIFO), not a regular file: not read by doctor`);
    expect(r.stdout).toContain('! state: PostgreSQL not checked');
    expect(r.stdout).toContain(`! scanner.ca: ${fifo} is a named pipe (FIFO), not a regular file: not read by doctor`);
    expect(r.stdout).toContain('! scanner: its credentials and its API not checked');
  });
});
