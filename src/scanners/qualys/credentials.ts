/**
 * Where the Qualys password comes from: a file, an environment variable, or a systemd credential
 * ($CREDENTIALS_DIRECTORY/<name>, from LoadCredential=). Never from the config file itself, a URL
 * or a command-line argument, and never repeated in an error message.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OnsightError } from '../../errors.js';
import type { DoctorLine } from '../types.js';

export interface PasswordSource {
  /** path of a file holding the password (trailing newline ignored) */
  passwordFile?: string;
  /** name of an environment variable holding it, e.g. ONSIGHT_QUALYS_PASSWORD */
  passwordEnv?: string;
  /** systemd credential name: read $CREDENTIALS_DIRECTORY/<name> */
  credential?: string;
}

export class CredentialsError extends OnsightError {
  constructor(message: string) {
    super('ONSIGHT_CREDENTIALS', message);
  }
}

const MAX_PASSWORD_FILE = 64 * 1024;
/** what an environment variable's name may be (POSIX: the names the shell and systemd's Environment= take) */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads the password from the first source configured; throws CredentialsError naming the source, never the value. */
export function loadPassword(src: PasswordSource, env: NodeJS.ProcessEnv = process.env): string {
  const given = [src.passwordFile, src.passwordEnv, src.credential].filter((x) => x !== undefined).length;
  if (given === 0) throw new CredentialsError('no Qualys password source configured (set passwordFile, passwordEnv or credential)');
  if (given > 1) throw new CredentialsError('configure only one of passwordFile, passwordEnv and credential');

  if (src.passwordEnv !== undefined) {
    // (a value that is no variable's name may be the secret itself, typed in the wrong key: never echoed)
    if (!ENV_NAME.test(src.passwordEnv)) throw new CredentialsError('the environment variable named is no variable name (letters, digits and _, not starting with a digit); not shown: it may be the secret itself');
    const v = env[src.passwordEnv];
    if (v === undefined || v === '') throw new CredentialsError(`environment variable ${src.passwordEnv} is not set or empty`);
    return v;
  }
  if (src.credential !== undefined) {
    if (!/^[A-Za-z0-9_.@-]+$/.test(src.credential)) throw new CredentialsError('credential name may only contain letters, digits and _.@-');
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir) throw new CredentialsError(`credential ${src.credential}: CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)`);
    return readSecretFile(join(dir, src.credential), `credential ${src.credential}`);
  }
  return readSecretFile(src.passwordFile!, `password file ${src.passwordFile}`);
}

function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    if (statSync(path).size > MAX_PASSWORD_FILE) throw new CredentialsError(`${what} is too large to be a password`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof CredentialsError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CredentialsError(`${what} cannot be read (${code})`);
  }
  const pw = text.replace(/\r?\n$/, '');
  if (pw === '') throw new CredentialsError(`${what} is empty`);
  return pw;
}

/**
 * What in a password read from a file or variable is most likely not meant as part of it (a
 * byte-order mark an editor wrote, a second line break, spaces at either end, a line break inside):
 * for doctor to say, without showing the password. Undefined when nothing stands out.
 */
function passwordOddities(pw: string): string | undefined {
  const odd: string[] = [];
  if (pw.startsWith('\uFEFF')) odd.push('starts with a byte-order mark');
  if (/^[ \t]/.test(pw.replace(/^\uFEFF/, ''))) odd.push('starts with a space or tab');
  if (/[\r\n]$/.test(pw)) odd.push('ends with a line break after the one ignored');
  else if (/[ \t]$/.test(pw)) odd.push('ends with a space or tab');
  if (/[\r\n]./s.test(pw)) odd.push('holds a line break');
  return odd.length ? `it ${odd.join(', ')}: part of the password as read (if the login fails, that is the likely cause)` : undefined;
}

/** doctor's line for a password read from `source` (the file, variable or credential, named): ok, or a warning naming what stands out in it */
export function passwordDoctorLine(source: string, pw: string): DoctorLine {
  const odd = passwordOddities(pw);
  return odd ? { mark: 'warn', what: 'credentials', text: `${source} readable (not shown), but ${odd}` } : { mark: 'ok', what: 'credentials', text: `${source} readable (not shown)` };
}
