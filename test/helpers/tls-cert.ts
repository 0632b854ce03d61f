/** A throwaway self-signed certificate for 127.0.0.1 (the `openssl` program), or undefined with the reason. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function selfSignedCert(): { cert: string; key: string; caFile: string } | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), 'onsight-cert-'));
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=onsight-test-console',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { skip: `openssl cannot make a certificate: ${r.error?.message ?? r.stderr}` };
  }
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8'), caFile: join(dir, 'cert.pem') };
}
