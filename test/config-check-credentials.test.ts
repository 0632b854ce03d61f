/**
 * `config check` (and `run`, which calls the same check before it starts anything) reads every
 * secret the config names as the daemon will: the scanner's password or API keys, the PostgreSQL
 * password, the tokens of HTTP inputs and of the status listener, the webhook secret. One that
 * cannot be read is a config error naming its key and line (exit 2), all of them at once; the
 * secret itself is never printed. Real files, the real CLI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';
import { freePort, startDaemon } from './helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-cc-cred-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** the environment of an operator's shell: none of the variables these configs name, and no systemd credentials */
function shellEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['CREDENTIALS_DIRECTORY', 'R7_PASSWORD', 'PG_PASSWORD', 'PROM_TOKEN', 'ONSIGHT_CONFIG']) delete env[k];
  return { ...env, ...extra };
}

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function check(config: string, env = shellEnv()) {
  return spawnSync(process.execPath, [CLI, 'config', 'check', '--config', config], { encoding: 'utf8', env, timeout: 20_000 });
}

/** the line (1-based) of the first line of `text` that contains `needle` */
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

const POLICY = `policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
`;

describe('config check reads every secret the config names', () => {
  it("the tester's config: a missing Qualys password file and a missing HTTP input token file are both named, with key and line; config check exits 2, run 1 (systemd tries again: the files may come) before it listens", async () => {
    const [udp, http] = [await freePort(), await freePort()];
    const text = `state: ${join(dir, 'tester.db')}
inputs:
  - { type: syslog, listen: "udp://127.0.0.1:${udp}" }
  - { type: syslog, listen: "tcp://127.0.0.1:${udp}" }
  - type: http
    listen: "127.0.0.1:${http}"
    tokens:
      - name: hec
        file: ${join(dir, 'no-such.token')}
${POLICY}scanner:
  type: qualys
  url: "https://qualysapi.qualys.eu"
  username: onsight_api
  passwordFile: ${join(dir, 'nope.pass')}
  optionProfile: "Initial Options"
http: { enabled: false }
`;
    const cfg = write('tester.yaml', text);
    const expected = [
      `${cfg}:${lineOf(text, 'passwordFile:')}: scanner.passwordFile: password file ${join(dir, 'nope.pass')} cannot be read (ENOENT)`,
      `${cfg}:${lineOf(text, 'no-such.token')}: inputs[2].tokens[0].file: token "hec": token file ${join(dir, 'no-such.token')} cannot be read (ENOENT)`,
    ];
    const r = check(cfg);
    expect(r.stdout).not.toMatch(/ok/);
    for (const e of expected) expect(r.stderr).toContain(e);
    expect(r.status).toBe(2);

    // run: the same check, before any listener opens (the tester's run opened the syslog ports, then died on the token, exit 1)
    const run = spawn(process.execPath, [CLI, 'run', '--config', cfg], { cwd: dir, env: shellEnv({ ONSIGHT_LOG_JSON: '1' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    run.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    run.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => run.kill('SIGKILL'), 20_000);
      run.once('exit', (c) => { clearTimeout(t); resolve(c); });
    });
    for (const e of expected) expect(err).toContain(e);
    expect(out).not.toMatch(/listening|onsight running/);
    // (exit 1, not 2: files not written yet may be in a moment, and systemd's Restart=on-failure
    // tries again, where RestartPreventExitStatus=2 would leave the unit dead: review)
    expect(err).toContain('(exit 1: a restart tries again)');
    expect(code).toBe(1);
  });

  it('each other source: Rapid7 password variable, PostgreSQL password, status-page token, webhook secret; Tenable keys that do not parse; never the secret itself', () => {
    const text = `state: { postgres: "postgres://onsight@db.invalid/onsight", passwordEnv: PG_PASSWORD }
${POLICY}scanner: { type: rapid7, url: "https://r7.invalid:3780", username: u, passwordEnv: R7_PASSWORD }
http: { listen: "127.0.0.1:9321", tokens: [{ name: prom, env: PROM_TOKEN }] }
notify:
  webhook:
    url: "https://hooks.invalid/onsight"
    secret: { file: ${join(dir, 'webhook.secret')} }
`;
    const cfg = write('many.yaml', text);
    const missingHook = check(cfg);
    expect(missingHook.stderr).toContain(`${cfg}:${lineOf(text, 'webhook.secret')}: notify.webhook.secret.file: webhook secret: secret file ${join(dir, 'webhook.secret')} cannot be read (ENOENT)`);
    expect(missingHook.status).toBe(2);
    chmodSync(write('webhook.secret', 'hook-Secret-4714\n'), 0o600);
    const r = check(cfg);
    expect(r.status).toBe(0);
    // variables the unit sets are not in an operator's shell: said, not checked (review: deploy gates failed on them)
    expect(r.stderr).toContain(`warning: ${cfg}:${lineOf(text, 'R7_PASSWORD')}: scanner.passwordEnv: environment variable R7_PASSWORD not checked: it is not set here`);
    expect(r.stderr).toContain(`warning: ${cfg}:${lineOf(text, 'PG_PASSWORD')}: state.passwordEnv: environment variable PG_PASSWORD not checked: it is not set here`);
    expect(r.stderr).toContain(`warning: ${cfg}:${lineOf(text, 'PROM_TOKEN')}: http.tokens[0].env: environment variable PROM_TOKEN not checked: it is not set here`);
    // run reads them as the daemon does: refused there, each named
    const run = spawnSync(process.execPath, [CLI, 'run', '--config', cfg], { cwd: dir, encoding: 'utf8', env: shellEnv(), timeout: 20_000 });
    expect(run.stderr).toContain(`${cfg}:${lineOf(text, 'R7_PASSWORD')}: scanner.passwordEnv: environment variable R7_PASSWORD is not set or empty`);
    expect(run.stderr).toContain(`${cfg}:${lineOf(text, 'PG_PASSWORD')}: state.passwordEnv: PostgreSQL password: environment variable PG_PASSWORD is not set or empty`);
    expect(run.stderr).toContain(`${cfg}:${lineOf(text, 'PROM_TOKEN')}: http.tokens[0].env: token "prom": environment variable PROM_TOKEN is not set or empty`);
    expect(run.status).toBe(1);

    // all there (the variables in config check's own environment): ok, and no secret anywhere in what it says
    const secrets = { R7_PASSWORD: 'r7-Secret-4711', PG_PASSWORD: 'pg-Secret-4712', PROM_TOKEN: 'prom-Secret-4713-abcdefgh' };
    const ok = check(cfg, shellEnv(secrets));
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/: ok \(/);
    expect(ok.status).toBe(0);

    // Tenable: keys that are read but do not parse (run's scanner refuses them); the text is not echoed
    const keys = write('tenable.keys', 'accessKey=Sekrit-Tenable-Value; secretKey=short\n');
    const ten = `${POLICY}scanner: { type: tenable, url: "https://cloud.invalid", apiKeysFile: ${keys} }\n`;
    const tcfg = write('tenable.yaml', ten);
    const t = check(tcfg);
    expect(t.stderr).toContain(`${tcfg}:${lineOf(ten, 'apiKeysFile')}: scanner.apiKeysFile: Tenable API keys must read`);
    expect(t.status).toBe(2);
    for (const s of [...Object.values(secrets), 'hook-Secret-4714', 'Sekrit-Tenable-Value']) expect(r.stdout + r.stderr + ok.stdout + ok.stderr + t.stdout + t.stderr).not.toContain(s);
    writeFileSync(keys, `accessKey=${'a1'.repeat(32)}; secretKey=${'b2'.repeat(32)}\n`);
    expect(check(tcfg).status).toBe(0);
  });

  it('a systemd credential: outside the unit config check warns (not checked) and exits 0, run refuses it (exit 2); with $CREDENTIALS_DIRECTORY it is read', () => {
    const text = `${POLICY}scanner: { type: qualys, url: "https://qualysapi.qualys.eu", username: u, credential: qualys, optionProfile: p }\nstate: ${join(dir, 'cred.db')}\nhttp: { enabled: false }\n`;
    const cfg = write('cred.yaml', text);
    const line = lineOf(text, 'credential: qualys');
    const r = check(cfg);
    expect(r.stderr).toMatch(new RegExp(`^warning: ${cfg}:${line}: scanner\\.credential: systemd credential qualys not checked: \\$CREDENTIALS_DIRECTORY is not set`, 'm'));
    expect(r.status).toBe(0);

    const run = spawnSync(process.execPath, [CLI, 'run', '--config', cfg], { cwd: dir, encoding: 'utf8', env: shellEnv({ ONSIGHT_LOG_JSON: '1' }), timeout: 20_000 });
    expect(run.stderr).toContain(`${cfg}:${line}: scanner.credential: credential qualys: CREDENTIALS_DIRECTORY is not set`);
    expect(run.status).toBe(2);

    const creds = join(dir, 'creds');
    mkdirSync(creds, { recursive: true });
    const missing = check(cfg, shellEnv({ CREDENTIALS_DIRECTORY: creds }));
    expect(missing.stderr).toContain(`${cfg}:${line}: scanner.credential: credential qualys cannot be read (ENOENT)`);
    expect(missing.status).toBe(2);
    writeFileSync(join(creds, 'qualys'), 'cred-Secret-4715\n');
    const there = check(cfg, shellEnv({ CREDENTIALS_DIRECTORY: creds }));
    expect(there.stderr).toBe('');
    expect(there.status).toBe(0);
    expect(there.stdout + there.stderr).not.toContain('cred-Secret-4715');
  });

  it('a value in passwordEnv that is no variable name (the password typed in the wrong key) is never echoed (review)', () => {
    const text = `${POLICY}scanner: { type: qualys, url: "https://qualysapi.qualys.eu", username: u, passwordEnv: "Hunter2-S3cret!", optionProfile: p }\nstate: ${join(dir, 'env.db')}\nhttp: { enabled: false }\n`;
    const cfg = write('envname.yaml', text);
    for (const cmd of [['config', 'check'], ['run'], ['doctor']]) {
      const r = spawnSync(process.execPath, [CLI, ...cmd, '--config', cfg], { cwd: dir, encoding: 'utf8', env: shellEnv(), timeout: 20_000 });
      expect(r.stdout + r.stderr, cmd.join(' ')).not.toContain('Hunter2');
      expect(r.status, cmd.join(' ')).not.toBe(0);
    }
    expect(check(cfg).stderr).toContain('scanner.passwordEnv: the environment variable named is no variable name');
  });

  it('a password or token file that is a FIFO is not read (a read would wait for a writer): said as a warning, at once', () => {
    const fifo = join(dir, 'pass.fifo');
    const mk = spawnSync('mkfifo', [fifo]);
    expect(mk.status).toBe(0);
    const text = `inputs:
  - type: http
    listen: "127.0.0.1:18088"
    tokens: [{ name: hec, file: ${fifo} }]
${POLICY}scanner: { type: qualys, url: "https://qualysapi.qualys.eu", username: u, passwordFile: ${fifo}, optionProfile: p }
`;
    const cfg = write('fifo.yaml', text);
    const started = Date.now();
    const r = check(cfg);
    expect(r.error).toBeUndefined(); // (not killed by the timeout)
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stderr).toContain(`warning: ${cfg}:${lineOf(text, 'passwordFile')}: scanner.passwordFile: ${fifo} is a named pipe (FIFO), not a regular file: not read by this check`);
    expect(r.stderr).toContain(`warning: ${cfg}:${lineOf(text, 'tokens:')}: inputs[0].tokens[0].file: ${fifo} is a named pipe (FIFO)`);
    expect(r.status).toBe(0);
    unlinkSync(fifo);
  });

  it('SIGHUP: a secret of a section left as it runs that can no longer be read is a warning and the rest applies; in a changed section it refuses the reload', async () => {
    const secret = join(dir, 'hup-webhook.secret');
    writeFileSync(secret, 'hup-Secret-4716\n');
    const d = await startDaemon(`
state: STATE
inputs: []
policy: { scope: ["10.0.0.0/8"], exclude: ["10.20.5.0/24"] }
regions: [{ name: emea, cidrs: ["10.0.0.0/8"], appliances: [emea-sa-1] }]
scanner: { type: dry-run }
http: { enabled: false }
notify: { webhook: { url: "http://127.0.0.1:9/onsight", secret: { file: ${secret} } } }
`, shellEnv());
    try {
      unlinkSync(secret);
      const cfg = join(d.dir, 'onsight.yaml');
      const text = readFileSync(cfg, 'utf8');
      const secretLine = lineOf(text, 'secret: { file:');
      writeFileSync(cfg, text.replace('exclude: ["10.20.5.0/24"]', 'exclude: ["10.20.6.0/24"]'));
      let seen = d.logs.length;
      d.child.kill('SIGHUP');
      await d.waitFor((e) => d.logs.indexOf(e) >= seen && e.msg.includes('reloaded: policy, regions'));
      const warned = d.logs.slice(seen).find((e) => e.msg.includes('notify.webhook.secret.file'));
      expect(warned?.msg).toContain(`SIGHUP: config: ${cfg}:${secretLine}: notify.webhook.secret.file: webhook secret: secret file ${secret} cannot be read (ENOENT) (as the daemon runs it`);

      // the notify section changed (a new events list): its secret would be read at the restart it needs, and cannot be
      seen = d.logs.length;
      writeFileSync(cfg, text.replace('exclude: ["10.20.5.0/24"]', 'exclude: ["10.20.7.0/24"]').replace('notify: { webhook: {', 'notify: { webhook: { events: [scan-failed],'));
      d.child.kill('SIGHUP');
      const refused = await d.waitFor((e) => d.logs.indexOf(e) >= seen && e.msg.includes('does not validate (the running config stays)'));
      expect(refused.msg).toContain(`notify.webhook.secret.file: webhook secret: secret file ${secret} cannot be read (ENOENT)`);
      expect(d.logs.slice(seen).some((e) => e.msg.includes('reloaded: policy, regions'))).toBe(false);
      expect(JSON.stringify(d.logs) + d.stderr).not.toContain('hup-Secret-4716');
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});
