/** `onsight doctor`'s Qualys checks that need no call: is the password readable (never shown)? */
import type { DoctorLine } from '../types.js';
import { keyed, loadPassword, NOT_SHOWN, passwordDoctorLine, shownSource, sourceText } from './credentials.js';
import type { QualysScannerOptions } from './schema.js';

export function qualysDoctor(sc: QualysScannerOptions, ctx: { env: NodeJS.ProcessEnv }): DoctorLine[] {
  const env = ctx.env;
  const source = sourceText({ credential: sc.credential, env: sc.passwordEnv, file: sc.passwordFile });
  try {
    return [passwordDoctorLine(source, loadPassword({ passwordFile: sc.passwordFile, passwordEnv: sc.passwordEnv, credential: sc.credential }, env))];
  } catch (err) {
    let hint = '';
    const name = sc.credential === undefined ? undefined : shownSource(sc.credential, 'name');
    if (name !== undefined && !env.CREDENTIALS_DIRECTORY) {
      // a systemd credential exists only inside the service: say how to run doctor there
      hint = `; it exists only inside the service: run doctor as \`systemd-run --pipe --wait -p LoadCredential=${name === NOT_SHOWN ? 'NAME' : name}:/etc/onsight/qualys.pass ${process.execPath} ${process.argv[1] ?? 'bin/onsight.js'} doctor --config FILE\`, or while onsight runs with CREDENTIALS_DIRECTORY=/run/credentials/onsight.service`;
    }
    return [{ mark: 'fail', what: 'credentials', text: keyed(sc, (err as Error).message) + hint }];
  }
}
