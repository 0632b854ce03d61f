/**
 * A token file whose permissions no longer let onsight read it (`chmod 000`) is revoked at a reload,
 * like a deleted or emptied one (review: it kept its old value, so a token an operator meant to cut
 * off went on working). The listener's token set is read by a separate Node process running as an
 * unprivileged user (root reads any file whatever its mode: CI runs as root), from the built
 * dist/ (`npm test` builds it first), over real files.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const WEBCONFIG = join(__dirname, '..', 'dist', 'src', 'net', 'webconfig.js');
const NOBODY = 65534;
const root = userInfo().uid === 0;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** run in the child: load two tokens, make one unreadable, reload, report what is held and what was said */
const SCRIPT = `
const { chmodSync } = require('node:fs');
const { join } = require('node:path');
(async () => {
  const { listenerTokens } = await import(process.env.WEBCONFIG);
  const dir = process.env.DIR;
  const said = [];
  const tokens = listenerTokens([{ name: 'ops', file: join(dir, 'ops') }, { name: 'prom', file: join(dir, 'prom') }], 'http.tokens', { warn: (m) => said.push(m) });
  const before = tokens.current.map((t) => t.name);
  chmodSync(join(dir, 'ops'), 0);
  let threw;
  try { tokens.reload(); } catch (err) { threw = err.message; }
  const afterOne = tokens.current.map((t) => t.name);
  chmodSync(join(dir, 'prom'), 0);
  try { tokens.reload(); } catch (err) { threw = threw ?? err.message; }
  const afterBoth = tokens.current.map((t) => t.name);
  chmodSync(join(dir, 'ops'), 0o600);
  tokens.reload();
  const back = tokens.current.map((t) => t.name);
  process.stdout.write(JSON.stringify({ before, afterOne, afterBoth, back, said, threw }));
})();
`;

describe('a token file made unreadable (chmod 000) at a reload', () => {
  it('is revoked and said by name; with every token unreadable every request is refused; readable again, it comes back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-tokperm-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'ops'), 'ops-aaaaaaaaaaaaaaaaaaaaaaaaaaaa\n', { mode: 0o600 });
    writeFileSync(join(dir, 'prom'), 'prom-bbbbbbbbbbbbbbbbbbbbbbbbbbb\n', { mode: 0o600 });
    if (root) for (const p of [dir, join(dir, 'ops'), join(dir, 'prom')]) chownSync(p, NOBODY, NOBODY);
    if (!root) console.log('token-revoke-permission: not root, the test runs as the current user');
    const r = spawnSync(process.execPath, ['-e', SCRIPT], {
      env: { PATH: process.env.PATH, WEBCONFIG, DIR: dir },
      encoding: 'utf8',
      timeout: 30_000,
      ...(root ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { before: string[]; afterOne: string[]; afterBoth: string[]; back: string[]; said: string[]; threw?: string };
    expect(out.before).toEqual(['ops', 'prom']);
    expect(out.afterOne).toEqual(['prom']);
    expect(out.said.some((m) => m.includes('token "ops" revoked') && m.includes('permission denied'))).toBe(true);
    // (the stand-in that no token matches, never an empty list: empty reads as "no tokens configured")
    expect(out.afterBoth).toEqual(['(every token revoked)']);
    expect(out.said.some((m) => m.includes('every token is revoked'))).toBe(true);
    expect(out.back).toEqual(['ops']);
    // a revocation is no failure of the reload
    expect(out.threw).toBeUndefined();
    // the token's value is never in what is said
    expect(out.said.join('\n')).not.toMatch(/aaaaaaaa|bbbbbbbb/);
  });
});
