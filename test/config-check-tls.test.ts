/**
 * `config check` (and `run`, which calls the same check first) loads every TLS file the config names
 * as the daemon will: read whole, then a secure context built from it. A certificate or key that is
 * missing, garbage, or not a pair is a config error naming its key and line (exit 2), before
 * anything listens; no byte of a key is printed. Real PEM files made with openssl, the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasOpenssl) console.log('SKIP config check TLS cases: `openssl` is needed to make the certificates (Debian package openssl)');

const dir = mkdtempSync(join(tmpdir(), 'onsight-cc-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** a self-signed RSA certificate and its key, as files in `dir` */
function pair(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert, key };
}

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function cli(cmd: 'check' | 'run', config: string) {
  const args = cmd === 'check' ? ['config', 'check', '--config', config] : ['run', '--config', config];
  return spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
}

/** the line (1-based) of the first line of `text` that contains `needle` */
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** the base64 lines of a PEM key: none may appear in any output */
const keyLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));

const POLICY = `policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
`;

/** a syslog TLS input and the status listener over HTTPS (client certificates against `ca`) */
function config(name: string, tls: { cert: string; key: string }, http: { cert: string; key: string; ca: string }): { file: string; text: string } {
  const text = `state: ${join(dir, `${name}.db`)}
inputs:
  - type: syslog
    listen: "tls://127.0.0.1:0"
    tls:
      cert: ${tls.cert}
      key: ${tls.key}
${POLICY}http:
  listen: "127.0.0.1:0"
  tls:
    cert: ${http.cert}
    key: ${http.key}
    ca: ${http.ca}
`;
  return { file: write(`${name}.yaml`, text), text };
}

describe.skipIf(!hasOpenssl)('config check loads every TLS certificate and key the config names', () => {
  const a = hasOpenssl ? pair('a') : { cert: '', key: '' };
  const b = hasOpenssl ? pair('b') : { cert: '', key: '' };

  it('a good pair (and a CA bundle) passes', () => {
    const { file } = config('good', a, { ...b, ca: a.cert });
    const r = cli('check', file);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`${file}: ok (1 inputs`);
    expect(r.status).toBe(0);
  });

  it('a missing certificate file is named by its key and line; run exits 1 (it may come: systemd tries again), before it listens', () => {
    const missing = join(dir, 'no-such.crt');
    const { file, text } = config('missing', { cert: missing, key: a.key }, { ...b, ca: a.cert });
    const r = cli('check', file);
    expect(r.stderr).toContain(`${file}:${lineOf(text, 'no-such.crt')}: inputs[0].tls.cert: TLS certificate ${missing} cannot be read (ENOENT)`);
    expect(r.stdout).not.toContain('ok');
    expect(r.status).toBe(2);
    const run = cli('run', file);
    expect(run.error).toBeUndefined(); // (not killed: it did not start)
    expect(run.stderr).toContain(`inputs[0].tls.cert: TLS certificate ${missing} cannot be read (ENOENT) (exit 1: a restart tries again)`);
    expect(run.status).toBe(1);
  });

  it('a garbage key is named by its key and line', () => {
    const garbage = write('garbage.key', 'this is not a key\n');
    const { file, text } = config('garbage', a, { cert: b.cert, key: garbage, ca: a.cert });
    const r = cli('check', file);
    expect(r.stderr).toContain(`${file}:${lineOf(text, 'garbage.key')}: http.tls.key: TLS key ${garbage} holds no usable PEM private key (`);
    expect(r.status).toBe(2);
  });

  it("a key that is not the certificate's is named by its key and line (config check and run alike, exit 2); no byte of a key is printed", () => {
    const { file, text } = config('mismatch', { cert: a.cert, key: b.key }, { cert: b.cert, key: a.key, ca: a.cert });
    const inputKey = `${file}:${lineOf(text, b.key)}: inputs[0].tls.key: TLS key ${b.key} is not the private key of the certificate ${a.cert} (inputs[0].tls.cert)`;
    const httpKey = `${file}:${lineOf(text, `key: ${a.key}`)}: http.tls.key: TLS key ${a.key} is not the private key of the certificate ${b.cert} (http.tls.cert)`;
    for (const r of [cli('check', file), cli('run', file)]) {
      expect(r.error).toBeUndefined();
      expect(r.stderr).toContain(inputKey);
      expect(r.stderr).toContain(httpKey);
      expect(r.status).toBe(2);
      for (const l of [...keyLines(a.key), ...keyLines(b.key)]) expect(r.stdout + r.stderr).not.toContain(l);
    }
  });

  it('an EC key for an RSA certificate (node builds that context, then every handshake fails), and a CA bundle with no certificate', () => {
    const ec = join(dir, 'ec.key');
    expect(spawnSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', ec]).status).toBe(0);
    const noCa = write('no-ca.pem', 'not a certificate\n');
    const { file, text } = config('ec', { cert: a.cert, key: ec }, { ...b, ca: noCa });
    const r = cli('check', file);
    expect(r.stderr).toContain(`${file}:${lineOf(text, 'ec.key')}: inputs[0].tls.key: TLS key ${ec} is not the private key of the certificate ${a.cert}`);
    expect(r.stderr).toContain(`${file}:${lineOf(text, 'no-ca.pem')}: http.tls.ca: TLS CA bundle ${noCa} holds no PEM certificate`);
    expect(r.status).toBe(2);
    for (const l of keyLines(ec)) expect(r.stderr).not.toContain(l);
  });
});

describe.skipIf(!hasOpenssl)('config check loads the TLS files of the clients too', () => {
  it("the scanner's CA bundle and PostgreSQL's sslkey and sslrootcert (URL parameters node-postgres reads at start)", () => {
    const a = pair('pg-a');
    const b = pair('pg-b');
    const garbage = write('garbage-ca.pem', 'not a certificate\n');
    const text = `state:
  postgres: "postgres://onsight@db.example:5432/onsight?sslmode=verify-full&sslrootcert=${garbage}&sslcert=${a.cert}&sslkey=${b.key}"
${POLICY}scanner: { type: rapid7, url: "https://r7.example:3780", username: u, passwordEnv: R7_TLS_TEST_PW, ca: ${garbage}, siteId: 1 }
http: { enabled: false }
`;
    const file = write('clients.yaml', text);
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { cwd: dir, encoding: 'utf8', timeout: 20_000, env: { ...process.env, R7_TLS_TEST_PW: 'x'.repeat(20) } });
    expect(r.stderr).toContain(`${file}:${lineOf(text, 'ca:')}: scanner.ca: scanner CA bundle ${garbage} holds no PEM certificate`);
    expect(r.stderr).toContain(`${file}:2: state.postgres: PostgreSQL sslkey ${b.key} is not the private key of the certificate ${a.cert} (PostgreSQL sslcert)`);
    expect(r.stderr).toContain(`${file}:2: state.postgres: PostgreSQL sslrootcert ${garbage} holds no PEM certificate`);
    expect(r.status).toBe(2);
    for (const l of keyLines(b.key)) expect(r.stderr).not.toContain(l);
  });
});

describe.skipIf(!hasOpenssl)('config check takes what the daemon takes (review)', () => {
  const check = (name: string, text: string) => {
    const file = write(`${name}.yaml`, text);
    return { file, r: spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { cwd: dir, encoding: 'utf8', timeout: 20_000, env: { ...process.env, R7_TLS_TEST_PW: 'x'.repeat(20), PG_TLS_TEST_PW: 'x'.repeat(20) } }) };
  };
  const pg = (query: string) => `state: { postgres: "postgresql://onsight@db.example:5432/onsight?${query}", passwordEnv: PG_TLS_TEST_PW }\n${POLICY}http: { enabled: false }\n`;

  it('PostgreSQL URL parameters as node-postgres reads them: the last of a repeated one, no #fragment, and files sslmode=disable reads but uses not', () => {
    const a = pair('pgr-a');
    const garbage = write('pgr-garbage.pem', 'not a certificate\n');
    // (node-postgres: the last sslrootcert wins; a URL's #fragment is no part of a value)
    expect(check('pg-repeat', pg(`sslmode=verify-full&sslrootcert=${garbage}&sslrootcert=${a.cert}`)).r.status).toBe(0);
    expect(check('pg-fragment', pg(`sslmode=verify-full&sslrootcert=${a.cert}#primary`)).r.status).toBe(0);
    // (sslmode=disable: node-postgres reads the file, then goes without TLS: garbage is fine, a missing file is not)
    expect(check('pg-disable', pg(`sslmode=disable&sslrootcert=${garbage}`)).r.status).toBe(0);
    const missing = check('pg-disable-missing', pg(`sslmode=disable&sslrootcert=${join(dir, 'none.pem')}`));
    expect(missing.r.stderr).toContain(`state.postgres: PostgreSQL sslrootcert ${join(dir, 'none.pem')} cannot be read (ENOENT)`);
    expect(missing.r.status).toBe(2);
  });

  it('CA bundles node verifies with: "X509 CERTIFICATE" blocks; a broken block after a good one is said (node trusts those before it), a broken first one refused', () => {
    const a = pair('ca-a');
    const pem = readFileSync(a.cert, 'utf8');
    const x509 = write('x509.pem', pem.replace(/(BEGIN|END) CERTIFICATE/g, '$1 X509 CERTIFICATE'));
    const mixed = write('mixed.pem', `${pem}-----BEGIN CERTIFICATE-----\nMIIBbroken\n-----END CERTIFICATE-----\n`);
    const scanner = (ca: string) => `state: ${join(dir, 'ca.db')}\n${POLICY}scanner: { type: rapid7, url: "https://r7.example:3780", username: u, passwordEnv: R7_TLS_TEST_PW, ca: ${ca}, siteId: 1 }\nhttp: { enabled: false }\n`;
    const one = check('ca-x509', scanner(x509));
    expect(one.r.stderr).toBe('');
    expect(one.r.status).toBe(0);
    const two = check('ca-mixed', scanner(mixed));
    expect(two.r.stderr).toMatch(/^warning: .*scanner\.ca: scanner CA bundle .*mixed\.pem: a block after certificate #1 cannot be read \(.*\): node trusts the 1 before it and none from it on \(1 of 2 not\)$/m);
    expect(two.r.status).toBe(0);
    // (node stops at the first block it cannot parse: a broken first block leaves it trusting nothing)
    const brokenFirst = write('broken-first.pem', `-----BEGIN CERTIFICATE-----\nMIIBbroken\n-----END CERTIFICATE-----\n${pem}`);
    const three = check('ca-broken-first', scanner(brokenFirst));
    expect(three.r.stderr).toMatch(/scanner\.ca: scanner CA bundle .*broken-first\.pem: a block before any certificate cannot be read \(.*\): node trusts none of the bundle/);
    expect(three.r.status).toBe(2);
    // (node stops at a block of any kind it cannot read, a CRL too; and at a BEGIN without its END)
    const crl = write('broken-crl.pem', `${pem}-----BEGIN X509 CRL-----\nnot*base64\n-----END X509 CRL-----\n${pem}`);
    const four = check('ca-broken-crl', scanner(crl));
    expect(four.r.stderr).toMatch(/^warning: .*broken-crl\.pem: a block after certificate #1 cannot be read \(its X509 CRL block is no base64\): node trusts the 1 before it and none from it on \(1 of 2 not\)$/m);
    const noEnd = write('no-end.pem', `${pem}${pem.replace(/-----END CERTIFICATE-----\s*$/, '')}${pem}`);
    const five = check('ca-no-end', scanner(noEnd));
    expect(five.r.stderr).toMatch(/^warning: .*no-end\.pem: 1 BEGIN line\(s\) without their END: node may trust none of the certificates from there on$/m);
  });
});
