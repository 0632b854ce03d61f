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

/** why a secret's file gives no secret, where that reads as its revocation (`chmod 000` included: fail closed) */
export type SecretAbsence = 'missing' | 'empty' | 'denied';

export class CredentialsError extends OnsightError {
  /** the source's file is not there, empty, or refused to us by its permissions (a reload takes each as the secret revoked) */
  readonly absent?: SecretAbsence;

  constructor(message: string, absent?: SecretAbsence) {
    super('ONSIGHT_CREDENTIALS', message);
    if (absent) this.absent = absent;
  }
}

/** what a message says instead of a source's value that looks like the secret itself */
export const NOT_SHOWN = '(value not shown: it looks like the secret itself, not a file name)';
/** longer than this is no path (PATH_MAX) */
const MAX_SHOWN = 4096;

/**
 * A secret source's value (the path of a file, a credential's name) as a message may print it, or
 * NOT_SHOWN when it looks like the secret typed into the wrong key (the token in `file:`, a PEM
 * block in `tls.key:`): a line break, `-----BEGIN`, `=`, `;`, white space or a control character,
 * longer than a path, something that reads as generated (randomLooking); for a file, also no path
 * prefix (a bare word is more often a password than a file in the daemon's working directory); for
 * a credential's name, longer than names are. Errors print this, never the value itself.
 */
export function shownSource(value: string, kind: 'file' | 'name' | 'env' = 'file'): string {
  const secretLike = value.length > MAX_SHOWN || /[\s=;\x00-\x1f\x7f]|-----BEGIN/.test(value) || randomLooking(value, kind === 'file')
    // (a credential's name: `openssl rand -hex 32` is 64 long; systemd's own are dotted words, shown)
    || (kind === 'name' && value.length > MAX_NAME_SHOWN)
    // (a file: a path that says it is one; a JWT or a base64 key holds `.` and `/` too, review)
    || (kind === 'file' && !/^(\/|\.\.?\/|~\/)/.test(value))
    // (a variable: the conventional upper-case name; `Tok3nValue42` is a name to the shell and more often the secret)
    || (kind === 'env' && !/^[A-Z_][A-Z0-9_]*$/.test(value));
  return secretLike ? NOT_SHOWN : value;
}

/** a credential's name longer than this is more likely a token than a name */
const MAX_NAME_SHOWN = 48;
/** a UUID anywhere (a Splunk HEC token is one) */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/**
 * Does the value read as generated rather than written by a person: a UUID; a run of 12 or more
 * letters and digits mixing lower case, upper case and digits where the digits are not one group
 * at the end of words (`Tok3nValue42`, base64; not `HecToken2024`), or 20 or more; 16 or more of
 * one case's letters and digits in three or more groups, each a quarter of it (`X7K2M9P4Q8R3…`);
 * 24 or more hex digits with both. In a path (`inPath`) only its last part is judged for a UUID
 * or hex (folders named by a git commit or an image layer are common), every part for the rest.
 * Linear: one split, one pass per run.
 */
function randomLooking(value: string, inPath: boolean): boolean {
  const parts = inPath ? value.split('/') : [value];
  for (let i = 0; i < parts.length; i++) {
    const last = i === parts.length - 1;
    if (last && UUID.test(parts[i])) return true;
    for (const run of parts[i].split(/[^A-Za-z0-9+]+/)) {
      if (run.length < 12) continue;
      const groups = run.match(/[0-9]+/g)?.length ?? 0;
      const letters = run.match(/[A-Za-z]/g)?.length ?? 0;
      const lower = /[a-z]/.test(run), upper = /[A-Z]/.test(run);
      if (lower && upper && groups > 0 && (groups >= 2 || run.length >= 20)) return true;
      const hex = /^[0-9a-fA-F]+$/.test(run);
      if (hex && !last) continue;
      if (run.length >= 16 && groups >= 3 && letters * 4 >= run.length && (run.length - letters) * 4 >= run.length) return true;
      if (run.length >= 24 && hex && groups > 0 && letters > 0) return true;
    }
  }
  return false;
}

/** Doctor's words for where a secret is read from (`file`: what its file holds), each value as shownSource shows it. */
export function sourceText(src: { credential?: string; env?: string; file?: string }, file = 'password file'): string {
  if (src.credential !== undefined) return `systemd credential ${shownSource(src.credential, 'name')}`;
  if (src.env !== undefined) return `environment variable ${shownSource(src.env, 'env')}`;
  return `${file} ${shownSource(src.file!)}`;
}

/** doctor's scanner lines: a message whose source value is not shown names the key instead (the value is in the config, there) */
export function keyed(sc: { credential?: string; passwordEnv?: string }, message: string, keys = { file: 'passwordFile', env: 'passwordEnv' }): string {
  if (!message.includes(NOT_SHOWN)) return message;
  return `scanner.${sc.credential !== undefined ? 'credential' : sc.passwordEnv !== undefined ? keys.env : keys.file}: ${message}`;
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
    if (v === undefined || v === '') throw new CredentialsError(`environment variable ${shownSource(src.passwordEnv, 'env')} is not set or empty`);
    return v;
  }
  if (src.credential !== undefined) {
    if (!/^[A-Za-z0-9_.@-]+$/.test(src.credential)) throw new CredentialsError('credential name may only contain letters, digits and _.@-');
    const dir = env.CREDENTIALS_DIRECTORY;
    const name = shownSource(src.credential, 'name');
    if (!dir) throw new CredentialsError(`credential ${name}: CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)`);
    return readSecretFile(join(dir, src.credential), `credential ${name}`);
  }
  return readSecretFile(src.passwordFile!, `password file ${shownSource(src.passwordFile!)}`);
}

function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    if (statSync(path).size > MAX_PASSWORD_FILE) throw new CredentialsError(`${what} is too large to be a password`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof CredentialsError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CredentialsError(`${what} cannot be read (${code})`, code === 'ENOENT' ? 'missing' : code === 'EACCES' || code === 'EPERM' ? 'denied' : undefined);
  }
  const pw = text.replace(/\r?\n$/, '');
  if (pw === '') throw new CredentialsError(`${what} is empty`, 'empty');
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
