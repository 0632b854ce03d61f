/**
 * `config check` with a PostgreSQL state whose URL names TLS files (sslrootcert, sslcert, sslkey).
 * The schema parsed the URL with pg-connection-string's parse, which reads those files
 * synchronously: a missing sslrootcert was told as "expected a postgres:// or postgresql:// URL"
 * (the URL is fine), and a FIFO there hung the check for ever. The schema now parses the URL
 * without its files, and the check's TLS file step names the file with its key and line. Real
 * files, a real FIFO, the real CLI (dist: build with `npx tsc -p .`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;
if (!hasMkfifo) console.log('SKIP config check FIFO sslrootcert case: `mkfifo` is needed (Debian package coreutils)');

const dir = mkdtempSync(join(tmpdir(), 'onsight-cc-pg-ssl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a config whose state is PostgreSQL with `params` in its URL; the URL is on line 2 */
function config(name: string, params: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `state:
  postgres: "postgres://onsight@db.example:5432/onsight?sslmode=verify-full&${params}"
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
http: { enabled: false }
`);
  return file;
}

const check = (file: string) => spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { cwd: dir, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });

describe('config check and the TLS files of a PostgreSQL URL', () => {
  it('a missing sslrootcert is named as a file that cannot be read, with its key and line, not as a URL that is no postgres:// URL', () => {
    const missing = join(dir, 'no-such-ca.pem');
    const file = config('missing', `sslrootcert=${missing}`);
    const r = check(file);
    expect(r.error).toBeUndefined();
    expect(r.stderr).toContain(`${file}:2: state.postgres: PostgreSQL sslrootcert ${missing} cannot be read (ENOENT)`);
    expect(r.stderr).not.toContain('expected a postgres://');
    expect(r.status).toBe(2);
  });

  it('a missing sslcert and sslkey (percent-encoded names too) are each named', () => {
    const cert = join(dir, 'no-such.crt');
    const key = join(dir, 'no-such.key');
    const file = config('missing-pair', `ssl%63ert=${cert}&sslkey=${key}`);
    const r = check(file);
    expect(r.stderr).not.toContain('expected a postgres://');
    expect(r.stderr).toContain(`state.postgres: PostgreSQL sslcert ${cert} cannot be read (ENOENT)`);
    expect(r.stderr).toContain(`state.postgres: PostgreSQL sslkey ${key} cannot be read (ENOENT)`);
    expect(r.status).toBe(2);
  });

  it.skipIf(!hasMkfifo)('a FIFO sslrootcert does not hang the check: said as a FIFO not read, and the check ends', () => {
    const fifo = join(dir, 'ca.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const file = config('fifo', `sslrootcert=${fifo}`);
    const started = Date.now();
    const r = check(file);
    expect(r.error, `config check did not end within 15 s; it printed:\n${r.stdout}${r.stderr}`).toBeUndefined(); // (not killed by the timeout)
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stderr).toContain(`${file}:2: state.postgres: PostgreSQL sslrootcert ${fifo} is a named pipe (FIFO), not a regular file: not read by this check`);
    expect(r.stderr).not.toContain('expected a postgres://');
    expect(r.status).toBe(0);
  });
});
