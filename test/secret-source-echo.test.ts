/**
 * A secret typed into a key that says where to read it (`apiKeysFile: "accessKey=…; secretKey=…"`,
 * a token in `tokens[].file`, an inline PEM block in `tls.key: |`, a password in `passwordFile`)
 * is never printed by `config check`, `doctor` or `run`: each still fails, naming the key, and a
 * plausible path is printed as before (review). And a secret file its group or others may read is
 * said (a warning, not a refusal) by config check and doctor. Real files, the real CLI.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';

const CANARY = 'S3CR3TCANARY';
const NOT_SHOWN = '(value not shown: it looks like the secret itself, not a file name)';
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasOpenssl) console.log('SKIP the inline PEM case: `openssl` is needed (Debian package openssl)');

const dir = mkdtempSync(join(tmpdir(), 'onsight-secret-echo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** an operator's shell: no systemd credentials, no config from the environment */
function shellEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ONSIGHT_LOG_JSON: '1' };
  for (const k of ['CREDENTIALS_DIRECTORY', 'ONSIGHT_CONFIG']) delete env[k];
  return { ...env, ...extra };
}

/** `onsight ARGS --config CFG`: its exit status and all it printed */
function cli(args: string[], cfg: string, env = shellEnv()): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--config', cfg], { cwd: dir, encoding: 'utf8', env, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const COMMANDS = [['config', 'check'], ['doctor'], ['run']];

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const head = (name: string) => `state: ${join(dir, `${name}.db`)}
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: r1, cidrs: ["10.0.0.0/8"], appliances: [a1] }]
inputs: [{ type: syslog, listen: "udp://127.0.0.1:0" }]
`;

describe('a secret typed into a source key is never printed', () => {
  it('scanner.apiKeysFile holding the Tenable keys themselves: config check, doctor and run fail naming the key, without the keys', () => {
    const cfg = write('tenable.yaml', `${head('tenable')}scanner: { type: tenable, url: "https://cloud.tenable.invalid", apiKeysFile: "accessKey=${CANARY}A0000001; secretKey=${CANARY}B0000001" }
http: { enabled: false }
`);
    for (const args of COMMANDS) {
      const r = cli(args, cfg);
      expect(r.status, `${args.join(' ')}: ${r.out}`).not.toBe(0);
      expect(r.out, `${args.join(' ')} printed the keys`).not.toContain(CANARY);
      expect(r.out, args.join(' ')).toContain('scanner.apiKeysFile');
      expect(r.out, args.join(' ')).toContain(NOT_SHOWN);
    }
  });

  it.skipIf(!hasOpenssl)('http.tokens[].file holding the token and http.tls.key holding an inline PEM key: neither is printed, both keys named', () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=localhost', '-days', '2'], { stdio: 'ignore' });
    const pem = readFileSync(join(dir, 'k.pem'), 'utf8');
    const body = pem.split('\n').filter((l) => l.length > 40 && !l.startsWith('-----')); // the key's base64 lines
    const cfg = write('listener.yaml', `${head('listener')}scanner: { type: dry-run }
http:
  listen: "127.0.0.1:0"
  tls:
    cert: ${join(dir, 'c.pem')}
    key: |
${pem.trimEnd().split('\n').map((l) => `      ${l}`).join('\n')}
  tokens: [{ name: ops, file: "${CANARY}-token-value" }]
`);
    for (const args of COMMANDS) {
      const r = cli(args, cfg);
      expect(r.status, `${args.join(' ')}: ${r.out}`).not.toBe(0);
      expect(r.out, `${args.join(' ')} printed the token`).not.toContain(CANARY);
      expect(r.out, `${args.join(' ')} printed the private key`).not.toContain('PRIVATE KEY');
      for (const l of body) expect(r.out, `${args.join(' ')} printed the private key`).not.toContain(l);
      expect(r.out, args.join(' ')).toContain(NOT_SHOWN);
      if (args[0] === 'doctor') {
        // doctor's lines: the listener's tls.key, the token by its name under http.tokens
        expect(r.out).toMatch(/^✗ http: tls\.key \(value not shown: .*\): does not exist$/m);
        expect(r.out).toMatch(/^✗ http\.tokens: token "ops": token file \(value not shown: .*\) cannot be read \(ENOENT\)$/m);
      } else {
        expect(r.out, args.join(' ')).toContain('http.tls.key: TLS key (value not shown');
        expect(r.out, args.join(' ')).toContain('http.tokens[0].file: token "ops": token file (value not shown');
      }
    }
  });

  it('a secret holding . or / (a JWT in tokens[].file, a password in passwordFile) and one typed as a variable name are not printed either (second review)', () => {
    const jwt = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIke${CANARY}In0.c2lnbmF0dXJl`;
    const cfg = write('dots.yaml', `${head('dots')}scanner: { type: qualys, url: "https://qualysapi.qualys.invalid", username: u, passwordFile: "Pa55/word.${CANARY}", optionProfile: p }
http:
  listen: "127.0.0.1:0"
  tokens: [{ name: ops, file: "${jwt}" }, { name: prom, env: "Tok3n${CANARY}value42" }]
`);
    for (const args of COMMANDS) {
      const r = cli(args, cfg);
      expect(r.status, `${args.join(' ')}: ${r.out}`).not.toBe(0);
      expect(r.out, `${args.join(' ')} printed a secret`).not.toContain(CANARY);
      expect(r.out, args.join(' ')).toContain(NOT_SHOWN);
    }
  });

  it('a secret typed into credential: (a JWT, openssl rand -hex 32, a mixed-case key) is not printed by config check, doctor or run; a plain name still is (third review)', () => {
    const hex = `${'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'.slice(0, 52)}c0ffee${CANARY.length}00aa`;
    // (a UUID: a Splunk HEC token is one, and this input is a HEC endpoint; fourth review)
    const cases = [`eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx.c2ln${CANARY}`, hex, `Tok3nValue42${CANARY}`, '7a1b2c3d-4e5f-4a6b-8c9d-0e1f2a3b4c5d'];
    for (const [i, secret] of cases.entries()) {
      const cfg = write(`cred${i}.yaml`, `${head(`cred${i}`)}scanner: { type: qualys, url: "https://qualysapi.qualys.invalid", username: u, credential: "${secret}", optionProfile: p }
http:
  listen: "127.0.0.1:0"
  tokens: [{ name: ops, credential: "${secret}" }]
`);
      // (every command for the first; config check, the one that printed them all, for the others: CI time)
      for (const args of i === 0 ? COMMANDS : [COMMANDS[0]]) {
        const r = cli(args, cfg);
        expect(r.out, `${args.join(' ')} printed credential ${i}`).not.toContain(secret);
        expect(r.out, `${args.join(' ')} printed part of credential ${i}`).not.toContain(secret.slice(0, 12));
        expect(r.out, args.join(' ')).toContain(NOT_SHOWN);
      }
    }
    // a name people write is printed, so the operator sees which credential LoadCredential= must give
    // (systemd's own are dotted words: passwd.hashed-password.root; fourth review: two dots were hidden)
    for (const name of ['onsight-qualys.password', 'onsight.qualys.password']) {
      const plain = write('cred-plain.yaml', `${head('cred-plain')}scanner: { type: qualys, url: "https://qualysapi.qualys.invalid", username: u, credential: ${name}, optionProfile: p }
http: { enabled: false }
`);
      expect(cli(['config', 'check'], plain).out).toContain(`LoadCredential=${name}:FILE`);
    }
    // and paths with a commit or an image layer in a folder, or a file named in CamelCase with a year, are printed
    for (const path of [join(dir, 'releases', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b', 'qualys.pass'), join(dir, 'HecToken2024')]) {
      const plain = write('path-plain.yaml', `${head('path-plain')}scanner: { type: qualys, url: "https://qualysapi.qualys.invalid", username: u, passwordFile: ${path}, optionProfile: p }
http: { enabled: false }
`);
      expect(cli(['config', 'check'], plain).out).toContain(`password file ${path} cannot be read (ENOENT)`);
    }
  });

  it('a password in scanner.passwordFile, state.passwordFile and notify.webhook.secret.file is not printed; a plausible path still is', () => {
    const missing = join(dir, 'no-such', 'qualys.pass');
    const base = `policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: r1, cidrs: ["10.0.0.0/8"], appliances: [a1] }]
inputs: [{ type: syslog, listen: "udp://127.0.0.1:0" }]
http: { enabled: false }
`;
    const cfg = write('passwords.yaml', `${base}state: { postgres: "postgres://onsight@127.0.0.1:1/onsight", passwordFile: "pg ${CANARY}pw" }
scanner: { type: qualys, url: "https://qualysapi.qualys.invalid", username: u, passwordFile: "${CANARY}Qpw!", optionProfile: p }
notify: { webhook: { url: "https://hooks.example.invalid/onsight", secret: { file: "${CANARY};hook" } } }
`);
    for (const args of COMMANDS) {
      const r = cli(args, cfg);
      expect(r.status, `${args.join(' ')}: ${r.out}`).not.toBe(0);
      expect(r.out, `${args.join(' ')} printed a password`).not.toContain(CANARY);
      expect(r.out, args.join(' ')).toContain(NOT_SHOWN);
      if (args[0] === 'doctor') expect(r.out).toMatch(/^✗ credentials: scanner\.passwordFile: password file \(value not shown/m);
      else for (const key of ['scanner.passwordFile', 'state.passwordFile', 'notify.webhook.secret.file']) expect(r.out, `${args.join(' ')}: ${key}`).toContain(`${key}: `);
    }
    // a path is printed as it was: the operator sees which file is missing
    const plain = write('plain.yaml', `${head('plain')}scanner: { type: qualys, url: "https://qualysapi.qualys.invalid", username: u, passwordFile: ${missing}, optionProfile: p }
http: { enabled: false }
`);
    const r = cli(['config', 'check'], plain);
    expect(r.status).toBe(2);
    expect(r.out).toContain(`scanner.passwordFile: password file ${missing} cannot be read (ENOENT)`);
  });
});

describe('a secret file its group or others may read', () => {
  it('is said by config check and doctor (naming key and file), not refused; at 0600, or as a systemd credential, nothing is said', () => {
    const token = write('status.token', 'status-token-0123456789abcdef\n');
    const hook = write('hook.secret', 'hook-secret-0123456789abcdef\n');
    const creds = join(dir, 'creds');
    mkdirSync(creds, { recursive: true });
    writeFileSync(join(creds, 'collector'), 'collector-token-0123456789abcdef\n');
    chmodSync(token, 0o644);
    chmodSync(hook, 0o640);
    chmodSync(join(creds, 'collector'), 0o644); // (a credential: systemd's own copy is the service's; not judged)
    const text = `${head('modes')}  - { type: http, listen: "127.0.0.1:0", tokens: [{ name: collector, credential: collector }] }
scanner: { type: dry-run }
http: { listen: "127.0.0.1:0", tokens: [{ name: ops, file: ${token} }] }
notify: { webhook: { url: "https://hooks.example.invalid/onsight", secret: { file: ${hook} } } }
`.replace('inputs: [{ type: syslog, listen: "udp://127.0.0.1:0" }]\n', 'inputs:\n  - { type: syslog, listen: "udp://127.0.0.1:0" }\n');
    const cfg = write('modes.yaml', text);
    const lineOf = (needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
    const env = shellEnv({ CREDENTIALS_DIRECTORY: creds });
    const check = cli(['config', 'check'], cfg, env);
    expect(check.status, check.out).toBe(0);
    expect(check.out).toContain(`warning: ${cfg}:${lineOf('status.token')}: http.tokens[0].file: ${token} may be read by its group and others (mode 0644)`);
    expect(check.out).toContain(`warning: ${cfg}:${lineOf('hook.secret')}: notify.webhook.secret.file: ${hook} may be read by its group (mode 0640)`);
    expect(check.out).not.toMatch(/inputs\[1\].*may be read/);
    const doctor = cli(['doctor'], cfg, env);
    expect(doctor.status, doctor.out).toBe(0);
    expect(doctor.out).toMatch(new RegExp(`^! http\\.tokens\\[0\\]\\.file: ${token} may be read by its group and others \\(mode 0644\\)`, 'm'));
    expect(doctor.out).toMatch(new RegExp(`^! notify\\.webhook\\.secret\\.file: ${hook} may be read by its group \\(mode 0640\\)`, 'm'));
    expect(doctor.out).not.toMatch(/inputs\[1\].*may be read/);
    for (const s of ['status-token-', 'hook-secret-', 'collector-token-']) expect(check.out + doctor.out).not.toContain(s);

    chmodSync(token, 0o600);
    chmodSync(hook, 0o400);
    const closed = cli(['config', 'check'], cfg, env);
    expect(closed.status).toBe(0);
    expect(closed.out).not.toContain('may be read by');
    expect(cli(['doctor'], cfg, env).out).not.toContain('may be read by');
  });
});
