/**
 * `onsight doctor`'s Rapid7 checks that need no call: is the password readable (never shown), is
 * the `ca` file a PEM certificate, does every appliance have a site. Reachability (and so TLS),
 * engines and the region mapping are doctor's checks for every backend.
 */
import { readFileSync } from 'node:fs';
import { keyed, loadPassword, passwordDoctorLine, sourceText } from '../qualys/credentials.js';
import type { DoctorLine } from '../types.js';
import type { Rapid7ScannerOptions } from './schema.js';

export function rapid7Doctor(sc: Rapid7ScannerOptions, ctx: { env: NodeJS.ProcessEnv }): DoctorLine[] {
  const lines: DoctorLine[] = [];
  const source = sourceText({ credential: sc.credential, env: sc.passwordEnv, file: sc.passwordFile });
  try {
    lines.push(passwordDoctorLine(source, loadPassword({ passwordFile: sc.passwordFile, passwordEnv: sc.passwordEnv, credential: sc.credential }, ctx.env)));
  } catch (err) {
    lines.push({ mark: 'fail', what: 'credentials', text: keyed(sc, (err as Error).message.replace(/Qualys password/g, 'Rapid7 password')) });
  }
  // (a ca a read would wait on, a FIFO or a device: doctor says so and calls none of this, cli/doctor.ts)
  if (sc.ca !== undefined) {
    try {
      const pem = readFileSync(sc.ca, 'utf8');
      lines.push(/-----BEGIN CERTIFICATE-----/.test(pem)
        ? { mark: 'ok', what: 'tls', text: `console certificates are checked against ${sc.ca}` }
        : { mark: 'fail', what: 'tls', text: `${sc.ca} holds no PEM certificate` });
    } catch (err) {
      lines.push({ mark: 'fail', what: 'tls', text: `${sc.ca} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
    }
  } else if (sc.url.startsWith('https:')) {
    lines.push({ mark: 'ok', what: 'tls', text: 'console certificate checked against the system CAs (set scanner.ca for a self-signed console)' });
  } else {
    lines.push({ mark: 'warn', what: 'tls', text: 'plain http: the password crosses the network in the clear' });
  }
  if (sc.siteId === undefined && Object.keys(sc.sites).length === 0) lines.push({ mark: 'fail', what: 'sites', text: 'no scanner.siteId and no scanner.sites: launches have no site' });
  else lines.push({ mark: 'ok', what: 'sites', text: `${sc.siteId !== undefined ? `site ${sc.siteId} by default` : 'no default site'}${Object.keys(sc.sites).length ? `; ${Object.entries(sc.sites).map(([a, s]) => `${a} → site ${s}`).join(', ')}` : ''}` });
  return lines;
}
