/**
 * `scanner.url` with a query or a fragment (review: `?pw=`, `?auth=` passed the check of names like
 * pass|secret|token|key, and doctor printed the whole URL). No backend ever sends them: refused,
 * naming the key, never echoing them; doctor prints a URL's origin and path only. The URLs real
 * configs use (Rapid7's `/api/3/` path among them) are still taken. The real CLI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';
import { freePort } from './helpers/daemon.js';
import { redactUrl } from '../src/util/url.js';

const CANARY = 'S3CR3TCANARY';
const dir = mkdtempSync(join(tmpdir(), 'onsight-url-query-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEYS = `accessKey=${'a1'.repeat(32)}; secretKey=${'b2'.repeat(32)}`;
const env = { ...process.env, ONSIGHT_LOG_JSON: '1', SCAN_PW: 'scan-password-0123', SCAN_KEYS: KEYS };
delete env.CREDENTIALS_DIRECTORY;

const HEAD = `policy: { scope: ["10.0.0.0/8"] }
regions: [{ name: r1, cidrs: ["10.0.0.0/8"], appliances: [a1] }]
inputs: [{ type: syslog, listen: "udp://127.0.0.1:0" }]
http: { enabled: false }
`;
const SCANNERS = {
  qualys: (url: string) => `scanner: { type: qualys, url: "${url}", username: u, passwordEnv: SCAN_PW, optionProfile: p }`,
  tenable: (url: string) => `scanner: { type: tenable, url: "${url}", apiKeysEnv: SCAN_KEYS }`,
  rapid7: (url: string) => `scanner: { type: rapid7, url: "${url}", username: u, passwordEnv: SCAN_PW, siteId: 1 }`,
};

let n = 0;
function cli(args: string[], scanner: string): { status: number | null; out: string; cfg: string; text: string } {
  const cfg = join(dir, `c${n++}.yaml`);
  const text = `state: ${join(dir, `s${n}.db`)}\n${HEAD}${scanner}\n`;
  writeFileSync(cfg, text);
  const r = spawnSync(process.execPath, [CLI, ...args, '--config', cfg], { cwd: dir, encoding: 'utf8', env, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, cfg, text };
}

describe('scanner.url with a query or a fragment', () => {
  it('is refused by config check for every backend, naming scanner.url and its line, never echoing what follows ? or #', () => {
    for (const [type, scanner] of Object.entries(SCANNERS)) {
      for (const tail of [`?pw=${CANARY}`, `?auth=${CANARY}&x=1`, `#${CANARY}`, `/api/3/?${CANARY}`]) {
        const r = cli(['config', 'check'], scanner(`https://scanner.example.org${tail}`));
        const line = r.text.split('\n').findIndex((l) => l.startsWith('scanner:')) + 1;
        expect(r.status, `${type} ${tail}: ${r.out}`).toBe(2);
        expect(r.out, `${type} ${tail}`).toContain(`${r.cfg}:${line}: scanner.url: a ${tail.includes('?') ? 'query string (after ?)' : 'fragment (after #)'} is refused (not shown)`);
        expect(r.out, `${type} ${tail} echoed`).not.toContain(CANARY);
      }
    }
  });

  it('the URLs real configs use are taken (a path too: Rapid7 /api/3/, Tenable.sc /rest/)', () => {
    for (const scanner of [
      SCANNERS.qualys('https://qualysapi.qualys.eu'), SCANNERS.qualys('https://qualysapi.qg2.apps.qualys.com/'),
      SCANNERS.tenable('https://cloud.tenable.com'), SCANNERS.tenable('https://sc.example.org/rest/'),
      SCANNERS.rapid7('https://console.example.org:3780'), SCANNERS.rapid7('https://console.example.org:3780/api/3/'),
    ]) {
      const r = cli(['config', 'check'], scanner);
      expect(r.status, `${scanner}: ${r.out}`).toBe(0);
    }
  });

  it('doctor never prints what follows ? or #: a URL is printed as its origin and path', async () => {
    const port = await freePort(); // (nothing listens: the API calls fail at once)
    const r = cli(['doctor'], SCANNERS.tenable(`http://127.0.0.1:${port}/rest/?pw=${CANARY}#${CANARY}`));
    expect(r.status).not.toBe(0);
    expect(r.out).not.toContain(CANARY);
    expect(r.out).toContain('scanner.url');
    expect(redactUrl(`https://user:${CANARY}@scanner.example.org:8443/api/3/?auth=${CANARY}#${CANARY}`)).toBe('https://scanner.example.org:8443/api/3/');
    expect(redactUrl('https://qualysapi.qualys.eu')).toBe('https://qualysapi.qualys.eu/');
  });
});
