/**
 * `onsight doctor` on what `onsight run` reads at start besides the scanner's credentials: lease
 * databases (`type: lease`; their format names a database, not a parser), the tokens of HTTP inputs
 * and of the status listener, and the webhook's shared secret — each read by the loader run uses,
 * a failure naming the config field. Ports below 1024 are flagged for HTTP inputs too, by doctor
 * and by systemd/install.sh (the CAP_NET_BIND_SERVICE drop-in).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { runDoctor } from '../src/cli/doctor.js';
import { silentLogger } from '../src/log.js';
import { CLI, REPO } from './helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'onsight-doctor-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class Out {
  text = '';
  write(s: string) {
    this.text += s;
    return true;
  }
}

const tail = `policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: emea, cidrs: ["10.20.0.0/16"], appliances: [emea-sa-1] }]
scanner: { type: dry-run }
`;

async function doctor(name: string, body: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; text: string }> {
  const out = new Out();
  const text = `state: ${join(dir, `${name}.db`)}\n${body}${tail}`;
  const code = await runDoctor(parseConfigText(text, `${name}.yaml`), silentLogger(), out, { env });
  return { code, text: out.text };
}

describe('doctor: lease databases', () => {
  it('a kea lease input is not an unknown parser format; its file is checked', async () => {
    const kea = join(dir, 'kea-leases4.csv');
    writeFileSync(kea, 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n');
    const r = await doctor('lease', `inputs:
  - { type: lease, path: ${kea}, format: kea }
  - { type: lease, path: ${join(dir, 'dnsmasq.leases')}, format: dnsmasq }
http: { enabled: false }
`);
    expect(r.text).not.toMatch(/unknown format/);
    expect(r.text).toMatch(/^✓ parsers: /m);
    expect(r.text).toMatch(new RegExp(`^✓ input lease:${kea}: kea lease database, readable, \\d+ bytes$`, 'm'));
    expect(r.text).toMatch(new RegExp(`^! input lease:${join(dir, 'dnsmasq.leases')}: dnsmasq lease database does not exist yet`, 'm'));
    expect(r.code).toBe(0);
  });

  it('a lease path that is a directory fails, naming the field', async () => {
    // (root reads any file: a directory is what cannot be read as one whoever runs the test)
    const r = await doctor('lease-dir', `inputs:\n  - { type: lease, path: ${dir}, format: isc-dhcpd }\nhttp: { enabled: false }\n`);
    expect(r.text).toMatch(new RegExp(`^✗ input lease:${dir}: inputs\\[0\\]\\.path: ${dir} is a directory, not a regular file$`, 'm'));
    expect(r.code).toBe(1);
  });

  it('a lease path with glob characters is a name: a FIFO so named fails (it was taken as a glob and passed)', async () => {
    const fifo = join(dir, 'fifo[1].leases');
    execFileSync('mkfifo', [fifo]);
    const r = await doctor('lease-fifo', `inputs:\n  - { type: lease, path: "${fifo}", format: dnsmasq }\nhttp: { enabled: false }\n`);
    expect(r.text).toContain(`✗ input lease:${fifo}: inputs[0].path: ${fifo} is a FIFO, not a regular file`);
    expect(r.code).toBe(1);
  });
});

describe('doctor: tokens and the webhook secret, read as run reads them', () => {
  it('missing sources fail, each naming its field; nothing secret printed', async () => {
    const r = await doctor('secrets-missing', `inputs:
  - { type: http, listen: "127.0.0.1:8088", tokens: [{ name: collector, file: ${join(dir, 'no-such-token')} }] }
http: { listen: "127.0.0.1:9321", tokens: [{ name: prom, env: DOCTOR_NO_SUCH_TOKEN }] }
notify: { webhook: { url: "https://hooks.example.org/onsight", secret: { file: ${join(dir, 'no-such-secret')} } } }
`);
    expect(r.text).toMatch(new RegExp(`^✗ inputs\\[0\\]\\.tokens: token "collector": token file ${join(dir, 'no-such-token')} cannot be read \\(ENOENT\\)$`, 'm'));
    expect(r.text).toMatch(/^✗ http\.tokens: token "prom": environment variable DOCTOR_NO_SUCH_TOKEN is not set or empty$/m);
    expect(r.text).toMatch(new RegExp(`^✗ notify\\.webhook\\.secret: secret file ${join(dir, 'no-such-secret')} cannot be read \\(ENOENT\\)$`, 'm'));
    expect(r.text).toMatch(/3 failure\(s\)\n$/);
    expect(r.code).toBe(1);
  });

  it('readable sources pass, the values never printed; a token shorter than 16 characters is a warning', async () => {
    writeFileSync(join(dir, 'token'), 'tok-value-71f2-5c8e0a\n');
    writeFileSync(join(dir, 'secret'), 'hook-value-93ab\n');
    const r = await doctor('secrets-ok', `inputs:
  - { type: http, listen: "127.0.0.1:8088", tokens: [{ name: collector, file: ${join(dir, 'token')} }] }
http: { listen: "127.0.0.1:9321", tokens: [{ name: prom, env: DOCTOR_TOKEN }] }
notify: { webhook: { url: "https://hooks.example.org/onsight", secret: { file: ${join(dir, 'secret')} } } }
`, { DOCTOR_TOKEN: 'env-value-22c4' });
    expect(r.text).toMatch(/^✓ inputs\[0\]\.tokens: collector read \(not shown\)$/m);
    // (14 characters: guessable; said, not refused)
    expect(r.text).toMatch(/^! http\.tokens: token "prom" is shorter than 16 characters and could be guessed: use a long random one \(openssl rand -hex 32\)$/m);
    expect(r.text).toMatch(/^✓ notify\.webhook\.secret: read \(not shown\); events go to https:\/\/hooks\.example\.org$/m);
    for (const v of ['tok-value-71f2', 'hook-value-93ab', 'env-value-22c4']) expect(r.text).not.toContain(v);
    expect(r.code).toBe(0);
  });

  it('what doctor fails on, run refuses too (the CLI, same config)', () => {
    const cfg = join(dir, 'run-token.yaml');
    writeFileSync(cfg, `state: ${join(dir, 'run-token.db')}
inputs: [{ type: http, listen: "127.0.0.1:0", tokens: [{ name: collector, file: ${join(dir, 'absent-token')} }] }]
http: { enabled: false }
${tail}`);
    const d = spawnSync(process.execPath, [CLI, 'doctor', '--config', cfg], { encoding: 'utf8', timeout: 60_000 });
    expect(d.stdout).toMatch(/^✗ inputs\[0\]\.tokens: token "collector": token file \S+absent-token cannot be read \(ENOENT\)$/m);
    expect(d.status).toBe(1);
    const run = spawnSync(process.execPath, [CLI, 'run', '--config', cfg], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ONSIGHT_LOG_JSON: '1' } });
    expect(run.stderr).toMatch(/token "collector": token file \S+absent-token cannot be read \(ENOENT\)/);
    expect(run.status).not.toBe(0);
  }, 90_000);
});

describe('ports below 1024 on HTTP inputs', () => {
  // doctor only warns when this process cannot bind them: as root, run it as nobody without capabilities
  const asRoot = process.getuid?.() === 0;
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  const skip = asRoot && !setpriv ? 'running as root and setpriv (util-linux) is missing: cannot run doctor without CAP_NET_BIND_SERVICE' : undefined;
  if (skip) console.log(`SKIP doctor low-port check: ${skip}`);

  it.skipIf(skip !== undefined)('doctor warns for an HTTP input and the status listener on a low port', () => {
    const d = mkdtempSync(join(tmpdir(), 'onsight-lowport-'));
    try {
      chmodSync(d, 0o777); // nobody writes the state check's directory and reads the config
      const cfg = join(d, 'onsight.yaml');
      writeFileSync(join(d, 'token'), 'lowport-token\n');
      chmodSync(join(d, 'token'), 0o644);
      writeFileSync(cfg, `state: ${join(d, 'state.db')}
inputs: [{ type: http, listen: "127.0.0.1:443", tokens: [{ name: collector, file: ${join(d, 'token')} }] }]
http: { listen: "127.0.0.1:80" }
${tail}`);
      chmodSync(cfg, 0o644);
      const cmd = asRoot
        ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, CLI, 'doctor', '--config', cfg]] as const
        : [process.execPath, [CLI, 'doctor', '--config', cfg]] as const;
      const r = spawnSync(cmd[0], [...cmd[1]], { encoding: 'utf8', timeout: 60_000, cwd: d });
      expect(r.stdout, r.stderr).toMatch(/^! input http:\/\/127\.0\.0\.1:443: port below 1024: needs CAP_NET_BIND_SERVICE/m);
      expect(r.stdout).toMatch(/^! http: http\.listen 127\.0\.0\.1:80: port below 1024: needs CAP_NET_BIND_SERVICE/m);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);

  const built = existsSync(join(REPO, 'dist', 'src', 'config', 'load.js'));
  it.runIf(built)('install.sh writes the low-port drop-in for an HTTP input on port 443', () => {
    const root = mkdtempSync(join(tmpdir(), 'onsight-root-'));
    try {
      const cfg = join(root, 'input.yaml');
      writeFileSync(cfg, `inputs:
  - { type: syslog, listen: "udp://0.0.0.0:5514" }
  - { type: http, listen: "0.0.0.0:443", tokens: [{ name: collector, credential: hec }] }
policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x] }]
http: { listen: "127.0.0.1:9321" }
`);
      const r = spawnSync('sh', [join(REPO, 'systemd', 'install.sh'), '--root', root, '--no-copy', '--config', cfg], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const dropIn = join(root, 'etc', 'systemd', 'system', 'onsight.service.d', 'low-port.conf');
      expect(existsSync(dropIn), r.stdout).toBe(true);
      expect(readFileSync(dropIn, 'utf8')).toMatch(/port\(s\) 443, below 1024\n.*AmbientCapabilities=CAP_NET_BIND_SERVICE\n/s);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
